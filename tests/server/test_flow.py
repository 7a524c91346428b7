"""The registry's story through a real server: Python client and CLI, real tokens.

Every change is made by an authenticated principal (recorded as the audit
entry's actor); every answer is verified on the client with the pinned key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlprov
from mlprov.errors import VerificationError
from mlprov.registry import PolicyDeniedError, Registry
from mlprov.server import PermissionDeniedError, ServerConfig
from tests.cli.conftest import assert_error

TEAM = ServerConfig({"grants": [
    # The promoter may also move the protected alias of credit-risk, by name.
    {"principals": ["promoter-user"], "aliases": [{"names": ["credit-*"],
                                                   "aliases": ["production"]}]},
]})


def test_story_through_the_python_client(serve, make_model, approve, tmp_path):
    served = serve(TEAM)
    m = make_model()
    ci = served.client("registrar")
    v = ci.register(m.model, evidence=m.evidence, reason="trained")
    assert (v.name, v.version, v.created) == ("credit-risk", 1, True)
    again = ci.register(m.model, evidence=m.evidence)
    assert not again.created and again.version == 1

    promoter = served.client("promoter")
    staged = promoter.promote("credit-risk", 1, to="Staging", reason="eval passed")
    assert staged.allowed and staged.details["to"] == "Staging"
    dry = promoter.promote("credit-risk", 1, to="Production", reason="?", dry_run=True)
    assert dry.dry_run and not dry.allowed
    with pytest.raises(PolicyDeniedError) as denied:
        promoter.promote("credit-risk", 1, to="Production", reason="no review yet")
    assert "approval" in str(denied.value) and not denied.value.result.allowed

    reviewer = served.client("reviewer")
    reviewed = reviewer.add_review("credit-risk", 1, approve(m))
    assert reviewed.kind == "review.add"
    promoter.promote("credit-risk", 1, to="Production", reason="approved")
    moved = promoter.set_alias("credit-risk", "production", 1, reason="serve v1")
    assert moved.allowed

    reader = served.client("reader")
    resolved = reader.resolve("models:/credit-risk@production")
    assert resolved.version == 1 and resolved.via == "@production"
    pulled = reader.pull("models:/credit-risk@production", tmp_path / "serving")
    assert (tmp_path / "serving" / "weights.safetensors").read_bytes() == \
        (m.model / "weights.safetensors").read_bytes()
    assert pulled.files == 2
    loaded = mlprov.load("models:/credit-risk@production", registry=served.url,
                         token=served.tokens["reader"])
    assert loaded.version == 1 and (Path(loaded) / "config.json").is_file()
    again_loaded = reader.load("models:/credit-risk@production")
    assert again_loaded.path == loaded.path  # the verified checkout is reused

    report = reader.verify_audit()
    assert report.ok, report.problems
    # The audit log names the authenticated principals, not a claimed actor.
    actors = {e["kind"]: e["actor"] for e in reader.audit_log()}
    assert actors["model.register"] == "registrar-user"
    assert actors["review.add"] == "reviewer-user"
    assert actors["alias.set"] == "promoter-user"
    with Registry.open(served.registry) as local:  # the server's own view agrees
        assert local.verify_audit().ok
        assert local.resolve("models:/credit-risk@production").version == 1


def test_roles_are_enforced_and_refusals_change_nothing(served, make_model, caplog):
    m = make_model()
    reader = served.client("reader")
    with pytest.raises(PermissionDeniedError, match="may not register"):
        reader.register(m.model, evidence=m.evidence)
    served.client("registrar").register(m.model, evidence=m.evidence)
    with pytest.raises(PermissionDeniedError, match="may not move credit-risk to Staging"):
        served.client("registrar").promote("credit-risk", 1, to="Staging", reason="r")
    served.client("promoter").promote("credit-risk", 1, to="Staging", reason="r")
    # production is protected: the promoter role's alias glob does not reach it
    with pytest.raises(PermissionDeniedError, match="may not set credit-risk@production"):
        served.client("promoter").set_alias("credit-risk", "production", 1, reason="r")
    canary = served.client("promoter").set_alias("credit-risk", "canary", 1, reason="r")
    assert canary.allowed
    entries = served.client("admin").audit_log()
    assert [e["kind"] for e in entries if e["accepted"]] == [
        "registry.init", "model.register", "stage.transition", "alias.set"]
    # Each refusal is an entry of the signed trail too (nothing changed by it).
    refused = [(e["actor"], e["details"]["action"], e["name"], e["target"])
               for e in entries if e["kind"] == "access.refused"]
    assert refused == [("reader-user", "register", None, None),
                       ("registrar-user", "promote", "credit-risk", "Staging"),
                       ("promoter-user", "alias", "credit-risk", "@production")]
    refusals = [json.loads(r.getMessage()) for r in caplog.records
                if r.name == "mlprov.server.audit"]
    assert {r["principal"] for r in refusals} == {"reader-user", "registrar-user",
                                                  "promoter-user"}
    assert all(r["event"] == "refused" and r["reason"] for r in refusals)
    assert {r["auditTrail"] for r in refusals} == {"recorded"}


def test_separation_of_duties(serve, make_model, approve):
    config = ServerConfig({"grants": [{"principals": ["alice"], "register": ["*"],
                                       "review": ["*"], "read": ["*"]}]})
    served = serve(config)
    alice = served.client(token=served.token("alice", "reader"))
    m = make_model()
    alice.register(m.model, evidence=m.evidence)
    with pytest.raises(PermissionDeniedError, match="separation of duties"):
        alice.add_review("credit-risk", 1, approve(m))
    assert served.client("reviewer").add_review("credit-risk", 1, approve(m)).allowed


def test_story_through_the_cli(served, make_model, approve, run_cli, tmp_path, monkeypatch):
    m = make_model()
    monkeypatch.setenv("MLPROV_REGISTRY", served.url)

    def as_(role: str, *args: str):
        return run_cli(*args, env={"MLPROV_TOKEN": served.tokens[role]})

    r = as_("registrar", "register", str(m.model), "--evidence", str(m.evidence), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["uri"] == "models:/credit-risk/1"
    r = as_("promoter", "promote", "credit-risk", "1", "--to", "Staging", "--reason", "ok",
            "--actor", "someone-else")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "credit-risk v1: None -> Staging"
    assert_error(as_("reader", "promote", "credit-risk", "1", "--to", "Production",
                     "--reason", "r"), 1, "reader-user may not move credit-risk to Production")
    r = as_("promoter", "promote", "credit-risk", "1", "--to", "Production", "--reason", "r")
    assert_error(r, 1, "denied by production.rego")
    r = as_("reviewer", "review", "add", "credit-risk", "1", str(approve(m)))
    assert r.exit_code == 0, r.stderr
    assert as_("promoter", "promote", "credit-risk", "1", "--to", "Production",
               "--reason", "r").exit_code == 0
    r = as_("admin", "alias", "set", "credit-risk", "production", "1", "--reason", "go")
    assert r.exit_code == 0, r.stderr
    r = as_("reader", "resolve", "models:/credit-risk@production", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["version"] == 1
    r = as_("reader", "pull", "models:/credit-risk@production", "--out",
            str(tmp_path / "out"), "--head-file", str(tmp_path / "head.json"))
    assert r.exit_code == 0, r.stderr
    # 7 changes and the reader's refusal, recorded in the trail
    assert json.loads((tmp_path / "head.json").read_text())["seq"] == 8
    r = as_("reader", "audit", "log", "--json")
    assert r.exit_code == 0, r.stderr
    entries = json.loads(r.stdout)["entries"]
    promote = next(e for e in entries if e["kind"] == "stage.transition")
    assert promote["actor"] == "promoter-user"  # --actor someone-else was not recorded
    r = as_("reader", "audit", "verify", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"], r.stdout
    r = as_("admin", "rollback", "credit-risk", "--alias", "production", "--to", "1",
            "--reason", "r")
    assert r.exit_code == 3, r.stderr  # already there: the registry's own answer
    r = run_cli("resolve", "models:/credit-risk@production")
    assert_error(r, 3, "no token", "MLPROV_TOKEN")
    r = run_cli("resolve", "models:/credit-risk@production", env={"MLPROV_TOKEN": "mlpt_x"})
    assert_error(r, 3, "not an mlprov API token")


def test_a_pipeline_pins_the_registry_key_in_its_trust_file(served, make_model, keys,
                                                            tmp_path):
    m = make_model()
    admin = served.client("admin")
    admin.register(m.model, evidence=m.evidence)
    public = Path(served.registry) / "keys" / "registry.key.pub"
    trust = tmp_path / "deploy-trust.yaml"
    trust.write_text(keys.trust.read_text().replace("keys:\n", f"keys:\n  - {{name: registry, "
                     f"public_key: {public}, roles: [registry]}}\n", 1).replace(
                     "public_key: ci", f"public_key: {keys.root}/ci").replace(
                     "public_key: eval", f"public_key: {keys.root}/eval").replace(
                     "public_key: alice", f"public_key: {keys.root}/alice"))
    pinned = served.client("reader", trust=trust)
    assert pinned.pull("models:/credit-risk/1", tmp_path / "o").resolved.version == 1
    other = tmp_path / "other-trust.yaml"
    other.write_text(keys.trust.read_text().replace("ci.key.pub", str(keys.root / "ci.key.pub"))
                     .replace("eval.key.pub", str(keys.root / "eval.key.pub"))
                     .replace("alice.key.pub", str(keys.root / "alice.key.pub"))
                     .replace("keys:\n", f"keys:\n  - {{name: registry, public_key: "
                              f"{keys.root / 'mallory.key.pub'}, roles: [registry]}}\n", 1))
    with pytest.raises(VerificationError, match="does not give the registry role"):
        served.client("reader", trust=other)


def test_rollback_deployments_history_and_events_remotely(serve, make_model, approve,
                                                          tmp_path):
    served = serve(ServerConfig({"authz": {"protected_aliases": []}}))
    admin = served.client("admin")
    for n in (1, 2):
        m = make_model()
        admin.register(m.model, evidence=m.evidence)
        admin.promote("credit-risk", n, to="Staging", reason="r")
        admin.set_alias("credit-risk", "canary", n, reason=f"v{n}")
    back = admin.rollback("credit-risk", "canary", reason="regressed")
    assert back.version == 1 and back.kind == "alias.rollback"
    history = admin.alias_history("credit-risk", "canary")
    assert [(c.kind, c.version) for c in history] == [("alias.set", 1), ("alias.set", 2),
                                                      ("alias.rollback", 1)]
    deleted = admin.delete_alias("credit-risk", "canary", reason="over")
    assert deleted.kind == "alias.delete"
    created = admin.create_deployment("scoring", ["models:/credit-risk/1",
                                                  "models:/credit-risk/2"], reason="r")
    assert created.kind == "deployment.create"
    moved = admin.promote_deployment("scoring", 1, to="Staging", reason="r")
    assert moved.allowed
    views = admin.show_deployment("scoring")
    assert [v.record.stage.value for v in views] == ["Staging"]
    events = served.client("reader").events(since=0)
    assert [e["kind"] for e in events][-2:] == ["deployment.create", "deployment.transition"]
    report, bundle = admin.checkpoint()
    assert report.ok and bundle
    with pytest.raises(Exception, match="not offered by a registry server"):
        admin.collect_garbage(dry_run=True)  # set_trust & co. are (tests/server/test_admin.py)
    with pytest.raises(Exception, match="allow-archived"):
        admin.pull("models:/credit-risk@canary", tmp_path / "x", allow_archived=True)


def test_deployments_served_and_version_views_remotely(serve, make_model, tmp_path):
    served = serve(ServerConfig({"authz": {"protected_aliases": []}}))
    admin = served.client("admin")
    m = make_model()
    admin.register(m.model, evidence=m.evidence)
    admin.promote("credit-risk", 1, to="Staging", reason="r")
    admin.create_deployment("scoring", ["models:/credit-risk/1"], reason="r")
    admin.promote_deployment("scoring", 1, to="Staging", reason="r")
    moved = admin.set_deployment_alias("scoring", "canary", 1, reason="r")
    assert moved.kind == "deployment.alias.set"
    reader = served.client("reader")
    stack = mlprov.load("deployments:/scoring@canary", registry=served.url,
                        token=served.tokens["reader"])
    assert (Path(stack["credit-risk"]) / "config.json").is_file()
    pulled = reader.pull_deployment("deployments:/scoring@canary", tmp_path / "stack")
    assert pulled is not None and (tmp_path / "stack").is_dir()
    shown = reader.show_version("credit-risk", 1)
    assert shown is not None
    assert reader.verify_uri("models:/credit-risk/1") is not None
    pending = reader.pending_approvals(stage="Production")
    assert [p.version for p in pending] == [1]
    deleted = admin.delete_deployment_alias("scoring", "canary", reason="r")
    assert deleted.kind == "deployment.alias.delete"
    with pytest.raises(PermissionDeniedError, match="may not set deployments:/scoring@canary"):
        served.client("reviewer").set_deployment_alias("scoring", "canary", 1, reason="r")


def test_the_catalog_through_the_server(serve, make_model):
    served = serve(ServerConfig({"grants": [{"principals": ["admin-user"]}]}))
    registrar = served.client("registrar")
    m = make_model()
    registrar.register(m.model, evidence=m.evidence)
    described = registrar.set_description("credit-risk", "Scores loan applications.")
    assert described.kind == "model.describe"
    tagged = registrar.set_tag("credit-risk", "team", "risk", version=1)
    assert tagged.kind == "version.tag"
    page = served.client("reader").search_versions(filter="tags.team = 'risk'")
    assert [(v.name, v.version) for v in page.items] == [("credit-risk", 1)]
    models = served.client("reader").search_models("name LIKE 'credit-%'")
    assert [i.description for i in models.items] == ["Scores loan applications."]
    info = served.client("reader").version_info("credit-risk", 1)
    assert dict(info.tags) == {"team": "risk"}
    assert registrar.delete_tag("credit-risk", "team", version=1).kind == "version.tag"
    with pytest.raises(PermissionDeniedError, match="may not rename credit-risk"):
        registrar.rename_model("credit-risk", "credit-risk-eu")
    admin = served.client("admin")
    renamed = admin.rename_model("credit-risk", "credit-risk-eu", reason="EU only")
    assert renamed.kind == "model.rename"
    reader = served.client("reader")
    assert reader.resolve("models:/credit-risk-eu/1").version == 1
    assert reader.verify_audit().ok
    with pytest.raises(PermissionDeniedError, match="may not delete"):
        registrar.delete_version("credit-risk-eu", 1, reason="leaked data")
    assert admin.delete_version("credit-risk-eu", 1, reason="leaked data").kind == \
        "version.delete"
    assert admin.delete_model("credit-risk-eu", reason="retired").kind == "model.delete"
    assert reader.verify_audit().ok
