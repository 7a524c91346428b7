"""The registry's pluggable storage: a metadata store and a blob store.

Metadata (names, versions, stages, aliases, the audit log, the event outbox)
and artefact bytes are kept apart behind two abstract interfaces, so that a
PostgreSQL store or an S3 blob store can replace the embedded SQLite database
and local directory without losing history. Nothing read back from either is
trusted on its own: the registry re-verifies signatures and digests.

Implementations: :mod:`mlprov.registry._sql` (SQLAlchemy Core; SQLite in WAL
mode is the embedded default) and :mod:`mlprov.registry._blobs` (a local
content-addressed directory). Both are tested by one suite run over every
implementation (``tests/registry/test_stores.py``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from mlprov.errors import EXIT_ERROR, InputError, MlprovError, VerificationError

if TYPE_CHECKING:
    from mlprov.registry._filter import SearchQuery

__all__ = [
    "AliasRecord",
    "AuditRecord",
    "BlobCorruptError",
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStore",
    "CheckpointRecord",
    "DeliveryRecord",
    "DeploymentRecord",
    "EventRecord",
    "MetadataStore",
    "ModelRecord",
    "NotFoundError",
    "ReadTransaction",
    "RegistryBusyError",
    "RegistryError",
    "RegistryIntegrityError",
    "RenameRecord",
    "ReviewRecord",
    "Stage",
    "StoreConflictError",
    "StoreError",
    "StoredBlob",
    "TagRecord",
    "VersionRecord",
    "WriteTransaction",
    "check_digest",
]


class RegistryError(MlprovError):
    """Base of the registry's own errors (exit code 3 unless a subclass says otherwise)."""

    exit_code = EXIT_ERROR
    hint = "run `mlprov registry --help`; the message names what is wrong"


class NotFoundError(RegistryError, InputError):
    """An unknown model, version, alias, deployment or registry."""

    hint = "`mlprov models list` shows what the registry holds"


class RegistryIntegrityError(VerificationError):
    """The registry's records disagree with what is signed: tampering or corruption."""

    hint = ("do not use this version; run `mlprov audit verify` and restore the registry "
            "from a backup")


class StoreError(RegistryError):
    """A storage backend failed (I/O, database error); nothing was changed."""

    hint = "check the registry directory's disk space and permissions, then try again"


class RegistryBusyError(StoreError):
    """Another process held the registry's write lock for too long."""

    hint = ("another mlprov process is writing to this registry; try again, or raise "
            "MLPROV_BUSY_TIMEOUT (seconds)")


class StoreConflictError(StoreError):
    """A concurrent writer made the same change first (a unique key was taken)."""

    hint = "another writer changed the registry at the same moment; run the command again"


class BlobNotFoundError(StoreError):
    """A blob named by a digest is not in the blob store."""

    hint = "the registry's blob store lost data; restore it from a backup"


class BlobCorruptError(VerificationError):
    """A stored blob's bytes no longer match the digest that names it."""

    hint = "the blob store was modified outside mlprov; restore the blob from a backup"


_DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 lower-case hex>``.

    Raises:
        InputError: anything else (a digest names a file path, so it is checked).
    """
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InputError(f"not a sha256 digest: {digest!r}")
    return digest


class Stage(StrEnum):
    """A version's stage. Any move between stages is a transition."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ModelRecord:
    """A registered model name.

    ``deleted_seq`` is the audit entry that deleted the model (a tombstone: its
    rows stay), None while it is in use; ``description`` its audited description.
    """

    name: str
    created_at: str
    latest_version: int
    description: str | None = None
    deleted_seq: int | None = None


@dataclass(frozen=True)
class VersionRecord:
    """One model version as stored. Never trusted alone: the registry re-verifies it.

    Digests are ``sha256:<hex>``. ``files_digest`` names a blob holding the
    file manifest, ``evidence_digest`` a blob mapping evidence file names to
    their blobs, ``registration`` the signed decision that registered it.
    """

    name: str
    version: int
    identity: str
    root_digest: str
    files_digest: str
    evidence_digest: str
    registration: str
    scan_digest: str | None
    reproducible: bool
    stage: Stage
    stage_decision: str | None
    created_at: str
    created_seq: int
    description: str | None = None
    #: The audit entry that deleted the version (a tombstone), None while it is in use.
    deleted_seq: int | None = None


@dataclass(frozen=True)
class TagRecord:
    """A tag of a model (``version`` None) or of one version: an audited key and value."""

    name: str
    version: int | None
    key: str
    value: str
    seq: int
    updated_at: str


@dataclass(frozen=True)
class RenameRecord:
    """A model renamed from ``old_name`` to ``new_name`` by audit entry ``seq``."""

    old_name: str
    new_name: str
    seq: int
    decision: str
    time: str


@dataclass(frozen=True)
class AliasRecord:
    """An alias of a model and the decision that set it."""

    name: str
    alias: str
    version: int
    decision: str
    seq: int
    updated_at: str


@dataclass(frozen=True)
class ReviewRecord:
    """A signed review attached to a version (the blob holds the bundle)."""

    name: str
    version: int
    digest: str
    added_at: str
    seq: int


@dataclass(frozen=True)
class AuditRecord:
    """One audit log entry. ``body`` is the canonical JSON hashed into the chain.

    The other fields are copies of values inside ``body``, kept as columns so
    they can be queried; verification checks them against the body.
    """

    seq: int
    time: str
    kind: str
    name: str | None
    version: int | None
    target: str | None
    accepted: bool
    decision: str | None
    body: bytes
    entry_hash: str


@dataclass(frozen=True)
class CheckpointRecord:
    """A signed statement naming the audit log's head at a moment."""

    seq: int
    entry_hash: str
    time: str
    bundle: bytes


@dataclass(frozen=True)
class EventRecord:
    """An event in the outbox, written in the same transaction as its change."""

    id: int
    seq: int
    kind: str
    time: str
    payload: bytes


@dataclass(frozen=True)
class DeliveryRecord:
    """One hook's delivery of one event: pending, delivered or failed."""

    id: int
    event_id: int
    hook: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True)
class DeploymentRecord:
    """A versioned deployment: several pinned model versions as one signed unit."""

    name: str
    version: int
    spec_digest: str
    statement: str
    decision: str
    stage: Stage
    stage_decision: str | None
    created_at: str
    created_seq: int


# --------------------------------------------------------------------------- metadata


class ReadTransaction(ABC):
    """A consistent read-only view of the metadata."""

    @abstractmethod
    def get_state(self, key: str) -> str | None:
        """A registry setting (trust, policies and config digests, registry id)."""

    @abstractmethod
    def get_model(self, name: str) -> ModelRecord | None:
        """The model named ``name`` (a deleted one too: see ``deleted_seq``)."""

    @abstractmethod
    def list_models(self) -> list[ModelRecord]:
        """Every model in use (not deleted), by name."""

    @abstractmethod
    def get_version(self, name: str, version: int) -> VersionRecord | None:
        """One version of a model (a deleted one too: see ``deleted_seq``)."""

    @abstractmethod
    def list_versions(self, name: str, *, stage: Stage | None = None,
                      limit: int | None = None, descending: bool = False
                      ) -> list[VersionRecord]:
        """Versions in use (not deleted) of a model by number, optionally only in ``stage``."""

    @abstractmethod
    def find_versions(self, name: str, identity: str) -> list[VersionRecord]:
        """The versions in use of ``name`` registered with ``identity``."""

    @abstractmethod
    def find_by_root(self, root_digest: str, *, limit: int = 16) -> list[VersionRecord]:
        """Versions of any model whose root digest is ``root_digest`` (lineage lookups).

        Deleted versions too: a derived model's lineage still verifies through them.
        """

    @abstractmethod
    def count_versions(self, name: str) -> dict[Stage, int]:
        """How many versions in use of ``name`` are in each stage."""

    # -- the catalog: descriptions, tags, metrics, renames, search

    @abstractmethod
    def all_models(self) -> list[ModelRecord]:
        """Every model, deleted ones too, by name (for audit replay)."""

    @abstractmethod
    def list_tags(self, name: str, version: int | None = None) -> list[TagRecord]:
        """The tags of a model (``version`` None) or of one of its versions, by key."""

    @abstractmethod
    def model_tags(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """The tags of each named model (models without tags are left out)."""

    @abstractmethod
    def version_tags(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                    dict[str, str]]:
        """The tags of each ``(name, version)`` (versions without tags are left out)."""

    @abstractmethod
    def version_metrics(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                       dict[str, float]]:
        """The indexed eval metrics of each ``(name, version)``."""

    @abstractmethod
    def aliases_of(self, names: Sequence[str]) -> dict[str, list[AliasRecord]]:
        """The aliases of each named model, by alias."""

    @abstractmethod
    def all_tags(self) -> list[TagRecord]:
        """Every tag of every model and version (for audit replay)."""

    @abstractmethod
    def all_metrics(self) -> dict[tuple[str, int], dict[str, float]]:
        """Every version's indexed metrics (for audit replay)."""

    @abstractmethod
    def renames_of(self, name: str) -> list[RenameRecord]:
        """Every rename of the model now named ``name``, oldest first."""

    @abstractmethod
    def renamed_from(self, old_name: str) -> tuple[RenameRecord, str] | None:
        """The latest rename away from ``old_name``, and the model's name now."""

    @abstractmethod
    def all_renames(self) -> list[RenameRecord]:
        """Every rename, oldest first (for audit replay)."""

    @abstractmethod
    def search_models(self, query: SearchQuery) -> list[ModelRecord]:
        """One page of models in use matching ``query`` (at most ``query.limit``)."""

    @abstractmethod
    def search_versions(self, query: SearchQuery) -> list[VersionRecord]:
        """One page of versions in use matching ``query`` (at most ``query.limit``)."""

    @abstractmethod
    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        """Where an alias points now."""

    @abstractmethod
    def list_aliases(self, name: str) -> list[AliasRecord]:
        """Every alias of a model."""

    @abstractmethod
    def list_reviews(self, name: str, version: int) -> list[ReviewRecord]:
        """Reviews attached to a version, oldest first."""

    def reviews_of(self, name: str, versions: Sequence[int]) -> dict[int, list[ReviewRecord]]:
        """The reviews of each of ``versions`` of ``name``, oldest first (none: left out).

        One query where the store can (``models show`` lists many versions); this
        default asks version by version.
        """
        out: dict[int, list[ReviewRecord]] = {}
        for version in sorted(set(versions)):
            found = self.list_reviews(name, version)
            if found:
                out[version] = found
        return out

    @abstractmethod
    def audit_head(self) -> AuditRecord | None:
        """The last audit entry."""

    @abstractmethod
    def audit_entry(self, seq: int) -> AuditRecord | None:
        """One audit entry."""

    @abstractmethod
    def audit_entries(self, *, since: int = 0, until: int | None = None,
                      limit: int | None = None, name: str | None = None,
                      target: str | None = None, accepted: bool | None = None,
                      descending: bool = False) -> list[AuditRecord]:
        """Audit entries with ``since < seq <= until``, optionally filtered."""

    def stream_audit(self, *, since: int = 0, until: int | None = None,
                     limit: int | None = None, name: str | None = None,
                     target: str | None = None, accepted: bool | None = None,
                     batch: int = 500) -> Iterator[AuditRecord]:
        """:meth:`audit_entries` (oldest first) as an iterator holding at most ``batch`` rows.

        This default pages by sequence number (``seq > last``), so a log of any
        length is read in bounded memory; a store may stream from a cursor instead.
        """
        last, left = since, limit
        while left is None or left > 0:
            size = batch if left is None else min(batch, left)
            rows = self.audit_entries(since=last, until=until, limit=size, name=name,
                                      target=target, accepted=accepted)
            yield from rows
            if len(rows) < size:
                return
            last = rows[-1].seq
            if left is not None:
                left -= len(rows)

    @abstractmethod
    def iter_audit(self, *, since: int = 0, batch: int = 5000) -> Iterator[AuditRecord]:
        """Every audit entry after ``since`` in order, fetched in batches."""

    @abstractmethod
    def get_decision(self, digest: str) -> bytes | None:
        """A signed decision (Sigstore bundle bytes) by its digest, unchecked."""

    @abstractmethod
    def checkpoints(self) -> list[CheckpointRecord]:
        """Every signed checkpoint, oldest first."""

    @abstractmethod
    def events(self, *, since: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events with ``id > since``, oldest first."""

    @abstractmethod
    def due_deliveries(self, now: float, *, limit: int = 100) -> list[DeliveryRecord]:
        """Pending deliveries whose next attempt is due and that no one holds."""

    @abstractmethod
    def deliveries(self, *, event_id: int | None = None) -> list[DeliveryRecord]:
        """Deliveries, optionally of one event."""

    @abstractmethod
    def get_event(self, event_id: int) -> EventRecord | None:
        """One event."""

    @abstractmethod
    def get_deployment(self, name: str, version: int) -> DeploymentRecord | None:
        """One deployment version."""

    @abstractmethod
    def list_deployments(self, name: str | None = None) -> list[DeploymentRecord]:
        """Deployment versions, by name then version."""

    @abstractmethod
    def versions_for_replay(self) -> Iterator[VersionRecord]:
        """Every version of every model (for audit replay)."""

    @abstractmethod
    def all_aliases(self) -> list[AliasRecord]:
        """Every alias of every model (for audit replay)."""


class WriteTransaction(ReadTransaction):
    """A write transaction: all of its changes commit together, or none do."""

    @abstractmethod
    def set_state(self, key: str, value: str) -> None:
        """Set a registry setting."""

    @abstractmethod
    def ensure_model(self, name: str, created_at: str) -> None:
        """Create the model ``name`` if it does not exist."""

    @abstractmethod
    def insert_version(self, record: VersionRecord) -> None:
        """Add a version (its number must be the model's next).

        Raises:
            StoreConflictError: the number is taken.
        """

    @abstractmethod
    def insert_versions(self, records: Sequence[VersionRecord]) -> None:
        """Add many versions at once (bulk load, e.g. for benchmarks and imports)."""

    @abstractmethod
    def set_stage(self, name: str, version: int, stage: Stage, decision: str) -> None:
        """Move a version to ``stage``."""

    @abstractmethod
    def set_alias(self, record: AliasRecord) -> None:
        """Point an alias at a version (insert or replace)."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""

    @abstractmethod
    def insert_review(self, record: ReviewRecord) -> None:
        """Attach a review to a version."""

    @abstractmethod
    def append_audit(self, record: AuditRecord) -> None:
        """Append an audit entry (its seq must be the head's plus one).

        Raises:
            StoreConflictError: the seq is taken (a concurrent writer).
        """

    @abstractmethod
    def append_audit_many(self, records: Sequence[AuditRecord]) -> None:
        """Append many audit entries at once (bulk load)."""

    @abstractmethod
    def put_decision(self, digest: str, bundle: bytes) -> None:
        """Store a signed decision under its digest (idempotent), in this transaction."""

    @abstractmethod
    def insert_checkpoint(self, record: CheckpointRecord) -> None:
        """Store a signed checkpoint."""

    @abstractmethod
    def insert_event(self, seq: int, kind: str, time: str, payload: bytes) -> int:
        """Enqueue an event; returns its id."""

    @abstractmethod
    def insert_delivery(self, event_id: int, hook: str, next_attempt_at: float) -> None:
        """Enqueue one hook's delivery of an event."""

    @abstractmethod
    def claim_delivery(self, delivery_id: int, now: float, lease_until: float) -> bool:
        """Take a due delivery for ``lease_until``; False if someone else holds it."""

    @abstractmethod
    def finish_delivery(self, delivery_id: int, *, state: str, attempts: int,
                        next_attempt_at: float, last_error: str | None) -> None:
        """Record the outcome of a delivery attempt and release it."""

    @abstractmethod
    def insert_deployment(self, record: DeploymentRecord) -> None:
        """Add a deployment version."""

    @abstractmethod
    def set_description(self, name: str, version: int | None, text: str | None) -> None:
        """Set (None: clear) the description of a model or of one of its versions."""

    @abstractmethod
    def set_tag(self, record: TagRecord) -> None:
        """Set a tag of a model or version (insert or replace)."""

    @abstractmethod
    def delete_tag(self, name: str, version: int | None, key: str) -> None:
        """Remove a tag of a model or version."""

    @abstractmethod
    def set_version_metrics(self, name: str, version: int,
                            metrics: Mapping[str, float]) -> None:
        """Index a version's eval metrics (at registration)."""

    @abstractmethod
    def rename_model(self, record: RenameRecord) -> None:
        """Rename a model; its versions, aliases, reviews and tags follow it.

        Raises:
            StoreConflictError: the new name is taken.
        """

    @abstractmethod
    def delete_version(self, name: str, version: int, seq: int) -> None:
        """Tombstone a version (its rows stay, marked deleted by entry ``seq``)."""

    @abstractmethod
    def delete_model(self, name: str, seq: int) -> None:
        """Tombstone a model and every version of it still in use."""

    @abstractmethod
    def set_deployment_stage(self, name: str, version: int, stage: Stage,
                             decision: str) -> None:
        """Move a deployment version to ``stage``."""


class MetadataStore(ABC):
    """Where names, versions, stages, aliases, the audit log and events live."""

    #: A short description for messages (never holds credentials).
    description: str

    @abstractmethod
    def create_schema(self) -> None:
        """Create the tables if they do not exist (idempotent)."""

    @abstractmethod
    def read(self) -> AbstractContextManager[ReadTransaction]:
        """A read transaction (a consistent snapshot)."""

    @abstractmethod
    def write(self) -> AbstractContextManager[WriteTransaction]:
        """A write transaction, serialised with every other writer.

        Raises:
            RegistryBusyError: the write lock was not obtained in time.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


# --------------------------------------------------------------------------- blobs


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its digest (``sha256:<hex>``) and size."""

    digest: str
    size: int


@dataclass(frozen=True)
class StoredBlob:
    """A blob as listed: digest, size and when it was last written (POSIX seconds)."""

    digest: str
    size: int
    modified: float


class BlobStore(ABC):
    """Content-addressed bytes: a blob's name is the SHA-256 of its content.

    Writes are durable before they return (so metadata may then name them);
    reads check the digest, so a changed blob is never handed over silently.
    A blob without metadata naming it is harmless garbage.
    """

    description: str

    @abstractmethod
    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data`` durably."""

    @abstractmethod
    def put_file(self, path: Path, *, expected: str | None = None) -> BlobInfo:
        """Store a file's bytes durably, hashing them as they are copied.

        Raises:
            DigestMismatchError: ``expected`` was given and the bytes differ.
            InputError: the file cannot be read (symlinks are not followed).
        """

    @abstractmethod
    def get_bytes(self, digest: str, *, max_size: int | None = None) -> bytes:
        """Return a blob's bytes, checked against its digest.

        Raises:
            BlobNotFoundError, BlobCorruptError.
        """

    @abstractmethod
    def copy_to(self, digest: str, dest: Path) -> int:
        """Write a blob to the new file ``dest``, checking the digest; returns its size.

        On a mismatch ``dest`` is removed and :class:`BlobCorruptError` raised.
        """

    @abstractmethod
    def stat(self, digest: str) -> int | None:
        """The blob's size, or None if it is not stored (no digest check)."""

    @abstractmethod
    def iter_digests(self) -> Iterator[str]:
        """Every stored blob's digest."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob with its size and last write time (for garbage collection)."""

    @abstractmethod
    def clean_partial(self, older_than: float) -> int:
        """Remove dead writers' partial writes started before ``older_than``; count them.

        Temporary files, unfinished multipart uploads; ``older_than`` is POSIX seconds.
        """

    @abstractmethod
    def delete(self, digest: str) -> bool:
        """Remove a blob; False when it was not there.

        Only ``mlprov registry gc`` deletes, under the registry's write lock and
        only blobs no metadata names (:mod:`mlprov.registry._gc`).
        """
