"""The interface every signing backend implements.

A backend turns an in-toto statement into a whole Sigstore bundle. A local key
only signs DSSE PAE bytes and mlprov builds the ``publicKey`` bundle around the
signature; a Sigstore keyless signer obtains a certificate and a transparency-log
entry and sigstore-python assembles the bundle. Callers hold a
:class:`BundleSigner` and never need to know which one it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlprov.statements import Statement

__all__ = ["BundleSigner"]


class BundleSigner(ABC):
    """Signs in-toto statements into Sigstore bundle v0.3 JSON bytes.

    One signer is one signing session: a keyless signer uses one identity
    token and one Fulcio certificate for every statement it signs (until the
    certificate expires), so all evidence of one run names the same signer.
    """

    @abstractmethod
    def sign_statement(self, statement: Statement) -> bytes:
        """Sign the statement's RFC 8785 canonical bytes; return the bundle JSON.

        Raises:
            KeyMaterialError: a local key cannot sign.
            SigningError: keyless signing failed (identity token, Fulcio, Rekor).
        """

    @property
    @abstractmethod
    def description(self) -> str:
        """Who signs, for messages: ``key <id>`` or ``sigstore <identity>``."""

    @property
    def sigstore_identity(self) -> tuple[str, str] | None:
        """A keyless signer's (identity, OIDC issuer) as its token states them; None for keys.

        For email identities this is the certificate's subject; for CI workloads
        Fulcio derives the subject from other claims (GitHub: the workflow ref).
        """
        return None
