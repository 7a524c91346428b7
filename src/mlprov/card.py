"""The model card: ``MODEL_CARD.md``, rendered from signed evidence.

The card has the sections of Mitchell et al., "Model Cards for Model Reporting"
(FAT* 2019, https://arxiv.org/abs/1810.03993): model details, intended use,
factors, metrics, evaluation data, training data, quantitative analyses,
ethical considerations, caveats and recommendations. Its YAML header follows
the Hugging Face model card metadata (``license``, ``datasets``, ``base_model``,
``model-index`` with the metrics; https://huggingface.co/docs/hub/model-cards).

Every fact on the card comes from a signed statement: name, identity, digests,
code, data and builder from the provenance; metrics from the eval statement;
the human-written parts (``--card FILE``) from the SBOM's ``modelCard``, where
:meth:`CardInput.model_card_json` puts them and :meth:`CardInput.from_bom` reads
them back. So ``mlprov card`` re-renders the same card from verified evidence,
and the card's SHA-256, recorded in the signed SBOM, binds it.

The ``--card`` file (YAML or JSON), every key optional::

    description: Scores loan applications for default risk.
    developers: [ACME risk team]
    license: apache-2.0
    base_model: acme/credit-base          # or a list; else parents from the provenance
    task: tabular-classification
    approach: supervised                  # CycloneDX: supervised, unsupervised, ...
    architecture_family: logistic-regression
    model_architecture: 4 features -> sigmoid
    inputs: [tabular]
    outputs: [probability of default]
    intended_use: [pre-screening of consumer loan applications]
    intended_users: [credit analysts]
    out_of_scope_uses: [final credit decisions without human review]
    factors: [applicant age group]
    ethical_considerations:
      - name: age is a protected attribute in some jurisdictions
        mitigation: per-slice AUC reported; threshold reviewed
    caveats_and_recommendations: [trained on synthetic data]
    language: [en]                        # Hugging Face metadata, as the Hub spells it:
    tags: [credit, tabular]               #   language, tags, datasets, pipeline_tag,
    pipeline_tag: tabular-classification  #   library_name, license_name, license_link
    library_name: sklearn
    model_date: 2026-11-30                # the rest of Mitchell et al.: model_version,
    decision_thresholds: [0.5]            #   paper, citation, contact, relevant_factors,
                                          #   evaluation_factors, performance_measures,
                                          #   variation_approaches, evaluation_data_*,
                                          #   training_data_description, unitary_results,
                                          #   intersectional_results

The Training data section lists the training configuration (every hyperparameter)
and the seeds from the provenance.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov import __version__
from mlprov._internal.arguments import PATH, TRUST, checked, optional
from mlprov._internal.cardfields import PROPERTY_PREFIX as PROPERTY_PREFIX
from mlprov._internal.cardfields import Approach as Approach
from mlprov._internal.cardfields import CardView, format_metric
from mlprov._internal.display import validator_words
from mlprov._internal.parents import ParentRef, parents_from_predicate
from mlprov._internal.readers import MAX_CARD_BYTES, load_yaml, read_text
from mlprov.errors import InputError, VerificationError
from mlprov.evidence import EVAL_FILE, PROVENANCE_FILE, SBOM_BUNDLE_FILE, SBOM_FILE

if TYPE_CHECKING:
    from mlprov._internal.cardinput import CardInput as CardInput
    from mlprov._internal.cardinput import EthicalConsideration as EthicalConsideration
    from mlprov._internal.provenance_reader import ProvenanceFacts
    from mlprov.evaluation import EvalPredicate
    from mlprov.provenance import TrainingProvenance
    from mlprov.sbom import SbomInfo
    from mlprov.trust import Trust
    from mlprov.verification import Verdict

__all__ = [
    "CardFacts",
    "CardInput",
    "EthicalConsideration",
    "card_facts",
    "card_from_verdict",
    "card_metadata",
    "load_card_input",
    "metadata_yaml",
    "render_card",
    "render_verified_card",
]

_HF_ID = re.compile(r"\A[a-z0-9][a-z0-9.+-]*\Z")
_HF_DATASET = re.compile(r"\Ahf://datasets/([^@]+?)(?:@.*)?\Z")


@checked(path=PATH)
def load_card_input(path: Path) -> CardInput:
    """Read a ``--card`` file (YAML or JSON; see the module docstring).

    Example:
        card = load_card_input(Path("card.yaml"))

    Raises:
        InputError: unreadable, not a mapping, an unknown key or a bad value.
    """
    try:
        text = read_text(path, what="card file", limit=MAX_CARD_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read card file {path}: {exc.strerror}") from exc
    document = load_yaml(text, what=f"card file {path}")
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise InputError(f"card file {path} is not a mapping at the top level")
    from pydantic import ValidationError

    from mlprov._internal.cardinput import CardInput

    try:
        return CardInput.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        message = validator_words(str(first["msg"]))
        raise InputError(f"card file {path}: {where}: {message}",
                         hint="see docs/sbom-eval-card.md for the card file's keys") from exc


# ---------------------------------------------------------------------------
# Facts and rendering
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CardFacts:
    """Everything a card shows, each taken from a signed statement."""

    provenance: TrainingProvenance | ProvenanceFacts
    root_digest: str  # hex
    card: CardView  # a CardInput, or its twin CardFields (card_facts's read_card)
    evaluation: EvalPredicate | None
    package_count: int
    licenses: dict[str, int]
    parents: tuple[ParentRef, ...] = ()


def card_facts(provenance: TrainingProvenance | ProvenanceFacts, root: str,
               evaluation: EvalPredicate | None, sbom: SbomInfo, *,
               read_card: Callable[[dict[str, Any]], CardView] | None = None) -> CardFacts:
    """Gather the card's facts from verified (or just built) statements.

    ``read_card`` reads the human-written parts out of the SBOM: by default
    :meth:`CardInput.from_bom`; ``mlprov._internal.cardfields.card_from_bom``
    gives the same fields without pydantic (and the same rendered card).
    """
    if read_card is None:
        from mlprov._internal.cardinput import CardInput

        read_card = CardInput.from_bom
    return CardFacts(provenance=provenance, root_digest=root,
                     card=read_card(sbom.document), evaluation=evaluation,
                     package_count=len(sbom.packages), licenses=sbom.license_counts(),
                     parents=parents_from_predicate(provenance.predicate))


def _cell(text: object) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _line(text: str) -> str:
    return " ".join(text.split())


def _bullets(items: list[str], empty: str = "_Not stated._") -> list[str]:
    return [f"- {_line(i)}" for i in items] if items else [empty]


def _hf_license(licence: str | None, card: CardView | None = None) -> dict[str, Any]:
    """HF ``license`` (lower-case SPDX id or HF id), else ``other`` with ``license_name``."""
    if card is not None and card.license_name and (not licence or licence.lower() == "other"):
        named: dict[str, Any] = {"license": "other", "license_name": card.license_name}
        if card.license_link:
            named["license_link"] = card.license_link
        return named
    if not licence:
        return {}
    from mlprov.sbom import is_spdx_id

    if is_spdx_id(licence) or _HF_ID.match(licence):
        return {"license": licence.lower()}
    return {"license": "other", "license_name": licence}


def _dataset_id(name: str, uri: str | None) -> str:
    match = _HF_DATASET.match(uri or "")
    return match.group(1) if match else name


def _metric_entries(evaluation: EvalPredicate) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [{"type": name, "value": value, "name": name}
                                     for name, value in sorted(evaluation.metrics.items())]
    entries += [{"type": name, "value": value, "name": f"{name} (slice: {slice_name})"}
                for slice_name, values in sorted(evaluation.slices.items())
                for name, value in sorted(values.items())]
    return entries


def _header(facts: CardFacts) -> dict[str, Any]:
    prov, card = facts.provenance, facts.card
    header: dict[str, Any] = {}
    if card.language:
        header["language"] = card.language[0] if len(card.language) == 1 else card.language
    header.update(_hf_license(card.license, card))
    if card.library_name:
        header["library_name"] = card.library_name
    if card.pipeline_tag:
        header["pipeline_tag"] = card.pipeline_tag
    datasets = list(dict.fromkeys([_dataset_id(d.name, d.uri) for d in prov.inputs.data]
                                  + card.datasets))
    if datasets:
        header["datasets"] = datasets
    base = card.base_model or [p.name for p in facts.parents]
    if base:
        header["base_model"] = base[0] if len(base) == 1 else base
    header["tags"] = list(dict.fromkeys(["mlprov", *card.tags]))
    if facts.evaluation is not None:
        evaluation = facts.evaluation
        names = [d.name for d in evaluation.datasets]
        dataset = ({"type": _dataset_id(evaluation.datasets[0].name, evaluation.datasets[0].uri),
                    "name": ", ".join(names)} if names
                   else {"type": "unspecified", "name": "unspecified evaluation data"})
        header["model-index"] = [{"name": prov.name, "results": [{
            "task": {"type": card.task or "other"},
            "dataset": dataset,
            "metrics": _metric_entries(evaluation)}]}]
    header["mlprov"] = {"identity": prov.identity, "rootDigest": f"sha256:{facts.root_digest}"}
    return header


def card_metadata(facts: CardFacts) -> dict[str, Any]:
    """The card's Hugging Face metadata (its YAML header) as a mapping."""
    return _header(facts)


def metadata_yaml(facts: CardFacts) -> str:
    """The YAML header's text, without the ``---`` lines (the Hub's ``card_data``)."""
    import yaml

    return yaml.safe_dump(_header(facts), sort_keys=False, allow_unicode=True,
                          width=4096).rstrip("\n")


def render_card(facts: CardFacts) -> str:
    """Render ``MODEL_CARD.md`` (deterministic: the same facts give the same bytes)."""
    prov, card, evaluation = facts.provenance, facts.card, facts.evaluation
    code = prov.inputs.code
    lines = ["---", metadata_yaml(facts), "---", "",
             f"# Model card: {_line(prov.name)}", ""]
    if card.description:
        lines += [card.description.strip(), ""]
    lines += [f"Generated by mlprov {__version__} from signed evidence: the provenance "
              f"(`{PROVENANCE_FILE}`), the SBOM (`{SBOM_BUNDLE_FILE}`, which records this "
              f"card's SHA-256) and the evaluation (`{EVAL_FILE}`). Check them with "
              "`mlprov verify MODEL --evidence DIR --trust TRUST` or `mlprov inspect DIR`.", ""]

    code_text = f"`{code.uri}` at " if code.uri else ""
    code_text += f"commit `{code.commit}`" + (" (uncommitted changes)" if code.dirty else "")
    rows = [("Name", prov.name), ("Version identity", f"`{prov.identity}`"),
            ("Root digest", f"`sha256:{facts.root_digest}` (SHA-256 over the files' SHA-256 "
                            "digests, the OpenSSF model-signing rule)")]
    if card.developers:
        rows.append(("Developers", ", ".join(card.developers)))
    rows.append(("Licence", card.license_name or card.license or "not stated"))
    for label, value in (("Model date", card.model_date), ("Model version", card.model_version),
                         ("Paper", card.paper), ("Citation", card.citation),
                         ("Contact", card.contact), ("Library", card.library_name),
                         ("Languages", ", ".join(card.language))):
        if value:
            rows.append((label, value))
    for label, value in (("Task", card.task), ("Approach", card.approach),
                         ("Architecture family", card.architecture_family),
                         ("Architecture", card.model_architecture)):
        if value:
            rows.append((label, value))
    if card.inputs:
        rows.append(("Inputs", ", ".join(card.inputs)))
    if card.outputs:
        rows.append(("Outputs", ", ".join(card.outputs)))
    rows += [("Training code", code_text), ("Builder", f"`{prov.builder_id}`")]
    if prov.invocation_id:
        rows.append(("Training run", f"`{prov.invocation_id}`"))
    if prov.started_on or prov.finished_on:
        rows.append(("Trained", f"{prov.started_on or '?'} to {prov.finished_on or '?'}"))
    for parent in facts.parents:
        digest = f", `sha256:{parent.sha256}`" if parent.sha256 else ""
        rows.append((f"Parent ({parent.role})", f"{parent.name}{digest}"))
    for base in card.base_model:
        rows.append(("Base model", base))
    lines += ["## Model details", "", "| | |", "| --- | --- |"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows]

    lines += ["", "## Intended use", "", "### Primary intended uses", "",
              *_bullets(card.intended_use), "", "### Primary intended users", "",
              *_bullets(card.intended_users), "", "### Out-of-scope uses", "",
              *_bullets(card.out_of_scope_uses)]
    lines += ["", "## Factors", "", *_bullets(card.factors)]
    lines += _subsection("Relevant factors", _bullets(card.relevant_factors, ""))
    lines += _subsection("Evaluation factors", _bullets(card.evaluation_factors, ""))

    lines += ["", "## Metrics", ""]
    if evaluation is None:
        lines.append("_No evaluation was attested (attest with `--metrics`)._")
    else:
        names = sorted({*evaluation.metrics, *(m for s in evaluation.slices.values() for m in s)})
        lines.append("Reported: " + ", ".join(f"`{_line(n)}`" for n in names) + ".")
        if evaluation.slices:
            lines.append("Per slice: " + ", ".join(f"`{_line(s)}`"
                                                   for s in sorted(evaluation.slices)) + ".")
        lines.append(f"Evaluator: `{evaluation.evaluator.id}`.")
    lines += _subsection("Model performance measures", _bullets(card.performance_measures, ""))
    lines += _subsection("Decision thresholds", _bullets(card.decision_thresholds, ""))
    lines += _subsection("Variation approaches", _bullets(card.variation_approaches, ""))

    lines += ["", "## Evaluation data", ""]
    if evaluation is None or not evaluation.datasets:
        lines.append("_Not stated._")
    else:
        lines += _data_table([(d.name, d.sha256, d.uri) for d in evaluation.datasets])
    lines += _subsection("Motivation", _text(card.evaluation_data_motivation))
    lines += _subsection("Preprocessing", _text(card.evaluation_data_preprocessing))

    lines += ["", "## Training data", ""]
    if prov.inputs.data:
        lines += _data_table([(d.name, d.sha256, d.uri) for d in prov.inputs.data])
    else:
        lines.append("_No dataset was recorded._")
    lines += _subsection("Description", _text(card.training_data_description))
    lines += ["", "### Training configuration and hyperparameters", "",
              *_config_table(prov.inputs.config, prov.inputs.seeds)]

    lines += ["", "## Quantitative analyses", ""]
    if evaluation is None:
        lines.append("_No evaluation was attested._")
    else:
        if evaluation.metrics:
            lines += ["| metric | value |", "| --- | --- |"]
            lines += [f"| {_cell(n)} | {format_metric(v)} |"
                      for n, v in sorted(evaluation.metrics.items())]
        if evaluation.slices:
            lines += ["", "### Per slice", "", "| slice | metric | value |", "| --- | --- | --- |"]
            lines += [f"| {_cell(s)} | {_cell(n)} | {format_metric(v)} |"
                      for s, values in sorted(evaluation.slices.items())
                      for n, v in sorted(values.items())]

    lines += _subsection("Unitary results", _text(card.unitary_results))
    lines += _subsection("Intersectional results", _text(card.intersectional_results))

    lines += ["", "## Ethical considerations", ""]
    lines += _bullets([e.name + (f" (mitigation: {e.mitigation})" if e.mitigation else "")
                       for e in card.ethical_considerations])
    lines += ["", "## Caveats and recommendations", "",
              *_bullets(card.caveats_and_recommendations)]

    lines += ["", "## Training environment", "",
              f"{facts.package_count} Python packages, listed with versions, purls and "
              f"licences in `{SBOM_FILE}` (CycloneDX 1.6)."]
    if facts.licenses:
        lines.append("Licences: " + ", ".join(f"{_line(n)} ({c})"
                                              for n, c in facts.licenses.items()) + ".")
    lines.append("")
    return "\n".join(lines)


def _subsection(title: str, body: list[str]) -> list[str]:
    """A ``###`` subsection, or nothing when it has no body."""
    return ["", f"### {title}", "", *body] if body and body != [""] else []


def _text(value: str | None) -> list[str]:
    return [value.strip()] if value else []


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [item for key in sorted(value)
                for item in _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))]
    return [(prefix, value)]


def _config_table(config: dict[str, Any], seeds: dict[str, int]) -> list[str]:
    """The training config (every hyperparameter, nested keys dotted) and the seeds."""
    import json

    rows = [(key, json.dumps(value, ensure_ascii=False, sort_keys=True))
            for key, value in _flatten(config) if key]
    rows += [(f"seed {name}", str(seed)) for name, seed in sorted(seeds.items())]
    if not rows:
        return ["_No training configuration was recorded._"]
    return ["| parameter | value |", "| --- | --- |",
            *[f"| {_cell(k)} | `{_cell(v).replace('`', chr(39))}` |" for k, v in rows]]


def _data_table(rows: list[tuple[str, str, str | None]]) -> list[str]:
    out = ["| name | digest | location |", "| --- | --- | --- |"]
    out += [f"| {_cell(n)} | `sha256:{d}` | {_cell(u) if u else '-'} |" for n, d, u in rows]
    return out


# ---------------------------------------------------------------------------
# Re-rendering from verified evidence
# ---------------------------------------------------------------------------


def card_from_verdict(verdict: Verdict, *,
                      render: Callable[[CardFacts], str] | None = None) -> str:
    """Render the card from a verdict's verified statements.

    The provenance and the SBOM must have verified, and the eval statement too
    when the SBOM records one; the model's files need not have been checked.
    ``render``: turns the facts into the card (default :func:`render_card`; a
    ``--card-template``'s ``render``, see :mod:`mlprov._internal.card_template`).

    Raises:
        VerificationError: a statement the card needs did not verify.
        InputError: the template fails.
    """
    return _render_verdict(verdict, render or render_card)


def _render_verdict(verdict: Verdict, render: Callable[[CardFacts], str]) -> str:
    failed = [c for c in verdict.checks if c.ok is False]
    if failed:
        raise VerificationError(f"cannot render the card from unverified evidence: "
                                f"{failed[0].name}: {failed[0].detail}")
    provenance, sbom = verdict.provenance, verdict.sbom
    if provenance is None or sbom is None or verdict.root_digest is None:
        raise VerificationError("cannot render the card: the provenance or the SBOM did not "
                                "verify")
    if EVAL_FILE in sbom.pinned and verdict.evaluation is None:
        raise VerificationError(f"cannot render the card: {EVAL_FILE} did not verify")
    root = verdict.root_digest.removeprefix("sha256:")
    return render(card_facts(provenance, root, verdict.evaluation, sbom))


@checked(evidence=PATH, trust=optional(TRUST), key=optional(PATH))
def render_verified_card(evidence: Path | str, *, trust: Trust | Path | str | None = None,
                         key: Path | str | None = None,
                         render: Callable[[CardFacts], str] | None = None) -> str:
    """Verify an evidence directory's statements and re-render its model card.

    Example:
        markdown = render_verified_card("evidence/", trust="trust.yaml")

    Raises:
        VerificationError: the evidence does not verify (named in the message).
        InputError, TrustError, KeyMaterialError: unusable evidence path, trust or
            template.
    """
    from mlprov.verification import verify

    return _render_verdict(verify(None, evidence=evidence, trust=trust, key=key),
                           render or render_card)


def __getattr__(name: str) -> Any:
    """The card input's pydantic models, imported when first named (PEP 562)."""
    if name in ("CardInput", "EthicalConsideration"):
        from mlprov._internal import cardinput

        return getattr(cardinput, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
