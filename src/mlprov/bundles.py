"""Signed statements on disk: Sigstore bundles, plain DSSE envelopes, in-toto JSONL.

mlprov writes Sigstore bundle v0.3 JSON holding a DSSE envelope
(https://github.com/sigstore/protobuf-specs, ``sigstore_bundle.proto``); key
signatures carry ``verificationMaterial.publicKey.hint`` (the key id) and no
transparency-log entry, as OMS writes them. Sigstore keyless signatures carry a
Fulcio ``certificate`` and a Rekor entry. It reads all of those, plain DSSE
envelope JSON and ``.intoto.jsonl`` bundles (https://github.com/in-toto/attestation/blob/main/spec/v1/bundle.md).

Verification order follows DSSE: decode, check the signature over PAE with a
trusted key holding the needed role (for a certificate bundle: sigstore-python's
verifier and the trust file's identity rules), then check the payload type,
then parse the exact signed bytes. Nothing is parsed as a statement before that.

Envelopes and statements are read by :mod:`mlprov._internal.intoto`, without
pydantic; the pydantic schemas (:mod:`mlprov._signing.schemas`,
:class:`mlprov.statements.Statement`) own the rules, word the error when a
document is refused, and build ``VerifiedStatement.statement`` when asked for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from mlprov._internal.intoto import (
    PAYLOAD_TYPE_IN_TOTO,
    Bundle,
    Envelope,
    EnvelopeSignature,
    StatementFields,
    read_bundle,
    read_envelope,
    read_statement,
)
from mlprov._internal.readers import MAX_EVIDENCE_BYTES, read_bytes
from mlprov._signing.interface import BUNDLE_MEDIA_TYPE
from mlprov.canonical import loads_strict
from mlprov.errors import BundleError, InputError, SignatureError
from mlprov.signing import BundleSigner, b64decode_any, pae
from mlprov.trust import Role, Trust, TrustedKey

if TYPE_CHECKING:
    from pydantic import ValidationError

    from mlprov.evidence import EvidenceSource
    from mlprov.statements import Statement

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "Bundle",
    "Envelope",
    "EnvelopeSignature",
    "VerifiedStatement",
    "parse_statement_fields",
    "read_envelopes",
    "sign_document",
    "sign_statement",
    "verify_statement_bytes",
    "verify_statement_file",
    "verify_statement_in",
]

#: Bundle media types this version reads (sigstore clients accept all of these).
KNOWN_BUNDLE_MEDIA_TYPES = frozenset({
    BUNDLE_MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
})
@dataclass(frozen=True)
class VerifiedStatement:
    """A statement whose signature checked out, with who signed it.

    ``parsed`` holds the statement's fields, read without pydantic;
    :attr:`statement` is the pydantic model of the same document, built on first use.
    """

    parsed: StatementFields
    payload: bytes
    signer: TrustedKey
    path: Path
    file_sha256: str

    @cached_property
    def statement(self) -> Statement:
        """The verified statement as a :class:`mlprov.statements.Statement`."""
        from mlprov.statements import statement_from_document

        return statement_from_document(self.parsed.document, what=f"{self.path.name} payload")


def sign_statement(statement: Statement, signer: BundleSigner) -> bytes:
    """Sign ``statement`` (canonical JSON) into Sigstore bundle v0.3 JSON bytes.

    ``signer`` is a key (:class:`mlprov.signing.KeySigner`: a ``publicKey``
    bundle) or Sigstore keyless (:func:`mlprov.signing.make_signer`: a
    certificate bundle with a transparency-log entry).
    """
    return signer.sign_statement(statement)


def sign_document(document: dict[str, Any], signer: BundleSigner) -> bytes:
    """:func:`sign_statement` for a statement given as its JSON document (no pydantic).

    The document is checked as an in-toto Statement v1 and signed as the same
    canonical bytes its :class:`~mlprov.statements.Statement` model would give.

    Raises:
        BundleError: not an in-toto Statement v1 (the model's own message).
        InputError: a value canonical JSON cannot carry.
    """
    return signer.sign_document(document)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    return f"{where}: {first['msg']}"


def _refused(kind: str, document: Any, what: str) -> NoReturn:
    """Raise the schema's error for a document the pydantic-free reader refused."""
    from pydantic import ValidationError

    from mlprov._signing.schemas import BundleModel, EnvelopeModel

    model = BundleModel if kind == "bundle" else EnvelopeModel
    try:
        model.model_validate(document)
    except ValidationError as exc:
        raise BundleError(f"{what} is malformed: {_first_error(exc)}") from exc
    raise _disagree(what)


def _disagree(what: str) -> BundleError:
    # tests/test_intoto.py proves this cannot happen; refuse rather than guess.
    return BundleError(f"{what}: mlprov's schema accepts what its reader refuses (a bug)",
                       hint="please report it; the document was not used")


def _read_statement(payload: bytes, what: str) -> StatementFields:
    """The exact signed bytes as an in-toto Statement v1 (pydantic only to word a refusal).

    Raises:
        BundleError: not JSON, or not a Statement v1.
    """
    try:
        document = loads_strict(payload, what=what)
    except InputError as exc:
        raise BundleError(str(exc)) from exc
    fields = read_statement(document)
    if fields is None:
        from mlprov.statements import statement_from_document

        statement_from_document(document, what=what)
        raise _disagree(what)
    return fields


def parse_statement_fields(payload: bytes, *, what: str) -> StatementFields:
    """:func:`mlprov.statements.parse_statement` without building the pydantic model.

    The same acceptance and errors (the model words a refusal); for readers that
    need the fields only, such as a lineage walk without a trust anchor.

    Raises:
        BundleError: not JSON, or not a Statement v1.
    """
    return _read_statement(payload, what)


class _Signed(NamedTuple):
    """One envelope found in a file, with what verifying it needs.

    ``keyless`` is a certificate bundle's exact JSON, for sigstore-python.
    """

    envelope: Envelope
    hint: str | None
    keyless: bytes | None = None


def _envelope_from_document(document: Any, raw: bytes, what: str) -> _Signed:
    """Return the envelope of a bundle or bare DSSE document, and the key hint."""
    if not isinstance(document, dict):
        raise BundleError(f"{what} is not a JSON object")
    if "mediaType" in document:
        media_type = document["mediaType"]
        if media_type not in KNOWN_BUNDLE_MEDIA_TYPES:
            raise BundleError(f"{what} has an unknown bundle media type {media_type!r}",
                              hint="mlprov reads Sigstore bundles v0.1-v0.3")
        if "dsseEnvelope" not in document:
            raise BundleError(f"{what} holds no DSSE envelope (a message signature?)")
        bundle = read_bundle(document) or _refused("bundle", document, what)
        material = bundle.verification_material
        if "publicKey" not in material:
            if "certificate" in material or "x509CertificateChain" in material:
                return _Signed(bundle.dsse_envelope, None, raw)
            raise BundleError(f"{what} names neither a public key nor a certificate")
        hint = material["publicKey"].get("hint") if isinstance(
            material["publicKey"], dict) else None
        return _Signed(bundle.dsse_envelope, hint)
    if "payloadType" in document:
        envelope = read_envelope(document) or _refused("envelope", document, what)
        return _Signed(envelope, envelope.signatures[0].keyid or None)
    raise BundleError(f"{what} is neither a Sigstore bundle nor a DSSE envelope")


def read_envelopes(data: bytes, *, what: str) -> list[tuple[Envelope, str | None]]:
    """Parse a bundle, a DSSE envelope or a JSON Lines in-toto bundle (no verification).

    Raises:
        BundleError: the bytes are none of those.
    """
    return [(signed.envelope, signed.hint) for signed in _read_signed(data, what)]


def _read_signed(data: bytes, what: str) -> list[_Signed]:
    try:
        return [_envelope_from_document(loads_strict(data, what=what), data, what)]
    except InputError as exc:
        if isinstance(exc, BundleError):
            raise
        whole_error = exc
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise BundleError(str(exc)) from exc
    envelopes = []
    for number, line in enumerate(lines, 1):
        try:
            envelopes.append(_envelope_from_document(
                loads_strict(line, what=f"{what} line {number}"), line,
                f"{what} line {number}"))
        except (BundleError, InputError):
            continue  # in-toto bundles: unknown lines MUST be ignored
    if not envelopes:
        # Not JSON Lines either: report why the document as a whole did not parse
        # (a truncated or duplicate-key bundle is more likely than a junk-only JSONL).
        raise BundleError(f"{whole_error} (nor is it JSON Lines holding a DSSE envelope)"
                          ) from whole_error
    return envelopes


def _verify_envelope(envelope: Envelope, hint: str | None, trust: Trust, role: Role,
                     what: str) -> tuple[TrustedKey, bytes]:
    payload = b64decode_any(envelope.payload, what=f"{what} payload")
    message = pae(envelope.payload_type, payload)
    signatures = [b64decode_any(s.sig, what=f"{what} signature") for s in envelope.signatures]
    signed_by: list[TrustedKey] = []
    for candidate in trust.candidates(hint):
        if any(candidate.key.verify(sig, message) for sig in signatures):
            if role in candidate.roles:
                return candidate, payload
            signed_by.append(candidate)
    if signed_by:
        names = ", ".join(k.name for k in signed_by)
        raise SignatureError(f"{what} is signed by {names}, which lacks the {role} role",
                             hint=f"give {names} the {role} role in the trust file, "
                                  "or re-sign with a key that holds it")
    raise SignatureError(f"{what} is not signed by any key trusted by {trust.source}")


def _is_in_toto_payload_type(payload_type: str) -> bool:
    """``application/vnd.in-toto+json`` or ``application/vnd.in-toto.<predicate>+json``."""
    if payload_type == PAYLOAD_TYPE_IN_TOTO:
        return True
    prefix, suffix = "application/vnd.in-toto.", "+json"
    middle = payload_type[len(prefix):-len(suffix)]
    return (payload_type.startswith(prefix) and payload_type.endswith(suffix)
            and bool(middle) and "/" not in middle and "+" not in middle)


def verify_statement_file(path: Path, trust: Trust, role: Role, *,
                          predicate_type: str | None = None) -> VerifiedStatement:
    """Verify a signed statement file and return the statement with its signer.

    Checks, in order: the file parses as a known bundle kind; a signature over
    PAE verifies with a trusted key holding ``role`` (a certificate bundle:
    sigstore-python's verifier against the trust's Sigstore root, and an
    identity rule holding ``role``); the payload type is in-toto; the signed
    bytes are an in-toto Statement v1; the predicate type is ``predicate_type``
    when given. A keyless signer's identity is on ``result.signer.identity``.

    Raises:
        BundleError: missing, unreadable or malformed file, or wrong types.
        SignatureError: no trusted signer with ``role``.
        TrustError: the Sigstore trusted root cannot be loaded.
    """
    what = path.name
    try:
        data = read_bytes(path, what="evidence file", limit=MAX_EVIDENCE_BYTES,
                          error=BundleError)
    except FileNotFoundError as exc:
        raise BundleError(f"evidence file missing: {path}") from exc
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}") from exc
    return verify_statement_bytes(data, trust, role, what=what, predicate_type=predicate_type,
                                  path=path)


def verify_statement_in(source: EvidenceSource, name: str, trust: Trust, role: Role, *,
                        predicate_type: str | None = None) -> VerifiedStatement:
    """:func:`verify_statement_file` for the file ``name`` of an evidence source.

    The source bounds the read and refuses unsafe names and (in a directory)
    symlinks; ``result.path`` is ``source.path_of(name)``.

    Raises:
        BundleError: missing, unreadable or malformed file, or wrong types.
        SignatureError: no trusted signer with ``role``.
        TrustError: the Sigstore trusted root cannot be loaded.
    """
    try:
        data = source.read(name, what="evidence file", limit=MAX_EVIDENCE_BYTES,
                           error=BundleError)
    except FileNotFoundError as exc:
        raise BundleError(f"evidence file missing: {source.describe(name)}") from exc
    return verify_statement_bytes(data, trust, role, what=name, predicate_type=predicate_type,
                                  path=source.path_of(name))


def verify_statement_bytes(data: bytes, trust: Trust, role: Role, *, what: str,
                           predicate_type: str | None = None,
                           path: Path | None = None) -> VerifiedStatement:
    """:func:`verify_statement_file` for a signed statement held in memory (e.g. a blob).

    ``what`` names it in messages; ``result.path`` is ``path``, else ``Path(what)``.
    Key and certificate (keyless) bundles verify alike, with ``role`` required.
    """
    failures: list[Exception] = []
    for envelope, hint, keyless in _read_signed(data, what):
        try:
            if keyless is not None:
                # sigstore (and this verifier, with logging) loads only now, when a
                # certificate bundle shows up: signing and key bundles never need it.
                from mlprov._signing.verify_keyless import verify_keyless

                signer, payload_type, payload = verify_keyless(keyless, trust, role, what)
            else:
                signer, payload = _verify_envelope(envelope, hint, trust, role, what)
                payload_type = envelope.payload_type
        except SignatureError as exc:
            failures.append(exc)
            continue
        # In a JSON Lines bundle other envelopes may carry anything: a failure
        # here only rules this envelope out (in-toto bundle.md: ignore unknowns).
        if not _is_in_toto_payload_type(payload_type):
            failures.append(BundleError(f"{what} has payload type {payload_type!r}, "
                                        f"expected {PAYLOAD_TYPE_IN_TOTO!r}"))
            continue
        try:
            statement = _read_statement(payload, f"{what} payload")
        except BundleError as exc:
            failures.append(exc)
            continue
        if predicate_type is not None and statement.predicate_type != predicate_type:
            failures.append(BundleError(
                f"{what} has predicate type {statement.predicate_type!r}, "
                f"expected {predicate_type!r}"))
            continue
        return VerifiedStatement(parsed=statement, payload=payload, signer=signer,
                                 path=path if path is not None else Path(what),
                                 file_sha256=hashlib.sha256(data).hexdigest())
    assert failures
    raise failures[0]
