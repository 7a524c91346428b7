"""The database is not a root of trust; history cannot be cut or rolled back unseen
(issue 10 items 4 and 5).

An attacker who can write the registry's database (but not read its key) tries to:
point it at a permissive mlprov.toml, add their own key to the stored trust set with
the ``registry`` role and forge decisions, replay an audit entry without a signed
decision, and delete the last audit rows (resetting the alias row). A deploy pipeline
that keeps the last head it saw refuses a registry that went backwards.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mlprov.errors import MlprovError
from mlprov.registry import Registry, RegistryIntegrityError
from mlprov.registry._decisions import build_decision, sign
from mlprov.registry._head import HEAD_STATE
from mlprov.registry._home import trust_snapshot
from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair

PERMISSIVE = (b'[gates.stages]\nProduction = "none"\nStaging = "none"\n'
              b'[gates.aliases]\n"*" = "none"\n')


class _Connection:
    """The registry's database, opened behind its back (SQLite or PostgreSQL, autocommit)."""

    def __init__(self, registry: Registry) -> None:
        self.postgres = not registry.location.embedded
        if self.postgres:
            import psycopg

            self.raw: Any = psycopg.connect(registry.address.replace(
                "postgresql+psycopg://", "postgresql://"), autocommit=True)
        else:
            self.raw = sqlite3.connect(registry.home / "registry.db", isolation_level=None)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.raw.execute(sql.replace("?", "%s") if self.postgres else sql, params)

    def close(self) -> None:
        self.raw.close()


def db(registry: Registry) -> Any:
    return _Connection(registry)


def state(conn: Any, key: str) -> str:
    return conn.execute("SELECT value FROM registry_state WHERE key = ?", (key,)).fetchone()[0]


def set_state(conn: Any, key: str, value: str) -> None:
    conn.execute("UPDATE registry_state SET value = ? WHERE key = ?", (value, key))


def reopen(registry: Registry) -> Registry:
    registry.close()
    return Registry.open(registry.address)


@pytest.fixture
def served(registry, make_model, approve):
    """Two versions; @canary moved 1 -> 2."""
    for _ in range(2):
        m = make_model()
        registry.register(m.model, evidence=m.evidence)
    registry.set_alias("credit-risk", "canary", 1, reason="first")
    registry.set_alias("credit-risk", "canary", 2, reason="second")
    return registry


def attacker_key(tmp_path: Path):
    private, public = write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "evil.key",
                                     None)
    return private, public


def test_every_change_signs_the_head(served):
    head = served.head()
    with served.metadata.read() as tx:
        last = tx.audit_head()
    assert (head.seq, head.entry_hash) == (last.seq, last.entry_hash)
    assert set(head.settings) >= {"trust", "policies", "config"}


def test_a_permissive_config_swapped_into_the_database_is_refused(served, tmp_path):
    blob = served.blobs.put_bytes(PERMISSIVE)
    conn = db(served)
    set_state(conn, "config", blob.digest)
    (served.home / "mlprov.toml").write_bytes(PERMISSIVE)
    attacked = reopen(served)
    with pytest.raises(RegistryIntegrityError, match="config is not the one its signed head"):
        attacked.set_alias("credit-risk", "production", 1, reason="sneak")
    assert not attacked.verify_audit(sign_checkpoint=False).ok


def test_a_key_added_to_the_stored_trust_with_the_registry_role_gains_nothing(
        served, keys, tmp_path):
    evil_private, evil_public = attacker_key(tmp_path)
    trust_file = keys.trust.parent / "evil-trust.yaml"  # beside it: relative key paths
    trust_file.write_text(keys.trust.read_text() + f"  - {{name: evil, public_key: "
                          f"{evil_public}, roles: [registry, builder, reviewer]}}\n")
    snapshot = trust_snapshot(trust_file, served.anchor.keys[0].key)
    conn = db(served)
    set_state(conn, "trust", served.blobs.put_bytes(snapshot).digest)
    attacked = reopen(served)
    with pytest.raises(RegistryIntegrityError, match="trust is not the one its signed head"):
        attacked.pull("models:/credit-risk@canary", tmp_path / "out")
    with pytest.raises(RegistryIntegrityError, match="trust is not the one its signed head"):
        attacked.promote("credit-risk", 2, to="Staging", reason="sneak")
    with attacked.metadata.read() as tx:  # refused before anything was signed or recorded
        assert tx.audit_head().seq == conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    # Re-signing the head with their own key does not help: heads verify with the anchor.
    from mlprov.registry._head import _statement

    settings = {k: state(conn, k) for k in ("trust", "policies", "config")}
    last_seq, last_hash = conn.execute(
        "SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    forged = sign(_statement(attacked.registry_id, last_seq, last_hash, settings,
                             "2026-12-02T00:00:00Z"), load_private_key(evil_private))
    set_state(conn, HEAD_STATE, forged.decode())
    attacked = reopen(attacked)
    with pytest.raises(RegistryIntegrityError, match="signed head does not verify"):
        attacked.resolve("models:/credit-risk@canary")
    assert not attacked.verify_audit(sign_checkpoint=False).ok


def test_the_stored_trust_never_lends_the_registry_role(served, keys, tmp_path):
    """Even a trust file given to the registry on purpose cannot make another key sign for it."""
    _evil_private, evil_public = attacker_key(tmp_path)
    trust_file = keys.trust.parent / "team-trust.yaml"
    trust_file.write_text(keys.trust.read_text() + f"  - {{name: other, public_key: "
                          f"{evil_public}, roles: [registry]}}\n")
    served.set_trust(trust_file, reason="add a key")
    served = reopen(served)
    registry_signers = [k.name for k in served.trust.keys if "registry" in
                        {r.value for r in k.roles}]
    assert registry_signers == [k.name for k in served.anchor.keys]


def test_a_forged_decision_signed_by_another_key_is_refused_by_pull(served, keys, tmp_path):
    evil_private, _ = attacker_key(tmp_path)
    conn = db(served)
    resolved = served.resolve("models:/credit-risk@canary")
    statement = build_decision(
        subject_name="credit-risk", root_digest=resolved.record.root_digest,
        resource_uri="models:/credit-risk/2", policy_uri="x", policy_digest="sha256:" + "0" * 64,
        inputs={}, passed=True, time="2026-12-02T00:00:00Z",
        change={"kind": "alias.set", "registry": served.registry_id, "auditSeq": 1})
    bundle = sign(statement, load_private_key(evil_private))
    digest = "sha256:" + hashlib.sha256(bundle).hexdigest()
    conn.execute("INSERT INTO decisions (digest, bundle) VALUES (?, ?)", (digest, bundle))
    conn.execute("UPDATE aliases SET decision = ? WHERE alias = 'canary'", (digest,))
    attacked = reopen(served)
    with pytest.raises(RegistryIntegrityError):
        attacked.resolve("models:/credit-risk@canary")
    with pytest.raises(MlprovError):
        attacked.pull("models:/credit-risk@canary", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_audit_entry_without_a_signed_decision_fails_audit_verify(served):
    """The entry's body and column carry no decision, and the chain is re-hashed (no key
    needed): only the rule that every entry carries a registry-signed decision sees it."""
    from mlprov.canonical import canonical_json

    conn = db(served)
    target = 3
    prev = None
    for seq, body in conn.execute("SELECT seq, body FROM audit ORDER BY seq").fetchall():
        if seq < target:
            prev = hashlib.sha256(body).hexdigest()
            continue
        document = json.loads(body)
        if seq == target:
            document["decision"] = None
        document["prev"] = f"sha256:{prev}"
        new = canonical_json(document)
        prev = hashlib.sha256(new).hexdigest()
        conn.execute("UPDATE audit SET body = ?, entry_hash = ?, decision = ? WHERE seq = ?",
                     (new, f"sha256:{prev}", document.get("decision"), seq))
    report = served.verify_audit(sign_checkpoint=False, deep=False)
    assert not report.ok
    assert any(f"audit entry {target}" in p and "no signed decision" in p
               for p in report.problems), report.problems


@pytest.mark.parametrize("cut", [1, 2])
def test_cutting_the_last_entries_and_resetting_the_alias_is_refused(served, tmp_path, cut):
    conn = db(served)
    last = conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    first_alias = conn.execute("SELECT decision FROM audit WHERE seq = ?", (last - 1,)
                               ).fetchone()[0]
    conn.execute("DELETE FROM audit WHERE seq > ?", (last - cut,))
    conn.execute("DELETE FROM events WHERE seq > ?", (last - cut,))
    conn.execute("UPDATE aliases SET version = 1, decision = ? WHERE alias = 'canary'",
                 (first_alias,))
    attacked = reopen(served)
    for attempt in (lambda: attacked.resolve("models:/credit-risk@canary"),
                    lambda: attacked.pull("models:/credit-risk@canary", tmp_path / "o"),
                    lambda: attacked.load("models:/credit-risk@canary")):
        with pytest.raises(RegistryIntegrityError, match="cut or rolled back"):
            attempt()
    report = attacked.verify_audit(sign_checkpoint=False)
    assert any("cut or rolled back" in p for p in report.problems), report.problems


def test_a_pipeline_refuses_a_registry_rolled_back_to_an_old_head(served, tmp_path):
    """Old head + old log + old alias row: consistent, so only what the pipeline saw tells."""
    conn = db(served)
    old_head = state(conn, HEAD_STATE)
    head_file = tmp_path / "seen.json"
    served.resolve("models:/credit-risk@canary", head_file=head_file)  # pipeline records
    seen = json.loads(head_file.read_text())
    served.set_alias("credit-risk", "canary", 1, reason="third")
    served.resolve("models:/credit-risk@canary", head_file=head_file)
    newer = json.loads(head_file.read_text())
    assert newer["seq"] == seen["seq"] + 1
    # Roll everything back to the first head.
    alias_row = conn.execute("SELECT decision FROM audit WHERE seq = ?", (seen["seq"],)
                             ).fetchone()[0]
    conn.execute("DELETE FROM audit WHERE seq > ?", (seen["seq"],))
    conn.execute("DELETE FROM events WHERE seq > ?", (seen["seq"],))
    conn.execute("UPDATE aliases SET version = 2, decision = ? WHERE alias = 'canary'",
                 (alias_row,))
    set_state(conn, HEAD_STATE, old_head)
    attacked = reopen(served)
    assert attacked.resolve("models:/credit-risk@canary").version == 2  # alone, consistent
    with pytest.raises(RegistryIntegrityError, match="rolled back"):
        attacked.resolve("models:/credit-risk@canary", head_file=head_file)
    with pytest.raises(RegistryIntegrityError, match="--min-seq"):
        attacked.pull("models:/credit-risk@canary", tmp_path / "o", min_seq=newer["seq"])
    with pytest.raises(RegistryIntegrityError, match="rolled back"):
        attacked.load("models:/credit-risk@canary", head_file=head_file)


def test_head_options_on_the_cli(run_cli, served, tmp_path):
    head_file = tmp_path / "seen.json"
    r = run_cli("resolve", "models:/credit-risk@canary", "--registry", served.address,
                "--head-file", str(head_file))
    assert r.exit_code == 0, r.stderr
    seq = json.loads(head_file.read_text())["seq"]
    r = run_cli("resolve", "models:/credit-risk@canary", "--registry", served.address,
                "--min-seq", str(seq + 5))
    assert r.exit_code == 1 and "--min-seq" in r.stderr and len(r.stderr.splitlines()) == 1
    r = run_cli("pull", "models:/credit-risk@canary", "--out", str(tmp_path / "o"),
                "--registry", served.address, "--min-seq", str(seq + 5))
    assert r.exit_code == 1 and not (tmp_path / "o").exists()


def test_an_event_naming_an_entry_the_log_does_not_hold_fails_audit_verify(served):
    conn = db(served)
    last = conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    conn.execute("INSERT INTO events (seq, kind, time, payload) SELECT ?, kind, time, payload "
                 "FROM events ORDER BY id DESC LIMIT 1", (last + 7,))
    report = served.verify_audit(sign_checkpoint=False)
    assert any("event(s) name audit entries the log does not hold" in p
               for p in report.problems), report.problems
