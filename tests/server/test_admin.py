"""The registry's settings through the server (admin): trust, policies, thresholds, config.

Each is the registry's own signed, audited ``registry.*`` change, made by the
authenticated admin; the client checks the signed decision records exactly
what it sent. Anyone else is refused (403, audited); hostile file names in a
policy set are refused before anything is written.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError
from mlprov.registry import Registry
from mlprov.server import PermissionDeniedError


def test_thresholds_and_config_remotely(served, run_cli, tmp_path):
    admin = served.client("admin")
    result = admin.set_thresholds(["test/auc>=0.9", "slice:auc>=0.7"], reason="stricter")
    assert result.allowed and result.kind == "registry.thresholds"
    with Registry.open(served.registry) as local:
        assert sorted(local.thresholds.lines()) == ["slice:auc>=0.7", "test/auc>=0.9"]
        config = local.config_text()
    changed = tmp_path / "mlprov.toml"
    changed.write_text(config + "\n# reviewed by the platform team\n")
    done = admin.set_config(changed, reason="comment")
    assert done.kind == "registry.config"
    with Registry.open(served.registry) as local:
        assert local.config_text() == changed.read_text()
        entries = local.audit_log()
        assert local.verify_audit(deep=True, full=True).ok
    assert [(e["kind"], e["actor"]) for e in entries[-2:]] == [
        ("registry.thresholds", "admin-user"), ("registry.config", "admin-user")]
    # The CLI, as admin and as a reader (refused, exit 1, audited).
    env = {"MLPROV_REGISTRY": served.url, "MLPROV_TOKEN": served.tokens["admin"]}
    r = run_cli("registry", "set-thresholds", "--threshold", "test/auc>=0.8", "--reason", "r",
                env=env)
    assert r.exit_code == 0, r.stderr
    assert "thresholds set to test/auc>=0.8" in r.stdout
    r = run_cli("registry", "set-thresholds", "--clear", "--reason", "r",
                env={**env, "MLPROV_TOKEN": served.tokens["promoter"]})
    assert r.exit_code == 1
    assert "promoter-user may not change the registry's thresholds" in r.stderr
    [refused] = [e for e in admin.audit_log() if e["kind"] == "access.refused"]
    assert (refused["details"]["action"], refused["target"]) == ("admin", "thresholds")


def test_policies_and_trust_remotely(served, keys, tmp_path):
    from mlprov.policy import shipped_policies_dir

    admin = served.client("admin")
    policies = tmp_path / "policies"
    shutil.copytree(shipped_policies_dir(), policies)
    rego = sorted(policies.glob("*.rego"))[0]
    rego.write_text(rego.read_text() + "\n# reviewed\n")
    result = admin.set_policies(policies, reason="a comment")
    assert result.kind == "registry.policies" and result.allowed
    with pytest.raises(InputError, match="already"):
        admin.set_policies(policies, reason="again")
    back = admin.set_policies(None, reason="the shipped ones")
    assert back.details["to"] == result.details["from"]

    trust = tmp_path / "trust.yaml"  # alice is no longer a reviewer
    trust.write_text(keys.trust.read_text().replace(
        "  - {name: alice, public_key: alice.key.pub, roles: [reviewer]}\n", "").replace(
        "public_key: ", f"public_key: {keys.root}/"))
    changed = admin.set_trust(trust, reason="alice left")
    assert changed.kind == "registry.trust"
    with Registry.open(served.registry) as local:
        assert {k.name for k in local.trust.keys} == {"ci", "eval", "registry"}
        assert local.verify_audit(deep=True, full=True).ok
    with pytest.raises(PermissionDeniedError, match="may not change the registry's trust"):
        served.client("promoter").set_trust(keys.trust, reason="me too")


def _put(url: str, token: str, path: str, document: object) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(document).encode(),
                                     method="PUT", headers={
                                         "Content-Type": "application/json",
                                         "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("name", ["../escape.rego", "/etc/x.rego", "a/../../b.rego",
                                  ".hidden.rego", "x.py", "a\\b.rego", "a/./b.rego",
                                  "line\nbreak.rego", ""])
def test_hostile_policy_file_names_are_refused(served, name):
    before = len(served.client("admin").audit_log())
    status, answer = _put(served.url, served.tokens["admin"], "/api/v1/registry/policies",
                          {"files": {name: "package x\n", "ok.rego": "package ok\n"},
                           "reason": "r"})
    assert status == 400, answer
    assert len(served.client("admin").audit_log()) == before


def test_a_malformed_trust_is_refused(served):
    for document in ({"schema": "nope"}, {"schema": "https://mlprov.dev/schemas/registry-trust/v1",
                                          "keys": [{"name": "x", "roles": ["builder"],
                                                    "publicKey": "not a key"}]}):
        status, answer = _put(served.url, served.tokens["admin"], "/api/v1/registry/trust",
                              {"trust": document, "reason": "r"})
        assert status == 400, answer


def test_the_server_warns_about_a_key_others_can_read(tmp_path):
    from mlprov.server._run import key_file_warning

    key = tmp_path / "registry.key"
    key.write_text("not really a key")
    key.chmod(0o600)
    assert key_file_warning(key) is None
    key.chmod(0o640)
    assert "readable by others than its owner (mode 640)" in (key_file_warning(key) or "")
    assert key_file_warning(None) is None and key_file_warning(tmp_path / "gone") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.lists(st.sampled_from(["..", ".", "", "a", ".x", "b.rego",
                                                       "/", "\\", "\n", "é"]),
                                       max_size=5).map("/".join))
def test_a_policy_file_name_is_clean_or_refused(name):
    from mlprov.server._admin_routes import POLICY_SUFFIXES, check_policy_name

    try:
        checked = check_policy_name(name)
    except InputError:
        return
    parts = checked.split("/")
    assert checked == name and not checked.startswith("/") and checked.endswith(POLICY_SUFFIXES)
    assert all(p and p not in (".", "..") and not p.startswith(".") for p in parts)
    assert checked.isprintable() and "\\" not in checked
