"""DSSE envelopes, Sigstore bundles and in-toto Statements v1, read without pydantic.

The pydantic models own the rules: :class:`mlprov.statements.Statement` and the
bundle schemas in :mod:`mlprov._signing.schemas`. The readers here accept exactly
the documents those models accept (in their lax mode, with ``populate_by_name``:
an alias wins, a field's Python name counts only when the alias is absent) and
return None where a model refuses, so the caller asks the model for its error
message. ``tests/test_intoto.py`` holds both to the same answers on arbitrary and
hostile documents (hypothesis). They exist so that verifying a signed statement
(``mlprov resolve`` checks the registry's signed head and a decision) does not
pay for importing pydantic and building its schemas (issue 16).

Spec: https://github.com/in-toto/attestation/tree/main/spec/v1 and
https://github.com/secure-systems-lab/dsse/blob/master/envelope.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = [
    "HEX_LENGTHS",
    "MLPROV_PREDICATE_PREFIX",
    "PAYLOAD_TYPE_IN_TOTO",
    "STATEMENT_TYPE_V1",
    "Bundle",
    "Envelope",
    "EnvelopeSignature",
    "StatementFields",
    "StatementLike",
    "Subject",
    "bad_digest",
    "read_bundle",
    "read_envelope",
    "read_statement",
]

STATEMENT_TYPE_V1: Final = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE_IN_TOTO: Final = "application/vnd.in-toto+json"
#: mlprov's own predicate types live under this prefix, each versioned:
#: ``<prefix>eval/v1``, ``<prefix>review/v1``, ... (documented in docs/predicates.md).
MLPROV_PREDICATE_PREFIX: Final = "https://mlprov.dev/predicates/"

_HEX = re.compile(r"\A[0-9a-f]+\Z")
#: Lengths of the hex digests the in-toto DigestSet names with a fixed size.
HEX_LENGTHS: Final = {"sha256": 64, "sha384": 96, "sha512": 128, "sha1": 40, "sha224": 56,
                      "sha512_256": 64, "sha3_256": 64, "sha3_384": 96, "sha3_512": 128}


def bad_digest(digest: dict[str, str]) -> str | None:
    """Why a DigestSet is refused (a known algorithm with a malformed value), else None."""
    for algorithm, hexdigest in digest.items():
        expected = HEX_LENGTHS.get(algorithm)
        if expected is not None and (len(hexdigest) != expected or not _HEX.match(hexdigest)):
            return f"bad {algorithm} digest {hexdigest!r}"
    return None


# -- the model's field rules ---------------------------------------------------------------

_MISSING: Any = object()


def _get(document: dict[str, Any], alias: str, name: str) -> Any:
    """A field's value as pydantic reads it with ``populate_by_name``: the alias wins."""
    if alias in document:
        return document[alias]
    return document.get(name, _MISSING)


def _utf8(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate).

    pydantic-core requires it of constrained strings and of extra field names.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _nonempty_text(value: Any) -> bool:
    """``str = Field(min_length=1)``."""
    return isinstance(value, str) and _utf8(value) and len(value) >= 1


def _optional_str(value: Any) -> bool:
    """``str | None = None``."""
    return value is _MISSING or value is None or isinstance(value, str)


def _extras_named_well(document: dict[str, Any], fields: tuple[tuple[str, str], ...]) -> bool:
    """``extra="allow"``: every key the fields do not read must be valid Unicode."""
    used = {alias if alias in document else name for alias, name in fields}
    return all(_utf8(key) for key in document if key not in used)


# -- statements ----------------------------------------------------------------------------

_DESCRIPTOR_FIELDS = (("name", "name"), ("uri", "uri"), ("digest", "digest"),
                      ("content", "content"), ("downloadLocation", "download_location"),
                      ("mediaType", "media_type"), ("annotations", "annotations"))
_STATEMENT_FIELDS = (("_type", "type_"), ("subject", "subject"),
                     ("predicateType", "predicate_type"), ("predicate", "predicate"))


@dataclass(frozen=True)
class Subject:
    """A statement's subject: its name (if any) and its digests (never empty)."""

    name: str | None
    digest: dict[str, str]


class SubjectLike(Protocol):
    """A statement's subject, as :class:`Subject` and ``ResourceDescriptor`` both hold it."""

    @property
    def name(self) -> str | None: ...
    @property
    def digest(self) -> dict[str, str] | None: ...


class StatementLike(Protocol):
    """What readers of a verified statement use: :class:`StatementFields` or the pydantic model.

    Readers typed on it (the OMS manifest, lineage's parents) run on the fields
    a verifier already holds, without building :class:`mlprov.statements.Statement`.
    """

    @property
    def subject(self) -> Sequence[SubjectLike]: ...
    @property
    def predicate_type(self) -> str: ...
    @property
    def predicate(self) -> dict[str, Any]: ...
    def subject_sha256(self) -> set[str]: ...


@dataclass(frozen=True)
class StatementFields:
    """What a Statement v1 document holds, once :func:`read_statement` accepted it.

    ``document`` is the parsed JSON itself (the model validates the same one).
    """

    document: dict[str, Any]
    subject: tuple[Subject, ...]
    predicate_type: str
    predicate: dict[str, Any]

    def subject_sha256(self) -> set[str]:
        """The SHA-256 digests of all subjects (as ``Statement.subject_sha256``)."""
        return {s.digest["sha256"] for s in self.subject if "sha256" in s.digest}


def _subject(item: Any) -> Subject | None:
    """A ``ResourceDescriptor`` that a statement accepts as subject, else None."""
    if not isinstance(item, dict):
        return None
    values = {name: _get(item, alias, name) for alias, name in _DESCRIPTOR_FIELDS}
    if not all(_optional_str(values[k]) for k in ("name", "uri", "content",
                                                  "download_location", "media_type")):
        return None
    digest, annotations = values["digest"], values["annotations"]
    if digest is not _MISSING and digest is not None and (
            not isinstance(digest, dict) or not all(isinstance(v, str) for v in digest.values())
            or bad_digest(digest) is not None):
        return None
    if annotations is not _MISSING and annotations is not None \
            and not isinstance(annotations, dict):
        return None
    if not _extras_named_well(item, _DESCRIPTOR_FIELDS):
        return None
    # Every subject needs a digest (which also satisfies "one of uri, digest, content").
    if not isinstance(digest, dict) or not digest:
        return None
    name = values["name"]
    return Subject(name=None if name is _MISSING else name, digest=digest)


def read_statement(document: Any) -> StatementFields | None:
    """The fields of ``document`` if ``Statement.model_validate`` accepts it, else None."""
    if not isinstance(document, dict):
        return None
    values = {name: _get(document, alias, name) for alias, name in _STATEMENT_FIELDS}
    kind, subjects = values["type_"], values["subject"]
    if kind is not _MISSING and not (isinstance(kind, str) and kind == STATEMENT_TYPE_V1):
        return None
    if not isinstance(subjects, list) or not subjects:
        return None
    parsed = tuple(_subject(item) for item in subjects)
    predicate_type, predicate = values["predicate_type"], values["predicate"]
    if not _nonempty_text(predicate_type):
        return None
    if predicate is _MISSING:
        predicate = {}
    if not isinstance(predicate, dict) or not _extras_named_well(document, _STATEMENT_FIELDS):
        return None
    checked = tuple(s for s in parsed if s is not None)
    if len(checked) != len(parsed):
        return None
    return StatementFields(document=document, subject=checked, predicate_type=predicate_type,
                           predicate=predicate)


# -- envelopes and bundles (extra fields ignored) ------------------------------------------

@dataclass(frozen=True)
class EnvelopeSignature:
    """One DSSE signature: the signature bytes (base64) and an untrusted key hint."""

    sig: str
    keyid: str | None = None


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the payload (base64), its type, one or more signatures."""

    payload: str
    payload_type: str
    signatures: tuple[EnvelopeSignature, ...]


@dataclass(frozen=True)
class Bundle:
    """A Sigstore bundle carrying a DSSE envelope."""

    media_type: str
    verification_material: dict[str, Any]
    dsse_envelope: Envelope


def _signature(item: Any) -> EnvelopeSignature | None:
    if not isinstance(item, dict):
        return None
    sig, keyid = item.get("sig", _MISSING), item.get("keyid", _MISSING)
    if not _nonempty_text(sig) or not _optional_str(keyid):
        return None
    return EnvelopeSignature(sig=sig, keyid=None if keyid is _MISSING else keyid)


def read_envelope(document: Any) -> Envelope | None:
    """``document`` as a DSSE envelope if the schema accepts it, else None."""
    if not isinstance(document, dict):
        return None
    payload = document.get("payload", _MISSING)
    payload_type = _get(document, "payloadType", "payload_type")
    items = document.get("signatures", _MISSING)
    if not isinstance(payload, str) or not _nonempty_text(payload_type) \
            or not isinstance(items, list) or not items:
        return None
    signatures = tuple(_signature(item) for item in items)
    checked = tuple(s for s in signatures if s is not None)
    if len(checked) != len(signatures):
        return None
    return Envelope(payload=payload, payload_type=payload_type, signatures=checked)


def read_bundle(document: Any) -> Bundle | None:
    """``document`` as a Sigstore bundle with a DSSE envelope if the schema accepts it."""
    if not isinstance(document, dict):
        return None
    media_type = _get(document, "mediaType", "media_type")
    material = _get(document, "verificationMaterial", "verification_material")
    envelope = read_envelope(_get(document, "dsseEnvelope", "dsse_envelope"))
    if not isinstance(media_type, str) or not isinstance(material, dict) or envelope is None:
        return None
    return Bundle(media_type=media_type, verification_material=material,
                  dsse_envelope=envelope)
