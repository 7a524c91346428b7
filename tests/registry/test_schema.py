"""Schema versions and migrations, on SQLite and PostgreSQL.

A new database is stamped with the latest version; a database newer than the
code is refused (upgrade mlprov); an older one is refused with a hint to run
``mlprov registry upgrade``, which applies the missing steps in one transaction.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from mlprov.errors import InputError
from mlprov.registry import _sql
from mlprov.registry._sql import Migration, SqlMetadataStore, sqlite_url
from mlprov.registry._stores_url import metadata_store_for, normalise_database_url
from mlprov.registry.interface import Stage, StoreError

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "registry-db"


def _add_note_column(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE registry_state ADD COLUMN note TEXT"))


def _half_then_fail(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE half_done (id INTEGER)"))
    raise RuntimeError("step failed")


LATEST = _sql.MIGRATIONS[-1].version
NEXT = LATEST + 1


def _with_step(monkeypatch: pytest.MonkeyPatch, apply: object) -> None:
    monkeypatch.setattr(_sql, "MIGRATIONS", (
        *_sql.MIGRATIONS, Migration(NEXT, "a note on each setting", apply)))  # type: ignore[arg-type]


def test_a_new_database_is_at_the_latest_version(metadata_url: str):
    store = SqlMetadataStore(metadata_url)
    store.create_schema()
    store.check_schema()
    assert store.schema_version() == int(_sql.SCHEMA_VERSION) == LATEST == 2
    upgrade = store.upgrade_schema()
    assert (upgrade.from_version, upgrade.to_version, upgrade.changed) == (LATEST, LATEST, False)
    store.close()


def test_an_empty_database_is_not_a_registry(metadata_url: str):
    store = SqlMetadataStore(metadata_url)
    with pytest.raises(StoreError, match="not an mlprov registry database") as caught:
        store.check_schema()
    assert "registry init" in caught.value.diagnostics()
    with pytest.raises(StoreError, match="not an mlprov registry database"):
        store.upgrade_schema()
    store.close()


def test_a_newer_database_is_refused(metadata_url: str):
    store = SqlMetadataStore(metadata_url)
    store.create_schema()
    with store.write() as tx:
        tx.set_state("schema_version", "99")
    for attempt in (store.check_schema, store.upgrade_schema):
        with pytest.raises(StoreError, match="schema version 99, newer") as caught:
            attempt()
        assert "upgrade mlprov" in caught.value.diagnostics()
    with store.read() as tx:
        assert tx.get_state("schema_version") == "99"  # untouched
    store.close()


def test_an_older_database_needs_an_upgrade(metadata_url: str,
                                            monkeypatch: pytest.MonkeyPatch):
    old = SqlMetadataStore(metadata_url)
    old.create_schema()  # the latest version, one before the step added here
    old.close()
    _with_step(monkeypatch, _add_note_column)
    store = SqlMetadataStore(metadata_url)
    with pytest.raises(StoreError, match=f"schema version {LATEST}; this mlprov needs version "
                                         f"{NEXT}") as caught:
        store.check_schema()
    assert "mlprov registry upgrade" in caught.value.diagnostics()
    upgrade = store.upgrade_schema()
    assert (upgrade.from_version, upgrade.to_version) == (LATEST, NEXT)
    assert upgrade.applied == (f"{NEXT}: a note on each setting",)
    store.check_schema()
    with store.engine.connect() as conn:
        assert "note" in {c["name"] for c in inspect(conn).get_columns("registry_state")}
    assert not store.upgrade_schema().changed  # idempotent
    store.close()


def test_a_failed_step_leaves_the_old_version(metadata_url: str,
                                              monkeypatch: pytest.MonkeyPatch):
    store = SqlMetadataStore(metadata_url)
    store.create_schema()
    _with_step(monkeypatch, _half_then_fail)
    with pytest.raises(RuntimeError, match="step failed"):
        store.upgrade_schema()
    assert store.schema_version() == LATEST
    with store.engine.connect() as conn:  # DDL rolled back with the transaction
        assert not inspect(conn).has_table("half_done")
    store.close()


def _shape(store: SqlMetadataStore) -> dict[str, object]:
    """Every table's columns (name, type, nullable), indexes, primary and foreign keys."""
    with store.engine.connect() as conn:
        found = inspect(conn)
        return {table: (
            sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)),
            sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                   for i in found.get_indexes(table)),
            found.get_pk_constraint(table)["constrained_columns"],
            sorted((f["referred_table"], tuple(f["constrained_columns"]))
                   for f in found.get_foreign_keys(table)))
            for table in found.get_table_names()}


def test_an_upgraded_database_is_exactly_a_new_one(metadata_url: str):
    """Step 2 makes what a new database gets: the same columns, types, indexes and keys."""
    fresh = SqlMetadataStore(metadata_url)
    fresh.create_schema()
    expected = _shape(fresh)
    with fresh.engine.begin() as conn:  # back to schema 1, as mlprov 0.1 made it
        for table in ("model_tags", "version_tags", "version_metrics", "model_renames"):
            conn.execute(text(f"DROP TABLE {table}"))
        for index in ("ix_versions_created", "ix_aliases_alias"):
            conn.execute(text(f"DROP INDEX {index}"))
        for table in ("models", "versions"):
            for column in ("description", "deleted_seq"):
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("UPDATE registry_state SET value = '1' WHERE key = 'schema_version'"))
    assert fresh.upgrade_schema().from_version == 1
    assert _shape(fresh) == expected
    fresh.close()


def test_a_database_made_by_mlprov_0_1_still_opens(tmp_path: Path):
    path = tmp_path / "registry.db"
    with sqlite3.connect(path) as conn:
        conn.executescript((ASSETS / "schema-1.sql").read_text())
    store = SqlMetadataStore(sqlite_url(path))
    with pytest.raises(StoreError, match="schema version 1; this mlprov needs version 2"):
        store.check_schema()
    upgrade = store.upgrade_schema()  # 1 -> 2: the catalog (descriptions, tags, ...)
    assert (upgrade.from_version, upgrade.to_version) == (1, LATEST)
    store.check_schema()
    assert not store.upgrade_schema().changed
    with store.read() as tx:
        [version] = tx.list_versions("credit-risk")
        assert (version.version, version.stage) == (1, Stage.STAGING)
        assert tx.get_alias("credit-risk", "prod").version == 1  # type: ignore[union-attr]
        assert tx.audit_head().seq == 1  # type: ignore[union-attr]
        assert [c.bundle for c in tx.checkpoints()] == [b"\x00\xffbundle"]
    with store.write() as tx:
        tx.insert_version(replace(version, version=2, created_seq=2))
    with store.read() as tx:
        assert tx.get_model("credit-risk").latest_version == 2  # type: ignore[union-attr]
    store.close()


# --------------------------------------------------------------------------- URLs


def test_metadata_store_for_a_directory_and_urls(tmp_path: Path, postgres_url: str):
    by_dir = metadata_store_for(tmp_path)
    assert by_dir.url == sqlite_url(tmp_path / "registry.db")
    by_dir.close()
    by_url = metadata_store_for(sqlite_url(tmp_path / "other.db"))
    by_url.create_schema()
    by_url.close()
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    store = metadata_store_for(plain)
    assert store.url == postgres_url
    store.create_schema()
    store.check_schema()
    store.close()


@pytest.mark.parametrize("url", [
    "mysql://u@h/db", "postgresql+psycopg2://u@h/db", "sqlite://", "sqlite:///:memory:",
    "not a url ://"])
def test_unsupported_urls_are_input_errors(url: str):
    with pytest.raises(InputError):
        normalise_database_url(url)


def test_passwords_stay_out_of_messages():
    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/nodb?connect_timeout=1"
    store = SqlMetadataStore(url)
    assert "s3cret" not in store.description
    with pytest.raises(StoreError) as caught:
        store.check_schema()  # nothing listens on port 1
    assert "s3cret" not in str(caught.value)
    store.close()


def test_a_missing_driver_says_which_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(InputError, match="psycopg") as caught:
        SqlMetadataStore("postgresql+psycopg://u@127.0.0.1/db")
    assert caught.value.diagnostics() == "pip install 'mlprov[team]'"
