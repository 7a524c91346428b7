"""``evidence.json``'s pydantic model, :class:`mlprov.evidence.EvidenceIndex`.

Apart from :mod:`mlprov.evidence` so that importing that module (every attest and
verify does) does not import pydantic: the model loads when it is first named
(``mlprov.evidence.EvidenceIndex``) or an index is read (:func:`mlprov.evidence.read_index`).
"""

from __future__ import annotations

from pydantic import Field

from mlprov._internal.evidence_names import EVIDENCE_SCHEMA
from mlprov.statements import MlprovModel

__all__ = ["EvidenceIndex"]


class EvidenceIndex(MlprovModel):
    """The index of an evidence directory."""

    schema_: str = Field(default=EVIDENCE_SCHEMA, alias="schema")
    name: str
    identity: str
    root_digest: str = Field(alias="rootDigest")
    files: dict[str, str] = Field(description="evidence file name -> sha256:<hex>")
    mlprov_version: str = Field(alias="mlprovVersion")
