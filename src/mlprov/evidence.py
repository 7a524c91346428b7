"""The evidence directory: its file names, its index ``evidence.json``, and where it is read from.

``evidence.json`` is an unsigned convenience index (name, identity, root digest,
each evidence file's digest). Verification never trusts it: every claim in it
is checked against the signed statements, and a mismatch fails verification.

Verification reads evidence files through an :class:`EvidenceSource`, never by
path: a directory on disk (:class:`DirectorySource`, what a path argument
becomes), bytes held in memory (:class:`MemorySource`), or a store such as the
registry's content-addressed blobs. Every source refuses the same hostile names
(:func:`check_evidence_name`) and bounds every read.
"""

from __future__ import annotations

import contextlib
import errno
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.evidence_names import (
    CARD_FILE,
    EVAL_FILE,
    EVIDENCE_SCHEMA,
    INDEX_FILE,
    OMS_FILE,
    PROVENANCE_FILE,
    SBOM_BUNDLE_FILE,
    SBOM_FILE,
    STANDARD_FILES,
)
from mlprov._internal.readers import MAX_EVIDENCE_BYTES, read_bytes
from mlprov.canonical import loads_strict
from mlprov.errors import BundleError, InputError, MlprovError

if TYPE_CHECKING:
    from mlprov._internal.evidence_index import EvidenceIndex as EvidenceIndex

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
    "DirectorySource",
    "EvidenceIndex",
    "EvidenceNotFoundError",
    "EvidenceSource",
    "MemorySource",
    "as_source",
    "check_evidence_name",
    "check_out_dir",
    "read_index",
    "write_dir_atomically",
]



# ---------------------------------------------------------------------------
# Evidence sources: where an evidence set's files are read from
# ---------------------------------------------------------------------------


class EvidenceNotFoundError(FileNotFoundError):
    """A source holds no file of that name (callers word the message, as for a path)."""


def check_evidence_name(name: object, *, error: type[MlprovError] = BundleError) -> str:
    r"""Return ``name`` if it is a safe evidence file name: one plain path component.

    Evidence file names come from ``evidence.json`` and other untrusted places,
    so a name may not be empty, hidden (``.``-prefixed, which covers ``.`` and
    ``..``), hold a separator (``/``, ``\\``), a NUL or another control character,
    or be longer than 255 bytes: no name can leave its source or alias another.

    Raises:
        MlprovError: of class ``error``, naming the refused name.
    """
    if not isinstance(name, str) or not name or name.startswith(".") \
            or any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name) \
            or len(name.encode("utf-8", "surrogatepass")) > 255:
        raise error(f"unsafe evidence file name {name!r}",
                    hint="evidence files are plain names such as model.sig, never paths")
    return name


class EvidenceSource(ABC):
    """Where one model's evidence files are read from (a directory, memory, a blob store).

    A template method: :meth:`read` checks the name and bounds the size, then
    calls the one hook a source implements, :meth:`_read`. Sources hand out the
    exact bytes they hold; verification decides what they are worth.
    """

    @abstractmethod
    def names(self) -> frozenset[str]:
        """The names of the files this source holds (unsafe names left out)."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether the source holds a file named ``name`` (after :func:`check_evidence_name`)."""

    @abstractmethod
    def _read(self, name: str, *, what: str, limit: int, error: type[MlprovError]) -> bytes:
        """Return the bytes of the safe name ``name``, at most ``limit`` of them.

        Raises:
            EvidenceNotFoundError: no such file.
            MlprovError: of class ``error``: unreadable, or larger than ``limit``.
        """

    @abstractmethod
    def describe(self, name: str | None = None) -> str:
        """The source, or one of its files, for messages (a path for a directory)."""

    def path_of(self, name: str) -> Path:
        """What :attr:`mlprov.bundles.VerifiedStatement.path` holds for ``name``."""
        return Path(name)

    @property
    def directory(self) -> Path | None:
        """The directory holding the files, when they are on disk (lineage searches near it)."""
        return None

    def read(self, name: str, *, what: str = "evidence file", limit: int = MAX_EVIDENCE_BYTES,
             error: type[MlprovError] = BundleError) -> bytes:
        """Return the whole file ``name``, refusing unsafe names and more than ``limit`` bytes.

        Raises:
            EvidenceNotFoundError: no such file (a :class:`FileNotFoundError`).
            MlprovError: of class ``error``: an unsafe name, too large, or unreadable.
        """
        check_evidence_name(name, error=error)
        data = self._read(name, what=what, limit=limit, error=error)
        if len(data) > limit:  # a source that ignored the bound is refused all the same
            raise error(f"{what} {self.describe(name)} is too large ({len(data)} bytes, the "
                        f"limit is {limit})")
        return data


class DirectorySource(EvidenceSource):
    """Evidence files in a directory: regular files only, never through a symlink.

    Reads go through :func:`mlprov._internal.readers.read_bytes` (no FIFOs,
    devices or symlinks; bounded before and while reading).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"DirectorySource({str(self.path)!r})"

    def names(self) -> frozenset[str]:
        """Regular files directly in the directory (not symlinks; safe names only)."""
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return frozenset()
        names = set()
        for entry in entries:
            try:
                check_evidence_name(entry.name)
            except BundleError:
                continue
            if entry.is_file(follow_symlinks=False):
                names.add(entry.name)
        return frozenset(names)

    def exists(self, name: str) -> bool:
        """Whether anything (even a symlink, refused when read) has that name."""
        check_evidence_name(name)
        return os.path.lexists(self.path / name)

    def _read(self, name: str, *, what: str, limit: int, error: type[MlprovError]) -> bytes:
        try:
            return read_bytes(self.path / name, what=what, limit=limit, follow_symlinks=False,
                              error=error)
        except FileNotFoundError as exc:
            raise EvidenceNotFoundError(exc.errno, exc.strerror, str(self.path / name)) from exc
        except OSError as exc:  # read_bytes wraps the rest; this is belt and braces
            raise error(f"cannot read {what} {self.path / name}: {exc.strerror}") from exc

    def describe(self, name: str | None = None) -> str:
        """The directory's path, or the file's."""
        return str(self.path / name) if name is not None else str(self.path)

    def path_of(self, name: str) -> Path:
        """The file's path in the directory."""
        return self.path / name

    @property
    def directory(self) -> Path:
        """The directory."""
        return self.path


class MemorySource(EvidenceSource):
    """Evidence files held in memory: a mapping of name to bytes (copied, so it cannot change).

    Raises:
        InputError: a name is unsafe (see :func:`check_evidence_name`) or a value is not bytes.
    """

    def __init__(self, files: Mapping[str, bytes], *, label: str = "in-memory evidence") -> None:
        copied: dict[str, bytes] = {}
        for name, data in files.items():
            check_evidence_name(name, error=InputError)
            if not isinstance(data, bytes | bytearray | memoryview):
                raise InputError(f"{label}: {name} is not bytes")
            copied[name] = bytes(data)
        self._files = copied
        self.label = label

    def __repr__(self) -> str:
        return f"MemorySource({self.label!r}, {sorted(self._files)!r})"

    @classmethod
    def from_directory(cls, path: Path | str, *, limit: int = MAX_EVIDENCE_BYTES
                       ) -> MemorySource:
        """Read every file of an evidence directory into memory (bounded, as verify reads)."""
        source = DirectorySource(path)
        return cls({name: source.read(name, limit=limit) for name in sorted(source.names())},
                   label=str(path))

    def names(self) -> frozenset[str]:
        """The names of the mapping."""
        return frozenset(self._files)

    def exists(self, name: str) -> bool:
        """Whether the mapping holds ``name``."""
        check_evidence_name(name)
        return name in self._files

    def _read(self, name: str, *, what: str, limit: int, error: type[MlprovError]) -> bytes:
        try:
            return self._files[name]
        except KeyError:
            raise EvidenceNotFoundError(f"{self.describe(name)} not found") from None

    def describe(self, name: str | None = None) -> str:
        """``label`` or ``label/name``."""
        return f"{self.label}/{name}" if name is not None else self.label


def as_source(evidence: EvidenceSource | Path | str) -> EvidenceSource:
    """A source as is; a path as the directory it names."""
    return evidence if isinstance(evidence, EvidenceSource) else DirectorySource(evidence)


def _index_document(source: EvidenceSource) -> Any:
    """``evidence.json`` parsed, its schema checked (the part both readers share)."""
    if source.directory is not None and not source.directory.is_dir():
        raise InputError(f"evidence directory not found: {source.directory}")
    try:
        data = source.read(INDEX_FILE, what="evidence index")
    except FileNotFoundError as exc:
        raise BundleError(f"{source.describe(INDEX_FILE)} is missing",
                          hint="pass the directory `mlprov attest --out` wrote, or a single "
                               "signature file with --evidence") from exc
    try:
        document = loads_strict(data, what=INDEX_FILE)
    except InputError as exc:
        raise BundleError(str(exc)) from exc
    if isinstance(document, dict) and document.get("schema") != EVIDENCE_SCHEMA:
        raise BundleError(f"{INDEX_FILE} has unknown schema {document.get('schema')!r}",
                          hint="upgrade mlprov to read evidence from newer versions")
    return document


def _index_model(document: Any) -> EvidenceIndex:
    from pydantic import ValidationError

    from mlprov._internal.evidence_index import EvidenceIndex

    try:
        return EvidenceIndex.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BundleError(f"{INDEX_FILE} is malformed: "
                          f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc


def read_index(evidence: EvidenceSource | Path) -> EvidenceIndex:
    """Read ``evidence.json`` (unverified; callers check it against signed statements).

    Raises:
        InputError: the directory does not exist or has no index.
        BundleError: the index is malformed or of an unknown schema.
    """
    return _index_model(_index_document(as_source(evidence)))


@dataclass(frozen=True)
class IndexFields:
    """What :class:`EvidenceIndex` holds, read without pydantic (a lineage walk reads 1000s)."""

    name: str
    identity: str
    root_digest: str
    files: dict[str, str]
    mlprov_version: str


_INDEX_KEYS = frozenset({"schema", "name", "identity", "rootDigest", "files", "mlprovVersion"})


def index_fields(document: Any) -> IndexFields | None:
    """The fields of an index document the model accepts, or None to let the model decide.

    Accepts only the common form (every field under its alias, each a string,
    ``files`` a string-to-string object): what :class:`EvidenceIndex` accepts
    with the same values (``tests/test_evidence_index.py``). Anything else (a
    field under its Python name, a missing or unknown one, a wrong type) is the
    model's to accept or to word the refusal.
    """
    if not isinstance(document, dict) or document.keys() != _INDEX_KEYS:
        return None
    files = document["files"]
    texts = (document["schema"], document["name"], document["identity"],
             document["rootDigest"], document["mlprovVersion"])
    if not all(isinstance(v, str) for v in texts) or not isinstance(files, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return None
    return IndexFields(name=document["name"], identity=document["identity"],
                       root_digest=document["rootDigest"], files=dict(files),
                       mlprov_version=document["mlprovVersion"])


def read_index_fields(evidence: EvidenceSource | Path) -> IndexFields:
    """:func:`read_index`, the same checks and errors, without building the pydantic model.

    Raises:
        InputError: the directory does not exist or has no index.
        BundleError: the index is malformed or of an unknown schema.
    """
    document = _index_document(as_source(evidence))
    fields = index_fields(document)
    if fields is not None:
        return fields
    model = _index_model(document)
    return IndexFields(name=model.name, identity=model.identity, root_digest=model.root_digest,
                       files=dict(model.files), mlprov_version=model.mlprov_version)


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


def _make_sibling(parent: Path, prefix: str) -> Path:
    """A new, empty directory (mode 0700) named ``prefix`` + 12 random hex digits.

    What ``tempfile.mkdtemp`` does (``mkdir`` fails on an existing name, so a
    directory someone else made is never taken over), without importing
    ``tempfile``, ``shutil`` and ``random`` on every attest (about 3 ms).
    """
    for _ in range(100):
        path = parent / f"{prefix}{os.urandom(6).hex()}"
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, f"no free name for {prefix}* in {parent}")


def _remove_tree(path: Path) -> None:
    import shutil  # only on failure or replace: a first write never removes anything

    shutil.rmtree(path, ignore_errors=True)


def _restore(old: Path, out: Path) -> None:
    """Put the previous evidence back after a failed replace; never delete it."""
    previous = old / "evidence"
    if not previous.is_dir():
        _remove_tree(old)
        return
    try:
        if not os.path.lexists(out):
            os.replace(previous, out)
            _remove_tree(old)
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
        staging = _make_sibling(parent, f".{out.name}.")
    except OSError as exc:
        raise InputError(f"cannot create {out}: {exc.strerror}") from exc
    old: Path | None = None
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(staging, 0o755)  # noqa: S103 - evidence is public; made 0700
        if out.is_dir():
            old = _make_sibling(parent, f".{out.name}.old.")
            os.replace(out, old / "evidence")
        os.replace(staging, out)
    except BaseException as exc:
        _remove_tree(staging)
        if old is not None:
            _restore(old, out)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write evidence to {out}: {exc.strerror}") from exc
        raise
    if old is not None:
        _remove_tree(old)


def __getattr__(name: str) -> Any:
    """``EvidenceIndex``, the pydantic model, imported when first named (PEP 562)."""
    if name == "EvidenceIndex":
        from mlprov._internal.evidence_index import EvidenceIndex

        return EvidenceIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
