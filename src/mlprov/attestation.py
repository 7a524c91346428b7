"""``mlprov.attest``: hash a model once and write its signed evidence directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mlprov import __version__
from mlprov.bundles import sign_statement
from mlprov.canonical import loads_strict
from mlprov.errors import InputError
from mlprov.evidence import (
    INDEX_FILE,
    OMS_FILE,
    PROVENANCE_FILE,
    EvidenceIndex,
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
from mlprov.identity import (
    CodeRef,
    DataRef,
    IdentityInputs,
    code_from_commit,
    code_from_repo,
    compute_identity,
)
from mlprov.oms import manifest_statement
from mlprov.provenance import DEFAULT_BUILDER_ID, build_provenance
from mlprov.signing import Signer, load_private_key
from mlprov.statements import ResourceDescriptor, sha256_descriptor

__all__ = ["AttestResult", "attest", "default_builder_id", "make_inputs"]


@dataclass(frozen=True)
class AttestResult:
    """What ``attest`` wrote."""

    name: str
    identity: str
    root_digest: str
    evidence_dir: Path
    files: dict[str, str]
    manifest: Manifest


def make_inputs(code: CodeRef, data: list[DataRef], config: dict[str, object],
                seeds: dict[str, int]) -> IdentityInputs:
    """Assemble identity inputs, turning validation failures into one-line errors."""
    try:
        return IdentityInputs(code=code, data=data, config=config, seeds=seeds)
    except ValidationError as exc:
        raise InputError(f"identity inputs: {exc.errors()[0]['msg']}") from exc


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


def _metrics_byproduct(path: Path) -> ResourceDescriptor:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read metrics {path}: {exc.strerror}") from exc
    document = loads_strict(data, what=f"metrics file {path}")
    if not isinstance(document, dict):
        raise InputError(f"metrics file {path} is not a JSON object")
    return sha256_descriptor("metrics", hashlib.sha256(data).hexdigest(),
                             mediaType="application/json", annotations=document)


def attest(
    model: Path | str,
    *,
    name: str,
    out: Path | str,
    key: Path | str | None = None,
    signer: Signer | None = None,
    commit: str | None = None,
    repo: Path | str | None = None,
    allow_dirty: bool = False,
    data: list[DataRef] | None = None,
    config: dict[str, object] | None = None,
    seeds: dict[str, int] | None = None,
    inputs: IdentityInputs | None = None,
    metrics: Path | str | None = None,
    builder_id: str | None = None,
    invocation_id: str | None = None,
    started_on: dt.datetime | None = None,
    allow_symlinks: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    hashing: HashJob | None = None,
) -> AttestResult:
    """Hash ``model`` once and write signed evidence to ``out``.

    The evidence directory holds ``model.sig`` (the OMS signature over every
    file), ``provenance.sigstore.json`` (SLSA Provenance v1, subject = the root
    digest, identity inputs recorded) and ``evidence.json`` (the index). It is
    written all at once: on any error nothing is left behind.

    Args:
        model: the model file or directory.
        name: the model's name.
        out: the evidence directory to write.
        key: a PEM private key (or give ``signer``).
        signer: a ready signer, instead of ``key``.
        commit: the training code's commit.
        repo: a git work tree to read the commit from, when ``commit`` is not
            given (default: the current directory).
        allow_dirty: record a dirty git tree instead of refusing it.
        data: datasets, see :func:`mlprov.identity.parse_data_spec`.
        config: the training config (merged), part of the identity.
        seeds: named random seeds, part of the identity.
        inputs: complete identity inputs, instead of commit/repo/data/config/seeds.
        metrics: a JSON metrics file recorded as a byproduct.
        builder_id: the SLSA builder id (default: detected CI, else local).
        invocation_id: the training run's id (default: a new UUID).
        started_on: when training started (default: now).
        allow_symlinks: follow symlinks that stay inside the model.
        overwrite: replace a non-empty ``out``.
        progress: called with byte counts while hashing.
        hashing: a :class:`HashJob` already hashing ``model`` with the ignore
            paths ``default_ignore_paths(model, out)``, so callers can overlap
            start-up work with hashing.

    Raises:
        MlprovError: bad input, unreadable key, or an unsafe model tree.
    """
    started = started_on or dt.datetime.now(dt.UTC)
    model_path, out_path = Path(model), Path(out)
    if not name or "/" in name:
        raise InputError(f"invalid model name {name!r}", hint="use a name without '/'")
    _check_out_is_not_model(model_path, out_path)
    check_out_dir(out_path, overwrite=overwrite)  # fail before hashing, not after
    if signer is None:
        if key is None:
            raise InputError("no signing key given", hint="pass --key PRIVATE_KEY")
        signer = load_private_key(Path(key))
    if inputs is None:
        if commit is not None:
            code = code_from_commit(commit)
        else:
            code = code_from_repo(Path(repo or "."), allow_dirty=allow_dirty)
        inputs = make_inputs(code, data or [], config or {}, seeds or {})
    byproducts = [_metrics_byproduct(Path(metrics))] if metrics is not None else []

    if hashing is not None:
        manifest = hashing.result()
    else:
        manifest = hash_path(model_path, ignore_paths=default_ignore_paths(model_path, out_path),
                             allow_symlinks=allow_symlinks, progress=progress)
    identity = compute_identity(inputs)
    provenance = build_provenance(
        name=name, root=manifest.root, inputs=inputs, started_on=started,
        finished_on=dt.datetime.now(dt.UTC), builder_id=builder_id or default_builder_id(),
        invocation_id=invocation_id or str(uuid.uuid4()), byproducts=byproducts)
    files = {
        OMS_FILE: sign_statement(manifest_statement(manifest), signer),
        PROVENANCE_FILE: sign_statement(provenance, signer),
    }
    digests = {n: "sha256:" + hashlib.sha256(b).hexdigest() for n, b in files.items()}
    index = EvidenceIndex(name=name, identity=identity, root_digest=f"sha256:{manifest.root}",
                          files=digests, mlprov_version=__version__)
    files[INDEX_FILE] = index.model_dump_json(by_alias=True, indent=2).encode() + b"\n"
    write_dir_atomically(out_path, files, overwrite=overwrite)
    return AttestResult(name=name, identity=identity, root_digest=manifest.root,
                        evidence_dir=out_path, files=digests, manifest=manifest)
