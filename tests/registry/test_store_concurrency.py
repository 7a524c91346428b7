"""Several processes writing through one metadata store at once, on SQLite and PostgreSQL.

Each change reads the audit head and a counter, then appends the next entry and
writes the counter plus one: the registry's read-decide-write pattern. Writers
serialise at the start of the transaction (SQLite ``BEGIN IMMEDIATE``,
PostgreSQL an advisory lock), so no update is lost, no race is even lost and
retried, and the audit chain is contiguous.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlprov.registry._audit import GENESIS, check_entry
from mlprov.registry._sql import SqlMetadataStore

pytestmark = pytest.mark.multiprocess

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from mlprov.registry._audit import GENESIS, make_entry
    from mlprov.registry._sql import SqlMetadataStore
    from mlprov.registry.interface import StoreConflictError
    url, worker, rounds, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    store = SqlMetadataStore(url)
    while not os.path.exists(go):  # start together
        time.sleep(0.005)
    conflicts = 0
    for n in range(rounds):
        for _attempt in range(20):
            try:
                with store.write() as tx:
                    head = tx.audit_head()
                    counter = int(tx.get_state("counter") or "0")
                    time.sleep(0.001)  # widen the window between read and write
                    tx.set_state("counter", str(counter + 1))
                    tx.append_audit(make_entry(
                        seq=head.seq + 1 if head else 1,
                        prev=head.entry_hash if head else GENESIS, time="t", kind="test",
                        accepted=True, actor=f"w{worker}", reason=None, name="m",
                        target=f"w{worker}r{n}"))
                break
            except StoreConflictError:
                conflicts += 1
    store.close()
    print(json.dumps({"conflicts": conflicts}))
""")


def test_concurrent_store_writers_lose_nothing(metadata_url: str, tmp_path: Path):
    store = SqlMetadataStore(metadata_url)
    store.create_schema()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                         env.get("PYTHONPATH", "")])
    go = tmp_path / "go"
    workers, rounds = 4, 25
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, metadata_url, str(w), str(rounds),
                               str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env) for w in range(workers)]
    go.touch()
    conflicts = 0
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        conflicts += json.loads(out)["conflicts"]
    total = workers * rounds
    with store.read() as tx:
        assert tx.get_state("counter") == str(total)  # no lost update
        entries = list(tx.iter_audit())
    assert [e.seq for e in entries] == list(range(1, total + 1))
    prev = GENESIS
    for expected, entry in enumerate(entries, start=1):
        _checked, problems = check_entry(entry, prev, expected)
        assert problems == [], problems
        prev = entry.entry_hash
    assert {e.target for e in entries} == {f"w{w}r{n}" for w in range(workers)
                                           for n in range(rounds)}
    assert conflicts == 0  # serialised up front: no writer even lost a race
    store.close()


def test_a_deadlock_is_a_retryable_conflict(postgres_url: str):
    """A deadlock PostgreSQL breaks (40P01) reaches the registry as StoreConflictError.

    Another client holds a row lock and then asks for the registry's write lock
    while the store's writer, holding that lock, waits for the row: the server
    aborts the writer (whose deadlock_timeout runs out first).
    """
    import threading

    import psycopg

    from mlprov.registry._sql import _PG_WRITE_LOCK
    from mlprov.registry.interface import StoreConflictError

    store = SqlMetadataStore(postgres_url)
    store.create_schema()
    with store.write() as tx:
        tx.set_state("x", "0")
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as other, psycopg.connect(plain, autocommit=True) as watch:
        try:
            other.execute("SET deadlock_timeout = '60s'")  # the writer's check runs first
        except psycopg.Error:
            pytest.skip("needs a superuser to set deadlock_timeout")
        other.execute("SELECT value FROM registry_state WHERE key = 'x' FOR UPDATE")
        failures: list[BaseException] = []

        def write() -> None:
            try:
                with store.write() as tx:
                    tx.set_state("x", "1")
            except BaseException as exc:  # reported to the test below
                failures.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        while writer.is_alive() and watch.execute(  # until the writer waits for the row
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()").fetchone() != (1,):
            writer.join(0.01)
        other.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_WRITE_LOCK,))
        other.rollback()
        writer.join(60)
    assert len(failures) == 1 and isinstance(failures[0], StoreConflictError), failures
    assert "deadlock" in str(failures[0])
    with store.read() as tx:
        assert tx.get_state("x") == "0"
    store.close()
