"""Registry fixtures: real keys and trust, small real attested models, a registry.

Models are attested with the real ``mlprov.attest`` (SBOM, eval signed by an
evaluator, model card) and the registry evaluates the real shipped policies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import mlprov
from mlprov.registry import Registry
from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair
from tests.conftest import COMMIT

GOOD_METRICS = {"metrics": {"auc": 0.91, "accuracy": 0.84},
                "slices": {"age<30": {"auc": 0.88}, "age>=30": {"auc": 0.9}}}


@dataclass(frozen=True)
class Keys:
    """The signers of a registry test: a builder, an evaluator and a reviewer."""

    root: Path
    trust: Path

    @property
    def builder(self) -> Path:
        return self.root / "ci.key"

    @property
    def evaluator(self) -> Path:
        return self.root / "eval.key"

    @property
    def reviewer(self) -> Path:
        return self.root / "alice.key"


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    root = tmp_path_factory.mktemp("keys")
    for name in ("ci", "eval", "alice", "mallory"):
        write_key_pair(generate_key(KeyType.ED25519), root / f"{name}.key", None)
    trust = root / "trust.yaml"
    trust.write_text(
        "version: 1\nkeys:\n"
        "  - {name: ci, public_key: ci.key.pub, roles: [builder]}\n"
        "  - {name: eval, public_key: eval.key.pub, roles: [evaluator]}\n"
        "  - {name: alice, public_key: alice.key.pub, roles: [reviewer]}\n")
    return Keys(root, trust)


@pytest.fixture(scope="session")
def environment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pinned environment, so SBOMs (and policy inputs) stay small."""
    path = tmp_path_factory.mktemp("env") / "requirements.txt"
    path.write_text("numpy==2.1.0\nsafetensors==0.4.5\n")
    return path


@dataclass(frozen=True)
class Attested:
    model: Path
    evidence: Path
    name: str


@pytest.fixture
def make_model(tmp_path: Path, keys: Keys, environment_file: Path
               ) -> Callable[..., Attested]:
    """Train-and-attest stand-in: a tiny real model tree with full signed evidence."""
    counter = iter(range(1000))

    def make(name: str = "credit-risk", *, seed: int | None = None, content: bytes | None = None,
             metrics: dict[str, object] | None = None, key: Path | None = None) -> Attested:
        n = next(counter)
        root = tmp_path / f"m{n}"
        model = root / "model"
        model.mkdir(parents=True)
        (model / "weights.safetensors").write_bytes(content if content is not None
                                            else os.urandom(4096))
        (model / "config.json").write_text('{"layers": 2}\n')
        metrics_file = root / "metrics.json"
        metrics_file.write_text(json.dumps(metrics or GOOD_METRICS))
        evidence = root / "evidence"
        mlprov.attest(model, name=name, key=key or keys.builder, out=evidence, commit=COMMIT,
                      seeds={"torch": seed if seed is not None else n}, metrics=metrics_file,
                      eval_key=keys.evaluator, environment=environment_file)
        return Attested(model, evidence, name)

    return make


@pytest.fixture
def registry(tmp_path: Path, keys: Keys) -> Registry:
    reg = Registry.init(tmp_path / "registry", trust=keys.trust)
    yield reg
    reg.close()


@pytest.fixture
def approve(tmp_path: Path, keys: Keys) -> Callable[..., Path]:
    """Write a signed review of an attested model (approve by default)."""
    from mlprov.reviews import make_review

    def review(attested: Attested, *, decision: str = "approve", key: Path | None = None,
               reviewer: str = "alice") -> Path:
        data = make_review(attested.evidence, signer=load_private_key(key or keys.reviewer),
                           reviewer=reviewer, decision=decision, comment="looks good",
                           trust=keys.trust)
        out = tmp_path / f"review-{attested.model.parent.name}-{decision}.sigstore.json"
        out.write_bytes(data)
        return out

    return review
