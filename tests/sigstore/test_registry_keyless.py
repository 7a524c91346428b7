"""A registry that signs its decisions keyless (``registry init --sigstore``), offline.

The local Fulcio/Rekor stub issues the registry's certificates; the registry's
trust names its Sigstore identity with the ``registry`` role. Everything that
verifies registry-signed statements (audit verify, pull) accepts them, and a
decision signed by an identity without that role is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlprov
from mlprov.errors import SignatureError
from mlprov.registry import Registry
from mlprov.registry._decisions import VSA_PREDICATE, build_decision, sign, verify_signed
from mlprov.signing import make_signer
from tests.conftest import COMMIT
from tests.sigstore.conftest import SUBJECT
from tests.sigstore.fake_instance import GITHUB_ISSUER
from tests.sigstore.stub_server import OidcIssuer, StubServer, github_subject

REGISTRY_SUBJECT = github_subject(workflow_file="registry.yml")


@pytest.fixture
def setup(model_dir: Path, tmp_path: Path, stub: StubServer, issuer: OidcIssuer,
          trust_config: Path, root_file: Path) -> tuple[Path, Path]:
    """Keyless evidence for a model, and a trust file naming the registry's identity."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.1.0\n")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"metrics": {"auc": 0.91, "accuracy": 0.84}}')
    signer = make_signer(sigstore=True, identity_token=issuer.github_token(),
                         trust_config=trust_config)
    mlprov.attest(model_dir, name="credit-risk", signer=signer, out=tmp_path / "evidence",
                  commit=COMMIT, metrics=metrics, environment=requirements)
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"""\
version: 1
sigstore:
  - {{name: ci-train, issuer: {GITHUB_ISSUER}, subject: '{SUBJECT}', roles: [builder, evaluator]}}
  - {{name: registry-ci, issuer: {GITHUB_ISSUER}, subject: '{REGISTRY_SUBJECT}', roles: [registry]}}
trusted_root: {root_file.name}
""")
    return tmp_path / "evidence", trust


def test_keyless_registry_signs_and_verifies_its_decisions(
        run_cli, setup: tuple[Path, Path], model_dir: Path, tmp_path: Path, stub: StubServer,
        issuer: OidcIssuer, trust_config: Path):
    evidence, trust = setup
    registry = tmp_path / "registry"
    env = {"MLPROV_IDENTITY_TOKEN": issuer.github_token(workflow_file="registry.yml")}

    def cli(*args: str):
        return run_cli(*args, "--registry", str(registry), env=env)

    r = cli("registry", "init", "--trust", str(trust), "--sigstore", "--trust-config",
            str(trust_config), "--json")
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["signing"] == "sigstore" and info["publicKey"] is None
    assert not (registry / "keys" / "registry.key").exists()
    r = cli("register", str(model_dir), "--evidence", str(evidence), "--json")
    assert r.exit_code == 0, r.stderr
    r = cli("promote", "credit-risk", "1", "--to", "Staging", "--reason", "eval passed",
            "--json")
    assert r.exit_code == 0, r.stderr
    decision_digest = json.loads(r.stdout)["decision"]

    r = cli("audit", "verify", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    r = cli("pull", "models:/credit-risk/1", "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "out" / "config.json").is_file()

    with Registry.open(registry) as reg, reg.metadata.read() as tx:
        data = tx.get_decision(decision_digest)
        assert data is not None
        assert "certificate" in json.loads(data)["verificationMaterial"]
        signed = verify_signed(data, reg.trust, what="decision", predicate_type=VSA_PREDICATE)
    assert signed.signer.name == "registry-ci"
    assert signed.signer.identity is not None
    assert signed.signer.identity.subject == REGISTRY_SUBJECT

    # A decision signed keyless by an identity whose rule lacks the registry role: refused.
    forged = sign(build_decision(
        subject_name="models:/credit-risk/1", root_digest="sha256:" + "a" * 64,
        resource_uri="models:/credit-risk/1", policy_uri="none",
        policy_digest="sha256:" + "b" * 64, inputs={}, passed=True,
        time="2026-01-01T00:00:00Z", change={"kind": "alias.set"}),
        make_signer(sigstore=True, identity_token=issuer.github_token(),
                    trust_config=trust_config))
    with Registry.open(registry) as reg, pytest.raises(SignatureError,
                                                       match="lacks the registry role"):
        verify_signed(forged, reg.trust, what="decision", predicate_type=VSA_PREDICATE)


def test_keyless_init_refuses_an_identity_without_the_registry_role(
        run_cli, setup: tuple[Path, Path], tmp_path: Path, stub: StubServer,
        issuer: OidcIssuer, trust_config: Path):
    _, trust = setup
    registry = tmp_path / "registry"
    # The CI training identity is trusted, but only as builder and evaluator.
    r = run_cli("registry", "init", "--registry", str(registry), "--trust", str(trust),
                "--sigstore", "--trust-config", str(trust_config),
                env={"MLPROV_IDENTITY_TOKEN": issuer.github_token()})
    assert r.exit_code == 3
    [line] = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert f"Sigstore identity {SUBJECT}" in line and "no registry role" in line
    assert not (registry / "registry.db").exists()
    assert stub.cert_requests == 1  # only the evidence's: the registry signed nothing

    r = run_cli("registry", "init", "--registry", str(registry), "--trust", str(trust),
                "--sigstore", "--key", str(trust))
    assert r.exit_code == 2
