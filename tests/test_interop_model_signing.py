"""Interop with the OpenSSF model-signing CLI (model-signing 1.1.1), run as a subprocess.

Each direction is checked: ``model_signing verify`` accepts mlprov's model.sig,
and ``mlprov verify`` accepts what ``model_signing sign`` wrote; both refuse a
changed file; both name the model by the same root digest.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlprov.attestation import attest
from mlprov.evidence import OMS_FILE
from mlprov.signing import KeyType
from tests.conftest import COMMIT

pytestmark = pytest.mark.interop

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")

if not MODEL_SIGNING.exists():  # pragma: no cover - the test extra installs it
    pytest.skip(f"model_signing CLI not found next to {sys.executable}",
                allow_module_level=True)


def model_signing(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([str(MODEL_SIGNING), *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env, check=False)


def oms_key_pair(tmp_path: Path, curve: ec.EllipticCurve) -> tuple[Path, Path]:
    """An EC key pair as `openssl ecparam -genkey` writes it (SEC1 PEM, unencrypted)."""
    private = ec.generate_private_key(curve)
    priv = tmp_path / f"oms-{curve.name}.pem"
    pub = tmp_path / f"oms-{curve.name}.pub"
    priv.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    pub.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def mlprov_root(run_cli, model: Path) -> str:
    result = run_cli("hash", str(model), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["rootDigest"]


def oms_subject(signature: Path) -> dict[str, object]:
    bundle = json.loads(signature.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    [subject] = statement["subject"]
    return subject


# (a) model_signing accepts mlprov's signature ------------------------------------------------

@pytest.mark.parametrize("key_type", [KeyType.ECDSA_P256, KeyType.ECDSA_P384])
def test_model_signing_verifies_mlprov_attest(make_key, model_dir: Path, tmp_path: Path,
                                              key_type: KeyType):
    key = make_key("ci", key_type)
    out = tmp_path / "evidence"
    attest(model_dir, name="m", out=out, key=key.private, commit=COMMIT)
    result = model_signing("verify", "key", model_dir, "--signature", out / OMS_FILE,
                           "--public_key", key.public)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout

    # (c) ... and refuses it once a file changed.
    (model_dir / "config.json").write_text('{"hidden": 17, "layers": 2}\n')
    result = model_signing("verify", "key", model_dir, "--signature", out / OMS_FILE,
                           "--public_key", key.public)
    assert result.returncode != 0
    assert "Verification succeeded" not in result.stdout


def test_model_signing_refuses_mlprov_signature_with_another_key(make_key, model_dir: Path,
                                                                 tmp_path: Path):
    key, other = make_key("ci"), make_key("other")
    out = tmp_path / "evidence"
    attest(model_dir, name="m", out=out, key=key.private, commit=COMMIT)
    result = model_signing("verify", "key", model_dir, "--signature", out / OMS_FILE,
                           "--public_key", other.public)
    assert result.returncode != 0


def test_evidence_inside_the_model_is_left_out(make_key, model_dir: Path):
    # mlprov leaves its own evidence dir out of the hash; model_signing is told to ignore it.
    key = make_key("ci")
    out = model_dir / "evidence"
    attest(model_dir, name="m", out=out, key=key.private, commit=COMMIT)
    result = model_signing("verify", "key", model_dir, "--signature", out / OMS_FILE,
                           "--public_key", key.public, "--ignore-paths", out)
    assert result.returncode == 0, result.stdout + result.stderr


# (b) mlprov accepts model_signing's signature ------------------------------------------------

@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=lambda c: c.name)
def test_mlprov_verifies_model_signing_signature(run_cli, model_dir: Path, tmp_path: Path,
                                                 curve: ec.EllipticCurve):
    priv, pub = oms_key_pair(tmp_path, curve)
    signature = tmp_path / "oms.sig"  # outside the model, or model_signing signs it too
    result = model_signing("sign", "key", model_dir, "--private_key", priv,
                           "--signature", signature)
    assert result.returncode == 0, result.stdout + result.stderr

    result = run_cli("verify", str(model_dir), "--evidence", str(signature), "--key", str(pub))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"verified {model_dir.name} sha256:")

    result = run_cli("verify", str(model_dir), "--evidence", str(signature), "--key", str(pub),
                     "--json")
    verdict = json.loads(result.stdout)
    assert verdict["verified"] is True
    root = verdict.get("rootDigest", verdict.get("root_digest"))  # verdict schema in flux
    assert root == "sha256:" + oms_subject(signature)["digest"]["sha256"]  # type: ignore[index]

    # (c) ... and refuses it once a file changed, naming the file.
    (model_dir / "tokenizer" / "vocab.txt").write_text("a\nb\nX\n")
    result = run_cli("verify", str(model_dir), "--evidence", str(signature), "--key", str(pub))
    assert result.exit_code == 1
    assert "changed: tokenizer/vocab.txt" in result.stderr


def test_mlprov_refuses_model_signing_signature_with_another_key(run_cli, make_key,
                                                                 model_dir: Path,
                                                                 tmp_path: Path):
    priv, _ = oms_key_pair(tmp_path, ec.SECP256R1())
    signature = tmp_path / "oms.sig"
    assert model_signing("sign", "key", model_dir, "--private_key", priv,
                         "--signature", signature).returncode == 0
    result = run_cli("verify", str(model_dir), "--evidence", str(signature),
                     "--key", str(make_key("stranger").public))
    assert result.exit_code == 1
    assert "not signed by any key trusted" in result.stderr


def test_both_refuse_an_added_and_a_removed_file(run_cli, model_dir: Path, tmp_path: Path):
    priv, pub = oms_key_pair(tmp_path, ec.SECP256R1())
    signature = tmp_path / "oms.sig"
    assert model_signing("sign", "key", model_dir, "--private_key", priv,
                         "--signature", signature).returncode == 0
    (model_dir / "extra.bin").write_bytes(b"x")
    assert model_signing("verify", "key", model_dir, "--signature", signature,
                         "--public_key", pub).returncode != 0
    result = run_cli("verify", str(model_dir), "--evidence", str(signature), "--key", str(pub))
    assert result.exit_code == 1 and "extra: extra.bin" in result.stderr
    (model_dir / "extra.bin").unlink()
    (model_dir / "config.json").unlink()
    assert model_signing("verify", "key", model_dir, "--signature", signature,
                         "--public_key", pub).returncode != 0
    result = run_cli("verify", str(model_dir), "--evidence", str(signature), "--key", str(pub))
    assert result.exit_code == 1 and "missing: config.json" in result.stderr


# (d) the same root digest --------------------------------------------------------------------

def test_same_root_digest_as_model_signing(run_cli, model_dir: Path, tmp_path: Path):
    # Names that sort differently part-wise and as plain strings ("a/b" vs "a-c").
    (model_dir / "a").mkdir()
    (model_dir / "a" / "b").write_bytes(b"1")
    (model_dir / "a-c").write_bytes(b"2")
    (model_dir / "Z.bin").write_bytes(b"3")
    priv, _ = oms_key_pair(tmp_path, ec.SECP256R1())
    signature = tmp_path / "oms.sig"
    result = model_signing("sign", "key", model_dir, "--private_key", priv,
                           "--signature", signature)
    assert result.returncode == 0, result.stdout + result.stderr
    subject = oms_subject(signature)
    assert subject["name"] == model_dir.name
    assert mlprov_root(run_cli, model_dir) == "sha256:" + subject["digest"]["sha256"]  # type: ignore[index]


def test_same_root_digest_single_file_model(run_cli, model_dir: Path, tmp_path: Path):
    weights = model_dir / "weights.bin"
    priv, pub = oms_key_pair(tmp_path, ec.SECP256R1())
    signature = tmp_path / "oms.sig"
    result = model_signing("sign", "key", weights, "--private_key", priv,
                           "--signature", signature)
    assert result.returncode == 0, result.stdout + result.stderr
    assert mlprov_root(run_cli, weights) == \
        "sha256:" + oms_subject(signature)["digest"]["sha256"]  # type: ignore[index]
    result = run_cli("verify", str(weights), "--evidence", str(signature), "--key", str(pub))
    assert result.exit_code == 0, result.stderr
