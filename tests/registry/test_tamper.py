"""Attacks on the stored state: rows edited in the SQLite file, blobs changed on disk.

Each attacker here can write the database and the blob directory but does not
hold the registry's signing key. Every edit must be detected by `audit verify`
or refused by `pull`/`load`/a gated change; nothing is trusted because a row
says so.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlprov.canonical import canonical_json
from mlprov.errors import VerificationError
from mlprov.registry import PolicyDeniedError, Registry, RegistryIntegrityError
from mlprov.registry.interface import BlobCorruptError


def db(registry) -> sqlite3.Connection:
    return sqlite3.connect(registry.home / "registry.db", isolation_level=None)


@pytest.fixture
def registry(tmp_path: Path, keys) -> Iterator[Registry]:
    """The embedded registry only: these attacks edit its SQLite file and blob files in
    place. The same database attacks on PostgreSQL are in test_root_of_trust.py, and a
    bucket object overwritten behind the store's back in test_s3.py."""
    reg = Registry.init(tmp_path / "registry", trust=keys.trust)
    yield reg
    reg.close()


@pytest.fixture
def populated(registry, make_model):
    """Three versions, stage moves, alias moves and a denial: ten-odd audit entries."""
    for _ in range(3):
        m = make_model()
        registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="ok")
    registry.set_alias("credit-risk", "canary", 1, reason="first")
    registry.set_alias("credit-risk", "canary", 2, reason="second")
    with pytest.raises(PolicyDeniedError):
        registry.set_alias("credit-risk", "production", 2, reason="no review")
    registry.set_alias("credit-risk", "canary", 3, reason="third")
    registry.checkpoint()  # verified, then a checkpoint signed (audit verify is read-only)
    return registry


def problems(registry) -> list[str]:
    report = registry.verify_audit(sign_checkpoint=False)
    assert not report.ok
    return report.problems


def rows(conn: sqlite3.Connection) -> list[tuple[int, bytes, str]]:
    return conn.execute("SELECT seq, body, entry_hash FROM audit ORDER BY seq").fetchall()


def test_intact_log_verifies_and_signs_a_checkpoint(populated):
    report, bundle = populated.checkpoint()
    assert report.ok and report.new_checkpoint == report.head_seq
    assert (populated.home / "head.json").is_file() and bundle == populated.latest_checkpoint()
    assert report.checkpoints >= 1


def test_audit_verify_is_read_only(populated):
    """A check that changes state is not a check (issue 11 item 6)."""
    database = populated.home / "registry.db"
    before = (database.read_bytes(), (populated.home / "head.json").read_bytes())
    for _ in range(2):
        report = populated.verify_audit()
        assert report.ok and report.new_checkpoint is None
    assert (database.read_bytes(), (populated.home / "head.json").read_bytes()) == before


def test_modified_body_is_detected(populated):
    conn = db(populated)
    seq, body, _ = rows(conn)[4]
    doctored = body.replace(b'"reason":"', b'"reason":"EDITED ')
    conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (doctored, seq))
    assert any(f"entry {seq} was modified" in p for p in problems(populated))


def test_modified_column_is_detected(populated):
    conn = db(populated)
    [(seq,)] = conn.execute("SELECT seq FROM audit WHERE accepted = 0").fetchall()
    conn.execute("UPDATE audit SET accepted = 1 WHERE seq = ?", (seq,))
    assert any("columns accepted were changed" in p for p in problems(populated))


def test_deleted_entry_is_detected(populated):
    conn = db(populated)
    conn.execute("DELETE FROM audit WHERE seq = 5")
    found = problems(populated)
    assert any("entry 5 is missing" in p for p in found)
    assert any("does not chain" in p for p in found)


def test_reordered_entries_are_detected(populated):
    conn = db(populated)
    conn.execute("UPDATE audit SET seq = -1 WHERE seq = 4")
    conn.execute("UPDATE audit SET seq = 4 WHERE seq = 5")
    conn.execute("UPDATE audit SET seq = 5 WHERE seq = -1")
    assert any("reordered" in p for p in problems(populated))


def _rewrite_from(conn: sqlite3.Connection, start: int, edit: str) -> None:
    """Rewrite entries from ``start`` on and re-hash the chain (no key needed)."""
    prev = None
    for seq, body, _ in rows(conn):
        document = json.loads(body)
        if seq < start:
            prev = hashlib.sha256(body).hexdigest()
            continue
        if seq == start:
            document["reason"] = edit
        document["prev"] = f"sha256:{prev}"
        new = canonical_json(document)
        prev = hashlib.sha256(new).hexdigest()
        conn.execute("UPDATE audit SET body = ?, entry_hash = ? WHERE seq = ?",
                     (new, f"sha256:{prev}", seq))


def test_rewritten_history_before_a_checkpoint_is_detected(populated):
    conn = db(populated)
    _rewrite_from(conn, 3, "history rewritten")
    found = problems(populated)
    assert any("signs another hash" in p and "rewritten" in p for p in found), found


def test_rewritten_tail_after_the_last_checkpoint_is_detected(populated, make_model):
    # New entries after the checkpoint `verify` signed: unsigned by any checkpoint,
    # but each is signed through its decision (sequence number, previous hash).
    populated.set_alias("credit-risk", "canary", 1, reason="after checkpoint")
    populated.set_alias("credit-risk", "canary", 2, reason="after checkpoint 2")
    conn = db(populated)
    last = rows(conn)[-2][0]
    _rewrite_from(conn, last, "tail rewritten")
    conn.execute("DELETE FROM checkpoints WHERE seq > 0")
    (populated.home / "head.json").unlink()
    found = problems(populated)
    assert any("disagrees with its signed decision" in p for p in found), found


def test_truncated_tail_is_detected(populated):
    conn = db(populated)
    head = rows(conn)[-1][0]
    conn.execute("DELETE FROM audit WHERE seq >= ?", (head - 1,))
    found = problems(populated)
    assert any("truncated" in p for p in found), found


def test_external_checkpoint_detects_a_rolled_back_registry(populated, tmp_path):
    saved = tmp_path / "checkpoint.json"
    saved.write_bytes(populated.latest_checkpoint())
    conn = db(populated)
    head = rows(conn)[-1][0]
    conn.execute("DELETE FROM audit WHERE seq = ?", (head,))
    conn.execute("DELETE FROM checkpoints WHERE seq >= ?", (head,))
    (populated.home / "head.json").unlink()
    report = populated.verify_audit(checkpoint=saved, sign_checkpoint=False)
    assert any("checkpoint.json" in p and "truncated" in p for p in report.problems)


def test_alias_row_edit_is_detected_and_refused(populated, tmp_path):
    conn = db(populated)
    conn.execute("UPDATE aliases SET version = 1 WHERE alias = 'canary'")
    assert any("alias table says 1" in p for p in problems(populated))
    with pytest.raises(RegistryIntegrityError, match="is about models:/credit-risk/3"):
        populated.pull("models:/credit-risk@canary", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # resolve (what `mlprov resolve` and a server's plain resolve answer) refuses it too:
    # the decision is genuine and in the log, but it put version 3 there, not 1.
    with pytest.raises(RegistryIntegrityError, match="is about models:/credit-risk/3"):
        populated.resolve("models:/credit-risk@canary")


def test_a_stage_row_edit_is_refused_by_resolve(populated):
    conn = db(populated)
    conn.execute("UPDATE versions SET stage = 'Production' WHERE version = 1")
    with pytest.raises(RegistryIntegrityError, match="moved the version to Staging"):
        populated.resolve("models:/credit-risk/Production")


def test_replayed_old_decision_is_refused(populated, tmp_path):
    """Point the alias row back at v1 with v1's genuine (but superseded) decision."""
    conn = db(populated)
    [(old_decision,)] = conn.execute(
        "SELECT decision FROM audit WHERE kind = 'alias.set' AND version = 1 AND accepted = 1"
    ).fetchall()
    conn.execute("UPDATE aliases SET version = 1, decision = ? WHERE alias = 'canary'",
                 (old_decision,))
    with pytest.raises(RegistryIntegrityError, match="superseded by audit entry"):
        populated.pull("models:/credit-risk@canary", tmp_path / "out")


def test_stage_row_edit_is_detected_and_refused(populated, tmp_path):
    conn = db(populated)
    conn.execute("UPDATE versions SET stage = 'Production' WHERE version = 1")
    assert any("stage row says Production" in p for p in problems(populated))
    with pytest.raises(RegistryIntegrityError, match="moved the version to Staging"):
        populated.pull("models:/credit-risk/Production", tmp_path / "out")


def test_version_row_pointing_at_other_evidence_is_refused(populated):
    conn = db(populated)
    [(evidence,)] = conn.execute("SELECT evidence_digest FROM versions WHERE version = 2"
                                 ).fetchall()
    conn.execute("UPDATE versions SET evidence_digest = ? WHERE version = 1", (evidence,))
    with pytest.raises(RegistryIntegrityError, match="names other evidence"):
        populated.verify_version("credit-risk", 1)
    with pytest.raises(PolicyDeniedError, match="does not verify"):
        populated.promote("credit-risk", 1, to="Production", reason="x")


def test_inserted_version_row_is_detected(populated):
    conn = db(populated)
    conn.execute("INSERT INTO versions SELECT model_id, 9, identity, root_digest, files_digest, "
                 "evidence_digest, registration, scan_digest, reproducible, stage, "
                 "stage_decision, created_at, created_seq, description, deleted_seq "
                 "FROM versions WHERE version = 1")
    assert any("v9 is in the versions table but was never registered" in p
               for p in problems(populated))
    with pytest.raises(RegistryIntegrityError, match="it registered models:/credit-risk/1"):
        populated.verify_version("credit-risk", 9)


def _blob_path(registry, digest: str) -> Path:
    return registry.home / "blobs" / "sha256" / digest[7:9] / digest[7:]


def test_changed_model_blob_is_refused_at_pull(populated, tmp_path):
    record = populated.get_version("credit-risk", 3)
    facts = populated.verify_version("credit-risk", 3)
    weights = next(f for f in facts.manifest.files if f.path == "weights.safetensors")
    path = _blob_path(populated, f"sha256:{weights.sha256}")
    path.chmod(0o644)
    path.write_bytes(b"x" * weights.size)  # same size: only re-hashing finds it
    with pytest.raises(BlobCorruptError):
        populated.pull("models:/credit-risk@canary", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BlobCorruptError):
        populated.verify_version("credit-risk", 3, deep=True)
    assert record.root_digest.startswith("sha256:")


def test_changed_evidence_blob_is_refused(populated):
    facts = populated.verify_version("credit-risk", 2)
    path = _blob_path(populated, facts.evidence["provenance.sigstore.json"])
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"payload"', b'"payloaD"'))
    populated._verified = type(populated._verified)()  # a fresh process would not cache it
    with pytest.raises(VerificationError):
        populated.verify_version("credit-risk", 2)


def test_missing_model_blob_is_refused(populated, tmp_path):
    facts = populated.verify_version("credit-risk", 3)
    _blob_path(populated, f"sha256:{facts.manifest.files[0].sha256}").unlink()
    with pytest.raises(RegistryIntegrityError, match="missing from the blob store"):
        populated.load("models:/credit-risk@canary")


def test_forged_decision_blob_is_refused(populated, tmp_path, keys):
    """A decision signed by a key that is not the registry's is refused."""
    from mlprov.registry._decisions import sign
    from mlprov.signing import load_private_key
    from mlprov.statements import parse_statement

    conn = db(populated)
    [(decision,)] = conn.execute("SELECT decision FROM aliases WHERE alias = 'canary'"
                                 ).fetchall()
    payload = json.loads(populated.decision(decision))["dsseEnvelope"]["payload"]
    import base64

    statement = parse_statement(base64.b64decode(payload), what="d")
    forged = sign(statement, load_private_key(keys.builder))
    digest = "sha256:" + hashlib.sha256(forged).hexdigest()
    conn.execute("INSERT INTO decisions VALUES (?, ?)", (digest, forged))
    conn.execute("UPDATE aliases SET decision = ? WHERE alias = 'canary'", (digest,))
    with pytest.raises(VerificationError, match="registry role"):
        populated.pull("models:/credit-risk@canary", tmp_path / "out")


def test_deployment_row_edit_is_detected(populated):
    populated.create_deployment("stack", ["models:/credit-risk/1"], reason="r")
    assert populated.verify_audit().ok
    conn = db(populated)
    conn.execute("UPDATE deployments SET stage = 'Production'")
    assert any("deployment stack v1: its stage row says Production" in p
               for p in problems(populated))


def test_changed_decision_row_is_detected(populated, tmp_path):
    conn = db(populated)
    [(decision,)] = conn.execute("SELECT decision FROM aliases WHERE alias = 'canary'"
                                 ).fetchall()
    conn.execute("UPDATE decisions SET bundle = ? WHERE digest = ?", (b"{}", decision))
    with pytest.raises(RegistryIntegrityError, match="was changed"):
        populated.pull("models:/credit-risk@canary", tmp_path / "out")
    # Decisions before the last checkpoint are covered by it; --deep reads them all.
    report = populated.verify_audit(deep=True, sign_checkpoint=False)
    assert any("was changed" in p for p in report.problems)


def test_a_version_never_moved_resolves_by_stage_none(registry, make_model):
    """In stage None by its registration: the registration is the decision behind the row."""
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    resolved = registry.resolve("models:/credit-risk/None")
    assert resolved.record.version == 1 and resolved.decision == resolved.record.registration
