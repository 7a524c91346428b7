"""mlprov's training provenance read out of a statement, without pydantic.

The twin of :func:`mlprov.provenance.read_provenance`: the same acceptance and the
same :class:`~mlprov.errors.BundleError` messages, returning :class:`ProvenanceFacts`
(the attributes of ``TrainingProvenance``, with ``inputs`` an
:class:`~mlprov._internal.inputs.Inputs`). It reads ``predicate_type`` and
``predicate`` off anything that has them: a ``Statement`` or the pydantic-free
:class:`~mlprov._internal.intoto.StatementFields`.

The identity inputs in ``externalParameters`` are read by the twins when every
value is plain (what mlprov writes). A document the twins do not take as it is
(a value the model coerces, such as ``"seeds": {"torch": "7"}``, or one it
refuses) goes to ``IdentityInputs`` itself, importing pydantic only then: the
model's answer and its first error's words are the reader's, as they are
``read_provenance``'s. ``tests/test_provenance_reader.py`` holds both to the same
answers, field by field, on hostile predicates (hypothesis).

Its domain is a predicate parsed from JSON (a ``str`` subclass or a tuple in a
predicate built in Python may be refused here where the model takes it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from mlprov._internal.display import validator_words
from mlprov._internal.inputs import Code, Dataset, Inputs, InputsRefused
from mlprov.errors import BundleError

__all__ = ["BUILD_TYPE", "SLSA_PROVENANCE_V1", "ProvenanceFacts", "read_provenance"]

SLSA_PROVENANCE_V1: Final = "https://slsa.dev/provenance/v1"
BUILD_TYPE: Final = "https://mlprov.dev/buildtypes/training/v1"


@dataclass(frozen=True, slots=True)
class ProvenanceFacts:
    """What mlprov reads back out of a provenance statement (twin of TrainingProvenance)."""

    name: str
    identity: str
    inputs: Inputs
    builder_id: str
    invocation_id: str | None
    started_on: str | None
    finished_on: str | None
    predicate: dict[str, Any]


class _Statement(Protocol):
    @property
    def predicate_type(self) -> str: ...
    @property
    def predicate(self) -> dict[str, Any]: ...


# -- the same field rules and words as mlprov.provenance ------------------------------------

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


# -- identity inputs -----------------------------------------------------------------------

_INPUT_FIELDS = frozenset({"code", "data", "config", "seeds"})
_CODE_FIELDS = frozenset({"commit", "uri", "dirty"})
_DATA_FIELDS = frozenset({"name", "digest", "uri"})


def _keys(document: Any, allowed: frozenset[str], required: tuple[str, ...]) -> bool:
    """A dict whose keys are plain strings, all known, the required ones present."""
    return (type(document) is dict and all(type(k) is str for k in document)
            and document.keys() <= allowed and all(k in document for k in required))


def _plain_inputs(document: dict[str, Any]) -> Inputs | None:
    """``document`` as Inputs if it is plain and the twins take it, else None."""
    if not _keys(document, _INPUT_FIELDS, ("code",)):
        return None
    code, items = document["code"], document.get("data", [])
    if not _keys(code, _CODE_FIELDS, ("commit",)) or type(items) is not list \
            or not all(_keys(item, _DATA_FIELDS, ("name", "digest")) for item in items):
        return None
    try:  # the twins refuse the rest: config and seeds not dicts keyed by str, ...
        return Inputs(code=Code(commit=code["commit"], uri=code.get("uri"),
                                dirty=code.get("dirty", False)),
                      data=tuple(Dataset(name=item["name"], digest=item["digest"],
                                         uri=item.get("uri")) for item in items),
                      config=document.get("config", {}), seeds=document.get("seeds", {}))
    except InputsRefused:
        return None


def _model_inputs(document: dict[str, Any], what: str) -> Inputs:
    """What ``IdentityInputs`` makes of ``document``: its answer, or its first error."""
    from pydantic import ValidationError  # only here: the plain path never needs it

    from mlprov.identity import IdentityInputs

    try:
        model = IdentityInputs.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BundleError(f"{what}: externalParameters: "
                          f"{'.'.join(str(p) for p in first['loc'])}: "
                          f"{validator_words(str(first['msg']))}") from exc
    try:
        return Inputs.from_model(model)
    except InputsRefused as exc:  # outside the domain (see the module's docstring)
        raise BundleError(f"{what}: externalParameters: {validator_words(exc.msg)}") from exc


def _with_dataset_uris(inputs: Inputs, dependencies: Any) -> Inputs:
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
    if not uris:
        return inputs
    data = tuple(replace(d, uri=uris.get((f"dataset:{d.name}", d.sha256), d.uri))
                 for d in inputs.data)
    return replace(inputs, data=data)


def read_provenance(statement: _Statement, *, what: str) -> ProvenanceFacts:
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
    inputs = _plain_inputs(external) or _model_inputs(external, what)
    inputs = _with_dataset_uris(inputs, definition.get("resolvedDependencies"))
    internal = _object(_field(definition, "internalParameters", "buildDefinition", what),
                       "internalParameters", what)
    identity = _string(internal, "identity", "internalParameters", what)
    run = _object(_field(predicate, "runDetails", "predicate", what), "runDetails", what)
    builder = _object(_field(run, "builder", "runDetails", what), "runDetails.builder", what)
    builder_id = _string(builder, "id", "runDetails.builder", what)
    metadata = _object(run.get("metadata", {}), "runDetails.metadata", what)
    return ProvenanceFacts(
        name=name, identity=identity, inputs=inputs, builder_id=builder_id,
        invocation_id=_optional_str(metadata, "invocationId", "metadata", what),
        started_on=_optional_str(metadata, "startedOn", "metadata", what),
        finished_on=_optional_str(metadata, "finishedOn", "metadata", what),
        predicate=predicate)
