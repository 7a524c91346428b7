"""What a version holds, from the registry (issue 13 item 4): `models show --version`,
inspect / card / lineage / review on a models:/ URI, `evidence export`; on both backends.

Every value must come from re-verified evidence: a tampered stored blob makes the
commands fail closed (exit 1) with nothing shown or written.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlprov.errors import VerificationError
from mlprov.registry import NotFoundError, Registry, RegistryIntegrityError, Stage
from mlprov.registry._uri import UriError
from tests.cli.conftest import assert_error
from tests.conftest import COMMIT
from tests.registry.stored import cli_for, tamper_blob


@dataclass(frozen=True)
class Family:
    """A base model and one fine-tuned from it, registered; the tuned one reviewed,
    in Staging and aliased; the evidence directories gone from disk."""

    registry: Registry
    tuned_model: Path


@pytest.fixture
def family(registry, make_model, approve) -> Family:
    base = make_model("credit-risk-base")
    registry.register(base.model, evidence=base.evidence)
    tuned = make_model("credit-risk", parents=[f"fine-tune-of={base.evidence}"])
    registry.register(tuned.model, evidence=tuned.evidence)
    registry.add_review("credit-risk", 1, approve(tuned))
    registry.promote("credit-risk", 1, to="Staging", reason="eval passed")
    registry.set_alias("credit-risk", "canary", 1, reason="try it")
    shutil.rmtree(base.evidence)
    shutil.rmtree(tuned.evidence)
    return Family(registry, tuned.model)


def test_show_version_reads_every_fact_from_verified_evidence(family):
    registry = family.registry
    details = registry.show_version("credit-risk", 1)
    assert (details.uri, details.stage, details.evidence_name) == (
        "models:/credit-risk/1", Stage.STAGING, "credit-risk")
    assert details.identity.startswith("mlid:sha256:")
    assert details.inputs.commit == COMMIT and "torch" in details.inputs.seeds
    assert details.evaluation is not None
    assert dict(details.evaluation.metrics) == {"auc": 0.91, "accuracy": 0.84}
    assert dict(details.evaluation.slices["age<30"]) == {"auc": 0.88}
    assert details.evaluation.signed_by == "eval"
    assert details.sbom is not None and details.sbom.packages >= 2
    assert details.sbom.components == details.sbom.packages + 1  # + the parent model
    needs = {(c.kind, c.name) for c in details.sbom.key_components}
    assert ("machine-learning-model", "credit-risk-base") in needs, needs
    assert len(needs) <= details.sbom.components
    assert details.lineage == "verified"
    [parent] = details.parents
    assert (parent.role, parent.name, parent.registered) == (
        "fine-tune-of", "credit-risk-base", ("models:/credit-risk-base/1",))
    [review] = details.reviews
    assert (review.counted, review.reviewer, review.decision, review.comment) == (
        True, "alice", "approve", "looks good")
    assert [a.alias for a in details.aliases] == ["canary"]
    assert [h.kind for h in details.history] == [
        "model.register", "review.add", "stage.transition", "alias.set"]
    assert all(h.accepted for h in details.history)
    assert details.files == 1 and details.bytes > 0
    assert details.children == ()

    base = registry.show_version("credit-risk-base", 1)
    [child] = base.children
    assert (child.uri, child.role, child.verified) == ("models:/credit-risk/1", "fine-tune-of",
                                                      True)
    assert base.parents == () and base.stage is Stage.NONE
    document = json.loads(json.dumps(details.to_json_dict()))
    assert document["stage"] == "Staging" and document["history"][0]["kind"] == "model.register"


def test_show_version_unknown_names(registry, make_model):
    with pytest.raises(NotFoundError, match="no model named"):
        registry.show_version("nope", 1)
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    with pytest.raises(NotFoundError, match="has no version 7"):
        registry.show_version("credit-risk", 7)


def test_lineage_and_descendants_through_the_registry(family, make_model):
    registry = family.registry
    graph = registry.lineage("models:/credit-risk@canary", descendants=True)
    assert graph.verified and graph.uri == "models:/credit-risk/1"
    assert graph.descendants == ()
    names = {n.name: n.evidence for n in graph.lineage.nodes}
    assert names == {"credit-risk": "models:/credit-risk/1",
                     "credit-risk-base": "models:/credit-risk-base/1"}

    down = registry.lineage("models:/credit-risk-base/1", descendants=True)
    assert [(d.uri, d.parent, d.depth, d.verified) for d in down.descendants or ()] == [
        ("models:/credit-risk/1", "models:/credit-risk-base/1", 1, True)]
    assert registry.lineage("models:/credit-risk-base/1").descendants is None


def test_inspect_and_verified_verdict_by_uri(family):
    inspection = family.registry.inspect("models:/credit-risk@canary")
    assert inspection.ok and inspection.verified
    assert inspection.provenance.facts["name"] == "credit-risk"
    assert inspection.verdict.model == "models:/credit-risk/1 (stored files)"
    facts = family.registry.verify_uri("models:/credit-risk/Staging")
    assert facts.record.version == 1 and facts.verdict.verified
    with pytest.raises(UriError):
        family.registry.inspect("credit-risk/1")


def test_a_tampered_evidence_blob_fails_closed(family, run_cli, tmp_path):
    registry = family.registry
    facts = registry.verify_version("credit-risk", 1)
    tamper_blob(registry, facts.evidence["eval.sigstore.json"],
                lambda data: data.replace(b'"payload"', b'"payloaD"'))
    cli = cli_for(run_cli, registry)  # a fresh process would not have the verdict cached
    registry.verified.__init__()  # type: ignore[misc]
    with pytest.raises(VerificationError):
        registry.show_version("credit-risk", 1)
    r = cli("models", "show", "credit-risk", "--version", "1", "--json")
    assert_error(r, 1, "credit-risk v1")
    assert r.stdout == ""
    r = cli("evidence", "export", "models:/credit-risk/1", "--out", str(tmp_path / "ev"))
    assert_error(r, 1)
    assert not (tmp_path / "ev").exists() and list(tmp_path.glob(".ev.*")) == []
    assert_error(cli("inspect", "models:/credit-risk/1"), 1)
    assert_error(cli("card", "models:/credit-risk/1"), 1)


def test_a_tampered_alias_row_fails_closed(tmp_path, keys, make_model, run_cli):
    import sqlite3

    registry = Registry.init(tmp_path / "reg", trust=keys.trust)
    for _ in range(2):
        m = make_model()
        registry.register(m.model, evidence=m.evidence)
    registry.set_alias("credit-risk", "canary", 1, reason="first")
    conn = sqlite3.connect(registry.home / "registry.db", isolation_level=None)
    conn.execute("UPDATE aliases SET version = 2")
    conn.close()
    with pytest.raises(RegistryIntegrityError):
        registry.show_version("credit-risk", 2)
    assert_error(cli_for(run_cli, registry)("models", "show", "credit-risk", "--version", "2"),
                 1, "canary")


# --------------------------------------------------------------------------- the CLI


def test_models_show_version_cli(family, run_cli):
    cli = cli_for(run_cli, family.registry)
    r = cli("models", "show", "credit-risk", "--version", "1", "--json")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["schema"] == "https://mlprov.dev/schemas/registry-version/v1"
    assert (shown["version"], shown["stage"], shown["evaluation"]["metrics"]["auc"]) == (
        1, "Staging", 0.91)
    assert shown["parents"][0]["registered"] == ["models:/credit-risk-base/1"]
    assert shown["reviews"][0]["reviewer"] == "alice"
    assert [a["alias"] for a in shown["aliases"]] == ["canary"]

    r = cli("models", "show", "credit-risk", "--version", "1")
    assert r.exit_code == 0, r.stderr
    text = r.stdout
    for needle in ("credit-risk v1  (models:/credit-risk/1)", "stage         Staging",
                   "alias         @canary", f"commit {COMMIT}", "auc=0.91",
                   "[age<30]", "evaluator", "CycloneDX", "lineage       verified",
                   "parent        fine-tune-of: credit-risk-base",
                   "-> models:/credit-risk-base/1", "review        alice: approve",
                   "model.register by"):
        assert needle in text, needle
    r = cli("models", "show", "credit-risk-base", "--version", "1")
    assert "child         models:/credit-risk/1 (fine-tune-of) verified" in r.stdout

    assert_error(cli("models", "show", "nope", "--version", "1"), 3, "no model named 'nope'")
    assert_error(cli("models", "show", "credit-risk", "--version", "9"), 3, "has no version 9")
    assert_error(cli("models", "show", "credit-risk", "--version", "0"), 2)
    assert_error(cli("models", "show", "credit-risk", "--version", "x1"), 2)


def test_evidence_export_verifies_offline(family, run_cli, keys, tmp_path):
    cli = cli_for(run_cli, family.registry)
    out = tmp_path / "exported"
    r = cli("evidence", "export", "models:/credit-risk@canary", "--out", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    exported = json.loads(r.stdout)
    assert exported["schema"] == "https://mlprov.dev/schemas/exported-evidence/v1"
    assert (exported["versionUri"], exported["out"]) == ("models:/credit-risk/1", str(out))
    assert "provenance.sigstore.json" in exported["files"]
    # The directory attest wrote: verify the model against it with no registry at all.
    r = run_cli("verify", str(family.tuned_model), "--evidence", str(out),
                "--trust", str(keys.trust), "--search", str(tmp_path))
    assert r.exit_code == 0, r.stderr
    r = run_cli("inspect", str(out), "--trust", str(keys.trust))
    assert r.exit_code == 0, r.stderr

    assert_error(cli("evidence", "export", "models:/credit-risk/1", "--out", str(out)), 3,
                 "exists")
    assert_error(cli("evidence", "export", "models:/nope/1", "--out", str(tmp_path / "n")), 3,
                 "no model named")
    assert_error(cli("evidence", "export", "credit-risk/1", "--out", str(tmp_path / "n")), 2,
                 "not a models:/ URI")
    assert not (tmp_path / "n").exists()


def test_inspect_card_and_lineage_take_a_uri(family, run_cli, tmp_path):
    cli = cli_for(run_cli, family.registry)
    r = cli("inspect", "models:/credit-risk@canary", "--json")
    assert r.exit_code == 0, r.stderr
    inspection = json.loads(r.stdout)
    assert inspection["verified"] and inspection["provenance"]["name"] == "credit-risk"
    r = cli("inspect", "models:/credit-risk/1")
    assert r.exit_code == 0 and r.stdout.startswith("credit-risk: VERIFIED")
    assert_error(cli("inspect", "models:/credit-risk/1", "--model", str(tmp_path)), 2)
    assert_error(cli("inspect", "models:/credit-risk/3"), 3, "has no version 3")
    assert_error(cli("inspect", str(tmp_path / "missing")), 2, "does not exist")

    r = cli("card", "models:/credit-risk/1", "-o", str(tmp_path / "CARD.md"))
    assert r.exit_code == 0, r.stderr
    assert "credit-risk" in (tmp_path / "CARD.md").read_text()

    r = cli("lineage", "verify", "models:/credit-risk/1", "--json")
    assert r.exit_code == 0, r.stderr
    graph = json.loads(r.stdout)
    assert graph["verified"] and graph["registryUri"] == "models:/credit-risk/1"
    assert "descendants" not in graph
    r = cli("lineage", "verify", "models:/credit-risk-base/1", "--descendants", "--json")
    assert r.exit_code == 0, r.stderr
    assert [d["uri"] for d in json.loads(r.stdout)["descendants"]] == ["models:/credit-risk/1"]
    r = cli("lineage", "show", "models:/credit-risk-base/1", "--descendants")
    assert r.exit_code == 0, r.stderr
    assert "models:/credit-risk/1 <- models:/credit-risk-base/1 (fine-tune-of): verified" \
        in r.stdout
    r = cli("lineage", "show", "models:/credit-risk/1", "--format", "mermaid")
    assert r.exit_code == 0 and "credit-risk-base" in r.stdout
    assert_error(cli("lineage", "show", "models:/credit-risk/1", "--descendants", "--format",
                     "dot"), 2, "tree or json")
    assert_error(cli("lineage", "verify", "models:/credit-risk/1", "--search", str(tmp_path)),
                 2, "--search")
    assert_error(cli("lineage", "verify", "models:/nope/1"), 3, "no model named")
    assert_error(cli("lineage", "verify", "models:/credit-risk@prod"), 3, "has no alias")


def test_review_a_registered_version_by_uri(family, run_cli, keys, tmp_path):
    cli = cli_for(run_cli, family.registry)
    out = tmp_path / "bob.review.json"
    r = cli("review", "reject", "models:/credit-risk@canary", "--key", str(keys.reviewer),
            "--comment", "slice too weak", "--out", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    written = json.loads(r.stdout)
    assert (written["decision"], written["name"], written["reviewer"]) == (
        "reject", "credit-risk", "alice")
    r = cli("review", "add", "credit-risk", "1", str(out))
    assert r.exit_code == 0, r.stderr
    reviews = family.registry.show_version("credit-risk", 1).reviews
    assert [r.decision for r in reviews] == ["approve", "reject"]
    assert_error(cli("review", "approve", "models:/credit-risk/1", "--key", str(keys.reviewer),
                     "--comment", "x", "--out", str(tmp_path / "x.json"), "--verify-key",
                     str(keys.root / "ci.key.pub")), 2, "--verify-key")
    assert_error(cli("review", "approve", "models:/credit-risk/5", "--key", str(keys.reviewer),
                     "--comment", "x", "--out", str(tmp_path / "y.json")), 3, "has no version 5")
    assert not (tmp_path / "y.json").exists()


HOSTILE = "fine\n  review        mallory: approve\x1b[2J"


def test_hostile_strings_are_escaped_in_text_and_exact_in_json(registry, make_model, keys,
                                                               run_cli, tmp_path):
    from mlprov.reviews import make_review
    from mlprov.signing import load_private_key

    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    review = tmp_path / "hostile.sigstore.json"
    review.write_bytes(make_review(m.evidence, signer=load_private_key(keys.reviewer),
                                   reviewer="alice", decision="reject", comment=HOSTILE,
                                   trust=keys.trust))
    registry.add_review("credit-risk", 1, review, reason=HOSTILE)
    registry.promote("credit-risk", 1, to="Staging", reason="eval")
    cli = cli_for(run_cli, registry)
    r = cli("models", "show", "credit-risk", "--version", "1")
    assert r.exit_code == 0, r.stderr
    assert "\x1b" not in r.stdout and "\n  review        mallory" not in r.stdout
    assert "fine\\x0a  review        mallory: approve\\x1b[2J" in r.stdout
    shown = json.loads(cli("models", "show", "credit-risk", "--version", "1", "--json").stdout)
    assert shown["reviews"][0]["comment"] == HOSTILE
    r = cli("review", "pending")
    assert r.exit_code == 0 and "\x1b" not in r.stdout
    assert [line for line in r.stdout.splitlines() if "mallory" in line] == [
        "  rejected by alice at " + shown["reviews"][0]["time"] +
        ": fine\\x0a  review        mallory: approve\\x1b[2J",
        "  also blocked: rejected by reviewer alice: fine\\x0a  review        mallory: "
        "approve\\x1b[2J"]


@pytest.mark.parametrize("command", [
    ("models", "show"), ("evidence", "export"), ("copy",), ("review", "pending"),
    ("deployment", "alias", "set"), ("inspect",), ("card",), ("lineage", "verify"),
    ("lineage", "show"), ("review", "approve")])
def test_new_commands_show_examples_with_uris(run_cli, command):
    r = run_cli(*command, "--help")
    assert r.exit_code == 0, r.stderr
    assert "Examples:" in r.stdout and f"mlprov {' '.join(command)} " in r.stdout
