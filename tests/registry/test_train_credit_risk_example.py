"""examples/train_credit_risk.py: the seed's scikit-learn workflow, shipped gates (#11 item 11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_credit_risk.py"


def test_the_seed_workflow_runs_with_shipped_gates_and_flags_only(tmp_path: Path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    out = done.stdout
    steps = [
        "mlprov registry init --trust trust.yaml --threshold 'test/auc>=0.85'",
        "registered models:/credit-risk/1",
        "credit-risk v1: None -> Staging",
        # the dry run: only the review is missing (the joblib pickle and metrics pass)
        "dry run: deny credit-risk v1: Staging -> Production",
        "  deny: needs 1 approval(s) by a reviewer who is not the builder; found 0",
        "credit-risk v1: Staging -> Production",
        "credit-risk@production: unset -> v1",
        "serving models:/credit-risk@production -> v1",
        "credit-risk@production: v1 -> v2",
        "serving models:/credit-risk@production -> v2",
        "dry run: allow credit-risk@production: v2 -> v1 (rollback)",
        "credit-risk@production: v2 -> v1 (rollback)",
        "serving models:/credit-risk@production -> v1",
        "audit log verified",
        "all steps behaved as expected",
    ]
    position = 0
    for step in steps:  # in this order
        found = out.find(step, position)
        assert found >= 0, (step, out[position:position + 2000])
        position = found
    # The production gate's dry run named no pickle or metric problem.
    dry_runs = [block for block in out.split("$ ") if "--dry-run" in block.split("\n")[0]]
    for block in dry_runs:
        assert "pickle" not in block and "eval metric" not in block, block
    # Nothing in the policies was edited: the registry holds the shipped set.
    assert "policies/" not in out.split("registry init", 1)[1].split("\n")[0]
