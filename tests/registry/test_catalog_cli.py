"""The catalog commands on every backend: exit codes, JSON documents, one-line errors.

``models list|show|describe|rename|delete``, ``versions list|delete``, ``tag set|delete``.
"""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import assert_error
from tests.registry.conftest import GOOD_METRICS
from tests.registry.test_cli import cli, home, location  # noqa: F401 - fixtures

CHANGE_SCHEMA = "https://mlprov.dev/schemas/registry-change/v1"


def _ok(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.startswith("{") else {}


@pytest.fixture
def registered(cli, make_model):  # noqa: F811 - the fixture imported above
    for auc in (0.8, 0.9):
        m = make_model(metrics={"metrics": {**GOOD_METRICS["metrics"], "test/auc": auc},
                                "slices": GOOD_METRICS["slices"]})
        _ok(cli("register", str(m.model), "--evidence", str(m.evidence)))
    ranker = make_model("ranker-a")
    _ok(cli("register", str(ranker.model), "--evidence", str(ranker.evidence)))
    return cli


def test_the_catalog_through_the_run(registered):
    run = registered
    change = _ok(run("models", "describe", "credit-risk", "Scores loans.", "--reason", "doc",
                     "--actor", "alice", "--json"))
    assert (change["schema"], change["kind"], change["details"]["to"]) == (
        CHANGE_SCHEMA, "model.describe", "Scores loans.")
    assert change["auditSeq"] and change["decision"].startswith("sha256:")
    change = _ok(run("tag", "set", "credit-risk", "--version", "2", "team", "search", "--json"))
    assert (change["kind"], change["version"], change["details"]) == (
        "version.tag", 2, {**change["details"], "key": "team", "from": None, "to": "search"})
    r = run("tag", "set", "credit-risk", "owner", "alice")
    assert r.exit_code == 0 and r.stdout == "credit-risk: owner=alice\n"
    assert "audit entry" in r.stderr
    _ok(run("models", "describe", "credit-risk", "--version", "1", "First."))

    shown = _ok(run("models", "show", "credit-risk", "--json"))
    assert (shown["description"], shown["tags"]) == ("Scores loans.", {"owner": "alice"})
    assert [(v["version"], v["tags"], v["description"]) for v in shown["versions"]] == [
        (2, {"team": "search"}, None), (1, {}, "First.")]
    assert shown["versions"][0]["metrics"]["test/auc"] == 0.9
    r = run("models", "show", "credit-risk")
    assert "  Scores loans." in r.stdout and "tag owner=alice" in r.stdout
    assert "team=search" in r.stdout
    one = _ok(run("models", "show", "credit-risk", "--version", "2", "--json"))
    assert (one["description"], one["tags"]) == (None, {"team": "search"})
    r = run("models", "show", "credit-risk", "--version", "1")
    assert "description   First." in r.stdout

    listed = _ok(run("models", "list", "--filter", "tags.owner = 'alice'", "--json"))
    assert [m["name"] for m in listed["models"]] == ["credit-risk"]
    assert listed["nextPageToken"] is None and listed["models"][0]["tags"] == {"owner": "alice"}
    r = run("models", "list", "--order-by", "created_at DESC")
    assert r.stdout.splitlines()[0].startswith("ranker-a  latest v1")

    first = _ok(run("versions", "list", "credit-risk", "--filter", "metrics.`test/auc` > 0.5",
                    "--order-by", "metrics.`test/auc`", "--limit", "1", "--json"))
    assert [v["version"] for v in first["versions"]] == [1] and first["nextPageToken"]
    assert first["schema"] == "https://mlprov.dev/schemas/registry-versions/v1"
    second = _ok(run("versions", "list", "credit-risk", "--filter", "metrics.`test/auc` > 0.5",
                     "--order-by", "metrics.`test/auc`", "--limit", "1", "--page-token",
                     first["nextPageToken"], "--json"))
    assert [v["version"] for v in second["versions"]] == [2]
    assert second["nextPageToken"] is None
    r = run("versions", "list", "credit-risk", "--limit", "1")
    assert r.stdout.startswith("models:/credit-risk/2  None") and "team=search" in r.stdout
    assert r.stderr.startswith("more: --page-token ")
    every = _ok(run("versions", "list", "--json"))  # every model's
    assert [(v["name"], v["version"]) for v in every["versions"]] == [
        ("credit-risk", 2), ("credit-risk", 1), ("ranker-a", 1)]

    change = _ok(run("models", "rename", "credit-risk", "cr", "--reason", "shorter", "--json"))
    assert (change["kind"], change["name"], change["details"]["from"]) == (
        "model.rename", "cr", "credit-risk")
    line = assert_error(run("resolve", "models:/credit-risk/1"), 3,
                        "renamed to 'cr'", "models:/cr/")
    assert "hint:" in line
    assert run("resolve", "models:/cr/1").stdout == "models:/cr/1\n"

    change = _ok(run("versions", "delete", "cr", "2", "--reason", "bad data", "--json"))
    assert (change["kind"], change["version"]) == ("version.delete", 2)
    assert_error(run("resolve", "models:/cr/2"), 3, "cr v2 was deleted")
    assert_error(run("pull", "models:/cr/2", "--out", "nowhere"), 3, "was deleted")
    _ok(run("tag", "delete", "cr", "owner", "--json"))
    r = run("models", "delete", "ranker-a")
    assert r.exit_code == 0 and r.stdout == "ranker-a deleted (1 version(s))\n"
    assert [m["name"] for m in _ok(run("models", "list", "--json"))["models"]] == ["cr"]
    verified = _ok(run("audit", "verify", "--json"))
    assert verified["ok"] is True
    kinds = {e["kind"] for e in _ok(run("audit", "log", "--json"))["entries"]}
    assert {"model.describe", "version.describe", "model.tag", "version.tag", "model.rename",
            "version.delete", "model.delete"} <= kinds


def test_bad_input_through_the_run(registered):
    run = registered
    token = _ok(run("versions", "list", "credit-risk", "--limit", "1", "--json"))["nextPageToken"]
    for args, code, words in [
        (("models", "list", "--filter", "name ~ 'x'"), 2, "bad filter at position 6"),
        (("models", "list", "--filter", "metrics.auc > 1"), 2, "filter versions"),
        (("versions", "list", "credit-risk", "--filter", "tags.team = 'a' OR x = 1"), 2,
         "OR is not supported"),
        (("versions", "list", "--order-by", "stage"), 2, "cannot order versions by stage"),
        (("versions", "list", "credit-risk", "--filter", "version > 0", "--page-token", token),
         2, "belongs to another query"),
        (("versions", "list", "credit-risk", "--page-token", token[:-3] + "xyz"), 2,
         "not issued by this registry"),
        (("versions", "list", "credit-risk", "--page-token", "nope"), 2, "malformed"),
        (("versions", "list", "credit-risk", "--limit", "0"), 2, "--limit"),
        (("versions", "list", "ghost"), 3, "no model named 'ghost'"),
        (("models", "describe", "ghost", "x"), 3, "no model named 'ghost'"),
        (("models", "describe", "credit-risk", "--version", "0", "x"), 2, "invalid version"),
        (("models", "describe", "credit-risk", "--version", "7", "x"), 3, "has no version 7"),
        (("tag", "set", "credit-risk", "bad=key", "v"), 3, "invalid tag key"),
        (("tag", "delete", "credit-risk", "nope"), 3, "has no tag 'nope'"),
        (("tag", "set", "credit-risk"), 2, "Missing argument"),
        (("models", "rename", "credit-risk", "ranker-a"), 3, "'ranker-a' exists"),
        (("models", "rename", "ghost", "x"), 3, "no model named 'ghost'"),
        (("models", "rename", "credit-risk", "bad name"), 3, "invalid model name"),
        (("versions", "delete", "credit-risk", "1"), 2, "--reason"),
        (("versions", "delete", "credit-risk", "9", "--reason", "r"), 3, "has no version 9"),
        (("models", "delete", "ghost"), 3, "no model named 'ghost'"),
    ]:
        assert_error(run(*args), code, words)
    _ok(run("alias", "set", "credit-risk", "canary", "1", "--reason", "try"))
    line = assert_error(run("versions", "delete", "credit-risk", "1", "--reason", "r"), 3,
                        "alias(es) @canary")
    assert "mlprov alias delete credit-risk canary" in line
    assert_error(run("models", "delete", "credit-risk"), 3, "alias")
    assert _ok(run("audit", "verify", "--json"))["ok"] is True


@pytest.mark.parametrize("command", [
    ("models", "list"), ("models", "describe"), ("models", "rename"), ("models", "delete"),
    ("versions",), ("versions", "list"), ("versions", "delete"), ("tag",), ("tag", "set")])
def test_catalog_help_has_examples(run_cli, command):
    r = run_cli(*command, "--help")
    assert r.exit_code == 0 and "Examples:" in r.stdout
    assert f"mlprov {command[0]} " in r.stdout
