"""MLflow's model registry workflow, unchanged, with mlprov as the registry (issue 15 items 1, 4).

The user code is MLflow's documented registry API (log, register, transition, alias,
load by alias and by stage, search, roll back by re-pointing an alias); only
``MLFLOW_REGISTRY_URI=mlprov://PATH`` and ``mlprov.mlflow.log_evidence`` in the run are
mlprov's. Real MLflow (SQLite tracking store in tmp_path), real scikit-learn models,
the registry's shipped policies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mlflow.conftest import require_mlflow

require_mlflow()

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.mlflow.plugin_kit import NAME, attested, error_of, review  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # stages: deprecated in 2.9

X = pd.DataFrame({"x": [0.0, 1.0, 4.0, 5.0]})


def _blob(registry, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return registry.home / "blobs" / "sha256" / hexdigest[:2] / hexdigest


def test_the_registry_workflow_goes_through_mlprov(tracking, mlprov_registry, signers,
                                                   tmp_path):
    registry = mlprov_registry
    # --- log and register (MLflow's own calls; the evidence is logged in the run) ---
    info = attested(tracking, signers)
    mv = mlflow.register_model(info.model_uri, NAME)
    assert mv.version == "1" and mv.status == "READY" and mv.run_id == info.run_id
    assert mv.source == f"mlprov-verified://{registry.registry_id}/{NAME}/1"
    assert mv.tags["mlprov.root_digest"] == registry.get_version(NAME, 1).root_digest

    client = MlflowClient()
    # --- transition and alias: each one gated, signed and audited by mlprov ---
    client.transition_model_version_stage(name=NAME, version=mv.version, stage="Staging")
    client.set_registered_model_alias(NAME, "challenger", mv.version)

    denied = error_of(lambda: client.transition_model_version_stage(
        name=NAME, version=mv.version, stage="Production"))
    assert denied.error_code == "PERMISSION_DENIED"
    assert denied.message.startswith("mlprov: denied by production.rego: moving credit-risk v1 "
                                     "to Production: needs 1 approval(s) by a reviewer")
    denied = error_of(lambda: client.set_registered_model_alias(NAME, "production", "1"))
    assert denied.error_code == "PERMISSION_DENIED"
    assert "production.rego" in denied.message and "Production" in denied.message
    assert client.get_model_version(NAME, "1").current_stage == "Staging"

    review(registry, signers, tmp_path, 1)
    client.transition_model_version_stage(name=NAME, version=mv.version, stage="Production")
    client.set_registered_model_alias(NAME, "production", mv.version)
    client.set_registered_model_alias(NAME, "champion", mv.version)

    # --- load by alias and by stage: downloaded through mlprov, verified ---
    by_alias = mlflow.pyfunc.load_model(f"models:/{NAME}@production")
    by_stage = mlflow.pyfunc.load_model(f"models:/{NAME}/Production")
    by_number = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    by_latest = mlflow.pyfunc.load_model(f"models:/{NAME}/latest")
    expected = [0, 0, 1, 1]
    for model in (by_alias, by_stage, by_number, by_latest):
        assert list(model.predict(X)) == expected
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"

    # --- a second version: registered, staged, reviewed, promoted ---
    info2 = attested(tracking, signers, params={"C": 0.5, "max_iter": 50})
    mv2 = mlflow.register_model(info2.model_uri, NAME)
    assert mv2.version == "2"
    client.transition_model_version_stage(NAME, "2", "Staging")
    client.set_registered_model_alias(NAME, "challenger", "2")
    review(registry, signers, tmp_path, 2)
    client.transition_model_version_stage(NAME, "2", "Production",
                                          archive_existing_versions=True)
    assert client.get_model_version(NAME, "1").current_stage == "Archived"
    client.set_registered_model_alias(NAME, "production", "2")
    assert mlflow.pyfunc.load_model(f"models:/{NAME}@production").metadata.model_id \
        == info2.model_id
    # An alias leading to an Archived version is not handed out.
    refused = error_of(lambda: mlflow.pyfunc.load_model(f"models:/{NAME}@champion"))
    assert refused.error_code == "RESOURCE_CONFLICT" and "Archived" in refused.message

    # --- roll back by re-pointing: v1 must be back in Production first (gated) ---
    client.transition_model_version_stage(NAME, "1", "Staging")
    client.transition_model_version_stage(NAME, "1", "Production")
    client.set_registered_model_alias(NAME, "production", "1")
    assert client.get_model_version_by_alias(NAME, "production").version == "1"
    assert mlflow.pyfunc.load_model(f"models:/{NAME}@production").metadata.model_id \
        == info.model_id

    # --- search and the registered model as MLflow shows it ---
    found = client.search_model_versions(f"name='{NAME}'")
    assert [(v.version, v.current_stage, v.run_id) for v in found] \
        == [("2", "Production", info2.run_id), ("1", "Production", info.run_id)]
    model = client.get_registered_model(NAME)
    assert model.aliases == {"challenger": "2", "champion": "1", "production": "1"}
    assert {v.current_stage: v.version for v in model.latest_versions} == {"Production": "2"}
    latest = client.get_latest_versions(NAME, stages=["Production"])
    assert [v.version for v in latest] == ["2"]

    # --- every change is in mlprov's audit log, denials included, and it verifies ---
    entries = registry.audit_log(name=NAME)
    kinds = [(e["kind"], e["accepted"]) for e in entries]
    assert ("stage.transition", False) in kinds and ("alias.set", False) in kinds
    assert kinds.count(("model.register", True)) == 2
    assert {e["actor"] for e in entries if e["kind"] != "review.add"} == {"ml-engineer@ci"}
    assert any(e["reason"] == "MLflow set_registered_model_alias" for e in entries)
    assert registry.verify_audit().ok


def test_a_tampered_stored_file_fails_the_load(tracking, mlprov_registry, signers, tmp_path):
    registry = mlprov_registry
    info = attested(tracking, signers)
    mlflow.register_model(info.model_uri, NAME)
    client = MlflowClient()
    client.set_registered_model_alias(NAME, "canary", "1")
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@canary")
    assert list(served.predict(X)) == [0, 0, 1, 1]

    # Change the pickle's bytes in the registry's blob store (same size).
    manifest = json.loads(_blob(registry, registry.get_version(NAME, 1).files_digest)
                          .read_bytes())
    entry = next(f for f in manifest["files"] if f["path"].endswith("model.pkl"))
    blob = _blob(registry, f"sha256:{entry['sha256']}")
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0xFF
    blob.write_bytes(bytes(data))

    out = tmp_path / "download"
    out.mkdir()
    for load in (lambda: mlflow.pyfunc.load_model(f"models:/{NAME}@canary"),
                 lambda: mlflow.pyfunc.load_model(f"models:/{NAME}/1"),
                 lambda: mlflow.artifacts.download_artifacts(f"models:/{NAME}/1",
                                                             dst_path=str(out))):
        error = error_of(load)
        assert error.error_code == "PERMISSION_DENIED"
        assert error.message == (f"mlprov: blob sha256:{entry['sha256']} in local blob store "
                                 f"{registry.home / 'blobs'} does not match its digest")
    assert list(out.iterdir()) == []  # nothing handed out


def test_a_file_changed_in_the_artifact_store_after_its_evidence_is_refused(
        tracking, mlprov_registry, signers):
    info = attested(tracking, signers)
    stored = tracking.model_files(info.model_id) / "model.pkl"
    stored.write_bytes(stored.read_bytes() + b"\x00")
    error = error_of(lambda: mlflow.register_model(info.model_uri, NAME))
    assert error.error_code == "PERMISSION_DENIED"
    assert error.message.startswith("mlprov: ") and "model.pkl" in error.message
    refusals = [e for e in mlprov_registry.audit_log() if e["kind"] == "model.register"]
    assert [e["accepted"] for e in refusals] == [False]
    assert mlprov_registry.list_models() == []


def test_a_model_without_evidence_is_refused_at_registration(tracking, mlprov_registry):
    _, info, _ = tracking.train()
    error = error_of(lambda: mlflow.register_model(info.model_uri, NAME))
    assert error.error_code == "PERMISSION_DENIED"
    assert error.message == (
        f"mlprov: models:/{info.model_id} has no mlprov evidence at "
        f"runs:/{info.run_id}/credit-risk.mlprov: registration refused, every version of an "
        "mlprov registry is verified (log it in the training run: "
        "mlprov.mlflow.log_evidence('credit-risk', key=...), or mlprov.mlflow.autolog())")
    assert mlprov_registry.list_models() == []


def _relog(name: str):
    """Log the run's model again under ``name``, registering it as ``name`` (inside a run)."""
    def inside(info):
        return mlflow.sklearn.log_model(mlflow.sklearn.load_model(info.model_uri), name=name,
                                        registered_model_name=name,
                                        serialization_format="cloudpickle",
                                        pip_requirements=["scikit-learn"])
    return inside


def test_log_model_registered_model_name_needs_the_evidence_first(
        tracking, mlprov_registry, signers, monkeypatch):
    import mlprov.attestation
    import mlprov.mlflow

    # Plain MLflow registers inside log_model, before any evidence: refused, model kept.
    error = error_of(lambda: tracking.train(inside=_relog("fraud")))
    assert error.error_code == "PERMISSION_DENIED" and "has no mlprov evidence" in error.message
    assert mlprov_registry.list_models() == []

    # autolog takes registered_model_name out of log_model and registers after the evidence.
    monkeypatch.setenv("MLPROV_KEY", str(signers.builder))
    monkeypatch.setenv("MLPROV_EVAL_KEY", str(signers.evaluator))
    monkeypatch.setattr(mlprov.attestation, "installed_packages", lambda: [])
    mlprov.mlflow.autolog()
    try:
        _, _, relogged = tracking.train(inside=_relog("fraud"))
    finally:
        mlprov.mlflow.autolog(disable=True)
    assert relogged.registered_model_version == "1"
    version = MlflowClient().get_model_version("fraud", "1")
    assert version.source.startswith("mlprov-verified://")
    assert [m["name"] for m in mlprov_registry.list_models()] == ["fraud"]
