"""The pydantic-free provenance reader agrees with the reader it replaced.

``mlprov.provenance.read_provenance`` now reads through the pydantic-free reader; the
implementation it had before (pydantic's ``IdentityInputs`` deciding the inputs) is
kept below as the reference.

Provenance documents as mlprov writes them (``build_provenance``), then up to three
edits anywhere a field is read: a field dropped, set to a near-miss (a seed
``"7"`` or ``7.0`` or ``True``, ``dirty`` as ``"yes"``, an upper-case commit) or to
any JSON value (NUL, lone surrogates, integers beyond 2**53, nesting), or an unknown
field added. Both readers accept the same documents and read the same facts, field
by field (dataset URIs restored from ``resolvedDependencies`` included), or refuse
with the same BundleError (message and hint).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlprov._internal.inputs import Inputs
from mlprov._internal.intoto import STATEMENT_TYPE_V1, read_statement
from mlprov._internal.provenance_reader import ProvenanceFacts
from mlprov._internal.provenance_reader import read_provenance as read_facts
from mlprov.errors import BundleError
from mlprov.identity import CodeRef, DataRef, IdentityInputs
from mlprov.provenance import (
    BUILD_TYPE,
    SLSA_PROVENANCE_V1,
    TrainingProvenance,
    build_provenance,
)
from mlprov.provenance import read_provenance as public_read_provenance
from mlprov.statements import Statement
from tests.conftest import COMMIT

# -- the reference: read_provenance as it was before the pydantic-free reader -----------

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


def read_provenance(statement: Statement, *, what: str) -> TrainingProvenance:  # the reference
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
                          f"{'.'.join(str(p) for p in first['loc'])}: "
                          f"{str(first['msg']).removeprefix('Value error, ')}") from exc
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


HEX = "ab" * 32
WHEN = dt.datetime(2026, 12, 6, 23, 0, tzinfo=dt.UTC)
BAD_TEXT = ["", "\x00", "\ud800", "x\udc00y", "\n"]
texts = st.one_of(st.text(max_size=5), st.sampled_from(BAD_TEXT))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                    st.sampled_from([2**53, -(2**63), 10**30, 7.0, 0.5, 1e300]),
                    st.floats(allow_nan=False, allow_infinity=False), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)), max_leaves=8)
near_misses = st.sampled_from([
    "7", " 7 ", "1_000", 7.0, 7.5, True, False, "yes", "off", 1, 0, COMMIT.upper(),
    COMMIT + "\n", "c" * 64, f"sha256:{HEX}", f"sha256:{HEX.upper()}", HEX, "dataset:a",
    "dataset:b", "hf://moved", "https://slsa.dev/provenance/v0.2",
    "https://mlprov.dev/buildtypes/training/v1", [], {}, None, ""])

DEFINITION = ("buildDefinition",)
EXTERNAL = (*DEFINITION, "externalParameters")
DEPENDENCIES = (*DEFINITION, "resolvedDependencies")
RUN = ("runDetails",)
PATHS: list[tuple[str | int, ...]] = [
    (), DEFINITION, (*DEFINITION, "buildType"), EXTERNAL, (*EXTERNAL, "name"),
    (*EXTERNAL, "code"), (*EXTERNAL, "code", "commit"), (*EXTERNAL, "code", "uri"),
    (*EXTERNAL, "code", "dirty"), (*EXTERNAL, "data"), (*EXTERNAL, "data", 0),
    (*EXTERNAL, "data", 0, "name"), (*EXTERNAL, "data", 0, "digest"),
    (*EXTERNAL, "data", 1, "uri"), (*EXTERNAL, "data", 1, "name"), (*EXTERNAL, "config"),
    (*EXTERNAL, "config", "lr"), (*EXTERNAL, "seeds"), (*EXTERNAL, "seeds", "torch"),
    (*DEFINITION, "internalParameters"), (*DEFINITION, "internalParameters", "identity"),
    DEPENDENCIES, (*DEPENDENCIES, 1), (*DEPENDENCIES, 1, "name"), (*DEPENDENCIES, 1, "uri"),
    (*DEPENDENCIES, 1, "digest"), (*DEPENDENCIES, 1, "digest", "sha256"),
    (*DEPENDENCIES, 2, "uri"), RUN, (*RUN, "builder"), (*RUN, "builder", "id"),
    (*RUN, "metadata"), (*RUN, "metadata", "invocationId"), (*RUN, "metadata", "startedOn"),
    (*RUN, "metadata", "finishedOn"),
]


def _baseline(data: list[tuple[str, str | None]], seeds: dict[str, int], dirty: bool,
              uri: str | None, invocation: str | None) -> dict[str, Any]:
    inputs = IdentityInputs(
        code=CodeRef(commit=COMMIT, uri=uri, dirty=dirty),
        data=[DataRef(name=name, digest=f"sha256:{HEX}", uri=where) for name, where in data],
        config={"lr": 0.01, "layers": [1, 2], "opt": {"name": "adam"}}, seeds=seeds)
    statement = build_provenance(name="demo", root=HEX, inputs=inputs, started_on=WHEN,
                                 finished_on=WHEN, invocation_id=invocation)
    return json.loads(json.dumps(statement.to_json_dict()))  # exactly JSON, nothing shared


baselines = st.builds(
    _baseline,
    st.lists(st.tuples(st.sampled_from(["b", "a", "c"]),
                       st.one_of(st.none(), st.sampled_from(["hf://d/a", "s3://b/k"]))),
             max_size=3, unique_by=lambda pair: pair[0]),
    st.dictionaries(st.sampled_from(["torch", "numpy"]), st.integers(-(2**53) + 1, 2**53 - 1),
                    max_size=2),
    st.booleans(), st.one_of(st.none(), st.just("git+https://example.com/o/r.git")),
    st.one_of(st.none(), st.just("run-1")))


def _apply(document: dict[str, Any], path: tuple[str | int, ...], action: str,
           value: Any) -> None:
    """Edit ``document`` at ``path`` (nothing when the path no longer leads anywhere)."""
    parent: Any = document
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return
    if not path:
        if action == "extra":
            document["extraField"] = value
        return
    key = path[-1]
    if isinstance(parent, dict) and isinstance(key, str):
        if action == "drop":
            parent.pop(key, None)
        elif action == "extra":
            parent[f"{key}Extra"] = value
        else:
            parent[key] = value
    elif isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        if action == "drop":
            del parent[key]
        elif action == "extra" and isinstance(parent[key], dict):
            parent[key]["extra"] = value
        else:
            parent[key] = value


@st.composite
def predicates(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    document = draw(baselines)
    predicate = document["predicate"]
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(PATHS))
        action = draw(st.sampled_from(["drop", "near", "any", "extra"]))
        value = draw(near_misses if action == "near" else json_values)
        _apply(predicate, path, action, value)
    predicate_type = draw(st.sampled_from(
        [SLSA_PROVENANCE_V1] * 8
        + ["https://slsa.dev/provenance/v0.2", "https://mlprov.dev/predicates/eval/v1"]))
    return predicate_type, predicate


def _statement_document(predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    return {"_type": STATEMENT_TYPE_V1, "subject": [{"name": "demo", "digest": {"sha256": HEX}}],
            "predicateType": predicate_type, "predicate": predicate}


def _outcome(read: Any, statement: Any) -> Any:
    try:
        return read(statement, what="provenance.json")
    except BundleError as exc:
        return str(exc), exc.diagnostics()


def _same_inputs(facts: Inputs, model: IdentityInputs) -> None:
    assert (facts.code.commit, facts.code.uri, facts.code.dirty) == \
        (model.code.commit, model.code.uri, model.code.dirty)
    assert [(d.name, d.digest, d.uri, d.sha256) for d in facts.data] == \
        [(d.name, d.digest, d.uri, d.sha256) for d in model.data]
    assert repr(facts.config) == repr(model.config)
    assert facts.seeds == model.seeds
    assert all(type(v) is int for v in facts.seeds.values())
    assert repr(facts.canonical_inputs()) == repr(model.canonical_inputs())


def _same(facts: ProvenanceFacts, model: TrainingProvenance) -> None:
    for field in ("name", "identity", "builder_id", "invocation_id", "started_on",
                  "finished_on", "predicate"):
        assert getattr(facts, field) == getattr(model, field), field
    _same_inputs(facts.inputs, model.inputs)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=predicates())
def test_reader_agrees_with_read_provenance(case: tuple[str, dict[str, Any]]) -> None:
    predicate_type, predicate = case
    document = _statement_document(predicate_type, predicate)
    fields = read_statement(copy.deepcopy(document))
    assert fields is not None
    model = _outcome(read_provenance, Statement.model_validate(copy.deepcopy(document)))
    twin = _outcome(read_facts, fields)
    if isinstance(model, tuple):
        assert twin == model
    else:
        assert isinstance(twin, ProvenanceFacts)
        _same(twin, model)
    # The reader takes the Statement model as well.
    assert repr(_outcome(read_facts, Statement.model_validate(document))) == repr(twin)


def test_written_provenance_reads_alike_with_uris_restored() -> None:
    document = _baseline([("b", "hf://d/b"), ("a", None), ("c", "s3://b/c")],
                         {"torch": 7, "numpy": -(2**53) + 1}, True,
                         "git+https://example.com/o/r.git", "run-9")
    fields = read_statement(_statement_document(SLSA_PROVENANCE_V1, document["predicate"]))
    assert fields is not None
    facts = read_facts(fields, what="p")
    model = read_provenance(Statement.model_validate(document), what="p")
    _same(facts, model)
    assert [d.uri for d in facts.inputs.data] == [None, "hf://d/b", "s3://b/c"]
    assert facts.inputs.code.dirty is True
    assert (facts.invocation_id, facts.started_on) == ("run-9", "2026-12-06T23:00:00Z")


@pytest.mark.parametrize(("where", "value", "expected"), [
    ("seeds", {"torch": "7"}, {"torch": 7}),
    ("seeds", {"torch": True}, {"torch": 1}),
    ("seeds", {"torch": 7.0}, {"torch": 7}),
])
def test_coerced_values_are_read_as_the_model_reads_them(where: str, value: Any,
                                                         expected: Any) -> None:
    document = _baseline([], {}, False, None, None)
    document["predicate"]["buildDefinition"]["externalParameters"][where] = value
    fields = read_statement(document)
    assert fields is not None
    facts = read_facts(fields, what="p")
    assert facts.inputs.seeds == expected
    _same(facts, read_provenance(Statement.model_validate(document), what="p"))


def test_model_words_refusals() -> None:
    document = _baseline([("a", None)], {}, False, None, None)
    document["predicate"]["buildDefinition"]["externalParameters"]["data"][0]["digest"] = "x"
    fields = read_statement(document)
    assert fields is not None
    with pytest.raises(BundleError) as refused:
        read_facts(fields, what="p")
    assert str(refused.value) == ("p: externalParameters: data.0.digest: "
                                  "dataset digest must be sha256:<64 hex>, got 'x'")


def test_reading_plain_provenance_imports_no_pydantic(tmp_path: Path) -> None:
    document = _baseline([("a", "hf://d/a")], {"torch": 7}, False, None, "run-1")
    path = tmp_path / "statement.json"
    path.write_text(json.dumps(document))
    script = f"""
import json, sys
from mlprov._internal.intoto import read_statement
from mlprov._internal.provenance_reader import read_provenance
facts = read_provenance(read_statement(json.load(open({str(path)!r}))), what="p")
assert facts.inputs.data[0].uri == "hf://d/a" and facts.inputs.seeds == {{"torch": 7}}
print(sorted(m for m in sys.modules if m.split(".")[0] == "pydantic"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.stdout.strip() == "[]", done.stderr


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=predicates())
def test_public_reader_agrees_with_the_reference(case: tuple[str, dict[str, Any]]) -> None:
    """``mlprov.provenance.read_provenance`` (now through the twin) reads as it did."""
    document = _statement_document(*case)
    reference = _outcome(read_provenance, Statement.model_validate(copy.deepcopy(document)))
    public = _outcome(public_read_provenance, Statement.model_validate(copy.deepcopy(document)))
    if isinstance(reference, tuple):
        assert public == reference
    else:
        assert isinstance(public, TrainingProvenance)
        assert repr(public) == repr(reference)
