"""Authorisation rules (deny by default) and the OpenAPI document."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError
from mlprov.server import ServerConfig
from mlprov.server._authz import Access, Principal
from tests.server.test_auth import request


def access(config: ServerConfig, name: str = "alice", *roles: str,
           groups: tuple[str, ...] = ()) -> Access:
    return Access(Principal(name=name, roles=frozenset(roles), via="test",
                            groups=frozenset(groups)), config)


def test_nothing_is_allowed_without_a_grant():
    a = access(ServerConfig())
    assert not a.may_read_any() and not a.may_read("x") and not a.may_register_any()
    assert not a.may_promote("x", "Staging") and not a.may_alias("x", "canary")
    assert not a.may_review("x") and not a.may_deploy("x", None) and not a.admin
    unknown = access(ServerConfig(), "bob", "superuser")
    assert not unknown.may_read("x") and unknown.unknown_roles == ["superuser"]


def test_builtin_roles():
    config = ServerConfig()
    reader = access(config, "r", "reader")
    assert reader.may_read("anything") and not reader.may_register("anything")
    promoter = access(config, "p", "promoter")
    assert promoter.may_promote("m", "Production") and promoter.may_alias("m", "canary")
    assert not promoter.may_alias("m", "production")  # protected: granted by name only
    assert not promoter.may_alias("m", "champion")
    assert access(config, "a", "admin").may_alias("m", "production")
    assert access(config, "v", "reviewer").may_review("m")


def test_grants_by_principal_and_group_with_globs():
    config = ServerConfig({
        "groups": {"risk": ["alice", "bob"]},
        "grants": [
            {"principals": ["group:risk"], "read": ["credit-*"],
             "promote": [{"names": ["credit-*"], "stages": ["Staging"]}],
             "aliases": [{"names": ["credit-risk"], "aliases": ["production", "can*"]}]},
            {"principals": ["carol"], "register": ["fraud-?"]},
        ]})
    alice = access(config, "alice")
    assert alice.may_read("credit-risk") and not alice.may_read("fraud-x")
    assert alice.may_promote("credit-risk", "Staging")
    assert not alice.may_promote("credit-risk", "Production")
    assert alice.may_alias("credit-risk", "production")  # named exactly
    assert alice.may_alias("credit-risk", "canary") and not alice.may_alias("credit-x", "canary")
    carol = access(config, "carol")
    assert carol.may_register("fraud-1") and not carol.may_register("fraud-12")
    assert not carol.may_read("fraud-1")
    assert access(config, "dave", groups=("risk",)).may_read("credit-a")  # OIDC groups


def test_a_role_can_be_redefined_narrower():
    config = ServerConfig({"roles": {"promoter": {
        "promote": [{"names": ["*"], "stages": ["Staging", "Archived"]}]}}})
    promoter = access(config, "p", "promoter")
    assert promoter.may_promote("m", "Staging") and not promoter.may_promote("m", "Production")
    assert not promoter.may_alias("m", "canary") and not promoter.may_read("m")


def test_a_protected_alias_glob_grants_nothing():
    config = ServerConfig({"authz": {"protected_aliases": ["prod"]}, "grants": [
        {"principals": ["x"], "aliases": [{"names": ["*"], "aliases": ["pro*", "*"]}]}]})
    x = access(config, "x")
    assert not x.may_alias("m", "prod") and x.may_alias("m", "production")


@pytest.mark.parametrize("document", [
    {"grants": [{"principals": ["x"], "read": ["a/b"]}]},
    {"grants": [{"principals": ["x"], "read": ["a\nb"]}]},
    {"grants": [{"principals": ["bad name"], "read": ["*"]}]},
    {"grants": [{"principals": ["x"], "promote": [{"names": ["*"], "stages": ["Prod"]}]}]},
    {"grants": [{"principals": ["x"], "admin": "yes"}]},
    {"roles": {"Bad": {}}},
    {"groups": {"g": ["bad name"]}},
    {"authz": {"protected_aliases": ["Prod"]}},
    {"server": {"port": 70000}},
    {"oidc": [{"issuer": "https://a", "audience": "x"}, {"issuer": "https://a",
                                                         "audience": "y"}]},
    {"oidc": [{"issuer": "https://a", "audience": "x", "algorithms": ["HS256"]}]},
    {"oidc": [{"issuer": "https://a", "audience": "x", "algorithms": ["none"]}]},
])
def test_bad_configurations_are_refused(document):
    with pytest.raises(InputError):
        ServerConfig(document)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=20))
def test_globs_never_match_across_names_they_do_not_cover(name, alias):
    config = ServerConfig({"grants": [{"principals": ["x"], "read": ["credit-*"],
                                       "aliases": [{"names": ["credit-*"],
                                                    "aliases": ["*"]}]}]})
    x = access(config, "x")
    assert x.may_read(name) == name.startswith("credit-")
    assert not x.may_alias(name, "production")


def test_the_openapi_document_lists_every_route(served):
    from mlprov.server._app import all_endpoints

    status, _, data = request(served.url, "GET", "/api/v1/openapi.json",
                              {"Authorization": f"Bearer {served.tokens['reader']}"})
    assert status == 200
    document = json.loads(data)
    assert document["openapi"] == "3.1.0"
    listed = {(path, method.upper()) for path, ops in document["paths"].items()
              for method in ops}
    expected = {(e.path, e.method) for e in all_endpoints() if e.path.startswith("/api/")}
    assert listed == expected
    assert document["paths"]["/api/v1/health"]["get"]["security"] == []
    promote = document["paths"]["/api/v1/models/{name}/versions/{version}/stage"]["post"]
    schema = promote["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("PromoteRequest")
    assert "PromoteRequest" in document["components"]["schemas"]
    assert "403" in promote["responses"] and "401" in promote["responses"]


def test_read_rules_filter_names_end_to_end(serve, make_model, tmp_path):
    served = serve(ServerConfig({"grants": [{"principals": ["carol"], "read": ["credit-*"]}]}))
    admin = served.client("admin")
    for name in ("credit-risk", "fraud-score"):
        m = make_model(name)
        admin.register(m.model, evidence=m.evidence)
    carol = served.client(token=served.token("carol", "none"))
    assert [m["name"] for m in carol.list_models()] == ["credit-risk"]
    assert carol.pull("models:/credit-risk/1", tmp_path / "ok").files == 2
    from mlprov.server import PermissionDeniedError

    with pytest.raises(PermissionDeniedError, match="carol may not read fraud-score"):
        carol.pull("models:/fraud-score/1", tmp_path / "no")
    with pytest.raises(PermissionDeniedError, match="carol may not read fraud-score"):
        carol.show_model("fraud-score")
    token = {"Authorization": f"Bearer {served.token('carol2', 'none')}"}
    status, _, _ = request(served.url, "GET", "/api/v1/models", token)
    assert status == 403  # no grant at all: nothing to read
