"""An opt-in cache of per-file SHA-256 digests, so re-verifying an unchanged model is cheap.

What it trusts: the filesystem's metadata. An entry is keyed by the file's
``(st_dev, st_ino)`` and holds ``st_size``, ``st_mtime_ns``, ``st_ctime_ns``, a
*guard* (SHA-256 of the file's first and last 4 KiB) and the digest. A cached
digest is used only when all five stat fields match the open file (``fstat``
on the descriptor the hashing code opened with ``O_NOFOLLOW``) *and* the guard
recomputed from that descriptor matches. So:

* a rewrite, truncation or append changes the size or the ctime; ``ctime`` cannot
  be set from user space (``utime`` sets it to *now*), so a writer who restores
  the mtime (``touch -r``) still changes it;
* a file swapped in by ``rename`` has another inode (and a fresh ctime);
* a file of at most 8 KiB is covered by its guard entirely; a larger file's
  header and footer (safetensors' JSON header, a zip's central directory) too;
* an entry is only written when the file did not change while it was read (its
  stat before and after agree, and the bytes read equal its size), and when its
  mtime and ctime are older than :data:`RACY_NS` before the read began: a write
  in the same coarse timestamp tick as the hash (the "racy git" problem) would
  otherwise leave metadata that matches different contents.

What defeats it: whoever can set a file's ctime (root changing the clock, raw
writes to the block device, a network or FUSE filesystem whose server reports
made-up metadata) and leave the first and last 4 KiB alone can make a changed
file pass. That is why the cache is off by default, per user (a 0700 directory
owned by the caller), and never used for registry blobs (``pull``/``load``).

Format: one JSON file per model root (named by the SHA-256 of its real path),
``{"schema": SCHEMA, "entries": {"dev:ino": [size, mtime_ns, ctime_ns, guard, sha256]}}``,
read with a size bound, written atomically (temporary file, then rename), mode
0600. An unreadable or foreign file is ignored (everything is hashed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mlprov.errors import InputError

SCHEMA = "https://mlprov.dev/schemas/digest-cache/v1"
GUARD_BYTES = 4096
#: Entries are recorded only for files whose mtime and ctime are this much older than
#: the read: covers coarse kernel clocks (a jiffy) and 1-2 s timestamp filesystems.
RACY_NS = 2_000_000_000
#: A cache file larger than this is not read (bounded reads; about 2M entries).
MAX_CACHE_BYTES = 256 << 20

Entry = tuple[int, int, int, str, str]  # size, mtime_ns, ctime_ns, guard hex, sha256 hex


def guard(fd: int, size: int) -> str:
    """SHA-256 over the first and last :data:`GUARD_BYTES` of an open file (all of it if small)."""
    h = hashlib.sha256()
    h.update(os.pread(fd, GUARD_BYTES, 0))
    if size > GUARD_BYTES:
        h.update(os.pread(fd, GUARD_BYTES, max(GUARD_BYTES, size - GUARD_BYTES)))
    return h.hexdigest()


def _key(st: os.stat_result) -> str | None:
    """The entry key, or None when the filesystem does not give a usable identity."""
    if not st.st_ino or not stat.S_ISREG(st.st_mode):
        return None
    return f"{st.st_dev}:{st.st_ino}"


def _meta(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def private_directory(directory: Path | str) -> Path:
    """``directory`` (created 0700 if missing), checked to be the caller's own, private.

    Raises:
        InputError: not POSIX, not a directory, or not owned by the caller with mode 0700.
    """
    if os.name != "posix":
        raise InputError("the digest cache needs a POSIX filesystem (device, inode, ctime)")
    directory = Path(directory)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(directory)
    except OSError as exc:
        raise InputError(f"cannot use cache directory {directory}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"cache directory is not a directory: {directory}")
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise InputError(f"cache directory {directory} must be owned by you with mode 0700",
                         hint=f"chmod 700 {directory}, or pick another --cache directory")
    return directory


def read_private(path: Path, limit: int) -> bytes | None:
    """The bytes of the caller's own regular file ``path`` (no symlink), or None.

    None too when it is larger than ``limit`` or cannot be read: a cache file that
    is not usable is ignored, never trusted.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def write_private(path: Path, document: object) -> None:
    """Write ``document`` as JSON to ``path`` atomically (a 0600 temporary file, renamed).

    A cache that cannot be written only costs time: failures are ignored.
    """
    try:
        import tempfile  # only when a cache is written (opt-in)

        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(document, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@dataclass
class DigestCache:
    """The entries of one model root, loaded from and saved to ``path``."""

    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    used: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def open(cls, directory: Path | str, model: Path | str) -> DigestCache:
        """Load the cache of ``model`` from ``directory`` (created 0700 if missing).

        Raises:
            InputError: the directory is not a private directory of the current user.
        """
        directory = private_directory(directory)
        name = hashlib.sha256(os.fsencode(os.path.realpath(model))).hexdigest()[:32]
        cache = cls(directory / f"{name}.json")
        cache.entries = cache._load()
        return cache

    def _load(self) -> dict[str, Entry]:
        data = read_private(self.path, MAX_CACHE_BYTES)
        if data is None:
            return {}
        try:
            doc = json.loads(data)
        except ValueError:
            return {}
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA \
                or not isinstance(doc.get("entries"), dict):
            return {}
        entries: dict[str, Entry] = {}
        for key, value in doc["entries"].items():
            if (isinstance(value, list) and len(value) == 5
                    and all(type(v) is int for v in value[:3])
                    and all(isinstance(v, str) and len(v) == 64 for v in value[3:])):
                entries[key] = (value[0], value[1], value[2], value[3], value[4])
        return entries

    def lookup(self, fd: int, st: os.stat_result) -> tuple[str, Entry] | None:
        """The cache entry (key, entry) for the open file ``fd`` (``st`` its fstat), or None.

        The digest is ``entry[4]``. Hand the pair to :meth:`add` (in the process
        that saves the cache) to keep it.
        """
        key = _key(st)
        entry = self.entries.get(key) if key else None
        if entry is None or entry[:3] != _meta(st):
            return None
        try:
            if guard(fd, st.st_size) != entry[3]:
                return None
        except OSError:
            return None
        assert key is not None
        return key, entry

    @staticmethod
    def entry(fd: int, before: os.stat_result, size_read: int, digest: str,
              started_ns: int) -> tuple[str, Entry] | None:
        """A new entry for a file just hashed, or None when it may not be cached."""
        key = _key(before)
        if key is None or size_read != before.st_size:
            return None
        if max(before.st_mtime_ns, before.st_ctime_ns) > started_ns - RACY_NS:
            return None
        try:
            after = os.fstat(fd)
            if (after.st_dev, after.st_ino, *_meta(after)) != (before.st_dev, before.st_ino,
                                                               *_meta(before)):
                return None
            return key, (*_meta(before), guard(fd, size_read), digest)
        except OSError:
            return None

    def add(self, key: str, entry: Entry) -> None:
        """Keep an entry found or made in this run (saved by :meth:`save`)."""
        self.used[key] = entry

    def save(self) -> None:
        """Write the entries used or made in this run, atomically (others are dropped)."""
        if self.used == self.entries:
            return
        doc = {"schema": SCHEMA, "entries": {k: list(v) for k, v in self.used.items()}}
        write_private(self.path, doc)
