"""The registry commands: exit codes, one-line errors, JSON documents."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import assert_error


@pytest.fixture
def home(tmp_path: Path, run_cli, keys) -> Path:
    path = tmp_path / "reg"
    r = run_cli("registry", "init", "--registry", str(path), "--trust", str(keys.trust),
                "--json")
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["home"] == str(path) and info["gates"]["stages"]["Production"] == \
        "production.rego"
    return path


@pytest.fixture(params=["embedded", "team"])
def location(request: pytest.FixtureRequest, tmp_path: Path, run_cli, keys,
             monkeypatch: pytest.MonkeyPatch) -> str:
    """A registry made by `mlprov registry init` on every backend: its --registry value."""
    if request.param == "embedded":
        return str(request.getfixturevalue("home"))
    url: str = request.getfixturevalue("postgres_url")
    blobs: str = request.getfixturevalue("s3_url")
    key = tmp_path / "registry.key"
    assert run_cli("keygen", "--out", str(key), "--type", "ecdsa-p256").exit_code == 0
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "cache"))
    r = run_cli("registry", "init", "--db", url, "--blobs", blobs, "--trust", str(keys.trust),
                "--key", str(key), "--json")
    assert r.exit_code == 0, r.stderr
    monkeypatch.setenv("MLPROV_REGISTRY_KEY", str(key))  # the machines that change it
    return url


@pytest.fixture
def cli(run_cli, location):
    """The CLI against the registry on every backend."""
    def run(*args: str):
        return run_cli(*args, "--registry", location)
    return run


@pytest.fixture
def embedded_cli(run_cli, home):
    """The CLI against an embedded registry (tests that edit its files)."""
    def run(*args: str):
        return run_cli(*args, "--registry", str(home))
    return run


def test_story_through_the_cli(cli, make_model, approve, tmp_path):
    m = make_model()
    r = cli("register", str(m.model), "--evidence", str(m.evidence), "--json")
    assert r.exit_code == 0, r.stderr
    registered = json.loads(r.stdout)
    assert (registered["uri"], registered["created"]) == ("models:/credit-risk/1", True)

    r = cli("promote", "credit-risk", "1", "--to", "staging", "--reason", "eval passed")
    assert r.exit_code == 0 and r.stdout.strip() == "credit-risk v1: None -> Staging"

    r = cli("promote", "credit-risk", "1", "--to", "Production", "--reason", "ship")
    line = assert_error(r, 1, "denied by production.rego", "needs 1 approval(s)")
    assert "audit entry" in line

    r = cli("review", "add", "credit-risk", "1", str(approve(m)))
    assert r.exit_code == 0, r.stderr
    assert "review by alice (approve) attached" in r.stdout

    r = cli("promote", "credit-risk", "1", "--to", "Production", "--reason", "approved",
            "--json")
    assert r.exit_code == 0, r.stderr
    change = json.loads(r.stdout)
    assert change["allowed"] and change["policy"]["uri"].endswith("production.rego")

    r = cli("alias", "set", "credit-risk", "production", "1", "--reason", "serve")
    assert r.exit_code == 0 and "unset -> v1" in r.stdout

    r = cli("resolve", "models:/credit-risk@production", "--json")
    resolved = json.loads(r.stdout)
    assert (resolved["version"], resolved["stage"], resolved["via"]) == (1, "Production",
                                                                         "@production")

    r = cli("pull", "models:/credit-risk@production", "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["files"] == 2
    assert (tmp_path / "out" / "config.json").is_file()

    r = cli("models", "list", "--json")
    [model] = json.loads(r.stdout)["models"]
    assert model == {"name": "credit-risk", "latestVersion": 1,
                     "createdAt": model["createdAt"], "aliases": {"production": 1},
                     "description": None, "tags": {}}
    r = cli("models", "show", "credit-risk")
    assert "@production -> v1" in r.stdout and "1 review(s)" in r.stdout

    r = cli("audit", "log", "--json")
    entries = json.loads(r.stdout)["entries"]
    assert [e["kind"] for e in entries] == [
        "registry.init", "model.register", "stage.transition", "stage.transition",
        "review.add", "stage.transition", "alias.set"]
    assert [e["accepted"] for e in entries].count(False) == 1
    r = cli("audit", "log")
    assert "DENIED stage.transition" in r.stdout and "denied: needs 1 approval" in r.stdout

    r = cli("audit", "verify", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True

    r = cli("events", "--since", "5", "--json")
    assert [e["id"] for e in json.loads(r.stdout)["events"]] == [6, 7]


def test_alias_history_rollback_and_delete(cli, make_model):
    for _ in range(2):
        m = make_model()
        assert cli("register", str(m.model), "--evidence", str(m.evidence)).exit_code == 0
    assert cli("alias", "set", "credit-risk", "canary", "1", "--reason", "a").exit_code == 0
    assert cli("alias", "set", "credit-risk", "canary", "2", "--reason", "b").exit_code == 0
    r = cli("rollback", "credit-risk", "--alias", "canary")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "credit-risk@canary: v2 -> v1 (rollback)"
    r = cli("alias", "history", "credit-risk", "canary", "--json")
    history = json.loads(r.stdout)
    assert [c["version"] for c in history["changes"]] == [1, 2, 1]
    assert history["version"] == 1
    r = cli("alias", "history", "credit-risk", "canary", "--at", history["changes"][1]["time"])
    assert r.stdout.splitlines()[-1].endswith("pointed to v2")
    r = cli("alias", "history", "credit-risk", "canary", "--at", "1999-01-01")
    assert r.stdout.strip().endswith("pointed to nothing")
    r = cli("alias", "delete", "credit-risk", "canary", "--reason", "done")
    assert r.exit_code == 0 and r.stdout.strip() == "credit-risk@canary: v1 -> unset"
    assert_error(cli("resolve", "models:/credit-risk@canary"), 3, "has no alias")
    assert_error(cli("alias", "history", "credit-risk", "canary", "--at", "yesterday"), 3,
                 "not a time")


def test_usage_and_lookup_errors(cli, run_cli, tmp_path, make_model):
    assert_error(cli("resolve", "s3://bucket/model"), 2, "not a models:/ URI")
    assert_error(cli("resolve", "models:/x"), 2, "bad URI")
    assert_error(cli("resolve", "models:/ghost/1"), 3, "no model named 'ghost'")
    assert_error(cli("promote", "ghost", "0", "--to", "Staging", "--reason", "x"), 2)
    assert_error(cli("promote", "ghost", "1", "--to", "Live", "--reason", "x"), 2)
    assert_error(cli("promote", "ghost", "1", "--to", "Staging"), 2, "--reason")
    assert_error(cli("alias", "set", "ghost", "Prod!", "1", "--reason", "x"), 3,
                 "invalid alias")
    assert_error(run_cli("models", "list", "--registry", str(tmp_path / "none")), 3,
                 "no registry at", "registry init")
    m = make_model()
    (m.model / "config.json").write_text("{}")
    line = assert_error(cli("register", str(m.model), "--evidence", str(m.evidence)), 1,
                        "does not verify", "changed: config.json")
    assert "refusal audited" in line


def test_registry_commands(embedded_cli, keys, tmp_path, home):
    cli = embedded_cli
    r = cli("registry", "show", "--json")
    info = json.loads(r.stdout)
    assert {s["name"] for s in info["signers"]} == {"ci", "eval", "alice", "registry"}
    r = cli("registry", "set-trust", str(keys.trust), "--reason", "same")
    assert_error(r, 3, "already")
    r = cli("registry", "set-policies", "--reason", "shipped again")
    assert_error(r, 3, "already")
    config = tmp_path / "mlprov.toml"
    config.write_text((home / "mlprov.toml").read_text().replace("checkpoint_every = 100",
                                                                 "checkpoint_every = 2"))
    r = cli("registry", "set-config", str(config), "--reason", "checkpoint often", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "registry.config"
    assert (home / "mlprov.toml").read_text() == config.read_text()
    assert "registry.config" in cli("audit", "log").stdout


def test_audit_verify_fails_on_a_tampered_database(embedded_cli, make_model, home, tmp_path):
    cli = embedded_cli
    m = make_model()
    cli("register", str(m.model), "--evidence", str(m.evidence))
    assert cli("audit", "verify").exit_code == 0
    r = cli("audit", "checkpoint", "--out", str(tmp_path / "cp.json"))
    assert r.exit_code == 0 and r.stdout.strip() == str(tmp_path / "cp.json")
    assert "signed a checkpoint of audit entry" in r.stderr
    assert cli("audit", "checkpoint").exit_code == 0  # --out is optional
    conn = sqlite3.connect(home / "registry.db", isolation_level=None)
    conn.execute("UPDATE audit SET kind = 'registry.config' WHERE seq = 2")
    r = cli("audit", "verify")
    assert_error(r, 1, "audit log does not verify", "columns kind were changed")
    r = cli("audit", "verify", "--json", "--checkpoint", str(tmp_path / "cp.json"))
    assert r.exit_code == 1
    assert json.loads(r.stdout)["ok"] is False
    assert_error(cli("audit", "checkpoint"), 1, "audit log does not verify")


def test_deployments_cli(cli, make_model, approve):
    a, b = make_model("credit-risk"), make_model("fraud-rules")
    for m in (a, b):
        assert cli("register", str(m.model), "--evidence", str(m.evidence)).exit_code == 0
    cli("alias", "set", "credit-risk", "canary", "1", "--reason", "x")
    r = cli("deployment", "create", "stack", "--model", "credit-risk@canary",
            "--model", "models:/fraud-rules/1", "--reason", "release", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["details"]["models"] == ["models:/credit-risk/1",
                                                          "models:/fraud-rules/1"]
    r = cli("deployment", "show", "stack", "--json")
    [shown] = json.loads(r.stdout)["deployments"]
    assert shown["signedBy"] == "registry" and shown["uri"] == "deployments:/stack/1"
    assert [m["requested"] for m in shown["models"]] == ["models:/credit-risk@canary",
                                                         "models:/fraud-rules/1"]
    r = cli("deployment", "promote", "stack", "1", "--to", "Production", "--reason", "live")
    assert_error(r, 1, "denied by production.rego",
                 "never straight from None: it is in None (promote it to Staging first)")
    r = cli("deployment", "promote", "stack", "1", "--to", "Staging", "--reason", "try")
    assert r.exit_code == 0, r.stderr
    r = cli("deployment", "promote", "stack", "1", "--to", "Production", "--reason", "live")
    line = assert_error(r, 1, "denied by production.rego", "models:/credit-risk/1: needs")
    assert "models:/fraud-rules/1: needs" in line
    cli("review", "add", "credit-risk", "1", str(approve(a)))
    cli("review", "add", "fraud-rules", "1", str(approve(b)))
    r = cli("deployment", "promote", "stack", "1", "--to", "Production", "--reason", "live")
    assert r.exit_code == 0, r.stderr
    r = cli("deployment", "list")
    assert r.stdout.strip() == "deployments:/stack/1  Production"
    assert_error(cli("deployment", "create", "stack", "--model", "ghost/1", "--reason", "x"),
                 3, "no model named 'ghost'")
    assert_error(cli("deployment", "show", "nothing"), 3, "no deployment")
    assert cli("audit", "verify").exit_code == 0


def test_events_deliver_cli(cli):
    r = cli("events", "deliver", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["delivered"] == 0
    r = cli("events")
    assert "registry.init" in r.stdout


def test_attest_with_a_registry_parent(cli, run_cli, location, make_model, keys, tmp_path):
    base = make_model("credit-risk-base")
    assert cli("register", str(base.model), "--evidence", str(base.evidence)).exit_code == 0
    child = tmp_path / "child"
    child.mkdir()
    (child / "weights.safetensors").write_bytes(b"child weights")
    env = {"MLPROV_REGISTRY": location}
    r = run_cli("attest", str(child), "--name", "credit-risk", "--key", str(keys.builder),
                "--out", str(tmp_path / "child-ev"), "--commit", "0" * 40,
                "--parent", "fine-tune-of=models:/credit-risk-base/1",
                "--parent-trust", str(keys.trust), "--json", env=env)
    assert r.exit_code == 0, r.stderr
    [parent] = json.loads(r.stdout)["parents"]
    assert (parent["name"], parent["role"]) == ("credit-risk-base", "fine-tune-of")
    r = run_cli("attest", str(child), "--name", "credit-risk", "--key", str(keys.builder),
                "--out", str(tmp_path / "child-ev2"), "--commit", "0" * 40,
                "--parent", "fine-tune-of=models:/nope", env=env)
    assert_error(r, 2, "bad URI")
    r = run_cli("attest", str(child), "--name", "credit-risk", "--key", str(keys.builder),
                "--out", str(tmp_path / "child-ev3"), "--commit", "0" * 40,
                "--parent", "fine-tune-of=models:/ghost/1", env=env)
    assert_error(r, 3, "no model named 'ghost'")


@pytest.mark.parametrize("command", [
    ("registry",), ("register",), ("resolve",), ("pull",), ("promote",), ("alias",),
    ("rollback",), ("audit",), ("events",), ("deployment",), ("review", "add")])
def test_help_has_examples(run_cli, command):
    r = run_cli(*command, "--help")
    assert r.exit_code == 0
    assert "Examples:" in r.stdout
    assert f"mlprov {' '.join(command)} " in r.stdout


def test_cli_start_up_stays_light():
    """`mlprov --help` and the registry commands' modules import no SQLAlchemy or regopy."""
    import subprocess
    import sys

    code = ("import sys, mlprov._cli.main, mlprov._cli.models, mlprov._cli.stages, "
            "mlprov._cli.audit, mlprov._cli.registry, mlprov._cli.deployments; "
            "print(sorted(m for m in ('sqlalchemy', 'regopy', 'pydantic') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
