"""examples/team_server_demo.py keeps telling the team's story through a real server process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "team_server_demo.py"


def test_team_demo_runs_the_whole_story(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MLPROV_REGISTRY_FSYNC": "off"}
    done = subprocess.run([sys.executable, str(EXAMPLE), "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, check=False, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    out = done.stdout
    steps = [
        "[registry host]$ mlprov server token create",
        "[ci]$ mlprov register model --evidence evidence",
        "models:/credit-risk/1",
        "error: ci may not move credit-risk to Staging (roles: registrar)",
        "credit-risk v1: None -> Staging",
        "error: denied by production.rego: moving credit-risk v1 to Production",
        "[alice]$ mlprov review add credit-risk 1",
        "credit-risk v1: Staging -> Production",
        "credit-risk@production: unset -> v1",
        "error: serving may not set credit-risk@production (roles: reader)",
        "pulled models:/credit-risk/1",
        "serving models:/credit-risk@production -> v1",
        "model.register by ci, stage.transition by release-manager",
        "refused, in the signed trail too: ci (promote credit-risk Staging), "
        "serving (alias credit-risk @production)",
        "audit log verified: 9 entries",
        "error: the decision that put models:/credit-risk/1 at "
        "models:/credit-risk@production does not match",
        "SIGTERM: the server stopped, exit 0",
        "demo: all steps behaved as expected",
    ]
    position = 0
    for step in steps:  # in this order
        found = out.find(step, position)
        assert found >= 0, (step, out[position:position + 3000])
        position = found + len(step)
