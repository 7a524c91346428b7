"""The local-key backend: a private key mlprov holds signs DSSE PAE bytes.

:class:`~mlprov._signing.interface.Signer` (the base) builds the ``publicKey``
bundle around the signature; this module supplies the one hook, :meth:`KeySigner.sign`.
Loading and writing key files is ``mlprov.signing``'s (the public surface).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlprov._signing.interface import PublicKey, Signer, hash_for_curve, key_bundle
from mlprov.errors import KeyMaterialError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = ["KeySigner", "key_bundle"]


class KeySigner(Signer):
    """Signs with a local private key (Ed25519 or ECDSA, DER signatures)."""

    def __init__(self, private_key: PrivateKeyTypes) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        if not isinstance(private_key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise KeyMaterialError(f"unsupported private key type {type(private_key).__name__}",
                                   hint="use an Ed25519 or ECDSA P-256/P-384 key")
        self._key = private_key
        self._public = PublicKey.from_key(private_key.public_key())

    @property
    def public_key(self) -> PublicKey:
        """The public half of this key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``; ECDSA signatures are DER-encoded."""
        from cryptography.hazmat.primitives.asymmetric import ec

        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(message, ec.ECDSA(hash_for_curve(self._key.curve.key_size)))
        return self._key.sign(message)
