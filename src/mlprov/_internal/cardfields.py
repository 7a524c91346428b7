"""The model card's human-written parts and their place in the SBOM, without pydantic.

:class:`mlprov._internal.cardinput.CardInput` (a pydantic model) owns the rules:
it reads ``attest --card`` files and validates. :class:`CardFields` is its twin
for the write path (issue 16): a frozen, slotted dataclass with the same field
names, types and defaults, so ``attest`` without ``--card`` writes the SBOM's
``modelCard`` and renders ``MODEL_CARD.md`` without importing pydantic.

- :func:`model_card_json` is the one writer of the CycloneDX 1.6 ``modelCard``;
  ``CardInput.model_card_json`` and ``CardFields.model_card_json`` both call it.
- :func:`card_from_bom` reads the card back out of a BOM the way
  ``CardInput.from_bom`` does: the same fields for every document, the same
  fallback to the defaults (no human-written parts) where the model refuses
  what the BOM holds, the same exceptions where ``from_bom`` raises.
- :class:`CardView` is the shape both types have (what the SBOM writer and the
  card renderer read).

``tests/test_cardfields.py`` holds the twins to the model with hypothesis
(arbitrary and hostile ``modelCard`` content) and to the same bytes (SBOM and
``MODEL_CARD.md``). A :class:`CardFields` does not check its values: build it
with :func:`card_from_bom` or take its defaults.

Internal API, not covered by any compatibility promise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal, Protocol, get_args

__all__ = [
    "EXTRA_LISTS",
    "EXTRA_TEXTS",
    "PROPERTY_PREFIX",
    "Approach",
    "CardFields",
    "CardView",
    "EthicalFields",
    "EthicalView",
    "EvalView",
    "card_from_bom",
    "card_json",
    "format_metric",
    "licence_names",
    "model_card_json",
]

#: CycloneDX ``modelCard.properties`` names for card fields CycloneDX has no field for.
PROPERTY_PREFIX: Final = "mlprov:modelcard:"
OUT_OF_SCOPE: Final = PROPERTY_PREFIX + "outOfScopeUse"
FACTOR: Final = PROPERTY_PREFIX + "factor"
BASE_MODEL: Final = PROPERTY_PREFIX + "baseModel"
Approach = Literal["supervised", "unsupervised", "reinforcement-learning", "semi-supervised",
                   "self-supervised"]

#: Card fields kept in the SBOM's ``modelCard.properties`` as
#: ``mlprov:modelcard:<name>`` (CycloneDX has no field for them): lists ...
EXTRA_LISTS: Final = ("language", "tags", "datasets", "relevant_factors",
                      "evaluation_factors", "performance_measures", "decision_thresholds",
                      "variation_approaches")
#: ... and single texts.
EXTRA_TEXTS: Final = ("pipeline_tag", "library_name", "license_name", "license_link",
                      "model_date", "model_version", "paper", "citation", "contact",
                      "evaluation_data_motivation", "evaluation_data_preprocessing",
                      "training_data_description", "unitary_results",
                      "intersectional_results")
#: The list fields CardInput refuses a blank entry in (its ``_no_blanks``) ...
LIST_FIELDS: Final = ("developers", "base_model", "inputs", "outputs", "intended_use",
                      "intended_users", "out_of_scope_uses", "factors",
                      "caveats_and_recommendations", *EXTRA_LISTS)
#: ... and the texts it refuses blank (its ``_not_blank``).
TEXT_FIELDS: Final = ("description", "license", "task", "architecture_family",
                      "model_architecture", *EXTRA_TEXTS)


def format_metric(value: int | float) -> str:
    """Write a metric value as a string the way JSON writes it (what CycloneDX wants)."""
    return json.dumps(value)


# -- the shapes ----------------------------------------------------------------------------


class EthicalView(Protocol):
    """An ethical consideration as the writers read it (either type)."""

    @property
    def name(self) -> str: ...
    @property
    def mitigation(self) -> str | None: ...


class EvalView(Protocol):
    """The parts of an eval predicate the ``modelCard`` shows (its metrics)."""

    @property
    def metrics(self) -> Mapping[str, int | float]: ...
    @property
    def slices(self) -> Mapping[str, Mapping[str, int | float]]: ...


class CardView(Protocol):
    """A card's human-written parts as the SBOM writer and the renderer read them.

    :class:`CardInput <mlprov._internal.cardinput.CardInput>` and
    :class:`CardFields` both have this shape.
    """

    @property
    def description(self) -> str | None: ...
    @property
    def developers(self) -> list[str]: ...
    @property
    def license(self) -> str | None: ...
    @property
    def base_model(self) -> list[str]: ...
    @property
    def task(self) -> str | None: ...
    @property
    def approach(self) -> Approach | None: ...
    @property
    def architecture_family(self) -> str | None: ...
    @property
    def model_architecture(self) -> str | None: ...
    @property
    def inputs(self) -> list[str]: ...
    @property
    def outputs(self) -> list[str]: ...
    @property
    def intended_use(self) -> list[str]: ...
    @property
    def intended_users(self) -> list[str]: ...
    @property
    def out_of_scope_uses(self) -> list[str]: ...
    @property
    def factors(self) -> list[str]: ...
    @property
    def ethical_considerations(self) -> Sequence[EthicalView]: ...
    @property
    def caveats_and_recommendations(self) -> list[str]: ...
    @property
    def language(self) -> list[str]: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def datasets(self) -> list[str]: ...
    @property
    def pipeline_tag(self) -> str | None: ...
    @property
    def library_name(self) -> str | None: ...
    @property
    def license_name(self) -> str | None: ...
    @property
    def license_link(self) -> str | None: ...
    @property
    def model_date(self) -> str | None: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def paper(self) -> str | None: ...
    @property
    def citation(self) -> str | None: ...
    @property
    def contact(self) -> str | None: ...
    @property
    def relevant_factors(self) -> list[str]: ...
    @property
    def evaluation_factors(self) -> list[str]: ...
    @property
    def performance_measures(self) -> list[str]: ...
    @property
    def decision_thresholds(self) -> list[str]: ...
    @property
    def variation_approaches(self) -> list[str]: ...
    @property
    def evaluation_data_motivation(self) -> str | None: ...
    @property
    def evaluation_data_preprocessing(self) -> str | None: ...
    @property
    def training_data_description(self) -> str | None: ...
    @property
    def unitary_results(self) -> str | None: ...
    @property
    def intersectional_results(self) -> str | None: ...

    def model_card_json(self, dataset_refs: list[str], evaluation: EvalView | None
                        ) -> dict[str, Any]:
        """The CycloneDX 1.6 ``modelCard`` object (see :func:`model_card_json`)."""
        ...


# -- the twins -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EthicalFields:
    """Twin of ``EthicalConsideration``: a risk and, when known, how it is mitigated."""

    name: str
    mitigation: str | None = None


@dataclass(frozen=True, slots=True)
class CardFields:
    """Twin of ``CardInput``: the same fields, types and defaults, without pydantic."""

    description: str | None = None
    developers: list[str] = field(default_factory=list)
    license: str | None = None
    base_model: list[str] = field(default_factory=list)
    task: str | None = None
    approach: Approach | None = None
    architecture_family: str | None = None
    model_architecture: str | None = None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    intended_use: list[str] = field(default_factory=list)
    intended_users: list[str] = field(default_factory=list)
    out_of_scope_uses: list[str] = field(default_factory=list)
    factors: list[str] = field(default_factory=list)
    ethical_considerations: list[EthicalFields] = field(default_factory=list)
    caveats_and_recommendations: list[str] = field(default_factory=list)
    language: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    model_date: str | None = None
    model_version: str | None = None
    paper: str | None = None
    citation: str | None = None
    contact: str | None = None
    relevant_factors: list[str] = field(default_factory=list)
    evaluation_factors: list[str] = field(default_factory=list)
    performance_measures: list[str] = field(default_factory=list)
    decision_thresholds: list[str] = field(default_factory=list)
    variation_approaches: list[str] = field(default_factory=list)
    evaluation_data_motivation: str | None = None
    evaluation_data_preprocessing: str | None = None
    training_data_description: str | None = None
    unitary_results: str | None = None
    intersectional_results: str | None = None

    def model_card_json(self, dataset_refs: list[str], evaluation: EvalView | None
                        ) -> dict[str, Any]:
        """The CycloneDX 1.6 ``modelCard`` object (see :func:`model_card_json`)."""
        return model_card_json(self, dataset_refs, evaluation)


_FIELD_NAMES: Final = tuple(f.name for f in fields(CardFields))


# -- writing -------------------------------------------------------------------------------


def card_json(card: CardView) -> dict[str, Any]:
    """The card's fields as JSON values, as ``CardInput.model_dump(mode="json")`` gives them.

    (What a ``--card-template`` sees as ``card``.)
    """
    out: dict[str, Any] = {}
    for name in _FIELD_NAMES:
        value = getattr(card, name)
        out[name] = list(value) if isinstance(value, list) else value
    out["ethical_considerations"] = [{"name": e.name, "mitigation": e.mitigation}
                                     for e in card.ethical_considerations]
    return out


def model_card_json(card: CardView, dataset_refs: list[str], evaluation: EvalView | None
                    ) -> dict[str, Any]:
    """The CycloneDX 1.6 ``modelCard`` object of ``card`` (empty parts left out).

    Args:
        card: the human-written parts (a ``CardInput`` or a :class:`CardFields`).
        dataset_refs: the bom-refs of the training datasets' components.
        evaluation: the eval predicate, whose metrics become ``performanceMetrics``.
    """
    parameters: dict[str, Any] = {}
    if card.approach:
        parameters["approach"] = {"type": card.approach}
    for key, value in (("task", card.task), ("architectureFamily", card.architecture_family),
                       ("modelArchitecture", card.model_architecture)):
        if value:
            parameters[key] = value
    if dataset_refs:
        parameters["datasets"] = [{"ref": ref} for ref in dataset_refs]
    if card.inputs:
        parameters["inputs"] = [{"format": f} for f in card.inputs]
    if card.outputs:
        parameters["outputs"] = [{"format": f} for f in card.outputs]
    model_card: dict[str, Any] = {}
    if parameters:
        model_card["modelParameters"] = parameters
    if evaluation is not None:
        metrics = [{"type": name, "value": format_metric(value)}
                   for name, value in sorted(evaluation.metrics.items())]
        metrics += [{"type": name, "value": format_metric(value), "slice": slice_name}
                    for slice_name, values in sorted(evaluation.slices.items())
                    for name, value in sorted(values.items())]
        model_card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations: dict[str, Any] = {}
    for key, values in (("users", card.intended_users), ("useCases", card.intended_use),
                        ("technicalLimitations", card.caveats_and_recommendations)):
        if values:
            considerations[key] = list(values)
    if card.ethical_considerations:
        considerations["ethicalConsiderations"] = [
            {"name": e.name, **({"mitigationStrategy": e.mitigation} if e.mitigation else {})}
            for e in card.ethical_considerations]
    if considerations:
        model_card["considerations"] = considerations
    properties = [{"name": name, "value": value}
                  for name, values in ((OUT_OF_SCOPE, card.out_of_scope_uses),
                                       (FACTOR, card.factors),
                                       (BASE_MODEL, card.base_model))
                  for value in values]
    properties += [{"name": PROPERTY_PREFIX + key, "value": value}
                   for key in EXTRA_LISTS for value in getattr(card, key)]
    properties += [{"name": PROPERTY_PREFIX + key, "value": getattr(card, key)}
                   for key in EXTRA_TEXTS if getattr(card, key) is not None]
    if properties:
        model_card["properties"] = properties
    return model_card


# -- reading -------------------------------------------------------------------------------


class _Refused(Exception):
    """A value ``CardInput`` (or ``EthicalConsideration``) would refuse."""


def _ethical(name: str, mitigation: str | None) -> EthicalFields:
    # EthicalConsideration.name has min_length=1: pydantic measures it as UTF-8, so a
    # name with a lone surrogate (JSON's "\ud800") is refused (string_unicode).
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused from None
    return EthicalFields(name=name, mitigation=mitigation)


def card_from_bom(document: dict[str, Any]) -> CardFields:
    """Read the card back out of a (verified) BOM: ``CardInput.from_bom``'s twin.

    Unknown shapes are skipped; where ``CardInput`` would refuse what is left (a
    blank entry or text, an ethical consideration's name that is not UTF-8), the
    defaults: a BOM written by another tool shows no human-written parts. The
    parts are read in ``from_bom``'s order, so what it raises (``str()`` of an
    integer too long to write, a ``licenses`` that is not a list) is raised here.
    """
    component = _dict(_dict(document.get("metadata")).get("component"))
    card = _dict(component.get("modelCard"))
    parameters = _dict(card.get("modelParameters"))
    considerations = _dict(card.get("considerations"))
    properties = [p for p in _list(card.get("properties")) if isinstance(p, dict)]

    def prop(name: str) -> list[str]:
        return [str(p.get("value")) for p in properties if p.get("name") == name]

    def formats(key: str) -> list[str]:
        return [str(f["format"]) for f in _list(parameters.get(key))
                if isinstance(f, dict) and isinstance(f.get("format"), str)]

    licences = licence_names(component)
    approach = _dict(parameters.get("approach")).get("type")
    try:
        fields: dict[str, Any] = dict(
            description=_str(component.get("description")),
            developers=[str(a["name"]) for a in _list(component.get("authors"))
                        if isinstance(a, dict) and isinstance(a.get("name"), str)],
            license=licences[0] if licences else None,
            base_model=prop(BASE_MODEL),
            task=_str(parameters.get("task")),
            approach=approach if approach in get_args(Approach) else None,
            architecture_family=_str(parameters.get("architectureFamily")),
            model_architecture=_str(parameters.get("modelArchitecture")),
            inputs=formats("inputs"), outputs=formats("outputs"),
            intended_use=_strings(considerations.get("useCases")),
            intended_users=_strings(considerations.get("users")),
            out_of_scope_uses=prop(OUT_OF_SCOPE), factors=prop(FACTOR),
            ethical_considerations=[
                _ethical(e["name"], _str(e.get("mitigationStrategy")))
                for e in _list(considerations.get("ethicalConsiderations"))
                if isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"]],
            caveats_and_recommendations=_strings(considerations.get("technicalLimitations")),
            **{key: prop(PROPERTY_PREFIX + key) for key in EXTRA_LISTS},
            **{key: next(iter(prop(PROPERTY_PREFIX + key)), None) for key in EXTRA_TEXTS})
    except _Refused:
        return CardFields()
    # CardInput's validators: no blank entry in a list, no blank text.
    if any(not v.strip() for key in LIST_FIELDS for v in fields[key]) or any(
            fields[key] is not None and not fields[key].strip() for key in TEXT_FIELDS):
        return CardFields()
    return CardFields(**fields)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _strings(value: Any) -> list[str]:
    return [v for v in _list(value) if isinstance(v, str) and v.strip()]


def licence_names(component: dict[str, Any]) -> tuple[str, ...]:
    """The licences a CycloneDX component states: SPDX ids, names or one expression."""
    names = []
    for entry in component.get("licenses") or []:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("expression"), str):
            names.append(entry["expression"])
        licence = entry.get("license")
        if isinstance(licence, dict):
            value = licence.get("id") or licence.get("name")
            if isinstance(value, str):
                names.append(value)
    return tuple(names)
