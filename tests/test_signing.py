"""DSSE PAE, signatures and key files (mlprov.signing)."""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from mlprov.errors import BundleError, InputError, KeyMaterialError
from mlprov.signing import (
    PASSPHRASE_ENV,
    KeySigner,
    KeyType,
    PublicKey,
    b64decode_any,
    generate_key,
    load_private_key,
    load_public_key,
    pae,
    write_key_pair,
)

# The DSSE v1.0.2 test vector (protocol.md, "Test Vectors").
VECTOR_TYPE = "http://example.com/HelloWorld"
VECTOR_BODY = b"hello world"
VECTOR_X = 46950820868899156662930047687818585632848591499744589407958293238635476079160
VECTOR_Y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
VECTOR_SIG = ("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIA"
              "riEGAHTVeCUjW2JIZA==")


def vector_key() -> PublicKey:
    numbers = ec.EllipticCurvePublicNumbers(VECTOR_X, VECTOR_Y, ec.SECP256R1())
    return PublicKey.from_key(numbers.public_key())


def flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


# --- PAE and the DSSE test vector -----------------------------------------------------------

def test_pae_exact_bytes():
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae(VECTOR_TYPE, VECTOR_BODY) == expected


def test_pae_counts_bytes_not_characters():
    assert pae("t\u00e9", b"") == "DSSEv1 3 t\u00e9 0 ".encode()
    assert pae("", b"\x00\xff") == b"DSSEv1 0  2 \x00\xff"


def test_dsse_test_vector_raw_signature_verifies():
    assert vector_key().verify(b64decode_any(VECTOR_SIG, what="sig"), pae(VECTOR_TYPE, VECTOR_BODY))


def test_dsse_test_vector_der_reencoding_verifies():
    raw = b64decode_any(VECTOR_SIG, what="sig")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert der != raw
    assert vector_key().verify(der, pae(VECTOR_TYPE, VECTOR_BODY))


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_dsse_test_vector_flipped_signature_bit_fails(index: int):
    raw = b64decode_any(VECTOR_SIG, what="sig")
    assert not vector_key().verify(flip_bit(raw, index), pae(VECTOR_TYPE, VECTOR_BODY))


def test_dsse_test_vector_other_message_fails():
    raw = b64decode_any(VECTOR_SIG, what="sig")
    key = vector_key()
    assert not key.verify(raw, pae(VECTOR_TYPE, b"hello worle"))
    assert not key.verify(raw, pae("http://example.com/HelloWorlD", VECTOR_BODY))
    # The signature covers PAE, never the bare body.
    assert not key.verify(raw, VECTOR_BODY)


def test_verify_rejects_garbage_signatures_without_raising():
    key = vector_key()
    for sig in (b"", b"\x30", b"\x00" * 64, b"\x00" * 65, b"\xff" * 72):
        assert key.verify(sig, pae(VECTOR_TYPE, VECTOR_BODY)) is False


# --- base64 ---------------------------------------------------------------------------------

@given(st.binary(max_size=200))
def test_b64decode_any_accepts_all_four_forms(data: bytes):
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode()
    for text in (standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")):
        assert b64decode_any(text, what="x") == data


def test_b64decode_any_urlsafe_alphabet_really_differs():
    data = b"\xfb\xff\xfe"  # encodes to "+//+" standard, "-__-" URL-safe
    assert base64.urlsafe_b64encode(data) == b"-__-"
    assert b64decode_any("-__-", what="x") == data
    assert b64decode_any("+//+", what="x") == data


@pytest.mark.parametrize("bad", ["a", "ab!c", "ab cd", "====", "a===", "\u00e9\u00e9\u00e9\u00e9"])
def test_b64decode_any_rejects_non_base64(bad: str):
    with pytest.raises(BundleError, match="the sig is not valid base64"):
        b64decode_any(bad, what="the sig")


def test_b64decode_any_rejects_non_strings():
    with pytest.raises(BundleError, match="not a base64 string"):
        b64decode_any(123, what="sig")  # type: ignore[arg-type]


# --- sign / verify round trips --------------------------------------------------------------

@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_verify_round_trip(key_type: KeyType):
    signer = KeySigner(generate_key(key_type))
    message = pae("application/vnd.in-toto+json", b'{"a":1}')
    signature = signer.sign(message)
    assert signer.public_key.verify(signature, message)
    assert not signer.public_key.verify(signature, message + b" ")
    assert not signer.public_key.verify(flip_bit(signature, len(signature) // 2), message)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_wrong_key_fails(key_type: KeyType):
    message = b"DSSEv1 1 t 1 x"
    signature = KeySigner(generate_key(key_type)).sign(message)
    other = KeySigner(generate_key(key_type)).public_key
    assert not other.verify(signature, message)


def test_cross_algorithm_signature_fails():
    message = b"DSSEv1 1 t 1 x"
    p256 = KeySigner(generate_key(KeyType.ECDSA_P256))
    p384 = KeySigner(generate_key(KeyType.ECDSA_P384))
    ed = KeySigner(generate_key(KeyType.ED25519))
    assert not p384.public_key.verify(p256.sign(message), message)
    assert not ed.public_key.verify(p256.sign(message), message)
    assert not p256.public_key.verify(ed.sign(message), message)


@pytest.mark.parametrize("key_type", [KeyType.ECDSA_P256, KeyType.ECDSA_P384])
def test_ecdsa_signatures_are_der_and_raw_also_verifies(key_type: KeyType):
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signer = KeySigner(generate_key(key_type))
    message = b"DSSEv1 1 t 1 x"
    der = signer.sign(message)
    assert der[0] == 0x30  # a DER SEQUENCE, what Sigstore and OMS write
    r, s = decode_dss_signature(der)
    width = 32 if key_type is KeyType.ECDSA_P256 else 48
    raw = r.to_bytes(width, "big") + s.to_bytes(width, "big")
    assert signer.public_key.verify(raw, message)
    assert not signer.public_key.verify(raw, message + b"!")


@pytest.mark.parametrize("key_type", list(KeyType))
def test_keyid_is_sha256_of_spki_pem(key_type: KeyType):
    private = generate_key(key_type)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    public = KeySigner(private).public_key
    assert public.pem == pem
    assert public.keyid == hashlib.sha256(pem).hexdigest()


def test_keyid_matches_oms_hint_computation():
    # model_signing's sign_ec_key._get_verification_material, restated.
    private = generate_key(KeyType.ECDSA_P256)
    raw = private.public_key().public_bytes(encoding=serialization.Encoding.PEM,
                                            format=serialization.PublicFormat.SubjectPublicKeyInfo)
    assert KeySigner(private).public_key.keyid == hashlib.sha256(raw).digest().hex()


def test_unsupported_keys_are_refused():
    with pytest.raises(KeyMaterialError, match="unsupported private key type"):
        KeySigner(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(KeyMaterialError, match="unsupported elliptic curve secp256k1"):
        PublicKey.from_key(ec.generate_private_key(ec.SECP256K1()).public_key())


# --- key files ------------------------------------------------------------------------------

def test_write_key_pair_modes_and_contents(tmp_path: Path):
    private = generate_key(KeyType.ED25519)
    priv_path, pub_path = write_key_pair(private, tmp_path / "ci.key", None)
    assert pub_path == tmp_path / "ci.key.pub"
    assert stat.S_IMODE(priv_path.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in priv_path.read_bytes()
    assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    signer = load_private_key(priv_path)
    assert load_public_key(pub_path).keyid == signer.public_key.keyid
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


@pytest.mark.parametrize("existing", ["ci.key", "ci.key.pub"])
def test_write_key_pair_refuses_overwrite(tmp_path: Path, existing: str):
    (tmp_path / existing).write_bytes(b"keep me")
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_key_pair(generate_key(KeyType.ED25519), tmp_path / "ci.key", None)
    assert (tmp_path / existing).read_bytes() == b"keep me"
    other = "ci.key.pub" if existing == "ci.key" else "ci.key"
    assert not (tmp_path / other).exists()


def test_write_key_pair_overwrite_replaces(tmp_path: Path):
    first = write_key_pair(generate_key(KeyType.ED25519), tmp_path / "k", None)[1].read_bytes()
    write_key_pair(generate_key(KeyType.ED25519), tmp_path / "k", None, overwrite=True)
    assert (tmp_path / "k.pub").read_bytes() != first


def test_encrypted_key_loads_with_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    private = generate_key(KeyType.ECDSA_P256)
    path, _ = write_key_pair(private, tmp_path / "enc.key", b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    signer = load_private_key(path)
    assert signer.public_key.keyid == KeySigner(private).public_key.keyid


def test_encrypted_key_wrong_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path, _ = write_key_pair(generate_key(KeyType.ED25519), tmp_path / "enc.key", b"right")
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(KeyMaterialError, match="wrong passphrase") as info:
        load_private_key(path)
    assert "\n" not in str(info.value)


def test_encrypted_key_without_passphrase_off_a_terminal(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    path, _ = write_key_pair(generate_key(KeyType.ED25519), tmp_path / "enc.key", b"right")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a tty: never prompt
    with pytest.raises(KeyMaterialError, match="encrypted and no passphrase") as info:
        load_private_key(path)
    assert PASSPHRASE_ENV in info.value.diagnostics()


def test_traditional_openssl_encrypted_key_is_recognised(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    # `openssl ec -aes256` writes "Proc-Type: 4,ENCRYPTED" on the second line.
    private = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "trad.pem"
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.BestAvailableEncryption(b"pw")))
    assert b"Proc-Type: 4,ENCRYPTED" in path.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(KeyMaterialError, match="encrypted and no passphrase"):
        load_private_key(path)
    monkeypatch.setenv(PASSPHRASE_ENV, "nope")
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        load_private_key(path)
    monkeypatch.setenv(PASSPHRASE_ENV, "pw")
    assert load_private_key(path).public_key.keyid == KeySigner(private).public_key.keyid


def test_unencrypted_key_ignores_a_set_passphrase(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    path, _ = write_key_pair(generate_key(KeyType.ECDSA_P384), tmp_path / "plain.key", None)
    monkeypatch.setenv(PASSPHRASE_ENV, "unused")
    assert load_private_key(path).public_key.algorithm == "ecdsa-secp384r1"


def test_public_key_where_private_expected(tmp_path: Path):
    _, pub = write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "k", None)
    with pytest.raises(KeyMaterialError, match="public key") as info:
        load_private_key(pub)
    assert "private key" in str(info.value)
    assert "\n" not in str(info.value)


def test_private_key_where_public_expected(tmp_path: Path):
    priv, _ = write_key_pair(generate_key(KeyType.ECDSA_P256), tmp_path / "k", None)
    with pytest.raises(KeyMaterialError, match="private key") as info:
        load_public_key(priv)
    assert "public key" in str(info.value)
    assert ".pub" in info.value.diagnostics()


@pytest.mark.parametrize("loader", [load_private_key, load_public_key])
def test_missing_and_garbage_key_files(tmp_path: Path, loader):
    with pytest.raises(KeyMaterialError, match="cannot read"):
        loader(tmp_path / "absent.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key at all\n")
    with pytest.raises(KeyMaterialError, match=r"garbage\.pem"):
        loader(garbage)


def test_write_key_pair_never_clobbers_a_file_that_appears_late(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    # The public key file appears between the existence check and the write.
    real_exists = Path.exists

    def exists(self: Path) -> bool:
        if self.name == "ci.key.pub":
            return False
        return real_exists(self)

    (tmp_path / "ci.key.pub").write_bytes(b"someone else's")
    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_key_pair(generate_key(KeyType.ED25519), tmp_path / "ci.key", None)
    assert (tmp_path / "ci.key.pub").read_bytes() == b"someone else's"
    assert not real_exists(tmp_path / "ci.key")  # no orphaned private key either
