"""`mlprov policy check|test` and `mlprov review approve|reject`: output and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlprov.policy import shipped_policies_dir
from tests.cli.conftest import assert_error
from tests.policy.conftest import attest_model, malicious_pickle

POLICIES = str(shipped_policies_dir())


@pytest.fixture
def approve(run_cli, good, lab, tmp_path: Path):
    """Sign an approval of the good model as ``who``; return the review file."""

    def sign(who: str = "alice", decision: str = "approve") -> Path:
        out = tmp_path / f"{who}.{decision}.json"
        r = run_cli("review", decision, str(good.evidence), "--key", str(lab.key(who)),
                    "--trust", str(lab.trust), "--comment", f"{who}: {decision}",
                    "--out", str(out))
        assert r.exit_code == 0, r.stderr
        return out

    return sign


def check(run_cli, attested, *extra: str):
    return run_cli("policy", "check", "--policy", POLICIES, "--evidence", str(attested.evidence),
                   "--trust", str(attested.trust), *extra)


def test_staging_is_allowed_from_the_evidence_alone(run_cli, good):
    r = check(run_cli, good, "--to", "Staging")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("allow credit-risk mlid:sha256:")
    assert any(line.startswith("policy sha256:") for line in lines)
    assert any(line.startswith("input  sha256:") for line in lines)
    assert r.stderr == ""


def test_production_needs_an_independent_approval(run_cli, good, approve):
    r = check(run_cli, good, "--model", str(good.model), "--to", "Production")
    line = assert_error(r, 1, "policy denied: needs 1 approval(s) by a reviewer who is not "
                              "the builder")
    assert line.startswith("error: policy denied:")
    assert "  deny: needs 1 approval(s)" in r.stdout
    r = check(run_cli, good, "--model", str(good.model), "--to", "Production",
              "--review", str(approve("alice")))
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert "review alice.approve.json: approve by alice (signer alice)" in r.stdout


def test_a_rejection_denies(run_cli, good, approve):
    r = check(run_cli, good, "--model", str(good.model), "--to", "Production",
              "--review", str(approve("alice")), "--review", str(approve("bob", "reject")))
    assert_error(r, 1, "rejected by reviewer bob: bob: reject")


def test_the_builders_own_review_is_reported_not_counted(run_cli, good, approve):
    r = check(run_cli, good, "--model", str(good.model), "--to", "Production",
              "--review", str(approve("ci")))
    assert_error(r, 1, "policy denied")
    assert "review ci.approve.json: not counted: ci.approve.json is signed by ci, which " \
           "lacks the reviewer role" in r.stdout


def test_json_output(run_cli, good, approve):
    r = check(run_cli, good, "--model", str(good.model), "--to", "Production", "--json",
              "--review", str(approve("alice")), "--actor", "bob", "--reason", "release 3")
    assert r.exit_code == 0, r.stderr
    document = json.loads(r.stdout)
    assert document["schema"] == "https://mlprov.dev/schemas/policy-check/v1"
    assert document["allowed"] is True and document["deny"] == []
    assert document["entrypoint"] == "data.mlprov.admission"
    assert document["policyDigest"].startswith("sha256:")
    assert document["inputDigest"].startswith("sha256:")
    assert document["model"]["filesVerified"] is True
    assert document["reviews"] == [{"file": str(Path(document["reviews"][0]["file"])),
                                    "counted": True, "reviewer": "alice",
                                    "decision": "approve", "signer": "alice"}]


def test_production_denies_a_malicious_pickle(run_cli, lab, tmp_path: Path):
    attested = attest_model(lab, tmp_path / "m", extra={"model.pkl": malicious_pickle()})
    review = tmp_path / "alice.json"
    r = run_cli("review", "approve", str(attested.evidence), "--key", str(lab.key("alice")),
                "--trust", str(lab.trust), "--comment", "ok", "--out", str(review))
    assert r.exit_code == 0, r.stderr
    r = check(run_cli, attested, "--model", str(attested.model), "--to", "Production",
              "--review", str(review))
    assert_error(r, 1, "policy denied: unsafe pickle: model.pkl imports os.system (dangerous)")


def test_a_single_policy_file_and_other_data(run_cli, good, tmp_path: Path):
    data = tmp_path / "strict.yaml"
    data.write_text((shipped_policies_dir() / "data.yaml").read_text().replace(
        "auc: {min: 0.70}", "auc: {min: 0.99}"))
    r = run_cli("policy", "check", "--policy", str(shipped_policies_dir() / "production.rego"),
                "--evidence", str(good.evidence), "--trust", str(good.trust), "--model",
                str(good.model), "--data", str(data))
    assert_error(r, 1, "policy denied")
    assert "  deny: eval metric auc = 0.87 is below the minimum 0.99" in r.stdout


def test_a_tampered_model_is_denied(run_cli, good, copy_of):
    attested = copy_of(good)
    (attested.model / "config.json").write_text("{}")
    r = check(run_cli, attested, "--model", str(attested.model), "--to", "Staging")
    assert_error(r, 1, "policy denied:")
    assert "files: model files differ from the signed manifest: changed: config.json" in r.stdout


@pytest.mark.parametrize(("policy", "needle"), [
    ("missing.rego", "policy not found"),
    ("syntax.rego", "syntax.rego:5:"),
    ("v0.rego", "Rego v0 rule body"),
])
def test_broken_policies_fail_closed_in_one_line(run_cli, good, tmp_path: Path, policy: str,
                                                 needle: str):
    sources = {"syntax.rego": "package s\n\nimport rego.v1\n\ndeny contains msg if {\n",
               "v0.rego": "package v0\n\ndeny[msg] {\n\tmsg := \"x\"\n}\n"}
    path = tmp_path / "policies" / policy
    path.parent.mkdir()
    if policy in sources:
        path.write_text(sources[policy])
    r = run_cli("policy", "check", "--policy", str(path) if policy in sources else
                str(tmp_path / "policies"), "--evidence", str(good.evidence), "--key",
                str(good.trust.parent / "keys" / "ci.key.pub"))
    assert_error(r, 1, needle if policy in sources else "no policy")


def test_an_evaluation_error_denies_in_one_line(run_cli, good, tmp_path: Path):
    policy = tmp_path / "e.rego"
    policy.write_text("package e\n\nimport rego.v1\n\ndeny contains \"d\" if 1 / 0\n")
    r = run_cli("policy", "check", "--policy", str(policy), "--evidence", str(good.evidence),
                "--trust", str(good.trust))
    assert_error(r, 1, "policy denied: policy error: divide by zero")


def test_usage_errors(run_cli, good, tmp_path: Path):
    r = run_cli("policy", "check", "--policy", POLICIES, "--evidence", str(good.evidence))
    assert_error(r, 2, "--trust")
    r = run_cli("policy", "check", "--policy", POLICIES, "--evidence", str(good.evidence),
                "--trust", str(good.trust), "--key", str(good.trust))
    assert_error(r, 2, "exactly one")
    r = run_cli("policy", "check", "--policy", str(tmp_path / "nope"), "--evidence",
                str(good.evidence), "--trust", str(good.trust))
    assert_error(r, 2, "--policy")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    r = run_cli("policy", "check", "--policy", POLICIES, "--evidence", str(good.evidence),
                "--trust", str(good.trust), "--data", str(bad))
    assert_error(r, 3, "policy data")


def test_policy_test_runs_the_shipped_tests(run_cli):
    r = run_cli("policy", "test", POLICIES)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[-1].endswith(" passed, 0 failed")
    assert "PASS production_test.rego: test_unsafe_pickle_is_denied" in r.stdout
    document = json.loads(run_cli("policy", "test", POLICIES, "--json").stdout)
    assert document["failed"] == 0 and document["passed"] >= 50


def test_policy_test_fails_when_a_test_fails(run_cli, tmp_path: Path):
    copy = tmp_path / "policies"
    shutil.copytree(shipped_policies_dir(), copy)
    (copy / "production.rego").write_text((copy / "production.rego").read_text().replace(
        'finding.severity != "error"', 'finding.severity == "nothing"'))
    r = run_cli("policy", "test", str(copy))
    assert_error(r, 1, "policy test(s) failed, first production_test.rego: "
                       "test_unsafe_pickle_is_denied")
    assert "FAIL production_test.rego: test_unsafe_pickle_is_denied" in r.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "p.rego").write_text("package p\n\nimport rego.v1\n\ndeny contains 1 if false\n")
    assert_error(run_cli("policy", "test", str(empty)), 1, "no Rego tests")


def test_review_cli(run_cli, lab, tmp_path: Path):
    good = attest_model(lab, tmp_path / "one-key", evaluator="ci")  # one key signs everything
    out = tmp_path / "r.json"
    args = ["review", "reject", str(good.evidence), "--key", str(lab.key("bob")),
            "--comment", "slice too weak", "--out", str(out)]
    assert_error(run_cli(*args), 2, "--trust TRUST_FILE or --verify-key")
    r = run_cli(*args, "--verify-key", str(lab.pub("ci")), "--reviewer", "Bob B.", "--json")
    assert r.exit_code == 0, r.stderr
    document = json.loads(r.stdout)
    assert (document["decision"], document["reviewer"]) == ("reject", "Bob B.")
    assert out.is_file()
    trust = lab.root / "one-key-trust.yaml"
    trust.write_text(lab.trust.read_text().replace("roles: [builder]",
                                                   "roles: [builder, evaluator]"))
    assert_error(run_cli(*args, "--trust", str(trust)), 3, "refusing to overwrite")
    r = run_cli(*args, "--trust", str(trust), "--force", "--model", str(good.model))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert "signed a rejection of credit-risk" in r.stderr


def test_review_refuses_unverified_evidence(run_cli, good, lab, copy_of, tmp_path: Path):
    attested = copy_of(good)
    (attested.evidence / "sbom.sigstore.json").write_text("{}")
    out = tmp_path / "r.json"
    r = run_cli("review", "approve", str(attested.evidence), "--key", str(lab.key("alice")),
                "--trust", str(lab.trust), "--comment", "ok", "--out", str(out))
    assert_error(r, 1, "refusing to review evidence that did not verify")
    assert not out.exists()


def test_review_by_a_non_reviewer_is_noted(run_cli, good, lab, tmp_path: Path):
    r = run_cli("review", "approve", str(good.evidence), "--key", str(lab.key("mallory")),
                "--trust", str(lab.trust), "--comment", "ok", "--out", str(tmp_path / "m.json"))
    assert r.exit_code == 0
    assert "mallory.key is not a reviewer in" in r.stderr


@pytest.mark.parametrize("command", [("policy", "check"), ("policy", "test"),
                                     ("review", "approve"), ("review", "reject")])
def test_help_has_examples(run_cli, command):
    r = run_cli(*command, "--help")
    assert r.exit_code == 0
    assert "Examples:" in r.stdout and "Exit codes" in r.stdout
