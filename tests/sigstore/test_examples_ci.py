"""examples/ci/: the workflows' own commands, run against the local Sigstore instance.

The training job's steps run as written (its ``mlprov attest --sigstore`` is
pointed at the stub with ``--trust-config``, the only change), in a GitHub
Actions-like environment whose ambient OIDC token names the example workflow;
then the deploy job's verify command runs with the example trust file (plus a
``trusted_root`` naming the local instance). A token for another workflow or a
fork is refused at deploy time.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlprov.trust import load_trust
from tests.sigstore.fake_instance import GITHUB_ISSUER
from tests.sigstore.stub_server import StubServer, github_subject

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
REPO = "YOUR-ORG/YOUR-REPO"


def workflow(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CI / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def step(job: dict[str, Any], name: str) -> str:
    [found] = [s["run"] for s in job["steps"] if s.get("name", "").startswith(name)]
    return str(found)


def mlprov_args(script: str) -> list[str]:
    """A ``run:`` script holding one mlprov command, as CLI arguments."""
    [command] = [line for line in script.replace("\\\n", " ").splitlines() if line.strip()]
    words = shlex.split(command)
    assert words[0] == "mlprov"
    return words[1:]


def test_workflows_grant_only_what_keyless_signing_needs():
    train = workflow("train-and-attest.yml")
    assert train["permissions"] == {"contents": "read"}
    job = train["jobs"]["train"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert "--sigstore" in mlprov_args(step(job, "Attest"))
    [upload] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["with"]["path"].split() == ["model/", "evidence/"]
    deploy = workflow("deploy.yml")
    assert deploy["on"]["workflow_run"]["workflows"] == [train["name"]]
    assert "id-token" not in deploy["permissions"]
    verify = mlprov_args(step(deploy["jobs"]["deploy"], "Verify"))
    assert verify[0] == "verify" and "--trust" in verify and "--key" not in verify


@pytest.mark.parametrize(("subject", "trusted"), [
    (github_subject(REPO, "train-and-attest.yml", "refs/heads/main"), True),
    (github_subject(REPO, "train-and-attest.yml", "refs/tags/v1.2.0"), True),
    (github_subject(REPO, "train-and-attest.yml", "refs/heads/feature"), False),
    (github_subject(REPO, "train-and-attest.yml", "refs/pull/7/merge"), False),
    (github_subject(REPO, "other.yml", "refs/heads/main"), False),
    (github_subject(REPO + "-fork", "train-and-attest.yml", "refs/heads/main"), False),
    (github_subject(REPO, "train-and-attest.yml", "refs/heads/main") + "x", False),
])
def test_example_trust_rule(subject: str, trusted: bool):
    [rule] = load_trust(CI / "trust.yaml").sigstore
    assert rule.matches(subject, GITHUB_ISSUER) is trusted
    assert not rule.matches(subject, "https://token.evil.example")


@pytest.fixture
def checkout(tmp_path: Path, root_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git work tree like the workflow's checkout, the current directory."""
    repo = tmp_path / "repo"
    (repo / "examples" / "ci").mkdir(parents=True)
    shutil.copy(CI.parent / "train_logreg_stdlib.py", repo / "examples")
    trust = (CI / "trust.yaml").read_text() + f"trusted_root: {root_file}\n"
    (repo / "examples" / "ci" / "trust.yaml").write_text(trust)
    env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "CI", "GIT_AUTHOR_EMAIL": "ci@example.com",
           "GIT_COMMITTER_NAME": "CI", "GIT_COMMITTER_EMAIL": "ci@example.com",
           "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "training code"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    monkeypatch.chdir(repo)
    return repo


def run_training_job(run_cli, repo: Path, stub: StubServer, trust_config: Path, *,
                     self_check: bool = True) -> None:
    job = workflow("train-and-attest.yml")["jobs"]["train"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    subprocess.run(["bash", "-euo", "pipefail", "-c", step(job, "Train")], cwd=repo,
                   check=True, capture_output=True, env={**os.environ, "PATH": path})
    env = stub.github_environment()
    attest = [*mlprov_args(step(job, "Attest")), "--trust-config", str(trust_config)]
    r = run_cli(*attest, env=env)
    assert r.exit_code == 0, r.stderr
    if self_check:
        r = run_cli(*mlprov_args(step(job, "Check")), env=env)
        assert r.exit_code == 0, r.stderr


def deploy_verify(run_cli, repo: Path) -> Any:
    # actions/download-artifact puts model/ and evidence/ under artifact/.
    for part in ("model", "evidence"):
        shutil.copytree(repo / part, repo / "artifact" / part)
    return run_cli(*mlprov_args(step(workflow("deploy.yml")["jobs"]["deploy"], "Verify")))


def test_train_attest_upload_then_deploy_verifies(run_cli, checkout: Path, stub: StubServer,
                                                  trust_config: Path):
    stub.ambient_claims = {"repository": REPO, "workflow_file": "train-and-attest.yml"}
    run_training_job(run_cli, checkout, stub, trust_config)
    assert stub.token_requests == 1 and stub.cert_requests == 1
    r = deploy_verify(run_cli, checkout)
    assert r.exit_code == 0, r.stderr
    assert "signed by ci-train (Sigstore https://github.com/YOUR-ORG/YOUR-REPO/" in r.stderr


@pytest.mark.parametrize("claims", [
    {"repository": REPO, "workflow_file": "other.yml"},
    {"repository": "someone/else", "workflow_file": "train-and-attest.yml"},
    {"repository": REPO, "workflow_file": "train-and-attest.yml", "ref": "refs/heads/wip"},
])
def test_deploy_refuses_evidence_from_another_identity(run_cli, checkout, stub, trust_config,
                                                       claims: dict[str, str]):
    stub.ambient_claims = claims
    run_training_job(run_cli, checkout, stub, trust_config, self_check=False)
    r = deploy_verify(run_cli, checkout)
    assert r.exit_code == 1
    assert "which no sigstore identity in examples/ci/trust.yaml trusts" in r.stderr
