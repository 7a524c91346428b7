"""The human-written parts of a model card (``--card``) and their place in the SBOM.

:class:`CardInput` is what ``attest --card`` reads; :meth:`CardInput.model_card_json`
writes it into the CycloneDX 1.6 ``modelCard`` of the signed SBOM and
:meth:`CardInput.from_bom` reads it back from a verified one. It sits below both
``mlprov.sbom`` (which embeds it) and ``mlprov.card`` (which renders it, and
re-exports these names): the SBOM never imports the card renderer.

Its pydantic-free twin, for ``attest`` without ``--card``, is
:class:`mlprov._internal.cardfields.CardFields` (``card_from_bom`` there is
:meth:`CardInput.from_bom`'s twin); the one ``modelCard`` writer, which
:meth:`CardInput.model_card_json` calls, and the constants live there too.

Internal API, not covered by any compatibility promise; the public names are
``mlprov.card.CardInput``, ``mlprov.card.EthicalConsideration`` and
``mlprov.sbom.licence_names``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args

from pydantic import Field, ValidationError, field_validator

from mlprov._internal.cardfields import BASE_MODEL as _BASE_MODEL
from mlprov._internal.cardfields import EXTRA_LISTS as _EXTRA_LISTS
from mlprov._internal.cardfields import EXTRA_TEXTS as _EXTRA_TEXTS
from mlprov._internal.cardfields import FACTOR as _FACTOR
from mlprov._internal.cardfields import OUT_OF_SCOPE as _OUT_OF_SCOPE
from mlprov._internal.cardfields import PROPERTY_PREFIX as PROPERTY_PREFIX
from mlprov._internal.cardfields import Approach as Approach
from mlprov._internal.cardfields import licence_names as licence_names
from mlprov._internal.cardfields import model_card_json
from mlprov.statements import MlprovModel

if TYPE_CHECKING:
    from mlprov._internal.cardfields import EvalView

__all__ = ["PROPERTY_PREFIX", "Approach", "CardInput", "EthicalConsideration", "licence_names"]


class EthicalConsideration(MlprovModel):
    """A risk and, when known, how it is mitigated."""

    name: str = Field(min_length=1)
    mitigation: str | None = None


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

    def model_card_json(self, dataset_refs: list[str], evaluation: EvalView | None
                        ) -> dict[str, Any]:
        """The CycloneDX 1.6 ``modelCard`` object (empty parts left out).

        Written by :func:`mlprov._internal.cardfields.model_card_json`, which its
        pydantic-free twin ``CardFields`` shares.
        """
        return model_card_json(self, dataset_refs, evaluation)

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
