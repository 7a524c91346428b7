"""No ``Traceback`` and no ``Exception ignored`` after any gated command (issue 10 item 10).

Run through the installed ``mlprov`` console script, as users and CI run it: regopy's
objects outliving its module at exit printed ``Exception ignored in: <function
Bundle.__del__ ...>`` after every gated command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlprov.policy import shipped_policies_dir

MLPROV = Path(sys.executable).with_name("mlprov")


def run(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MLPROV), *map(str, args)], capture_output=True, text=True,
                          env=env, check=False)


@pytest.mark.skipif(not MLPROV.is_file(), reason="the console script is not installed")
def test_gated_commands_leave_stderr_clean(tmp_path, keys, make_model, approve):
    env = {**os.environ, "MLPROV_HOME": str(tmp_path / "reg"), "MLPROV_REGISTRY_FSYNC": "off"}
    m, m2 = make_model(), make_model()
    review = approve(m)
    steps = [
        (("registry", "init", "--trust", keys.trust), 0),
        (("register", m.model, "--evidence", m.evidence), 0),
        (("register", m2.model, "--evidence", m2.evidence), 0),
        (("policy", "check", "--policy", shipped_policies_dir(), "--evidence", m.evidence,
          "--model", m.model, "--trust", keys.trust, "--to", "Production"), 1),
        (("promote", "credit-risk", "1", "--to", "Staging", "--reason", "eval ok"), 0),
        (("promote", "credit-risk", "1", "--to", "Production", "--reason", "no review"), 1),
        (("review", "add", "credit-risk", "1", review), 0),
        (("promote", "credit-risk", "1", "--to", "Production", "--reason", "approved"), 0),
        (("alias", "set", "credit-risk", "production", "1", "--reason", "serve"), 0),
        (("alias", "set", "credit-risk", "canary", "1", "--reason", "try"), 0),
        (("alias", "set", "credit-risk", "canary", "2", "--reason", "try 2"), 0),
        (("rollback", "credit-risk", "--alias", "canary", "--reason", "back"), 0),
        (("resolve", "models:/credit-risk@production"), 0),
        (("pull", "models:/credit-risk@production", "--out", tmp_path / "pulled"), 0),
        (("audit", "verify"), 0),
        (("policy", "test", shipped_policies_dir()), 0),
    ]
    for args, expected in steps:
        done = run(*args, env=env)
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, \
            (args, done.stderr)
        assert done.returncode == expected, (args, done.returncode, done.stderr)
