"""The base of the signing subsystem: what backends implement and the types they share.

Backends (:mod:`.key`, :mod:`.keyless`, :mod:`.verify_keyless`) import this
module and nothing above it; the public modules (``mlprov.signing``,
``mlprov.bundles``, ``mlprov.trust``) import the backends and re-export these
names. So imports flow one way: base -> backends -> public modules.

Signers: a backend turns an in-toto statement into a whole Sigstore bundle. A
local key only signs DSSE PAE bytes and :class:`Signer` (a template method)
builds the ``publicKey`` bundle around the signature; a Sigstore keyless signer
obtains a certificate and a transparency-log entry and sigstore-python
assembles the bundle. Callers hold a :class:`BundleSigner` and never need to
know which one it is.

Verifiers: the data types of a trust (:class:`Role`, :class:`TrustedKey`,
:class:`IdentityRule`, :class:`SigstoreIdentity`) and :class:`KeylessTrust`,
what verifying a certificate bundle needs from a trust (``mlprov.trust.Trust``
is one; loading a trust file stays in ``mlprov.trust``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlprov._internal.intoto import PAYLOAD_TYPE_IN_TOTO
from mlprov._signing.constants import GITHUB_ACTIONS_ISSUER, IDENTITY_TOKEN_ENV, Role
from mlprov.errors import KeyMaterialError, TrustError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from mlprov.statements import Statement

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "GITHUB_ACTIONS_ISSUER",
    "IDENTITY_TOKEN_ENV",
    "BundleSigner",
    "IdentityRule",
    "KeylessTrust",
    "PublicKey",
    "Role",
    "Signer",
    "SigstoreIdentity",
    "TrustedKey",
    "hash_for_curve",
    "key_bundle",
    "pae",
    "payload_bundle",
]

#: The bundle media type mlprov writes (https://github.com/sigstore/protobuf-specs).
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: Where keyless signing finds an OIDC identity token (safer than a command-line flag).


# -- keys and signers ---------------------------------------------------------------------------

def pae(payload_type: str, payload: bytes) -> bytes:
    """Return DSSE's Pre-Authentication Encoding of ``payload``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def hash_for_curve(key_size: int) -> Any:
    """The hash ECDSA uses with a curve of ``key_size`` bits (P-256: SHA-256, ...)."""
    from cryptography.hazmat.primitives import hashes

    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key_size]


@dataclass(frozen=True)
class PublicKey:
    """A verification key with its id (SHA-256 of its SPKI PEM)."""

    key: PublicKeyTypes
    pem: bytes

    @classmethod
    def from_key(cls, key: PublicKeyTypes) -> PublicKey:
        """Wrap a ``cryptography`` public key, checking it is a supported kind."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        if isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
                raise KeyMaterialError(f"unsupported elliptic curve {key.curve.name}")
        elif not isinstance(key, ed25519.Ed25519PublicKey):
            raise KeyMaterialError(f"unsupported key type {type(key).__name__}",
                                   hint="use an Ed25519 or ECDSA P-256/P-384 key")
        pem = key.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(key=key, pem=pem)

    @property
    def keyid(self) -> str:
        """SHA-256 hex of the SPKI PEM: the OMS ``publicKey.hint``."""
        return hashlib.sha256(self.pem).hexdigest()

    @property
    def algorithm(self) -> str:
        """A short name for the key's algorithm."""
        from cryptography.hazmat.primitives.asymmetric import ec

        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return f"ecdsa-{self.key.curve.name}"
        return "ed25519"

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Return whether ``signature`` over ``message`` is valid for this key.

        ECDSA signatures are accepted DER-encoded or as raw ``r||s``.
        """
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, message)
                return True
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                algorithm = ec.ECDSA(hash_for_curve(self.key.curve.key_size))
                try:
                    self.key.verify(signature, message, algorithm)
                    return True
                except (InvalidSignature, ValueError):
                    width = (self.key.curve.key_size + 7) // 8
                    if len(signature) != 2 * width:
                        return False
                    r = int.from_bytes(signature[:width], "big")
                    s = int.from_bytes(signature[width:], "big")
                    self.key.verify(encode_dss_signature(r, s), message, algorithm)
                    return True
        except (InvalidSignature, ValueError):
            return False
        return False


class BundleSigner(ABC):
    """Signs in-toto statements into Sigstore bundle v0.3 JSON bytes.

    One signer is one signing session: a keyless signer uses one identity
    token and one Fulcio certificate for every statement it signs (until the
    certificate expires), so all evidence of one run names the same signer.

    A statement comes as a :class:`~mlprov.statements.Statement` model
    (:meth:`sign_statement`) or as its JSON document (:meth:`sign_document`, no
    pydantic); both sign the same RFC 8785 bytes. mlprov's backends implement both
    through :meth:`_sign_canonical`; a backend written against the older interface
    (only :meth:`sign_statement`) signs documents through the model.
    """

    @abstractmethod
    def sign_statement(self, statement: Statement) -> bytes:
        """Sign the statement's RFC 8785 canonical bytes; return the bundle JSON.

        Raises:
            KeyMaterialError: a local key cannot sign.
            SigningError: keyless signing failed (identity token, Fulcio, Rekor).
        """

    def sign_document(self, document: dict[str, Any]) -> bytes:
        """Sign a statement given as a JSON document; return the bundle JSON.

        The document is checked as an in-toto Statement v1
        (:func:`mlprov._internal.intoto.read_statement`); the signed bytes are those
        ``Statement.model_validate(document).canonical_bytes()`` gives.

        Raises:
            BundleError: not an in-toto Statement v1 (the model's own message).
            InputError: a value canonical JSON cannot carry.
            KeyMaterialError: a local key cannot sign.
            SigningError: keyless signing failed (identity token, Fulcio, Rekor).
        """
        from mlprov._internal.documents import statement_payload

        return self._sign_canonical(statement_payload(document))

    def _sign_canonical(self, payload: bytes) -> bytes:
        """Sign ``payload``, the canonical bytes of a checked in-toto Statement v1.

        mlprov's backends override this; the default hands the statement's model to
        :meth:`sign_statement` (whose canonical bytes are ``payload`` again).
        """
        from mlprov.statements import parse_statement

        return self.sign_statement(parse_statement(payload, what="statement"))

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


class Signer(BundleSigner):
    """Something holding a key that signs DSSE PAE bytes (a local key; later KMS, PKCS#11).

    A template method: as a :class:`BundleSigner` it signs a statement over
    PAE with the one hook a backend implements, :meth:`sign`, and wraps the
    signature in a ``publicKey`` bundle. Sigstore keyless signing holds no key
    and implements :class:`BundleSigner` directly (``mlprov.signing.make_signer``).
    """

    @abstractmethod
    def sign(self, message: bytes) -> bytes:
        """Return a signature over ``message``."""

    @property
    @abstractmethod
    def public_key(self) -> PublicKey:
        """The key that verifies this signer's signatures."""

    def sign_statement(self, statement: Statement) -> bytes:
        """Sign the canonical statement over PAE into a ``publicKey`` bundle's JSON."""
        return key_bundle(statement, self)

    def _sign_canonical(self, payload: bytes) -> bytes:
        """Sign canonical statement bytes over PAE into a ``publicKey`` bundle's JSON."""
        return payload_bundle(payload, self)

    @property
    def description(self) -> str:
        """``key <key id prefix>``."""
        return f"key {self.public_key.keyid[:16]}"


def key_bundle(statement: Statement, signer: Signer) -> bytes:
    """Sign ``statement`` (canonical JSON) with ``signer`` into bundle v0.3 JSON bytes.

    The bundle carries ``verificationMaterial.publicKey.hint`` (the key id) and no
    transparency-log entry, as OMS writes key-signed bundles
    (https://github.com/sigstore/protobuf-specs, ``sigstore_bundle.proto``).
    """
    return payload_bundle(statement.canonical_bytes(), signer)


def payload_bundle(payload: bytes, signer: Signer) -> bytes:
    """:func:`key_bundle` for a statement's canonical bytes (checked by the caller)."""
    signature = signer.sign(pae(PAYLOAD_TYPE_IN_TOTO, payload))
    keyid = signer.public_key.keyid
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": keyid}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE_IN_TOTO,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"),
                            "keyid": keyid}],
        },
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


# -- trust: who may sign what -----------------------------------------------------------------

@dataclass(frozen=True)
class SigstoreIdentity:
    """Who signed a keyless bundle, read from its verified Fulcio certificate.

    ``subject`` is the certificate's SAN (an email, or a URI such as the GitHub
    workflow ``https://github.com/ORG/REPO/.github/workflows/F.yml@REF``) and
    ``issuer`` the OIDC issuer that vouched for it. ``extensions`` holds every
    Fulcio claim the certificate carries, by camelCase name
    (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md), e.g.
    ``githubWorkflowRepository`` or ``runInvocationUri``.
    """

    subject: str
    issuer: str
    extensions: tuple[tuple[str, str], ...] = ()
    log_index: int | None = None
    integrated_time: int | None = None

    @property
    def claims(self) -> dict[str, str]:
        """The Fulcio claims by name."""
        return dict(self.extensions)

    @property
    def github(self) -> dict[str, str] | None:
        """The GitHub Actions workflow claims (repository, ref, sha, workflow, trigger)."""
        claims = self.claims
        repository = claims.get("githubWorkflowRepository")
        source = claims.get("sourceRepositoryUri", "")
        if repository is None and source.startswith("https://github.com/"):
            repository = source.removeprefix("https://github.com/")
        values = {
            "repository": repository,
            "ref": claims.get("githubWorkflowRef") or claims.get("sourceRepositoryRef"),
            "sha": claims.get("githubWorkflowSha") or claims.get("sourceRepositoryDigest"),
            "workflow": claims.get("githubWorkflowName"),
            "trigger": claims.get("githubWorkflowTrigger") or claims.get("buildTrigger"),
            "runUri": claims.get("runInvocationUri"),
        }
        present = {k: v for k, v in values.items() if v is not None}
        if self.issuer != GITHUB_ACTIONS_ISSUER and not any(
                name.startswith("githubWorkflow") for name in claims):
            return None
        return present or None

    def to_json_dict(self) -> dict[str, Any]:
        """The identity as JSON (policy input, ``inspect``)."""
        document: dict[str, Any] = {"subject": self.subject, "issuer": self.issuer}
        if (github := self.github) is not None:
            document["github"] = github
        document["claims"] = self.claims
        if self.log_index is not None or self.integrated_time is not None:
            document["tlog"] = {"logIndex": self.log_index,
                                "integratedTime": self.integrated_time}
        return document


@dataclass(frozen=True)
class IdentityRule:
    """A trusted Sigstore identity: an OIDC issuer and a subject, exact or a pattern.

    ``subject_regex`` must match the whole subject (``re.fullmatch``), so an
    unanchored pattern cannot be satisfied by a longer look-alike.
    """

    issuer: str
    roles: frozenset[Role]
    subject: str | None = None
    subject_regex: str | None = None
    name: str | None = None

    def matches(self, subject: str, issuer: str) -> bool:
        """Whether a certificate naming ``subject`` from ``issuer`` satisfies this rule."""
        if issuer != self.issuer:
            return False
        if self.subject is not None:
            return subject == self.subject
        return self.subject_regex is not None and re.fullmatch(self.subject_regex,
                                                               subject) is not None

    @property
    def label(self) -> str:
        """The rule's name, else its subject or pattern."""
        return self.name or self.subject or f"/{self.subject_regex}/"

    def to_json_dict(self) -> dict[str, Any]:
        """The rule as JSON, e.g. for a registry's trust snapshot (see :meth:`from_json_dict`)."""
        document: dict[str, Any] = {"issuer": self.issuer,
                                    "roles": sorted(role.value for role in self.roles)}
        for key, value in (("name", self.name), ("subject", self.subject),
                           ("subjectRegex", self.subject_regex)):
            if value is not None:
                document[key] = value
        return document

    @classmethod
    def from_json_dict(cls, document: Any) -> IdentityRule:
        """Rebuild a rule from :meth:`to_json_dict`'s form.

        Raises:
            TrustError: not a well-formed rule.
        """
        from pydantic import ValidationError  # a keyless registry's rules only

        from mlprov._signing.schemas import SigstoreEntry

        try:
            entry = SigstoreEntry(name=document.get("name"), issuer=document["issuer"],
                                   subject=document.get("subject"),
                                   subject_regex=document.get("subjectRegex"),
                                   roles=document["roles"])
        except (AttributeError, KeyError, TypeError, ValidationError) as exc:
            raise TrustError(f"malformed sigstore identity rule: {exc}") from exc
        return cls(issuer=entry.issuer, roles=frozenset(entry.roles), subject=entry.subject,
                   subject_regex=entry.subject_regex, name=entry.name)


@dataclass(frozen=True)
class TrustedKey:
    """A trusted signer: its name, its key and its roles.

    For a keyless (Sigstore) signer, ``key`` is the certificate's ephemeral
    key, ``identity`` what the certificate says about who signed, and
    ``roles`` those of the trust-file rule the identity matched; ``name`` is
    that rule's name, else the certificate's subject.
    """

    name: str
    key: PublicKey
    roles: frozenset[Role]
    identity: SigstoreIdentity | None = None

    def describe(self) -> str:
        """The name, plus the identity for a keyless signer (for messages)."""
        if self.identity is None:
            return self.name
        if self.name == self.identity.subject:
            return f"{self.name} (Sigstore, {self.identity.issuer})"
        return f"{self.name} (Sigstore {self.identity.subject}, {self.identity.issuer})"

    def to_json_dict(self) -> dict[str, Any]:
        """The signer as JSON: name, roles, key id and, when keyless, the identity."""
        document: dict[str, Any] = {
            "name": self.name, "roles": sorted(role.value for role in self.roles),
            "kind": "sigstore" if self.identity is not None else "key",
            "keyid": self.key.keyid}
        if self.identity is not None:
            document["sigstore"] = self.identity.to_json_dict()
        return document


class KeylessTrust(Protocol):
    """What verifying a certificate bundle needs from a trust (``mlprov.trust.Trust`` has it)."""

    @property
    def sigstore(self) -> tuple[IdentityRule, ...]:
        """The trusted keyless signers, by identity."""

    @property
    def trusted_root(self) -> Path | bytes | None:
        """The Sigstore trusted root file or bytes; None: the public-good instance."""

    @property
    def source(self) -> str:
        """Where the trust came from, for messages."""

    @property
    def is_offline(self) -> bool:
        """Whether verification must not use the network."""
