"""in-toto Statement v1 and its parts, as pydantic models.

Spec: https://github.com/in-toto/attestation/tree/main/spec/v1. What mlprov
emits is strict (``extra="forbid"``); what it reads ignores unknown fields, as
the spec requires of consumers. Statements are serialised as RFC 8785 canonical
JSON before signing; a verified statement keeps the exact bytes that were signed.

Verification reads a signed statement with the pydantic-free
:func:`mlprov._internal.intoto.read_statement`, which accepts exactly what
:class:`Statement` accepts; the model is built from the same document when a
caller asks for it (``VerifiedStatement.statement``), and gives the error message
when the reader refuses.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import (
    VERSION,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlprov._internal.intoto import (
    MLPROV_PREDICATE_PREFIX,
    PAYLOAD_TYPE_IN_TOTO,
    STATEMENT_TYPE_V1,
    bad_digest,
)
from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import BundleError, InputError

__all__ = [
    "MLPROV_PREDICATE_PREFIX",
    "PAYLOAD_TYPE_IN_TOTO",
    "STATEMENT_TYPE_V1",
    "MlprovModel",
    "ResourceDescriptor",
    "Statement",
    "parse_statement",
    "sha256_descriptor",
    "statement_from_document",
]


#: Build each model's validator on its first use, only where pydantic does that under
#: a lock (2.14, https://github.com/pydantic/pydantic/pull/13438): before, threads
#: first using a model at once could validate with its parent's validator
#: (https://github.com/pydantic/pydantic/issues/13419), so older versions build at import.
_DEFER_BUILD: Final = tuple(int(part) for part in VERSION.split(".")[:2]) >= (2, 14)


class MlprovModel(BaseModel):
    """Shared base: frozen, no unknown fields, camelCase aliases where the spec has them.

    ``defer_build``: a model's validator and serialiser are built on its first use
    (validation, ``model_dump``, ``model_json_schema``), not when its module is
    imported, so a command pays only for the models it uses (``attest`` without
    ``--card`` or ``--metrics`` builds neither the card input nor the eval models).
    Subclasses that set their own ``model_config`` inherit it (pydantic merges them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              defer_build=_DEFER_BUILD)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the JSON form (aliases, no unset optional fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def canonical_bytes(self) -> bytes:
        """Return the RFC 8785 canonical JSON bytes of this model."""
        return canonical_json(self.to_json_dict())


class ResourceDescriptor(MlprovModel):
    """An artefact by name, URI and digests (in-toto ResourceDescriptor v1)."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    name: str | None = None
    uri: str | None = None
    digest: dict[str, str] | None = None
    content: str | None = None
    download_location: str | None = Field(default=None, alias="downloadLocation")
    media_type: str | None = Field(default=None, alias="mediaType")
    annotations: dict[str, Any] | None = None

    @field_validator("digest")
    @classmethod
    def _digests_are_hex(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        problem = bad_digest(value or {})
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _has_locator(self) -> ResourceDescriptor:
        if not (self.uri or self.digest or self.content):
            raise ValueError("a resource descriptor needs one of uri, digest, content")
        return self


class Statement(MlprovModel):
    """An in-toto Statement v1: subjects by digest, a typed predicate."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(
        default=STATEMENT_TYPE_V1, alias="_type")
    subject: list[ResourceDescriptor] = Field(min_length=1)
    predicate_type: str = Field(alias="predicateType", min_length=1)
    predicate: dict[str, Any] = Field(default_factory=dict)

    @field_validator("subject")
    @classmethod
    def _subjects_have_digests(cls, value: list[ResourceDescriptor]) -> list[ResourceDescriptor]:
        if any(not s.digest for s in value):
            raise ValueError("every subject needs a digest")
        return value

    def subject_sha256(self) -> set[str]:
        """Return the SHA-256 digests of all subjects."""
        return {s.digest["sha256"] for s in self.subject if s.digest and "sha256" in s.digest}


def sha256_descriptor(name: str, sha256: str, **extra: Any) -> ResourceDescriptor:
    """Return a descriptor naming ``name`` by its SHA-256 digest."""
    return ResourceDescriptor(name=name, digest={"sha256": sha256}, **extra)


def parse_statement(payload: bytes, *, what: str) -> Statement:
    """Parse verified payload bytes as an in-toto Statement v1.

    Raises:
        BundleError: the payload is not JSON or not a Statement v1.
    """
    try:
        document = loads_strict(payload, what=what)
    except InputError as exc:
        raise BundleError(str(exc)) from exc
    return statement_from_document(document, what=what)


def statement_from_document(document: Any, *, what: str) -> Statement:
    """A parsed JSON document (of payload ``what``) as an in-toto Statement v1.

    Raises:
        BundleError: not a Statement v1 (the first problem pydantic found).
    """
    try:
        return Statement.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "statement"
        raise BundleError(f"{what} is not an in-toto Statement v1: {where}: {first['msg']}") \
            from exc
