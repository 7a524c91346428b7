"""Pickle scanning: what a model's pickles would import, found without loading them.

Loading a pickle runs code: any ``GLOBAL``/``INST``/``STACK_GLOBAL`` opcode imports
a callable and ``REDUCE`` calls it (``os.system`` included). mlprov never loads a
pickle. It walks the opcodes statically (:mod:`mlprov._internal.pickleops`, framed
the way CPython's C unpickler frames them, so ``I0x1`` and other arguments that
``pickletools`` rejects do not end the scan early) and compares every import with
an allow-list.

Which files: chosen by content, not only by name. Every file is sniffed: a pickle
under any name (protocol 0-5: the walk reaches an import, or a STOP, the C
unpickler would reach; a joblib file also as ``joblib.load`` reads it, array bytes
skipped), gzip/bz2/xz/lzma/zlib streams (joblib's compressed files;
decompressed within a size bound), zip archives (PyTorch's format, ``.npz``;
members scanned in turn), ``.npy`` files (an object dtype means a pickle follows,
and it is scanned) and ``*.safetensors`` (which must parse as safetensors). A file
named as a pickle (:data:`STRICT_PICKLE_SUFFIXES`) must parse to its STOP opcode.
Whatever cannot be parsed to the end, decompresses past the bound or is not what its
name says is a finding with severity ``error`` (kind ``unscannable``), so a scan
never passes by failing. The report lists every file as scanned (with its formats)
or skipped (with the reason).
"""

from __future__ import annotations

import _compat_pickle
import ast
import bz2
import io
import json
import lzma
import mmap
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from mlprov._internal.pickleops import Buffer, walk
from mlprov.errors import InputError
from mlprov.hashing import DEFAULT_IGNORE_PATHS, check_relative_path
from mlprov.oms import OMS_PREDICATE_TYPE

__all__ = [
    "DEFAULT_ALLOWED_IMPORTS",
    "MAX_UNPACKED_BYTES",
    "PICKLE_SUFFIXES",
    "SCAN_SCHEMA",
    "STRICT_PICKLE_SUFFIXES",
    "Finding",
    "ScanReport",
    "ScannedFile",
    "Severity",
    "SkippedFile",
    "is_pickle_candidate",
    "scan_model",
    "scan_verified_model",
]

SCAN_SCHEMA = "https://mlprov.dev/schemas/pickle-scan/v1"

#: Suffixes of pickle-based formats (PyTorch, joblib, plain pickles, numpy, archives).
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt",
                             ".dat", ".data", ".npy", ".npz", ".zip"})

#: Suffixes whose files must be a complete pickle unless they are an archive or a
#: compressed stream (``np.load`` falls back to unpickling a ``.npy``/``.npz`` that is
#: neither); ``.bin``/``.dat``/``.data`` are often raw tensors and are judged by content.
STRICT_PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".joblib", ".ckpt",
                                    ".npy", ".npz"})

#: Imports a tensor/array checkpoint needs and that run no code of the file's choosing:
#: PyTorch's tensor and storage rebuilders, numpy's array reconstruction, plain
#: containers. Anything else is a finding; a policy may accept more (production.rego
#: reads ``allowed_pickle_imports`` from its data: scikit-learn classes and the numpy,
#: scipy and joblib names real models need; docs/policy.md, "Real ML pickles").
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

#: Bytes the scan decompresses or unpacks from one file (all members and streams).
MAX_UNPACKED_BYTES = 1 << 30

_COMPRESSED_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "lzma",
                        ".z": "zlib"}
_ZIP_SUFFIXES = frozenset({".zip", ".npz", ".pt", ".pth", ".ckpt"})
_MAX_SAFETENSORS_HEADER = 100 << 20
_MAX_NPY_HEADER = 1 << 20
_MAX_MEMBERS = 100_000
_MAX_DEPTH = 4
_SNIFF_BYTES = 1 << 16
_SAFETENSORS_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
                       "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
                       "I64": 8, "U64": 8, "F64": 8, "C64": 8}

# Imports rated ``dangerous`` (run commands, evaluate code, reach the network or the
# file system, or reach arbitrary attributes); every other import outside the
# allow-list is ``suspicious``. Both are findings; production.rego's ``package.*``
# patterns never admit a ``dangerous`` one.
_DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "pty", "runpy", "importlib",
    "pickle", "_pickle", "marshal", "ctypes", "code", "codeop", "commands", "webbrowser",
    "multiprocessing", "asyncio", "requests", "urllib", "urllib2", "http", "httplib", "ftplib",
    "smtplib", "telnetlib", "pip", "setuptools", "distutils", "timeit", "pdb", "bdb", "cProfile",
    "profile", "operator", "_operator", "functools", "types", "inspect", "dill", "shelve",
    "tempfile", "glob", "pathlib", "io", "_io", "zipimport", "venv", "ensurepip", "idlelib",
    "lib2to3", "xmlrpc", "pydoc", "trace", "doctest", "sysconfig", "signal", "_thread",
    "threading", "platform", "builtins", "__builtin__", "copyreg", "copy_reg", "_posixsubprocess",
    "torch.hub", "torch.serialization", "torch._inductor", "torch.jit", "torch.fx", "torch.utils",
    "numpy.testing", "numpy.f2py", "numpy.distutils", "keras", "tensorflow",
    "joblib.numpy_pickle_compat",  # NDArrayWrapper: joblib.load unpickles another file by path
    "<unknown>", "<extension>",
})
_SAFE_BUILTINS = frozenset({"set", "frozenset", "bytearray", "slice", "complex", "dict", "list",
                            "tuple", "int", "float", "bool", "str", "bytes", "range"})

Severity = Literal["dangerous", "suspicious", "error"]
FindingKind = Literal["import", "unscannable"]
_UNSCANNABLE = "<unscannable>"


@dataclass(frozen=True)
class Finding:
    """One import outside the allow-list, or a file that could not be scanned (``error``)."""

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

    @property
    def kind(self) -> FindingKind:
        """``import`` (an import outside the allow-list) or ``unscannable``."""
        return "unscannable" if self.severity == "error" else "import"

    def to_json_dict(self) -> dict[str, Any]:
        """The finding as policy input."""
        document: dict[str, Any] = {"file": self.file, "module": self.module, "name": self.name,
                                    "global": self.global_name, "severity": self.severity,
                                    "kind": self.kind}
        if self.detail:
            document["detail"] = self.detail
        return document


@dataclass(frozen=True)
class ScannedFile:
    """A scanned file: every import its pickles perform, and the outcome."""

    path: str
    status: Literal["clean", "unsafe", "error"]
    imports: tuple[str, ...]
    formats: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """The file as policy input."""
        return {"path": self.path, "status": self.status, "imports": list(self.imports),
                "formats": list(self.formats)}


@dataclass(frozen=True)
class SkippedFile:
    """A file that is not scanned, and why (it is no format that can carry a pickle)."""

    path: str
    reason: str

    def to_json_dict(self) -> dict[str, Any]:
        """The file as policy input."""
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class ScanReport:
    """The pickle scan of one model."""

    files: tuple[ScannedFile, ...]
    findings: tuple[Finding, ...]
    scanner: str
    scanner_version: str
    root_digest: str | None = None
    skipped: tuple[SkippedFile, ...] = ()

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
            "skipped": [f.to_json_dict() for f in self.skipped],
        }
        if self.root_digest is not None:
            document["rootDigest"] = self.root_digest
        return document


@dataclass
class _Scan:
    """What the scan of one file found so far."""

    shown: str
    budget: int
    imports: list[tuple[str, str, str]] = field(default_factory=list)  # module, name, where
    errors: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    not_pickle: str = ""

    def found(self, what: str) -> None:
        if what not in self.formats:
            self.formats.append(what)

    def error(self, where: str, why: str) -> None:
        self.errors.append(f"{where}: {why}" if where else why)


def _suffixes(name: str) -> list[str]:
    return [s.lower() for s in PurePosixPath(name).suffixes]


def _last_suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _scan_pickle(scan: _Scan, buf: Buffer, where: str, *, strict: bool) -> bool:
    """Walk the pickles in ``buf``; whether it was one (or reached an import)."""
    first = walk(buf, 0, strict=strict)
    walks = [first]
    if any(name == "NumpyArrayWrapper" for _, name in first.imports):
        # joblib.load reads array bytes from the stream after each wrapper; pickle.load
        # reads them as opcodes. Both readings count: what either loader would import.
        walks.append(walk(buf, 0, strict=strict, joblib=True))
    for each in walks:
        for module, name in each.imports:
            scan.imports.append((module, name, where))
    complete = [each for each in walks if each.end is not None]
    if not complete:
        if strict:
            hint = ""
            if len(walks) > 1:
                hint = f"; read as joblib does: {walks[1].error}"
            scan.found("pickle")
            scan.error(where, f"not a complete pickle: {first.error}{hint}")
            return True
        if first.imports:
            scan.found("pickle")
            return True
        scan.not_pickle = f"not a pickle ({first.error})"
        return False
    scan.found("pickle")
    if len(walks) > 1 and walks[1].end is not None:
        scan.found("joblib")
    # A loader may read pickle after pickle (PyTorch's legacy format does): keep walking
    # while what follows parses; its imports count even if it then fails, as they would run.
    for each in complete:
        assert each.end is not None
        pos, count = each.end, 1
        while pos < len(buf) and count < 10_000:
            following = walk(buf, pos, strict=False)
            for module, name in following.imports:
                scan.imports.append((module, name, where))
            if following.end is None:
                break
            pos, count = following.end, count + 1
    return True


class _TooLarge(Exception):
    pass


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "zlib":
        return zlib.decompressobj()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_AUTO)


def _compression(head: bytes) -> tuple[str, bool] | None:
    """The compression ``head`` starts with, and whether its magic is unambiguous."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip", True
    if head.startswith(b"BZh"):
        return "bz2", True
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz", True
    if head.startswith(b"\x5d\x00\x00"):
        return "lzma", False
    if head[:1] == b"\x78" and len(head) > 1 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib", False
    return None


def _decompress(kind: str, data: bytes, budget: int) -> tuple[bytes, str | None]:
    """Decompress ``data`` (concatenated streams too) up to ``budget`` bytes.

    Returns the output and an error (None when the streams ended cleanly).
    Raises _TooLarge when the output passes the budget: a decompression bomb.
    """
    out = bytearray()
    rest = data
    while rest:
        engine = _decompressor(kind)
        try:
            out += engine.decompress(rest, budget - len(out) + 1)
            while len(out) <= budget and not engine.eof:
                if kind in ("gzip", "zlib"):
                    if not engine.unconsumed_tail:
                        break
                    out += engine.decompress(engine.unconsumed_tail, budget - len(out) + 1)
                else:
                    if engine.needs_input:
                        break
                    out += engine.decompress(b"", budget - len(out) + 1)
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            return bytes(out), f"corrupt {kind} stream ({exc})"
        if len(out) > budget:
            raise _TooLarge
        if not engine.eof:
            return bytes(out), f"the {kind} stream is truncated"
        rest = engine.unused_data
        if kind in ("zlib", "lzma") or not rest.strip(b"\x00"):
            break  # gzip/bz2/xz readers go on to a further stream; zlib/lzma-alone do not
    return bytes(out), None


def _scan_zip(scan: _Scan, source: Any, where: str, depth: int) -> None:
    """Scan every member of the zip archive ``source`` (a seekable file object)."""
    scan.found("zip")
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
            if len(members) > _MAX_MEMBERS:
                scan.error(where, f"a zip archive with more than {_MAX_MEMBERS} members")
                return
            for info in members:
                if info.is_dir():
                    continue
                inner = f"{where}!{info.filename}" if where else info.filename
                with archive.open(info) as member:
                    data = member.read(min(scan.budget, _SNIFF_BYTES) + 1)
                    complete = len(data) <= _SNIFF_BYTES
                    if not complete and _wants_everything(info.filename, data):
                        rest = member.read(scan.budget - len(data) + 1)
                        data += rest
                        complete = True
                    scan.budget -= len(data)
                    if scan.budget < 0:
                        raise _TooLarge
                _analyse(scan, data, info.filename, inner, depth + 1, complete=complete)
    except _TooLarge:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        scan.error(where, f"could not be scanned ({reason})")


def _wants_everything(name: str, head: bytes) -> bool:
    """Whether a member's whole content is needed (else its first bytes tell enough)."""
    if _last_suffix(name) in STRICT_PICKLE_SUFFIXES or _last_suffix(name) in _COMPRESSED_SUFFIXES:
        return True
    if head[:1] == b"\x80" or head.startswith((b"PK", b"\x93NUMPY")) or _compression(head):
        return True
    sniff = walk(head, 0, strict=False)
    return sniff.end is None and "truncated" in (sniff.error or "")


def _scan_npy(scan: _Scan, buf: Buffer, where: str, depth: int) -> None:
    """A ``.npy`` file: its header, and the pickle that follows an object dtype."""
    scan.found("npy")
    head = bytes(buf[0:12])  # type: ignore[index]
    if len(head) < 10 or head[6] not in (1, 2, 3):
        scan.error(where, "not a valid .npy file (bad version)")
        return
    if head[6] == 1:
        size, start = int.from_bytes(head[8:10], "little"), 10
    else:
        size, start = int.from_bytes(head[8:12], "little"), 12
    if size > _MAX_NPY_HEADER or start + size > len(buf):
        scan.error(where, "not a valid .npy file (header length)")
        return
    raw = bytes(buf[start:start + size])  # type: ignore[index]
    try:
        header = ast.literal_eval(raw.decode("latin-1" if head[6] < 3 else "utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError,
            TypeError):
        scan.error(where, "not a valid .npy file (header is not a literal)")
        return
    if not isinstance(header, dict) or "descr" not in header:
        scan.error(where, "not a valid .npy file (header has no descr)")
        return
    if "O" in repr(header["descr"]):
        scan.found("npy-object")
        body = bytes(buf[start + size:len(buf)])  # type: ignore[index]
        _scan_pickle(scan, body, f"{where} (object array)" if where else "object array",
                     strict=True)


def _check_safetensors(scan: _Scan, buf: Buffer, where: str) -> None:
    """A ``*.safetensors`` file must parse as one, covering the whole file."""
    def bad(why: str) -> None:
        scan.error(where, f"not a valid safetensors file ({why})")

    total = len(buf)
    if total < 8:
        bad("shorter than its header length")
        return
    size = int.from_bytes(bytes(buf[0:8]), "little")  # type: ignore[index]
    if size < 2 or size > _MAX_SAFETENSORS_HEADER or 8 + size > total:
        bad(f"header length {size} out of bounds")
        return
    raw = bytes(buf[8:8 + size])  # type: ignore[index]

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(pairs)

    def no_constants(value: str) -> Any:
        raise ValueError(f"non-JSON constant {value}")

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates,
                            parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        bad(f"header is not JSON: {exc}")
        return
    if not isinstance(header, dict):
        bad("header is not a JSON object")
        return
    data_size = total - 8 - size
    spans: list[tuple[int, int, str]] = []
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str)
                                                      for v in entry.values()):
                bad("__metadata__ is not an object of strings")
                return
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            bad(f"tensor {key!r} is not dtype/shape/data_offsets")
            return
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _SAFETENSORS_DTYPES:
            bad(f"tensor {key!r} has unknown dtype")
            return
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            bad(f"tensor {key!r} has a bad shape")
            return
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_size):
            bad(f"tensor {key!r} has data_offsets outside the file")
            return
        count = 1
        for dim in shape:
            count *= dim
        if count * _SAFETENSORS_DTYPES[dtype] != offsets[1] - offsets[0]:
            bad(f"tensor {key!r}: data_offsets do not match dtype and shape")
            return
        spans.append((offsets[0], offsets[1], key))
    end = 0
    for begin, finish, key in sorted(spans):
        if begin != end:
            bad(f"tensor {key!r} overlaps another or leaves a gap")
            return
        end = finish
    if end != data_size:
        bad(f"{data_size - end} bytes after the last tensor")
        return
    scan.found("safetensors")


def _analyse(scan: _Scan, buf: Buffer, name: str, where: str, depth: int, *,
             complete: bool = True, source: Callable[[], Any] | None = None) -> None:
    """Scan ``buf`` (the content of ``name``) in every format it can be read as."""
    if depth > _MAX_DEPTH:
        scan.error(where, "archives or compressed streams nested too deep")
        return
    suffix = _last_suffix(name)
    head = bytes(buf[0:16])  # type: ignore[index]
    container = False
    compression = _compression(head)
    named = _COMPRESSED_SUFFIXES.get(suffix)
    if compression is not None or named is not None:
        kind, certain = compression if compression is not None else (named or "", True)
        certain = certain or named is not None
        data = bytes(buf[0:len(buf)])  # type: ignore[index]
        try:
            inner, error = _decompress(kind, data, scan.budget)
        except _TooLarge:
            scan.found(kind)
            scan.error(where, f"decompresses to more than {scan.budget} bytes (refused)")
            return
        if inner or certain:
            container = True
            scan.found(kind)
            scan.budget -= len(inner)
            inner_name = name[:-len(suffix)] if named is not None else name
            if error is not None:
                scan.error(where, f"could not be scanned ({error})")
            if inner:
                _analyse(scan, inner, inner_name, f"{where} ({kind})" if where else kind,
                         depth + 1)
    is_zip = head.startswith((b"PK\x03\x04", b"PK\x05\x06")) or suffix in (".zip", ".npz")
    if not is_zip and complete:
        with (source() if source is not None else io.BytesIO(bytes(buf[0:len(buf)]))) as f:  # type: ignore[index]
            is_zip = zipfile.is_zipfile(f)
    if is_zip:
        container = True
        if not complete:
            scan.error(where, "a zip archive inside a member too large to read")
        else:
            with (source() if source is not None else io.BytesIO(bytes(buf[0:len(buf)]))) as f:  # type: ignore[index]
                _scan_zip(scan, f, where, depth)
    if head.startswith(b"\x93NUMPY"):
        container = True
        _scan_npy(scan, buf, where, depth)
    if suffix == ".safetensors":
        _check_safetensors(scan, buf, where)
    strict = (head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5) or (
        suffix in STRICT_PICKLE_SUFFIXES and not container)
    if not complete and strict:
        scan.error(where, "a pickle too large to read")
        return
    _scan_pickle(scan, buf, where, strict=strict)


def _python3_name(module: str, name: str) -> str:
    """What the unpickler imports for a Python 2 name (``fix_imports``, protocols 0-2)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _severity(module: str, name: str) -> Severity:
    if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
        return "suspicious"
    parts = module.split(".")
    if any(".".join(parts[:i]) in _DANGEROUS_MODULES for i in range(1, len(parts) + 1)):
        return "dangerous"
    return "suspicious"


def _scan_one(path: Path, shown: str, allowed: frozenset[str], budget: int
              ) -> tuple[ScannedFile | None, list[Finding], str]:
    """Scan one regular file: its report (None when skipped), findings, skip reason."""
    scan = _Scan(shown=shown, budget=budget)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        finding = Finding(shown, "", "", "error",
                          f"could not be scanned (cannot open: {exc.strerror})")
        return ScannedFile(shown, "error", ()), [finding], ""
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, [], "not a regular file"
        try:
            if info.st_size == 0:
                _analyse(scan, b"", shown, "", 0)
            else:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
                    def reopen() -> Any:
                        return io.BufferedReader(io.FileIO(os.dup(f.fileno()), "rb"))
                    _analyse(scan, view, shown, "", 0, source=reopen)
        except _TooLarge:
            scan.error("", f"unpacks to more than {budget} bytes (refused)")
        except (OSError, ValueError, MemoryError, RecursionError) as exc:
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            scan.error("", f"could not be scanned ({reason})")
    if not scan.formats and not scan.errors:
        return None, [], scan.not_pickle or "no format that can carry a pickle"
    findings: list[Finding] = []
    imports: list[str] = []
    for module, name, where in scan.imports:
        qualified = f"{module}.{name}"
        if qualified not in imports:
            imports.append(qualified)
        if (qualified in allowed or _python3_name(module, name) in allowed) \
                and not module.startswith("<"):
            continue
        if any(f.module == module and f.name == name for f in findings):
            continue
        findings.append(Finding(shown, module, name, _severity(module, name),
                                f"in {where}" if where else ""))
    findings.sort(key=lambda f: (f.module, f.name))
    for why in scan.errors:
        findings.append(Finding(shown, "", "", "error", why if why.startswith(
            ("could not be scanned", "not a")) else f"could not be scanned ({why})"))
    status: Literal["clean", "unsafe", "error"] = (
        "error" if scan.errors else "unsafe" if findings else "clean")
    return (ScannedFile(shown, status, tuple(sorted(imports)), tuple(scan.formats)),
            findings, "")


def is_pickle_candidate(path: Path) -> bool:
    """Whether ``path`` is scanned as (or for) a pickle: by its name or by its content."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        report, findings, _ = _scan_one(path, path.name, frozenset(), MAX_UNPACKED_BYTES)
    except OSError:
        return False
    return report is not None and (bool(report.imports) or "pickle" in report.formats
                                   or bool(findings))


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


def _version() -> str:
    try:
        return metadata.version("mlprov")
    except metadata.PackageNotFoundError:  # pragma: no cover - an installed package
        return "unknown"


def scan_model(model: Path | str, *, files: Iterable[str] | None = None,
               allowed: Iterable[str] = DEFAULT_ALLOWED_IMPORTS,
               root_digest: str | None = None,
               max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> ScanReport:
    """Scan every file of ``model`` (a file or a directory) for pickles; never load one.

    Args:
        model: the model file or directory.
        files: relative posix paths to consider (e.g. the verified manifest's);
            default: every regular file under ``model``, symlinks not followed.
            A single-file model is named ``.`` in manifests.
        allowed: imports (``module.name``) that are not findings.
        root_digest: the verified root digest of the files scanned, recorded in
            the report so a policy can check the scan is of the model it judges.
        max_unpacked_bytes: bytes one file may decompress or unpack to; past it
            the file is a finding (a decompression bomb is refused, not read).

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
    skipped: list[SkippedFile] = []
    findings: list[Finding] = []
    for path, shown in names:
        if path.is_symlink():
            skipped.append(SkippedFile(shown, "a symbolic link (not followed)"))
            continue
        if not path.exists():
            skipped.append(SkippedFile(shown, "missing"))
            continue
        file_report, file_findings, reason = _scan_one(path, shown, allow, max_unpacked_bytes)
        if file_report is None:
            skipped.append(SkippedFile(shown, reason))
            continue
        scanned.append(file_report)
        findings.extend(file_findings)
    return ScanReport(files=tuple(scanned), findings=tuple(findings), scanner="mlprov",
                      scanner_version=_version(), root_digest=root_digest,
                      skipped=tuple(skipped))


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
