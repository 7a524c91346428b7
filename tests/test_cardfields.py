"""The pydantic-free card twin (mlprov._internal.cardfields) and CardInput agree.

- :class:`CardFields` has CardInput's fields, types and defaults (a field added to
  one without the other fails here);
- :func:`card_from_bom` reads, from arbitrary and hostile BOM documents (wrong
  types and nesting, blank and NUL text, lone surrogates, integers too long to
  write, NaN), exactly what ``CardInput.from_bom`` reads, field by field, and
  raises what it raises;
- one ``modelCard`` writer: the same JSON from either type;
- ``attest`` without ``--card`` writes the same SBOM and ``MODEL_CARD.md`` bytes
  whether the card path runs on CardInput or on CardFields;
- importing (and using) the twin loads no pydantic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import typing
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlprov
from mlprov._internal import cardfields
from mlprov._internal.cardfields import (
    EXTRA_LISTS,
    EXTRA_TEXTS,
    PROPERTY_PREFIX,
    CardFields,
    EthicalFields,
    card_from_bom,
    card_json,
    model_card_json,
)
from mlprov.card import (
    CardInput,
    EthicalConsideration,
    card_facts,
    card_metadata,
    render_card,
)
from mlprov.evaluation import EvalPredicate, Evaluator, format_metric
from mlprov.evidence import CARD_FILE, EVAL_FILE, PROVENANCE_FILE, SBOM_FILE
from mlprov.identity import IdentityInputs, code_from_commit
from mlprov.provenance import build_provenance, read_provenance
from mlprov.sbom import (
    bom_file_bytes,
    build_bom,
    pin_evidence,
    prepare_bom,
    read_environment_file,
    sbom_info,
)
from tests.conftest import COMMIT
from tests.evidence_kit import TRAIN, write_inputs

# --------------------------------------------------------------- the fields


def _twin_type(annotation: Any) -> Any:
    """CardInput's annotation with the pydantic nested model replaced by its twin."""
    return list[EthicalFields] if annotation == list[EthicalConsideration] else annotation


@pytest.mark.parametrize(("model", "twin"), [(CardInput, CardFields),
                                             (EthicalConsideration, EthicalFields)])
def test_the_twins_have_the_model_s_fields_types_and_defaults(model, twin):
    hints = typing.get_type_hints(twin)
    twin_fields = dataclasses.fields(twin)
    assert [f.name for f in twin_fields] == list(model.model_fields)
    for f in twin_fields:
        info = model.model_fields[f.name]
        assert hints[f.name] == _twin_type(info.annotation), f.name
        if info.default_factory is not None:
            assert f.default_factory is info.default_factory, f.name
            assert f.default is dataclasses.MISSING, f.name
        elif info.is_required():
            assert f.default is dataclasses.MISSING, f.name
            assert f.default_factory is dataclasses.MISSING, f.name
        else:
            assert f.default == info.default, f.name
            assert f.default_factory is dataclasses.MISSING, f.name
    assert twin.__dataclass_params__.frozen and hasattr(twin, "__slots__")


def test_the_defaults_are_equal_and_write_no_model_card():
    assert card_json(CardFields()) == CardInput().model_dump(mode="json")
    assert CardFields().model_card_json([], None) == CardInput().model_card_json([], None) == {}


def test_the_twin_checks_the_fields_the_model_s_validators_check():
    validators = CardInput.__pydantic_decorators__.field_validators
    assert set(cardfields.LIST_FIELDS) == set(validators["_no_blanks"].info.fields)
    assert set(cardfields.LIST_FIELDS) == set(validators["_one_or_many"].info.fields)
    assert set(cardfields.TEXT_FIELDS) == set(validators["_not_blank"].info.fields)
    # every field is a text, a list of texts, the approach or the ethical considerations
    assert {*cardfields.LIST_FIELDS, *cardfields.TEXT_FIELDS, "approach",
            "ethical_considerations"} == set(CardInput.model_fields)


# --------------------------------------------------------------- reading a BOM back

HOSTILE = ["", " ", "\t\n", "\x00", "a\x00", "\ud800", "x\udc00y", "\ud83d\ude00", "\u3000",
           "None", "supervised"]
good_texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8).filter(str.strip)
texts = st.one_of(good_texts, good_texts, st.text(max_size=6), st.sampled_from(HOSTILE))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(),
                    st.builds(pow, st.just(10), st.just(5000)),  # str() refuses: 4301 digits
                    st.floats(), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)), max_leaves=6)

PROPERTY_NAMES = [cardfields.OUT_OF_SCOPE, cardfields.FACTOR, cardfields.BASE_MODEL,
                  *(PROPERTY_PREFIX + key for key in (*EXTRA_LISTS, *EXTRA_TEXTS))]


def _or_any(strategy: st.SearchStrategy[Any], odds: int = 4) -> st.SearchStrategy[Any]:
    """Mostly the expected shape, one time in ``odds`` any JSON value in its place."""
    return st.integers(1, odds).flatmap(lambda n: json_values if n == odds else strategy)


def _text_list(items: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _or_any(st.lists(_or_any(items, 8), max_size=3))


def _bom_documents(text: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """BOM documents whose metadata.component.modelCard (and description, authors,
    licences) have the shapes from_bom looks for, each part sometimes missing or
    replaced by any JSON value."""
    formats = _text_list(st.fixed_dictionaries({}, optional={"format": _or_any(text)}))
    ethical = st.fixed_dictionaries({"name": _or_any(text, 8)},
                                    optional={"mitigationStrategy": _or_any(text)})
    parameters = st.fixed_dictionaries({}, optional={
        "approach": _or_any(st.fixed_dictionaries({"type": _or_any(st.sampled_from(
            ["supervised", "self-supervised", "guessing", "Supervised"]))})),
        "task": _or_any(text), "architectureFamily": _or_any(text),
        "modelArchitecture": _or_any(text), "inputs": formats, "outputs": formats,
        "datasets": json_values})
    considerations = st.fixed_dictionaries({}, optional={
        "useCases": _text_list(text), "users": _text_list(text),
        "technicalLimitations": _text_list(text), "ethicalConsiderations": _text_list(ethical)})
    properties = _text_list(st.fixed_dictionaries({
        "name": _or_any(st.sampled_from(PROPERTY_NAMES), 8)}, optional={"value": _or_any(text)}))
    model_card = st.fixed_dictionaries({}, optional={
        "modelParameters": _or_any(parameters, 8), "considerations": _or_any(considerations, 8),
        "properties": properties, "quantitativeAnalysis": json_values})
    licence = st.one_of(
        st.fixed_dictionaries({"expression": _or_any(text)}),
        st.fixed_dictionaries({"license": _or_any(st.fixed_dictionaries(
            {}, optional={"id": _or_any(text), "name": _or_any(text)}))}),
        json_values)
    component = st.fixed_dictionaries({"modelCard": _or_any(model_card, 8)}, optional={
        "description": _or_any(text),
        "authors": _text_list(st.fixed_dictionaries({}, optional={"name": _or_any(text)})),
        "licenses": _or_any(st.lists(licence, max_size=2)), "name": text})
    return _or_any(st.fixed_dictionaries({"metadata": _or_any(st.fixed_dictionaries(
        {"component": _or_any(component, 16)}), 16)}, optional={"bomFormat": text}), 16)


def _outcome(read: Any, document: Any) -> tuple[str, Any]:
    try:
        card = read(document)
    except Exception as exc:  # compared below: type and message
        return "raised", (type(exc), str(exc))
    values = {name: getattr(card, name) for name in CardInput.model_fields}
    values["ethical_considerations"] = [(e.name, e.mitigation)
                                        for e in card.ethical_considerations]
    return "read", values


def _same_reading(document: Any) -> CardFields | None:
    expected = _outcome(CardInput.from_bom, document)
    got = _outcome(card_from_bom, document)
    assert got == expected
    if expected[0] == "raised":
        return None
    model, twin = CardInput.from_bom(document), card_from_bom(document)
    assert isinstance(twin, CardFields)
    assert all(isinstance(e, EthicalFields) for e in twin.ethical_considerations)
    for name in CardInput.model_fields:  # the same Python types, field by field
        assert type(getattr(twin, name)) is type(getattr(model, name)), name
    assert card_json(twin) == card_json(model) == model.model_dump(mode="json")
    return twin


@settings(max_examples=600, deadline=None)
@given(_bom_documents(texts))
def test_card_from_bom_reads_what_from_bom_reads_from_hostile_boms(document):
    _same_reading(document)


@settings(max_examples=200, deadline=None)
@given(_bom_documents(good_texts))
def test_card_from_bom_reads_what_from_bom_reads_from_well_formed_boms(document):
    _same_reading(document)


property_values = st.one_of(good_texts, st.sampled_from(HOSTILE), json_values)


@pytest.mark.parametrize("name", PROPERTY_NAMES)
@settings(max_examples=30, deadline=None)
@given(values=st.lists(property_values, max_size=3), others=st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(PROPERTY_NAMES)}, optional={"value": property_values}),
    max_size=3), data=st.data())
def test_card_from_bom_reads_each_property_as_from_bom_does(name, values, others, data):
    """Each mlprov:modelcard: property: blank, hostile, not a string, among others."""
    properties = [*others, *({"name": name, "value": v} for v in values)]
    properties = data.draw(st.permutations(properties))
    _same_reading({"metadata": {"component": {"modelCard": {"properties": properties}}}})


@pytest.mark.parametrize("document", [
    {}, {"metadata": None}, {"metadata": {"component": []}},
    {"metadata": {"component": {"licenses": 5}}},  # from_bom: TypeError (not iterable)
    {"metadata": {"component": {"licenses": [{"expression": ""}]}}},  # blank: the defaults
    {"metadata": {"component": {"modelCard": {"properties": [
        {"name": PROPERTY_PREFIX + "tags", "value": 10 ** 5000}]}}}},  # ValueError
    {"metadata": {"component": {"modelCard": {"considerations": {"ethicalConsiderations": [
        {"name": "\ud800"}]}}}}},  # pydantic: string_unicode, so the defaults
    {"metadata": {"component": {"modelCard": {  # refused before the integer is written
        "considerations": {"ethicalConsiderations": [{"name": "x\udc00"}]},
        "properties": [{"name": PROPERTY_PREFIX + "tags", "value": 10 ** 5000}]}}}},
    {"metadata": {"component": {"modelCard": {"modelParameters": {"inputs": [{"format": " "}]},
                                              "properties": [{"name": PROPERTY_PREFIX
                                                              + "paper", "value": None}]}}}},
])
def test_card_from_bom_on_chosen_documents(document):
    _same_reading(document)


# --------------------------------------------------------------- writing the modelCard

card_texts = st.one_of(good_texts, st.sampled_from(["a\x00", "\ud800", "x\udc00y", "|`*"]))
_EXTRA = {key: st.lists(card_texts, max_size=2) for key in EXTRA_LISTS} | {
    key: st.none() | card_texts for key in EXTRA_TEXTS}


@st.composite
def card_pairs(draw: st.DrawFn) -> tuple[CardInput, CardFields]:
    """A valid CardInput and the CardFields with its values."""
    values: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={
        "description": st.none() | card_texts, "developers": st.lists(card_texts, max_size=2),
        "license": st.none() | card_texts, "base_model": st.lists(card_texts, max_size=2),
        "task": st.none() | card_texts,
        "approach": st.none() | st.sampled_from(typing.get_args(cardfields.Approach)),
        "architecture_family": st.none() | card_texts,
        "model_architecture": st.none() | card_texts,
        "inputs": st.lists(card_texts, max_size=2), "outputs": st.lists(card_texts, max_size=2),
        "intended_use": st.lists(card_texts, max_size=2),
        "intended_users": st.lists(card_texts, max_size=2),
        "out_of_scope_uses": st.lists(card_texts, max_size=2),
        "factors": st.lists(card_texts, max_size=2),
        "ethical_considerations": st.lists(st.tuples(good_texts, st.none() | card_texts),
                                           max_size=2),
        "caveats_and_recommendations": st.lists(card_texts, max_size=2), **_EXTRA}))
    ethical = values.pop("ethical_considerations", [])
    model = CardInput(**values, ethical_considerations=[
        EthicalConsideration(name=n, mitigation=m) for n, m in ethical])
    twin = CardFields(**values, ethical_considerations=[EthicalFields(n, m) for n, m in ethical])
    return model, twin


@dataclass(frozen=True)
class PlainEval:
    """An EvalView that is not a pydantic model."""

    metrics: dict[str, int | float]
    slices: dict[str, dict[str, int | float]]


names = st.text(max_size=5).filter(str.strip)
numbers = st.integers(-10 ** 20, 10 ** 20) | st.floats(allow_nan=False, allow_infinity=False)
metric_maps = st.dictionaries(names, numbers, max_size=3)
evaluations = st.none() | st.tuples(metric_maps, st.dictionaries(names, metric_maps.filter(bool),
                                                                 max_size=2))


@settings(max_examples=300, deadline=None)
@given(card_pairs(), st.lists(st.text(max_size=8), max_size=3), evaluations)
def test_one_model_card_writer_for_both_types(pair, refs, metrics):
    model, twin = pair
    assert card_json(twin) == card_json(model) == model.model_dump(mode="json")
    evaluation = None if metrics is None else EvalPredicate(
        evaluator=Evaluator(id="https://e.example"), metrics=metrics[0], slices=metrics[1])
    written = model.model_card_json(refs, evaluation)
    assert twin.model_card_json(refs, evaluation) == written
    assert model_card_json(twin, refs, evaluation) == written
    if metrics is not None:
        assert model_card_json(twin, refs, PlainEval(*metrics)) == written
        assert {m["value"] for m in written["quantitativeAnalysis"]["performanceMetrics"]} == {
            format_metric(v) for v in [*metrics[0].values(),
                                       *(v for s in metrics[1].values() for v in s.values())]}
    # and what is written reads back as the same card, with either reader
    document = {"metadata": {"component": {
        **({"description": model.description} if model.description else {}),
        "authors": [{"name": d} for d in model.developers],
        "licenses": [{"license": {"name": model.license}}] if model.license else [],
        "modelCard": written}}}
    assert _same_reading(document) == twin
    assert CardInput.from_bom(document) == model


@settings(max_examples=60, deadline=None)
@given(card_pairs(), evaluations)
def test_any_card_renders_the_same_from_either_type(pair, metrics):
    """The SBOM written from either type, and the card rendered from either reader."""
    model, twin = pair
    evaluation = None if metrics is None else EvalPredicate(
        evaluator=Evaluator(id="https://e.example"), metrics=metrics[0], slices=metrics[1])
    boms = [build_bom(provenance=_PROVENANCE, root="a" * 64, packages=[], card=card,
                      evaluation=evaluation) for card in (model, twin)]
    for bom in boms:
        bom["serialNumber"] = "urn:uuid:" + "0" * 32
    assert boms[0] == boms[1]
    info = sbom_info(boms[0])
    on_model = card_facts(_PROVENANCE, "a" * 64, evaluation, info)
    on_twin = card_facts(_PROVENANCE, "a" * 64, evaluation, info, read_card=card_from_bom)
    assert card_json(on_twin.card) == card_json(on_model.card)
    assert render_card(on_twin) == render_card(on_model)
    assert card_metadata(on_twin) == card_metadata(on_model)


def _provenance() -> Any:
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    statement = build_provenance(
        name="m", root="a" * 64, inputs=IdentityInputs(code=code_from_commit(COMMIT),
                                                       data=[TRAIN]),
        started_on=moment, finished_on=moment)
    return read_provenance(statement, what="p")


_PROVENANCE = _provenance()


# --------------------------------------------------------------- the same bytes


@pytest.mark.parametrize("with_metrics", [False, True])
def test_attest_without_a_card_writes_the_same_bytes_on_either_path(
        make_key, model_dir: Path, tmp_path: Path, monkeypatch, with_metrics):
    """A real attest (no --card), then its SBOM and card rebuilt both ways: all equal."""
    metrics, _, env = write_inputs(tmp_path / "inputs")
    key = make_key("ci")
    evidence = tmp_path / "evidence"
    mlprov.attest(model_dir, name="m", key=key.private, out=evidence, commit=COMMIT,
                  data=[TRAIN], seeds={"torch": 7}, config={"lr": 0.1, "layers": [2, 3]},
                  environment=env, metrics=metrics if with_metrics else None)
    verdict = mlprov.verify(model_dir, evidence=evidence, key=key.public)
    assert verdict.verified, verdict.failures()
    prov, root = verdict.provenance, verdict.root_digest.removeprefix("sha256:")
    written_bom = (evidence / SBOM_FILE).read_bytes()
    written_card = (evidence / CARD_FILE).read_bytes()
    serial = uuid.UUID(json.loads(written_bom)["serialNumber"].removeprefix("urn:uuid:"))
    monkeypatch.setattr(uuid, "uuid4", lambda: serial)
    packages = read_environment_file(env)
    pins = {name: ("attestation", _sha256((evidence / name).read_bytes()))
            for name in (PROVENANCE_FILE, EVAL_FILE) if (evidence / name).is_file()}
    assert len(pins) == 1 + with_metrics

    def files(card: Any, read_card: Any) -> tuple[bytes, bytes]:
        draft = prepare_bom(provenance=prov, packages=packages, card=card,
                            evaluation=verdict.evaluation)
        bom = build_bom(provenance=prov, root=root, packages=packages, card=card,
                        evaluation=verdict.evaluation, draft=draft)
        assert bom == build_bom(provenance=prov, root=root, packages=packages, card=card,
                                evaluation=verdict.evaluation)
        facts = card_facts(prov, root, verdict.evaluation, sbom_info(bom), read_card=read_card)
        markdown = render_card(facts).encode("utf-8")
        pinned = pin_evidence(bom, {**pins, CARD_FILE: ("model-card", _sha256(markdown))})
        return bom_file_bytes(pinned), markdown

    on_model = files(CardInput.model_construct(), None)
    assert isinstance(card_facts(prov, root, None, sbom_info(json.loads(written_bom))).card,
                      CardInput)
    on_twin = files(None, card_from_bom)
    assert on_twin == on_model == (written_bom, written_card)
    twin_facts = card_facts(prov, root, None, sbom_info(json.loads(written_bom)),
                            read_card=card_from_bom)
    assert twin_facts.card == CardFields()


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------- no pydantic


_FRESH = """
import sys
from mlprov._internal.cardfields import CardFields, card_from_bom, card_json, model_card_json
card = card_from_bom({"metadata": {"component": {"modelCard": {"properties": [
    {"name": "mlprov:modelcard:tags", "value": "t"}]}}}})
assert card == CardFields(tags=["t"]), card
model_card_json(card, ["data:x"], None)
card_json(card)
print(sorted(m for m in sys.modules if m.split(".")[0] == "pydantic"
             or m.split(".")[0] == "pydantic_core"))
"""


def test_the_twin_loads_no_pydantic():
    done = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
