"""``mlprov attest --sigstore`` and ``mlprov verify`` of keyless evidence, through the CLI."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlprov.evidence import OMS_FILE, PROVENANCE_FILE
from mlprov.hashing import hash_path
from mlprov.oms import manifest_statement
from tests.cli.conftest import assert_error, snapshot
from tests.conftest import COMMIT
from tests.sigstore.conftest import SUBJECT
from tests.sigstore.fake_instance import GITHUB_ISSUER, FakeSigstore, now
from tests.sigstore.stub_server import OidcIssuer, StubServer


def write_trust(directory: Path, *, subject: str = SUBJECT, issuer: str = GITHUB_ISSUER,
                root: str | None = "trusted_root.json", extra: str = "") -> Path:
    path = directory / "trust.yaml"
    path.write_text(f"""\
version: 1
sigstore:
  - name: ci-train
    issuer: {issuer}
    subject: {subject}
    roles: [builder]
{extra}{f"trusted_root: {root}" if root else ""}
""")
    return path


@dataclass(frozen=True)
class Keyless:
    model: Path
    evidence: Path
    trust: Path
    config: Path


@pytest.fixture
def keyless_attested(run_cli, model_dir: Path, tmp_path: Path, stub: StubServer,
                     issuer: OidcIssuer, trust_config: Path, root_file: Path) -> Keyless:
    out = tmp_path / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--sigstore", "--identity-token",
                issuer.github_token(), "--trust-config", str(trust_config), "--out", str(out),
                "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    return Keyless(model_dir, out, write_trust(tmp_path), trust_config)


def test_attest_sigstore_then_verify_offline(run_cli, keyless_attested: Keyless,
                                             stub: StubServer):
    bundles = sorted(p.name for p in keyless_attested.evidence.glob("*.sig*"))
    assert {OMS_FILE, PROVENANCE_FILE} <= set(bundles)
    # Every statement of the run signed in one session: one certificate, one log entry each.
    assert stub.cert_requests == 1
    assert stub.log_requests == len(bundles)
    for name in bundles:
        material = json.loads((keyless_attested.evidence / name).read_text())[
            "verificationMaterial"]
        assert "certificate" in material and len(material["tlogEntries"]) == 1
    r = run_cli("verify", str(keyless_attested.model), "--evidence",
                str(keyless_attested.evidence), "--trust", str(keyless_attested.trust),
                "--offline")
    assert r.exit_code == 0, r.stderr
    assert (f"signature:{OMS_FILE}: signed by ci-train (Sigstore {SUBJECT}, {GITHUB_ISSUER}) "
            "(builder)") in r.stderr


def test_ambient_credentials_in_a_github_job(run_cli, model_dir, tmp_path, stub: StubServer,
                                             trust_config: Path, root_file: Path):
    env = stub.github_environment()
    out = tmp_path / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--sigstore", "--trust-config",
                str(trust_config), "--out", str(out), "--commit", COMMIT, env=env)
    assert r.exit_code == 0, r.stderr
    assert stub.token_requests == 1
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--trust",
                str(write_trust(tmp_path)), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["signers"][OMS_FILE] == "ci-train"


def test_identity_token_from_the_environment(run_cli, model_dir, tmp_path, stub, issuer,
                                             trust_config):
    r = run_cli("attest", str(model_dir), "--name", "m", "--sigstore", "--trust-config",
                str(trust_config), "--out", str(tmp_path / "e"), "--commit", COMMIT,
                env={"MLPROV_IDENTITY_TOKEN": issuer.github_token()})
    assert r.exit_code == 0, r.stderr


def test_mixed_key_and_keyless_signers(run_cli, make_key, model_dir, tmp_path, stub, issuer,
                                       trust_config, root_file):
    """A keyless builder and a key-holding evaluator in one evidence directory and trust file."""
    evaluator = make_key("evaluator")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"metrics": {"auc": 0.91}}')
    out = tmp_path / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--sigstore", "--identity-token",
                issuer.github_token(), "--trust-config", str(trust_config), "--out", str(out),
                "--commit", COMMIT, "--metrics", str(metrics), "--eval-key",
                str(evaluator.private))
    assert r.exit_code == 0, r.stderr
    trust = write_trust(tmp_path, extra="keys:\n  - {name: evaluator, public_key: "
                                        "keys/evaluator.key.pub, roles: [evaluator]}\n")
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--trust", str(trust),
                "--offline", "--json")
    assert r.exit_code == 0, r.stderr
    signers = json.loads(r.stdout)["signers"]
    assert signers[OMS_FILE] == "ci-train"
    assert "evaluator" in signers.values()


def test_nothing_written_when_signing_fails(run_cli, model_dir, tmp_path, stub: StubServer,
                                            issuer, trust_config):
    stub.fail_fulcio = "no certificates today"
    out = tmp_path / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--sigstore", "--identity-token",
                issuer.github_token(), "--trust-config", str(trust_config), "--out", str(out),
                "--commit", COMMIT)
    assert_error(r, 3, "Fulcio of", "HTTP 500: no certificates today")
    assert snapshot(out) == {}


def test_no_identity_token_is_one_line_exit_3(run_cli, model_dir, tmp_path, trust_config):
    r = run_cli("attest", str(model_dir), "--name", "m", "--sigstore", "--trust-config",
                str(trust_config), "--out", str(tmp_path / "e"), "--commit", COMMIT)
    assert_error(r, 3, "no identity token", "id-token: write", "--identity-token")


@pytest.mark.parametrize(("flags", "needle"), [
    (["--key", "K", "--sigstore"], "not both"),
    (["--key", "K", "--staging"], "need --sigstore"),
    (["--key", "K", "--identity-token", "t"], "need --sigstore"),
    (["--sigstore", "--staging", "--trust-config", "C"], "--staging or --trust-config"),
])
def test_signer_flag_usage_errors(run_cli, make_key, model_dir, tmp_path, flags, needle):
    key = make_key()
    config = tmp_path / "c.json"
    config.write_text("{}")
    values = {"K": str(key.private), "C": str(config)}
    r = run_cli("attest", str(model_dir), "--name", "m", "--out", str(tmp_path / "e"),
                "--commit", COMMIT, *[values.get(f, f) for f in flags])
    assert_error(r, 2, needle)


def test_identity_token_in_the_environment_is_ignored_with_a_key(run_cli, make_key, model_dir,
                                                                 tmp_path):
    key = make_key()
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private), "--out",
                str(tmp_path / "e"), "--commit", COMMIT, env={"MLPROV_IDENTITY_TOKEN": "x"})
    assert r.exit_code == 0, r.stderr


# -- verify: every failure is exit 1 and one line ----------------------------------------------

@pytest.fixture
def oms_signed(model_dir: Path, instance: FakeSigstore, tmp_path: Path):
    """Sign the model's OMS statement keyless, as the given identity, into one file."""
    payload = manifest_statement(hash_path(model_dir)).canonical_bytes()

    def sign(*, signer: FakeSigstore | None = None, subject: str = SUBJECT,
             issuer: str = GITHUB_ISSUER, tamper: bool = False, expired: bool = False) -> Path:
        times = {}
        if expired:
            start = now() - dt.timedelta(hours=1)
            times = {"not_before": start, "not_after": start + dt.timedelta(minutes=10)}
        document = (signer or instance).sign_bundle(payload, subject=subject, issuer=issuer,
                                                    **times)
        if tamper:
            statement = json.loads(payload)
            statement["predicate"]["resources"][0]["digest"] = "0" * 64
            document["dsseEnvelope"]["payload"] = base64.b64encode(
                json.dumps(statement).encode()).decode()
        path = tmp_path / OMS_FILE
        path.write_text(json.dumps(document))
        return path

    return sign


def test_verify_keyless_signature_file(run_cli, model_dir, oms_signed, root_file, tmp_path):
    r = run_cli("verify", str(model_dir), "--evidence", str(oms_signed()), "--trust",
                str(write_trust(tmp_path)), "--offline")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"verified {model_dir.name} sha256:")


@pytest.mark.parametrize(("case", "needle"), [
    ("subject", "carries a certificate for https://github.com/evil/r/.github/workflows/train.yml@refs/heads"
                "/main (issuer https://token.actions.githubusercontent.com), which no sigstore "
                "identity"),
    ("issuer", "(issuer https://token.evil.example), which no sigstore identity"),
    ("tamper", "its signature does not match the signed payload"),
    ("root", "its certificate does not chain to a Fulcio CA of trusted root"),
    ("expired", "its certificate was not valid (expired) when the signature was logged"),
])
def test_verify_keyless_failures(run_cli, model_dir, oms_signed, root_file, other_instance,
                                 tmp_path, case: str, needle: str):
    kwargs: dict[str, object] = {
        "subject": {"subject": SUBJECT.replace("/o/r/", "/evil/r/")},
        "issuer": {"issuer": "https://token.evil.example"},
        "tamper": {"tamper": True},
        "root": {"signer": other_instance},
        "expired": {"expired": True},
    }[case]
    r = run_cli("verify", str(model_dir), "--evidence", str(oms_signed(**kwargs)), "--trust",
                str(write_trust(tmp_path)), "--offline")
    line = assert_error(r, 1, "error: verification failed: model.sig", needle)
    assert "(hint: do not use this model" in line


def test_verify_keyless_with_a_key_says_what_signed_it(run_cli, make_key, model_dir,
                                                       oms_signed):
    key = make_key()
    r = run_cli("verify", str(model_dir), "--evidence", str(oms_signed()), "--key",
                str(key.public))
    assert_error(r, 1, f"keyless-signed with a certificate for {SUBJECT}",
                 "trusts no Sigstore identity")


def test_verify_with_an_unusable_trusted_root_is_exit_3(run_cli, model_dir, oms_signed,
                                                        tmp_path):
    (tmp_path / "trusted_root.json").write_text('{"mediaType": "nope"}')
    r = run_cli("verify", str(model_dir), "--evidence", str(oms_signed()), "--trust",
                str(write_trust(tmp_path)), "--offline")
    assert_error(r, 3, "is not a Sigstore trusted root")


def test_verify_public_good_default_offline(run_cli, model_dir, oms_signed, tmp_path):
    # No trusted_root: the public-good root shipped with sigstore-python, no network.
    r = run_cli("verify", str(model_dir), "--evidence", str(oms_signed()), "--trust",
                str(write_trust(tmp_path, root=None)), "--offline")
    assert_error(r, 1, "does not chain to a Fulcio CA of the Sigstore public-good trusted root")


# -- interop: the OMS peer accepts the keyless model.sig, and the other way round ------------

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


def model_signing(*args: str | Path) -> subprocess.CompletedProcess[str]:
    from tests.test_interop_model_signing import model_signing as run

    return run(*args)


@pytest.mark.interop
@pytest.mark.skipif(not MODEL_SIGNING.exists(), reason="model_signing CLI not installed")
def test_model_signing_verify_sigstore_accepts_keyless_model_sig(keyless_attested: Keyless):
    result = model_signing("verify", "sigstore", keyless_attested.model, "--signature",
                           keyless_attested.evidence / OMS_FILE, "--identity", SUBJECT,
                           "--identity_provider", GITHUB_ISSUER, "--trust_config",
                           keyless_attested.config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout
    wrong = model_signing("verify", "sigstore", keyless_attested.model, "--signature",
                          keyless_attested.evidence / OMS_FILE, "--identity",
                          SUBJECT + "x", "--identity_provider", GITHUB_ISSUER,
                          "--trust_config", keyless_attested.config)
    assert wrong.returncode != 0


@pytest.mark.interop
@pytest.mark.skipif(not MODEL_SIGNING.exists(), reason="model_signing CLI not installed")
def test_mlprov_verifies_model_signing_sign_sigstore(run_cli, model_dir, tmp_path, stub,
                                                     issuer, trust_config):
    signature = tmp_path / "oms.sig"
    result = model_signing("sign", "sigstore", model_dir, "--signature", signature,
                           "--identity_token", issuer.github_token(), "--trust_config",
                           trust_config)
    assert result.returncode == 0, result.stdout + result.stderr
    r = run_cli("verify", str(model_dir), "--evidence", str(signature), "--trust",
                str(write_trust(tmp_path, root=trust_config.name)), "--offline")
    assert r.exit_code == 0, r.stderr
