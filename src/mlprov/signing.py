"""Keys and DSSE signatures.

DSSE v1.0.2 (https://github.com/secure-systems-lab/dsse/blob/v1.0.2/protocol.md):
a signature covers ``PAE(payloadType, payload)``, never the JSON around it.
Verifiers accept standard and URL-safe base64, and ECDSA signatures both DER
and raw ``r||s``; mlprov writes DER, as Sigstore and OMS do.

Keys: Ed25519 and ECDSA P-256/P-384 (P-521 verified too, for OMS). Private keys
are PKCS#8 PEM, encrypted when a passphrase is given; public keys are SPKI PEM.
A key's id is the SHA-256 of its SPKI PEM, hex: the ``publicKey.hint`` OMS writes.

Signers: every signer is a :class:`BundleSigner` (statement in, whole bundle
out). A :class:`Signer` holds a key and signs PAE bytes; Sigstore keyless
signing (``make_signer(sigstore=True)``, docs/keyless.md) holds no key and gets
a Fulcio certificate and a Rekor entry instead. The signer types and
:class:`PublicKey` live in the backends' base, ``mlprov._signing.interface``
(and :class:`KeySigner` in its backend, ``_signing.key``); they are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.arguments import (
    BOOL,
    BYTES,
    PATH,
    TEXT,
    Invalid,
    checked,
    instance,
    optional,
)
from mlprov._internal.readers import MAX_KEY_BYTES, read_bytes
from mlprov._signing.interface import (
    IDENTITY_TOKEN_ENV,
    BundleSigner,
    PublicKey,
    Signer,
    pae,
)
from mlprov._signing.key import KeySigner
from mlprov.errors import BundleError, InputError, KeyMaterialError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = [
    "IDENTITY_TOKEN_ENV",
    "PASSPHRASE_ENV",
    "BundleSigner",
    "KeySigner",
    "KeyType",
    "PublicKey",
    "Signer",
    "b64decode_any",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "make_signer",
    "pae",
    "passphrase_from_env_or_prompt",
    "write_key_pair",
]

PASSPHRASE_ENV = "MLPROV_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


class KeyType(StrEnum):
    """Key algorithms ``mlprov keygen`` makes."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"


def b64decode_any(value: str, *, what: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (DSSE requires both).

    Raises:
        BundleError: the value is not base64.
    """
    if not isinstance(value, str):
        raise BundleError(f"{what} is not a base64 string")
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"{what} is not valid base64") from exc


@checked(key_type=instance(KeyType, "a KeyType (KeyType.ED25519, ...)"))
def generate_key(key_type: KeyType) -> PrivateKeyTypes:
    """Make a new private key of ``key_type``.

    Example:
        private = generate_key(KeyType.ED25519)
    """
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if key_type is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    curve = ec.SECP256R1() if key_type is KeyType.ECDSA_P256 else ec.SECP384R1()
    return ec.generate_private_key(curve)


def _write_atomic(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write via a temporary file; without ``overwrite``, never replace an existing file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with FileExistsError instead of replacing
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _private_key(value: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if not isinstance(value, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise Invalid("a private key (generate_key(KeyType.ED25519))")


@checked(private_key=_private_key, out=PATH, passphrase=optional(BYTES), overwrite=BOOL)
def write_key_pair(private_key: PrivateKeyTypes, out: Path, passphrase: bytes | None,
                   *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``out`` (PKCS#8 PEM, mode 0600, encrypted if ``passphrase``) and ``out.pub``.

    Example:
        write_key_pair(generate_key(KeyType.ED25519), Path("ci.key"), None)   # ci.key, ci.key.pub

    Raises:
        InputError: a file exists and ``overwrite`` is false, or cannot be written.
    """
    from cryptography.hazmat.primitives import serialization

    out = Path(out)  # a str works too
    pub_path = out.with_name(out.name + ".pub")
    for path in (out, pub_path):
        if path.exists() and not overwrite:
            raise InputError(f"refusing to overwrite {path}", hint="pass --force to replace it")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    private_pem = private_key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8, encryption)
    public = PublicKey.from_key(private_key.public_key())
    try:
        _write_atomic(out, private_pem, 0o600, overwrite=overwrite)
        try:
            _write_atomic(pub_path, public.pem, 0o644, overwrite=overwrite)
        except OSError:
            if not overwrite:
                out.unlink(missing_ok=True)  # we just created it: leave no half pair
            raise
    except FileExistsError as exc:
        raise InputError(f"refusing to overwrite {exc.filename2 or exc.filename}",
                         hint="pass --force to replace it") from exc
    except OSError as exc:
        raise InputError(f"cannot write key to {exc.filename}: {exc.strerror}") from exc
    return out, pub_path


def _read(path: Path, what: str) -> bytes:
    try:
        return read_bytes(path, what=what, limit=MAX_KEY_BYTES, error=KeyMaterialError)
    except OSError as exc:
        raise KeyMaterialError(f"cannot read {what} {path}: {exc.strerror}") from exc


def passphrase_from_env_or_prompt(path: Path, *, confirm: bool = False) -> bytes | None:
    """Return the passphrase from ``MLPROV_KEY_PASSPHRASE``, or ask on a terminal."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return value.encode("utf-8") or None
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(f"Passphrase for {path} (empty for none): ")
    if confirm and first and getpass.getpass("Repeat passphrase: ") != first:
        raise KeyMaterialError("passphrases do not match")
    return first.encode("utf-8") or None


def _is_encrypted_pem(data: bytes) -> bool:
    """Return whether a PEM private key is encrypted (PKCS#8 or OpenSSL's traditional form)."""
    for line in data.splitlines():
        line = line.strip()
        if line.startswith(b"-----BEGIN ENCRYPTED ") or (
                line.startswith(b"Proc-Type:") and b"ENCRYPTED" in line):
            return True
    return False


@checked(path=PATH)
def load_private_key(path: Path) -> KeySigner:
    """Load a PEM private key, decrypting it with the env or prompted passphrase.

    Example:
        signer = load_private_key(Path("ci.key"))

    Raises:
        KeyMaterialError: unreadable, not a key, encrypted without a passphrase,
            or the passphrase is wrong.
    """
    from cryptography.hazmat.primitives import serialization

    data = _read(path, "private key")
    if b"PRIVATE KEY-----" not in data and b"PUBLIC KEY-----" in data:
        raise KeyMaterialError(f"{path} is a public key, not a private key",
                               hint="pass the private key (the file without .pub)")
    encrypted = _is_encrypted_pem(data)
    passphrase = passphrase_from_env_or_prompt(path) if encrypted else None
    if encrypted and passphrase is None:
        raise KeyMaterialError(f"private key {path} is encrypted and no passphrase was given",
                               hint=f"set {PASSPHRASE_ENV} or run on a terminal to be prompted")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        # cryptography's way of saying "encrypted, but no password given".
        raise KeyMaterialError(f"private key {path} is encrypted and no passphrase was given",
                               hint=f"set {PASSPHRASE_ENV} or run on a terminal to be prompted"
                               ) from exc
    except ValueError as exc:
        if encrypted:
            raise KeyMaterialError(f"wrong passphrase for private key {path}",
                                   hint=f"check {PASSPHRASE_ENV}") from exc
        raise KeyMaterialError(f"{path} is not a PEM private key") from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm too
        raise KeyMaterialError(f"cannot load private key {path}: {exc}") from exc
    return KeySigner(key)


@checked(path=PATH)
def load_public_key(path: Path) -> PublicKey:
    """Load a PEM public key (SPKI).

    Example:
        public = load_public_key(Path("ci.key.pub"))

    Raises:
        KeyMaterialError: unreadable or not a supported public key.
    """
    from cryptography.hazmat.primitives import serialization

    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        if b"PRIVATE KEY-----" in data:
            raise KeyMaterialError(f"{path} is a private key, not a public key",
                                   hint="pass the public key (the .pub file)") from exc
        raise KeyMaterialError(f"{path} is not a PEM public key",
                               hint="pass a PEM public key (the .pub file)") from exc
    except Exception as exc:
        raise KeyMaterialError(f"cannot load public key {path}: {exc}") from exc
    return PublicKey.from_key(key)


@checked(key=optional(PATH), sigstore=BOOL, identity_token=optional(TEXT), staging=BOOL,
         trust_config=optional(PATH))
def make_signer(*, key: Path | str | None = None, sigstore: bool = False,
                identity_token: str | None = None, staging: bool = False,
                trust_config: Path | str | None = None) -> BundleSigner:
    """Build the signer a command was asked for: a local key, or Sigstore keyless.

    Keyless signing uses ``identity_token`` when given, else the CI job's
    ambient OIDC credential (GitHub Actions, GitLab, Buildkite, CircleCI, GCP);
    ``staging`` or ``trust_config`` (a ClientTrustConfig JSON file) pick another
    instance than the public-good one. The token is checked here, so a missing
    one fails before any work; the certificate is requested at the first signature.

    Example:
        signer = make_signer(key="ci.key")      # or make_signer(sigstore=True) in CI

    Raises:
        InputError: both or neither of ``key`` and ``sigstore``, or keyless
            options without ``sigstore``.
        KeyMaterialError: the key cannot be loaded.
        SigningError: no usable identity token, or the instance is unreachable.
    """
    if key is not None and sigstore:
        raise InputError("give a signing key or Sigstore keyless signing, not both",
                         hint="pass --key PRIVATE_KEY or --sigstore")
    if not sigstore:
        if identity_token is not None or staging or trust_config is not None:
            raise InputError("an identity token, staging or a trust config needs "
                             "Sigstore keyless signing", hint="add --sigstore")
        if key is None:
            raise InputError("no signer given", hint="pass --key PRIVATE_KEY or --sigstore")
        return load_private_key(Path(key))
    from mlprov._signing.keyless import SigstoreSigner

    return SigstoreSigner.create(identity_token=identity_token, staging=staging,
                                 trust_config=trust_config)
