"""Keyless evidence wherever key evidence is accepted: inspect, lineage, policy input,
reviews and the registry, all through ``bundles.verify_statement_file``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import mlprov
from mlprov.signing import make_signer
from tests.conftest import COMMIT
from tests.sigstore.conftest import SUBJECT
from tests.sigstore.fake_instance import GITHUB_ISSUER
from tests.sigstore.stub_server import OidcIssuer, StubServer

SIGSTORE_OAUTH = "https://oauth2.sigstore.dev/auth"  # email identities


@dataclass(frozen=True)
class Evidence:
    model: Path
    evidence: Path
    trust: Path


@pytest.fixture
def keyless_evidence(model_dir: Path, tmp_path: Path, stub: StubServer, issuer: OidcIssuer,
                     trust_config: Path, root_file: Path, make_key) -> Evidence:
    """A model attested keyless (OMS, provenance, SBOM, eval), and a mixed trust file."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.1.0\n")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"metrics": {"auc": 0.91, "accuracy": 0.84}}')
    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=trust_config)
    out = tmp_path / "evidence"
    mlprov.attest(model_dir, name="credit-risk", signer=signer, out=out, commit=COMMIT,
                  metrics=metrics, environment=requirements)
    assert stub.cert_requests == 1
    make_key("alice")
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"""\
version: 1
keys:
  - {{name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}}
sigstore:
  - {{name: ci-train, issuer: {GITHUB_ISSUER}, subject: '{SUBJECT}', roles: [builder, evaluator]}}
trusted_root: {root_file.name}
""")
    return Evidence(model_dir, out, trust)


def test_inspect_shows_the_keyless_identity(run_cli, keyless_evidence: Evidence):
    r = run_cli("inspect", str(keyless_evidence.evidence), "--trust",
                str(keyless_evidence.trust), "--model", str(keyless_evidence.model), "--json")
    assert r.exit_code == 0, r.stderr
    claims = {c["file"]: c for c in json.loads(r.stdout)["claims"]}
    signer = claims["provenance.sigstore.json"]["signer"]
    assert signer["name"] == "ci-train"
    assert signer["sigstore"]["subject"] == SUBJECT
    assert signer["sigstore"]["issuer"] == GITHUB_ISSUER
    assert signer["sigstore"]["github"]["repository"] == "o/r"
    r = run_cli("inspect", str(keyless_evidence.evidence), "--trust",
                str(keyless_evidence.trust))
    assert r.exit_code == 0, r.stderr
    assert f"Sigstore {SUBJECT} via {GITHUB_ISSUER}" in r.stdout + r.stderr


def test_lineage_verify_accepts_keyless_evidence(run_cli, keyless_evidence: Evidence):
    r = run_cli("lineage", "verify", str(keyless_evidence.evidence), "--trust",
                str(keyless_evidence.trust))
    assert r.exit_code == 0, r.stderr


def test_policy_input_carries_the_identity(keyless_evidence: Evidence):
    from mlprov.policy import build_input

    verdict = mlprov.verify(keyless_evidence.model, evidence=keyless_evidence.evidence,
                            trust=keyless_evidence.trust)
    assert verdict.verified, verdict.failures()
    document = build_input(verdict)
    signers = [s["signer"] for s in document["statements"]]
    assert signers and all(s["name"] == "ci-train" for s in signers)
    assert {s["sigstore"]["github"]["ref"] for s in signers} == {"refs/heads/main"}
    assert {s["kind"] for s in signers} == {"sigstore"}


def test_keyless_review_counts_for_a_keyless_reviewer_rule(keyless_evidence: Evidence, stub,
                                                           issuer: OidcIssuer, trust_config,
                                                           tmp_path: Path):
    from mlprov.reviews import make_review, verify_reviews
    from mlprov.trust import IdentityRule, Role, load_trust

    reviewer = make_signer(sigstore=True, trust_config=trust_config,
                           identity_token=issuer.token(iss=SIGSTORE_OAUTH, sub="bob",
                                                       email="bob@example.com"))
    data = make_review(keyless_evidence.evidence, signer=reviewer,  # type: ignore[arg-type]
                       reviewer="bob", decision="approve", comment="ok",
                       trust=keyless_evidence.trust)
    review = tmp_path / "bob.sigstore.json"
    review.write_bytes(data)
    base = load_trust(keyless_evidence.trust)
    trust = type(base)(keys=base.keys, source="t", trusted_root=base.trusted_root,
                       sigstore=(*base.sigstore, IdentityRule(
                           issuer=SIGSTORE_OAUTH, subject="bob@example.com",
                           roles=frozenset({Role.REVIEWER}), name="bob")))
    verdict = mlprov.verify(keyless_evidence.model, evidence=keyless_evidence.evidence,
                            trust=trust)
    [result] = verify_reviews([review], trust, verdict=verdict)
    assert result.counted, result
    assert result.signer is not None and result.signer.name == "bob"
    # Not a reviewer under the file's own rules: the builder identity's rule lacks the role.
    [uncounted] = verify_reviews([review], keyless_evidence.trust,
                                 verdict=verdict)
    assert not uncounted.counted


def test_registry_registers_keyless_evidence(run_cli, keyless_evidence: Evidence,
                                             tmp_path: Path):
    registry = tmp_path / "registry"
    r = run_cli("registry", "init", "--registry", str(registry), "--trust",
                str(keyless_evidence.trust))
    assert r.exit_code == 0, r.stderr
    # The trust file and its trusted root are snapshotted: moving them changes nothing.
    (keyless_evidence.trust.parent / "trusted_root.json").rename(tmp_path / "moved.json")
    r = run_cli("register", str(keyless_evidence.model), "--evidence",
                str(keyless_evidence.evidence), "--registry", str(registry), "--json")
    assert r.exit_code == 0, r.stderr
    assert "models:/credit-risk/1" in r.stdout


def test_registry_refuses_keyless_evidence_from_an_untrusted_identity(
        run_cli, model_dir, tmp_path, stub, issuer: OidcIssuer, trust_config, root_file,
        keyless_evidence: Evidence):
    other = tmp_path / "other-trust.yaml"
    other.write_text(keyless_evidence.trust.read_text().replace("/o/r/", "/o/elsewhere/"))
    registry = tmp_path / "registry"
    assert run_cli("registry", "init", "--registry", str(registry), "--trust",
                   str(other)).exit_code == 0
    r = run_cli("register", str(keyless_evidence.model), "--evidence",
                str(keyless_evidence.evidence), "--registry", str(registry))
    assert r.exit_code == 1
    assert "which no sigstore identity" in r.stderr


def test_review_approve_sigstore_cli(run_cli, keyless_evidence: Evidence, stub, issuer,
                                     trust_config: Path, tmp_path: Path):
    from mlprov.reviews import verify_reviews

    trust = keyless_evidence.trust
    trust.write_text(trust.read_text().replace(
        "trusted_root:", f"  - {{name: bob, issuer: {SIGSTORE_OAUTH}, subject: bob@example.com, "
                         "roles: [reviewer]}\ntrusted_root:"))
    out = tmp_path / "bob.review.json"
    r = run_cli("review", "approve", str(keyless_evidence.evidence), "--sigstore",
                "--trust-config", str(trust_config), "--trust", str(trust), "--comment", "ok",
                "--out", str(out),
                env={"MLPROV_IDENTITY_TOKEN": issuer.token(iss=SIGSTORE_OAUTH, sub="bob",
                                                           email="bob@example.com")})
    assert r.exit_code == 0, r.stderr
    assert "as bob" in r.stderr and "not a reviewer" not in r.stderr
    verdict = mlprov.verify(keyless_evidence.model, evidence=keyless_evidence.evidence,
                            trust=trust)
    [result] = verify_reviews([out], trust, verdict=verdict)
    assert result.counted and result.signer is not None and result.signer.name == "bob"
    r = run_cli("review", "approve", str(keyless_evidence.evidence), "--sigstore",
                "--key", "x", "--trust", str(trust), "--comment", "ok", "--out", str(out))
    assert r.exit_code == 2


POLICY = """\
package mlprov.admission

# Admit only models whose every statement was signed keyless by the o/r repository's
# workflow on main: the verified certificate claims are in the policy input.
deny contains msg if {
	some s in input.statements
	not s.signer.sigstore.github.repository == "o/r"
	msg := "a statement was not signed by the o/r repository's workflow"
}

deny contains "not built on main" if {
	some s in input.statements
	s.signer.sigstore.github.ref != "refs/heads/main"
}
"""


def test_policy_check_decides_on_the_keyless_identity(run_cli, keyless_evidence: Evidence,
                                                      tmp_path: Path):
    policy = tmp_path / "admission.rego"
    policy.write_text(POLICY)
    args = ["policy", "check", "--policy", str(policy), "--evidence",
            str(keyless_evidence.evidence), "--model", str(keyless_evidence.model), "--trust",
            str(keyless_evidence.trust)]
    r = run_cli(*args)
    assert r.exit_code == 0, r.stdout + r.stderr
    policy.write_text(POLICY.replace('"o/r"', '"o/other"'))
    r = run_cli(*args)
    assert r.exit_code == 1
    assert "error: policy denied: a statement was not signed by the o/r repository's" in r.stderr
