"""The read path stays light and bounded (issue 16, item 5).

- A read command on an embedded registry imports neither SQLAlchemy nor the
  registry's write, gate or verification machinery (checked in a fresh
  interpreter's ``sys.modules``; no wall-clock assertion). ``resolve`` verifies
  the signed head and the decision (cryptography) without pydantic (about 0.1 s:
  its import, its schemas, its plugin discovery over installed packages).
- ``alias history`` and ``audit log`` read the log in bounded memory, on every
  metadata store (tracemalloc peak independent of the log's length).
- ``models show`` reads reviews in a constant number of statements.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlprov.registry import _views
from mlprov.registry._audit import GENESIS, make_entry
from mlprov.registry._sqlite import LATEST_SCHEMA, SqliteMetadataStore
from mlprov.registry.interface import MetadataStore, ReviewRecord, Stage, VersionRecord

# Modules a read command must not load: SQLAlchemy (about 0.25 s), the Rego engine,
# JSON Schema, and the registry's write, gate, evidence-verification and server parts.
FORBIDDEN = ("sqlalchemy", "regopy", "jsonschema", "mlprov.registry._sql",
             "mlprov.registry._recorder", "mlprov.registry._gatekeeper",
             "mlprov.registry._config", "mlprov.registry._facts", "mlprov.verification",
             "mlprov.hashing", "mlprov.lineage", "mlprov.sbom", "mlprov.server")

# What verifying a registry-signed statement does without (mlprov._internal.intoto reads it).
VERIFYING_FORBIDDEN = ("pydantic", "pydantic_core", "mlprov.statements",
                       "mlprov._signing.schemas")

# ... and what a command that checks no signature has no use for.
UNVERIFIED_FORBIDDEN = (*VERIFYING_FORBIDDEN, "cryptography", "mlprov.trust", "mlprov.bundles")

PROBE = """
import json, sys
from mlprov._cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
forbidden = {forbidden!r}
loaded = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
print(json.dumps({{"code": code, "loaded": loaded}}), file=sys.stderr)
"""


def test_the_schema_version_is_the_migrations_last():
    from mlprov.registry import _sql

    assert _sql.MIGRATIONS[-1].version == LATEST_SCHEMA


def test_an_embedded_registry_reads_without_sqlalchemy(tmp_path: Path, keys, make_model):
    from mlprov.registry import Registry

    home = tmp_path / "registry"
    Registry.init(home, trust=keys.trust).close()
    attested = make_model()
    with Registry.open(home) as reg:
        result = reg.register(attested.model, evidence=attested.evidence)
        reg.promote(result.name, result.version, to="Staging", reason="test")
        assert isinstance(reg.metadata, SqliteMetadataStore)
    uri = f"models:/{result.name}/{result.version}"
    # resolve verifies the signed head and the decision (cryptography, no pydantic); the
    # listings verify nothing today, so they load neither.
    verifying = [["resolve", uri], ["resolve", f"models:/{result.name}/Staging", "--json"],
                 ["resolve", f"models:/{result.name}/Staging", "--min-seq", "1"]]
    listing = [["models", "list"], ["models", "list", "--json"],
               ["models", "show", result.name],
               ["alias", "history", result.name, "production", "--json"],
               ["audit", "log"], ["audit", "log", "--json", "--limit", "2"]]
    for command, forbidden in [(c, (*FORBIDDEN, *VERIFYING_FORBIDDEN)) for c in verifying] + \
            [(c, (*FORBIDDEN, *UNVERIFIED_FORBIDDEN)) for c in listing]:
        done = subprocess.run(
            [sys.executable, "-c", PROBE.format(forbidden=forbidden), *command,
             "--registry", str(home)], capture_output=True, text=True, timeout=120, check=False)
        report = json.loads(done.stderr.strip().splitlines()[-1])
        assert report == {"code": 0, "loaded": []}, (command, done.stderr)


# --------------------------------------------------------------------------- bounded memory

NAME = "credit-risk"
DIGEST = "sha256:" + "ab" * 32


@dataclass
class _Context:
    """The part of a registry the views read: its metadata store."""

    metadata: MetadataStore


def _filled(store: MetadataStore, changes: int) -> None:
    """A model with one version and ``changes`` alias moves in a hash-chained log."""
    store.create_schema()
    now = "2026-01-01T00:00:00.000000Z"
    with store.write() as tx:
        tx.ensure_model(NAME, now)
        tx.insert_version(VersionRecord(
            name=NAME, version=1, identity="mlid:" + DIGEST, root_digest=DIGEST,
            files_digest=DIGEST, evidence_digest=DIGEST, registration=DIGEST,
            scan_digest=None, reproducible=True, stage=Stage.PRODUCTION, stage_decision=None,
            created_at=now, created_seq=1))
    prev, batch = GENESIS, []
    for seq in range(1, changes + 1):
        entry = make_entry(seq=seq, prev=prev, time=now, kind="alias.set", accepted=True,
                           actor="bench", reason="a long history " + "x" * 200, name=NAME,
                           version=1, target="@production", decision=DIGEST,
                           details={"alias": "production", "padding": "y" * 1000})
        prev = entry.entry_hash
        batch.append(entry)
        if len(batch) == 2000:
            with store.write() as tx:
                tx.append_audit_many(batch)
            batch = []
    if batch:
        with store.write() as tx:
            tx.append_audit_many(batch)


def _peak(read: Callable[[], int]) -> tuple[int, int]:
    """(items read, tracemalloc peak in bytes) of consuming one iterator, warm.

    A first, unmeasured pass leaves out what happens once per process (imports,
    compiled statements), so the peak is what reading itself holds.
    """
    read()
    tracemalloc.start()
    try:
        count = read()
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("changes", [300, 6000])
def test_history_and_log_stream_in_bounded_memory(metadata_stores, changes: int):
    """Reading 6000 changes (about 10 MB of bodies) peaks below 3 MB, as reading 300 does:
    the peak is bounded by the batch, not by the log (a list would hold every body)."""
    store = metadata_stores()
    try:
        _filled(store, changes)
        context = _Context(store)
        count, peak = _peak(lambda: sum(1 for _ in _views.iter_alias_history(
            context, NAME, "production")))  # type: ignore[arg-type]
        assert count == changes
        assert peak < 3_000_000, peak
        count, peak = _peak(lambda: sum(1 for _ in _views.iter_audit_log(
            context)))  # type: ignore[arg-type]
        assert count == changes
        assert peak < 3_000_000, peak
        # The list forms answer the same.
        history = _views.alias_history(context, NAME, "production")  # type: ignore[arg-type]
        assert [c.seq for c in history] == list(range(1, changes + 1))
        log = _views.audit_log(context, since=changes - 5, limit=3)  # type: ignore[arg-type]
        assert [e["seq"] for e in log] == [changes - 4, changes - 3, changes - 2]
    finally:
        store.close()


def test_models_show_reads_reviews_in_one_statement(tmp_path: Path):
    """``models show`` makes as many statements for 60 versions as for 3."""
    store = SqliteMetadataStore(tmp_path / "registry.db")
    store.create_schema()
    now = "2026-01-01T00:00:00.000000Z"
    with store.write() as tx:
        tx.ensure_model(NAME, now)
        for number in range(1, 61):
            tx.insert_version(VersionRecord(
                name=NAME, version=number, identity="mlid:" + DIGEST, root_digest=DIGEST,
                files_digest=DIGEST, evidence_digest=DIGEST, registration=DIGEST,
                scan_digest=None, reproducible=True, stage=Stage.NONE, stage_decision=None,
                created_at=now, created_seq=number))
            if number % 2:
                tx.insert_review(ReviewRecord(name=NAME, version=number,
                                              digest=f"sha256:{number:064x}", added_at=now,
                                              seq=number))
    statements: list[str] = []
    connect = store._connect

    def traced() -> object:
        conn = connect()
        conn.set_trace_callback(statements.append)
        return conn

    store._connect = traced  # type: ignore[method-assign]
    store.close()  # drop pooled connections: every read below is traced
    counts = []
    for limit in (3, 60):
        statements.clear()
        shown = _views.show_model(_Context(store), NAME, limit=limit)  # type: ignore[arg-type]
        counts.append(len(statements))
        assert [v["reviews"] for v in shown["versions"]] == \
            [1 if v % 2 else 0 for v in range(60, 60 - limit, -1)]
    assert counts[0] == counts[1], counts
    store.close()


def test_the_reader_never_creates_a_database(tmp_path: Path):
    from mlprov.registry.interface import StoreError

    missing = tmp_path / "registry.db"
    store = SqliteMetadataStore(missing)
    with pytest.raises(StoreError, match="cannot open"), store.read():
        pass
    assert not missing.exists()
    store.close()


def test_a_database_without_the_latest_schema_is_judged_as_before(tmp_path: Path):
    """Not a registry, or an older schema: the same errors as the SQLAlchemy store's."""
    import sqlite3

    from mlprov.registry.interface import StoreError

    path = tmp_path / "registry.db"
    sqlite3.connect(path).close()
    store = SqliteMetadataStore(path)
    with pytest.raises(StoreError, match="not an mlprov registry database"):
        store.check_schema()
    store.create_schema()
    store.check_schema()
    with store.write() as tx:
        tx.set_state("schema_version", "1")
    with pytest.raises(StoreError, match="needs version 2"):
        store.check_schema()
    store.close()
