"""One suite for every metadata store and every blob store implementation.

Add a backend to ``metadata_url`` (tests/registry/conftest.py) / ``BLOBS`` and it
must pass all of this. Metadata runs on SQLite and on PostgreSQL (a throwaway
server, tests/pg.py, or ``MLPROV_TEST_POSTGRES_URL``), a fresh database per test.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlprov.errors import DigestMismatchError, InputError
from mlprov.registry._audit import GENESIS, check_entry, make_entry
from mlprov.registry._blobs import LocalBlobStore
from mlprov.registry._sql import SCHEMA_VERSION, SqlMetadataStore, sqlite_url
from mlprov.registry.interface import (
    AliasRecord,
    AuditRecord,
    BlobCorruptError,
    BlobNotFoundError,
    BlobStore,
    CheckpointRecord,
    DeploymentRecord,
    MetadataStore,
    NotFoundError,
    RegistryBusyError,
    ReviewRecord,
    Stage,
    StoreConflictError,
    VersionRecord,
)


def _sqlite(tmp: Path) -> SqlMetadataStore:
    return SqlMetadataStore(sqlite_url(tmp / "registry.db"))


@pytest.fixture
def store(metadata_stores: Callable[[], MetadataStore]) -> Iterator[MetadataStore]:
    made = metadata_stores()
    made.create_schema()
    yield made
    made.close()


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Every blob store: a local directory, and S3 on a real server (SeaweedFS)."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    from mlprov.registry._s3 import S3BlobStore

    url: str = request.getfixturevalue("s3_url")
    return S3BlobStore.from_url(url)


def _digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def version(name: str, number: int, **changes: object) -> VersionRecord:
    values: dict[str, object] = dict(
        name=name, version=number, identity=f"mlid:sha256:{'a' * 63}{number % 10}",
        root_digest=_digest(number), files_digest=_digest(1000 + number),
        evidence_digest=_digest(2000 + number), registration=_digest(3000 + number),
        scan_digest=None, reproducible=True, stage=Stage.NONE, stage_decision=None,
        created_at="2026-01-01T00:00:00.000000Z", created_seq=number)
    values.update(changes)
    return VersionRecord(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- metadata


def test_schema_is_idempotent_and_versioned(store: MetadataStore):
    store.create_schema()
    with store.read() as tx:
        assert tx.get_state("schema_version") == SCHEMA_VERSION == "2"


def test_state_round_trip(store: MetadataStore):
    with store.write() as tx:
        tx.set_state("trust", "sha256:1")
        tx.set_state("trust", "sha256:2")
    with store.read() as tx:
        assert tx.get_state("trust") == "sha256:2"
        assert tx.get_state("nope") is None


def test_models_versions_and_stages(store: MetadataStore):
    with store.write() as tx:
        tx.ensure_model("m", "t0")
        tx.ensure_model("m", "t1")  # idempotent
        for n in (1, 2, 3):
            tx.insert_version(version("m", n))
        tx.set_stage("m", 2, Stage.STAGING, _digest(9))
    with store.read() as tx:
        model = tx.get_model("m")
        assert model is not None and (model.latest_version, model.created_at) == (3, "t0")
        assert [v.version for v in tx.list_versions("m")] == [1, 2, 3]
        assert [v.version for v in tx.list_versions("m", descending=True, limit=2)] == [3, 2]
        staged = tx.list_versions("m", stage=Stage.STAGING)
        assert [(v.version, v.stage, v.stage_decision) for v in staged] == [
            (2, Stage.STAGING, _digest(9))]
        assert tx.count_versions("m")[Stage.NONE] == 2
        assert tx.get_version("m", 4) is None and tx.get_version("x", 1) is None
        assert [v.version for v in tx.find_versions("m", version("m", 2).identity)] == [2]
        assert [m.name for m in tx.list_models()] == ["m"]
        assert len(list(tx.versions_for_replay())) == 3


def test_duplicate_version_is_a_conflict(store: MetadataStore):
    with store.write() as tx:
        tx.ensure_model("m", "t")
        tx.insert_version(version("m", 1))
        with pytest.raises(StoreConflictError):
            tx.insert_version(version("m", 1))
        tx.insert_version(version("m", 2))  # the transaction is still usable
    with store.read() as tx:
        assert tx.get_model("m").latest_version == 2  # type: ignore[union-attr]


def test_unknown_model_in_a_write_raises_not_found(store: MetadataStore):
    with pytest.raises(NotFoundError), store.write() as tx:
        tx.set_stage("ghost", 1, Stage.STAGING, _digest(1))


def test_aliases_and_reviews(store: MetadataStore):
    with store.write() as tx:
        tx.ensure_model("m", "t")
        tx.insert_version(version("m", 1))
        tx.insert_version(version("m", 2))
        tx.set_alias(AliasRecord("m", "prod", 1, _digest(5), 5, "t5"))
        tx.set_alias(AliasRecord("m", "prod", 2, _digest(6), 6, "t6"))
        tx.set_alias(AliasRecord("m", "champion", 1, _digest(7), 7, "t7"))
        tx.insert_review(ReviewRecord("m", 1, _digest(8), "t8", 8))
    with store.read() as tx:
        assert tx.get_alias("m", "prod").version == 2  # type: ignore[union-attr]
        assert [a.alias for a in tx.list_aliases("m")] == ["champion", "prod"]
        assert [(a.name, a.alias) for a in tx.all_aliases()] == [("m", "champion"),
                                                                 ("m", "prod")]
        assert [r.digest for r in tx.list_reviews("m", 1)] == [_digest(8)]
    with store.write() as tx:
        tx.delete_alias("m", "prod")
    with store.read() as tx:
        assert tx.get_alias("m", "prod") is None


def test_alias_must_name_an_existing_version(store: MetadataStore):
    with store.write() as tx:
        tx.ensure_model("m", "t")
    with pytest.raises(StoreConflictError), store.write() as tx:
        tx.set_alias(AliasRecord("m", "prod", 7, _digest(5), 5, "t5"))


def test_audit_append_order_and_conflict(store: MetadataStore):
    first = make_entry(seq=1, prev=GENESIS, time="t1", kind="k", accepted=True, actor="a",
                       reason=None, name="m", target="@prod")
    second = make_entry(seq=2, prev=first.entry_hash, time="t2", kind="k", accepted=False,
                        actor="a", reason="r", name="m", target="@prod")
    with store.write() as tx:
        tx.append_audit(first)
        tx.append_audit(second)
    with pytest.raises(StoreConflictError), store.write() as tx:
        tx.append_audit(second)
    with store.read() as tx:
        assert tx.audit_head() == second
        assert tx.audit_entry(1) == first
        assert [e.seq for e in tx.audit_entries(name="m", target="@prod", accepted=True)] == [1]
        assert [e.seq for e in tx.audit_entries(since=1)] == [2]
        assert [e.seq for e in tx.audit_entries(descending=True, limit=1)] == [2]
        assert [e.seq for e in tx.iter_audit(batch=1)] == [1, 2]
    _entry, problems = check_entry(second, first.entry_hash, 2)
    assert problems == []


def test_checkpoints_events_and_deliveries(store: MetadataStore):
    with store.write() as tx:
        tx.insert_checkpoint(CheckpointRecord(3, _digest(3), "t", b"bundle"))
        event = tx.insert_event(3, "alias.set", "t", b"{}")
        tx.insert_delivery(event, "hook", 10.0)
    with store.read() as tx:
        assert [c.seq for c in tx.checkpoints()] == [3]
        assert [e.id for e in tx.events()] == [event]
        assert tx.events(since=event) == []
        assert tx.get_event(event).kind == "alias.set"  # type: ignore[union-attr]
        assert tx.due_deliveries(5.0) == []
        [due] = tx.due_deliveries(10.0)
    with store.write() as tx:
        assert tx.claim_delivery(due.id, 10.0, 100.0)
        assert not tx.claim_delivery(due.id, 11.0, 100.0)  # leased
    with store.read() as tx:
        assert tx.due_deliveries(50.0) == []
        assert len(tx.due_deliveries(101.0)) == 1  # the lease ran out
    with store.write() as tx:
        tx.finish_delivery(due.id, state="delivered", attempts=1, next_attempt_at=0.0,
                           last_error=None)
    with store.read() as tx:
        [done] = tx.deliveries(event_id=event)
        assert (done.state, done.attempts) == ("delivered", 1)


def test_deployments(store: MetadataStore):
    record = DeploymentRecord("stack", 1, _digest(1), _digest(2), _digest(3), Stage.NONE, None,
                              "t", 4)
    with store.write() as tx:
        tx.insert_deployment(record)
        with pytest.raises(StoreConflictError):
            tx.insert_deployment(record)
        tx.set_deployment_stage("stack", 1, Stage.STAGING, _digest(5))
    with store.read() as tx:
        got = tx.get_deployment("stack", 1)
        assert got is not None and got.stage is Stage.STAGING
        assert [d.version for d in tx.list_deployments("stack")] == [1]


def test_a_failed_transaction_leaves_nothing(store: MetadataStore):
    with pytest.raises(RuntimeError), store.write() as tx:
        tx.ensure_model("m", "t")
        tx.insert_version(version("m", 1))
        raise RuntimeError("crash")
    with store.read() as tx:
        assert tx.get_model("m") is None


def test_bulk_insert(store: MetadataStore):
    with store.write() as tx:
        tx.ensure_model("m", "t")
        tx.insert_versions([version("m", n) for n in range(1, 501)])
    with store.read() as tx:
        assert tx.get_model("m").latest_version == 500  # type: ignore[union-attr]


def test_values_round_trip_exactly(store: MetadataStore):
    """64-bit numbers, every byte value, long names, byte-order sorting, timestamps as text."""
    big = 2**40 + 7
    body = bytes(range(256))
    long_name = "x" * 300
    names = ["b", "B", "a", "Z", "\u00e9", "z", "a-1", "a_1", "a.1", long_name]
    with store.write() as tx:
        for name in names:
            tx.ensure_model(name, "2026-01-01T00:00:00.000001Z")
        tx.insert_version(version(long_name, big, created_seq=big))
        tx.append_audit(AuditRecord(seq=big, time="2026-01-01T00:00:00.000001Z", kind="k",
                                    name=long_name, version=big, target="t" * 300,
                                    accepted=True, decision=None, body=body,
                                    entry_hash=_digest(1)))
        event = tx.insert_event(big, "k", "t", body)
        tx.insert_delivery(event, "h" * 300, 1e12 + 0.5)
    with store.read() as tx:
        assert [m.name for m in tx.list_models()] == sorted(names)  # code point = byte order
        assert tx.get_model("a").created_at == "2026-01-01T00:00:00.000001Z"  # type: ignore[union-attr]
        got = tx.get_version(long_name, big)
        assert got is not None and (got.version, got.created_seq) == (big, big)
        entry = tx.audit_entry(big)
        assert entry is not None and (entry.body, entry.version) == (body, big)
        assert tx.get_event(event).payload == body  # type: ignore[union-attr]
        [delivery] = tx.deliveries()
        assert delivery.next_attempt_at == 1e12 + 0.5


def test_writers_serialise(metadata_stores: Callable[[], MetadataStore],
                           monkeypatch: pytest.MonkeyPatch):
    """A second writer waits for the first (BEGIN IMMEDIATE; PostgreSQL: an advisory
    lock), then fails only on timeout; readers are not blocked."""
    monkeypatch.setenv("MLPROV_BUSY_TIMEOUT", "0.2")
    first = metadata_stores()
    first.create_schema()
    second = metadata_stores()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with first.write() as tx:
            tx.set_state("x", "1")
            holding.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    holding.wait(5)
    try:
        with pytest.raises(RegistryBusyError), second.write() as tx:
            tx.set_state("x", "2")
        with second.read() as tx:  # readers are not blocked (WAL; MVCC)
            assert tx.get_state("schema_version") == SCHEMA_VERSION
            assert tx.get_state("x") is None  # nor do they see uncommitted changes
    finally:
        release.set()
        worker.join()
    with second.write() as tx:
        tx.set_state("x", "3")
    first.close()
    second.close()


# --------------------------------------------------------------------------- blobs


def test_blob_round_trip_and_dedup(blobs: BlobStore, tmp_path: Path):
    info = blobs.put_bytes(b"hello")
    assert info.digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert blobs.put_bytes(b"hello") == info
    assert blobs.get_bytes(info.digest) == b"hello"
    assert blobs.stat(info.digest) == 5
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(1 << 20))
    file_info = blobs.put_file(source, expected="sha256:" + hashlib.sha256(
        source.read_bytes()).hexdigest())
    out = tmp_path / "copy.bin"
    assert blobs.copy_to(file_info.digest, out) == 1 << 20
    assert out.read_bytes() == source.read_bytes()
    assert set(blobs.iter_digests()) == {info.digest, file_info.digest}


def test_blob_missing_and_bad_digest(blobs: BlobStore):
    with pytest.raises(BlobNotFoundError):
        blobs.get_bytes(_digest(1))
    assert blobs.stat(_digest(1)) is None
    with pytest.raises(InputError):
        blobs.get_bytes("sha256:../../etc/passwd")


def test_put_file_refuses_changed_bytes_and_symlinks(blobs: BlobStore, tmp_path: Path):
    source = tmp_path / "f"
    source.write_bytes(b"abc")
    with pytest.raises(DigestMismatchError):
        blobs.put_file(source, expected=_digest(1))
    assert list(blobs.iter_digests()) == []
    link = tmp_path / "link"
    link.symlink_to(source)
    with pytest.raises(InputError):
        blobs.put_file(link)


def test_local_blob_tampering_is_detected(tmp_path: Path):
    store = LocalBlobStore(tmp_path / "blobs")
    info = store.put_bytes(b"original")
    path = tmp_path / "blobs" / "sha256" / info.digest[7:9] / info.digest[7:]
    assert path.stat().st_mode & 0o777 == 0o444
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(BlobCorruptError):
        store.get_bytes(info.digest)
    out = tmp_path / "out"
    with pytest.raises(BlobCorruptError):
        store.copy_to(info.digest, out)
    assert not out.exists()


def test_local_blob_write_leaves_no_temp_files(tmp_path: Path):
    store = LocalBlobStore(tmp_path / "blobs")
    for n in range(5):
        store.put_bytes(str(n).encode())
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path):
    store = _sqlite(tmp_path)
    store.create_schema()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    store.close()
