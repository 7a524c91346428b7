"""File names, messages and metric names are escaped in text output (issue 10 item 7)."""

from __future__ import annotations

from pathlib import Path

from mlprov.policy import shipped_policies_dir
from tests.policy.conftest import attest_model, malicious_pickle


def test_policy_check_escapes_file_names_and_messages(run_cli, lab, tmp_path: Path):
    name = "evil\n  deny: nothing \x1b[2K.pkl"
    attested = attest_model(lab, tmp_path, extra={name: malicious_pickle()})
    r = run_cli("policy", "check", "--policy", str(shipped_policies_dir()), "--evidence",
                str(attested.evidence), "--model", str(attested.model), "--trust",
                str(attested.trust), "--to", "Production")
    assert r.exit_code == 1
    assert "\x1b" not in r.stdout + r.stderr
    assert not any(line.startswith("  deny: nothing") for line in r.stdout.splitlines())
    assert "evil\\x0a  deny: nothing \\x1b[2K.pkl" in r.stdout
    assert len(r.stderr.splitlines()) == 1


def test_inspect_escapes_metric_names(run_cli, lab, tmp_path: Path):
    metrics = {"metrics": {"auc\x1b]0;owned\x07": 0.9, "accuracy": 0.9}}
    attested = attest_model(lab, tmp_path, metrics=metrics)
    r = run_cli("inspect", str(attested.evidence), "--trust", str(attested.trust))
    assert r.exit_code == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "auc\\x1b]0;owned\\x07" in r.stdout
