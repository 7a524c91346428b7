"""A newline in ``--reason`` cannot forge an audit line (issue 10 item 7); JSON stays exact."""

from __future__ import annotations

import json

FORGED = "ok\n#999    2026-01-01T00:00:00Z  ok     alias.set           credit-risk v1 @production"


def test_a_newline_in_a_reason_cannot_forge_an_audit_line(run_cli, tmp_path, keys, make_model):
    home = tmp_path / "reg"
    assert run_cli("registry", "init", "--registry", str(home), "--trust",
                   str(keys.trust)).exit_code == 0
    m = make_model()
    assert run_cli("register", str(m.model), "--evidence", str(m.evidence), "--registry",
                   str(home)).exit_code == 0
    r = run_cli("alias", "set", "credit-risk", "canary", "1", "--reason", FORGED, "--registry",
                str(home))
    assert r.exit_code == 0, r.stderr
    r = run_cli("audit", "log", "--registry", str(home))
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout  # init, register, alias.set: no fourth, forged line
    assert not any(line.startswith("#999") for line in lines)
    assert "ok\\x0a#999" in lines[2]
    exact = json.loads(run_cli("audit", "log", "--registry", str(home), "--json").stdout)
    assert exact["entries"][-1]["reason"] == FORGED  # JSON keeps the exact text
    r = run_cli("alias", "history", "credit-risk", "canary", "--registry", str(home))
    assert "\n#999" not in r.stdout and "\\x0a#999" in r.stdout
