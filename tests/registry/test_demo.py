"""examples/demo.py, the README's first command, keeps telling the whole story (issue 6 item 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


@pytest.fixture(params=["embedded", "team"])
def backend(request: pytest.FixtureRequest) -> list[str]:
    """The demo's registry options: none (embedded), or PostgreSQL + S3 on real servers."""
    if request.param == "embedded":
        return []
    url: str = request.getfixturevalue("postgres_url")
    blobs: str = request.getfixturevalue("s3_url")  # sets the AWS_* variables the demo inherits
    return ["--registry", url, "--blobs", blobs]


def test_demo_runs_the_whole_story_offline(tmp_path: Path, backend: list[str]):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--workdir", str(tmp_path / "w"),
                           *backend], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    out = done.stdout
    steps = [
        "registered models:/credit-risk-classifier/1",
        "parent fine-tune-of: credit-risk-classifier sha256:",
        "registered models:/credit-risk-classifier-small/1",
        "verified lineage credit-risk-classifier-small@sha256:",
        "credit-risk-classifier v1: None -> Staging",
        "error: denied by production.rego: moving credit-risk-classifier v1 to Production: "
        "needs 1 approval(s)",
        "credit-risk-classifier v1: Staging -> Production",
        "serving models:/credit-risk-classifier@production -> v1",
        "dry run: deny credit-risk-classifier@production: v1 -> v2",
        "alias production is gated as production: it may point only at a version in "
        "Production (this one is in Staging; promote it first)",
        "credit-risk-classifier v2: Staging -> Production",
        "serving models:/credit-risk-classifier@production -> v2",
        "credit-risk-classifier@production: v2 -> v1 (rollback)",
        "audit log verified: 14 entries",
        "error: audit log does not verify",
        "all steps behaved as expected",
    ]
    position = 0
    for step in steps:  # in this order
        found = out.find(step, position)
        assert found >= 0, (step, out[position:position + 2000])
        position = found
