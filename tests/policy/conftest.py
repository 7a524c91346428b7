"""Shared fixtures for the policy, review and scanning tests: a real attested model.

The model is a real (tiny) one, attested by mlprov itself with provenance, an ML-BOM
and a signed eval, under a trust file naming a builder, an evaluator and two
reviewers. It is built once per session; tests that change it work on a copy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlprov.signing import KeyType, generate_key, write_key_pair

COMMIT = "0123456789abcdef0123456789abcdef01234567"
METRICS = {"metrics": {"accuracy": 0.81, "auc": 0.87}, "slices": {"age<30": {"auc": 0.79}}}
TRUST = """version: 1
keys:
  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}
  - {name: eval-bot, public_key: keys/eval.key.pub, roles: [evaluator]}
  - {name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}
  - {name: bob, public_key: keys/bob.key.pub, roles: [reviewer]}
"""


@dataclass(frozen=True)
class Lab:
    """Keys, a trust file, and an attester for small real models."""

    root: Path
    trust: Path

    def key(self, name: str) -> Path:
        return self.root / "keys" / f"{name}.key"

    def pub(self, name: str) -> Path:
        return self.root / "keys" / f"{name}.key.pub"


@dataclass(frozen=True)
class Attested:
    """An attested model: its files and evidence, under a lab's trust."""

    model: Path
    evidence: Path
    trust: Path


def safetensors_file(payload: bytes) -> bytes:
    """A valid safetensors file holding ``payload`` as one U8 tensor."""
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)],
                               "data_offsets": [0, len(payload)]}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + payload


def make_model(root: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A small real model tree (and any extra files, e.g. a pickle)."""
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"architecture": "logistic-regression"}\n')
    (root / "model.safetensors").write_bytes(safetensors_file(bytes(64)))
    for name, data in (extra or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def attest_model(lab: Lab, where: Path, *, extra: dict[str, bytes] | None = None,
                 metrics: dict[str, object] | None = None,
                 environment: list[object] | None = None, name: str = "credit-risk",
                 builder: str = "ci", evaluator: str = "eval") -> Attested:
    """Attest a fresh model under ``where`` with mlprov itself."""
    import mlprov

    model = make_model(where / "model", extra)
    metrics_file = where / "metrics.json"
    metrics_file.write_text(json.dumps(metrics or METRICS))
    evidence = where / "evidence"
    mlprov.attest(model, name=name, key=lab.key(builder), eval_key=lab.key(evaluator),
                  out=evidence, commit=COMMIT, metrics=metrics_file,
                  environment=environment)  # type: ignore[arg-type]
    return Attested(model, evidence, lab.trust)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("lab")
    (root / "keys").mkdir()
    for name in ("ci", "eval", "alice", "bob", "mallory"):
        write_key_pair(generate_key(KeyType.ECDSA_P256), root / "keys" / f"{name}.key", None)
    trust = root / "trust.yaml"
    trust.write_text(TRUST)
    return Lab(root, trust)


@pytest.fixture(scope="session")
def good(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Attested:
    """One attested model for read-only use."""
    from mlprov.sbom import Package

    env = [Package("click", "8.1.7", licenses=("BSD-3-Clause",)),
           Package("numpy", "2.0.0", licenses=("BSD-3-Clause",))]
    return attest_model(lab, tmp_path_factory.mktemp("good"), environment=env)


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[Attested], Attested]:
    """A private copy of an attested model, to tamper with."""

    def copy(attested: Attested) -> Attested:
        model = tmp_path / "copy" / "model"
        evidence = tmp_path / "copy" / "evidence"
        shutil.copytree(attested.model, model)
        shutil.copytree(attested.evidence, evidence)
        return Attested(model, evidence, attested.trust)

    return copy


def malicious_pickle(command: bytes = b"echo pwned") -> bytes:
    """A pickle that would run ``os.system(command)`` if loaded: raw opcodes, never loaded.

    PROTO 4; SHORT_BINUNICODE 'os'; SHORT_BINUNICODE 'system'; STACK_GLOBAL;
    SHORT_BINUNICODE command; TUPLE1; REDUCE; STOP.
    """
    def text(value: bytes) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value

    return b"\x80\x04" + text(b"os") + text(b"system") + b"\x93" + text(command) \
        + b"\x85" + b"R" + b"."


__all__ = ["COMMIT", "METRICS", "Attested", "Lab", "attest_model", "make_model",
           "malicious_pickle"]


@pytest.fixture(scope="session")
def allowed_input(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A production input that passes: verified model, eval, review by alice, and a pickle
    that was found, then dropped from the findings. Copy it before changing it."""
    import mlprov
    from mlprov.policy import build_input
    from mlprov.reviews import make_review, verify_reviews
    from mlprov.scanning import scan_verified_model
    from mlprov.signing import load_private_key

    where = tmp_path_factory.mktemp("allowed")
    attested = attest_model(lab, where, extra={"model.pkl": malicious_pickle()})
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    review = where / "r.json"
    review.write_bytes(make_review(verdict, signer=load_private_key(lab.key("alice")),
                                   reviewer="alice", decision="approve", comment="ok"))
    reviews = verify_reviews([review], lab.trust, verdict=verdict)
    document = build_input(verdict, reviews=reviews,
                           scan=scan_verified_model(attested.model, verdict))
    assert document["scan"]["findings"], "the pickle must be found"
    document["scan"]["findings"] = []
    return document
