"""A content-addressed blob store in a local directory: ``<root>/sha256/<2 hex>/<64 hex>``.

A write streams into ``<root>/tmp/`` while hashing, fsyncs the file, renames
it into place (atomic) and fsyncs the directory, so once ``put_*`` returns the
blob survives a crash. A crash before that leaves only a temporary file, which
nothing names. Blobs are made read-only; every read re-checks the digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlprov.errors import DigestMismatchError, InputError
from mlprov.registry.interface import (
    BlobCorruptError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    StoredBlob,
    StoreError,
    check_digest,
)

__all__ = ["LocalBlobStore"]

_CHUNK = 1 << 18
#: ``MLPROV_REGISTRY_FSYNC=off`` skips fsync, for throwaway registries (tests, CI)
#: only: a crash may then lose or tear what was written. The default is on.
FSYNC_ENV = "MLPROV_REGISTRY_FSYNC"


def fsync_enabled() -> bool:
    """Whether writes are made durable (see :data:`FSYNC_ENV`)."""
    return os.environ.get(FSYNC_ENV, "on").lower() != "off"


#: Never block on a FIFO swapped in for a file, never follow a symlink (the S3 store's
#: uploads open files the same way).
READ_FLAGS = _READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_NOFOLLOW", 0))


def _fsync(fd: int) -> None:
    if fsync_enabled():
        os.fsync(fd)


def _fsync_dir(path: Path) -> None:
    if not fsync_enabled():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore(BlobStore):
    """Blobs as read-only files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"local blob store {root}"
        self._tmp = root / "tmp"
        self._known_dirs: set[str] = set()

    def _path(self, digest: str) -> Path:
        hexdigest = check_digest(digest)[len("sha256:"):]
        return self.root / "sha256" / hexdigest[:2] / hexdigest

    def _ensure_dirs(self, final: Path) -> None:
        parent = final.parent
        if str(parent) in self._known_dirs:
            return
        if not parent.is_dir():
            parent.mkdir(parents=True, exist_ok=True)
            _fsync_dir(parent.parent)
            _fsync_dir(parent.parent.parent)
        self._known_dirs.add(str(parent))

    def _new_temp(self) -> tuple[int, Path]:
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="blob-", dir=self._tmp)
        except OSError as exc:
            raise StoreError(f"cannot write to {self.description}: {exc.strerror}") from exc
        return fd, Path(name)

    def _commit(self, fd: int, temp: Path, digest: str) -> None:
        """Fsync the temp file and move it into place as ``digest``; close ``fd``."""
        final = self._path(digest)
        try:
            os.fchmod(fd, 0o444)
            _fsync(fd)
            os.close(fd)
            fd = -1
            self._ensure_dirs(final)
            if final.exists():
                # Same name, same content (the name is its hash); a damaged copy is
                # found when read. Keep the stored one and drop ours.
                temp.unlink()
                return
            os.replace(temp, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            raise StoreError(f"cannot store blob {digest} in {self.description}: "
                             f"{exc.strerror}") from exc
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data`` durably."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.stat(digest) == len(data):
            return BlobInfo(digest, len(data))
        fd, temp = self._new_temp()
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise StoreError(f"cannot write to {self.description}: {exc.strerror}") from exc
        self._commit(fd, temp, digest)
        return BlobInfo(digest, len(data))

    def put_file(self, path: Path, *, expected: str | None = None) -> BlobInfo:
        """Copy a file in, hashing as it goes; refuses symlinks and special files."""
        try:
            src = os.open(path, _READ_FLAGS)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        fd, temp = self._new_temp()
        h = hashlib.sha256()
        size = 0
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                raise InputError(f"not a regular file: {path}")
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while n := os.readv(src, [buf]):
                h.update(view[:n])
                chunk = view[:n]
                while chunk:
                    chunk = chunk[os.write(fd, chunk):]
                size += n
        except BaseException as exc:
            os.close(fd)
            temp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot copy {path} into {self.description}: "
                                 f"{exc.strerror}") from exc
            raise
        finally:
            os.close(src)
        digest = "sha256:" + h.hexdigest()
        if expected is not None and digest != expected:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise DigestMismatchError(f"{path} changed while it was stored: it is now "
                                      f"{digest}, the evidence signs {expected}")
        self._commit(fd, temp, digest)
        return BlobInfo(digest, size)

    def _open(self, digest: str) -> int:
        try:
            fd = os.open(self._path(digest), _READ_FLAGS)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"blob {digest} is missing from {self.description}") \
                from exc
        except OSError as exc:
            raise StoreError(f"cannot read blob {digest}: {exc.strerror}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device put in its place
            os.close(fd)
            raise BlobCorruptError(f"blob {digest} in {self.description} is not a regular file")
        return fd

    def get_bytes(self, digest: str, *, max_size: int | None = None) -> bytes:
        """Read a blob and check its digest."""
        fd = self._open(digest)
        try:
            size = os.fstat(fd).st_size
            if max_size is not None and size > max_size:
                raise BlobCorruptError(f"blob {digest} is {size} bytes, over the "
                                       f"{max_size}-byte bound for its kind")
            chunks = []
            left = None if max_size is None else max_size + 1  # it may grow while read
            while chunk := os.read(fd, max(size, _CHUNK) if left is None else min(left, _CHUNK)):
                chunks.append(chunk)
                if left is not None:
                    left -= len(chunk)
                    if left <= 0:
                        raise BlobCorruptError(f"blob {digest} grew past the {max_size}-byte "
                                               "bound for its kind")
        except OSError as exc:
            raise StoreError(f"cannot read blob {digest}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise BlobCorruptError(f"blob {digest} in {self.description} does not match "
                                   "its digest")
        return data

    def copy_to(self, digest: str, dest: Path) -> int:
        """Stream a blob into the new file ``dest``, checking the digest."""
        fd = self._open(digest)
        h = hashlib.sha256()
        size = 0
        try:
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot create {dest}: {exc.strerror}") from exc
        try:
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while n := os.readv(fd, [buf]):
                h.update(view[:n])
                chunk = view[:n]
                while chunk:
                    chunk = chunk[os.write(out, chunk):]
                size += n
            _fsync(out)
        except OSError as exc:
            dest.unlink(missing_ok=True)
            raise StoreError(f"cannot copy blob {digest} to {dest}: {exc.strerror}") from exc
        finally:
            os.close(fd)
            os.close(out)
        if "sha256:" + h.hexdigest() != digest:
            dest.unlink(missing_ok=True)
            raise BlobCorruptError(f"blob {digest} in {self.description} does not match "
                                   "its digest")
        return size

    def stat(self, digest: str) -> int | None:
        """The blob's size, or None when absent."""
        try:
            return os.stat(self._path(digest)).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read blob {digest}: {exc.strerror}") from exc

    def iter_digests(self) -> Iterator[str]:
        """Every stored blob's digest (temporary files excluded)."""
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for prefix in sorted(os.listdir(base)):
            for name in sorted(os.listdir(base / prefix)):
                if len(name) == 64 and name.startswith(prefix):
                    yield f"sha256:{name}"

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob with its size and modification time."""
        for digest in self.iter_digests():
            try:
                info = os.stat(self._path(digest))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot read blob {digest}: {exc.strerror}") from exc
            yield StoredBlob(digest, info.st_size, info.st_mtime)

    def delete(self, digest: str) -> bool:
        """Remove a blob (its file is read-only; the directory is ours)."""
        path = self._path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot delete blob {digest} from {self.description}: "
                             f"{exc.strerror}") from exc
        _fsync_dir(path.parent)
        return True

    def clean_partial(self, older_than: float) -> int:
        """Remove temporary files of writers that died before ``older_than``."""
        removed = 0
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StoreError(f"cannot list {self._tmp}: {exc.strerror}") from exc
        for entry in entries:
            try:
                if entry.name.startswith("blob-") and entry.is_file(follow_symlinks=False) \
                        and entry.stat(follow_symlinks=False).st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot remove {entry.path}: {exc.strerror}") from exc
        return removed
