"""The metadata store on SQLAlchemy Core: SQLite (the embedded default) or PostgreSQL.

SQLite runs in WAL mode (readers never block the writer), with foreign keys on,
``synchronous=FULL`` (a committed change survives a power cut) and a busy
timeout. Write transactions start with ``BEGIN IMMEDIATE``, so concurrent
processes serialise on the write lock at the start of a change rather than
failing at commit.

PostgreSQL (``postgresql+psycopg://``, psycopg 3) keeps the same semantics: a
write transaction takes one registry-wide advisory lock first (READ COMMITTED,
so what it reads next is every earlier writer's committed state), bounded by
``lock_timeout``; readers get a read-only REPEATABLE READ snapshot. Integers are
BIGINT, bytes BYTEA, text ``TEXT COLLATE "C"`` (byte order and no length limit,
as in SQLite), timestamps the same strings. Only portable Core constructs are
used otherwise.

The schema is versioned (``registry_state.schema_version``) and moved on by the
ordered steps in :data:`MIGRATIONS` (``mlprov registry upgrade``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.types import TypeEngine

from mlprov.errors import InputError
from mlprov.registry._blobs import fsync_enabled
from mlprov.registry._busy import BUSY_TIMEOUT_ENV as BUSY_TIMEOUT_ENV
from mlprov.registry._busy import busy_timeout
from mlprov.registry._filter import SearchQuery
from mlprov.registry._sqlsearch import CatalogTables, model_search, version_search
from mlprov.registry.interface import (
    AliasRecord,
    AuditRecord,
    CheckpointRecord,
    DeliveryRecord,
    DeploymentRecord,
    EventRecord,
    MetadataStore,
    ModelRecord,
    NotFoundError,
    ReadTransaction,
    RegistryBusyError,
    RenameRecord,
    ReviewRecord,
    Stage,
    StoreConflictError,
    StoreError,
    TagRecord,
    VersionRecord,
    WriteTransaction,
)

__all__ = ["CATALOG", "MIGRATIONS", "SCHEMA_VERSION", "Migration", "SchemaUpgrade",
           "SqlMetadataStore", "sqlite_url"]



def _int() -> TypeEngine[int]:
    """A 64-bit integer on PostgreSQL; plain INTEGER (64-bit, and the rowid alias) on SQLite."""
    return BigInteger().with_variant(Integer(), "sqlite")


def _str(length: int) -> TypeEngine[str]:
    """VARCHAR(n) on SQLite (which ignores the length); unbounded TEXT in byte order on PostgreSQL.

    SQLite compares and sorts text by its bytes (BINARY) and never enforces a
    length, so PostgreSQL gets ``TEXT COLLATE "C"``: the same order for
    ``list_models`` and the same values accepted, whatever the database's locale.
    """
    return String(length).with_variant(Text(collation="C"), "postgresql")


def _text() -> TypeEngine[str]:
    """Unbounded text: TEXT on SQLite, ``TEXT COLLATE "C"`` (byte order) on PostgreSQL."""
    return Text().with_variant(Text(collation="C"), "postgresql")


metadata = MetaData()

registry_state = Table(
    "registry_state", metadata,
    Column("key", _str(64), primary_key=True),
    Column("value", Text, nullable=False),
)

models = Table(
    "models", metadata,
    Column("id", _int(), primary_key=True, autoincrement=True),
    Column("name", _str(200), nullable=False, unique=True),
    Column("created_at", _str(40), nullable=False),
    Column("description", _text()),  # schema 2
    Column("deleted_seq", _int()),  # schema 2: the audit entry that deleted the model
)

versions = Table(
    "versions", metadata,
    Column("model_id", _int(), ForeignKey("models.id"), primary_key=True),
    Column("version", _int(), primary_key=True, autoincrement=False),
    Column("identity", _str(80), nullable=False),
    Column("root_digest", _str(80), nullable=False),
    Column("files_digest", _str(80), nullable=False),
    Column("evidence_digest", _str(80), nullable=False),
    Column("registration", _str(80), nullable=False),
    Column("scan_digest", _str(80)),
    Column("reproducible", Boolean, nullable=False),
    Column("stage", _str(16), nullable=False),
    Column("stage_decision", _str(80)),
    Column("created_at", _str(40), nullable=False),
    Column("created_seq", _int(), nullable=False),
    Column("description", _text()),  # schema 2
    Column("deleted_seq", _int()),  # schema 2: the audit entry that deleted the version
)
Index("ix_versions_identity", versions.c.model_id, versions.c.identity)
Index("ix_versions_stage", versions.c.model_id, versions.c.stage, versions.c.version)
Index("ix_versions_root", versions.c.root_digest)
ix_versions_created = Index("ix_versions_created", versions.c.created_at)  # schema 2

aliases = Table(
    "aliases", metadata,
    Column("model_id", _int(), primary_key=True),
    Column("alias", _str(100), primary_key=True),
    Column("version", _int(), nullable=False),
    Column("decision", _str(80), nullable=False),
    Column("seq", _int(), nullable=False),
    Column("updated_at", _str(40), nullable=False),
    ForeignKeyConstraint(["model_id", "version"], ["versions.model_id", "versions.version"]),
)
ix_aliases_alias = Index("ix_aliases_alias", aliases.c.alias)  # schema 2: search by alias

reviews = Table(
    "reviews", metadata,
    Column("id", _int(), primary_key=True, autoincrement=True),
    Column("model_id", _int(), nullable=False),
    Column("version", _int(), nullable=False),
    Column("digest", _str(80), nullable=False),
    Column("added_at", _str(40), nullable=False),
    Column("seq", _int(), nullable=False),
    ForeignKeyConstraint(["model_id", "version"], ["versions.model_id", "versions.version"]),
    UniqueConstraint("model_id", "version", "digest"),
)

audit = Table(
    "audit", metadata,
    Column("seq", _int(), primary_key=True, autoincrement=False),
    Column("time", _str(40), nullable=False),
    Column("kind", _str(40), nullable=False),
    Column("name", _str(200)),
    Column("version", _int()),
    Column("target", _str(120)),
    Column("accepted", Boolean, nullable=False),
    Column("decision", _str(80)),
    Column("body", LargeBinary, nullable=False),
    Column("entry_hash", _str(80), nullable=False),
)
Index("ix_audit_target", audit.c.name, audit.c.target, audit.c.seq)

decisions = Table(
    "decisions", metadata,
    Column("digest", _str(80), primary_key=True),
    Column("bundle", LargeBinary, nullable=False),
)

checkpoints = Table(
    "checkpoints", metadata,
    Column("seq", _int(), primary_key=True, autoincrement=False),
    Column("entry_hash", _str(80), nullable=False),
    Column("time", _str(40), nullable=False),
    Column("bundle", LargeBinary, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", _int(), primary_key=True, autoincrement=True),
    Column("seq", _int(), nullable=False),
    Column("kind", _str(40), nullable=False),
    Column("time", _str(40), nullable=False),
    Column("payload", LargeBinary, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", _int(), primary_key=True, autoincrement=True),
    Column("event_id", _int(), ForeignKey("events.id"), nullable=False),
    Column("hook", _str(100), nullable=False),
    Column("state", _str(16), nullable=False),
    Column("attempts", _int(), nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("last_error", Text),
    UniqueConstraint("event_id", "hook"),
)
Index("ix_deliveries_due", deliveries.c.state, deliveries.c.next_attempt_at)

deployments = Table(
    "deployments", metadata,
    Column("name", _str(200), primary_key=True),
    Column("version", _int(), primary_key=True, autoincrement=False),
    Column("spec_digest", _str(80), nullable=False),
    Column("statement", _str(80), nullable=False),
    Column("decision", _str(80), nullable=False),
    Column("stage", _str(16), nullable=False),
    Column("stage_decision", _str(80)),
    Column("created_at", _str(40), nullable=False),
    Column("created_seq", _int(), nullable=False),
)


# Schema 2: the catalog (descriptions and the tombstones above, tags, indexed eval
# metrics, renames). Tag values are at most 1000 characters so that a (key, value)
# index entry stays within PostgreSQL's B-tree row limit.

model_tags = Table(
    "model_tags", metadata,
    Column("model_id", _int(), ForeignKey("models.id"), primary_key=True),
    Column("key", _str(250), primary_key=True),
    Column("value", _str(1000), nullable=False),
    Column("seq", _int(), nullable=False),
    Column("updated_at", _str(40), nullable=False),
)
Index("ix_model_tags_value", model_tags.c.key, model_tags.c.value)

version_tags = Table(
    "version_tags", metadata,
    Column("model_id", _int(), primary_key=True),
    Column("version", _int(), primary_key=True, autoincrement=False),
    Column("key", _str(250), primary_key=True),
    Column("value", _str(1000), nullable=False),
    Column("seq", _int(), nullable=False),
    Column("updated_at", _str(40), nullable=False),
    ForeignKeyConstraint(["model_id", "version"], ["versions.model_id", "versions.version"]),
)
Index("ix_version_tags_value", version_tags.c.key, version_tags.c.value)

version_metrics = Table(
    "version_metrics", metadata,
    Column("model_id", _int(), primary_key=True),
    Column("version", _int(), primary_key=True, autoincrement=False),
    Column("key", _str(250), primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    ForeignKeyConstraint(["model_id", "version"], ["versions.model_id", "versions.version"]),
)
Index("ix_version_metrics_value", version_metrics.c.key, version_metrics.c.value)

model_renames = Table(
    "model_renames", metadata,
    Column("seq", _int(), primary_key=True, autoincrement=False),
    Column("model_id", _int(), ForeignKey("models.id"), nullable=False),
    Column("old_name", _str(200), nullable=False),
    Column("new_name", _str(200), nullable=False),
    Column("decision", _str(80), nullable=False),
    Column("time", _str(40), nullable=False),
)
Index("ix_model_renames_old", model_renames.c.old_name, model_renames.c.seq)
Index("ix_model_renames_model", model_renames.c.model_id, model_renames.c.seq)

#: The catalog's tables, for the searches of :mod:`._sqlsearch`.
CATALOG = _CATALOG = CatalogTables(models=models, versions=versions, aliases=aliases,
                         model_tags=model_tags, version_tags=version_tags,
                         version_metrics=version_metrics)


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite database file."""
    return f"sqlite+pysqlite:///{path}"


def _busy_timeout() -> float:
    return busy_timeout()


# PostgreSQL error codes (https://www.postgresql.org/docs/current/errcodes-appendix.html):
# a serialization failure or a deadlock is a lost race, retried like a taken unique
# key; a lock wait that ran into lock_timeout is a busy registry.
_PG_CONFLICT = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_PG_BUSY = frozenset({"55P03"})  # lock_not_available


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _is_busy(exc: OperationalError) -> bool:
    state = _sqlstate(exc)
    if state is not None:  # PostgreSQL: by error code, never by message
        return state in _PG_BUSY
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "locked" in text or "busy" in text


def _is_conflict(exc: OperationalError) -> bool:
    return _sqlstate(exc) in _PG_CONFLICT


def _driver_message(exc: DBAPIError) -> str:
    """The driver's message on one line (psycopg adds DETAIL and HINT lines)."""
    return " ".join(str(exc.orig).split()) if exc.orig is not None else type(exc).__name__


class _Read(ReadTransaction):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._model_ids: dict[str, int | None] = {}
        self._states: dict[str, str] | None = None

    # -- helpers
    def _model_id(self, name: str) -> int | None:
        if name not in self._model_ids:
            self._model_ids[name] = self.conn.execute(
                select(models.c.id).where(models.c.name == name)).scalar_one_or_none()
        return self._model_ids[name]

    def _need_model_id(self, name: str) -> int:
        model_id = self._model_id(name)
        if model_id is None:
            raise NotFoundError(f"no model named {name!r} in the registry")
        return model_id

    @staticmethod
    def _version(name: str, row: Row[Any]) -> VersionRecord:
        return VersionRecord(
            name=name, version=row.version, identity=row.identity, root_digest=row.root_digest,
            files_digest=row.files_digest, evidence_digest=row.evidence_digest,
            registration=row.registration, scan_digest=row.scan_digest,
            reproducible=bool(row.reproducible), stage=Stage(row.stage),
            stage_decision=row.stage_decision, created_at=row.created_at,
            created_seq=row.created_seq, description=row.description,
            deleted_seq=row.deleted_seq)

    @staticmethod
    def _audit(row: Row[Any]) -> AuditRecord:
        return AuditRecord(seq=row.seq, time=row.time, kind=row.kind, name=row.name,
                           version=row.version, target=row.target, accepted=bool(row.accepted),
                           decision=row.decision, body=bytes(row.body),
                           entry_hash=row.entry_hash)

    @staticmethod
    def _delivery(row: Row[Any]) -> DeliveryRecord:
        return DeliveryRecord(id=row.id, event_id=row.event_id, hook=row.hook, state=row.state,
                              attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                              last_error=row.last_error)

    @staticmethod
    def _deployment(row: Row[Any]) -> DeploymentRecord:
        return DeploymentRecord(name=row.name, version=row.version,
                                spec_digest=row.spec_digest, statement=row.statement,
                                decision=row.decision, stage=Stage(row.stage),
                                stage_decision=row.stage_decision, created_at=row.created_at,
                                created_seq=row.created_seq)

    # -- state and models
    def get_state(self, key: str) -> str | None:
        # The table holds a few settings (ids, digests, the signed head), and a change
        # reads most of them one after another: one statement for all, kept for the
        # transaction (a snapshot, or a writer holding the write lock).
        if self._states is None:
            self._states = {row.key: row.value for row in self.conn.execute(
                select(registry_state.c.key, registry_state.c.value))}
        return self._states.get(key)

    def get_model(self, name: str) -> ModelRecord | None:
        # One statement (the latest version from the primary key's index), and the id
        # kept for the lookups that follow: resolve asks for the model, then its alias.
        latest = (select(func.max(versions.c.version)).where(versions.c.model_id == models.c.id)
                  .scalar_subquery())
        row = self.conn.execute(select(models.c.id, models.c.created_at, models.c.description,
                                       models.c.deleted_seq, latest.label("latest"))
                                .where(models.c.name == name)).first()
        self._model_ids[name] = None if row is None else row.id
        if row is None:
            return None
        return ModelRecord(name=name, created_at=row.created_at, latest_version=row.latest or 0,
                           description=row.description, deleted_seq=row.deleted_seq)

    def _models(self, *, deleted: bool) -> list[ModelRecord]:
        latest = (select(versions.c.model_id, func.max(versions.c.version).label("latest"))
                  .group_by(versions.c.model_id).subquery())
        query = (select(models, latest.c.latest)
                 .select_from(models.outerjoin(latest, latest.c.model_id == models.c.id))
                 .order_by(models.c.name))
        if not deleted:
            query = query.where(models.c.deleted_seq.is_(None))
        return [ModelRecord(name=r.name, created_at=r.created_at, latest_version=r.latest or 0,
                            description=r.description, deleted_seq=r.deleted_seq)
                for r in self.conn.execute(query)]

    def list_models(self) -> list[ModelRecord]:
        return self._models(deleted=False)

    def all_models(self) -> list[ModelRecord]:
        return self._models(deleted=True)

    # -- versions
    def get_version(self, name: str, version: int) -> VersionRecord | None:
        model_id = self._model_id(name)
        if model_id is None:
            return None
        row = self.conn.execute(select(versions).where(
            versions.c.model_id == model_id, versions.c.version == version)).first()
        return None if row is None else self._version(name, row)

    def list_versions(self, name: str, *, stage: Stage | None = None,
                      limit: int | None = None, descending: bool = False
                      ) -> list[VersionRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        query = select(versions).where(versions.c.model_id == model_id,
                                       versions.c.deleted_seq.is_(None))
        if stage is not None:
            query = query.where(versions.c.stage == stage.value)
        order = versions.c.version.desc() if descending else versions.c.version
        query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        return [self._version(name, r) for r in self.conn.execute(query)]

    def find_versions(self, name: str, identity: str) -> list[VersionRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        rows = self.conn.execute(select(versions).where(
            versions.c.model_id == model_id, versions.c.identity == identity,
            versions.c.deleted_seq.is_(None)).order_by(versions.c.version))
        return [self._version(name, r) for r in rows]

    def find_by_root(self, root_digest: str, *, limit: int = 16) -> list[VersionRecord]:
        rows = self.conn.execute(
            select(models.c.name, versions).select_from(
                versions.join(models, models.c.id == versions.c.model_id))
            .where(versions.c.root_digest == root_digest)
            .order_by(versions.c.created_seq).limit(limit))
        return [self._version(row.name, row) for row in rows]

    def count_versions(self, name: str) -> dict[Stage, int]:
        model_id = self._model_id(name)
        counts = dict.fromkeys(Stage, 0)
        if model_id is None:
            return counts
        rows = self.conn.execute(select(versions.c.stage, func.count()).where(
            versions.c.model_id == model_id, versions.c.deleted_seq.is_(None)
        ).group_by(versions.c.stage))
        for stage, count in rows:
            counts[Stage(stage)] = count
        return counts

    def versions_for_replay(self) -> Iterator[VersionRecord]:
        rows = self.conn.execute(
            select(models.c.name, versions).select_from(
                versions.join(models, models.c.id == versions.c.model_id))
            .order_by(versions.c.created_seq))
        for row in rows:
            yield self._version(row.name, row)

    # -- the catalog: tags, metrics, renames, search
    def _ids(self, names: Sequence[str]) -> dict[int, str]:
        if not names:
            return {}
        rows = self.conn.execute(select(models.c.id, models.c.name).where(
            models.c.name.in_(sorted(set(names)))))
        return {r.id: r.name for r in rows}

    def list_tags(self, name: str, version: int | None = None) -> list[TagRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        if version is None:
            rows = self.conn.execute(select(model_tags).where(
                model_tags.c.model_id == model_id).order_by(model_tags.c.key))
            return [TagRecord(name=name, version=None, key=r.key, value=r.value, seq=r.seq,
                              updated_at=r.updated_at) for r in rows]
        rows = self.conn.execute(select(version_tags).where(
            version_tags.c.model_id == model_id, version_tags.c.version == version
        ).order_by(version_tags.c.key))
        return [TagRecord(name=name, version=version, key=r.key, value=r.value, seq=r.seq,
                          updated_at=r.updated_at) for r in rows]

    def model_tags(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        ids = self._ids(names)
        out: dict[str, dict[str, str]] = {}
        if ids:
            rows = self.conn.execute(select(model_tags).where(
                model_tags.c.model_id.in_(sorted(ids))).order_by(model_tags.c.key))
            for r in rows:
                out.setdefault(ids[r.model_id], {})[r.key] = r.value
        return out

    def _per_version(self, table: Table, keys: Sequence[tuple[str, int]]
                     ) -> dict[tuple[str, int], dict[str, Any]]:
        ids = self._ids([name for name, _v in keys])
        by_name = {name: model_id for model_id, name in ids.items()}
        wanted = [(by_name[n], v) for n, v in keys if n in by_name]
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            rows = self.conn.execute(select(table).where(
                tuple_(table.c.model_id, table.c.version).in_(wanted[start:start + 500])
            ).order_by(table.c.key))
            for r in rows:
                out.setdefault((ids[r.model_id], r.version), {})[r.key] = r.value
        return out

    def version_tags(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                    dict[str, str]]:
        return self._per_version(version_tags, keys)

    def version_metrics(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                       dict[str, float]]:
        return self._per_version(version_metrics, keys)

    def aliases_of(self, names: Sequence[str]) -> dict[str, list[AliasRecord]]:
        ids = self._ids(names)
        out: dict[str, list[AliasRecord]] = {}
        if ids:
            rows = self.conn.execute(select(aliases).where(
                aliases.c.model_id.in_(sorted(ids))).order_by(aliases.c.alias))
            for r in rows:
                name = ids[r.model_id]
                out.setdefault(name, []).append(AliasRecord(
                    name=name, alias=r.alias, version=r.version, decision=r.decision, seq=r.seq,
                    updated_at=r.updated_at))
        return out

    def all_tags(self) -> list[TagRecord]:
        out = [TagRecord(name=r.name, version=None, key=r.key, value=r.value, seq=r.seq,
                         updated_at=r.updated_at)
               for r in self.conn.execute(
                   select(models.c.name, model_tags).select_from(
                       model_tags.join(models, models.c.id == model_tags.c.model_id))
                   .order_by(models.c.name, model_tags.c.key))]
        out.extend(TagRecord(name=r.name, version=r.version, key=r.key, value=r.value,
                             seq=r.seq, updated_at=r.updated_at)
                   for r in self.conn.execute(
                       select(models.c.name, version_tags).select_from(
                           version_tags.join(models, models.c.id == version_tags.c.model_id))
                       .order_by(models.c.name, version_tags.c.version, version_tags.c.key)))
        return out

    def all_metrics(self) -> dict[tuple[str, int], dict[str, float]]:
        out: dict[tuple[str, int], dict[str, float]] = {}
        rows = self.conn.execute(
            select(models.c.name, version_metrics).select_from(
                version_metrics.join(models, models.c.id == version_metrics.c.model_id))
            .order_by(models.c.name, version_metrics.c.version, version_metrics.c.key))
        for r in rows:
            out.setdefault((r.name, r.version), {})[r.key] = r.value
        return out

    @staticmethod
    def _rename(row: Row[Any]) -> RenameRecord:
        return RenameRecord(old_name=row.old_name, new_name=row.new_name, seq=row.seq,
                            decision=row.decision, time=row.time)

    def renames_of(self, name: str) -> list[RenameRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        rows = self.conn.execute(select(model_renames).where(
            model_renames.c.model_id == model_id).order_by(model_renames.c.seq))
        return [self._rename(r) for r in rows]

    def renamed_from(self, old_name: str) -> tuple[RenameRecord, str] | None:
        row = self.conn.execute(
            select(model_renames, models.c.name.label("current")).select_from(
                model_renames.join(models, models.c.id == model_renames.c.model_id))
            .where(model_renames.c.old_name == old_name)
            .order_by(model_renames.c.seq.desc()).limit(1)).first()
        return None if row is None else (self._rename(row), row.current)

    def all_renames(self) -> list[RenameRecord]:
        rows = self.conn.execute(select(model_renames).order_by(model_renames.c.seq))
        return [self._rename(r) for r in rows]

    def search_models(self, query: SearchQuery) -> list[ModelRecord]:
        stmt = model_search(query, _CATALOG, self.conn.dialect.name)
        rows = self.conn.execute(stmt).all()
        latest: dict[int, int] = {}
        if rows:
            latest = {model_id: number for model_id, number in self.conn.execute(
                select(versions.c.model_id, func.max(versions.c.version))
                .where(versions.c.model_id.in_([r.id for r in rows]))
                .group_by(versions.c.model_id))}
        return [ModelRecord(name=r.name, created_at=r.created_at,
                            latest_version=latest.get(r.id, 0), description=r.description,
                            deleted_seq=r.deleted_seq) for r in rows]

    def search_versions(self, query: SearchQuery) -> list[VersionRecord]:
        model_id = None
        if query.name is not None:
            model_id = self._model_id(query.name)
            if model_id is None:
                return []
        stmt = version_search(query, _CATALOG, self.conn.dialect.name, model_id)
        return [self._version(r.name, r) for r in self.conn.execute(stmt)]

    # -- aliases and reviews
    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        model_id = self._model_id(name)
        if model_id is None:
            return None
        row = self.conn.execute(select(aliases).where(
            aliases.c.model_id == model_id, aliases.c.alias == alias)).first()
        if row is None:
            return None
        return AliasRecord(name=name, alias=row.alias, version=row.version,
                           decision=row.decision, seq=row.seq, updated_at=row.updated_at)

    def list_aliases(self, name: str) -> list[AliasRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        rows = self.conn.execute(select(aliases).where(aliases.c.model_id == model_id)
                                 .order_by(aliases.c.alias))
        return [AliasRecord(name=name, alias=r.alias, version=r.version, decision=r.decision,
                            seq=r.seq, updated_at=r.updated_at) for r in rows]

    def all_aliases(self) -> list[AliasRecord]:
        rows = self.conn.execute(
            select(models.c.name, aliases).select_from(
                aliases.join(models, models.c.id == aliases.c.model_id))
            .order_by(models.c.name, aliases.c.alias))
        return [AliasRecord(name=r.name, alias=r.alias, version=r.version,
                            decision=r.decision, seq=r.seq, updated_at=r.updated_at)
                for r in rows]

    def list_reviews(self, name: str, version: int) -> list[ReviewRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        rows = self.conn.execute(select(reviews).where(
            reviews.c.model_id == model_id, reviews.c.version == version).order_by(reviews.c.id))
        return [ReviewRecord(name=name, version=r.version, digest=r.digest,
                             added_at=r.added_at, seq=r.seq) for r in rows]

    def reviews_of(self, name: str, versions: Sequence[int]) -> dict[int, list[ReviewRecord]]:
        model_id = self._model_id(name)
        out: dict[int, list[ReviewRecord]] = {}
        wanted = sorted(set(versions))
        if model_id is None:
            return out
        for start in range(0, len(wanted), 500):
            rows = self.conn.execute(select(reviews).where(
                reviews.c.model_id == model_id, reviews.c.version.in_(wanted[start:start + 500])
            ).order_by(reviews.c.id))
            for r in rows:
                out.setdefault(r.version, []).append(ReviewRecord(
                    name=name, version=r.version, digest=r.digest, added_at=r.added_at,
                    seq=r.seq))
        return out

    # -- audit
    def audit_head(self) -> AuditRecord | None:
        row = self.conn.execute(select(audit).order_by(audit.c.seq.desc()).limit(1)).first()
        return None if row is None else self._audit(row)

    def audit_entry(self, seq: int) -> AuditRecord | None:
        row = self.conn.execute(select(audit).where(audit.c.seq == seq)).first()
        return None if row is None else self._audit(row)

    def audit_entries(self, *, since: int = 0, until: int | None = None,
                      limit: int | None = None, name: str | None = None,
                      target: str | None = None, accepted: bool | None = None,
                      descending: bool = False) -> list[AuditRecord]:
        query = select(audit).where(audit.c.seq > since)
        if until is not None:
            query = query.where(audit.c.seq <= until)
        if name is not None:
            query = query.where(audit.c.name == name)
        if target is not None:
            query = query.where(audit.c.target == target)
        if accepted is not None:
            query = query.where(audit.c.accepted == accepted)
        query = query.order_by(audit.c.seq.desc() if descending else audit.c.seq)
        if limit is not None:
            query = query.limit(limit)
        return [self._audit(r) for r in self.conn.execute(query)]

    def iter_audit(self, *, since: int = 0, batch: int = 5000) -> Iterator[AuditRecord]:
        last = since
        while True:
            rows = self.conn.execute(select(audit).where(audit.c.seq > last)
                                     .order_by(audit.c.seq).limit(batch)).all()
            for row in rows:
                yield self._audit(row)
            if len(rows) < batch:
                return
            last = rows[-1].seq

    def get_decision(self, digest: str) -> bytes | None:
        value = self.conn.execute(select(decisions.c.bundle).where(
            decisions.c.digest == digest)).scalar_one_or_none()
        return bytes(value) if value is not None else None

    def checkpoints(self) -> list[CheckpointRecord]:
        rows = self.conn.execute(select(checkpoints).order_by(checkpoints.c.seq))
        return [CheckpointRecord(seq=r.seq, entry_hash=r.entry_hash, time=r.time,
                                 bundle=bytes(r.bundle)) for r in rows]

    # -- events
    def events(self, *, since: int = 0, limit: int | None = None) -> list[EventRecord]:
        query = select(events).where(events.c.id > since).order_by(events.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [EventRecord(id=r.id, seq=r.seq, kind=r.kind, time=r.time,
                            payload=bytes(r.payload)) for r in self.conn.execute(query)]

    def get_event(self, event_id: int) -> EventRecord | None:
        r = self.conn.execute(select(events).where(events.c.id == event_id)).first()
        return None if r is None else EventRecord(id=r.id, seq=r.seq, kind=r.kind, time=r.time,
                                                  payload=bytes(r.payload))

    def due_deliveries(self, now: float, *, limit: int = 100) -> list[DeliveryRecord]:
        rows = self.conn.execute(select(deliveries).where(
            deliveries.c.state == "pending", deliveries.c.next_attempt_at <= now,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
        ).order_by(deliveries.c.id).limit(limit))
        return [self._delivery(r) for r in rows]

    def deliveries(self, *, event_id: int | None = None) -> list[DeliveryRecord]:
        query = select(deliveries).order_by(deliveries.c.id)
        if event_id is not None:
            query = query.where(deliveries.c.event_id == event_id)
        return [self._delivery(r) for r in self.conn.execute(query)]

    # -- deployments
    def get_deployment(self, name: str, version: int) -> DeploymentRecord | None:
        row = self.conn.execute(select(deployments).where(
            deployments.c.name == name, deployments.c.version == version)).first()
        return None if row is None else self._deployment(row)

    def list_deployments(self, name: str | None = None) -> list[DeploymentRecord]:
        query = select(deployments).order_by(deployments.c.name, deployments.c.version)
        if name is not None:
            query = query.where(deployments.c.name == name)
        return [self._deployment(r) for r in self.conn.execute(query)]


class _Write(_Read, WriteTransaction):
    def set_state(self, key: str, value: str) -> None:
        done = self.conn.execute(update(registry_state).where(registry_state.c.key == key)
                                 .values(value=value))
        if done.rowcount == 0:
            self.conn.execute(insert(registry_state).values(key=key, value=value))
        if self._states is not None:
            self._states[key] = value

    def ensure_model(self, name: str, created_at: str) -> None:
        if self._model_id(name) is None:
            self.conn.execute(insert(models).values(name=name, created_at=created_at))
            self._model_ids.pop(name, None)

    def _version_values(self, record: VersionRecord) -> dict[str, Any]:
        return {
            "model_id": self._need_model_id(record.name), "version": record.version,
            "identity": record.identity, "root_digest": record.root_digest,
            "files_digest": record.files_digest, "evidence_digest": record.evidence_digest,
            "registration": record.registration, "scan_digest": record.scan_digest,
            "reproducible": record.reproducible, "stage": record.stage.value,
            "stage_decision": record.stage_decision, "created_at": record.created_at,
            "created_seq": record.created_seq, "description": record.description,
            "deleted_seq": record.deleted_seq,
        }

    def insert_version(self, record: VersionRecord) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(versions).values(**self._version_values(record)))
        except IntegrityError as exc:
            raise StoreConflictError(
                f"version {record.version} of {record.name} was registered concurrently"
            ) from exc
        # A new version of a deleted model puts the model back in use (its deleted
        # versions stay deleted), as its registration entry says to replay.
        self.conn.execute(update(models).where(
            models.c.id == self._need_model_id(record.name), models.c.deleted_seq.isnot(None)
        ).values(deleted_seq=None))

    def insert_versions(self, records: Sequence[VersionRecord]) -> None:
        if records:
            self.conn.execute(insert(versions), [self._version_values(r) for r in records])

    def set_stage(self, name: str, version: int, stage: Stage, decision: str) -> None:
        self.conn.execute(update(versions).where(
            versions.c.model_id == self._need_model_id(name), versions.c.version == version
        ).values(stage=stage.value, stage_decision=decision))

    def set_alias(self, record: AliasRecord) -> None:
        model_id = self._need_model_id(record.name)
        values = {"version": record.version, "decision": record.decision, "seq": record.seq,
                  "updated_at": record.updated_at}
        done = self.conn.execute(update(aliases).where(
            aliases.c.model_id == model_id, aliases.c.alias == record.alias).values(**values))
        if done.rowcount == 0:
            self.conn.execute(insert(aliases).values(model_id=model_id, alias=record.alias,
                                                     **values))

    def delete_alias(self, name: str, alias: str) -> None:
        self.conn.execute(delete(aliases).where(
            aliases.c.model_id == self._need_model_id(name), aliases.c.alias == alias))

    def insert_review(self, record: ReviewRecord) -> None:
        self.conn.execute(insert(reviews).values(
            model_id=self._need_model_id(record.name), version=record.version,
            digest=record.digest, added_at=record.added_at, seq=record.seq))

    @staticmethod
    def _audit_values(record: AuditRecord) -> dict[str, Any]:
        return {"seq": record.seq, "time": record.time, "kind": record.kind,
                "name": record.name, "version": record.version, "target": record.target,
                "accepted": record.accepted, "decision": record.decision,
                "body": record.body, "entry_hash": record.entry_hash}

    def append_audit(self, record: AuditRecord) -> None:
        # No savepoint: a taken seq (only possible without SQLite's up-front write
        # lock) fails the whole transaction as a StoreConflictError, which is retried.
        self.conn.execute(insert(audit).values(**self._audit_values(record)))

    def append_audit_many(self, records: Sequence[AuditRecord]) -> None:
        if records:
            self.conn.execute(insert(audit), [self._audit_values(r) for r in records])

    def put_decision(self, digest: str, bundle: bytes) -> None:
        if self.get_decision(digest) is None:
            self.conn.execute(insert(decisions).values(digest=digest, bundle=bundle))

    def insert_checkpoint(self, record: CheckpointRecord) -> None:
        self.conn.execute(insert(checkpoints).values(
            seq=record.seq, entry_hash=record.entry_hash, time=record.time,
            bundle=record.bundle).prefix_with("OR REPLACE", dialect="sqlite"))

    def insert_event(self, seq: int, kind: str, time: str, payload: bytes) -> int:
        result = self.conn.execute(insert(events).values(seq=seq, kind=kind, time=time,
                                                         payload=payload))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def insert_delivery(self, event_id: int, hook: str, next_attempt_at: float) -> None:
        self.conn.execute(insert(deliveries).values(
            event_id=event_id, hook=hook, state="pending", attempts=0,
            next_attempt_at=next_attempt_at))

    def claim_delivery(self, delivery_id: int, now: float, lease_until: float) -> bool:
        done = self.conn.execute(update(deliveries).where(
            deliveries.c.id == delivery_id, deliveries.c.state == "pending",
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
        ).values(lease_until=lease_until))
        return done.rowcount == 1

    def finish_delivery(self, delivery_id: int, *, state: str, attempts: int,
                        next_attempt_at: float, last_error: str | None) -> None:
        self.conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
            state=state, attempts=attempts, next_attempt_at=next_attempt_at,
            last_error=last_error, lease_until=None))

    def insert_deployment(self, record: DeploymentRecord) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(deployments).values(
                    name=record.name, version=record.version, spec_digest=record.spec_digest,
                    statement=record.statement, decision=record.decision,
                    stage=record.stage.value, stage_decision=record.stage_decision,
                    created_at=record.created_at, created_seq=record.created_seq))
        except IntegrityError as exc:
            raise StoreConflictError(f"deployment {record.name} version {record.version} was "
                                     "created concurrently") from exc

    def set_deployment_stage(self, name: str, version: int, stage: Stage,
                             decision: str) -> None:
        self.conn.execute(update(deployments).where(
            and_(deployments.c.name == name, deployments.c.version == version)
        ).values(stage=stage.value, stage_decision=decision))

    # -- the catalog
    def set_description(self, name: str, version: int | None, text: str | None) -> None:
        model_id = self._need_model_id(name)
        if version is None:
            self.conn.execute(update(models).where(models.c.id == model_id)
                              .values(description=text))
        else:
            self.conn.execute(update(versions).where(
                versions.c.model_id == model_id, versions.c.version == version
            ).values(description=text))

    def set_tag(self, record: TagRecord) -> None:
        model_id = self._need_model_id(record.name)
        values = {"value": record.value, "seq": record.seq, "updated_at": record.updated_at}
        if record.version is None:
            done = self.conn.execute(update(model_tags).where(
                model_tags.c.model_id == model_id, model_tags.c.key == record.key
            ).values(**values))
            if done.rowcount == 0:
                self.conn.execute(insert(model_tags).values(model_id=model_id, key=record.key,
                                                            **values))
            return
        done = self.conn.execute(update(version_tags).where(
            version_tags.c.model_id == model_id, version_tags.c.version == record.version,
            version_tags.c.key == record.key).values(**values))
        if done.rowcount == 0:
            self.conn.execute(insert(version_tags).values(
                model_id=model_id, version=record.version, key=record.key, **values))

    def delete_tag(self, name: str, version: int | None, key: str) -> None:
        model_id = self._need_model_id(name)
        if version is None:
            self.conn.execute(delete(model_tags).where(
                model_tags.c.model_id == model_id, model_tags.c.key == key))
        else:
            self.conn.execute(delete(version_tags).where(
                version_tags.c.model_id == model_id, version_tags.c.version == version,
                version_tags.c.key == key))

    def set_version_metrics(self, name: str, version: int,
                            metrics: Mapping[str, float]) -> None:
        if metrics:
            model_id = self._need_model_id(name)
            self.conn.execute(insert(version_metrics), [
                {"model_id": model_id, "version": version, "key": key, "value": float(value)}
                for key, value in sorted(metrics.items())])

    def rename_model(self, record: RenameRecord) -> None:
        model_id = self._need_model_id(record.old_name)
        try:
            with self.conn.begin_nested():
                self.conn.execute(update(models).where(models.c.id == model_id)
                                  .values(name=record.new_name))
        except IntegrityError as exc:
            raise StoreConflictError(f"a model named {record.new_name} was created "
                                     "concurrently") from exc
        self.conn.execute(insert(model_renames).values(
            seq=record.seq, model_id=model_id, old_name=record.old_name,
            new_name=record.new_name, decision=record.decision, time=record.time))
        self._model_ids.pop(record.old_name, None)
        self._model_ids.pop(record.new_name, None)

    def delete_version(self, name: str, version: int, seq: int) -> None:
        self.conn.execute(update(versions).where(
            versions.c.model_id == self._need_model_id(name), versions.c.version == version,
            versions.c.deleted_seq.is_(None)).values(deleted_seq=seq))

    def delete_model(self, name: str, seq: int) -> None:
        model_id = self._need_model_id(name)
        self.conn.execute(update(versions).where(
            versions.c.model_id == model_id, versions.c.deleted_seq.is_(None)
        ).values(deleted_seq=seq))
        self.conn.execute(update(models).where(models.c.id == model_id)
                          .values(deleted_seq=seq))


# --------------------------------------------------------------------------- schema versions


@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply`` takes a database from ``version - 1`` to ``version``.

    ``apply`` runs inside the upgrade's write transaction (DDL is transactional on
    SQLite and PostgreSQL, so a failed step leaves the previous version) and may
    look at ``conn.dialect.name`` where the two differ. Version 1 is the baseline:
    a new database gets the current tables from :data:`metadata` and is stamped
    with the latest version, so the baseline has nothing to apply.
    """

    version: int
    description: str
    apply: Callable[[Connection], None] | None = None


def _add_catalog(conn: Connection) -> None:
    """Schema 2: descriptions and tombstones on models and versions; tags, metrics, renames.

    The new columns are nullable (existing rows: no description, in use); the new
    tables start empty (versions registered before have no indexed metrics).
    """
    postgres = conn.dialect.name == "postgresql"
    text_type = 'TEXT COLLATE "C"' if postgres else "TEXT"
    int_type = "BIGINT" if postgres else "INTEGER"
    for table in ("models", "versions"):
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN description {text_type}"))
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN deleted_seq {int_type}"))
    ix_versions_created.create(conn)
    ix_aliases_alias.create(conn)
    metadata.create_all(conn, tables=[model_tags, version_tags, version_metrics,
                                      model_renames])


#: Every schema version, oldest first. A change to the tables above appends a step
#: (and changes :data:`metadata` to match what the step produces).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "registry tables: models, versions, aliases, reviews, audit log, decisions, "
                 "checkpoints, events, deliveries, deployments"),
    Migration(2, "the catalog: descriptions, deletions, tags, indexed eval metrics, renames",
              _add_catalog),
)

SCHEMA_VERSION = str(MIGRATIONS[-1].version)


def _latest_version() -> int:
    return MIGRATIONS[-1].version


@dataclass(frozen=True)
class SchemaUpgrade:
    """What :meth:`SqlMetadataStore.upgrade_schema` did."""

    from_version: int
    to_version: int
    applied: tuple[str, ...]  # "N: description" of each step applied, in order

    @property
    def changed(self) -> bool:
        """Whether any step ran."""
        return bool(self.applied)


#: pg_advisory_xact_lock key taken by every write transaction: one writer per
#: database at a time, as SQLite's BEGIN IMMEDIATE (int64 from "mlprov.registry").
_PG_WRITE_LOCK = 0x6D6C70726F762E72


class SqlMetadataStore(MetadataStore):
    """The metadata store over a SQLAlchemy engine: SQLite or PostgreSQL (psycopg 3).

    Writers serialise on both: SQLite with ``BEGIN IMMEDIATE``; PostgreSQL with a
    transaction-scoped advisory lock taken first in READ COMMITTED, so every
    statement after it sees every earlier writer's commit (the change decides on
    current state, as on SQLite, and never aborts at commit). The lock wait is
    bounded by ``$MLPROV_BUSY_TIMEOUT`` (``lock_timeout``), then
    :class:`RegistryBusyError`. Readers take a REPEATABLE READ, read-only snapshot
    and never block or wait for writers. A serialization failure or deadlock
    (which this scheme does not produce, but a server may) and a taken unique key
    are :class:`StoreConflictError`, which the registry retries.
    """

    def __init__(self, url: str, *, description: str | None = None) -> None:
        self.url = url
        self._sqlite = url.startswith("sqlite")
        if description is None:
            try:
                shown = make_url(url).render_as_string(hide_password=True)
            except ArgumentError:
                shown = "(unparsable URL)"
            description = "registry database" if self._sqlite else f"registry database {shown}"
        self.description = description
        try:
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": _busy_timeout()} if self._sqlite else {})
        except ImportError as exc:
            raise InputError(f"{self.description} needs the PostgreSQL driver psycopg, which "
                             "is not installed", hint="pip install 'mlprov[team]'") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open {self.description}: {exc}") from exc
        if self._sqlite:
            self._configure_sqlite(self.engine)

    @staticmethod
    def _configure_sqlite(engine: Engine) -> None:
        timeout_ms = int(_busy_timeout() * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin() emit our BEGIN (see _on_begin), not the driver's.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            # Persistent once set; a no-op read on every later connection.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # FULL: a committed change survives a power cut (OFF only for throwaway
            # registries, MLPROV_REGISTRY_FSYNC=off, as in the test suite).
            cursor.execute(f"PRAGMA synchronous = {'FULL' if fsync_enabled() else 'OFF'}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("mlprov_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

    # ------------------------------------------------------------------ schema

    @staticmethod
    def _stored_version(conn: Connection) -> str | None:
        """The stored schema version; None when there are no registry tables."""
        if not inspect(conn).has_table(registry_state.name):
            return None
        return _Read(conn).get_state("schema_version")

    def _parse_version(self, stored: str | None) -> int:
        if stored is None:
            raise StoreError(f"{self.description} is not an mlprov registry database",
                             hint="run `mlprov registry init` to create a registry")
        if not stored.isdigit():
            raise StoreError(f"{self.description} has an unknown schema version {stored!r}",
                             hint="use the mlprov release that created the registry")
        version = int(stored)
        if version > _latest_version():
            raise StoreError(f"{self.description} has schema version {version}, newer than "
                             f"this mlprov reads (up to {_latest_version()})",
                             hint="upgrade mlprov: pip install -U mlprov")
        return version

    def create_schema(self) -> None:
        """Create the tables at the latest schema version; idempotent.

        A database that already has the tables keeps its version
        (:meth:`check_schema` then says whether it needs an upgrade).
        """
        with self._transaction(write=True) as conn:
            metadata.create_all(conn)
            if self._stored_version(conn) is None:
                _Write(conn).set_state("schema_version", str(_latest_version()))

    def schema_version(self) -> int:
        """The database's schema version.

        Raises:
            StoreError: not a registry database, or newer than this mlprov.
        """
        with self._transaction(write=False) as conn:
            stored = self._stored_version(conn)
        return self._parse_version(stored)

    def check_schema(self) -> None:
        """Refuse a database that is not a registry or not at this mlprov's schema version.

        Raises:
            StoreError: not a registry; newer than this mlprov (upgrade mlprov);
                older (run ``mlprov registry upgrade``).
        """
        version = self.schema_version()
        if version < _latest_version():
            raise StoreError(f"{self.description} has schema version {version}; this mlprov "
                             f"needs version {_latest_version()}",
                             hint="back up the registry, then run `mlprov registry upgrade`")

    def upgrade_schema(self) -> SchemaUpgrade:
        """Apply every migration the database lacks, in one write transaction.

        Idempotent: a database at the latest version is left alone.

        Raises:
            StoreError: not a registry database, or newer than this mlprov.
            RegistryBusyError: another writer held the registry too long.
        """
        with self._transaction(write=True) as conn:
            current = self._parse_version(self._stored_version(conn))
            applied: list[str] = []
            for step in MIGRATIONS:
                if step.version <= current:
                    continue
                if step.apply is not None:
                    step.apply(conn)
                applied.append(f"{step.version}: {step.description}")
            if applied:
                _Write(conn).set_state("schema_version", str(_latest_version()))
        return SchemaUpgrade(current, max(current, _latest_version()), tuple(applied))

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as raw:
                if self._sqlite:
                    conn = raw.execution_options(
                        mlprov_begin="IMMEDIATE" if write else "DEFERRED")
                elif write:
                    conn = raw.execution_options(isolation_level="READ COMMITTED")
                else:
                    conn = raw.execution_options(isolation_level="REPEATABLE READ",
                                                 postgresql_readonly=True)
                with conn.begin():
                    if write and not self._sqlite:
                        self._lock_for_write(conn)
                    yield conn
        except OperationalError as exc:
            if _is_busy(exc):
                raise RegistryBusyError(
                    f"{self.description} is locked by another writer") from exc
            if _is_conflict(exc):
                raise StoreConflictError(f"{self.description} refused a concurrent change: "
                                         f"{_driver_message(exc)}") from exc
            raise StoreError(f"{self.description} failed: {_driver_message(exc)}") from exc
        except IntegrityError as exc:
            raise StoreConflictError(f"{self.description} refused a conflicting change: "
                                     f"{_driver_message(exc)}") from exc
        except DBAPIError as exc:
            raise StoreError(f"{self.description} failed: {_driver_message(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.description} failed: {exc}") from exc

    @staticmethod
    def _lock_for_write(conn: Connection) -> None:
        # lock_timeout 0 would mean "wait for ever"; the smallest bound is 1 ms.
        timeout_ms = max(1, int(_busy_timeout() * 1000))
        conn.execute(select(func.set_config("lock_timeout", f"{timeout_ms}ms", True)))
        conn.execute(select(func.pg_advisory_xact_lock(_PG_WRITE_LOCK)))

    @contextmanager
    def read(self) -> Iterator[ReadTransaction]:
        """A read transaction: a consistent snapshot that never waits for writers."""
        with self._transaction(write=False) as conn:
            yield _Read(conn)

    @contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        """A write transaction, holding the registry's write lock from its start."""
        with self._transaction(write=True) as conn:
            yield _Write(conn)

    def copy_rows_to(self, target: SqlMetadataStore, *, state: dict[str, str | None],
                     progress: Callable[[str], None] | None = None,
                     batch: int = 2000) -> dict[str, int]:
        """Copy every row into ``target``'s empty tables, as stored (ids included).

        One snapshot of this database, one write transaction on ``target``: the
        copy is all or nothing. ``state`` overrides registry-state keys (None drops
        one); ``schema_version`` stays the target's own. Returns rows per table.

        Raises:
            InputError: ``target`` already holds a registry.
            StoreError: either database failed (nothing is kept in ``target``).
        """
        counts: dict[str, int] = {}
        with self._transaction(write=False) as source, \
                target._transaction(write=True) as dest:
            if _Read(dest).get_state("registry_id") is not None:
                raise InputError(f"{target.description} already holds a registry",
                                 hint="migrate into an empty database")
            if self._parse_version(self._stored_version(source)) != \
                    target._parse_version(target._stored_version(dest)):
                raise StoreError("the two databases are at different schema versions",
                                 hint="run `mlprov registry upgrade` on the source first")
            for table in metadata.sorted_tables:
                order = list(table.primary_key.columns)
                rows = source.execute(select(table).order_by(*order)).mappings()
                count = 0
                chunk: list[dict[str, Any]] = []
                for row in rows:
                    values = dict(row)
                    if table is registry_state:
                        key = values["key"]
                        if key == "schema_version" or key in state:
                            continue
                    chunk.append(values)
                    if len(chunk) >= batch:
                        dest.execute(insert(table), chunk)
                        count += len(chunk)
                        chunk = []
                if chunk:
                    dest.execute(insert(table), chunk)
                    count += len(chunk)
                if table is registry_state:
                    for key, value in state.items():
                        if value is not None:
                            dest.execute(insert(table).values(key=key, value=value))
                            count += 1
                counts[table.name] = count
                if progress is not None and count:
                    progress(f"copied {count} rows of {table.name}")
            if not target._sqlite:  # serial columns continue after the copied ids
                for table in metadata.sorted_tables:
                    for column in table.primary_key.columns:
                        if column.autoincrement is True:
                            following = select(func.coalesce(func.max(column), 0) + 1)
                            dest.execute(select(func.setval(
                                func.pg_get_serial_sequence(table.name, column.name),
                                following.scalar_subquery(), False)))
        return counts

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self.engine.dispose()
