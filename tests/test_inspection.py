"""``mlprov.inspection``: facts only from verified claims."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlprov
from mlprov.errors import InputError
from mlprov.inspection import INSPECTION_SCHEMA, inspect_evidence, inspection_of
from mlprov.verification import Check, Verdict
from tests.evidence_kit import Evidence, attest_full, write_trust


@pytest.fixture
def ev(make_key, model_dir: Path, tmp_path: Path) -> Evidence:
    return attest_full(tmp_path, model_dir, make_key("ci"), make_key("qa"))


def test_evidence_only_versus_with_the_model(ev: Evidence):
    alone = inspect_evidence(ev.evidence, trust=ev.trust)
    assert alone.ok and alone.evidence_verified and not alone.verified
    assert not alone.files_checked and alone.files.status == "not-checked"
    both = inspect_evidence(ev.evidence, trust=ev.trust, model=ev.model)
    assert both.ok and both.verified and both.files.status == "verified"
    assert both.to_json_dict()["schema"] == INSPECTION_SCHEMA


def test_a_failed_claim_contributes_no_fact(ev: Evidence):
    write_trust(ev.trust, [("ci", ev.ci.public, ["builder", "reviewer"])])
    result = inspect_evidence(ev.evidence, trust=ev.trust, model=ev.model)
    assert not result.ok
    assert result.evaluation.status == "failed" and result.evaluation.facts == {}
    assert result.provenance.status == "verified"
    [claim] = [c for c in result.claims if c.file == "eval.sigstore.json"]
    assert claim.signer is None and claim.required_role == "evaluator"


def test_no_eval_is_absent_not_failed(make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev",
                  commit="0" * 40)
    result = inspect_evidence(tmp_path / "ev", key=key.public)
    assert result.ok
    assert result.evaluation.status == "absent"


def test_an_empty_verdict_shows_nothing_as_fact():
    verdict = Verdict(model="", evidence="e", checks=[Check("index", False, "broken")])
    result = inspection_of(verdict)
    assert not result.ok and not result.evidence_verified
    for section in (result.provenance, result.sbom, result.evaluation, result.card):
        assert section.facts == {}
        assert section.status in ("absent", "failed")


def test_inspect_needs_a_directory(ev: Evidence):
    with pytest.raises(InputError, match="not an evidence directory"):
        inspect_evidence(ev.file("model.sig"), trust=ev.trust)
