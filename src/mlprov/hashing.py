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

Speed: the tree is walked once; large files are hashed on a thread pool
(hashlib releases the GIL), largest first, each read once into a reused
buffer, or, in a :class:`HashJob`'s forked child, hashed straight from an
``mmap`` of the file (no copy: about 10% less CPU; see :class:`_Mapped` for
why only there); small files, whose cost is per-file work under the GIL, are hashed one
after another on one thread, or split among forked processes when there are
thousands (see :func:`hash_path`). An opt-in digest cache skips unchanged files.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import os
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

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
from mlprov._internal.digest_cache import DigestCache, Entry
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
#: Files of this size or more are hashed through mmap where that is safe (see _Mapped).
_MAP_FROM = 1 << 20
#: Bytes mapped at a time: bounds the address space used (32-bit systems) and paces
#: progress reports; 64 MiB windows cost the same CPU as mapping the whole file.
_WINDOW = 64 << 20
_SINGLE_FILE_NAME = "."


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One manifest entry: a file's relative path, SHA-256 (hex) and size."""

    path: str
    sha256: str
    size: int

    def __reduce__(self) -> tuple[type[FileDigest], tuple[str, str, int]]:
        # A HashJob child sends 100k of these: the constructor unpickles them about
        # four times faster than the dataclass's generic __setstate__.
        return FileDigest, (self.path, self.sha256, self.size)


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
        object.__setattr__(self, "root", _root_of(f.sha256 for f in self.files))

    @property
    def total_size(self) -> int:
        """Bytes hashed, over all files."""
        return sum(f.size for f in self.files)

    def without(self, ignore_paths: Iterable[str]) -> Manifest:
        """Return this manifest less the files under ``ignore_paths`` (no re-hashing)."""
        extra = [str(PurePosixPath(p)) for p in ignore_paths]
        ignored = _Ignore(extra)
        kept = tuple(f for f in self.files if self.is_file or not ignored(f.path))
        merged = tuple(sorted(set(self.ignore_paths) | set(extra)))
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
    return _root_of(file_digests)


def _root_of(file_digests: Iterable[str]) -> str:
    """:func:`root_digest` without the argument check (for digests already checked)."""
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
    return _safe_relative_path(name)


def _safe_relative_path(name: str) -> str:
    """:func:`check_relative_path` without the argument check (for names already ``str``)."""
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
    digest, size, _entry = _hash_fd(path, progress=progress,
                                    follow_symlinks=follow_symlinks, cache=None)
    return digest, size


class _Ignore:
    """Ignore rules matched on strings, as ``PurePosixPath.is_relative_to`` would.

    Each rule is normalised once the way ``PurePosixPath`` reads it (``a/./b``
    is ``a/b``, a trailing ``/`` goes, ``""`` and ``"."`` cover everything, an
    absolute rule matches no relative path); a relative path is then ignored
    when it equals a rule or starts with a rule and a ``/``.
    """

    __slots__ = ("everything", "exact", "prefixes")

    def __init__(self, rules: Iterable[str], *, normalised: bool = False) -> None:
        """``normalised``: the rules passed :func:`check_relative_path` (nothing to normalise)."""
        normal = set(rules) if normalised else {str(PurePosixPath(r)) for r in rules}
        normal = {r for r in normal if not r.startswith("/")}
        self.everything = "." in normal
        self.exact = frozenset(normal)
        self.prefixes = tuple(sorted(f"{r}/" for r in normal))

    def __call__(self, rel: str) -> bool:
        """Whether ``rel`` (a normalised relative POSIX path) is left out."""
        return self.everything or rel in self.exact or rel.startswith(self.prefixes)


def _is_ignored(rel: PurePosixPath, ignore: Sequence[PurePosixPath]) -> bool:
    """The pathlib rule :class:`_Ignore` implements (kept as its specification)."""
    return any(rel == ig or rel.is_relative_to(ig) for ig in ignore)


def _inside(root_real: str, target: str) -> bool:
    return target == root_real or target.startswith(root_real.rstrip(os.sep) + os.sep)


def _walk(root: Path, ignored: Callable[[str], bool], allow_symlinks: bool,
          root_real: str | None = None) -> list[tuple[str, int]]:
    """List the relative paths and sizes of the regular files under ``root``, checked.

    One pass: the size comes from the same ``lstat`` (``stat`` for a followed
    symlink) that classifies the entry. A followed directory symlink is a loop
    only when it points at one of the directories it sits in; two names for one
    directory (``b -> a``) are not a loop, and each name is listed, as OMS lists them.
    """
    root_real = root_real or os.path.realpath(root)
    found: list[tuple[str, int]] = []
    # (directory, its path relative to root ("" for the root), its real path,
    #  the real paths of it and its ancestors)
    stack: list[tuple[str, str, str, frozenset[str]]] = [
        (str(root), "", root_real, frozenset({root_real}))
    ]
    while stack:
        directory, rel_dir, real_dir, ancestors = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            raise InputError(f"cannot list {directory}: {exc.strerror}") from exc
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if ignored(rel):
                continue
            try:
                if entry.is_symlink():
                    if not allow_symlinks:
                        raise UnsafePathError(
                            f"symlink in model: {rel} (pass --allow-symlinks to follow links "
                            "that stay inside the model)"
                        )
                    target = os.path.realpath(entry.path)
                    if not _inside(root_real, target):
                        raise UnsafePathError(
                            f"symlink leaves the model root: {rel} -> {target}")
                    if os.path.isdir(target):
                        if target in ancestors:
                            raise UnsafePathError(f"symlink loop in model: {rel}")
                        stack.append((entry.path, rel, target, ancestors | {target}))
                    elif os.path.isfile(target):
                        found.append((rel, os.stat(entry.path).st_size))
                    else:
                        raise UnsafePathError(f"symlink to a special or missing file: {rel}")
                elif entry.is_dir(follow_symlinks=False):
                    # Not a symlink: its real path is its parent's plus its name.
                    real = os.path.join(real_dir, entry.name)
                    stack.append((entry.path, rel, real, ancestors | {real}))
                elif entry.is_file(follow_symlinks=False):
                    found.append((rel, entry.stat(follow_symlinks=False).st_size))
                else:
                    raise UnsafePathError(
                        f"special file in model (not a regular file): {rel}")
            except OSError as exc:
                raise InputError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    return found


#: Files smaller than this are "small": per-file work (open, fstat, close, and
#: hashlib keeping the GIL below 2 KiB) outweighs the bytes, so threads only fight.
SMALL_FILE = 64 << 10
#: With at least this many small files (and a spare CPU) they go to forked workers.
POOL_MIN_FILES = 2048
_THREADS_FROM = 8 << 20  # large files start helper threads from this many bytes on
_PROGRESS_EVERY_S = 0.05  # a child reports progress at most this often
_FRAME = struct.Struct("!cQ")  # kind (b"T" total, b"P" progress, b"R" result + length), value


@dataclass(frozen=True, slots=True)
class _Hasher:
    """Hashes files of one tree, each opened with ``O_NOFOLLOW`` (unless links are allowed)."""

    prefix: str  # the root and a "/", or "" (rel paths are then relative to the cwd)
    follow_symlinks: bool
    progress: ProgressCallback | None
    cache: DigestCache | None

    #: :func:`hash_file` as it was when hashing began, undecorated (hash_path checked
    #: the arguments once; tests replace ``hash_file`` to make files fail).
    hash_one: Callable[..., tuple[str, int]]

    def one(self, rel: str) -> tuple[FileDigest, tuple[str, Entry] | None]:
        path = self.prefix + rel
        if self.cache is None:
            digest, size = self.hash_one(path, progress=self.progress,
                                         follow_symlinks=self.follow_symlinks)
            return FileDigest(rel, digest, size), None
        digest, size, entry = _hash_fd(path, progress=self.progress,
                                       follow_symlinks=self.follow_symlinks, cache=self.cache)
        return FileDigest(rel, digest, size), entry


_buffers = threading.local()
# O_NONBLOCK: a FIFO swapped in after the walk must not block open(); fstat refuses it.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _buffer() -> tuple[bytearray, memoryview]:
    """This thread's read buffer: allocating 256 KiB per file would cost more than a small file."""
    pair: tuple[bytearray, memoryview] | None = getattr(_buffers, "pair", None)
    if pair is None:
        buf = bytearray(_CHUNK)
        pair = _buffers.pair = (buf, memoryview(buf))
    return pair


def _hash_fd(path: str | Path, *, progress: ProgressCallback | None,
             follow_symlinks: bool, cache: DigestCache | None
             ) -> tuple[str, int, tuple[str, Entry] | None]:
    """Hash one regular file; consult and feed ``cache`` when given."""
    started = time.time_ns() if cache is not None else 0
    try:
        fd = os.open(path, _OPEN_FLAGS if follow_symlinks else _OPEN_FLAGS | _NOFOLLOW)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    h = hashlib.sha256()
    size = 0
    buf, view = _buffer()
    bufs = [buf]
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"not a regular file: {path}")
        if cache is not None and (hit := cache.lookup(fd, st)) is not None:
            if progress is not None:
                progress(st.st_size)
            return hit[1][4], st.st_size, hit  # kept: the saved cache holds this run's files
        mapping = _mapping
        if mapping is not None and st.st_size >= _MAP_FROM:
            size = _hash_mapped(mapping, fd, str(path), st.st_size, h, progress)
            if size:
                os.lseek(fd, size, os.SEEK_SET)  # a file that grew meanwhile: read the rest
        while n := os.readv(fd, bufs):
            h.update(view[:n])
            size += n
            if progress is not None:
                progress(n)
        digest = h.hexdigest()
        entry = (DigestCache.entry(fd, st, size, digest, started)
                 if cache is not None else None)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return digest, size, entry


class _Mapped:
    """The files a forked hashing child has mapped right now, in memory its parent shares.

    Reading a mapped file that has shrunk (another process truncated it) or whose
    FUSE/NFS server fails raises SIGBUS, which kills the process: Python cannot
    catch it. So files are mapped only in :class:`HashJob`'s forked child, and
    while a file is mapped its path sits in a slot of this shared memory: when the
    child dies of a signal, the parent names the file(s) in a clean
    :class:`InputError`. A thread that finds no free slot reads its file instead.
    """

    SLOTS = 64
    SLOT = 4096  # a 2-byte length, then the path's bytes (cut to fit)

    def __init__(self) -> None:
        import mmap

        # Anonymous and MAP_SHARED (mmap's default): the child's writes reach the parent.
        self.memory = mmap.mmap(-1, self.SLOTS * self.SLOT)
        self.free = list(range(self.SLOTS - 1, -1, -1))
        self.lock = threading.Lock()

    def claim(self, path: str) -> int:
        """Record ``path`` as mapped; its slot, or -1 when none is free."""
        with self.lock:
            if not self.free:
                return -1
            slot = self.free.pop()
        name = os.fsencode(path)[:self.SLOT - 2]
        start = slot * self.SLOT
        self.memory[start + 2:start + 2 + len(name)] = name
        self.memory[start:start + 2] = len(name).to_bytes(2, "big")
        return slot

    def release(self, slot: int) -> None:
        start = slot * self.SLOT
        self.memory[start:start + 2] = b"\0\0"
        with self.lock:
            self.free.append(slot)

    def names(self) -> list[str]:
        """The paths still recorded (read by the parent once the child is gone)."""
        found = []
        for slot in range(self.SLOTS):
            start = slot * self.SLOT
            length = int.from_bytes(self.memory[start:start + 2], "big")
            if 0 < length <= self.SLOT - 2:
                found.append(os.fsdecode(self.memory[start + 2:start + 2 + length]))
        return found

    def close(self) -> None:
        self.memory.close()


#: Set only in a HashJob's forked child (whose death by a signal its parent reports):
#: the one place files are mapped.
_mapping: _Mapped | None = None
#: Tests only: called with the fd and path after each window is mapped, before it is read.
_after_map: Callable[[int, str], None] | None = None


def _changed_while_hashed(paths: Sequence[str]) -> InputError:
    named = paths[0] if len(paths) == 1 else "one of " + ", ".join(paths)
    return InputError(
        f"{named} changed or could not be read while it was hashed "
        "(truncated by another process, or its filesystem failed)",
        hint="make sure nothing writes to the model while mlprov reads it and that its "
             "filesystem is reachable, then run again")


def _hash_mapped(mapping: _Mapped, fd: int, path: str, size: int, h: Any,
                 progress: ProgressCallback | None) -> int:
    """Feed ``h`` the first ``size`` bytes of ``fd`` through mmap, a window at a time.

    Returns the bytes hashed: fewer (0: none) when mmap refuses the file (a
    filesystem without mmap, a file already shorter than ``size``) or no slot is
    free; the caller reads the rest. A file found shorter afterwards is an error:
    its last page may have read as zeros that were never in it.
    """
    import mmap

    slot = mapping.claim(path)
    if slot < 0:
        return 0
    done = 0
    try:
        while done < size:
            n = min(_WINDOW, size - done)
            try:
                window = mmap.mmap(fd, n, prot=mmap.PROT_READ, offset=done)
            except (OSError, ValueError, OverflowError):
                break  # ENODEV, or the file shrank since fstat: read from here on
            try:
                if hasattr(window, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                    window.madvise(mmap.MADV_SEQUENTIAL)  # read ahead (cold files)
                if _after_map is not None:
                    _after_map(fd, path)
                h.update(window)
            finally:
                window.close()
            done += n
            if progress is not None:
                progress(n)
        if done and os.fstat(fd).st_size < done:
            raise _changed_while_hashed([path])
    finally:
        mapping.release(slot)
    return done


@checked(path=PATH, ignore_paths=STRINGS, allow_symlinks=BOOL,
         workers=optional(int_in(1, 1024)), progress=CALLBACK, on_total=CALLBACK,
         cache=optional(PATH))
def hash_path(
    path: Path | str,
    *,
    ignore_paths: Iterable[str] = DEFAULT_IGNORE_PATHS,
    allow_symlinks: bool = False,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    on_total: ProgressCallback | None = None,
    cache: Path | str | None = None,
) -> Manifest:
    """Hash a model file or directory into a :class:`Manifest`.

    Example:
        manifest = mlprov.hash_path("model/")
        print(manifest.root)    # the OMS root digest, hex

    How: the tree is walked once (sizes come with it). Files of
    :data:`SMALL_FILE` or more are streamed on a thread pool (hashlib releases
    the GIL); smaller ones are hashed one after the other on the calling thread
    or, when there are many and a spare CPU, split among forked worker processes.

    Args:
        path: the model: one file, or a directory tree.
        ignore_paths: paths relative to the model root to leave out (directories
            cover everything below them). Ignored for a single-file model.
        allow_symlinks: follow symlinks that stay inside the model root.
        workers: hashing threads for large files (default: at least 4, to overlap
            I/O); ``1`` also keeps small files on the calling thread.
        progress: called with byte counts as they are hashed.
        on_total: called once, before hashing, with the bytes to hash.
        cache: an opt-in digest cache directory (see ``docs/digest-cache.md``):
            unchanged files (same device, inode, size, mtime, ctime, first and
            last 4 KiB) are not read again. It trusts the filesystem's metadata;
            never pass it for files someone else may have written.

    Raises:
        InputError: the path is missing, unreadable or an empty directory, or
            the cache directory is not private.
        UnsafePathError: a symlink, special file or ignore path is unsafe.
    """
    root = Path(path)
    try:  # one lstat (and a stat through an allowed link) instead of pathlib's three
        st: os.stat_result | None = os.lstat(root)
        if st is not None and stat.S_ISLNK(st.st_mode):
            if not allow_symlinks:
                raise UnsafePathError(
                    f"model path is a symlink: {root} (pass --allow-symlinks)")
            st = os.stat(root)
    except (OSError, ValueError):
        st = None  # missing, a dangling link, or unreadable: as pathlib's is_file()/is_dir()
    if st is not None and stat.S_ISREG(st.st_mode):
        digests = DigestCache.open(cache, root) if cache is not None else None
        if on_total is not None:
            on_total(st.st_size)
        digest, size, entry = _hash_fd(root, progress=progress,
                                       follow_symlinks=allow_symlinks, cache=digests)
        if digests is not None:
            if entry is not None:
                digests.add(*entry)
            digests.save()
        return Manifest(name=root.name, files=(FileDigest(_SINGLE_FILE_NAME, digest, size),),
                        allow_symlinks=allow_symlinks, is_file=True)
    if st is None or not stat.S_ISDIR(st.st_mode):
        if st is not None:  # a FIFO, socket or device: never opened (a FIFO would block)
            raise UnsafePathError(f"not a regular file or directory: {root}")
        raise InputError(f"no such file or directory: {root}")
    # Each is a str (checked above): the unchecked test, as every file name's.
    ignores = tuple(sorted({_safe_relative_path(p.rstrip("/")) for p in ignore_paths}))
    return hash_directory(root, ignores=ignores, allow_symlinks=allow_symlinks,
                          root_real=os.path.realpath(root), workers=workers, progress=progress,
                          on_total=on_total, cache=cache)


def hash_directory(
    root: Path,
    *,
    ignores: tuple[str, ...],
    allow_symlinks: bool,
    root_real: str,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    on_total: ProgressCallback | None = None,
    cache: Path | str | None = None,
) -> Manifest:
    """:func:`hash_path` of a directory, for callers that already hold what it derives.

    Internal (not in ``__all__``): no argument checks; ``ignores`` must be
    sorted, unique and checked (:func:`check_relative_path`, no trailing
    ``/``) and ``root_real`` the real path of ``root``. :mod:`mlprov.lineage`
    hashes a thousand small models in a walk and knows both already.

    Raises:
        InputError, UnsafePathError: as :func:`hash_path`.
    """
    listed = _walk(root, _Ignore(ignores, normalised=True), allow_symlinks, root_real)
    if not listed:
        raise InputError(f"model directory holds no files to hash: {root}",
                         hint="point at the directory that holds the model's files")
    digests = DigestCache.open(cache, root) if cache is not None else None
    if on_total is not None:
        on_total(sum(size for _rel, size in listed))
    listed.sort(key=lambda item: -item[1])
    lock = threading.Lock()

    def locked_progress(n: int) -> None:
        assert progress is not None
        with lock:
            progress(n)

    # What os.path.join(root, rel) would prefix ("" for "."; "/" for the root itself).
    prefix = "" if str(root) == "." else os.path.join(str(root), "")
    hasher = _Hasher(prefix, allow_symlinks, locked_progress if progress else None, digests,
                     getattr(hash_file, "__wrapped__", hash_file))
    n_workers = workers or max(4, _cpus())
    results, entries = _hash_all(hasher, listed, n_workers)
    if digests is not None:
        for key, new in entries:
            digests.add(key, new)
        digests.save()
    # manifest_sort_key's order, faster: NUL (never in a name) sorts below every character,
    # so comparing with "/" as NUL compares part by part.
    files = sorted(results, key=lambda f: f.path.replace("/", "\x00"))
    return Manifest(name=os.path.basename(root_real), files=tuple(files), ignore_paths=ignores,
                    allow_symlinks=allow_symlinks)


@functools.cache
def _cpus() -> int:
    """``os.cpu_count()``, asked once: it reads ``/sys`` (about 8 µs), twice per model hashed."""
    return os.cpu_count() or 1


def _hash_all(hasher: _Hasher, listed: list[tuple[str, int]], workers: int
              ) -> tuple[list[FileDigest], list[tuple[str, Entry]]]:
    """Hash ``listed`` (largest first), adapting to the sizes; errors as an executor's.

    Large files go to ``workers`` threads. Small files stay on the calling
    thread, or, when there are :data:`POOL_MIN_FILES` or more, a spare CPU and
    ``fork`` (and no other thread that a fork could freeze mid-lock), are dealt
    round-robin to forked children, the calling thread taking one share. Every
    file is hashed, then the error of the first failed file (in ``listed``
    order) is raised.
    """
    first_small = next((i for i, (_r, size) in enumerate(listed) if size < SMALL_FILE),
                       len(listed))
    small = list(range(first_small, len(listed)))
    results: list[FileDigest | None] = [None] * len(listed)
    errors: dict[int, BaseException] = {}
    entries: list[tuple[str, Entry]] = []
    cpus = _cpus()
    shares = min(cpus, len(small) // (POOL_MIN_FILES // 2) or 1) if workers > 1 else 1
    children: list[_Child] = []
    try:  # the finally below stops every child started, whatever fails after it
        if (shares > 1 and len(small) >= POOL_MIN_FILES and hasattr(os, "fork")
                and threading.active_count() == 1):
            for k in range(1, shares):
                children.append(_Child.start(hasher, listed, small[k::shares]))
            small = small[0::shares]
        readers = [c.read_in_thread(hasher.progress) for c in children
                   if hasher.progress is not None]
        _run_threads(hasher, listed, list(range(first_small)), small, workers,
                     results, errors, entries)
        for reader in readers:
            reader.join()
        for child in children:
            child.collect(results, errors, entries)
    finally:
        for child in children:
            child.kill()
    if errors:
        raise errors[min(errors)]
    return [r for r in results if r is not None], entries


def _run_threads(hasher: _Hasher, listed: list[tuple[str, int]], large: list[int],
                 small: list[int], workers: int, results: list[FileDigest | None],
                 errors: dict[int, BaseException], entries: list[tuple[str, Entry]]) -> None:
    """Large files on ``workers`` threads (the caller's among them); small ones on the caller.

    Not ``concurrent.futures``: importing it (and ``logging``) costs about 5 ms,
    on the way to the first byte hashed.
    """
    todo = iter(large)
    lock = threading.Lock()

    def run(indices: Iterable[int]) -> None:
        for index in indices:
            try:
                results[index], entry = hasher.one(listed[index][0])
                if entry is not None:
                    entries.append(entry)  # list.append is atomic under the GIL
            except BaseException as exc:  # re-raised by the caller, as an executor would
                with lock:
                    errors[index] = exc

    def next_large() -> Iterable[int]:
        while True:
            with lock:
                index = next(todo, -1)
            if index < 0:
                return
            yield index

    def helper() -> None:
        run(next_large())

    # Starting a thread costs more than hashing a few MiB: below that, the caller does it all.
    large_bytes = sum(listed[i][1] for i in large)
    count = min(workers, len(large)) - (0 if small else 1) if large_bytes >= _THREADS_FROM else 0
    helpers = [threading.Thread(target=helper, name="mlprov-hash-worker", daemon=True)
               for _ in range(count)]
    for thread in helpers:
        thread.start()
    try:
        run(small)
        run(next_large())
    finally:
        for thread in helpers:
            thread.join()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from a pipe, or None at end of file."""
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frames(fd: int, progress: ProgressCallback | None,
                 on_total: ProgressCallback | None,
                 stop: threading.Event | None = None) -> bytes | None:
    """Read a child's frames: report progress and total, return its result (None: died)."""
    while (head := _read_exact(fd, _FRAME.size)) is not None:
        kind, value = _FRAME.unpack(head)
        if kind == b"R":
            return _read_exact(fd, value)
        if stop is not None and stop.is_set():
            continue
        if kind == b"P" and progress is not None:
            progress(value)
        elif kind == b"T" and on_total is not None:
            on_total(value)
    return None


class _Reporter:
    """A forked child's progress, sent to the parent in frames at most every 50 ms."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = 0
        self.last = 0.0

    def __call__(self, n: int) -> None:
        self.pending += n
        now = time.monotonic()
        if now - self.last >= _PROGRESS_EVERY_S:
            self.flush()
            self.last = now

    def total(self, n: int) -> None:
        _write_all(self.fd, _FRAME.pack(b"T", n))

    def flush(self) -> None:
        if self.pending:
            _write_all(self.fd, _FRAME.pack(b"P", self.pending))
            self.pending = 0

    def result(self, outcome: tuple[bool, object]) -> None:
        self.flush()
        data = _encode_outcome(outcome)
        _write_all(self.fd, _FRAME.pack(b"R", len(data)) + data)


def _encode_outcome(outcome: tuple[bool, Any]) -> bytes:
    """A child's outcome for its parent: ``m`` + marshal, or ``p`` + pickle.

    A result is plain data (str, bytes, int, bool, tuples, lists): marshal holds
    it, is built in (no module to import in the child or the parent) and is
    faster. Only what marshal refuses, exceptions, goes through pickle.
    """
    try:
        return b"m" + marshal.dumps(outcome)
    except ValueError:  # an exception (or anything else but plain data)
        import pickle

        return b"p" + pickle.dumps(outcome)


def _decode_outcome(data: bytes | None) -> Any:
    """What :func:`_encode_outcome` wrote, read back; ``(False, None)`` if the child died.

    Only ever bytes our own forked child wrote into a private pipe (never input).
    """
    if data is None:
        return False, None
    body = memoryview(data)[1:]
    if data[:1] == b"m":
        return marshal.loads(body)  # noqa: S302 - our own child wrote it
    if data[:1] == b"p":
        import pickle

        return pickle.loads(body)  # noqa: S301 - our own child wrote it
    return False, None


def _in_child(read_fd: int, write_fd: int, work: Callable[[_Reporter], object]) -> NoReturn:
    """In a forked child: run ``work``, send its outcome (or its error), exit at once."""
    code = 0
    try:
        os.close(read_fd)
        reporter = _Reporter(write_fd)
        try:
            outcome: tuple[bool, object] = (True, work(reporter))
        except BaseException as exc:
            outcome = (False, exc)
        reporter.result(outcome)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


class _Child:
    """A forked worker hashing a share of the small files."""

    def __init__(self, pid: int, fd: int, share: list[int], listed: list[tuple[str, int]]
                 ) -> None:
        self.pid: int | None = pid
        self.fd: int | None = fd
        self.share = share
        self.listed = listed
        self.data: bytes | None = None
        self.reader: threading.Thread | None = None

    @classmethod
    def start(cls, hasher: _Hasher, listed: list[tuple[str, int]], share: list[int]) -> _Child:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            global _mapping
            _mapping = None  # only a HashJob child maps: its parent reports a SIGBUS

            def work(reporter: _Reporter) -> object:
                mine = _Hasher(hasher.prefix, hasher.follow_symlinks,
                               reporter if hasher.progress is not None else None, hasher.cache,
                               hasher.hash_one)
                done: list[tuple[int, str, int]] = []
                failed: dict[int, BaseException] = {}
                made: list[tuple[str, Entry]] = []
                for index in share:
                    try:
                        digest, entry = mine.one(listed[index][0])
                        done.append((index, digest.sha256, digest.size))
                        if entry is not None:
                            made.append(entry)
                    except BaseException as exc:
                        failed[index] = exc
                return done, failed, made

            _in_child(read_fd, write_fd, work)
        os.close(write_fd)
        return cls(pid, read_fd, share, listed)

    def read_in_thread(self, progress: ProgressCallback | None) -> threading.Thread:
        def read() -> None:
            assert self.fd is not None
            self.data = _read_frames(self.fd, progress, None)

        self.reader = threading.Thread(target=read, name="mlprov-hash-reader", daemon=True)
        self.reader.start()
        return self.reader

    def collect(self, results: list[FileDigest | None], errors: dict[int, BaseException],
                entries: list[tuple[str, Entry]]) -> None:
        assert self.fd is not None
        value: Any
        data = self.data if self.data is not None else _read_frames(self.fd, None, None)
        os.close(self.fd)
        self.fd = None
        if self.pid is not None:
            os.waitpid(self.pid, 0)
            self.pid = None
        try:
            ok, value = _decode_outcome(data)
        except Exception:
            ok, value = False, None
        if not ok:
            error = value if isinstance(value, BaseException) else InputError(
                "a hashing worker stopped unexpectedly")
            errors.setdefault(min(self.share), error)
            return
        done, failed, made = value
        for index, digest, size in done:
            results[index] = FileDigest(self.listed[index][0], digest, size)
        errors.update(failed)
        entries.extend(made)

    def kill(self) -> None:
        """Stop the child if it still runs (the caller failed); a no-op once collected."""
        if self.pid is not None:
            import contextlib
            import signal

            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
        if self.reader is not None:
            self.reader.join()  # the pipe is at its end now the child is gone
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


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


_Packed = tuple[str, tuple[str, ...], bool, bool, list[str], bytes, list[int]]


def _pack(manifest: Manifest) -> _Packed:
    """A manifest as a few flat values: a 100k-file manifest is sent in a tenth of the time."""
    return (manifest.name, manifest.ignore_paths, manifest.allow_symlinks, manifest.is_file,
            [f.path for f in manifest.files],
            b"".join(bytes.fromhex(f.sha256) for f in manifest.files),
            [f.size for f in manifest.files])


def _unpack(packed: _Packed) -> Manifest:
    name, ignore_paths, allow_symlinks, is_file, paths, digests, sizes = packed
    files = tuple(FileDigest(p, digests[32 * i:32 * i + 32].hex(), size)
                  for i, (p, size) in enumerate(zip(paths, sizes, strict=True)))
    return Manifest(name=name, files=files, ignore_paths=ignore_paths,
                    allow_symlinks=allow_symlinks, is_file=is_file)


class _Cancelled(InputError):
    """Raised once a job is cancelled (inside hashing threads, and by :meth:`HashJob.result`)."""

    def __init__(self, message: str = "hashing was cancelled") -> None:
        super().__init__(message)


class HashJob:
    """:func:`hash_path` running in the background, so start-up work overlaps the I/O.

    On systems with ``fork`` (and no other thread running), the hashing runs in
    a forked child process, with or without a progress callback: importing
    modules, loading keys and building statements in the parent then cost no
    wall time at all, whereas a thread would stall behind native code
    (pydantic-core, cryptography) that holds the GIL. The child sends the total
    and the progress (at most every 50 ms) over a pipe; a thread of the parent,
    asleep in ``read`` between messages, hands them to the callbacks. Elsewhere
    it runs in a thread. Call :meth:`result` for the manifest, or :meth:`cancel`
    to stop early.

    Only the forked child hashes large files through ``mmap`` (no copy into a
    buffer): a file truncated while mapped kills it with SIGBUS, and
    :meth:`result` then raises an :class:`~mlprov.errors.InputError` naming the file.
    """

    def __init__(self, path: Path | str, *, ignore_paths: Iterable[str] = DEFAULT_IGNORE_PATHS,
                 allow_symlinks: bool = False, progress: ProgressCallback | None = None,
                 on_total: ProgressCallback | None = None,
                 cache: Path | str | None = None) -> None:
        self.ignore_paths = tuple(ignore_paths)
        self.allow_symlinks = allow_symlinks
        self._cancel = threading.Event()
        self._manifest: Manifest | None = None
        self._error: BaseException | None = None
        self._pid: int | None = None
        self._read_fd: int | None = None
        self._data: bytes | None = None
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._mapping: _Mapped | None = None
        ignore = self.ignore_paths
        if hasattr(os, "fork") and threading.active_count() == 1:
            self._start_process(path, ignore, allow_symlinks, progress, on_total, cache)
            return

        def checked(n: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            if progress is not None:
                progress(n)

        def run() -> None:
            try:
                self._manifest = hash_path(path, ignore_paths=ignore,
                                           allow_symlinks=allow_symlinks, progress=checked,
                                           on_total=on_total, cache=cache)
            except BaseException as exc:  # handed to the caller by result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="mlprov-hash", daemon=True)
        self._thread.start()

    def _start_process(self, path: Path | str, ignore: tuple[str, ...], allow_symlinks: bool,
                       progress: ProgressCallback | None, on_total: ProgressCallback | None,
                       cache: Path | str | None) -> None:
        try:
            mapping: _Mapped | None = _Mapped()
        except OSError:  # no shared memory to name a failed file in: the child reads
            mapping = None
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: hash, send the outcome, exit at once
            global _mapping
            _mapping = mapping  # here a SIGBUS kills only this child, and the parent says why
            os.setpgid(0, 0)  # its own group: cancel() stops its small-file workers too

            def work(reporter: _Reporter) -> object:
                return _pack(hash_path(path, ignore_paths=ignore, allow_symlinks=allow_symlinks,
                                       progress=reporter if progress is not None else None,
                                       on_total=reporter.total if on_total is not None else None,
                                       cache=cache))

            _in_child(read_fd, write_fd, work)
        with contextlib.suppress(OSError):  # either side may win the race; both try
            os.setpgid(pid, pid)
        os.close(write_fd)
        self._pid, self._read_fd, self._mapping = pid, read_fd, mapping
        if progress is not None or on_total is not None:
            def read() -> None:
                self._data = _read_frames(read_fd, progress, on_total, self._cancel)

            self._reader = threading.Thread(target=read, name="mlprov-hash-progress",
                                            daemon=True)
            self._reader.start()

    def _collect_process(self) -> None:
        assert self._pid is not None and self._read_fd is not None
        if self._reader is not None:
            self._reader.join()
            data = self._data
        else:
            data = _read_frames(self._read_fd, None, None)
        os.close(self._read_fd)
        self._read_fd = None
        _pid, status = os.waitpid(self._pid, 0)
        self._pid = None
        mapped = self._mapping.names() if self._mapping is not None else []
        self._close_mapping()
        value: Any
        try:
            ok, value = _decode_outcome(data)
        except Exception:
            ok, value = False, None
        if ok:
            self._manifest = _unpack(value)
        elif isinstance(value, BaseException):
            self._error = value
        elif os.WIFSIGNALED(status):
            import signal

            number = os.WTERMSIG(status)
            if mapped and number == getattr(signal, "SIGBUS", None):  # a mapped file failed
                self._error = _changed_while_hashed(mapped)
            else:  # the OOM killer, or someone's kill
                try:
                    name = signal.Signals(number).name
                except ValueError:
                    name = f"signal {number}"
                self._error = InputError(
                    f"hashing stopped unexpectedly: killed by {name}",
                    hint="run again; if it happens again, check the memory limits (the OOM "
                         "killer) and what else signals this process group")
        else:
            self._error = InputError("hashing stopped unexpectedly")

    def _close_mapping(self) -> None:
        if self._mapping is not None:
            self._mapping.close()
            self._mapping = None

    def result(self) -> Manifest:
        """Wait for the manifest; re-raise whatever hashing raised."""
        if self._thread is not None:
            self._thread.join()
        elif self._pid is not None:
            self._collect_process()
        if self._error is not None:
            raise self._error
        if self._manifest is None:
            raise _Cancelled
        return self._manifest

    def cancel(self) -> None:
        """Stop hashing now and wait for it to end (a no-op when it is done)."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()
        elif self._pid is not None:
            import signal

            with contextlib.suppress(OSError):
                os.killpg(self._pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
            self._close_mapping()
            if self._reader is not None:
                self._reader.join()
            if self._read_fd is not None:
                os.close(self._read_fd)
                self._read_fd = None
