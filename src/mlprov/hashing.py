"""Hash a model (a file or a directory tree) into a manifest and a root digest.

The rule is the OpenSSF model-signing (OMS) one, so both tools name a model by
the same digest: each file gets its SHA-256; the manifest is the list of
``(posix relative path, digest)`` sorted by path; the *root digest* is SHA-256
over the concatenated raw per-file digests in that order. A single-file model
has one entry named ``"."`` (what OMS records for it).

Safety: names are relative POSIX paths with no ``..``, ``.`` or empty parts;
symlinks are refused unless allowed, and even then may never leave the model
root; special files are refused. Files are opened with ``O_NOFOLLOW`` so a
symlink swapped in after the walk is not followed.

Speed: files are hashed on a thread pool (hashlib releases the GIL), largest
first, each read once into a reused buffer.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mlprov._internal.arguments import (
    BOOL,
    CALLBACK,
    PATH,
    STRINGS,
    TEXT,
    checked,
    int_in,
    optional,
    sequence_of,
    sha256_hex,
)
from mlprov.errors import InputError, UnsafePathError

__all__ = [
    "DEFAULT_IGNORE_PATHS",
    "FileDigest",
    "HashJob",
    "Manifest",
    "ProgressCallback",
    "check_relative_path",
    "default_ignore_paths",
    "hash_file",
    "hash_path",
    "manifest_sort_key",
    "root_digest",
]

#: Paths OMS ignores by default (top-level, relative to the model root).
DEFAULT_IGNORE_PATHS: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")

#: Called with the number of bytes just hashed; may be called from worker threads.
ProgressCallback = Callable[[int], None]

_CHUNK = 1 << 18  # 256 KiB, as hashlib.file_digest: amortises syscalls, stays in L2.
_SINGLE_FILE_NAME = "."


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One manifest entry: a file's relative path, SHA-256 (hex) and size."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """The hashed view of a model: its files, their digests and the root digest."""

    name: str
    files: tuple[FileDigest, ...]
    ignore_paths: tuple[str, ...] = ()
    allow_symlinks: bool = False
    is_file: bool = False
    root: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", root_digest(f.sha256 for f in self.files))

    @property
    def total_size(self) -> int:
        """Bytes hashed, over all files."""
        return sum(f.size for f in self.files)

    def without(self, ignore_paths: Iterable[str]) -> Manifest:
        """Return this manifest less the files under ``ignore_paths`` (no re-hashing)."""
        extra = [PurePosixPath(p) for p in ignore_paths]
        kept = tuple(f for f in self.files
                     if self.is_file or not _is_ignored(PurePosixPath(f.path), extra))
        merged = tuple(sorted(set(self.ignore_paths) | {str(p) for p in extra}))
        return Manifest(name=self.name, files=kept, ignore_paths=merged,
                        allow_symlinks=self.allow_symlinks, is_file=self.is_file)

    def by_path(self) -> dict[str, str]:
        """Map each relative path to its SHA-256 hex digest."""
        return {f.path: f.sha256 for f in self.files}


@checked(file_digests=sequence_of(sha256_hex, "SHA-256 hex digests"))
def root_digest(file_digests: Iterable[str]) -> str:
    """Return the OMS root digest: SHA-256 over the raw digests, in manifest order.

    Example:
        root = root_digest(d.digest for d in manifest.files)
    """
    h = hashlib.sha256()
    for digest in file_digests:
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def manifest_sort_key(path: str) -> list[str]:
    """Order manifest paths part by part, as ``pathlib.PurePosixPath`` (and OMS) do.

    ``"a/b"`` sorts before ``"a-c"`` here, unlike a plain string sort.
    """
    return path.split("/")


@checked(name=TEXT)
def check_relative_path(name: str) -> str:
    """Return ``name`` if it is a safe relative POSIX path inside a root.

    Example:
        check_relative_path("tokenizer/vocab.txt")   # "../x" raises UnsafePathError

    Raises:
        UnsafePathError: for absolute names, ``..``/``.``/empty parts, backslashes
            or NUL bytes.
    """
    if name == _SINGLE_FILE_NAME:
        return name
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        raise UnsafePathError(f"unsafe path in manifest: {name!r}")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePathError(f"unsafe path in manifest: {name!r}")
    return name


@checked(path=PATH, progress=CALLBACK, follow_symlinks=BOOL)
def hash_file(path: Path | str, *, progress: ProgressCallback | None = None,
              follow_symlinks: bool = False) -> tuple[str, int]:
    """Return the SHA-256 hex digest and size of one regular file, read once.

    Example:
        digest, size = hash_file("model/weights.safetensors")

    Raises:
        InputError: the file cannot be opened or read.
        UnsafePathError: it is not a regular file (or, by default, a symlink).
    """
    # O_NONBLOCK: a FIFO swapped in after the walk must not block open(); fstat refuses it.
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
             | getattr(os, "O_NOFOLLOW", 0) * (not follow_symlinks))
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    h = hashlib.sha256()
    size = 0
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(f"not a regular file: {path}")
        while n := os.readv(fd, [buf]):
            h.update(view[:n])
            size += n
            if progress is not None:
                progress(n)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return h.hexdigest(), size


def _is_ignored(rel: PurePosixPath, ignore: Sequence[PurePosixPath]) -> bool:
    return any(rel == ig or rel.is_relative_to(ig) for ig in ignore)


def _inside(root_real: str, target: str) -> bool:
    return target == root_real or target.startswith(root_real.rstrip(os.sep) + os.sep)


def _walk(root: Path, ignore: Sequence[PurePosixPath], allow_symlinks: bool) -> list[str]:
    """List the relative paths of the regular files under ``root``, checked.

    A followed directory symlink is a loop only when it points at one of the
    directories it sits in; two names for one directory (``b -> a``) are not a
    loop, and each name is listed, as OMS lists them.
    """
    root_real = os.path.realpath(root)
    found: list[str] = []
    # (directory, its path relative to root, the real paths of it and its ancestors)
    stack: list[tuple[str, PurePosixPath, frozenset[str]]] = [
        (str(root), PurePosixPath(), frozenset({root_real}))
    ]
    while stack:
        directory, rel_dir, ancestors = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise InputError(f"cannot list {directory}: {exc.strerror}") from exc
        for entry in entries:
            rel = rel_dir / entry.name
            if _is_ignored(rel, ignore):
                continue
            if entry.is_symlink():
                if not allow_symlinks:
                    raise UnsafePathError(
                        f"symlink in model: {rel} (pass --allow-symlinks to follow links "
                        "that stay inside the model)"
                    )
                target = os.path.realpath(entry.path)
                if not _inside(root_real, target):
                    raise UnsafePathError(f"symlink leaves the model root: {rel} -> {target}")
                if os.path.isdir(target):
                    if target in ancestors:
                        raise UnsafePathError(f"symlink loop in model: {rel}")
                    stack.append((entry.path, rel, ancestors | {target}))
                elif os.path.isfile(target):
                    found.append(rel.as_posix())
                else:
                    raise UnsafePathError(f"symlink to a special or missing file: {rel}")
            elif entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, rel, ancestors | {os.path.realpath(entry.path)}))
            elif entry.is_file(follow_symlinks=False):
                found.append(rel.as_posix())
            else:
                raise UnsafePathError(f"special file in model (not a regular file): {rel}")
    return found


@checked(path=PATH, ignore_paths=STRINGS, allow_symlinks=BOOL,
         workers=optional(int_in(1, 1024)), progress=CALLBACK)
def hash_path(
    path: Path | str,
    *,
    ignore_paths: Iterable[str] = DEFAULT_IGNORE_PATHS,
    allow_symlinks: bool = False,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Hash a model file or directory into a :class:`Manifest`.

    Example:
        manifest = mlprov.hash_path("model/")
        print(manifest.root)    # the OMS root digest, hex

    Args:
        path: the model: one file, or a directory tree.
        ignore_paths: paths relative to the model root to leave out (directories
            cover everything below them). Ignored for a single-file model.
        allow_symlinks: follow symlinks that stay inside the model root.
        workers: hashing threads (default: at least 4, to overlap I/O).
        progress: called with byte counts as they are hashed.

    Raises:
        InputError: the path is missing, unreadable or an empty directory.
        UnsafePathError: a symlink, special file or ignore path is unsafe.
    """
    root = Path(path)
    if root.is_symlink() and not allow_symlinks:
        raise UnsafePathError(f"model path is a symlink: {root} (pass --allow-symlinks)")
    if root.is_file():
        digest, size = hash_file(root, progress=progress, follow_symlinks=allow_symlinks)
        return Manifest(name=root.name, files=(FileDigest(_SINGLE_FILE_NAME, digest, size),),
                        allow_symlinks=allow_symlinks, is_file=True)
    if not root.is_dir():
        if root.exists():  # a FIFO, socket or device: never opened (a FIFO would block)
            raise UnsafePathError(f"not a regular file or directory: {root}")
        raise InputError(f"no such file or directory: {root}")
    ignores = tuple(sorted({check_relative_path(p.rstrip("/")) for p in ignore_paths}))
    rel_paths = _walk(root, [PurePosixPath(p) for p in ignores], allow_symlinks)
    if not rel_paths:
        raise InputError(f"model directory holds no files to hash: {root}",
                         hint="point at the directory that holds the model's files")
    try:
        sizes = {p: os.stat(root / p).st_size for p in rel_paths}
    except OSError as exc:
        raise InputError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    order = sorted(rel_paths, key=lambda p: -sizes[p])
    lock = threading.Lock()

    def locked_progress(n: int) -> None:
        assert progress is not None
        with lock:
            progress(n)

    def one(rel: str) -> FileDigest:
        digest, size = hash_file(root / rel, follow_symlinks=allow_symlinks,
                                 progress=locked_progress if progress else None)
        return FileDigest(rel, digest, size)

    n_workers = workers or max(4, os.cpu_count() or 1)
    files = sorted(_map_threads(one, order, min(n_workers, len(order))),
                   key=lambda f: manifest_sort_key(f.path))
    return Manifest(name=root.resolve().name, files=tuple(files), ignore_paths=ignores,
                    allow_symlinks=allow_symlinks)


def _map_threads(fn: Callable[[str], FileDigest], items: list[str], workers: int
                 ) -> list[FileDigest]:
    """``fn`` over ``items`` on ``workers`` threads (the caller's among them), in order.

    As ``ThreadPoolExecutor.map`` inside a ``with`` block: every item is run,
    then the error of the first failed item (in ``items`` order) is raised.
    Not the executor itself: importing ``concurrent.futures`` (and ``logging``)
    costs about 5 ms, on the way to the first byte hashed.
    """
    results: list[FileDigest | None] = [None] * len(items)
    errors: dict[int, BaseException] = {}
    todo = iter(enumerate(items))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index, item = next(todo, (-1, ""))
            if index < 0:
                return
            try:
                results[index] = fn(item)
            except BaseException as exc:  # re-raised below, as the executor would
                with lock:
                    errors[index] = exc

    helpers = [threading.Thread(target=work, name="mlprov-hash-worker", daemon=True)
               for _ in range(workers - 1)]
    for thread in helpers:
        thread.start()
    try:
        work()
    finally:
        for thread in helpers:
            thread.join()
    if errors:
        raise errors[min(errors)]
    return [r for r in results if r is not None]


@checked(model=PATH, evidence=optional(PATH))
def default_ignore_paths(model: Path | str, evidence: Path | str | None = None
                         ) -> tuple[str, ...]:
    """The paths left out of a model's hash: the git files, and ``evidence`` if inside.

    An evidence directory kept inside the model must not hash itself.

    Example:
        ignore = default_ignore_paths("model/", "model/evidence")
    """
    if evidence is None:
        return DEFAULT_IGNORE_PATHS
    try:
        rel = Path(evidence).resolve().relative_to(Path(model).resolve())
    except ValueError:
        return DEFAULT_IGNORE_PATHS
    return DEFAULT_IGNORE_PATHS + ((rel.as_posix(),) if rel.parts else ())


class _Cancelled(Exception):
    """Raised inside hashing threads once a job is cancelled."""


class HashJob:
    """:func:`hash_path` running in the background, so start-up work overlaps the I/O.

    Without a progress callback, on systems with ``fork``, the hashing runs in a
    forked child process: importing modules, loading keys and building
    statements in the parent then cost no wall time at all, whereas a thread
    would stall behind native code (pydantic-core, cryptography) that holds the
    GIL. With a progress callback it runs in a thread, so the bar can advance.
    Call :meth:`result` for the manifest, or :meth:`cancel` to stop early.
    """

    def __init__(self, path: Path | str, *, ignore_paths: Iterable[str] = DEFAULT_IGNORE_PATHS,
                 allow_symlinks: bool = False, progress: ProgressCallback | None = None) -> None:
        self.ignore_paths = tuple(ignore_paths)
        self.allow_symlinks = allow_symlinks
        self._cancel = threading.Event()
        self._manifest: Manifest | None = None
        self._error: BaseException | None = None
        self._pid: int | None = None
        self._read_fd: int | None = None
        ignore = self.ignore_paths
        if progress is None and hasattr(os, "fork") and threading.active_count() == 1:
            self._start_process(path, ignore, allow_symlinks)
            return

        def checked(n: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            if progress is not None:
                progress(n)

        def run() -> None:
            try:
                self._manifest = hash_path(path, ignore_paths=ignore,
                                           allow_symlinks=allow_symlinks, progress=checked)
            except BaseException as exc:  # handed to the caller by result()
                self._error = exc

        self._thread: threading.Thread | None = threading.Thread(
            target=run, name="mlprov-hash", daemon=True)
        self._thread.start()

    def _start_process(self, path: Path | str, ignore: tuple[str, ...],
                       allow_symlinks: bool) -> None:
        import pickle

        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: hash, send the pickled outcome, exit at once
            code = 0
            try:
                os.close(read_fd)
                try:
                    outcome: tuple[bool, object] = (True, hash_path(
                        path, ignore_paths=ignore, allow_symlinks=allow_symlinks))
                except BaseException as exc:
                    outcome = (False, exc)
                data = pickle.dumps(outcome)
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(data)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_fd)
        self._pid, self._read_fd, self._thread = pid, read_fd, None

    def _collect_process(self) -> None:
        import pickle

        assert self._pid is not None and self._read_fd is not None
        with os.fdopen(self._read_fd, "rb") as pipe:
            data = pipe.read()
        self._read_fd = None
        os.waitpid(self._pid, 0)
        self._pid = None
        try:
            ok, value = pickle.loads(data)  # noqa: S301 - our own child wrote it
        except Exception:
            self._error = InputError("hashing stopped unexpectedly")
            return
        if ok:
            self._manifest = value
        else:
            self._error = value

    def result(self) -> Manifest:
        """Wait for the manifest; re-raise whatever hashing raised."""
        if self._thread is not None:
            self._thread.join()
        elif self._pid is not None:
            self._collect_process()
        if self._error is not None:
            raise self._error
        if self._manifest is None:
            raise InputError("hashing was cancelled")
        return self._manifest

    def cancel(self) -> None:
        """Stop hashing now and wait for it to end (a no-op when it is done)."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()
        elif self._pid is not None:
            import signal

            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
            if self._read_fd is not None:
                os.close(self._read_fd)
                self._read_fd = None
