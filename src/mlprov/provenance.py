"""SLSA Provenance v1 for a training run.

Predicate ``https://slsa.dev/provenance/v1`` (https://slsa.dev/spec/v1.1/provenance)
with mlprov's build type ``https://mlprov.dev/buildtypes/training/v1``
(documented in ``docs/buildtype-training-v1.md``):

- ``externalParameters``: ``name`` (the model's name) and the identity inputs
  ``code``, ``data``, ``config``, ``seeds``, exactly as hashed into the identity.
- ``internalParameters``: ``identity`` (``mlid:sha256:...``), ``python``, ``platform``.
- ``resolvedDependencies``: the code commit (``gitCommit``) and each dataset (``sha256``).
- ``runDetails``: builder id and mlprov version, invocation id, start and finish times,
  and byproducts such as the metrics file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlprov._internal.documents import (
    BUILD_TYPE,
    DEFAULT_BUILDER_ID,
    SLSA_PROVENANCE_V1,
    provenance_document,
    rfc3339,
)
from mlprov._internal.provenance_reader import ProvenanceFacts
from mlprov._internal.provenance_reader import read_provenance as read_provenance_facts
from mlprov.identity import IdentityInputs, compute_identity
from mlprov.statements import MlprovModel, ResourceDescriptor, Statement

__all__ = [
    "BUILD_TYPE",
    "DEFAULT_BUILDER_ID",
    "SLSA_PROVENANCE_V1",
    "TrainingProvenance",
    "build_provenance",
    "read_provenance",
    "rfc3339",
]


class TrainingProvenance(MlprovModel):
    """What mlprov reads back out of a verified provenance statement."""

    name: str
    identity: str
    inputs: IdentityInputs
    builder_id: str
    invocation_id: str | None = None
    started_on: str | None = None
    finished_on: str | None = None
    predicate: dict[str, Any]


def build_provenance(*, name: str, root: str, inputs: IdentityInputs,
                     started_on: dt.datetime, finished_on: dt.datetime,
                     builder_id: str = DEFAULT_BUILDER_ID, invocation_id: str | None = None,
                     byproducts: list[ResourceDescriptor] | None = None,
                     parents: list[ResourceDescriptor] | None = None) -> Statement:
    """Build the SLSA Provenance v1 statement for a model with root digest ``root``.

    ``parents`` are the parent models' descriptors
    (:meth:`mlprov.lineage.ParentRecord.descriptor`), appended to
    ``resolvedDependencies``; they are not part of the identity. The model of
    :func:`mlprov._internal.documents.provenance_document` (the predicate is built
    there, without pydantic, for ``mlprov attest``).
    """
    compute_identity(inputs)  # refuses what is not an IdentityInputs, as it always did
    document = provenance_document(
        name=name, root=root, inputs=inputs, started_on=started_on, finished_on=finished_on,
        builder_id=builder_id, invocation_id=invocation_id,
        byproducts=[b.to_json_dict() for b in byproducts or []],
        parents=[p.to_json_dict() for p in parents or []])
    return Statement.model_validate(document)


def read_provenance(statement: Statement, *, what: str) -> TrainingProvenance:
    """Read mlprov's training provenance out of a verified statement.

    Unknown ``externalParameters`` are rejected, as SLSA asks of verifiers. Read by
    :func:`mlprov._internal.provenance_reader.read_provenance` (which ``attest`` uses
    without pydantic), as this model.

    Raises:
        BundleError: not SLSA v1, not mlprov's build type, or malformed fields.
    """
    return training_provenance(read_provenance_facts(statement, what=what))


def training_provenance(facts: ProvenanceFacts) -> TrainingProvenance:
    """The model of provenance facts (what :func:`read_provenance` builds from a statement).

    ``mlprov.verify`` reads the facts without pydantic; ``Verdict.provenance`` is this.
    """
    return TrainingProvenance(
        name=facts.name, identity=facts.identity,
        inputs=IdentityInputs.model_validate(facts.inputs, from_attributes=True),
        builder_id=facts.builder_id, invocation_id=facts.invocation_id,
        started_on=facts.started_on, finished_on=facts.finished_on, predicate=facts.predicate)
