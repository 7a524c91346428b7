"""Deployments served like models (issue 13 item 6): deployments:/ URIs resolve, pull
(one directory per member, each verified) and load; deployment aliases are gated like
model aliases with the registry's thresholds; `deployment show` lists verified members."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlprov
from mlprov.errors import InputError
from mlprov.registry import (
    ArchivedVersionError,
    LoadedDeployment,
    NotFoundError,
    PolicyDeniedError,
    Registry,
    Stage,
)
from mlprov.registry._uri import UriError
from mlprov.registry.interface import BlobCorruptError
from tests.cli.conftest import assert_error
from tests.registry.stored import cli_for, tamper_blob


@pytest.fixture
def stack(registry, make_model, approve) -> Registry:
    """credit-risk and fraud-rules, both in Production; deployments:/stack/1 of the two
    (in Staging) and deployments:/stack/2 of credit-risk alone (in None)."""
    for name in ("credit-risk", "fraud-rules"):
        m = make_model(name)
        registry.register(m.model, evidence=m.evidence)
        registry.add_review(name, 1, approve(m))
        registry.promote(name, 1, to="Staging", reason="eval")
        registry.promote(name, 1, to="Production", reason="approved")
    registry.set_alias("credit-risk", "production", 1, reason="serve")
    registry.create_deployment("stack", ["models:/credit-risk@production",
                                         "models:/fraud-rules/1"], reason="release 1")
    registry.promote_deployment("stack", 1, to="Staging", reason="try it")
    registry.create_deployment("stack", ["models:/credit-risk/1"], reason="release 2")
    return registry


def test_resolve_every_form(stack):
    one = stack.resolve_deployment("deployments:/stack/1")
    assert (one.version, one.stage, one.via, one.version_uri) == (
        1, Stage.STAGING, "version", "deployments:/stack/1")
    assert [(m.uri, m.stage, m.requested) for m in one.members] == [
        ("models:/credit-risk/1", Stage.PRODUCTION, "models:/credit-risk@production"),
        ("models:/fraud-rules/1", Stage.PRODUCTION, "models:/fraud-rules/1")]
    assert one.members[0].root_digest == stack.get_version("credit-risk", 1).root_digest
    assert stack.resolve_deployment("deployments:/stack/latest").version == 2
    staged = stack.resolve_deployment("deployments:/stack/Staging")
    assert (staged.version, staged.via) == (1, "stage")
    with pytest.raises(NotFoundError, match="no version in stage Production"):
        stack.resolve_deployment("deployments:/stack/Production")
    with pytest.raises(NotFoundError, match="no deployment named 'nope'"):
        stack.resolve_deployment("deployments:/nope/1")
    with pytest.raises(NotFoundError, match="has no version 9"):
        stack.resolve_deployment("deployments:/stack/9")
    with pytest.raises(NotFoundError, match="has no alias 'prod'"):
        stack.resolve_deployment("deployments:/stack@prod")
    with pytest.raises(UriError, match="not a deployments:/ URI"):
        stack.resolve_deployment("models:/stack/1")
    with pytest.raises(UriError, match="bad URI"):
        stack.resolve_deployment("deployments:/stack")


def test_deployment_aliases_are_gated_like_model_aliases(stack):
    # stack v2's member is in Production, but production.rego gates the alias for every
    # member: v1 holds only Production members too, so both may take it.
    result = stack.set_deployment_alias("stack", "production", 1, reason="go live",
                                        dry_run=True)
    assert result.allowed and result.dry_run
    changed = stack.set_deployment_alias("stack", "production", 1, reason="go live")
    assert changed.kind == "deployment.alias.set" and changed.details["from"] is None
    assert stack.resolve_deployment("deployments:/stack@production").via == "@production"
    # A member not in Production: the alias gated as production refuses, naming the member.
    stack.promote("fraud-rules", 1, to="Archived", reason="retired")
    moved = stack.set_deployment_alias("stack", "production", 2, reason="v2")
    assert (moved.details["from"], moved.details["to"]) == (1, 2)
    with pytest.raises(PolicyDeniedError, match=r"models:/fraud-rules/1: alias production is "
                                                r"gated as production"):
        stack.set_deployment_alias("stack", "production", 1, reason="back")
    assert stack.resolve_deployment("deployments:/stack@production").version == 2
    with pytest.raises(InputError, match="already points to version 2"):
        stack.set_deployment_alias("stack", "production", 2, reason="again")
    # canary: "*" = staging.rego for each member.
    stack.set_deployment_alias("stack", "canary", 2, reason="try")
    [shown] = stack.show_deployment("stack", 2)
    assert shown.aliases == ("canary", "production")
    deleted = stack.delete_deployment_alias("stack", "canary", reason="done")
    assert (deleted.details["alias"], deleted.details["from"], deleted.details["to"]) == (
        "canary", 2, None)
    with pytest.raises(NotFoundError, match="has no alias 'canary'"):
        stack.resolve_deployment("deployments:/stack@canary")
    with pytest.raises(NotFoundError, match="has no alias 'canary'"):
        stack.delete_deployment_alias("stack", "canary", reason="again")
    with pytest.raises(NotFoundError, match="no deployment deployments:/stack/7"):
        stack.set_deployment_alias("stack", "canary", 7, reason="x")
    kinds = [(e["kind"], e["accepted"]) for e in stack.audit_log()
             if e["kind"].startswith("deployment.alias")]
    assert kinds == [("deployment.alias.set", True)] * 2 + [
        ("deployment.alias.set", False), ("deployment.alias.set", True),
        ("deployment.alias.delete", True)]  # the denial is audited too
    assert stack.verify_audit(deep=True).ok


def test_thresholds_apply_to_deployment_aliases(stack):
    stack.set_thresholds(["auc>=0.99"], reason="stricter")
    with pytest.raises(PolicyDeniedError, match=r"models:/credit-risk/1: eval metric auc = "
                                                r"0\.91 is below the minimum 0\.99"):
        stack.set_deployment_alias("stack", "production", 2, reason="go live")


def test_pull_and_load_every_member(stack, tmp_path):
    stack.set_deployment_alias("stack", "production", 1, reason="go live")
    out = tmp_path / "serving"
    pulled = stack.pull_deployment("deployments:/stack@production", out)
    assert pulled.resolved.version == 1
    assert [(m.uri, m.path, m.files) for m in pulled.members] == [
        ("models:/credit-risk/1", out / "credit-risk", 2),
        ("models:/fraud-rules/1", out / "fraud-rules", 2)]
    assert (out / "credit-risk" / "weights.safetensors").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["credit-risk", "fraud-rules"]

    loaded = stack.load_deployment("deployments:/stack@production")
    assert [m.uri for m in loaded.members] == ["models:/credit-risk/1", "models:/fraud-rules/1"]
    assert (loaded["fraud-rules"] / "config.json").is_file()
    with pytest.raises(NotFoundError, match="no member 'ghost'"):
        loaded["ghost"]
    via_load = mlprov.load("deployments:/stack/1", registry=stack)
    assert isinstance(via_load, LoadedDeployment) and via_load.version == 1
    with pytest.raises(InputError, match="allow_archived is for models:/ URIs"):
        mlprov.load("deployments:/stack/1", registry=stack, allow_archived=True)


def test_an_archived_deployment_is_not_served_through_an_alias(stack, tmp_path):
    stack.set_deployment_alias("stack", "canary", 1, reason="try")
    stack.promote_deployment("stack", 1, to="Archived", reason="retired")
    with pytest.raises(ArchivedVersionError, match="in stage Archived"):
        stack.pull_deployment("deployments:/stack@canary", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert stack.resolve_deployment("deployments:/stack/1").stage is Stage.ARCHIVED


def test_a_tampered_member_blob_fails_closed(stack, tmp_path, run_cli):
    facts = stack.verify_version("fraud-rules", 1)
    weights = next(f for f in facts.manifest.files if f.path == "weights.safetensors")
    tamper_blob(stack, f"sha256:{weights.sha256}", lambda data: bytes(len(data)))
    with pytest.raises(BlobCorruptError):
        stack.pull_deployment("deployments:/stack/1", tmp_path / "out")
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out.*")) == []
    r = cli_for(run_cli, stack)("pull", "deployments:/stack/1", "--out", str(tmp_path / "o"))
    assert_error(r, 1)
    assert not (tmp_path / "o").exists()


def test_deployments_served_through_the_cli(stack, run_cli, tmp_path):
    cli = cli_for(run_cli, stack)
    r = cli("deployment", "alias", "set", "stack", "production", "1", "--reason", "?",
            "--dry-run")
    assert r.exit_code == 0 and r.stdout.startswith("dry run: allow")
    r = cli("deployment", "alias", "set", "stack", "production", "1", "--reason", "live")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "deployments:/stack@production: unset -> v1"
    r = cli("resolve", "deployments:/stack@production", "--json")
    assert r.exit_code == 0, r.stderr
    resolved = json.loads(r.stdout)
    assert resolved["schema"] == "https://mlprov.dev/schemas/resolved-deployment/v1"
    assert (resolved["versionUri"], resolved["via"]) == ("deployments:/stack/1", "@production")
    assert [m["stage"] for m in resolved["members"]] == ["Production", "Production"]
    r = cli("resolve", "deployments:/stack/latest")
    assert r.exit_code == 0 and r.stdout.strip() == "deployments:/stack/2"

    out = tmp_path / "serving"
    r = cli("pull", "deployments:/stack@production", "--out", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    pulled = json.loads(r.stdout)
    assert pulled["schema"] == "https://mlprov.dev/schemas/pulled-deployment/v1"
    assert [Path(m["path"]).name for m in pulled["pulled"]] == ["credit-risk", "fraud-rules"]
    assert (out / "fraud-rules" / "config.json").is_file()

    r = cli("deployment", "show", "stack", "1")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("deployments:/stack/1  Staging  @production  (signed by")
    assert lines[1].startswith("  models:/credit-risk/1  Production sha256:")
    r = cli("deployment", "show", "stack", "--json")
    shown = json.loads(r.stdout)["deployments"]
    assert [d["aliases"] for d in shown] == [["production"], []]
    assert shown[0]["members"][1]["rootDigest"].startswith("sha256:")

    r = cli("deployment", "alias", "set", "stack", "production", "1", "--reason", "again")
    assert_error(r, 3, "already points to version 1")
    r = cli("deployment", "alias", "delete", "stack", "production", "--reason", "off")
    assert r.exit_code == 0 and r.stdout.strip() == "deployments:/stack@production: v1 -> unset"
    assert_error(cli("resolve", "deployments:/stack@production"), 3, "has no alias")
    assert_error(cli("resolve", "deployments:/nope/1"), 3, "no deployment named 'nope'")
    assert_error(cli("pull", "deployments:/stack/9", "--out", str(tmp_path / "x")), 3,
                 "has no version 9")
    assert_error(cli("resolve", "deployments:/stack"), 2, "bad URI")
    assert_error(cli("pull", "deployments:/stack/1", "--out", str(tmp_path / "y"),
                     "--allow-archived"), 2, "--allow-archived")
    assert_error(cli("deployment", "alias", "set", "stack", "Prod", "1", "--reason", "x"), 3,
                 "invalid alias")
    assert_error(cli("deployment", "alias", "delete", "stack", "gone", "--reason", "x"), 3,
                 "has no alias 'gone'")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert cli("audit", "verify").exit_code == 0
