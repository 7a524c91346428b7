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

from pydantic import ValidationError

from mlprov._internal.documents import (
    BUILD_TYPE,
    DEFAULT_BUILDER_ID,
    SLSA_PROVENANCE_V1,
    provenance_document,
    rfc3339,
)
from mlprov.errors import BundleError
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


def _object(value: Any, where: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleError(f"{what}: provenance field {where} is not an object")
    return value


def _field(container: dict[str, Any], key: str, where: str, what: str) -> Any:
    if key not in container:
        raise BundleError(f"{what}: provenance lacks field {where}.{key}")
    return container[key]


def _optional_str(container: dict[str, Any], key: str, where: str, what: str) -> str | None:
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise BundleError(f"{what}: provenance field {where}.{key} is not a string")
    return value


def _string(container: dict[str, Any], key: str, where: str, what: str) -> str:
    value = _field(container, key, where, what)
    if not isinstance(value, str):
        raise BundleError(f"{what}: provenance field {where}.{key} is not a string")
    return value


def _with_dataset_uris(inputs: IdentityInputs, dependencies: Any) -> IdentityInputs:
    """Restore dataset URIs, which live in ``resolvedDependencies`` (not in the identity)."""
    if not isinstance(dependencies, list):
        return inputs
    uris: dict[tuple[str, str], str] = {}
    for dep in dependencies:
        if isinstance(dep, dict) and isinstance(dep.get("name"), str) \
                and isinstance(dep.get("uri"), str) and isinstance(dep.get("digest"), dict):
            sha256 = dep["digest"].get("sha256")
            if isinstance(sha256, str):
                uris[(dep["name"], sha256)] = dep["uri"]
    data = [d.model_copy(update={"uri": uris.get((f"dataset:{d.name}", d.sha256), d.uri)})
            for d in inputs.data]
    return inputs.model_copy(update={"data": data})


def read_provenance(statement: Statement, *, what: str) -> TrainingProvenance:
    """Read mlprov's training provenance out of a verified statement.

    Unknown ``externalParameters`` are rejected, as SLSA asks of verifiers.

    Raises:
        BundleError: not SLSA v1, not mlprov's build type, or malformed fields.
    """
    if statement.predicate_type != SLSA_PROVENANCE_V1:
        raise BundleError(f"{what}: predicate type {statement.predicate_type!r} is not "
                          f"{SLSA_PROVENANCE_V1!r}")
    predicate = statement.predicate
    definition = _object(_field(predicate, "buildDefinition", "predicate", what),
                         "buildDefinition", what)
    build_type = _field(definition, "buildType", "buildDefinition", what)
    if build_type != BUILD_TYPE:
        raise BundleError(f"{what}: unknown build type {build_type!r}",
                          hint=f"mlprov reads provenance of build type {BUILD_TYPE}")
    external = dict(_object(_field(definition, "externalParameters", "buildDefinition", what),
                            "externalParameters", what))
    name = _string(external, "name", "externalParameters", what)
    del external["name"]
    try:
        inputs = IdentityInputs.model_validate(external)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BundleError(f"{what}: externalParameters: "
                          f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    inputs = _with_dataset_uris(inputs, definition.get("resolvedDependencies"))
    internal = _object(_field(definition, "internalParameters", "buildDefinition", what),
                       "internalParameters", what)
    identity = _string(internal, "identity", "internalParameters", what)
    run = _object(_field(predicate, "runDetails", "predicate", what), "runDetails", what)
    builder = _object(_field(run, "builder", "runDetails", what), "runDetails.builder", what)
    builder_id = _string(builder, "id", "runDetails.builder", what)
    metadata = _object(run.get("metadata", {}), "runDetails.metadata", what)
    return TrainingProvenance(
        name=name, identity=identity, inputs=inputs, builder_id=builder_id,
        invocation_id=_optional_str(metadata, "invocationId", "metadata", what),
        started_on=_optional_str(metadata, "startedOn", "metadata", what),
        finished_on=_optional_str(metadata, "finishedOn", "metadata", what),
        predicate=predicate)
