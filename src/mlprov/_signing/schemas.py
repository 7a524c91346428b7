"""The pydantic schemas of what the signing side reads: trust files and bundles.

Imported only where a document is checked against them: loading a trust file or a
registry's keyless rules, and (for its error message) a bundle the pydantic-free
reader in :mod:`mlprov._internal.intoto` refused. Verifying a key-signed statement
does not import pydantic (issue 16); ``tests/test_intoto.py`` proves the reader and
these models accept the same documents. Like every mlprov model
(:class:`~mlprov.statements.MlprovModel`), they build their validators on first use
where pydantic does that safely (2.14 on).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlprov._signing.constants import Role
from mlprov.statements import MlprovModel

_DEFER_BUILD = MlprovModel.model_config.get("defer_build", False)  # as every mlprov model

__all__ = ["BundleModel", "EnvelopeModel", "EnvelopeSignatureModel", "KeyEntry",
           "SigstoreEntry", "TrustFile"]


class SigstoreEntry(BaseModel):
    """A trust file's ``sigstore`` entry, as written (also a snapshot's rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=_DEFER_BUILD)

    name: str | None = Field(default=None, min_length=1)
    issuer: str = Field(min_length=1)
    subject: str | None = Field(default=None, min_length=1)
    subject_regex: str | None = Field(default=None, min_length=1)
    roles: list[Role] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_subject(self) -> SigstoreEntry:
        if (self.subject is None) == (self.subject_regex is None):
            raise ValueError("give exactly one of 'subject' or 'subject_regex'")
        if self.subject_regex is not None:
            try:
                re.compile(self.subject_regex)
            except (re.error, OverflowError, RecursionError) as exc:  # "a{99999999999999999999}"
                raise ValueError(f"subject_regex is not a valid regular expression: {exc}"
                                 ) from exc
        return self


class KeyEntry(BaseModel):
    """A trust file's ``keys`` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=_DEFER_BUILD)

    name: str = Field(min_length=1)
    public_key: str = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)


class TrustFile(BaseModel):
    """A trust file (``version: 1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=_DEFER_BUILD)

    version: Literal[1] = 1
    keys: list[KeyEntry] = Field(default_factory=list)
    sigstore: list[SigstoreEntry] = Field(default_factory=list)
    trusted_root: str | None = Field(default=None, min_length=1)


_READ = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class EnvelopeSignatureModel(MlprovModel):
    """One DSSE signature: the signature bytes (base64) and an untrusted key hint."""

    model_config = _READ
    sig: str = Field(min_length=1)
    keyid: str | None = None  # protobuf JSON may omit it or write null


class EnvelopeModel(MlprovModel):
    """A DSSE envelope."""

    model_config = _READ
    payload: str
    payload_type: str = Field(alias="payloadType", min_length=1)
    signatures: list[EnvelopeSignatureModel] = Field(min_length=1)


class BundleModel(MlprovModel):
    """A Sigstore bundle carrying a DSSE envelope."""

    model_config = _READ
    media_type: str = Field(alias="mediaType")
    verification_material: dict[str, Any] = Field(alias="verificationMaterial")
    dsse_envelope: EnvelopeModel = Field(alias="dsseEnvelope")
