"""The embedded registry's metadata store: reads on the standard library, writes on SQLAlchemy.

A command that only reads (``mlprov resolve``, ``models list``, ``alias
history``, ``audit log``) should not pay for importing SQLAlchemy (about a
quarter of a second), so :class:`SqliteMetadataStore` answers every
:class:`~.interface.ReadTransaction` method with :mod:`sqlite3` over the same
schema :mod:`._sql` creates, and hands writes, schema creation and upgrades to
an :class:`~._sql.SqlMetadataStore` made on first use. Both open the same
database file; SQLite's WAL mode gives each read transaction its own snapshot
(``BEGIN DEFERRED``: the snapshot is taken at the first read), so a reader
sees exactly what a committed writer left, whichever library wrote it.

The SQL here is fixed text: table and column names come from this module,
every value is a bound parameter. A search with filter clauses or metric
ordering is built by :mod:`._sqlsearch` (SQLAlchemy, imported then) and run on
this module's connection, in the same snapshot.
"""

# S608: every statement here is assembled from this module's own constants (table and
# column names, fixed clauses); values, including every string from a caller, are bound.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.registry._busy import busy_timeout
from mlprov.registry.interface import (
    AliasRecord,
    AuditRecord,
    CheckpointRecord,
    DeliveryRecord,
    DeploymentRecord,
    EventRecord,
    MetadataStore,
    ModelRecord,
    ReadTransaction,
    RegistryBusyError,
    RenameRecord,
    ReviewRecord,
    Stage,
    StoreError,
    TagRecord,
    VersionRecord,
    WriteTransaction,
)

if TYPE_CHECKING:
    from mlprov.registry._filter import SearchQuery
    from mlprov.registry._sql import SchemaUpgrade, SqlMetadataStore

__all__ = ["LATEST_SCHEMA", "SqliteMetadataStore"]

#: The schema version this mlprov writes (``_sql.MIGRATIONS[-1].version``; a test
#: keeps the two equal). Any other stored version is judged by :mod:`._sql`.
LATEST_SCHEMA = 2
#: Rows fetched at a time by the iterating reads (bounded memory).
_BATCH = 500
#: Idle read connections kept open.
_POOL = 4

_VERSION_COLUMNS = ("version, identity, root_digest, files_digest, evidence_digest, "
                    "registration, scan_digest, reproducible, stage, stage_decision, "
                    "created_at, created_seq, description, deleted_seq")
_V_VERSION_COLUMNS = ", ".join(f"v.{c.strip()}" for c in _VERSION_COLUMNS.split(","))
_AUDIT_COLUMNS = "seq, time, kind, name, version, target, accepted, decision, body, entry_hash"
_DELIVERY_COLUMNS = "id, event_id, hook, state, attempts, next_attempt_at, last_error"
_DEPLOYMENT_COLUMNS = ("name, version, spec_digest, statement, decision, stage, "
                       "stage_decision, created_at, created_seq")
_ALIAS_COLUMNS = "alias, version, decision, seq, updated_at"
_RENAME_COLUMNS = "old_name, new_name, seq, decision, time"
#: The order columns a search without filter clauses may name (a closed set).
_MODEL_ORDER = {"name": "name", "created_at": "created_at"}


def _latest_schema() -> int:
    """The schema version :mod:`._sql` migrates to.

    Its own word once it is loaded (a process that changed its migrations is judged
    by them), else :data:`LATEST_SCHEMA`.
    """
    loaded = sys.modules.get("mlprov.registry._sql")
    return LATEST_SCHEMA if loaded is None else int(loaded.MIGRATIONS[-1].version)


def _version(name: str, row: Sequence[Any]) -> VersionRecord:
    return VersionRecord(
        name=name, version=row[0], identity=row[1], root_digest=row[2], files_digest=row[3],
        evidence_digest=row[4], registration=row[5], scan_digest=row[6],
        reproducible=bool(row[7]), stage=Stage(row[8]), stage_decision=row[9],
        created_at=row[10], created_seq=row[11], description=row[12], deleted_seq=row[13])


def _audit(row: Sequence[Any]) -> AuditRecord:
    return AuditRecord(seq=row[0], time=row[1], kind=row[2], name=row[3], version=row[4],
                       target=row[5], accepted=bool(row[6]), decision=row[7],
                       body=bytes(row[8]), entry_hash=row[9])


def _delivery(row: Sequence[Any]) -> DeliveryRecord:
    return DeliveryRecord(id=row[0], event_id=row[1], hook=row[2], state=row[3],
                          attempts=row[4], next_attempt_at=row[5], last_error=row[6])


def _deployment(row: Sequence[Any]) -> DeploymentRecord:
    return DeploymentRecord(name=row[0], version=row[1], spec_digest=row[2],
                            statement=row[3], decision=row[4], stage=Stage(row[5]),
                            stage_decision=row[6], created_at=row[7], created_seq=row[8])


def _alias(name: str, row: Sequence[Any]) -> AliasRecord:
    return AliasRecord(name=name, alias=row[0], version=row[1], decision=row[2], seq=row[3],
                       updated_at=row[4])


def _rename(row: Sequence[Any]) -> RenameRecord:
    return RenameRecord(old_name=row[0], new_name=row[1], seq=row[2], decision=row[3],
                        time=row[4])


def _marks(count: int) -> str:
    return ", ".join("?" * count)


class _SqliteRead(ReadTransaction):
    """Every read of :class:`~.interface.ReadTransaction`, in one SQLite snapshot."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._model_ids: dict[str, int | None] = {}
        self._states: dict[str, str] | None = None

    # -- helpers
    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params).fetchone()

    def _iter(self, sql: str, params: Sequence[Any] = (), *, batch: int = _BATCH
              ) -> Iterator[Any]:
        cursor = self.conn.execute(sql, params)
        try:
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def _model_id(self, name: str) -> int | None:
        if name not in self._model_ids:
            row = self._one("SELECT id FROM models WHERE name = ?", (name,))
            self._model_ids[name] = None if row is None else row[0]
        return self._model_ids[name]

    def _ids(self, names: Sequence[str]) -> dict[int, str]:
        out: dict[int, str] = {}
        wanted = sorted(set(names))
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start:start + _BATCH]
            for model_id, name in self._all(
                    f"SELECT id, name FROM models WHERE name IN ({_marks(len(chunk))})", chunk):
                out[model_id] = name
        return out

    # -- state and models
    def get_state(self, key: str) -> str | None:
        # A handful of rows read at once and kept for the transaction (as _sql does).
        if self._states is None:
            self._states = dict(self._all("SELECT key, value FROM registry_state"))
        return self._states.get(key)

    def get_model(self, name: str) -> ModelRecord | None:
        row = self._one("SELECT id, created_at, description, deleted_seq, "
                        "(SELECT max(version) FROM versions WHERE model_id = models.id) "
                        "FROM models WHERE name = ?", (name,))
        self._model_ids[name] = None if row is None else row[0]
        if row is None:
            return None
        return ModelRecord(name=name, created_at=row[1], latest_version=row[4] or 0,
                           description=row[2], deleted_seq=row[3])

    def _models(self, *, deleted: bool) -> list[ModelRecord]:
        where = "" if deleted else "WHERE m.deleted_seq IS NULL "
        rows = self._all(
            "SELECT m.name, m.created_at, m.description, m.deleted_seq, latest.latest "
            "FROM models AS m LEFT OUTER JOIN (SELECT model_id, max(version) AS latest "
            "FROM versions GROUP BY model_id) AS latest ON latest.model_id = m.id "
            f"{where}ORDER BY m.name")
        return [ModelRecord(name=r[0], created_at=r[1], latest_version=r[4] or 0,
                            description=r[2], deleted_seq=r[3]) for r in rows]

    def list_models(self) -> list[ModelRecord]:
        return self._models(deleted=False)

    def all_models(self) -> list[ModelRecord]:
        return self._models(deleted=True)

    # -- versions
    def get_version(self, name: str, version: int) -> VersionRecord | None:
        model_id = self._model_id(name)
        if model_id is None:
            return None
        row = self._one(f"SELECT {_VERSION_COLUMNS} FROM versions "
                        "WHERE model_id = ? AND version = ?", (model_id, version))
        return None if row is None else _version(name, row)

    def list_versions(self, name: str, *, stage: Stage | None = None,
                      limit: int | None = None, descending: bool = False
                      ) -> list[VersionRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        sql = (f"SELECT {_VERSION_COLUMNS} FROM versions "
               "WHERE model_id = ? AND deleted_seq IS NULL")
        params: list[Any] = [model_id]
        if stage is not None:
            sql += " AND stage = ?"
            params.append(stage.value)
        sql += " ORDER BY version DESC" if descending else " ORDER BY version"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_version(name, r) for r in self._all(sql, params)]

    def find_versions(self, name: str, identity: str) -> list[VersionRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        rows = self._all(f"SELECT {_VERSION_COLUMNS} FROM versions WHERE model_id = ? AND "
                         "identity = ? AND deleted_seq IS NULL ORDER BY version",
                         (model_id, identity))
        return [_version(name, r) for r in rows]

    def find_by_root(self, root_digest: str, *, limit: int = 16) -> list[VersionRecord]:
        rows = self._all(f"SELECT m.name, {_V_VERSION_COLUMNS} FROM versions AS v "
                         "JOIN models AS m ON m.id = v.model_id WHERE v.root_digest = ? "
                         "ORDER BY v.created_seq LIMIT ?", (root_digest, limit))
        return [_version(r[0], r[1:]) for r in rows]

    def count_versions(self, name: str) -> dict[Stage, int]:
        model_id = self._model_id(name)
        counts = dict.fromkeys(Stage, 0)
        if model_id is None:
            return counts
        for stage, count in self._all("SELECT stage, count(*) FROM versions WHERE "
                                      "model_id = ? AND deleted_seq IS NULL GROUP BY stage",
                                      (model_id,)):
            counts[Stage(stage)] = count
        return counts

    def versions_for_replay(self) -> Iterator[VersionRecord]:
        for row in self._iter(f"SELECT m.name, {_V_VERSION_COLUMNS} FROM versions AS v "
                              "JOIN models AS m ON m.id = v.model_id ORDER BY v.created_seq"):
            yield _version(row[0], row[1:])

    # -- the catalog: tags, metrics, renames, search
    def list_tags(self, name: str, version: int | None = None) -> list[TagRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        if version is None:
            rows = self._all("SELECT key, value, seq, updated_at FROM model_tags "
                             "WHERE model_id = ? ORDER BY key", (model_id,))
        else:
            rows = self._all("SELECT key, value, seq, updated_at FROM version_tags "
                             "WHERE model_id = ? AND version = ? ORDER BY key",
                             (model_id, version))
        return [TagRecord(name=name, version=version, key=r[0], value=r[1], seq=r[2],
                          updated_at=r[3]) for r in rows]

    def model_tags(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        ids = self._ids(names)
        out: dict[str, dict[str, str]] = {}
        wanted = sorted(ids)
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start:start + _BATCH]
            for model_id, key, value in self._all(
                    "SELECT model_id, key, value FROM model_tags "
                    f"WHERE model_id IN ({_marks(len(chunk))}) ORDER BY key", chunk):
                out.setdefault(ids[model_id], {})[key] = value
        return out

    def _per_version(self, table: str, keys: Sequence[tuple[str, int]]
                     ) -> dict[tuple[str, int], dict[str, Any]]:
        ids = self._ids([name for name, _v in keys])
        by_name = {name: model_id for model_id, name in ids.items()}
        wanted = [(by_name[n], v) for n, v in keys if n in by_name]
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start:start + _BATCH]
            pairs = ", ".join("(?, ?)" for _ in chunk)
            flat = [x for pair in chunk for x in pair]
            for model_id, version, key, value in self._all(
                    f"SELECT model_id, version, key, value FROM {table} "
                    f"WHERE (model_id, version) IN (VALUES {pairs}) ORDER BY key", flat):
                out.setdefault((ids[model_id], version), {})[key] = value
        return out

    def version_tags(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                    dict[str, str]]:
        return self._per_version("version_tags", keys)

    def version_metrics(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                       dict[str, float]]:
        return self._per_version("version_metrics", keys)

    def aliases_of(self, names: Sequence[str]) -> dict[str, list[AliasRecord]]:
        ids = self._ids(names)
        out: dict[str, list[AliasRecord]] = {}
        wanted = sorted(ids)
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start:start + _BATCH]
            for row in self._all(f"SELECT model_id, {_ALIAS_COLUMNS} FROM aliases "
                                 f"WHERE model_id IN ({_marks(len(chunk))}) ORDER BY alias",
                                 chunk):
                name = ids[row[0]]
                out.setdefault(name, []).append(_alias(name, row[1:]))
        if len(wanted) > _BATCH:  # chunks each in alias order; the whole list must be too
            for records in out.values():
                records.sort(key=lambda record: record.alias)
        return out

    def all_tags(self) -> list[TagRecord]:
        out = [TagRecord(name=r[0], version=None, key=r[1], value=r[2], seq=r[3],
                         updated_at=r[4])
               for r in self._all("SELECT m.name, t.key, t.value, t.seq, t.updated_at "
                                  "FROM model_tags AS t JOIN models AS m ON m.id = t.model_id "
                                  "ORDER BY m.name, t.key")]
        out.extend(TagRecord(name=r[0], version=r[1], key=r[2], value=r[3], seq=r[4],
                             updated_at=r[5])
                   for r in self._all("SELECT m.name, t.version, t.key, t.value, t.seq, "
                                      "t.updated_at FROM version_tags AS t JOIN models AS m "
                                      "ON m.id = t.model_id ORDER BY m.name, t.version, t.key"))
        return out

    def all_metrics(self) -> dict[tuple[str, int], dict[str, float]]:
        out: dict[tuple[str, int], dict[str, float]] = {}
        for name, version, key, value in self._all(
                "SELECT m.name, t.version, t.key, t.value FROM version_metrics AS t "
                "JOIN models AS m ON m.id = t.model_id ORDER BY m.name, t.version, t.key"):
            out.setdefault((name, version), {})[key] = value
        return out

    def renames_of(self, name: str) -> list[RenameRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        return [_rename(r) for r in self._all(
            f"SELECT {_RENAME_COLUMNS} FROM model_renames WHERE model_id = ? ORDER BY seq",
            (model_id,))]

    def renamed_from(self, old_name: str) -> tuple[RenameRecord, str] | None:
        row = self._one("SELECT r.old_name, r.new_name, r.seq, r.decision, r.time, m.name "
                        "FROM model_renames AS r JOIN models AS m ON m.id = r.model_id "
                        "WHERE r.old_name = ? ORDER BY r.seq DESC LIMIT 1", (old_name,))
        return None if row is None else (_rename(row[:5]), row[5])

    def all_renames(self) -> list[RenameRecord]:
        return [_rename(r) for r in self._all(
            f"SELECT {_RENAME_COLUMNS} FROM model_renames ORDER BY seq")]

    def _compiled(self, statement: Any) -> list[Any]:
        """Run a SQLAlchemy statement of :mod:`._sqlsearch` on this snapshot's connection."""
        from sqlalchemy.dialects import sqlite

        compiled = statement.compile(dialect=sqlite.dialect(),
                                     compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        values = [params[name] for name in compiled.positiontup or ()]
        return self._all(str(compiled), values)

    def search_models(self, query: SearchQuery) -> list[ModelRecord]:
        if not query.filter.clauses and all(k.field in _MODEL_ORDER for k in query.order):
            rows = self._model_page(query)
        else:
            from mlprov.registry._sql import CATALOG
            from mlprov.registry._sqlsearch import model_search

            statement = model_search(query, CATALOG, "sqlite")
            columns = [c.name for c in statement.selected_columns]
            wanted = [columns.index(c) for c in ("id", "name", "created_at", "description",
                                                 "deleted_seq")]
            rows = [[r[i] for i in wanted] for r in self._compiled(statement)]
        latest: dict[int, int] = {}
        ids = [r[0] for r in rows]
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start:start + _BATCH]
            latest.update(self._all(f"SELECT model_id, max(version) FROM versions WHERE "
                                    f"model_id IN ({_marks(len(chunk))}) GROUP BY model_id",
                                    chunk))
        return [ModelRecord(name=r[1], created_at=r[2], latest_version=latest.get(r[0], 0),
                            description=r[3], deleted_seq=r[4]) for r in rows]

    def _model_page(self, query: SearchQuery) -> list[Any]:
        """A page of models without filter clauses: the keyset order of :mod:`._sqlsearch`."""
        sql = "SELECT id, name, created_at, description, deleted_seq FROM models " \
              "WHERE deleted_seq IS NULL"
        params: list[Any] = []
        keys = [(_MODEL_ORDER[k.field], k.descending) for k in query.order]
        if query.after is not None and keys:
            # Rows strictly after the position: (k1 > v1) OR (k1 = v1 AND k2 > v2) ...,
            # with the first key's bound repeated so SQLite seeks on its index.
            alternatives = []
            for i, (column, descending) in enumerate(keys):
                equal = [f"{c} = ?" for c, _d in keys[:i]]
                params.extend(query.after[:i])
                bound = f"{column} {'<' if descending else '>'} ?"
                alternatives.append(" AND ".join([*equal, bound]))
                params.append(query.after[i])
            first, descending = keys[0]
            sql += f" AND {first} {'<=' if descending else '>='} ? AND (" + \
                   " OR ".join(f"({a})" for a in alternatives) + ")"
            params.insert(0, query.after[0])
        if keys:
            sql += " ORDER BY " + ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in keys)
        sql += " LIMIT ?"
        params.append(query.limit)
        return self._all(sql, params)

    def search_versions(self, query: SearchQuery) -> list[VersionRecord]:
        from mlprov.registry._sql import CATALOG
        from mlprov.registry._sqlsearch import version_search

        model_id = None
        if query.name is not None:
            model_id = self._model_id(query.name)
            if model_id is None:
                return []
        statement = version_search(query, CATALOG, "sqlite", model_id)
        columns = [c.name for c in statement.selected_columns]
        wanted = [columns.index(c.strip()) for c in _VERSION_COLUMNS.split(",")]
        return [_version(r[0], [r[i] for i in wanted]) for r in self._compiled(statement)]

    # -- aliases and reviews
    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        model_id = self._model_id(name)
        if model_id is None:
            return None
        row = self._one(f"SELECT {_ALIAS_COLUMNS} FROM aliases WHERE model_id = ? AND "
                        "alias = ?", (model_id, alias))
        return None if row is None else _alias(name, row)

    def list_aliases(self, name: str) -> list[AliasRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        return [_alias(name, r) for r in self._all(
            f"SELECT {_ALIAS_COLUMNS} FROM aliases WHERE model_id = ? ORDER BY alias",
            (model_id,))]

    def all_aliases(self) -> list[AliasRecord]:
        columns = ", ".join("a." + c.strip() for c in _ALIAS_COLUMNS.split(","))
        rows = self._all(f"SELECT m.name, {columns} "
                         "FROM aliases AS a JOIN models AS m ON m.id = a.model_id "
                         "ORDER BY m.name, a.alias")
        return [_alias(r[0], r[1:]) for r in rows]

    def list_reviews(self, name: str, version: int) -> list[ReviewRecord]:
        model_id = self._model_id(name)
        if model_id is None:
            return []
        return [ReviewRecord(name=name, version=r[0], digest=r[1], added_at=r[2], seq=r[3])
                for r in self._all("SELECT version, digest, added_at, seq FROM reviews "
                                   "WHERE model_id = ? AND version = ? ORDER BY id",
                                   (model_id, version))]

    def reviews_of(self, name: str, versions: Sequence[int]) -> dict[int, list[ReviewRecord]]:
        model_id = self._model_id(name)
        out: dict[int, list[ReviewRecord]] = {}
        wanted = sorted(set(versions))
        if model_id is None:
            return out
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start:start + _BATCH]
            for r in self._all("SELECT version, digest, added_at, seq FROM reviews WHERE "
                               f"model_id = ? AND version IN ({_marks(len(chunk))}) "
                               "ORDER BY id", [model_id, *chunk]):
                out.setdefault(r[0], []).append(ReviewRecord(
                    name=name, version=r[0], digest=r[1], added_at=r[2], seq=r[3]))
        return out

    # -- audit
    def audit_head(self) -> AuditRecord | None:
        row = self._one(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1")
        return None if row is None else _audit(row)

    def audit_entry(self, seq: int) -> AuditRecord | None:
        row = self._one(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE seq = ?", (seq,))
        return None if row is None else _audit(row)

    def _audit_query(self, *, since: int, until: int | None, limit: int | None,
                     name: str | None, target: str | None, accepted: bool | None,
                     descending: bool) -> tuple[str, list[Any]]:
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE seq > ?"
        params: list[Any] = [since]
        for column, value in (("name", name), ("target", target)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if until is not None:
            sql += " AND seq <= ?"
            params.append(until)
        if accepted is not None:
            sql += " AND accepted = ?"
            params.append(1 if accepted else 0)
        sql += " ORDER BY seq DESC" if descending else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return sql, params

    def audit_entries(self, *, since: int = 0, until: int | None = None,
                      limit: int | None = None, name: str | None = None,
                      target: str | None = None, accepted: bool | None = None,
                      descending: bool = False) -> list[AuditRecord]:
        sql, params = self._audit_query(since=since, until=until, limit=limit, name=name,
                                        target=target, accepted=accepted,
                                        descending=descending)
        return [_audit(r) for r in self._all(sql, params)]

    def stream_audit(self, *, since: int = 0, until: int | None = None,
                     limit: int | None = None, name: str | None = None,
                     target: str | None = None, accepted: bool | None = None,
                     batch: int = _BATCH) -> Iterator[AuditRecord]:
        # One cursor, fetched ``batch`` rows at a time, in this transaction's snapshot.
        sql, params = self._audit_query(since=since, until=until, limit=limit, name=name,
                                        target=target, accepted=accepted, descending=False)
        for row in self._iter(sql, params, batch=batch):
            yield _audit(row)

    def iter_audit(self, *, since: int = 0, batch: int = 5000) -> Iterator[AuditRecord]:
        for row in self._iter(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE seq > ? "
                              "ORDER BY seq", (since,), batch=batch):
            yield _audit(row)

    def get_decision(self, digest: str) -> bytes | None:
        row = self._one("SELECT bundle FROM decisions WHERE digest = ?", (digest,))
        return None if row is None else bytes(row[0])

    def checkpoints(self) -> list[CheckpointRecord]:
        return [CheckpointRecord(seq=r[0], entry_hash=r[1], time=r[2], bundle=bytes(r[3]))
                for r in self._all("SELECT seq, entry_hash, time, bundle FROM checkpoints "
                                   "ORDER BY seq")]

    # -- events
    def events(self, *, since: int = 0, limit: int | None = None) -> list[EventRecord]:
        sql = "SELECT id, seq, kind, time, payload FROM events WHERE id > ? ORDER BY id"
        params: list[Any] = [since]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [EventRecord(id=r[0], seq=r[1], kind=r[2], time=r[3], payload=bytes(r[4]))
                for r in self._all(sql, params)]

    def get_event(self, event_id: int) -> EventRecord | None:
        r = self._one("SELECT id, seq, kind, time, payload FROM events WHERE id = ?",
                      (event_id,))
        return None if r is None else EventRecord(id=r[0], seq=r[1], kind=r[2], time=r[3],
                                                  payload=bytes(r[4]))

    def due_deliveries(self, now: float, *, limit: int = 100) -> list[DeliveryRecord]:
        return [_delivery(r) for r in self._all(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND "
            "next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?) "
            "ORDER BY id LIMIT ?", (now, now, limit))]

    def deliveries(self, *, event_id: int | None = None) -> list[DeliveryRecord]:
        if event_id is None:
            rows = self._all(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries ORDER BY id")
        else:
            rows = self._all(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE event_id = ? "
                             "ORDER BY id", (event_id,))
        return [_delivery(r) for r in rows]

    # -- deployments
    def get_deployment(self, name: str, version: int) -> DeploymentRecord | None:
        row = self._one(f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE name = ? AND "
                        "version = ?", (name, version))
        return None if row is None else _deployment(row)

    def list_deployments(self, name: str | None = None) -> list[DeploymentRecord]:
        if name is None:
            rows = self._all(f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments "
                             "ORDER BY name, version")
        else:
            rows = self._all(f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE name = ? "
                             "ORDER BY name, version", (name,))
        return [_deployment(r) for r in rows]


class SqliteMetadataStore(MetadataStore):
    """An embedded registry's SQLite database: reads with :mod:`sqlite3`, writes via :mod:`._sql`.

    Reads use a small pool of connections (one per concurrent reader; a
    connection is only ever used by one thread at a time), each in
    autocommit mode so this module issues ``BEGIN``/``ROLLBACK`` itself.
    """

    def __init__(self, path: Path, *, description: str | None = None) -> None:
        self.path = path
        self.description = description or f"registry database {path}"
        self._writer: SqlMetadataStore | None = None
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writes (SQLAlchemy)

    @property
    def writer(self) -> SqlMetadataStore:
        """The SQLAlchemy store over the same file: writes, schema creation, upgrades."""
        with self._lock:
            if self._writer is None:
                from mlprov.registry._sql import SqlMetadataStore, sqlite_url

                self._writer = SqlMetadataStore(sqlite_url(self.path),
                                                description=self.description)
            return self._writer

    @property
    def url(self) -> str:
        """The database's SQLAlchemy URL (the server keeps its token tables there)."""
        return self.writer.url

    @property
    def engine(self) -> Any:
        """The writer's SQLAlchemy engine (for tools and tests that run SQL directly)."""
        return self.writer.engine

    def create_schema(self) -> None:
        """Create the tables if they do not exist (idempotent)."""
        self.writer.create_schema()

    def write(self) -> AbstractContextManager[WriteTransaction]:
        """A write transaction (``BEGIN IMMEDIATE``, through :mod:`._sql`)."""
        return self.writer.write()

    def schema_version(self) -> int:
        """The database's schema version (see :meth:`SqlMetadataStore.schema_version`)."""
        return self.writer.schema_version()

    def upgrade_schema(self) -> SchemaUpgrade:
        """Apply the migrations the database lacks (see :meth:`SqlMetadataStore.upgrade_schema`)."""
        return self.writer.upgrade_schema()

    def check_schema(self) -> None:
        """Refuse a database that is not a registry at this mlprov's schema version.

        The usual case (the latest version) is read here; anything else is judged,
        with its message, by :meth:`SqlMetadataStore.check_schema`.
        """
        with self.read() as tx:
            assert isinstance(tx, _SqliteRead)
            table = tx._one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                            "name = 'registry_state'")
            stored = tx.get_state("schema_version") if table is not None else None
        if stored != str(_latest_schema()):
            self.writer.check_schema()

    # ------------------------------------------------------------------ reads (sqlite3)

    def _connect(self) -> sqlite3.Connection:
        try:
            # mode=rw: never create a database that is not there.
            conn = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=rw", uri=True,
                                   timeout=busy_timeout(), isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.description}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout() * 1000)}")
        return conn

    def _failed(self, exc: sqlite3.Error) -> StoreError:
        message = " ".join(str(exc).split())
        if isinstance(exc, sqlite3.OperationalError) and \
                ("locked" in message.lower() or "busy" in message.lower()):
            return RegistryBusyError(f"{self.description} is locked by another writer")
        return StoreError(f"{self.description} failed: {message}")

    @contextmanager
    def read(self) -> Iterator[ReadTransaction]:
        """A read transaction: one SQLite snapshot (WAL), never waiting for writers."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        keep = True
        try:
            conn.execute("BEGIN DEFERRED")
            yield _SqliteRead(conn)
        except sqlite3.Error as exc:
            keep = False
            raise self._failed(exc) from exc
        finally:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                keep = False
            with self._lock:
                if keep and len(self._idle) < _POOL:
                    self._idle.append(conn)
                else:
                    conn.close()

    def close(self) -> None:
        """Close the idle read connections and the writer's engine (both reopen on use)."""
        with self._lock:
            idle, self._idle = self._idle, []
            writer, self._writer = self._writer, None
        for conn in idle:
            conn.close()
        if writer is not None:
            writer.close()
