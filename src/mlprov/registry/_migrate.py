"""Move a registry to another backend with its whole history (``mlprov registry migrate``).

Embedded (SQLite + local blobs) to team (PostgreSQL + S3) and back, or between
two of a kind. Nothing is re-signed: the copy is the same registry (same id,
key, decisions, audit chain and checkpoints), so everything it holds still
verifies with the registry's own public key, which the copy is checked against:

1. the source must verify first (a broken registry is not copied on);
2. every blob is copied, checked against its digest on the way (blobs first:
   rows never name a blob the target lacks);
3. every row is copied in one transaction into the target's fresh schema;
4. the copy is verified before success is reported: its signed head and audit
   log (``audit verify``) with the source's public key, the same head, every
   blob read back and hashed, every blob the metadata names present.

A failure leaves no usable half-registry: an embedded target directory made
here is removed; a team target's rows are all or nothing (copied blobs are
harmless garbage for ``registry gc``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from mlprov.errors import InputError, MlprovError
from mlprov.registry._core import Registry
from mlprov.registry._gc import referenced_blobs
from mlprov.registry._home import CONFIG_FILE, DB_FILE, KEY_FILE, write_file_atomically
from mlprov.registry._location import (
    BLOBS_STATE,
    PUBLIC_KEY_STATE,
    RegistryLocation,
    open_blob_store,
)
from mlprov.registry._setup import pin_public_key
from mlprov.registry._sql import SqlMetadataStore, sqlite_url
from mlprov.registry._sqlite import SqliteMetadataStore
from mlprov.registry.interface import BlobStore, RegistryError

__all__ = ["MigrationReport", "migrate_registry"]

_SMALL_BLOB = 8 << 20


@dataclass(frozen=True)
class MigrationReport:
    """What was copied and checked."""

    source: str
    target: str
    blobs: int
    blob_bytes: int
    rows: dict[str, int]
    head_seq: int
    verified: bool

    def to_json_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "blobs": self.blobs,
                "blobBytes": self.blob_bytes, "rows": dict(self.rows),
                "headSeq": self.head_seq, "verified": self.verified}


def migrate_registry(source: Registry, to: str | Path, *, blobs: str | None = None,
                     key: Path | str | None = None,
                     progress: Callable[[str], None] | None = None) -> MigrationReport:
    """Copy ``source`` with its whole history to ``to`` and verify the copy.

    Args:
        source: the open registry to copy (it is only read).
        to: a new registry directory, or an empty database URL.
        blobs: the team target's blob store (``s3://BUCKET/PREFIX`` or a shared
            directory); an embedded target keeps its blobs in its directory.
        key: the registry's private key, copied into an embedded target (an
            embedded source's own key is taken by default). A team target never
            stores it.
        progress: called with a line of progress now and then.

    Raises:
        InputError: a bad target (exists, same as the source, blobs missing).
        RegistryIntegrityError, VerificationError: the source or the copy does not verify.
    """
    say = progress or (lambda _message: None)
    target = RegistryLocation.of(to)
    if target.url == source.location.url and (
            target.url is not None or target.home.resolve() == source.home.resolve()):
        raise InputError("the target is the registry being migrated",
                         hint="name another directory or database with --to")
    if target.embedded and blobs is not None:
        raise InputError("--blobs is for a team target (--to DATABASE_URL); an embedded "
                         "registry keeps its blobs in its directory")
    if not target.embedded and blobs is None:
        raise InputError("a team registry needs a blob store",
                         hint="pass --blobs s3://BUCKET/PREFIX (or a shared directory)")
    if target.embedded and (target.home / DB_FILE).exists():
        raise InputError(f"a registry already exists at {target.home}",
                         hint="migrate into a new directory")

    say("verifying the source")
    before = source.verify_audit(sign_checkpoint=False)
    if not before.ok:
        raise RegistryError("the source registry does not verify; nothing was copied: "
                            + "; ".join(before.problems[:3]),
                            hint="run `mlprov audit verify` on it and repair it first")
    public_pem = _public_key(source)
    made_dir = target.embedded and not target.home.exists()
    store: SqlMetadataStore | None = None
    try:
        if target.embedded:
            store, target_blobs = _prepare_embedded(source, target, key, public_pem)
            state: dict[str, str | None] = {BLOBS_STATE: None}
        else:
            assert blobs is not None
            target_blobs = open_blob_store(blobs, home=target.home)
            store = cast(SqlMetadataStore, target.metadata_store())
            state = {BLOBS_STATE: blobs}
            if public_pem is not None:
                state[PUBLIC_KEY_STATE] = public_pem.decode()
        store.create_schema()
        count, size = _copy_blobs(source.blobs, target_blobs, say)
        source_store = source.metadata
        if isinstance(source_store, SqliteMetadataStore):  # an embedded registry's reader
            source_store = source_store.writer
        if not isinstance(source_store, SqlMetadataStore):
            raise RegistryError("this registry's metadata store cannot be migrated")
        say("copying the metadata")
        rows = source_store.copy_rows_to(store, state=state, progress=say)
    except BaseException:
        if store is not None:
            store.close()
        if made_dir:
            shutil.rmtree(target.home, ignore_errors=True)
        raise
    store.close()
    say("verifying the copy")
    if not target.embedded and public_pem is not None:
        target.prepare_cache()
        pin_public_key(target, public_pem)  # the copy must hold the source's key
    with Registry.open(to, key=key) as copy:
        _verify_copy(source, copy, before.head_seq, say)
    return MigrationReport(source=source.location.describe(), target=target.describe(),
                           blobs=count, blob_bytes=size, rows=rows, head_seq=before.head_seq,
                           verified=True)


def _public_key(source: Registry) -> bytes | None:
    """The source's public key (None for a keyless registry)."""
    path = source.location.public_key_file()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(f"cannot read the registry's public key {path}: "
                            f"{exc.strerror}") from exc


def _prepare_embedded(source: Registry, target: RegistryLocation, key: Path | str | None,
                      public_pem: bytes | None) -> tuple[SqlMetadataStore, BlobStore]:
    """The target directory: keys, the pinned mlprov.toml, database and blob store."""
    from mlprov.registry._blobs import LocalBlobStore

    home = target.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "keys").mkdir(exist_ok=True)
        os.chmod(home / "keys", 0o700)
    except OSError as exc:
        raise InputError(f"cannot create the registry at {home}: {exc.strerror}") from exc
    if public_pem is not None:
        private = source.location.key_file(key)
        if private is not None and private.is_file():
            write_file_atomically(home / KEY_FILE, private.read_bytes(), 0o600)
        write_file_atomically(home / KEY_FILE.with_name(KEY_FILE.name + ".pub"), public_pem,
                               0o644)
    write_file_atomically(home / CONFIG_FILE, source.config_text().encode(), 0o644)
    store = SqlMetadataStore(sqlite_url(home / DB_FILE),
                             description=f"registry database {home / DB_FILE}")
    return store, LocalBlobStore(home / "blobs")


def _copy_blobs(source: BlobStore, target: BlobStore,
                say: Callable[[str], None]) -> tuple[int, int]:
    """Copy every blob (digest-checked on read and on write); returns count and bytes."""
    count = size = 0
    with tempfile.TemporaryDirectory(prefix="mlprov-migrate-") as tmp:
        for blob in source.iter_blobs():
            if target.stat(blob.digest) is None:
                if blob.size <= _SMALL_BLOB:
                    target.put_bytes(source.get_bytes(blob.digest, max_size=_SMALL_BLOB))
                else:
                    staged = Path(tmp) / "blob"
                    source.copy_to(blob.digest, staged)
                    target.put_file(staged, expected=blob.digest)
                    staged.unlink()
            count += 1
            size += blob.size
            if count % 500 == 0:
                say(f"copied {count} blobs ({size} bytes)")
    say(f"copied {count} blobs ({size} bytes)")
    return count, size


def _verify_copy(source: Registry, copy: Registry, head_seq: int,
                 say: Callable[[str], None]) -> None:
    """The copy's head, log and blobs, checked with the source's key.

    Raises:
        RegistryError: the copy does not verify (it must not be used).
    """
    problems: list[str] = []
    try:
        report = copy.verify_audit(sign_checkpoint=False)
        problems += report.problems
        head, original = copy.head(anchor=source.anchor), source.head()
        if (head.seq, head.entry_hash) != (original.seq, original.entry_hash) or \
                head.seq < head_seq:
            problems.append(f"the copy's head is entry {head.seq}, the source's {original.seq}")
        wanted = set(source.blobs.iter_digests())
        with tempfile.TemporaryDirectory(prefix="mlprov-migrate-") as tmp:
            for number, digest in enumerate(sorted(wanted), 1):
                probe = Path(tmp) / "probe"
                copy.blobs.copy_to(digest, probe)  # reads every byte, checks the digest
                probe.unlink()
                if number % 500 == 0:
                    say(f"verified {number}/{len(wanted)} blobs")
        with copy.metadata.read() as tx:
            refs, _seq = referenced_blobs(tx, copy.blobs)
        stored = set(copy.blobs.iter_digests())
        for digest in sorted(refs):
            if digest not in stored and source.blobs.stat(digest) is not None:
                problems.append(f"blob {digest} is missing from the copy")
    except MlprovError as exc:
        problems.append(str(exc))
    if problems:
        raise RegistryError(f"the copy at {copy.location.describe()} does not verify: "
                            + "; ".join(problems[:3]),
                            hint="do not use it; remove it and run the migration again")
