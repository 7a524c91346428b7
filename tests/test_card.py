"""MODEL_CARD.md: Mitchell et al. sections, a Hugging Face header, re-rendered from evidence."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from hypothesis import given, settings
from hypothesis import strategies as st

import mlprov
from mlprov.card import (
    CardInput,
    card_facts,
    card_from_verdict,
    load_card_input,
    render_card,
    render_verified_card,
)
from mlprov.errors import InputError, VerificationError
from mlprov.evaluation import EvalPredicate, Evaluator
from mlprov.identity import IdentityInputs, code_from_commit
from mlprov.provenance import build_provenance, read_provenance
from mlprov.sbom import build_bom, sbom_info
from mlprov.statements import ResourceDescriptor
from tests.conftest import COMMIT
from tests.evidence_kit import TRAIN, Evidence, attest_full, write_trust

MITCHELL = ["Model details", "Intended use", "Factors", "Metrics", "Evaluation data",
            "Training data", "Quantitative analyses", "Ethical considerations",
            "Caveats and recommendations"]


@pytest.fixture
def ev(make_key, model_dir: Path, tmp_path: Path) -> Evidence:
    return attest_full(tmp_path, model_dir, make_key("ci"), make_key("qa"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_huggingface_parses_the_card(ev: Evidence, offline):
    card = ModelCard.load(ev.file("MODEL_CARD.md"))  # a local path: no Hub access
    data = card.data
    assert data.license == "apache-2.0"
    assert data.datasets == ["acme/corpus"]
    assert data.base_model == "acme/credit-base"
    assert data.model_name == "credit-risk"
    results = {(r.metric_type, r.metric_name): r for r in data.eval_results}
    assert results[("auc", "auc")].metric_value == 0.91
    assert results[("accuracy", "accuracy")].metric_value == 0.87
    assert results[("auc", "auc (slice: age<30)")].metric_value == 0.88
    assert all(r.task_type == "tabular-classification" for r in data.eval_results)
    assert {r.dataset_type for r in data.eval_results} == {"acme/holdout"}
    assert data.to_dict()["mlprov"]["identity"].startswith("mlid:sha256:")
    headings = [line[3:] for line in card.text.splitlines() if line.startswith("## ")]
    assert [h for h in headings if h in MITCHELL] == MITCHELL


def test_card_body_holds_the_signed_facts(ev: Evidence):
    text = ev.file("MODEL_CARD.md").read_text()
    for needle in ("# Model card: credit-risk", "Scores loan applications for default risk.",
                   f"commit `{COMMIT}`", "`https://ci.example/train`", "`run-42`",
                   "| auc | 0.91 |", "| age<30 | auc | 0.88 |",
                   "| holdout | `sha256:" + "1" * 64, "| train | `sha256:" + "2" * 64,
                   "- final credit decisions without human review", "- applicant age group",
                   "- age is a protected attribute (mitigation: per-slice AUC reported)",
                   "- trained on synthetic data; re-evaluate before use",
                   "3 Python packages", "| Base model | acme/credit-base |"):
        assert needle in text, needle


def test_rerendering_from_verified_evidence_gives_the_same_bytes(ev: Evidence):
    assert render_verified_card(ev.evidence, trust=ev.trust) == \
        ev.file("MODEL_CARD.md").read_text()


def test_whole_floats_render_as_the_signed_json_writes_them(make_key, model_dir, tmp_path):
    # RFC 8785 writes 1.0 as 1: the card attest writes must be the one `mlprov card`
    # re-renders from the signed statements (it showed 1.0 where the re-render shows 1).
    key = make_key("ci")
    result = mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev",
                           commit=COMMIT, metrics={"accuracy": 1.0, "auc": 0.5},
                           config={"lr": 1.0, "nested": {"momentum": 2.0}})
    card = (result.evidence_dir / "MODEL_CARD.md").read_text()
    assert render_verified_card(result.evidence_dir, key=key.public) == card
    assert "| accuracy | 1 |" in card and "| lr | `1` |" in card


def test_card_is_not_rendered_from_a_failed_claim(ev: Evidence):
    write_trust(ev.trust, [("ci", ev.ci.public, ["builder"])])
    verdict = mlprov.verify(None, evidence=ev.evidence, trust=ev.trust)
    with pytest.raises(VerificationError, match=r"eval\.sigstore\.json"):
        card_from_verdict(verdict)


def _facts(card: CardInput, *, parents: list[ResourceDescriptor] | None = None,
           evaluation: EvalPredicate | None = None):
    inputs = IdentityInputs(code=code_from_commit(COMMIT), data=[TRAIN])
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    statement = build_provenance(name="m", root="a" * 64, inputs=inputs, started_on=moment,
                                 finished_on=moment, parents=parents)
    prov = read_provenance(statement, what="p")
    bom = build_bom(provenance=prov, root="a" * 64, packages=[], card=card,
                    evaluation=evaluation)
    return card_facts(prov, "a" * 64, evaluation, sbom_info(bom))


def test_base_model_from_the_provenance_parents(offline):
    parent = ResourceDescriptor(name="parent:fine-tune-of:acme-base", digest={"sha256": "b" * 64},
                                annotations={"role": "fine-tune-of", "name": "acme-base"})
    text = render_card(_facts(CardInput(), parents=[parent]))
    card = ModelCard(text)
    assert card.data.base_model == "acme-base"
    assert "| Parent (fine-tune-of) | acme-base, `sha256:" + "b" * 64 in text
    assert card.data.license is None and card.data.eval_results is None
    assert "_No evaluation was attested" in text


@pytest.mark.parametrize(("licence", "header"), [
    ("MIT", {"license": "mit"}),
    ("llama2", {"license": "llama2"}),
    ("Apache-2.0 OR MIT", {"license": "other", "license_name": "Apache-2.0 OR MIT"}),
    ("ACME Research Licence v1", {"license": "other",
                                  "license_name": "ACME Research Licence v1"}),
])
def test_licence_header(licence, header, offline):
    data = ModelCard(render_card(_facts(CardInput(license=licence)))).data.to_dict()
    assert {k: data.get(k) for k in header} == header


def test_table_cells_are_escaped():
    evaluation = EvalPredicate(evaluator=Evaluator(id="x:y"), metrics={"a|b": 1},
                               slices={"p|q\nr": {"m": 2}})
    text = render_card(_facts(CardInput(task="t|u"), evaluation=evaluation))
    assert "| a\\|b | 1 |" in text
    assert "| p\\|q r | m | 2 |" in text
    assert "| Task | t\\|u |" in text


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=20).filter(lambda s: s.strip())


@settings(max_examples=25, deadline=None)
@given(card=st.builds(
    CardInput, description=st.none() | _text, developers=st.lists(_text, max_size=2),
    license=st.sampled_from([None, "MIT", "Apache-2.0", "other-licence"]),
    task=st.none() | _text, intended_use=st.lists(_text, max_size=2),
    out_of_scope_uses=st.lists(_text, max_size=2), factors=st.lists(_text, max_size=2),
    caveats_and_recommendations=st.lists(_text, max_size=2),
    language=st.lists(st.sampled_from(["en", "de", "fr"]), max_size=2, unique=True),
    tags=st.lists(_text, max_size=2), pipeline_tag=st.none() | _text,
    library_name=st.none() | _text, citation=st.none() | _text,
    decision_thresholds=st.lists(_text, max_size=2),
    training_data_description=st.none() | _text))
def test_any_card_input_round_trips_and_parses(card: CardInput):
    facts = _facts(card)
    assert facts.card == card  # what the card shows is what was given
    text = render_card(facts)
    assert render_card(facts) == text  # deterministic
    assert ModelCard(text).data.model_name is None  # parses (no eval: no model-index)


def test_load_card_input(tmp_path: Path):
    path = tmp_path / "card.yaml"
    path.write_text("intended_use: one use\nethical_considerations: [plain]\n"
                    "developers: ACME\n")
    card = load_card_input(path)
    assert card.intended_use == ["one use"] and card.developers == ["ACME"]
    assert card.ethical_considerations[0].name == "plain"
    path.write_text("")
    assert load_card_input(path) == CardInput()


@pytest.mark.parametrize(("text", "needle"), [
    ("licence: mit\n", "licence: Extra inputs are not permitted"),
    ("approach: clustering\n", "approach"),
    ("task: ''\n", "task: must not be empty"),
    ("factors: ['', x]\n", "entries must not be empty"),
    ("task: a\ntask: b\n", "duplicate key"),
    ("[1, 2]\n", "not a mapping"),
    ("task: [unclosed\n", "not valid YAML"),
])
def test_card_input_errors(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "card.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_card_input(path)


HF_CARD = """\
language: [en, de]
license: other
license_name: ACME model licence 1.0
license_link: https://acme.example/licence
tags: [credit, tabular]
datasets: [acme/loans-2025]
pipeline_tag: tabular-classification
library_name: sklearn
model_date: 2026-11-30
model_version: "3"
citation: ACME (2026). Credit risk model.
contact: risk@acme.example
relevant_factors: [age group]
evaluation_factors: [region]
performance_measures: [AUC, because classes are imbalanced]
decision_thresholds: [0.5 for approval review]
variation_approaches: [bootstrap over 1000 resamples]
evaluation_data_motivation: held-out quarter
evaluation_data_preprocessing: same as training
training_data_description: loans 2020-2024
unitary_results: AUC 0.91 overall
intersectional_results: AUC 0.88 for age<30 in region north
"""


def test_hugging_face_metadata_and_every_mitchell_section(make_key, model_dir, tmp_path,
                                                          offline):
    """card.yaml as teams write it for the Hub (issue 11 item 9); hyperparameters listed."""
    card_file = tmp_path / "card.yaml"
    card_file.write_text(HF_CARD)
    ci = make_key("ci")
    evidence = tmp_path / "evidence"
    mlprov.attest(model_dir, name="credit-risk", key=ci.private, out=evidence, commit=COMMIT,
                  data=[TRAIN], card=card_file, config={"model": {"C": 0.5, "penalty": "l2"}},
                  params={"max_iter": 200}, seeds={"numpy": 7})
    text = (evidence / "MODEL_CARD.md").read_text()
    data = ModelCard(text).data.to_dict()
    assert data["language"] == ["en", "de"]
    assert data["license"] == "other" and data["license_name"] == "ACME model licence 1.0"
    assert data["license_link"] == "https://acme.example/licence"
    assert data["tags"] == ["mlprov", "credit", "tabular"]
    assert "acme/loans-2025" in data["datasets"]
    assert data["pipeline_tag"] == "tabular-classification"
    assert data["library_name"] == "sklearn"
    for needle in ("| model.C | `0.5` |", '| model.penalty | `"l2"` |', "| max_iter | `200` |",
                   "| seed numpy | `7` |", "### Decision thresholds", "0.5 for approval review",
                   "### Intersectional results", "### Evaluation factors", "| Model date | "
                   "2026-11-30 |", "risk@acme.example", "loans 2020-2024"):
        assert needle in text, needle
    trust = write_trust(tmp_path / "trust.yaml", [("ci", ci.public, ["builder"])])
    assert render_verified_card(evidence, trust=trust) == text  # re-rendered from evidence
    assert load_card_input(card_file).license_name == "ACME model licence 1.0"
