"""examples/lineage_demo.py keeps working (issue 4 item 5): train, fine-tune, distil, verify."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lineage_demo.py"


def test_lineage_demo_runs_offline(tmp_path: Path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    out = done.stdout
    assert "verified lineage credit-risk-student@sha256:" in out
    assert "`-- fine-tune-of: credit-risk-base@sha256:" in out
    assert "credit-risk-ft@sha256:" in out and "(fine-tune-of): model files at" in out
    assert "all steps behaved as expected" in out
    for name in ("base", "ft", "student"):
        assert (tmp_path / "w" / name / "evidence" / "provenance.sigstore.json").is_file()
