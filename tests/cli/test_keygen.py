"""``mlprov keygen`` (issue 2 item 3)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.cli.conftest import assert_error, snapshot


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("key_type", "check"), [
    ("ed25519", lambda k: isinstance(k, ed25519.Ed25519PrivateKey)),
    ("ecdsa-p256", lambda k: isinstance(k, ec.EllipticCurvePrivateKey)
     and k.curve.name == "secp256r1"),
    ("ecdsa-p384", lambda k: isinstance(k, ec.EllipticCurvePrivateKey)
     and k.curve.name == "secp384r1"),
])
def test_keygen_writes_private_and_public_key(run_cli, tmp_path: Path, key_type: str, check):
    out = tmp_path / "signer.key"
    r = run_cli("keygen", "--out", str(out), "--type", key_type)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"{out}.pub\n"  # stdout: only the result
    assert _mode(out) == 0o600
    assert b"ENCRYPTED" not in out.read_bytes()
    private = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert check(private)
    public = serialization.load_pem_public_key(Path(f"{out}.pub").read_bytes())
    assert public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo) == \
        private.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def test_keygen_default_type_is_ecdsa_p256(run_cli, tmp_path: Path):
    out = tmp_path / "k"
    assert run_cli("keygen", "--out", str(out)).exit_code == 0
    key = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_keygen_encrypts_with_passphrase_from_env(run_cli, tmp_path: Path):
    out = tmp_path / "enc.key"
    r = run_cli("keygen", "--out", str(out), env={"MLPROV_KEY_PASSPHRASE": "s3cret"})
    assert r.exit_code == 0, r.stderr
    pem = out.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert _mode(out) == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    serialization.load_pem_private_key(pem, password=b"s3cret")
    assert "encrypted" in r.stderr


@pytest.mark.parametrize("existing", ["private", "public"])
def test_keygen_refuses_to_overwrite(run_cli, tmp_path: Path, existing: str):
    out = tmp_path / "k"
    victim = out if existing == "private" else tmp_path / "k.pub"
    victim.write_text("precious")
    before = snapshot(tmp_path)
    assert_error(run_cli("keygen", "--out", str(out)), 3, "refusing to overwrite", str(victim),
                 "--force")
    assert snapshot(tmp_path) == before


def test_keygen_force_overwrites(run_cli, tmp_path: Path):
    out = tmp_path / "k"
    assert run_cli("keygen", "--out", str(out)).exit_code == 0
    first = out.read_bytes()
    r = run_cli("keygen", "--out", str(out), "--force", "--type", "ed25519")
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes() != first
    assert _mode(out) == 0o600


def test_keygen_unknown_type_is_usage_error(run_cli, tmp_path: Path):
    out = tmp_path / "k"
    assert_error(run_cli("keygen", "--out", str(out), "--type", "rsa"), 2, "rsa")
    assert not out.exists()


def test_keygen_key_signs_and_verifies(run_cli, tmp_path: Path, model_dir: Path):
    from tests.cli.conftest import COMMIT

    key = tmp_path / "ed.key"
    assert run_cli("keygen", "--out", str(key), "--type", "ed25519").exit_code == 0
    out = tmp_path / "ev"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key), "--out", str(out),
                "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--key", f"{key}.pub")
    assert r.exit_code == 0, r.stderr
