"""Pickle scanning: what a model's pickles would import, found without loading them.

Loading a pickle runs code: any ``GLOBAL``/``STACK_GLOBAL`` opcode imports a
callable and ``REDUCE`` calls it (``os.system`` included). mlprov never loads a
pickle. It reads the opcodes statically with picklescan
(https://github.com/mmaitre314/picklescan, MIT, no dependencies; it
disassembles with :mod:`pickletools`, follows memoised ``STACK_GLOBAL``
arguments, and understands PyTorch zip/legacy files, numpy ``.npy``/``.npz``
and zip archives) and compares every import with an allow-list.

Which files: every file with a pickle-based suffix (:data:`PICKLE_SUFFIXES`) and
every file that starts like a pickle (protocol 2-5) or a zip archive (PyTorch's
zip format, whatever its name). Each import outside the allow-list becomes a
:class:`Finding` (file, module, name, severity); a file that cannot be scanned
is a finding too (severity ``error``), so a scan never passes by failing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from mlprov.errors import InputError
from mlprov.hashing import DEFAULT_IGNORE_PATHS, check_relative_path
from mlprov.oms import OMS_PREDICATE_TYPE

__all__ = [
    "DEFAULT_ALLOWED_IMPORTS",
    "PICKLE_SUFFIXES",
    "SCAN_SCHEMA",
    "Finding",
    "ScanReport",
    "ScannedFile",
    "Severity",
    "is_pickle_candidate",
    "scan_model",
    "scan_verified_model",
]

SCAN_SCHEMA = "https://mlprov.dev/schemas/pickle-scan/v1"

#: Suffixes of pickle-based formats (PyTorch, joblib, plain pickles, numpy, archives).
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt",
                             ".dat", ".data", ".npy", ".npz", ".zip"})

#: Imports a tensor/array checkpoint needs and that run no code of the file's choosing:
#: PyTorch's tensor and storage rebuilders, numpy's array reconstruction, plain
#: containers. Anything else is a finding; a policy may accept more (production.rego
#: reads ``allowed_pickle_imports`` from its data).
DEFAULT_ALLOWED_IMPORTS = frozenset({
    "collections.OrderedDict",
    "_codecs.encode",
    "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.slice",
    "builtins.complex",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor", "torch.Size", "torch.device",
    *(f"torch.{kind}Storage" for kind in (
        "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
        "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4")),
    "torch.storage.UntypedStorage", "torch.storage.TypedStorage",
    *(f"torch.{dtype}" for dtype in (
        "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
        "uint8", "bool", "complex64", "complex128")),
    "numpy.ndarray", "numpy.dtype",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
})

Severity = Literal["dangerous", "suspicious", "error"]

_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_ZIP_MAGIC = b"PK\x03\x04"
_UNSCANNABLE = "<unscannable>"

# picklescan reports through logging; without a handler Python's last-resort
# handler would print its warnings on stderr, and a library must not print.
logging.getLogger("picklescan").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Finding:
    """One import outside the allow-list (or a file that could not be scanned)."""

    file: str
    module: str
    name: str
    severity: Severity
    detail: str = ""

    @property
    def global_name(self) -> str:
        """``module.name``, the way allow-lists name an import."""
        if self.severity == "error":
            return _UNSCANNABLE
        return f"{self.module}.{self.name}"

    def to_json_dict(self) -> dict[str, Any]:
        """The finding as policy input."""
        document: dict[str, Any] = {"file": self.file, "module": self.module, "name": self.name,
                                    "global": self.global_name, "severity": self.severity}
        if self.detail:
            document["detail"] = self.detail
        return document


@dataclass(frozen=True)
class ScannedFile:
    """A scanned file: every import its pickles perform, and the outcome."""

    path: str
    status: Literal["clean", "unsafe", "error"]
    imports: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """The file as policy input."""
        return {"path": self.path, "status": self.status, "imports": list(self.imports)}


@dataclass(frozen=True)
class ScanReport:
    """The pickle scan of one model."""

    files: tuple[ScannedFile, ...]
    findings: tuple[Finding, ...]
    scanner: str
    scanner_version: str
    root_digest: str | None = None

    @property
    def safe(self) -> bool:
        """True when no file imports anything outside the allow-list and all were scanned."""
        return not self.findings

    def to_json_dict(self) -> dict[str, Any]:
        """The report as policy input (``scan`` in the policy input schema)."""
        document: dict[str, Any] = {
            "schema": SCAN_SCHEMA,
            "scanner": {"name": self.scanner, "version": self.scanner_version},
            "files": [f.to_json_dict() for f in self.files],
            "findings": [f.to_json_dict() for f in self.findings],
        }
        if self.root_digest is not None:
            document["rootDigest"] = self.root_digest
        return document


def is_pickle_candidate(path: Path) -> bool:
    """Whether ``path`` is scanned: a pickle-based suffix, or pickle/zip magic bytes."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(_PICKLE_MAGIC) or head.startswith(_ZIP_MAGIC)


def _walk(model: Path) -> list[str]:
    """Relative posix paths of the regular files under ``model`` (symlinks not followed)."""
    ignored = {PurePosixPath(p) for p in DEFAULT_IGNORE_PATHS}
    found: list[str] = []
    for base, dirs, names in os.walk(model):
        rel_base = PurePosixPath(Path(base).relative_to(model).as_posix())
        dirs[:] = sorted(d for d in dirs if rel_base / d not in ignored
                         and not (Path(base) / d).is_symlink())
        for name in sorted(names):
            rel = rel_base / name
            if rel in ignored or (Path(base) / name).is_symlink():
                continue
            found.append(rel.as_posix())
    return found


def _scan_one(path: Path, shown: str, allowed: frozenset[str]
              ) -> tuple[ScannedFile, list[Finding]]:
    from picklescan.scanner import SafetyLevel, scan_bytes  # type: ignore[import-untyped]

    try:
        with path.open("rb") as f:
            suffix = path.suffix.lower()
            result = scan_bytes(f, shown, suffix if suffix in PICKLE_SUFFIXES else None)
    except Exception as exc:  # a corrupt archive, a missing optional reader, ...
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        finding = Finding(shown, "", "", "error", f"could not be scanned ({reason})")
        return ScannedFile(shown, "error", ()), [finding]
    imports: list[str] = []
    findings: list[Finding] = []
    for item in sorted(result.globals, key=lambda g: (g.module, g.name)):
        name = f"{item.module}.{item.name}"
        if name in imports:
            continue
        imports.append(name)
        if name in allowed and "unknown" not in (item.module, item.name):
            continue
        severity: Severity = ("dangerous" if item.safety is SafetyLevel.Dangerous
                              else "suspicious")
        findings.append(Finding(shown, item.module, item.name, severity))
    status: Literal["clean", "unsafe"] = "unsafe" if findings else "clean"
    return ScannedFile(shown, status, tuple(imports)), findings


def _version() -> str:
    try:
        return metadata.version("picklescan")
    except metadata.PackageNotFoundError:  # pragma: no cover - a declared dependency
        return "unknown"


def scan_model(model: Path | str, *, files: Iterable[str] | None = None,
               allowed: Iterable[str] = DEFAULT_ALLOWED_IMPORTS,
               root_digest: str | None = None) -> ScanReport:
    """Scan every pickle-based file of ``model`` (a file or a directory); never load one.

    Args:
        model: the model file or directory.
        files: relative posix paths to consider (e.g. the verified manifest's);
            default: every regular file under ``model``, symlinks not followed.
            A single-file model is named ``.`` in manifests.
        allowed: imports (``module.name``) that are not findings.
        root_digest: the verified root digest of the files scanned, recorded in
            the report so a policy can check the scan is of the model it judges.

    Raises:
        InputError: the model does not exist, or a listed path escapes it.
    """
    root = Path(model)
    if not root.exists():
        raise InputError(f"model not found: {root}")
    allow = frozenset(allowed)
    if root.is_file():
        names = [(root, root.name)]
    else:
        relative = list(files) if files is not None else _walk(root)
        names = []
        for rel in relative:
            check_relative_path(rel)
            names.append((root / rel, rel))
    scanned: list[ScannedFile] = []
    findings: list[Finding] = []
    for path, shown in names:
        if not path.is_file() or path.is_symlink() or not is_pickle_candidate(path):
            continue
        file_report, file_findings = _scan_one(path, shown, allow)
        scanned.append(file_report)
        findings.extend(file_findings)
    return ScanReport(files=tuple(scanned), findings=tuple(findings), scanner="picklescan",
                      scanner_version=_version(), root_digest=root_digest)


def scan_verified_model(model: Path | str, verdict: Any) -> ScanReport:
    """Scan the files a verdict verified: those of the signed manifest, under ``model``.

    Raises:
        InputError: the verdict did not verify the model's files.
    """
    files_ok = any(c.name == "files" and c.ok is True for c in getattr(verdict, "checks", ()))
    if not files_ok or not verdict.root_digest:
        raise InputError("the model's files were not verified; refusing to scan unverified files")
    names: list[str] | None = None
    for verified in getattr(verdict, "statements", {}).values():
        predicate = verified.statement.predicate
        if verified.statement.predicate_type == OMS_PREDICATE_TYPE:
            names = [str(r["name"]) for r in predicate.get("resources", [])
                     if isinstance(r, dict) and "name" in r]
    root = Path(model)
    if root.is_file() or names is None:
        return scan_model(root, root_digest=verdict.root_digest)
    return scan_model(root, files=names, root_digest=verdict.root_digest)
