"""Evidence written by earlier mlprov versions keeps verifying (issue 3 item 7).

Every ``tests/assets/mlprov-*/`` directory is checked; see ``tests/assets/README.md``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mlprov
from mlprov.card import render_verified_card
from mlprov.inspection import inspect_evidence

ASSETS = Path(__file__).parent / "assets"
RELEASES = sorted(p for p in ASSETS.glob("mlprov-*") if (p / "trust.yaml").is_file())


def test_there_is_committed_evidence():
    assert [p.name for p in RELEASES][:1] == ["mlprov-0.1.0"]


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_committed_evidence_keeps_verifying(release: Path):
    verdict = mlprov.verify(release / "model", evidence=release / "evidence",
                            trust=release / "trust.yaml")
    assert verdict.verified, [(c.name, c.detail) for c in verdict.failures()]
    assert {"files", "provenance", "sbom", "eval", "card"} <= {c.name for c in verdict.checks}
    assert verdict.evaluation is not None and verdict.sbom is not None


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_committed_evidence_can_be_inspected_and_its_card_rerendered(release: Path):
    result = inspect_evidence(release / "evidence", trust=release / "trust.yaml",
                              model=release / "model")
    assert result.verified
    assert result.provenance.facts["name"]
    assert result.evaluation.facts["metrics"]
    card = render_verified_card(release / "evidence", trust=release / "trust.yaml")
    assert card.startswith("---\n")  # not byte-compared: rendering may improve over versions


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_a_tampered_copy_fails(release: Path, tmp_path: Path):
    copy = tmp_path / release.name
    shutil.copytree(release, copy)
    (copy / "model" / "config.json").write_text("{}\n")
    verdict = mlprov.verify(copy / "model", evidence=copy / "evidence",
                            trust=copy / "trust.yaml")
    assert [c.name for c in verdict.failures()] == ["files"]


def test_no_private_key_is_committed():
    for path in ASSETS.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
