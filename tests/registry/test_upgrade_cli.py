"""`mlprov registry upgrade`: idempotent, says what it did, works on a directory or a URL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from mlprov.registry import _sql
from mlprov.registry._sql import Migration, SqlMetadataStore
from tests.cli.conftest import assert_error


@pytest.fixture
def home(tmp_path: Path, run_cli, keys) -> Path:
    path = tmp_path / "reg"
    r = run_cli("registry", "init", "--registry", str(path), "--trust", str(keys.trust))
    assert r.exit_code == 0, r.stderr
    return path


LATEST = _sql.MIGRATIONS[-1].version
NEXT = LATEST + 1


def _add_index(conn: Connection) -> None:
    conn.execute(text("CREATE INDEX ix_audit_kind ON audit (kind)"))


def test_an_up_to_date_registry_is_left_alone(run_cli, home: Path):
    r = run_cli("registry", "upgrade", "--registry", str(home))
    assert (r.exit_code, r.stdout, r.stderr) == (0, f"schema version {LATEST}: up to date\n",
                                                  "")
    r = run_cli("registry", "upgrade", "--registry", str(home), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {"schema": "https://mlprov.dev/schemas/registry-upgrade/v1",
                                    "fromVersion": LATEST, "toVersion": LATEST, "applied": []}


def test_an_older_registry_is_refused_until_upgraded(run_cli, home: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_sql, "MIGRATIONS", (
        *_sql.MIGRATIONS, Migration(NEXT, "index the audit log by kind", _add_index)))
    assert_error(run_cli("registry", "show", "--registry", str(home)), 3,
                 f"schema version {LATEST}; this mlprov needs version {NEXT}",
                 "mlprov registry upgrade")
    r = run_cli("registry", "upgrade", "--registry", str(home))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"schema version {LATEST} -> {NEXT}\n"
    assert f"applied {NEXT}: index the audit log by kind" in r.stderr
    r = run_cli("registry", "show", "--registry", str(home))
    assert r.exit_code == 0, r.stderr
    r = run_cli("registry", "upgrade", "--registry", str(home))
    assert (r.exit_code, r.stdout) == (0, f"schema version {NEXT}: up to date\n")


def test_no_registry_there(run_cli, tmp_path: Path):
    assert_error(run_cli("registry", "upgrade", "--registry", str(tmp_path / "none")), 3,
                 "no registry at")


def test_a_postgresql_url(run_cli, postgres_url: str):
    store = SqlMetadataStore(postgres_url)
    store.create_schema()
    store.close()
    r = run_cli("registry", "upgrade", "--registry", postgres_url, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["toVersion"] == LATEST


def test_a_missing_driver_is_one_line_with_the_extra(run_cli, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    assert_error(run_cli("registry", "upgrade", "--registry", "postgresql://u@127.0.0.1/db"),
                 3, "needs the PostgreSQL driver psycopg", "pip install 'mlprov[team]'")
