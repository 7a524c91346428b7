"""Helpers for the SBOM / eval / card tests: a fully attested model and evidence surgery."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlprov
from mlprov.bundles import sign_statement
from mlprov.identity import DataRef
from mlprov.signing import load_private_key
from mlprov.statements import Statement
from tests.conftest import COMMIT, KeyPair

METRICS = {
    "metrics": {"auc": 0.91, "accuracy": 0.87},
    "slices": {"age<30": {"auc": 0.88}},
    "datasets": [{"name": "holdout", "digest": "sha256:" + "1" * 64,
                  "uri": "hf://datasets/acme/holdout@r1"}],
}
CARD = """\
description: Scores loan applications for default risk.
developers: [ACME risk team]
license: apache-2.0
base_model: acme/credit-base
task: tabular-classification
approach: supervised
architecture_family: logistic-regression
model_architecture: 4 features -> sigmoid
inputs: [tabular]
outputs: probability of default
intended_use: [pre-screening of consumer loan applications]
intended_users: [credit analysts]
out_of_scope_uses: [final credit decisions without human review]
factors: [applicant age group]
ethical_considerations:
  - name: age is a protected attribute
    mitigation: per-slice AUC reported
  - training data may under-represent some regions
caveats_and_recommendations: [trained on synthetic data; re-evaluate before use]
"""
REQUIREMENTS = """\
# a pinned environment (pip-compile style)
click==8.1.7 \\
    --hash=sha256:ae74fb96c20a0277a1d615f1e4d73c8414f5a98db8b799a7931d1582f3390c28
numpy==1.26.4
torch[cuda]==2.3.0 ; sys_platform == "linux"
--index-url https://pypi.org/simple
"""
TRAIN = DataRef(name="train", digest="sha256:" + "2" * 64, uri="hf://datasets/acme/corpus@r1")


@dataclass(frozen=True)
class Evidence:
    """An attested model: the keys, the trust file, and the evidence directory."""

    model: Path
    evidence: Path
    ci: KeyPair
    qa: KeyPair
    trust: Path

    def file(self, name: str) -> Path:
        return self.evidence / name


def write_inputs(root: Path) -> tuple[Path, Path, Path]:
    """metrics.json, card.yaml and requirements.txt under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    metrics, card, env = root / "metrics.json", root / "card.yaml", root / "requirements.txt"
    metrics.write_text(json.dumps(METRICS))
    card.write_text(CARD)
    env.write_text(REQUIREMENTS)
    return metrics, card, env


def write_trust(path: Path, entries: list[tuple[str, Path, list[str]]]) -> Path:
    lines = ["version: 1", "keys:"]
    for name, public, roles in entries:
        lines.append(f"  - {{name: {name}, public_key: {public}, roles: [{', '.join(roles)}]}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def attest_full(tmp_path: Path, model: Path, ci: KeyPair, qa: KeyPair, *,
                out: str = "evidence", eval_key: bool = True, **extra: Any) -> Evidence:
    """Attest ``model`` with metrics, card and a requirements file; ``qa`` signs the eval."""
    metrics, card, env = write_inputs(tmp_path / "inputs")
    evidence = tmp_path / out
    mlprov.attest(model, name="credit-risk", key=ci.private, out=evidence, commit=COMMIT,
                  data=[TRAIN], seeds={"torch": 7}, metrics=metrics, card=card,
                  environment=env, eval_key=qa.private if eval_key else None,
                  builder_id="https://ci.example/train", invocation_id="run-42", **extra)
    trust = write_trust(tmp_path / "trust.yaml", [("ci", ci.public, ["builder"]),
                                                  ("qa", qa.public, ["evaluator"])])
    return Evidence(model=model, evidence=evidence, ci=ci, qa=qa, trust=trust)


def payload(bundle: Path) -> dict[str, Any]:
    """The in-toto statement inside a bundle file."""
    document = json.loads(bundle.read_bytes())
    statement: dict[str, Any] = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    return statement


def resign(bundle: Path, key: Path, edit: Any = None) -> None:
    """Re-sign the statement in ``bundle`` with ``key``, after ``edit(statement_dict)``."""
    statement = payload(bundle)
    if edit is not None:
        edit(statement)
    bundle.write_bytes(sign_statement(Statement.model_validate(statement),
                                      load_private_key(key)))


def reindex(evidence: Path) -> None:
    """Make evidence.json match the files on disk (what an attacker would do)."""
    index_path = evidence / "evidence.json"
    index = json.loads(index_path.read_text())
    files = {}
    for name in index["files"]:
        path = evidence / name
        if path.exists():
            files[name] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    for extra in ("eval.sigstore.json",):
        if (evidence / extra).exists():
            files[extra] = "sha256:" + hashlib.sha256((evidence / extra).read_bytes()).hexdigest()
    index["files"] = files
    index_path.write_text(json.dumps(index, indent=2))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
