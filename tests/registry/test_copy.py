"""Copying a version between registries (issue 13 item 5): the target re-verifies
everything against its own trust, applies its own gates, and records (never trusts)
where the version came from. Both backends, as source and as target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlprov.errors import InputError
from mlprov.registry import PolicyDeniedError, RegistrationRefusedError, Registry
from tests.cli.conftest import assert_error
from tests.registry.stored import cli_for


def _trust(keys, tmp_path: Path, lines: str) -> Path:
    path = tmp_path / f"trust-{abs(hash(lines))}.yaml"
    path.write_text("version: 1\nkeys:\n" + lines.replace("KEYS", str(keys.root)))
    return path


@pytest.fixture
def target(tmp_path, keys) -> Registry:
    """An embedded registry with the same signers' trust (another environment)."""
    reg = Registry.init(tmp_path / "prod", trust=keys.trust)
    yield reg
    reg.close()


@pytest.fixture
def staged(registry, make_model, approve):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.add_review("credit-risk", 1, approve(m))
    registry.promote("credit-risk", 1, to="Staging", reason="eval passed")
    return registry


def _copied_from(reg: Registry) -> dict:
    [entry] = [e for e in reg.audit_log() if e["kind"] == "model.register"]
    return entry["details"]["copiedFrom"]


def test_copy_registers_in_the_target_with_reviews_and_origin(staged, target):
    source = staged
    result = source.copy("models:/credit-risk/Staging", target)
    r = result.registered
    assert (r.uri, r.created) == ("models:/credit-risk/1", True)
    assert result.source_version == "models:/credit-risk/1"
    assert len(result.reviews_attached) == 1 and result.reviews_skipped == ()
    origin = _copied_from(target)
    stage_decision = source.get_version("credit-risk", 1).stage_decision
    assert origin == {"registry": source.registry_id, "location": origin["location"],
                      "uri": "models:/credit-risk/Staging", "version": "models:/credit-risk/1",
                      "stage": "Staging", "decision": stage_decision, "via": "stage"}
    assert "password" not in origin["location"]
    # The target's own state: a new version in None, verified with its trust.
    details = target.show_version("credit-risk", 1)
    assert details.stage.value == "None" and details.reviews[0].reviewer == "alice"
    assert details.root_digest == source.show_version("credit-risk", 1).root_digest
    # Its own gates: Staging, then Production with the copied approval.
    target.promote("credit-risk", 1, to="Staging", reason="copied")
    target.promote("credit-risk", 1, to="Production", reason="approved in staging")
    assert target.verify_audit(deep=True).ok

    again = source.copy("models:/credit-risk/1", target)
    assert (again.registered.created, again.reviews_present) == (False,
                                                                 result.reviews_attached)


def test_copy_under_another_name_keeps_verifying(staged, target):
    result = staged.copy("models:/credit-risk/1", target, name="credit-risk-eu")
    assert result.registered.uri == "models:/credit-risk-eu/1"
    details = target.show_version("credit-risk-eu", 1)
    assert (details.name, details.evidence_name) == ("credit-risk-eu", "credit-risk")
    assert details.reviews[0].counted
    target._verified = type(target._verified)()  # verified again from scratch
    assert target.verify_version("credit-risk-eu", 1, deep=True).verdict.verified
    assert target.pull("models:/credit-risk-eu/1", target.home / "out").files == 2
    [entry] = [e for e in target.audit_log() if e["kind"] == "model.register"]
    assert entry["details"]["evidenceName"] == "credit-risk"


def test_the_target_applies_its_own_trust(staged, tmp_path, keys):
    # A target that trusts another builder refuses the version, and audits the refusal.
    strict = Registry.init(tmp_path / "strict", trust=_trust(keys, tmp_path, (
        "  - {name: mallory, public_key: KEYS/mallory.key.pub, roles: [builder]}\n"
        "  - {name: eval, public_key: KEYS/eval.key.pub, roles: [evaluator]}\n")))
    with pytest.raises(RegistrationRefusedError, match="does not verify"):
        staged.copy("models:/credit-risk/1", strict)
    [refusal] = [e for e in strict.audit_log() if e["kind"] == "model.register"]
    assert not refusal["accepted"] and refusal["details"]["copiedFrom"]["registry"] == \
        staged.registry_id
    # A target whose trust names no reviewer takes the version but not the review.
    no_reviewers = Registry.init(tmp_path / "plain", trust=_trust(keys, tmp_path, (
        "  - {name: ci, public_key: KEYS/ci.key.pub, roles: [builder]}\n"
        "  - {name: eval, public_key: KEYS/eval.key.pub, roles: [evaluator]}\n")))
    result = staged.copy("models:/credit-risk/1", no_reviewers)
    assert result.registered.created and result.reviews_attached == ()
    [skipped] = result.reviews_skipped
    assert "does not count" in skipped.problem
    no_reviewers.promote("credit-risk", 1, to="Staging", reason="r")
    with pytest.raises(PolicyDeniedError, match="needs 1 approval"):
        no_reviewers.promote("credit-risk", 1, to="Production", reason="r")


def test_copy_into_a_team_registry(registry, tmp_path, keys, make_model, approve):
    """The fixture's registry (embedded or team) as the target of an embedded source."""
    source = Registry.init(tmp_path / "dev", trust=keys.trust)
    m = make_model()
    source.register(m.model, evidence=m.evidence)
    source.add_review("credit-risk", 1, approve(m))
    result = source.copy("models:/credit-risk/latest", registry)
    assert result.registered.created and len(result.reviews_attached) == 1
    assert _copied_from(registry)["via"] == "latest"
    assert registry.verify_audit(deep=True).ok


def test_copy_bad_inputs(staged, target):
    with pytest.raises(InputError, match="is the source registry itself"):
        staged.copy("models:/credit-risk/1", staged)
    with pytest.raises(InputError, match="invalid model name"):
        staged.copy("models:/credit-risk/1", target, name="no spaces")
    with pytest.raises(InputError, match="no model named"):
        staged.copy("models:/nope/1", target)
    assert [e["kind"] for e in target.audit_log()] == ["registry.init"]


def test_copy_cli(staged, target, run_cli, tmp_path, monkeypatch):
    # Reading the source needs no key; $MLPROV_REGISTRY_KEY would name the target's.
    monkeypatch.delenv("MLPROV_REGISTRY_KEY", raising=False)
    cli = cli_for(run_cli, staged)
    r = cli("copy", "models:/credit-risk/1", "--to", str(target.home), "--json",
            "--reason", "release 7")
    assert r.exit_code == 0, r.stderr
    copied = json.loads(r.stdout)
    assert copied["schema"] == "https://mlprov.dev/schemas/registry-copy/v1"
    assert (copied["target"]["uri"], copied["target"]["created"]) == ("models:/credit-risk/1",
                                                                       True)
    assert copied["source"]["registry"] == staged.registry_id
    assert len(copied["reviews"]["attached"]) == 1
    assert "1 review(s) attached" in r.stderr
    [entry] = [e for e in target.audit_log() if e["kind"] == "model.register"]
    assert entry["reason"] == "release 7"

    r = cli("copy", "models:/credit-risk/1", "--to", str(target.home), "--name", "eu",
            "--to-key", str(target.home / "keys" / "registry.key"))
    assert r.exit_code == 0 and r.stdout.strip() == "models:/eu/1"
    assert_error(cli("copy", "models:/credit-risk/1", "--to", staged.address), 3,
                 "is the source registry itself")
    assert_error(cli("copy", "models:/nope/1", "--to", str(target.home)), 3, "no model named")
    assert_error(cli("copy", "credit-risk/1", "--to", str(target.home)), 2, "not a models:/ URI")
    assert_error(cli("copy", "models:/credit-risk/1"), 2, "--to")
    assert_error(cli("copy", "models:/credit-risk/1", "--to", str(tmp_path / "none")), 3,
                 "no registry")
    assert_error(cli("copy", "models:/credit-risk/1", "--to", str(target.home), "--name",
                     "a b"), 3, "invalid model name")
