"""The evidence directory: its file names and its index, ``evidence.json``.

``evidence.json`` is an unsigned convenience index (name, identity, root digest,
each evidence file's digest). Verification never trusts it: every claim in it
is checked against the signed statements, and a mismatch fails verification.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import Field, ValidationError

from mlprov._internal.readers import MAX_EVIDENCE_BYTES, read_bytes
from mlprov.canonical import loads_strict
from mlprov.errors import BundleError, InputError
from mlprov.statements import MlprovModel

__all__ = [
    "CARD_FILE",
    "EVAL_FILE",
    "EVIDENCE_SCHEMA",
    "INDEX_FILE",
    "OMS_FILE",
    "PROVENANCE_FILE",
    "SBOM_BUNDLE_FILE",
    "SBOM_FILE",
    "STANDARD_FILES",
    "EvidenceIndex",
    "check_out_dir",
    "read_index",
    "write_dir_atomically",
]

EVIDENCE_SCHEMA = "https://mlprov.dev/schemas/evidence/v1"
INDEX_FILE = "evidence.json"
OMS_FILE = "model.sig"
PROVENANCE_FILE = "provenance.sigstore.json"
#: The CycloneDX ML-BOM, exactly the predicate signed in ``SBOM_BUNDLE_FILE``.
SBOM_FILE = "sbom.cdx.json"
SBOM_BUNDLE_FILE = "sbom.sigstore.json"
#: The eval statement (mlprov eval predicate), written when metrics are given.
EVAL_FILE = "eval.sigstore.json"
#: The model card; its SHA-256 is recorded in the signed SBOM.
CARD_FILE = "MODEL_CARD.md"
#: Files every evidence directory holds (the eval statement is required when the
#: signed SBOM records one).
STANDARD_FILES = (OMS_FILE, PROVENANCE_FILE, SBOM_FILE, SBOM_BUNDLE_FILE, CARD_FILE)


class EvidenceIndex(MlprovModel):
    """The index of an evidence directory."""

    schema_: str = Field(default=EVIDENCE_SCHEMA, alias="schema")
    name: str
    identity: str
    root_digest: str = Field(alias="rootDigest")
    files: dict[str, str] = Field(description="evidence file name -> sha256:<hex>")
    mlprov_version: str = Field(alias="mlprovVersion")


def read_index(evidence: Path) -> EvidenceIndex:
    """Read ``evidence.json`` (unverified; callers check it against signed statements).

    Raises:
        InputError: the directory does not exist or has no index.
        BundleError: the index is malformed or of an unknown schema.
    """
    if not evidence.is_dir():
        raise InputError(f"evidence directory not found: {evidence}")
    path = evidence / INDEX_FILE
    try:
        data = read_bytes(path, what="evidence index", limit=MAX_EVIDENCE_BYTES,
                          follow_symlinks=False, error=BundleError)
    except FileNotFoundError as exc:
        raise BundleError(f"{path} is missing",
                          hint="pass the directory `mlprov attest --out` wrote, or a single "
                               "signature file with --evidence") from exc
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        document = loads_strict(data, what=INDEX_FILE)
    except InputError as exc:
        raise BundleError(str(exc)) from exc
    if isinstance(document, dict) and document.get("schema") != EVIDENCE_SCHEMA:
        raise BundleError(f"{INDEX_FILE} has unknown schema {document.get('schema')!r}",
                          hint="upgrade mlprov to read evidence from newer versions")
    try:
        return EvidenceIndex.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BundleError(f"{INDEX_FILE} is malformed: "
                          f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc


def _replaceable(out: Path) -> bool:
    """Whether ``out`` holds only files an evidence directory holds (safe to replace)."""
    allowed = {INDEX_FILE, EVAL_FILE, *STANDARD_FILES}
    with contextlib.suppress(InputError, BundleError):
        allowed |= set(read_index(out).files)
    try:
        return all(entry.is_file(follow_symlinks=False) and entry.name in allowed
                   for entry in os.scandir(out))
    except OSError:
        return False


def check_out_dir(out: Path, *, overwrite: bool) -> None:
    """Check that evidence may be written to ``out``, before any work is done.

    ``out`` may be missing or empty; with ``overwrite`` it may also be an
    evidence directory written before. Anything else is refused, so that
    ``--force`` never deletes files mlprov did not write.

    Raises:
        InputError: ``out`` is a file, or a non-empty directory that may not be replaced.
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"{out} exists and is not a directory",
                         hint="choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise InputError(f"evidence directory {out} is not empty",
                         hint="pass --force to replace it, or choose another --out")
    if not _replaceable(out):
        raise InputError(f"refusing to replace {out}: it holds files that are not mlprov "
                         "evidence", hint="choose another --out, or empty it yourself")


def _restore(old: Path, out: Path) -> None:
    """Put the previous evidence back after a failed replace; never delete it."""
    previous = old / "evidence"
    if not previous.is_dir():
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        if not os.path.lexists(out):
            os.replace(previous, out)
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise InputError(f"cannot restore the previous evidence of {out}: {exc.strerror}",
                         hint=f"it is kept in {previous}; move it back by hand") from exc


def write_dir_atomically(out: Path, files: dict[str, bytes], *, overwrite: bool) -> None:
    """Write ``files`` into directory ``out`` all at once, or not at all.

    The files go to a fresh sibling directory first, which then replaces
    ``out``. On any failure ``out`` is left as it was.

    Raises:
        InputError: see :func:`check_out_dir`, or the directory cannot be written.
    """
    check_out_dir(out, overwrite=overwrite)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise InputError(f"cannot create {out}: {exc.strerror}") from exc
    old: Path | None = None
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(staging, 0o755)  # noqa: S103 - evidence is public; mkdtemp made it 0700
        if out.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
            os.replace(out, old / "evidence")
        os.replace(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            _restore(old, out)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write evidence to {out}: {exc.strerror}") from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
