"""Refusals (403) are entries of the registry's signed audit trail, bounded per principal.

A refused principal's attempt is recorded (who, what action, on what, which
permission was missing, when) as a chained entry with a signed decision, so a
client's ``audit verify --deep`` checks it and an edited or forged refusal is
caught; a token hammering a forbidden endpoint adds a bounded number of
entries plus one summary; a request with no valid token is logged only.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlprov.canonical import canonical_json
from mlprov.registry import Registry
from mlprov.server import PermissionDeniedError, ServerConfig
from mlprov.server._refusals import RefusalTrail
from tests.server.conftest import stop_server

STAGE_ROUTE = "POST /api/v1/models/{name}/versions/{version}/stage"


def refusals(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e["kind"].startswith("access.refused")]


def test_a_refusal_is_a_signed_entry_the_client_verifies(served, make_model, run_cli, caplog):
    m = make_model()
    served.client("registrar").register(m.model, evidence=m.evidence)
    reader = served.client("reader")
    with pytest.raises(PermissionDeniedError,
                       match="reader-user may not move credit-risk to Production"):
        reader.promote("credit-risk", 1, to="Production", reason="mine now")
    [entry] = refusals(served.client("admin").audit_log())
    assert (entry["kind"], entry["accepted"], entry["actor"], entry["name"], entry["version"],
            entry["target"]) == ("access.refused", False, "reader-user", "credit-risk", 1,
                                 "Production")
    details = entry["details"]
    assert details["action"] == "promote"
    assert details["permission"] == "move credit-risk to Production"
    assert details["via"].startswith("token:") and details["endpoint"] == STAGE_ROUTE
    assert details["deny"] == ["reader-user may not move credit-risk to Production "
                               "(roles: reader)"]
    assert entry["decision"] and entry["time"].endswith("Z")
    # The client verifies every signature (deep) with the key it pinned, the server too.
    report = reader.verify_audit(deep=True, full=True)
    assert report.ok, report.problems
    assert report.decisions == report.entries == 3
    with Registry.open(served.registry) as local:
        assert local.verify_audit(deep=True, full=True).ok
        assert local.get_version("credit-risk", 1).stage.value == "None"  # nothing changed
    # `mlprov audit log` shows it; the refused client exits 1 with the reason.
    env = {"MLPROV_REGISTRY": served.url, "MLPROV_TOKEN": served.tokens["reader"]}
    shown = run_cli("audit", "log", env=env)
    assert shown.exit_code == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if "access.refused" in x)
    assert "DENIED" in line and "credit-risk v1 promote Production" in line
    assert "by reader-user" in line
    assert "denied: reader-user may not move credit-risk to Production" in shown.stdout
    refused = run_cli("alias", "set", "credit-risk", "production", "1", "--reason", "x",
                      env=env)
    assert refused.exit_code == 1
    assert "reader-user may not set credit-risk@production" in refused.stderr
    [_, alias] = refusals(served.client("admin").audit_log())
    assert (alias["details"]["action"], alias["target"]) == ("alias", "@production")


def test_separation_of_duties_and_read_refusals_are_recorded(serve, make_model, approve):
    served = serve(ServerConfig({"grants": [
        {"principals": ["alice"], "register": ["*"], "review": ["*"], "read": ["credit-*"]}]}))
    alice = served.client(token=served.token("alice", "guest"))  # no grant of its own
    m = make_model()
    alice.register(m.model, evidence=m.evidence)
    with pytest.raises(PermissionDeniedError, match="separation of duties"):
        alice.add_review("credit-risk", 1, approve(m))
    with pytest.raises(PermissionDeniedError, match="alice may not read fraud-score"):
        alice.resolve("models:/fraud-score/1")
    found = refusals(served.client("admin").audit_log())
    assert [(e["details"]["action"], e["name"], e["version"]) for e in found] == [
        ("review", "credit-risk", 1), ("read", "fraud-score", None)]
    assert "separation of duties" in found[0]["details"]["permission"]


def _raw(url: str, token: str | None) -> int:
    request = urllib.request.Request(f"{url}/api/v1/models/credit-risk/versions/1/stage",
                                     data=b'{"to":"Production","reason":"r"}', method="POST",
                                     headers={"Content-Type": "application/json"})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_unauthenticated_requests_are_logged_not_recorded(served, caplog):
    assert _raw(served.url, None) == 401
    assert _raw(served.url, "mlpt_0123456789abcdef_" + "x" * 43) == 401
    assert _raw(served.url, served.tokens["reader"]) == 403
    entries = served.client("admin").audit_log()
    assert [e["actor"] for e in refusals(entries)] == ["reader-user"]  # only the 403


def _db_rows(registry: str) -> tuple[sqlite3.Connection, list[tuple[int, bytes, str]]]:
    conn = sqlite3.connect(Path(registry) / "registry.db", isolation_level=None)
    return conn, conn.execute("SELECT seq, body, entry_hash FROM audit ORDER BY seq").fetchall()


def _refused_twice(served) -> None:
    reader = served.client("reader")
    for stage in ("Staging", "Production"):
        with pytest.raises(PermissionDeniedError):
            reader.promote("credit-risk", 1, to=stage, reason="r")


def test_an_edited_refusal_is_detected(served, make_model):
    m = make_model()
    served.client("registrar").register(m.model, evidence=m.evidence)
    _refused_twice(served)
    conn, rows = _db_rows(served.registry)
    seq, body, _ = next(r for r in rows if b"access.refused" in r[1])
    # Blame someone else for the refusal: the body no longer matches its hash.
    conn.execute("UPDATE audit SET body = ? WHERE seq = ?",
                 (body.replace(b'"actor":"reader-user"', b'"actor":"admin-user"'), seq))
    report = served.client("admin").verify_audit()
    assert any(f"entry {seq} was modified" in p for p in report.problems), report.problems


def test_a_rehashed_or_forged_refusal_is_detected(served, make_model):
    m = make_model()
    served.client("registrar").register(m.model, evidence=m.evidence)
    _refused_twice(served)
    conn, rows = _db_rows(served.registry)
    seq, body, _ = rows[-1]
    # Rewrite the last refusal and re-hash it: the signed head names the old hash.
    document = json.loads(body)
    document["actor"] = "admin-user"
    new = canonical_json(document)
    conn.execute("UPDATE audit SET body = ?, entry_hash = ? WHERE seq = ?",
                 (new, "sha256:" + hashlib.sha256(new).hexdigest(), seq))
    report = served.client("admin").local.verify_audit()
    assert not report.ok
    conn.execute("UPDATE audit SET body = ?, entry_hash = ? WHERE seq = ?",
                 (body, rows[-1][2], seq))
    assert Registry.open(served.registry).verify_audit().ok  # restored
    # Forge a refusal at the end of the chain, replaying a real refusal's decision.
    forged = json.loads(body)
    forged.update(seq=seq + 1, prev=rows[-1][2], actor="alice", time="2030-01-01T00:00:00Z")
    data = canonical_json(forged)
    conn.execute("INSERT INTO audit (seq, time, kind, name, version, target, accepted, "
                 "decision, body, entry_hash) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                 (seq + 1, forged["time"], "access.refused", "credit-risk", 1,
                  forged["target"], forged["decision"], data,
                  "sha256:" + hashlib.sha256(data).hexdigest()))
    with Registry.open(served.registry) as local:
        problems = local.verify_audit(deep=True).problems
    assert any(f"audit entry {seq + 1} disagrees with its signed decision" in p
               for p in problems), problems


def test_a_flood_of_refusals_is_bounded_and_summarised(serve, make_model, caplog):
    served = serve(ServerConfig({"server": {"refusal_audit_limit": 3}}))
    m = make_model()
    served.client("registrar").register(m.model, evidence=m.evidence)
    reader = served.client("reader")
    for _ in range(10):
        with pytest.raises(PermissionDeniedError):
            reader.promote("credit-risk", 1, to="Production", reason="again")
    with pytest.raises(PermissionDeniedError):
        reader.set_alias("credit-risk", "canary", 1, reason="again")
    assert len(refusals(served.client("admin").audit_log())) == 3
    trail = [json.loads(r.getMessage())["auditTrail"] for r in caplog.records
             if r.name == "mlprov.server.audit"]
    assert trail == ["recorded"] * 3 + ["counted"] * 8  # every one is logged
    stop_server(served.uvicorn, served.thread)  # the pending count is recorded at shutdown
    with Registry.open(served.registry) as local:
        found = refusals(local.audit_log())
        report = local.verify_audit(deep=True, full=True)
    assert report.ok, report.problems
    summary = found[-1]
    assert len(found) == 4 and summary["kind"] == "access.refused-summary"
    assert summary["actor"] == "reader-user" and summary["name"] is None
    assert summary["details"]["count"] == 8
    assert summary["details"]["actions"] == {"promote": 7, "alias": 1}
    assert summary["details"]["first"] <= summary["details"]["last"]


def test_a_window_closes_without_waiting_for_shutdown(serve, make_model):
    served = serve(ServerConfig({"server": {"refusal_audit_limit": 1,
                                            "refusal_audit_window": 1}}))
    reader = served.client("reader")
    for _ in range(3):
        with pytest.raises(PermissionDeniedError):
            reader.promote("credit-risk", 1, to="Production", reason="again")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kinds = [e["kind"] for e in refusals(served.client("admin").audit_log())]
        if "access.refused-summary" in kinds:
            break
        time.sleep(0.2)
    assert kinds == ["access.refused", "access.refused-summary"]


def test_the_trail_counts_per_principal_and_window():
    now = [0.0]
    trail = RefusalTrail(2, 10, clock=lambda: now[0], wall=lambda: f"t{now[0]:g}")
    assert [trail.admit("bob", "promote") for _ in range(5)] == [True, True, False, False,
                                                                 False]
    assert trail.admit("carol", "read")  # another principal has its own bound
    now[0] = 5
    assert trail.summaries() == []
    now[0] = 10
    [summary] = trail.summaries()
    assert (summary.principal, summary.count, summary.actions) == ("bob", 3, {"promote": 3})
    assert (summary.first, summary.last) == ("t0", "t0")
    assert trail.summaries() == []  # handed out once
    assert [trail.admit("bob", "alias") for _ in range(3)] == [True, True, False]  # fresh
    log_only = RefusalTrail(0, 10)  # limit 0: nothing one by one, a summary at shutdown
    assert log_only.admit("x", "read") is False
    [only] = log_only.summaries(everything=True)
    assert (only.principal, only.count) == ("x", 1)
