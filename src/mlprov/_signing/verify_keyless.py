"""Verifying keyless (certificate) bundles against the trust file's Sigstore identities.

sigstore-python's ``Verifier(trusted_root=...).verify_dsse`` does the
cryptography, offline (SPECS.md §3.2): the signing time from the signed entry
timestamp or an RFC 3161 timestamp; the certificate chain to a Fulcio CA of the
trusted root at that time; the embedded SCT; key usage and EKU; the identity
policy; the Merkle inclusion proof and signed checkpoint; the SET; the DSSE
signature; and that the log entry matches the bundle. It does not look at the
payload type or the statement: :func:`mlprov.bundles.verify_statement_file`
checks those afterwards, exactly as for key-signed bundles.

The identity policy is the trust file's ``sigstore`` rules: the certificate's
subject (SAN) and OIDC issuer must satisfy one of them, and the signature then
counts for the roles of the rules it satisfied, nothing more.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.readers import MAX_TRUST_BYTES, read_text
from mlprov._signing.common import one_line, quiet_sigstore
from mlprov._signing.interface import (
    IdentityRule,
    KeylessTrust,
    PublicKey,
    Role,
    SigstoreIdentity,
    TrustedKey,
)
from mlprov.errors import BundleError, KeyMaterialError, SignatureError, TrustError

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from sigstore.verify import Verifier

__all__ = ["certificate_identity", "trusted_root_verifier", "verify_keyless"]

_FULCIO = "1.3.6.1.4.1.57264.1."
_ISSUER_V1, _ISSUER_V2, _OTHERNAME = _FULCIO + "1", _FULCIO + "8", _FULCIO + "7"
# Fulcio's claims (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md): arcs 2-6
# are raw strings (deprecated), 9 onwards DER UTF8Strings.
_CLAIMS = {
    2: "githubWorkflowTrigger", 3: "githubWorkflowSha", 4: "githubWorkflowName",
    5: "githubWorkflowRepository", 6: "githubWorkflowRef", 9: "buildSignerUri",
    10: "buildSignerDigest", 11: "runnerEnvironment", 12: "sourceRepositoryUri",
    13: "sourceRepositoryDigest", 14: "sourceRepositoryRef", 15: "sourceRepositoryIdentifier",
    16: "sourceRepositoryOwnerUri", 17: "sourceRepositoryOwnerIdentifier",
    18: "buildConfigUri", 19: "buildConfigDigest", 20: "buildTrigger",
    21: "runInvocationUri", 22: "sourceRepositoryVisibilityAtSigning",
}
PUBLIC_GOOD = "the Sigstore public-good trusted root"


# -- trusted roots ------------------------------------------------------------------------------

def _verifier_of(root: Any, label: str) -> Verifier:
    from sigstore.verify import Verifier

    try:
        return Verifier(trusted_root=root)  # reads the CAs and the logs: fails here, not later
    except Exception as exc:  # sigstore's MetadataError, VerificationError, ...
        raise TrustError(f"{label} is not a usable Sigstore trusted root: {one_line(exc)}"
                         ) from exc


def _root_verifier(text: str, label: str, path: str | None = None) -> Verifier:
    from sigstore.models import ClientTrustConfig, TrustedRoot

    try:
        document = json.loads(text)
        if isinstance(document, dict) and "clienttrustconfig" in str(
                document.get("mediaType", "")):
            root = ClientTrustConfig.from_json(text).trusted_root
        elif path is not None:
            root = TrustedRoot.from_file(path)
        else:
            # What TrustedRoot.from_file does, from bytes (e.g. a registry's trust snapshot).
            from sigstore_models.trustroot import v1 as trustroot_v1

            root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(text))
    except Exception as exc:  # JSON, pydantic and sigstore errors alike
        raise TrustError(f"{label} is not a Sigstore trusted root or ClientTrustConfig: "
                         f"{one_line(exc)}",
                         hint="give the trusted_root.json of your Sigstore instance") from exc
    return _verifier_of(root, label)


@lru_cache(maxsize=16)
def _file_verifier(path: str, _mtime_ns: int, _size: int) -> Verifier:
    label = f"trusted root {path}"
    try:
        text = read_text(path, what="trusted root", limit=MAX_TRUST_BYTES, error=TrustError)
    except OSError as exc:
        raise TrustError(f"cannot read {label}: {exc.strerror}") from exc
    # Parsed from the bytes read (bounded, a regular file), never re-read by path.
    return _root_verifier(text, label)


@lru_cache(maxsize=16)
def _bytes_verifier(data: bytes) -> Verifier:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrustError("the embedded trusted root is not UTF-8 JSON") from exc
    return _root_verifier(text, "the embedded trusted root")


def trusted_root_verifier(root: Path | bytes) -> Verifier:
    """Parse a TrustedRoot (or ClientTrustConfig) JSON file or bytes; return its verifier.

    Verifiers are cached per file (path, mtime, size) or per content.

    Raises:
        TrustError: the file is unreadable or not a usable trusted root.
    """
    if isinstance(root, bytes):
        return _bytes_verifier(root)
    try:
        stat = root.stat()
    except OSError as exc:
        raise TrustError(f"trusted root {root} not found: {exc.strerror}",
                         hint="trusted_root is relative to the trust file") from exc
    return _file_verifier(str(root.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _public_good_verifier(offline: bool) -> Verifier:
    from sigstore.models import ClientTrustConfig

    try:
        with quiet_sigstore():
            # Offline: the TUF cache, else the root embedded in sigstore-python; no network.
            root = ClientTrustConfig.production(offline=offline).trusted_root
    except Exception as exc:  # TUF and network errors
        raise TrustError(f"cannot load {PUBLIC_GOOD}: {one_line(exc)}",
                         hint="check the network, or pass --offline to use the root "
                              "sigstore-python ships, or set trusted_root in the trust file"
                         ) from exc
    return _verifier_of(root, PUBLIC_GOOD)


def _verifier(trust: KeylessTrust) -> tuple[Verifier, str]:
    root = trust.trusted_root
    if isinstance(root, bytes):
        return trusted_root_verifier(root), f"the trusted root of {trust.source}"
    if root is not None:
        return trusted_root_verifier(root), f"trusted root {root}"
    return _public_good_verifier(trust.is_offline), PUBLIC_GOOD


# -- certificates -------------------------------------------------------------------------------

def _der_string(value: bytes) -> str:
    """Decode a DER string (UTF8String and friends), or raw bytes as UTF-8."""
    if len(value) >= 2 and value[0] in (0x0C, 0x13, 0x16):
        length, offset = value[1], 2
        if length & 0x80:
            count = length & 0x7F
            length, offset = int.from_bytes(value[2:2 + count], "big"), 2 + count
        return value[offset:offset + length].decode("utf-8", "replace")
    return value.decode("utf-8", "replace")


def _subjects(cert: Certificate) -> list[str]:
    """Every identity SAN, in order: emails, URIs and Fulcio's username OtherName."""
    from cryptography import x509

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    subjects = []
    for name in names:
        if isinstance(name, x509.RFC822Name | x509.UniformResourceIdentifier):
            subjects.append(name.value)
        elif isinstance(name, x509.OtherName) and name.type_id.dotted_string == _OTHERNAME:
            subjects.append(_der_string(name.value))
    return subjects


def certificate_identity(cert: Certificate, *, log_index: int | None = None,
                         integrated_time: int | None = None) -> SigstoreIdentity:
    """What a Fulcio certificate says about its signer: subject, issuer and claims."""
    issuer_v1 = issuer_v2 = ""
    claims: list[tuple[str, str]] = []
    for extension in cert.extensions:
        oid = extension.oid.dotted_string
        if not oid.startswith(_FULCIO):
            continue
        raw = getattr(extension.value, "value", b"")
        if not isinstance(raw, bytes):
            continue
        arc = int(oid.removeprefix(_FULCIO)) if oid.removeprefix(_FULCIO).isdigit() else 0
        if oid == _ISSUER_V1:
            issuer_v1 = raw.decode("utf-8", "replace")
        elif oid == _ISSUER_V2:
            issuer_v2 = _der_string(raw)
        elif arc in _CLAIMS:
            claims.append((_CLAIMS[arc], _der_string(raw) if arc >= 9 else
                           raw.decode("utf-8", "replace")))
    subjects = _subjects(cert)
    return SigstoreIdentity(subject=subjects[0] if subjects else "",
                            issuer=issuer_v2 or issuer_v1, extensions=tuple(claims),
                            log_index=log_index, integrated_time=integrated_time)


class _RulesPolicy:
    """A sigstore ``VerificationPolicy``: the certificate must satisfy a trust rule.

    sigstore-python calls it after the chain and SCT checks, so the identity it
    records is one a trusted CA issued. It records which rules matched, because
    the roles a signature counts for are those rules' roles.
    """

    def __init__(self, rules: tuple[IdentityRule, ...]) -> None:
        self.rules = rules
        self.matched: list[IdentityRule] = []
        self.seen: SigstoreIdentity | None = None

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        self.seen = certificate_identity(cert)
        subjects = _subjects(cert)
        self.matched = [rule for rule in self.rules
                        if any(rule.matches(s, self.seen.issuer) for s in subjects)]
        if not self.matched:
            raise VerificationError("the certificate's identity matches no trust rule")


# -- verification -------------------------------------------------------------------------------

def _unverified_identity(document: dict[str, Any]) -> str:
    """The identity a bundle's certificate claims, for messages only (nothing verified)."""
    from cryptography import x509

    material = document.get("verificationMaterial") or {}
    raw = (material.get("certificate") or {}).get("rawBytes")
    if raw is None:
        chain = (material.get("x509CertificateChain") or {}).get("certificates") or [{}]
        raw = chain[0].get("rawBytes") if isinstance(chain[0], dict) else None
    if not isinstance(raw, str):
        return "no readable certificate"
    try:
        identity = certificate_identity(x509.load_der_x509_certificate(base64.b64decode(raw)))
    except (ValueError, binascii.Error):
        return "an unreadable certificate"
    return f"a certificate for {identity.subject or '?'} ({identity.issuer or 'no issuer'})"


def _log_position(document: dict[str, Any]) -> tuple[int | None, int | None]:
    """The bundle's log index and integrated time (verified by then), if present."""
    entries = (document.get("verificationMaterial") or {}).get("tlogEntries") or [{}]
    entry = entries[0] if isinstance(entries[0], dict) else {}

    def number(value: object) -> int | None:
        try:
            return int(str(value)) if value is not None else None
        except ValueError:
            return None

    # Rekor v2 entries have no integrated time (protobuf JSON omits it, or writes 0).
    return number(entry.get("logIndex")), number(entry.get("integratedTime")) or None


def _no_rule_matched(what: str, seen: SigstoreIdentity, trust: KeylessTrust) -> SignatureError:
    """Name the certificate's identity and, when a rule almost matched, what it expected.

    The policy runs after the chain and SCT checks but before the signature
    check, so the certificate is genuine but not yet proven to have signed:
    the message says what the bundle carries, not who signed it.
    """
    near = ""
    for rule in trust.sigstore:
        if rule.issuer == seen.issuer:
            expected = rule.subject or f"a subject matching /{rule.subject_regex}/"
            near = f"; rule {rule.label!r} expects {expected}"
            break
        if rule.matches(seen.subject, rule.issuer):
            near = f"; rule {rule.label!r} expects issuer {rule.issuer}"
            break
    return SignatureError(
        f"{what} carries a certificate for {seen.subject} (issuer {seen.issuer}), which no "
        f"sigstore identity in {trust.source} trusts{near}",
        hint="add that identity under 'sigstore' in the trust file, or find out who signed")


def _failure(what: str, exc: Exception, root: str) -> SignatureError:
    """One clear line for a sigstore verification failure; sigstore's words kept after it."""
    text = re.sub(r" \(encountered processing .*", "", one_line(exc))
    low = text.lower()
    tampered = "do not use this evidence: it was changed after signing, or forged"
    if "expired at time of signing" in low or "not valid at validation time" in low:
        reason = "its certificate was not valid (expired) when the signature was logged"
        hint = "do not use this evidence: a valid signer logs within its certificate's lifetime"
    elif "certificate chain" in low:
        reason = f"its certificate does not chain to a Fulcio CA of {root}"
        hint = ("set trusted_root in the trust file to the Sigstore instance that signed it "
                "(leave it out for the public-good instance)")
    elif "sct" in low:
        reason = f"its certificate's SCT does not verify with the CT logs of {root}"
        hint = tampered
    elif "dsse: invalid signature" in low:
        reason = "its signature does not match the signed payload (tampered?)"
        hint = tampered
    elif "log entry" in low and ("does not match" in low or "inconsistent" in low):
        reason = "its transparency-log entry does not match the signed payload (tampered?)"
        hint = tampered
    elif "invalid log entry" in low or "inclusion" in low or "checkpoint" in low:
        reason = f"its transparency-log entry does not verify with the Rekor keys of {root}"
        hint = tampered
    elif "verified time" in low or "timestamp" in low:
        reason = "it has no verifiable signing time"
        hint = tampered
    else:
        reason, hint = "Sigstore verification failed", tampered
    return SignatureError(f"{what}: {reason} ({text})", hint=hint)


def verify_keyless(document_bytes: bytes, trust: KeylessTrust, role: Role, what: str
                   ) -> tuple[TrustedKey, str, bytes]:
    """Verify one certificate bundle; return its signer, payload type and payload.

    Raises:
        BundleError: not a valid Sigstore bundle.
        SignatureError: no trusted identity with ``role`` signed it, or any
            Sigstore check failed (chain, SCT, log entry, times, signature).
        TrustError: the trusted root cannot be loaded.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle as SigstoreBundle

    document = json.loads(document_bytes)
    if not trust.sigstore:
        raise SignatureError(
            f"{what} is keyless-signed with {_unverified_identity(document)}, and "
            f"{trust.source} trusts no Sigstore identity",
            hint="verify with a trust file that lists the signer under 'sigstore'")
    try:
        bundle = SigstoreBundle.from_json(document_bytes)
    except (SigstoreError, ValueError) as exc:
        raise BundleError(f"{what} is not a valid Sigstore bundle: {one_line(exc)}") from exc
    verifier, root = _verifier(trust)
    policy = _RulesPolicy(trust.sigstore)
    try:
        with quiet_sigstore():
            payload_type, payload = verifier.verify_dsse(bundle, policy)
    except SigstoreError as exc:
        if policy.seen is not None and not policy.matched:
            raise _no_rule_matched(what, policy.seen, trust) from exc
        raise _failure(what, exc, root) from exc
    cert = bundle.signing_certificate
    log_index, integrated_time = _log_position(document)
    identity = certificate_identity(cert, log_index=log_index, integrated_time=integrated_time)
    holding = [rule for rule in policy.matched if role in rule.roles]
    if not holding:
        names = ", ".join(repr(rule.label) for rule in policy.matched)
        raise SignatureError(
            f"{what} is signed by {identity.subject}, whose trust rule {names} lacks the "
            f"{role} role", hint=f"give that sigstore entry the {role} role in the trust file")
    rule = holding[0]
    try:
        key = PublicKey.from_key(cert.public_key())
    except KeyMaterialError as exc:
        raise SignatureError(f"{what}: unsupported certificate key: {exc}") from exc
    return (TrustedKey(name=rule.name or identity.subject, key=key, roles=rule.roles,
                       identity=identity), payload_type, payload)
