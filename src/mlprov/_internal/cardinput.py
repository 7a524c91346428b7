"""The human-written parts of a model card (``--card``) and their place in the SBOM.

:class:`CardInput` is what ``attest --card`` reads; :meth:`CardInput.model_card_json`
writes it into the CycloneDX 1.6 ``modelCard`` of the signed SBOM and
:meth:`CardInput.from_bom` reads it back from a verified one. It sits below both
``mlprov.sbom`` (which embeds it) and ``mlprov.card`` (which renders it, and
re-exports these names): the SBOM never imports the card renderer.

Internal API, not covered by any compatibility promise; the public names are
``mlprov.card.CardInput``, ``mlprov.card.EthicalConsideration`` and
``mlprov.sbom.licence_names``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from pydantic import Field, ValidationError, field_validator

from mlprov.evaluation import format_metric
from mlprov.statements import MlprovModel

if TYPE_CHECKING:
    from mlprov.evaluation import EvalPredicate

__all__ = ["PROPERTY_PREFIX", "Approach", "CardInput", "EthicalConsideration", "licence_names"]


#: CycloneDX ``modelCard.properties`` names for card fields CycloneDX has no field for.
PROPERTY_PREFIX: Final = "mlprov:modelcard:"
_OUT_OF_SCOPE = PROPERTY_PREFIX + "outOfScopeUse"
_FACTOR = PROPERTY_PREFIX + "factor"
_BASE_MODEL = PROPERTY_PREFIX + "baseModel"
Approach = Literal["supervised", "unsupervised", "reinforcement-learning", "semi-supervised",
                   "self-supervised"]


class EthicalConsideration(MlprovModel):
    """A risk and, when known, how it is mitigated."""

    name: str = Field(min_length=1)
    mitigation: str | None = None


#: Card fields kept in the SBOM's ``modelCard.properties`` as
#: ``mlprov:modelcard:<name>`` (CycloneDX has no field for them): lists ...
_EXTRA_LISTS: Final = ("language", "tags", "datasets", "relevant_factors",
                       "evaluation_factors", "performance_measures", "decision_thresholds",
                       "variation_approaches")
#: ... and single texts.
_EXTRA_TEXTS: Final = ("pipeline_tag", "library_name", "license_name", "license_link",
                       "model_date", "model_version", "paper", "citation", "contact",
                       "evaluation_data_motivation", "evaluation_data_preprocessing",
                       "training_data_description", "unitary_results",
                       "intersectional_results")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class CardInput(MlprovModel):
    """The human-written parts of a model card (the ``--card`` file)."""

    description: str | None = None
    developers: list[str] = Field(default_factory=list)
    license: str | None = None
    base_model: list[str] = Field(default_factory=list)
    task: str | None = None
    approach: Approach | None = None
    architecture_family: str | None = None
    model_architecture: str | None = None
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    intended_use: list[str] = Field(default_factory=list)
    intended_users: list[str] = Field(default_factory=list)
    out_of_scope_uses: list[str] = Field(default_factory=list)
    factors: list[str] = Field(default_factory=list)
    ethical_considerations: list[EthicalConsideration] = Field(default_factory=list)
    caveats_and_recommendations: list[str] = Field(default_factory=list)
    # Hugging Face card metadata (https://huggingface.co/docs/hub/model-cards#card-metadata)
    language: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    datasets: list[str] = Field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    # The rest of Mitchell et al.'s sections
    model_date: str | None = None
    model_version: str | None = None
    paper: str | None = None
    citation: str | None = None
    contact: str | None = None
    relevant_factors: list[str] = Field(default_factory=list)
    evaluation_factors: list[str] = Field(default_factory=list)
    performance_measures: list[str] = Field(default_factory=list)
    decision_thresholds: list[str] = Field(default_factory=list)
    variation_approaches: list[str] = Field(default_factory=list)
    evaluation_data_motivation: str | None = None
    evaluation_data_preprocessing: str | None = None
    training_data_description: str | None = None
    unitary_results: str | None = None
    intersectional_results: str | None = None

    @field_validator("developers", "base_model", "inputs", "outputs", "intended_use",
                     "intended_users", "out_of_scope_uses", "factors",
                     "caveats_and_recommendations", *_EXTRA_LISTS, mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator(*_EXTRA_TEXTS, mode="before")
    @classmethod
    def _dates_as_text(cls, value: Any) -> Any:
        import datetime as dt

        # YAML reads `model_date: 2026-11-30` as a date; the card keeps the text.
        return value.isoformat() if isinstance(value, dt.date) else value

    @field_validator("ethical_considerations", mode="before")
    @classmethod
    def _names_or_objects(cls, value: Any) -> Any:
        value = _as_list(value)
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("developers", "base_model", "inputs", "outputs", "intended_use",
                     "intended_users", "out_of_scope_uses", "factors",
                     "caveats_and_recommendations", *_EXTRA_LISTS)
    @classmethod
    def _no_blanks(cls, value: list[str]) -> list[str]:
        if any(not v.strip() for v in value):
            raise ValueError("entries must not be empty")
        return value

    @field_validator("description", "license", "task", "architecture_family",
                     "model_architecture", *_EXTRA_TEXTS)
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    def model_card_json(self, dataset_refs: list[str], evaluation: EvalPredicate | None
                        ) -> dict[str, Any]:
        """The CycloneDX 1.6 ``modelCard`` object (empty parts left out)."""
        parameters: dict[str, Any] = {}
        if self.approach:
            parameters["approach"] = {"type": self.approach}
        for key, value in (("task", self.task), ("architectureFamily", self.architecture_family),
                           ("modelArchitecture", self.model_architecture)):
            if value:
                parameters[key] = value
        if dataset_refs:
            parameters["datasets"] = [{"ref": ref} for ref in dataset_refs]
        if self.inputs:
            parameters["inputs"] = [{"format": f} for f in self.inputs]
        if self.outputs:
            parameters["outputs"] = [{"format": f} for f in self.outputs]
        card: dict[str, Any] = {}
        if parameters:
            card["modelParameters"] = parameters
        if evaluation is not None:
            metrics = [{"type": name, "value": format_metric(value)}
                       for name, value in sorted(evaluation.metrics.items())]
            metrics += [{"type": name, "value": format_metric(value), "slice": slice_name}
                        for slice_name, values in sorted(evaluation.slices.items())
                        for name, value in sorted(values.items())]
            card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
        considerations: dict[str, Any] = {}
        for key, values in (("users", self.intended_users), ("useCases", self.intended_use),
                            ("technicalLimitations", self.caveats_and_recommendations)):
            if values:
                considerations[key] = list(values)
        if self.ethical_considerations:
            considerations["ethicalConsiderations"] = [
                {"name": e.name, **({"mitigationStrategy": e.mitigation} if e.mitigation else {})}
                for e in self.ethical_considerations]
        if considerations:
            card["considerations"] = considerations
        properties = [{"name": name, "value": value}
                      for name, values in ((_OUT_OF_SCOPE, self.out_of_scope_uses),
                                           (_FACTOR, self.factors),
                                           (_BASE_MODEL, self.base_model))
                      for value in values]
        properties += [{"name": PROPERTY_PREFIX + key, "value": value}
                       for key in _EXTRA_LISTS for value in getattr(self, key)]
        properties += [{"name": PROPERTY_PREFIX + key, "value": getattr(self, key)}
                       for key in _EXTRA_TEXTS if getattr(self, key) is not None]
        if properties:
            card["properties"] = properties
        return card

    @classmethod
    def from_bom(cls, document: dict[str, Any]) -> CardInput:
        """Read the card input back out of a (verified) BOM; unknown shapes are skipped."""
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
                base_model=prop(_BASE_MODEL),
                task=_str(parameters.get("task")),
                approach=approach if approach in get_args(Approach) else None,
                architecture_family=_str(parameters.get("architectureFamily")),
                model_architecture=_str(parameters.get("modelArchitecture")),
                inputs=formats("inputs"), outputs=formats("outputs"),
                intended_use=_strings(considerations.get("useCases")),
                intended_users=_strings(considerations.get("users")),
                out_of_scope_uses=prop(_OUT_OF_SCOPE), factors=prop(_FACTOR),
                ethical_considerations=[
                    EthicalConsideration(name=e["name"],
                                         mitigation=_str(e.get("mitigationStrategy")))
                    for e in _list(considerations.get("ethicalConsiderations"))
                    if isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"]],
                caveats_and_recommendations=_strings(considerations.get("technicalLimitations")),
                **{key: prop(PROPERTY_PREFIX + key) for key in _EXTRA_LISTS},
                **{key: next(iter(prop(PROPERTY_PREFIX + key)), None) for key in _EXTRA_TEXTS})
            if all(value is None or value == [] for value in fields.values()):
                # No human-written parts (attest without --card): the defaults, valid as
                # they are; the validator is not built for them (~5 ms in a fresh process).
                return cls.model_construct(**fields)
            return cls(**fields)
        except ValidationError:
            return cls()  # a BOM written by another tool: show no human-written parts


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
