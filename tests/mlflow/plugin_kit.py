"""The MLflow plugin in a test: entry points registered, an mlprov registry as MLflow's registry.

An editable install shows new entry points only once reinstalled, so the tests register
the plugin's classes with MLflow's own registries, by the names ``pyproject.toml``
declares (a test checks the declarations; CI reinstalls). Each test gets a fresh
mlprov registry in tmp_path, named by ``MLFLOW_REGISTRY_URI=mlprov://PATH`` for that
test only, beside the tracking store of ``tests/mlflow/conftest.py``.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlprov.signing import KeyType, generate_key, write_key_pair

ROOT = Path(__file__).resolve().parents[2]
STORE_GROUP = "mlflow.model_registry_store"
ARTIFACT_GROUP = "mlflow.artifact_repository"
NAME = "credit-risk"


def declared_entry_points() -> dict[str, dict[str, str]]:
    """The plugin's entry points as pyproject.toml declares them."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    groups: dict[str, dict[str, str]] = project.get("entry-points", {})
    return groups


def load_entry_point(value: str) -> Any:
    module, _, attribute = value.partition(":")
    return getattr(importlib.import_module(module), attribute)


def register_plugin() -> None:
    """Register every declared scheme with MLflow, as its entry-point loader would."""
    from mlflow.store.artifact.artifact_repository_registry import (
        _artifact_repository_registry,
    )
    from mlflow.tracking._model_registry.utils import _get_store_registry

    groups = declared_entry_points()
    stores = _get_store_registry()
    for scheme, value in groups[STORE_GROUP].items():
        stores.register(scheme, load_entry_point(value))
    for scheme, value in groups[ARTIFACT_GROUP].items():
        _artifact_repository_registry.register(scheme, load_entry_point(value))


@dataclass(frozen=True)
class Signers:
    """The keys of an MLflow registry test: a builder, an evaluator and a reviewer."""

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
def signers(tmp_path_factory: pytest.TempPathFactory) -> Signers:
    root = tmp_path_factory.mktemp("mlflow-keys")
    for name in ("ci", "eval", "alice"):
        write_key_pair(generate_key(KeyType.ED25519), root / f"{name}.key", None)
    trust = root / "trust.yaml"
    trust.write_text(
        "version: 1\nkeys:\n"
        "  - {name: ci, public_key: ci.key.pub, roles: [builder]}\n"
        "  - {name: eval, public_key: eval.key.pub, roles: [evaluator]}\n"
        "  - {name: alice, public_key: alice.key.pub, roles: [reviewer]}\n")
    return Signers(root, trust)


def use_registry_uri(monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    """``MLFLOW_REGISTRY_URI=uri`` for this test only (process-wide, as the plugin needs)."""
    import mlflow.tracking._model_registry.utils as registry_utils

    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.setattr(registry_utils, "_registry_uri", uri)


@pytest.fixture
def mlprov_registry(tmp_path: Path, signers: Signers, tracking: Any,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh mlprov registry, MLflow's registry for this test (``mlprov://PATH``)."""
    from mlprov.registry import Registry

    monkeypatch.setenv("MLPROV_REGISTRY_FSYNC", "off")
    monkeypatch.setenv("MLPROV_ACTOR", "ml-engineer@ci")
    register_plugin()
    registry = Registry.init(tmp_path / "registry", trust=signers.trust)
    use_registry_uri(monkeypatch, f"mlprov://{tmp_path / 'registry'}")
    try:
        yield registry
    finally:
        registry.close()


def attested(tracking: Any, signers: Signers, *, name: str = NAME,
             params: dict[str, Any] | None = None,
             metrics: dict[str, float] | None = None) -> Any:
    """Train and log a model in a real run, with its evidence logged next to it (ModelInfo)."""
    import mlprov.mlflow

    def evidence(info: Any) -> Any:
        return mlprov.mlflow.log_evidence(name, key=signers.builder, eval_key=signers.evaluator,
                                          environment=[])

    _, info, _ = tracking.train(name=name, params=params, metrics=metrics, inside=evidence)
    return info


def review(registry: Any, signers: Signers, tmp_path: Path, version: int,
           name: str = NAME) -> None:
    """Alice approves a registered version (there is no MLflow call for a signed review)."""
    from mlprov.reviews import make_review
    from mlprov.signing import load_private_key

    evidence = tmp_path / f"evidence-{name}-{version}"
    registry.export_evidence(f"models:/{name}/{version}", evidence)
    data = make_review(evidence, signer=load_private_key(signers.reviewer), reviewer="alice",
                       decision="approve", comment="looks good", trust=signers.trust)
    path = tmp_path / f"review-{name}-{version}.sigstore.json"
    path.write_bytes(data)
    registry.add_review(name, version, path)


def error_of(call: Callable[[], Any]) -> Any:
    """The MlflowException ``call`` raises."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as caught:
        call()
    return caught.value


__all__ = ["ARTIFACT_GROUP", "NAME", "STORE_GROUP", "Signers", "attested", "declared_entry_points",
           "error_of", "load_entry_point", "mlprov_registry", "register_plugin", "review",
           "signers", "use_registry_uri"]
