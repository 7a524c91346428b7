"""``mlprov.attest``: hash a model once and write its signed evidence directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov import __version__
from mlprov._internal.arguments import (
    BOOL,
    CALLBACK,
    PATH,
    TEXT,
    checked,
    either,
    instance,
    int_in,
    is_loaded_instance,
    json_mapping,
    lazy_instance,
    mapping,
    optional,
    sequence_of,
)
from mlprov._internal.cardfields import CardFields, CardView, card_from_bom
from mlprov._internal.display import validator_words
from mlprov._internal.documents import (
    DEFAULT_BUILDER_ID,
    bom_statement_document,
    descriptor,
    index_bytes,
    manifest_document,
    provenance_document,
    statement_payload,
)
from mlprov._internal.inputs import Code, Dataset, Inputs, InputsRefused
from mlprov._internal.inputs import code_from_commit as plain_code_from_commit
from mlprov._internal.inputs import code_from_repo as plain_code_from_repo
from mlprov._internal.inputs import compute_identity as plain_identity
from mlprov._internal.inputs import parse_data_spec as plain_data_spec
from mlprov._internal.intoto import read_statement
from mlprov._internal.names import check_name
from mlprov._internal.provenance_reader import ProvenanceFacts
from mlprov._internal.provenance_reader import read_provenance as read_provenance_facts
from mlprov.bundles import sign_document, sign_statement
from mlprov.canonical import loads_strict
from mlprov.card import card_facts, load_card_input, render_card
from mlprov.errors import BundleError, InputError
from mlprov.evidence import (
    CARD_FILE,
    EVAL_FILE,
    INDEX_FILE,
    OMS_FILE,
    PROVENANCE_FILE,
    SBOM_BUNDLE_FILE,
    SBOM_FILE,
    check_out_dir,
    write_dir_atomically,
)
from mlprov.hashing import (
    HashJob,
    Manifest,
    ProgressCallback,
    default_ignore_paths,
    hash_path,
)
from mlprov.sbom import (
    BomDraft,
    Package,
    bom_file_bytes,
    build_bom,
    installed_packages,
    pin_evidence,
    prepare_bom,
    read_environment_file,
    sbom_info,
)
from mlprov.signing import BundleSigner, Signer, load_private_key
from mlprov.trust import Role, Trust, TrustedKey, load_trust

if TYPE_CHECKING:
    from mlprov._internal.card_template import CardTemplate
    from mlprov.card import CardInput
    from mlprov.evaluation import EvalPredicate, MetricsFile
    from mlprov.identity import CodeRef, DataRef, IdentityInputs
    from mlprov.lineage import ParentRecord, ParentSpec
    from mlprov.statements import Statement

__all__ = ["AttestResult", "attest", "default_builder_id", "make_inputs"]

#: The model digest the statements built before the hash ends carry (a form any
#: digest shares); those are only drafts, see :func:`attest`.
_PENDING_ROOT = "0" * 64


@dataclass(frozen=True)
class AttestResult:
    """What ``attest`` wrote."""

    name: str
    identity: str
    root_digest: str
    evidence_dir: Path
    files: dict[str, str]
    manifest: Manifest
    #: The parents recorded in the provenance (each verified before it was recorded).
    parents: tuple[ParentRecord, ...] = ()


def make_inputs(code: CodeRef, data: list[DataRef], config: dict[str, object],
                seeds: dict[str, int]) -> IdentityInputs:
    """Assemble identity inputs, turning validation failures into one-line errors."""
    from pydantic import ValidationError

    from mlprov.identity import IdentityInputs

    try:
        return IdentityInputs(code=code, data=data, config=config, seeds=seeds)
    except ValidationError as exc:
        raise InputError(f"identity inputs: {validator_words(str(exc.errors()[0]['msg']))}"
                         ) from exc


#: What ``attest(data=...)`` takes: DataRefs, ``"[NAME=]PATH"`` / ``"[NAME=]URI@sha256:HEX"``
#: strings, or a mapping of name to path or pinned URI.
DataArg = Sequence["DataRef | str | os.PathLike[str]"] | Mapping[str, "str | os.PathLike[str]"]
#: What ``attest(metrics=...)`` takes: a metrics JSON file, or the document itself
#: (``{"val/auc": 0.91}`` or ``{"metrics": {...}, "slices": {...}}``).
MetricsArg = "Path | str | os.PathLike[str] | Mapping[str, Any]"


def coerce_data(data: Any, *, allow_symlinks: bool = False) -> list[DataRef]:
    """``attest``'s ``data`` argument as DataRefs (paths are hashed here).

    Raises:
        InputError: not one of the accepted shapes, or a dataset that cannot be read.
    """
    from mlprov.identity import DataRef

    return [DataRef(name=d.name, digest=d.digest, uri=d.uri)
            for d in datasets_of(data, allow_symlinks=allow_symlinks)]


def datasets_of(data: Any, *, allow_symlinks: bool = False) -> list[Dataset]:
    """``attest``'s ``data`` argument as the identity inputs' datasets (paths hashed here).

    Raises:
        InputError: not one of the accepted shapes, or a dataset that cannot be read.
    """
    if data is None:
        return []
    if isinstance(data, str | bytes | os.PathLike):
        raise InputError("data must be a list or a mapping of datasets, not one string",
                         hint='data=["train=data/train.csv"] or data={"train": '
                              '"data/train.csv"}')
    if isinstance(data, Mapping):
        refs = []
        for name, where in data.items():
            if not isinstance(name, str) or not isinstance(where, str | os.PathLike):
                raise InputError("data mapping must map dataset names to paths or URIs",
                                 hint='data={"train": "data/train.csv"}')
            found = plain_data_spec(os.fspath(where), allow_symlinks=allow_symlinks)
            try:
                refs.append(Dataset(name=name, digest=found.digest, uri=found.uri))
            except InputsRefused as exc:
                raise InputError(f"dataset {name!r}: {exc.msg}") from exc
        return refs
    if not isinstance(data, Sequence):
        raise InputError(f"data must be a list or a mapping, not {type(data).__name__}",
                         hint='data=["train=data/train.csv"]')
    refs = []
    for item in data:
        if isinstance(item, Dataset):
            refs.append(item)
        elif isinstance(item, str | os.PathLike):
            refs.append(plain_data_spec(os.fspath(item), allow_symlinks=allow_symlinks))
        elif is_loaded_instance(item, "mlprov._internal.identity_models", "DataRef"):
            refs.append(Dataset(name=item.name, digest=item.digest, uri=item.uri))
        else:
            raise InputError(f"a dataset must be a DataRef or a '[NAME=]PATH' string, "
                             f"not {type(item).__name__}", hint='data=["train=data/train.csv"]')
    return refs


def identity_inputs(code: Code, data: list[Dataset], config: dict[str, object],
                    seeds: dict[str, int]) -> Inputs:
    """The identity inputs' twin, refused in the words of :func:`make_inputs`.

    Values only the model's lax mode takes (``seeds={"a": "5"}`` from Python) go
    through the model, which decides and words any refusal.
    """
    try:
        return Inputs(code=code, data=tuple(data), config=config, seeds=seeds)
    except InputsRefused:
        from mlprov.identity import CodeRef, DataRef

        model = make_inputs(CodeRef(commit=code.commit, uri=code.uri, dirty=code.dirty),
                            [DataRef(name=d.name, digest=d.digest, uri=d.uri) for d in data],
                            config, seeds)
        return Inputs.from_model(model)


def coerce_metrics(metrics: Any) -> tuple[MetricsFile, bytes, str] | None:
    """``attest``'s ``metrics`` argument: (parsed, exact bytes, where) or None.

    A mapping is written as canonical JSON (RFC 8785): those are the bytes the
    provenance's byproduct digest names.

    Raises:
        InputError: unreadable, not JSON, or not a metrics document.
    """
    if metrics is None:
        return None
    from mlprov.evaluation import load_metrics, parse_metrics

    if isinstance(metrics, Mapping):
        from mlprov.canonical import canonical_json

        document = dict(metrics)
        parsed = parse_metrics(document, what="metrics")
        try:
            data = canonical_json(document)
        except Exception as exc:  # canonical form refuses NaN, non-string keys, ...
            raise InputError(f"metrics cannot be written as canonical JSON: {exc}") from exc
        return parsed, data, "metrics"
    if not isinstance(metrics, str | os.PathLike):
        raise InputError(f"metrics must be a path or a mapping, not {type(metrics).__name__}",
                         hint='metrics={"val/auc": 0.91} or metrics="metrics.json"')
    path = Path(metrics)
    parsed, data = load_metrics(path)
    return parsed, data, f"metrics file {path}"


def merge_params(config: Mapping[str, object] | None, params: Any) -> dict[str, object]:
    """The training config with ``params`` (hyperparameters) merged in at the top level.

    Raises:
        InputError: ``params`` is not a mapping, or names a key the config already has.
    """
    merged: dict[str, object] = dict(config or {})
    if params is None:
        return merged
    if not isinstance(params, Mapping):
        raise InputError(f"params must be a mapping, not {type(params).__name__}",
                         hint='params={"lr": 0.01, "epochs": 10}')
    for key, value in params.items():
        if not isinstance(key, str):
            raise InputError(f"params keys must be strings, got {key!r}")
        if key in merged and merged[key] != value:
            raise InputError(f"params.{key} differs from the config's {key}",
                             hint="give each hyperparameter once, in config or params")
        merged[key] = value
    return merged


def default_builder_id() -> str:
    """The builder id: the CI workflow when one is detected, else a local builder."""
    if os.environ.get("GITHUB_ACTIONS") == "true" and os.environ.get("GITHUB_WORKFLOW_REF"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{os.environ['GITHUB_WORKFLOW_REF']}"
    if os.environ.get("GITLAB_CI") == "true" and os.environ.get("CI_PROJECT_URL"):
        return f"{os.environ['CI_PROJECT_URL']}/-/pipelines"
    return DEFAULT_BUILDER_ID


def _check_out_is_not_model(model: Path, out: Path) -> None:
    """Refuse an --out that is the model or holds it: replacing it would delete the model."""
    model_real, out_real = model.resolve(), out.resolve()
    if model_real == out_real or out_real in model_real.parents:
        raise InputError(f"evidence directory {out} would hold the model {model}",
                         hint="choose an --out outside the model, or a new directory inside it")


def _metrics_byproduct(data: bytes, what: str) -> dict[str, Any]:
    """The provenance's byproduct naming the metrics by digest, with the document."""
    document = loads_strict(data, what=what)
    if not isinstance(document, dict):
        raise InputError(f"{what} is not a JSON object")
    return descriptor("metrics", hashlib.sha256(data).hexdigest(),
                      mediaType="application/json", annotations=document)


def _parent_trust(trust: Trust | Path | str | None, key: Path | str | None,
                  signer: BundleSigner) -> Trust:
    """Whom a parent's evidence must be signed by: the given trust, else the signing key."""
    if trust is not None and key is not None:
        raise InputError("give a parent trust file or a parent key, not both")
    if isinstance(trust, Trust):
        return trust
    if trust is not None:
        return load_trust(Path(trust))
    if key is not None:
        return Trust.single_key(Path(key))
    # Never record an unverified parent: by default it must carry the signature
    # of the key signing this model, as in a pipeline with one CI builder key.
    if not isinstance(signer, Signer):
        raise InputError("keyless signing has no key to trust the parents' evidence by",
                         hint="pass --parent-trust TRUST_FILE naming the parents' builders")
    return Trust(keys=(TrustedKey(name="the signing key", key=signer.public_key,
                                  roles=frozenset({Role.BUILDER})),),
                 source="the signing key (--key)")


def _resolve_parents(specs: list[str | ParentSpec], trust: Trust) -> tuple[ParentRecord, ...]:
    # Imported here: a model without parents needs none of lineage (~10 ms to import).
    from mlprov.lineage import parse_parent_spec, resolve_parent

    records: list[ParentRecord] = []
    for spec in specs:
        parsed = parse_parent_spec(spec) if isinstance(spec, str) else spec
        record = resolve_parent(parsed, trust)
        if any((r.role, r.root_digest) == (record.role, record.root_digest) for r in records):
            raise InputError(f"parent {parsed} is given twice")
        records.append(record)
    return tuple(records)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _card_template(path: Path | str | None) -> CardTemplate | None:
    if path is None:
        return None
    from mlprov._internal.card_template import load_card_template

    return load_card_template(path)


def _environment(environment: Path | str | list[Package] | None) -> list[Package]:
    if isinstance(environment, list):
        return environment
    if environment is not None:
        return read_environment_file(Path(environment))
    return installed_packages()


def _as_signed(statement: Statement, what: str) -> Statement:
    """``statement`` as a verifier reads it: parsed back from its canonical JSON.

    The signed bytes are RFC 8785 JSON, where ``1.0`` is written ``1``: a card
    rendered from the in-memory statement would show ``1.0`` where ``mlprov card``,
    re-rendering from the verified evidence, shows ``1`` (another card, another digest).
    """
    from mlprov.statements import parse_statement

    return parse_statement(statement.canonical_bytes(), what=what)


def _read_eval(statement: Statement) -> EvalPredicate:
    from mlprov.evaluation import read_eval

    return read_eval(statement, what=EVAL_FILE)


def _read_signed_provenance(document: dict[str, Any]) -> ProvenanceFacts:
    """The provenance ``document`` as a verifier reads it, from its canonical JSON.

    Read as :func:`_as_signed` and :func:`mlprov.provenance.read_provenance` would,
    without pydantic (:mod:`mlprov._internal.provenance_reader` is held to them).
    """
    fields = read_statement(loads_strict(statement_payload(document, what=PROVENANCE_FILE),
                                         what=PROVENANCE_FILE))
    if fields is None:  # statement_payload checked this very document
        raise BundleError(f"{PROVENANCE_FILE}: not an in-toto Statement v1 once written")
    return read_provenance_facts(fields, what=PROVENANCE_FILE)


def _sbom_eval_card(*, name: str, root: str, provenance: dict[str, Any],
                    provenance_bundle: bytes, signer: BundleSigner,
                    eval_signer: BundleSigner | None, eval_statement: Statement | None,
                    card: CardView,
                    packages: list[Package], draft: BomDraft | None = None,
                    template: CardTemplate | None = None) -> dict[str, bytes]:
    """Sign the eval statement, render the card, and sign the SBOM that pins both.

    The card is rendered from the same readers ``mlprov card`` uses on verified
    evidence, so re-rendering it later gives the same bytes. ``draft``: the
    SBOM as :func:`mlprov.sbom.prepare_bom` built it before the hash ended;
    ``template``: a ``--card-template`` that renders the card instead of mlprov's layout.
    """
    prov = _read_signed_provenance(provenance)
    files: dict[str, bytes] = {}
    pins = {PROVENANCE_FILE: ("attestation", _sha256(provenance_bundle))}
    evaluation = None
    if eval_statement is not None:
        from mlprov.evaluation import read_eval

        evaluation = read_eval(_as_signed(eval_statement, EVAL_FILE), what=EVAL_FILE)
        files[EVAL_FILE] = sign_statement(eval_statement, eval_signer or signer)
        pins[EVAL_FILE] = ("attestation", _sha256(files[EVAL_FILE]))
    # Not schema-checked here: the writer's output is valid CycloneDX 1.6 by
    # construction (held to the library's document and schema by the tests), and
    # every verify checks the signed BOM against the strict schema.
    bom = build_bom(provenance=prov, root=root, packages=packages, card=card,
                    evaluation=evaluation, draft=draft)
    sbom = sbom_info(bom)
    render = template.render if template is not None else render_card
    files[CARD_FILE] = render(card_facts(prov, root, evaluation, sbom,
                                         read_card=card_from_bom)).encode("utf-8")
    pins[CARD_FILE] = ("model-card", _sha256(files[CARD_FILE]))
    bom = pin_evidence(bom, pins)
    files[SBOM_FILE] = bom_file_bytes(bom)
    files[SBOM_BUNDLE_FILE] = sign_document(bom_statement_document(bom, name=name, root=root),
                                            signer)
    return files


_SIGNER = instance(BundleSigner, "a signer (mlprov.signing.make_signer(key=...))")
_MODEL_INPUTS = lazy_instance("mlprov._internal.identity_models", "IdentityInputs",
                              "a IdentityInputs")


def _INPUTS(value: Any) -> None:
    """An ``IdentityInputs``, or its twin (what the ``mlprov`` command passes)."""
    if not isinstance(value, Inputs):
        _MODEL_INPUTS(value)


@checked(
    model=PATH, name=TEXT, out=PATH, key=optional(PATH), signer=optional(_SIGNER),
    commit=optional(TEXT), repo=optional(PATH), allow_dirty=BOOL,
    config=optional(json_mapping), params=optional(json_mapping),
    seeds=optional(mapping(values=int_in(), what="integer seeds")),
    inputs=optional(_INPUTS),
    builder_id=optional(TEXT),
    invocation_id=optional(TEXT), started_on=optional(instance(dt.datetime, "a datetime")),
    allow_symlinks=BOOL, overwrite=BOOL, progress=CALLBACK,
    hashing=optional(instance(HashJob)),
    parents=optional(sequence_of(either(TEXT, lazy_instance("mlprov.lineage", "ParentSpec")),
                                 "'ROLE=EVIDENCE_DIR' strings")),
    parent_trust=optional(either(instance(Trust), PATH)), parent_key=optional(PATH),
    eval_key=optional(PATH), eval_signer=optional(_SIGNER),
    eval_data=optional(sequence_of(lazy_instance("mlprov._internal.identity_models", "DataRef",
                                                 "a DataRef"), "DataRefs")),
    evaluator_id=optional(TEXT),
    card=optional(either(lazy_instance("mlprov._internal.cardinput", "CardInput",
                                       "a CardInput"), PATH)),
    environment=optional(either(PATH, sequence_of(instance(Package), "Packages"))),
)
def attest(
    model: Path | str,
    *,
    name: str,
    out: Path | str,
    key: Path | str | None = None,
    signer: BundleSigner | None = None,
    commit: str | None = None,
    repo: Path | str | None = None,
    allow_dirty: bool = False,
    data: DataArg | None = None,
    config: dict[str, object] | None = None,
    params: Mapping[str, object] | None = None,
    seeds: dict[str, int] | None = None,
    inputs: IdentityInputs | Inputs | None = None,
    metrics: Path | str | Mapping[str, Any] | None = None,
    builder_id: str | None = None,
    invocation_id: str | None = None,
    started_on: dt.datetime | None = None,
    allow_symlinks: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    hashing: HashJob | None = None,
    parents: list[str | ParentSpec] | None = None,
    parent_trust: Trust | Path | str | None = None,
    parent_key: Path | str | None = None,
    eval_key: Path | str | None = None,
    eval_signer: BundleSigner | None = None,
    eval_data: list[DataRef] | None = None,
    evaluator_id: str | None = None,
    card: CardInput | Path | str | None = None,
    card_template: Path | str | None = None,
    environment: Path | str | list[Package] | None = None,
) -> AttestResult:
    """Hash ``model`` once and write signed evidence to ``out``.

    The evidence directory holds ``model.sig`` (the OMS signature over every
    file), ``provenance.sigstore.json`` (SLSA Provenance v1, subject = the root
    digest, identity inputs recorded), ``sbom.cdx.json`` and its signed
    statement ``sbom.sigstore.json`` (CycloneDX 1.6 ML-BOM), ``eval.sigstore.json``
    (the metrics, when given), ``MODEL_CARD.md`` (its digest recorded in the
    SBOM) and ``evidence.json`` (the index). It is written all at once: on any
    error nothing is left behind.

    Example::

        import mlprov
        mlprov.attest("model/", name="credit-risk", key="ci.key", out="evidence/",
                      data={"train": "data/train.csv"}, params={"C": 1.0},
                      metrics={"val/auc": 0.91, "test/auc": 0.9}, eval_key="qa.key")

    Args:
        model: the model file or directory.
        name: the model's name.
        out: the evidence directory to write.
        key: a PEM private key (or give ``signer``).
        signer: a ready signer, instead of ``key``: a key, or Sigstore keyless
            (:func:`mlprov.signing.make_signer`); every statement of this run is
            signed in its one session.
        commit: the training code's commit.
        repo: a git work tree to read the commit from, when ``commit`` is not
            given (default: the current directory).
        allow_dirty: record a dirty git tree instead of refusing it.
        data: datasets: ``["train=data/train.csv", "hf://d@sha256:..."]`` (see
            :func:`mlprov.identity.parse_data_spec`), ``{"train": "data/train.csv"}``
            or :class:`~mlprov.identity.DataRef` objects; paths are hashed.
        config: the training config (merged), part of the identity.
        params: hyperparameters (``{"lr": 0.01}``), merged into the config at its
            top level: part of the identity and listed in the model card.
        seeds: named random seeds, part of the identity.
        inputs: complete identity inputs, instead of commit/repo/data/config/seeds.
        metrics: a JSON metrics file (see :mod:`mlprov.evaluation`) or the document
            itself (``{"val/auc": 0.91}``), signed as
            ``eval.sigstore.json`` and recorded as a provenance byproduct.
        builder_id: the SLSA builder id (default: detected CI, else local).
        invocation_id: the training run's id (default: a new UUID).
        started_on: when training started (default: now).
        allow_symlinks: follow symlinks that stay inside the model.
        overwrite: replace a non-empty ``out``.
        progress: called with byte counts while hashing.
        hashing: a :class:`HashJob` already hashing ``model`` with the ignore
            paths ``default_ignore_paths(model, out)``, so callers can overlap
            start-up work with hashing.
        parents: parent models, ``ROLE=EVIDENCE_DIR`` or
            ``ROLE=external:NAME@sha256:HEX`` (see :mod:`mlprov.lineage`); each
            evidence directory is verified before it is recorded.
        parent_trust: whom parents' evidence must be signed by (a trust file
            with builders); default: the key signing this model.
        parent_key: a public key trusted for parents' evidence, instead.
        eval_key: a PEM private key signing the eval statement (its holder needs
            the ``evaluator`` role); default: the builder's key.
        eval_signer: a ready signer for the eval statement, instead of ``eval_key``.
        eval_data: evaluation datasets, added to the metrics file's ``datasets``.
        evaluator_id: the evaluator's URI when the metrics file names none
            (default: the builder id).
        card: the model card input (a :class:`~mlprov.card.CardInput`, or a
            YAML/JSON file, see :mod:`mlprov.card`).
        card_template: a Jinja2 template that renders ``MODEL_CARD.md`` instead of
            mlprov's layout, as ``huggingface_hub.ModelCard.from_template`` does, in a
            sandbox; its variables are listed in docs/sbom-eval-card.md. The rendered
            card is the one the SBOM pins.
        environment: the training environment: a requirements or lock file, or
            packages; default: this interpreter's installed distributions.

    Raises:
        MlprovError: bad input, unreadable key, or an unsafe model tree.
        LineageError: a parent's evidence does not verify.
    """
    started = started_on or dt.datetime.now(dt.UTC)
    model_path, out_path = Path(model), Path(out)
    check_name(name)
    _check_out_is_not_model(model_path, out_path)
    check_out_dir(out_path, overwrite=overwrite)  # fail before hashing, not after
    if signer is None:
        if key is None:
            raise InputError("no signing key given", hint="pass --key PRIVATE_KEY")
        signer = load_private_key(Path(key))
    plain: Inputs
    if inputs is None:
        if commit is not None:
            code = plain_code_from_commit(commit)
        else:
            code = plain_code_from_repo(Path(repo or "."), allow_dirty=allow_dirty)
        plain = identity_inputs(code, datasets_of(data, allow_symlinks=allow_symlinks),
                                merge_params(config, params), seeds or {})
    elif data is not None or config is not None or params is not None or seeds is not None:
        raise InputError("inputs= was given together with data, config, params or seeds",
                         hint="give either complete identity inputs or their parts")
    else:
        plain = inputs if isinstance(inputs, Inputs) else Inputs.from_model(inputs)
    # Everything the SBOM, eval and card need is read before hashing, so bad
    # input fails fast and the reading overlaps a background hash.
    metrics_read = coerce_metrics(metrics)
    byproducts = [_metrics_byproduct(metrics_read[1], metrics_read[2])] if metrics_read else []
    metrics_file = metrics_read[0] if metrics_read else None
    if metrics_file is None and (eval_key or eval_signer or eval_data):
        raise InputError("an eval key or eval datasets were given without metrics",
                         hint="pass --metrics FILE, the results the evaluator signs")
    if eval_signer is None and eval_key is not None:
        eval_signer = load_private_key(Path(eval_key))
    # No card: the defaults, as the pydantic-free twin (the same BOM and card).
    card_input: CardView = CardFields() if card is None else (
        load_card_input(Path(card)) if isinstance(card, str | os.PathLike) else card)
    template = _card_template(card_template)
    packages = _environment(environment)
    parent_records = _resolve_parents(list(parents), _parent_trust(
        parent_trust, parent_key, signer)) if parents else ()
    identity = plain_identity(plain)
    builder = builder_id or default_builder_id()
    invocation = invocation_id or str(uuid.uuid4())

    def provenance_for(root: str, finished_on: dt.datetime) -> dict[str, Any]:
        return provenance_document(
            name=name, root=root, inputs=plain, started_on=started, finished_on=finished_on,
            builder_id=builder, invocation_id=invocation, byproducts=byproducts,
            parents=[r.descriptor().to_json_dict() for r in parent_records])

    def eval_statement_for(root: str) -> Statement | None:
        if metrics_file is None:
            return None
        from mlprov.evaluation import build_eval_statement

        return build_eval_statement(name=name, root=root, metrics=metrics_file,
                                    evaluator_id=evaluator_id or builder,
                                    datasets=eval_data or [])

    # The SBOM depends on the model's bytes only through its digest, the
    # provenance's finish time and the evidence pins: build it now, while the
    # model is hashed, for a placeholder digest (input the writer refuses fails
    # here). The final build_bom(..., draft=draft) fills those in.
    pending_eval = eval_statement_for(_PENDING_ROOT)
    pending = _read_signed_provenance(provenance_for(_PENDING_ROOT, started))
    draft = prepare_bom(provenance=pending, packages=packages, card=card_input,
                        evaluation=_read_eval(pending_eval) if pending_eval else None)
    # A dry run of the card on the draft's facts: a misspelt name or a refused access
    # in a template fails now, not after the hash, and the renderer's first-call costs
    # (importing PyYAML, about 15 ms) are paid while the model is hashed. Its output
    # is dropped.
    (template.render if template is not None else render_card)(card_facts(
        pending, _PENDING_ROOT, draft.evaluation, sbom_info(draft.document),
        read_card=card_from_bom))
    # A process's first signature costs some 6 ms more than the next ones
    # (cryptography loads its OpenSSL backend, OpenSSL sets up): pay that now,
    # while the model is hashed, rather than after. The signature is dropped.
    for key_signer in (signer, eval_signer):
        if isinstance(key_signer, Signer):
            key_signer.sign(b"")

    if hashing is not None:
        manifest = hashing.result()
    else:
        manifest = hash_path(model_path, ignore_paths=default_ignore_paths(model_path, out_path),
                             allow_symlinks=allow_symlinks, progress=progress)
    for record in parent_records:
        if record.root_digest == manifest.root:
            raise InputError(f"the model is its own {record.role} parent "
                             f"({record.name}, sha256:{manifest.root})",
                             hint="a parent must be another model; check the --parent values")
    provenance = provenance_for(manifest.root, dt.datetime.now(dt.UTC))
    files = {
        OMS_FILE: sign_document(manifest_document(manifest), signer),
        PROVENANCE_FILE: sign_document(provenance, signer),
    }
    files.update(_sbom_eval_card(
        name=name, root=manifest.root, provenance=provenance,
        provenance_bundle=files[PROVENANCE_FILE], signer=signer, eval_signer=eval_signer,
        eval_statement=eval_statement_for(manifest.root), card=card_input,
        packages=packages, draft=draft, template=template))
    digests = {n: "sha256:" + hashlib.sha256(b).hexdigest() for n, b in files.items()}
    files[INDEX_FILE] = index_bytes(name=name, identity=identity,
                                    root_digest=f"sha256:{manifest.root}", files=digests,
                                    mlprov_version=__version__)
    write_dir_atomically(out_path, files, overwrite=overwrite)
    return AttestResult(name=name, identity=identity, root_digest=manifest.root,
                        evidence_dir=out_path, files=digests, manifest=manifest,
                        parents=parent_records)
