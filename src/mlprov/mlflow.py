"""MLflow runs as mlprov evidence: ``log_evidence``, ``autolog``, ``attest_run``, ``card``.

Needs ``pip install 'mlprov[mlflow]'`` (MLflow is imported inside these functions:
``import mlprov`` and ``import mlprov.mlflow`` never import it). Inside a training run::

    import mlflow, mlprov.mlflow
    with mlflow.start_run():
        mlflow.log_params({"C": 1.0})
        mlflow.log_input(mlflow.data.from_pandas(df, source="data/train.csv", name="train"))
        mlflow.log_metric("val_auc", 0.91)
        mlflow.sklearn.log_model(model, name="credit-risk")
        mlprov.mlflow.log_evidence("credit-risk", key="ci.key")

``log_evidence`` downloads the logged model's files from the artefact store into a
fresh directory (in MLflow 3 a ``log_model`` makes a LoggedModel,
``models:/m-<id>``, whose files land in ``<experiment artefact root>/models/m-<id>/
artifacts``), attests those bytes with :func:`mlprov.attest`, and logs the evidence
directory to the run as ``<name>.mlprov/`` (``runs:/<run_id>/credit-risk.mlprov``).
The run becomes the attest inputs:

==========================================  ==============================================
MLflow run                                  mlprov evidence
==========================================  ==============================================
params (strings, as stored)                 the training config (``params=``): part of the
                                            identity, in the provenance's
                                            ``externalParameters.config``
metrics (latest values)                     the signed eval statement's metrics
tag ``mlflow.source.git.commit``            the code commit (``commit=``/``repo=`` if absent)
dataset inputs with a local file source     datasets, hashed by mlprov from their content
                                            (MLflow's digest is not a content hash)
run id, start time                          the provenance's invocation id and start time
the LoggedModel's artefact files            the model: its manifest, root digest, signature
==========================================  ==============================================

A dataset whose source is not a local file (a DataFrame made in code, ``s3://``,
``https://``, a Hugging Face dataset) cannot be hashed here: it is refused, naming it,
unless ``data={name: PATH or "URI@sha256:HEX"}`` says what its content is. A local
source must lie under ``data_root`` (default: the current directory): a tracking store
does not get to make mlprov hash any file on the machine.

Every string from a run is treated as hostile (see :mod:`mlprov._internal.mlflowrun`):
bounded, checked, and only ever carried as a JSON string.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mlprov._internal.arguments import (
    BOOL,
    PATH,
    TEXT,
    checked,
    either,
    instance,
    int_in,
    json_mapping,
    mapping,
    optional,
    sequence_of,
)
from mlprov._internal.mlflowrun import (
    COMMIT_TAG,
    MAX_DATASETS,
    RunDataset,
    RunRecord,
    check_artifact_path,
    check_key,
    check_model_id,
    check_run_id,
    checked_metrics,
    checked_params,
    local_source,
    run_commit,
    started_on,
)
from mlprov._internal.names import check_name
from mlprov.attestation import AttestResult, attest, coerce_data, make_inputs, merge_params
from mlprov.card import CardInput, load_card_input
from mlprov.errors import ArgumentError, IdentityError, InputError, MlprovError
from mlprov.evaluation import MetricsFile, load_metrics, parse_metrics
from mlprov.hashing import hash_path
from mlprov.identity import CodeRef, DataRef, IdentityInputs, code_from_commit, code_from_repo
from mlprov.sbom import Package
from mlprov.signing import BundleSigner, load_private_key

__all__ = [
    "COMMIT_TAG",
    "EVIDENCE_SUFFIX",
    "MLFLOW_HINT",
    "RunCard",
    "RunDataset",
    "RunEvidence",
    "RunRecord",
    "attest_run",
    "autolog",
    "card",
    "eval_document",
    "log_evidence",
    "read_run",
    "run_inputs",
]

#: What a missing extra says.
MLFLOW_HINT: Final = "pip install 'mlprov[mlflow]'"
#: The evidence of a model logged as ``NAME`` is logged to its run as ``NAME.mlprov/``.
EVIDENCE_SUFFIX: Final = ".mlprov"
_STORE_HINT = ("check the run id and the tracking URI (--tracking-uri or "
               "MLFLOW_TRACKING_URI)")
_SHOWN = 300  # characters of a tracking store's error message kept in ours
MAX_MODELS: Final = 1000  # logged models a run may list as its outputs
#: Tags set on a LoggedModel after its evidence is logged: hints for people and
#: tools to find the evidence; nothing trusts them (verification recomputes all).
TAG_EVIDENCE, TAG_ROOT, TAG_IDENTITY = "mlprov.evidence", "mlprov.root_digest", "mlprov.identity"


# ---------------------------------------------------------------------------
# MLflow access
# ---------------------------------------------------------------------------


def _mlflow() -> Any:
    """The ``mlflow`` module, or the one-line error naming the extra."""
    try:
        import mlflow
    except ImportError as exc:
        raise InputError("MLflow is not installed", hint=MLFLOW_HINT) from exc
    return mlflow


@contextlib.contextmanager
def _store(what: str) -> Iterator[None]:
    """Turn a tracking or artefact store's failure into one InputError naming ``what``."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlprovError:
        raise
    except ImportError as exc:
        raise InputError(f"{what}: MLflow needs {exc.name or 'a module'}, which is not "
                         "installed", hint=MLFLOW_HINT) from exc
    except (MlflowException, OSError) as exc:
        message = " ".join(str(getattr(exc, "message", exc)).split())
        if len(message) > _SHOWN:
            message = message[:_SHOWN] + "..."
        raise InputError(f"{what}: {message}", hint=_STORE_HINT) from exc


def _client(tracking_uri: str | None) -> Any:
    mlflow = _mlflow()
    with _store("opening the MLflow tracking store"):
        return mlflow.MlflowClient(tracking_uri=tracking_uri)


def _record(run: Any) -> RunRecord:
    """A run entity as plain values (nothing checked yet: see ``_internal.mlflowrun``)."""
    inputs = getattr(run.inputs, "dataset_inputs", None) or []
    datasets = []
    for dataset_input in inputs:
        dataset = dataset_input.dataset
        context = next((tag.value for tag in dataset_input.tags or ()
                        if tag.key == "mlflow.data.context"), None)
        datasets.append(RunDataset(name=dataset.name, source_type=dataset.source_type,
                                   source=dataset.source,
                                   context=context if isinstance(context, str) else None))
    start = run.info.start_time
    return RunRecord(run_id=run.info.run_id, params=dict(run.data.params),
                     metrics=dict(run.data.metrics), tags=dict(run.data.tags),
                     datasets=tuple(datasets),
                     start_time=start if isinstance(start, int) else None)


def _get_run(client: Any, run_id: str) -> Any:
    with _store(f"reading MLflow run {run_id}"):
        return client.get_run(run_id)


@checked(run_id=TEXT, tracking_uri=optional(TEXT))
def read_run(run_id: str, *, tracking_uri: str | None = None) -> RunRecord:
    """Read what mlprov takes from an MLflow run: params, metrics, tags, dataset inputs.

    Example:
        record = mlprov.mlflow.read_run(run.info.run_id, tracking_uri="sqlite:///mlflow.db")

    Raises:
        InputError: MLflow is not installed, the run is not found, or the store fails.
    """
    check_run_id(run_id)
    return _record(_get_run(_client(tracking_uri), run_id))


# ---------------------------------------------------------------------------
# The mapping: a run record to attest's inputs
# ---------------------------------------------------------------------------


def _code(record: RunRecord, commit: str | None, repo: Path | str | None,
          allow_dirty: bool) -> CodeRef:
    """The code commit: ``commit``/``repo`` if given, else the run's git tag; both must agree."""
    tag = run_commit(record.tags)
    if commit is not None and repo is not None:
        raise InputError("give a commit or a repo, not both")
    if commit is not None:
        code = code_from_commit(commit)
    elif repo is not None:
        code = code_from_repo(Path(repo), allow_dirty=allow_dirty)
    elif tag is not None:
        shown = tag if len(tag) <= 80 else tag[:80] + "..."
        try:
            return code_from_commit(tag)
        except IdentityError as exc:
            raise IdentityError(f"MLflow run {record.run_id}: tag {COMMIT_TAG} is not a full "
                                f"git commit id: {shown!r}",
                                hint="pass the training code's commit (commit=, --commit "
                                     "SHA)") from exc
    else:
        raise IdentityError(f"MLflow run {record.run_id} has no {COMMIT_TAG} tag",
                            hint="MLflow sets it when the training script runs from a git "
                                 "work tree; pass commit= (--commit SHA) or repo= (--repo DIR)")
    if tag is not None and tag.strip().lower() != code.commit:
        shown = tag if len(tag) <= 80 else tag[:80] + "..."
        raise IdentityError(f"MLflow run {record.run_id} is tagged with commit {shown!r}, "
                            f"not {code.commit}",
                            hint="attest the run with the code it was trained with")
    return code


def _local_digest(name: str, text: str, data_root: Path | str | None,
                  allow_symlinks: bool) -> str:
    """Hash a dataset's local source, which must lie under ``data_root``."""
    root = Path(data_root) if data_root is not None else Path.cwd()
    candidate = Path(text)
    full = candidate if candidate.is_absolute() else root / candidate
    try:
        real, root_real = full.resolve(strict=True), root.resolve(strict=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"dataset {name!r}: its local source {text!r} was not found under "
                         f"{root}",
                         hint=f"run where the training ran, or pass data_root=DIR (--data-root) "
                              f"or data={{{name!r}: PATH}} (--data {name}=PATH)") from exc
    if not real.is_relative_to(root_real):
        raise InputError(f"dataset {name!r}: its local source {text!r} lies outside {root}",
                         hint="pass data_root=DIR holding it (--data-root DIR), or "
                              "data={NAME: PATH} (--data NAME=PATH)")
    return "sha256:" + hash_path(real, allow_symlinks=allow_symlinks).root


def _datasets(record: RunRecord, overrides: list[DataRef], data_root: Path | str | None,
              allow_symlinks: bool) -> list[DataRef]:
    """The run's dataset inputs as content digests, with the caller's datasets by name."""
    given: dict[str, DataRef] = {}
    for ref in overrides:
        if ref.name in given:
            raise InputError(f"dataset {ref.name!r} is given twice")
        given[ref.name] = ref
    if len(record.datasets) > MAX_DATASETS:
        raise InputError(f"MLflow run: {len(record.datasets)} dataset inputs, more than "
                         f"{MAX_DATASETS}")
    # Names first (cheap, and a duplicate is refused before any file is read).
    seen: dict[str, tuple[str, str]] = {}
    unique: list[tuple[str, RunDataset]] = []
    for dataset in record.datasets:
        name = check_key(dataset.name, "dataset")
        source = (str(dataset.source_type), str(dataset.source))
        if name in seen:
            if seen[name] == source:
                continue  # one dataset logged for two contexts (training, eval)
            raise InputError(f"MLflow run: two different dataset inputs are named {name!r}",
                             hint="log them under different names")
        seen[name] = source
        unique.append((name, dataset))
    refs: dict[str, DataRef] = {}
    for name, dataset in unique:
        if name in given:
            refs[name] = given[name]
            continue
        path = local_source(dataset)
        if path is None:
            kind = dataset.source_type if isinstance(dataset.source_type, str) else "?"
            raise InputError(f"dataset {name!r} of MLflow run {record.run_id} has a source of "
                             f"type {kind[:40]!r}, which mlprov cannot hash",
                             hint=f"say what its content is: data={{{name!r}: PATH or "
                                  f"'URI@sha256:HEX'}} (--data {name}=PATH)")
        refs[name] = DataRef(name=name, digest=_local_digest(name, path, data_root,
                                                             allow_symlinks))
    for name, ref in given.items():
        refs.setdefault(name, ref)
    return list(refs.values())


@checked(record=instance(RunRecord, "a mlprov.mlflow.RunRecord (read_run(...))"),
         commit=optional(TEXT), repo=optional(PATH), allow_dirty=BOOL,
         data_root=optional(PATH), config=optional(json_mapping),
         seeds=optional(mapping(values=int_in(), what="integer seeds")), allow_symlinks=BOOL)
def run_inputs(record: RunRecord, *, commit: str | None = None, repo: Path | str | None = None,
               allow_dirty: bool = False, data: Any = None,
               data_root: Path | str | None = None, config: Mapping[str, object] | None = None,
               seeds: Mapping[str, int] | None = None,
               allow_symlinks: bool = False) -> IdentityInputs:
    """The identity inputs of a run: its commit, hashed datasets, and params as the config.

    The params are merged into ``config`` at its top level, as the strings MLflow
    stored: ``{"C": "1.0"}``. Dataset inputs with a local source are hashed
    (relative paths from ``data_root``, default the current directory, and never
    outside it); ``data`` names datasets by content instead, or adds others.

    Example:
        inputs = mlprov.mlflow.run_inputs(mlprov.mlflow.read_run(run_id), seeds={"numpy": 0})

    Raises:
        IdentityError: no commit tag and no ``commit``/``repo``, or they disagree.
        InputError: a param, metric or dataset the run holds is unusable (named).
    """
    params = checked_params(record.params)
    code = _code(record, commit, repo, allow_dirty)
    datasets = _datasets(record, coerce_data(data, allow_symlinks=allow_symlinks), data_root,
                         allow_symlinks)
    return make_inputs(code, datasets, merge_params(dict(config or {}), params),
                       dict(seeds or {}))


def _evaluation(evaluation: Path | str | Mapping[str, Any]) -> MetricsFile:
    if isinstance(evaluation, Mapping):
        return parse_metrics(dict(evaluation), what="evaluation")
    return load_metrics(Path(evaluation))[0]


@checked(record=instance(RunRecord, "a mlprov.mlflow.RunRecord (read_run(...))"),
         evaluation=optional(either(PATH, json_mapping)))
def eval_document(record: RunRecord,
                  evaluation: Path | str | Mapping[str, Any] | None = None
                  ) -> dict[str, Any] | None:
    """The metrics document the eval statement signs: the run's metrics, and the eval's.

    ``evaluation`` (an mlprov metrics file or document, see :mod:`mlprov.evaluation`)
    adds slices, evaluation datasets, an evaluator and more metrics; a metric in both
    must have one value. None when there is no metric at all.

    Example:
        document = mlprov.mlflow.eval_document(record, {"slices": {"age<30": {"auc": 0.8}}})

    Raises:
        InputError: a metric that is not a finite number, or a conflicting value.
    """
    metrics: dict[str, float | int] = checked_metrics(record.metrics)
    extra = _evaluation(evaluation) if evaluation is not None else None
    document: dict[str, Any] = {}
    if extra is not None:
        for name, value in extra.metrics.items():
            if name in metrics and metrics[name] != value:
                raise InputError(f"metric {name!r} is {metrics[name]!r} in MLflow run "
                                 f"{record.run_id} but {value!r} in the evaluation",
                                 hint="give each metric one value")
            metrics[name] = value
        if extra.slices:
            document["slices"] = {name: dict(values) for name, values in extra.slices.items()}
        if extra.datasets:
            document["datasets"] = [d.to_json_dict() for d in extra.datasets]
        if extra.evaluator is not None:
            document["evaluator"] = extra.evaluator.to_json_dict()
    if not metrics and not document.get("slices"):
        return None
    return {"metrics": dict(sorted(metrics.items())), **document}


# ---------------------------------------------------------------------------
# The card
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCard:
    """A model card built from a run: what ``log_evidence``/``attest_run`` sign and render.

    ``input`` holds the card's human-written parts (:class:`~mlprov.card.CardInput`);
    ``metrics`` the run's metrics as read; ``evaluation`` the eval document given
    to :func:`card` (slices, evaluation datasets, evaluator). The card itself,
    ``MODEL_CARD.md``, is rendered at attest time from the signed provenance (params,
    datasets, commit, run id) and eval statement, and pinned by the signed SBOM.
    """

    run_id: str
    input: CardInput
    metrics: dict[str, float | int] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None

    def document(self) -> dict[str, Any] | None:
        """The metrics document this card's eval statement would sign."""
        record = RunRecord(run_id=self.run_id, metrics=self.metrics)
        return eval_document(record, self.evaluation)


def _card_input(card: CardInput | Path | str | None) -> CardInput:
    base = card if isinstance(card, CardInput) else (
        load_card_input(Path(card)) if card is not None else CardInput())
    if "mlflow" in base.tags:
        return base
    return base.model_copy(update={"tags": [*base.tags, "mlflow"]})


@checked(run_id=TEXT, tracking_uri=optional(TEXT),
         evaluation=optional(either(PATH, json_mapping)),
         card=optional(either(instance(CardInput), PATH)))
def card(run_id: str, *, tracking_uri: str | None = None,
         evaluation: Path | str | Mapping[str, Any] | None = None,
         card: CardInput | Path | str | None = None) -> RunCard:
    """Build a run's model card: metrics from the run, slices from the eval.

    Pass the result to :func:`log_evidence` or :func:`attest_run` (``card=``): the
    card is rendered with mlprov's own card module (:mod:`mlprov.card`, Mitchell et
    al.'s sections with a Hugging Face metadata header; huggingface_hub is not
    needed) and signed with the rest of the evidence.

    Example:
        run_card = mlprov.mlflow.card(run.info.run_id, card="card.yaml",
                                      evaluation={"slices": {"age<30": {"auc": 0.88}}})
        mlprov.mlflow.log_evidence("credit-risk", key="ci.key", card=run_card)

    Raises:
        InputError: the run cannot be read, a metric is unusable, or the card file
            or evaluation is malformed.
    """
    check_run_id(run_id)
    record = read_run(run_id, tracking_uri=tracking_uri)
    document = dict(evaluation) if isinstance(evaluation, Mapping) else None
    if evaluation is not None and document is None:
        parsed = _evaluation(evaluation)
        document = {key: value for key, value in (
            ("metrics", dict(parsed.metrics)),
            ("slices", {n: dict(v) for n, v in parsed.slices.items()}),
            ("datasets", [d.to_json_dict() for d in parsed.datasets]),
            ("evaluator", parsed.evaluator.to_json_dict() if parsed.evaluator else None))
            if value}
    eval_document(record, document)  # refuse now what attest would refuse later
    return RunCard(run_id=run_id, input=_card_input(card),
                   metrics=checked_metrics(record.metrics), evaluation=document)


# ---------------------------------------------------------------------------
# Attesting a run's model
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunEvidence:
    """What attesting an MLflow run's model wrote."""

    result: AttestResult
    run_id: str
    #: The LoggedModel's id (``m-...``); None for a model logged as plain run artefacts.
    model_id: str | None
    #: Where MLflow serves the model: ``models:/m-<id>`` or ``runs:/<run_id>/<path>``.
    model_uri: str
    #: Where ``log_evidence`` logged the evidence: ``runs:/<run_id>/<name>.mlprov``.
    evidence_uri: str | None = None


@dataclass(frozen=True)
class _Model:
    name: str  # the LoggedModel's name, or the run artefact path
    model_id: str | None
    artifact_uri: str | None  # the LoggedModel's artefact location


def _logged_models(client: Any, run: Any) -> list[Any]:
    outputs = getattr(run.outputs, "model_outputs", None) or []
    ids = list(dict.fromkeys(str(output.model_id) for output in outputs))
    if len(ids) > MAX_MODELS:
        raise InputError(f"MLflow run {run.info.run_id} lists {len(ids)} logged models, more "
                         f"than {MAX_MODELS}")
    with _store(f"reading the models of MLflow run {run.info.run_id}"):
        return [client.get_logged_model(check_model_id(i)) for i in ids]


def _find_model(client: Any, run: Any, model: str | None, *, newest: bool) -> _Model:
    """The run's model: a LoggedModel by id or name, else run artefacts at ``model``."""
    run_id = str(run.info.run_id)
    logged = _logged_models(client, run)
    if model is not None and model.startswith("m-"):
        found = [m for m in logged if m.model_id == model]
        if not found:
            raise InputError(f"MLflow run {run_id} logged no model {model!r}",
                             hint="pass the id of a model the run logged (its outputs)")
    else:
        found = [m for m in logged if model is None or m.name == model]
    if len(found) > 1 and not newest:
        ids = ", ".join(sorted(str(m.model_id) for m in found)[:5])
        raise InputError(f"MLflow run {run_id} logged {len(found)} models ({ids})",
                         hint="choose one: --mlflow-model m-<id> (model=)")
    if found:
        chosen = max(found, key=lambda m: (m.creation_timestamp or 0))
        return _Model(name=str(chosen.name), model_id=check_model_id(str(chosen.model_id)),
                      artifact_uri=str(chosen.artifact_location))
    # MLflow 2 style: a model directory logged as run artefacts (log_artifacts(dir, "model")).
    path = check_artifact_path(model or "model")
    with _store(f"listing the artefacts of MLflow run {run_id}"):
        listed = client.list_artifacts(run_id, path)
    if not listed:
        raise InputError(f"MLflow run {run_id} logged no model"
                         + (f" named {model!r}" if model else ""),
                         hint="log it with mlflow.<flavor>.log_model(..., name=NAME) first")
    return _Model(name=path, model_id=None, artifact_uri=None)


def _download(model: _Model, run_id: str, tracking_uri: str | None, into: Path) -> Path:
    """Copy the model's stored files into the fresh directory ``into``: the bytes attested."""
    from mlflow.artifacts import download_artifacts

    with _store(f"downloading the model of MLflow run {run_id}"):
        if model.artifact_uri is not None:
            local = download_artifacts(artifact_uri=model.artifact_uri, dst_path=str(into),
                                       tracking_uri=tracking_uri)
        else:
            local = download_artifacts(run_id=run_id, artifact_path=model.name,
                                       dst_path=str(into), tracking_uri=tracking_uri)
    path = Path(local)
    if not path.resolve().is_relative_to(into.resolve()):
        raise InputError(f"MLflow returned the model of run {run_id} outside the download "
                         "directory")
    return path


def _model_uri(model: _Model, run_id: str) -> str:
    return f"models:/{model.model_id}" if model.model_id else f"runs:/{run_id}/{model.name}"


#: attest's keywords the run fills in: refused in ``**options``.
_FROM_THE_RUN = frozenset({"model", "inputs", "params", "metrics", "invocation_id",
                           "started_on", "hashing", "key", "signer", "out", "name", "card"})


def _signer(key: Path | str | None, signer: BundleSigner | None, what: str) -> BundleSigner:
    if signer is not None:
        return signer
    if key is None:
        raise InputError(f"{what}: no signing key given",
                         hint="pass key='ci.key' (--key PRIVATE_KEY), or set MLPROV_KEY for "
                              "autolog")
    return load_private_key(Path(key))


@dataclass(frozen=True)
class _RunOptions:
    """What attest_run and log_evidence share, checked before any download."""

    commit: str | None = None
    repo: Path | str | None = None
    allow_dirty: bool = False
    data: Any = None
    data_root: Path | str | None = None
    config: Mapping[str, object] | None = None
    seeds: Mapping[str, int] | None = None
    evaluation: Path | str | Mapping[str, Any] | None = None
    card: RunCard | CardInput | Path | str | None = None
    attest: Mapping[str, Any] = field(default_factory=dict)


def _attest_model(run: Any, model: _Model, *, name: str | None, out: Path,
                  signer: BundleSigner, tracking_uri: str | None,
                  options: _RunOptions) -> RunEvidence:
    record = _record(run)
    run_id = check_run_id(str(record.run_id))
    run_card = options.card if isinstance(options.card, RunCard) else None
    if run_card is not None and run_card.run_id != run_id:
        raise InputError(f"the card was built from MLflow run {run_card.run_id}, not {run_id}")
    if run_card is not None and run_card.evaluation is not None \
            and options.evaluation is not None:
        raise InputError("an evaluation was given twice (in the card and as evaluation=)")
    evaluation = options.evaluation if options.evaluation is not None else (
        run_card.evaluation if run_card is not None else None)
    card_input = run_card.input if run_card is not None else _card_input(
        options.card if not isinstance(options.card, RunCard) else None)
    allow_symlinks = bool(options.attest.get("allow_symlinks", False))
    # Everything from the run is read and checked before the model is downloaded.
    inputs = run_inputs(record, commit=options.commit, repo=options.repo,
                        allow_dirty=options.allow_dirty, data=options.data,
                        data_root=options.data_root, config=options.config,
                        seeds=options.seeds, allow_symlinks=allow_symlinks)
    metrics = eval_document(record, evaluation)
    model_name = check_name(name if name is not None else model.name)
    with tempfile.TemporaryDirectory(prefix="mlprov-mlflow-") as tmp:
        download = Path(tmp) / "download"
        download.mkdir()
        local = _download(model, run_id, tracking_uri, download)
        result = attest(local, name=model_name, out=out, signer=signer, inputs=inputs,
                        metrics=metrics, invocation_id=run_id, started_on=started_on(record),
                        card=card_input, **options.attest)
    return RunEvidence(result=result, run_id=run_id, model_id=model.model_id,
                       model_uri=_model_uri(model, run_id))


def _check_options(options: Mapping[str, Any], function: str) -> dict[str, Any]:
    for keyword in options:
        if keyword in _FROM_THE_RUN:
            raise ArgumentError(f"{function}(): {keyword} is not an attest option here",
                                hint=f"{function} takes the model, its inputs and metrics "
                                     "from the run")
    return dict(options)


_SIGNER = instance(BundleSigner, "a signer (mlprov.signing.make_signer(key=...))")
_CARD = optional(either(instance(RunCard), instance(CardInput), PATH))


@checked(run_id=TEXT, out=PATH, key=optional(PATH), signer=optional(_SIGNER),
         tracking_uri=optional(TEXT), model=optional(TEXT), name=optional(TEXT),
         commit=optional(TEXT), repo=optional(PATH), allow_dirty=BOOL,
         data_root=optional(PATH), config=optional(json_mapping),
         seeds=optional(mapping(values=int_in(), what="integer seeds")),
         evaluation=optional(either(PATH, json_mapping)), card=_CARD)
def attest_run(run_id: str, *, out: Path | str, key: Path | str | None = None,
               signer: BundleSigner | None = None, tracking_uri: str | None = None,
               model: str | None = None, name: str | None = None, commit: str | None = None,
               repo: Path | str | None = None, allow_dirty: bool = False, data: Any = None,
               data_root: Path | str | None = None, config: Mapping[str, object] | None = None,
               seeds: Mapping[str, int] | None = None,
               evaluation: Path | str | Mapping[str, Any] | None = None,
               card: RunCard | CardInput | Path | str | None = None,
               **attest_options: Any) -> RunEvidence:
    """Attest the model of a finished MLflow run and write its evidence to ``out``.

    The run's params, metrics, commit tag and dataset inputs become the attest inputs
    (see the module docstring); its logged model (a LoggedModel, or a model directory
    logged as run artefacts) is downloaded into a fresh directory and attested. What
    ``mlprov attest --mlflow-run RUN_ID`` runs.

    Example:
        evidence = mlprov.mlflow.attest_run(run_id, key="ci.key", out="evidence/",
                                            tracking_uri="sqlite:///mlflow.db")

    Args:
        run_id: the MLflow run.
        out: the evidence directory to write.
        key: a PEM private key (or give ``signer``).
        signer: a ready signer, instead of ``key``.
        tracking_uri: the tracking store (default: MLflow's, ``MLFLOW_TRACKING_URI``).
        model: which model of the run: a LoggedModel id (``m-...``) or name, or a run
            artefact path (default: the run's only model, else artefacts at ``model``).
        name: the model's mlprov name (default: its MLflow name).
        commit: the training code's commit, when the run has no git tag (it must
            agree with the tag when it has one).
        repo: a git work tree to read the commit from, instead.
        allow_dirty: with ``repo``, record a dirty tree instead of refusing it.
        data: datasets named by content (``{"train": "data/train.csv"}``, see
            :func:`mlprov.attest`): they replace the run's dataset of the same name,
            or are added.
        data_root: where the run's relative local dataset paths start (default: the
            current directory); a local source outside it is refused.
        config: more training config, merged with the params.
        seeds: named random seeds.
        evaluation: an mlprov metrics file or document adding slices, evaluation
            datasets and an evaluator to the run's metrics.
        card: a :class:`RunCard` (from :func:`card`), a card input, or a card file.
        **attest_options: any other keyword of :func:`mlprov.attest` (``eval_key``,
            ``card_template``, ``environment``, ``parents``, ``builder_id``,
            ``overwrite``, ``progress``...).

    Raises:
        InputError: MLflow is missing, the run or its model is not found, or a run
            value is unusable (named in the message).
        IdentityError: no commit to record.
        MlprovError: whatever :func:`mlprov.attest` raises.
    """
    check_run_id(run_id)
    options = _RunOptions(commit=commit, repo=repo, allow_dirty=allow_dirty, data=data,
                          data_root=data_root, config=config, seeds=seeds,
                          evaluation=evaluation, card=card,
                          attest=_check_options(attest_options, "attest_run"))
    bundle_signer = _signer(key, signer, "attest_run()")
    client = _client(tracking_uri)
    run = _get_run(client, run_id)
    found = _find_model(client, run, model, newest=False)
    return _attest_model(run, found, name=name, out=Path(out), signer=bundle_signer,
                         tracking_uri=tracking_uri, options=options)


def _active_run_id() -> str:
    mlflow = _mlflow()
    active = mlflow.active_run()
    if active is None:
        raise InputError("no active MLflow run",
                         hint="call it inside `with mlflow.start_run():`, or pass run_id=")
    return str(active.info.run_id)


@checked(artifact_path=TEXT, key=optional(PATH), eval_key=optional(PATH), card=_CARD,
         name=optional(TEXT), model_id=optional(TEXT), run_id=optional(TEXT),
         signer=optional(_SIGNER), eval_signer=optional(_SIGNER), commit=optional(TEXT),
         data_root=optional(PATH), evaluation=optional(either(PATH, json_mapping)),
         environment=optional(either(PATH, sequence_of(instance(Package), "Packages"))))
def log_evidence(artifact_path: str = "model", *, key: Path | str | None = None,
                 eval_key: Path | str | None = None,
                 card: RunCard | CardInput | Path | str | None = None,
                 name: str | None = None, model_id: str | None = None,
                 run_id: str | None = None, signer: BundleSigner | None = None,
                 eval_signer: BundleSigner | None = None, commit: str | None = None,
                 data: Any = None, data_root: Path | str | None = None,
                 evaluation: Path | str | Mapping[str, Any] | None = None,
                 environment: Path | str | list[Package] | None = None) -> RunEvidence:
    """Attest the model just logged in the active run and log the evidence next to it.

    Call it after ``mlflow.<flavor>.log_model(..., name=artifact_path)``. The
    LoggedModel's stored files are downloaded into a fresh directory and attested
    (see the module docstring for what the run gives); the evidence directory is
    logged to the run as ``<artifact_path>.mlprov/`` and the LoggedModel is tagged
    ``mlprov.evidence`` (its ``runs:/`` URI), ``mlprov.root_digest`` and
    ``mlprov.identity``: hints only, verification trusts none of them.

    Example:
        mlflow.sklearn.log_model(model, name="credit-risk")
        evidence = mlprov.mlflow.log_evidence("credit-risk", key="ci.key", eval_key="qa.key")

    Args:
        artifact_path: the ``name`` the model was logged with (MLflow 2's
            ``artifact_path``); the newest such model of the run is attested.
        key: the builder's PEM private key (or ``signer``).
        eval_key: the evaluator's key, signing the metrics (default: ``key``).
        card: a :class:`RunCard` (:func:`card`), a card input, or a card file.
        name: the model's mlprov name (default: ``artifact_path``'s model's name).
        model_id: attest this LoggedModel (``model_info.model_id``) instead.
        run_id: the run (default: the active run).
        signer: a ready signer, instead of ``key``.
        eval_signer: a ready evaluator signer, instead of ``eval_key``.
        commit: the code's commit when the run has no git tag.
        data: datasets named by content, replacing or adding to the run's.
        data_root: where relative local dataset paths start (default: the current
            directory).
        evaluation: an mlprov metrics document or file adding slices and datasets.
        environment: the training environment for the SBOM: a requirements or lock
            file, or packages (default: this interpreter's installed distributions).

    Raises:
        InputError: no active run, no such model, evidence already logged for it,
            or a run value mlprov cannot attest (named in the message).
        IdentityError: no commit to record.
        MlprovError: whatever :func:`mlprov.attest` raises.
    """
    check_artifact_path(artifact_path)
    bundle_signer = _signer(key, signer, "log_evidence()")
    attest_options: dict[str, Any] = {"environment": environment}
    if eval_signer is not None or eval_key is not None:
        attest_options["eval_signer"] = _signer(eval_key, eval_signer, "log_evidence()")
    options = _RunOptions(commit=commit, data=data, data_root=data_root, evaluation=evaluation,
                          card=card, attest=attest_options)
    run_id = check_run_id(run_id) if run_id is not None else _active_run_id()
    client = _client(None)
    run = _get_run(client, run_id)
    found = _find_model(client, run, check_model_id(model_id) if model_id is not None
                        else artifact_path, newest=True)
    evidence_path = check_artifact_path(found.name + EVIDENCE_SUFFIX)
    with _store(f"listing the artefacts of MLflow run {run_id}"):
        taken = client.list_artifacts(run_id, evidence_path)
    if taken:
        raise InputError(f"MLflow run {run_id} already holds evidence at {evidence_path}",
                         hint="log each model of a run under its own name")
    with tempfile.TemporaryDirectory(prefix="mlprov-evidence-") as tmp:
        out = Path(tmp) / "evidence"
        evidence = _attest_model(run, found, name=name, out=out, signer=bundle_signer,
                                 tracking_uri=None, options=options)
        with _store(f"logging the evidence to MLflow run {run_id}"):
            client.log_artifacts(run_id, str(out), artifact_path=evidence_path)
    evidence_uri = f"runs:/{run_id}/{evidence_path}"
    if found.model_id is not None:
        result = evidence.result
        with _store(f"tagging MLflow model {found.model_id}"):
            client.set_logged_model_tags(found.model_id, {
                TAG_EVIDENCE: evidence_uri, TAG_ROOT: f"sha256:{result.root_digest}",
                TAG_IDENTITY: result.identity})
    return RunEvidence(result=evidence.result, run_id=run_id, model_id=found.model_id,
                       model_uri=evidence.model_uri, evidence_uri=evidence_uri)


# ---------------------------------------------------------------------------
# autolog: evidence on every log_model
# ---------------------------------------------------------------------------

_PATCH_LOCK = threading.Lock()
_PATCH: dict[str, Any] = {}  # "original": Model.log's classmethod; "signers": (builder, eval)
_DEPTH = threading.local()  # log_model calls nested in this thread (a flavor calling another)


def _env_path(variable: str) -> str | None:
    value = os.environ.get(variable, "")
    return value or None


def _registration(args: list[Any], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Take ``registered_model_name`` out of a ``Model.log`` call: it registers after the evidence.

    Returns the name (None: no registration) and ``mlflow.register_model``'s keywords.
    """
    # Model.log(cls, artifact_path, flavor, registered_model_name, await_registration_for, ...)
    if len(args) >= 3:
        name, args[2] = args[2], None
    else:
        name = kwargs.pop("registered_model_name", None)
    options: dict[str, Any] = {"tags": kwargs.get("tags")}
    if len(args) >= 4:
        options["await_registration_for"] = args[3]
    elif "await_registration_for" in kwargs:
        options["await_registration_for"] = kwargs["await_registration_for"]
    return name, options


def _logging(log: Callable[..., Any]) -> Callable[..., Any]:
    """``Model.log`` followed by :func:`log_evidence` for the model it logged.

    A ``registered_model_name`` is registered after the evidence is logged (MLflow would
    register inside ``Model.log``, before it exists; an mlprov registry refuses that).
    """
    @functools.wraps(log)
    def log_and_attest(cls: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_DEPTH, "value", 0)
        signers = _PATCH.get("signers")
        outer = depth == 0 and signers is not None
        positional = list(args)
        register_as, options = _registration(positional, kwargs) if outer else (None, {})
        _DEPTH.value = depth + 1
        try:
            info = log(cls, *positional, **kwargs)
        finally:
            _DEPTH.value = depth
        if outer:
            assert signers is not None
            model_id, run_id = getattr(info, "model_id", None), getattr(info, "run_id", None)
            if not model_id or not run_id:
                raise InputError(f"mlprov autolog: model {model_id or '?'} was logged outside "
                                 "an MLflow run, so there is no run to attest",
                                 hint="log models inside `with mlflow.start_run():`")
            log_evidence(model_id=str(model_id), run_id=str(run_id), signer=signers[0],
                         eval_signer=signers[1])
            if register_as is not None:
                version = _mlflow().register_model(f"models:/{model_id}", register_as,
                                                   **options)
                info.registered_model_version = version.version
        return info
    return log_and_attest


@checked(key=optional(PATH), eval_key=optional(PATH), disable=BOOL)
def autolog(*, key: Path | str | None = None, eval_key: Path | str | None = None,
            disable: bool = False) -> None:
    """Attest every model logged from now on, as :func:`log_evidence` does.

    Every ``mlflow.<flavor>.log_model`` (they all go through ``mlflow.models.Model.log``)
    is followed by ``log_evidence(model_id=...)`` for the model it logged; a failure
    raises from ``log_model`` (the model stays logged, without evidence). Metrics
    logged after ``log_model`` are not in the evidence: log them first, or call
    :func:`log_evidence` yourself at the end of the run.

    Example:
        mlprov.mlflow.autolog()        # keys from MLPROV_KEY and MLPROV_EVAL_KEY
        mlprov.mlflow.autolog(disable=True)

    Args:
        key: the builder's PEM private key (default: ``$MLPROV_KEY``); it is read now.
        eval_key: the evaluator's key (default: ``$MLPROV_EVAL_KEY``, else ``key``).
        disable: stop attesting.

    Raises:
        InputError: MLflow is not installed, or no key is given.
        KeyMaterialError: a key cannot be read.
    """
    _mlflow()
    from mlflow.models import Model

    with _PATCH_LOCK:
        if disable:
            original = _PATCH.pop("original", None)
            _PATCH.pop("signers", None)
            if original is not None:
                setattr(Model, "log", original)  # noqa: B010  # a method, not a field
            return
        key = key if key is not None else _env_path("MLPROV_KEY")
        eval_key = eval_key if eval_key is not None else _env_path("MLPROV_EVAL_KEY")
        if key is None:
            raise InputError("mlprov autolog: no signing key given",
                             hint="set MLPROV_KEY=ci.key, or pass key='ci.key'")
        builder = load_private_key(Path(key))
        evaluator = load_private_key(Path(eval_key)) if eval_key is not None else None
        _PATCH["signers"] = (builder, evaluator)
        if "original" not in _PATCH:
            original = Model.__dict__["log"]
            _PATCH["original"] = original
            setattr(Model, "log", classmethod(_logging(original.__func__)))  # noqa: B010
