"""``mlprov attest --mlflow-run RUN_ID`` on finished real runs (issue 15 item 3)."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import assert_error
from tests.evidence_kit import payload
from tests.mlflow.conftest import COMMIT, Tracking, require_mlflow

require_mlflow()

import mlprov  # noqa: E402
import mlprov.mlflow  # noqa: E402
from mlprov.errors import InputError  # noqa: E402


def _attest(run_cli, tracking: Tracking, run_id: str, key, out: Path, *more: str):
    """attest --mlflow-run, with a one-package SBOM environment unless ``more`` names one."""
    if "--environment" not in more:
        lock = tracking.root.parent / "requirements.txt"
        lock.write_text("scikit-learn==1.5.0\n")
        more = (*more, "--environment", str(lock))
    return run_cli("attest", "--mlflow-run", run_id, "--tracking-uri", tracking.uri,
                   "--key", str(key.private), "--out", str(out), *more)


def test_attest_a_finished_run_then_verify(tracking, make_key, run_cli, tmp_path):
    key = make_key("ci")
    run_id, info, logged = tracking.train(
        inside=lambda info: mlprov.mlflow.log_evidence("credit-risk", key=key.private))
    slices = tmp_path / "slices.json"
    slices.write_text(json.dumps({"slices": {"x<3": {"auc": 0.9}}}))

    result = _attest(run_cli, tracking, run_id, key, tmp_path / "evidence", "--metrics",
                     str(slices), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == "https://mlprov.dev/schemas/attest-result/v1"
    assert document["name"] == "credit-risk"
    assert document["mlflow"] == {"runId": run_id, "modelId": info.model_id,
                                  "modelUri": f"models:/{info.model_id}"}
    # The same run gives the same identity and model digest as log_evidence did in it.
    assert document["identity"] == logged.result.identity
    assert document["rootDigest"] == f"sha256:{logged.result.root_digest}"
    evaluation = payload(tmp_path / "evidence" / "eval.sigstore.json")["predicate"]
    assert evaluation["metrics"] == {"accuracy": 1, "auc": 0.97}
    assert evaluation["slices"] == {"x<3": {"auc": 0.9}}

    model = tracking.download(document["mlflow"]["modelUri"], tmp_path / "served")
    verified = run_cli("verify", str(model), "--evidence", str(tmp_path / "evidence"),
                       "--key", str(key.public), "--json")
    assert verified.exit_code == 0, verified.stderr
    assert json.loads(verified.stdout)["verified"] is True


def test_a_run_with_two_models_needs_one_chosen(tracking, make_key, run_cli, tmp_path):
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    key = make_key("ci")
    other = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    run_id, _, second = tracking.train(inside=lambda info: mlflow.sklearn.log_model(
        other, name="other", serialization_format="cloudpickle", pip_requirements=[]))
    result = _attest(run_cli, tracking, run_id, key, tmp_path / "ev")
    assert_error(result, 3, "logged 2 models", "--mlflow-model")
    result = _attest(run_cli, tracking, run_id, key, tmp_path / "ev", "--mlflow-model",
                     "other", "--name", "renamed", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["name"], document["mlflow"]["modelId"]) == ("renamed", second.model_id)


def test_a_model_logged_as_plain_run_artefacts(tracking, make_key, model_dir, tmp_path):
    # MLflow 2 style: mlflow.log_artifacts(model_dir, "model"), no LoggedModel.
    import mlflow

    key = make_key("ci")
    with mlflow.start_run(experiment_id=tracking.experiment_id) as run:
        mlflow.set_tag("mlflow.source.git.commit", COMMIT)
        mlflow.log_artifacts(str(model_dir), "model")
    evidence = mlprov.mlflow.attest_run(run.info.run_id, key=key.private, out=tmp_path / "ev",
                                        name="plain", environment=[])
    assert evidence.result.name == "plain"
    assert evidence.model_uri == f"runs:/{run.info.run_id}/model"
    assert evidence.model_id is None
    assert mlprov.verify(model_dir, evidence=tmp_path / "ev", key=key.public).verified


@pytest.mark.parametrize(("args", "needle"), [
    (["MODEL", "--mlflow-run", "0" * 32], "MODEL_PATH or --mlflow-run, not both"),
    (["MODEL", "--name", "m", "--tracking-uri", "sqlite:///x.db"],
     "--tracking-uri needs --mlflow-run"),
    (["MODEL"], "Missing option '--name'"),
    ([], "Missing argument 'MODEL_PATH'"),
    (["--mlflow-run", "0" * 32, "--invocation-id", "x"], "--invocation-id comes from the run"),
])
def test_usage_errors(run_cli, make_key, model_dir, tmp_path, args, needle):
    key = make_key("ci")
    args = [str(model_dir) if a == "MODEL" else a for a in args]
    result = run_cli("attest", *args, "--key", str(key.private), "--out", str(tmp_path / "ev"))
    assert_error(result, 2, needle)
    assert not (tmp_path / "ev").exists()


def test_an_unknown_run_is_one_line(tracking, make_key, run_cli, tmp_path):
    result = _attest(run_cli, tracking, "0" * 32, make_key("ci"), tmp_path / "ev")
    assert_error(result, 3, "reading MLflow run 00000000000000000000000000000000",
                 "not found", "--tracking-uri")


def test_without_the_extra_the_error_names_it(run_cli, make_key, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    result = run_cli("attest", "--mlflow-run", "0" * 32, "--key", str(make_key().private),
                     "--out", str(tmp_path / "ev"))
    assert_error(result, 3, "MLflow is not installed", "pip install 'mlprov[mlflow]'")
    with pytest.raises(InputError, match="MLflow is not installed"):
        mlprov.mlflow.read_run("0" * 32)


# --- hostile values, written into the tracking store's database directly ------------------
# (the other hostile values are mapped without a store in test_mapping.py)


def _edit(tracking: Tracking, sql: str, *args: object) -> None:
    with sqlite3.connect(tracking.db) as db:
        db.execute(sql, args)


@pytest.mark.parametrize(("sql", "args", "needle"), [
    ("UPDATE params SET key = ? WHERE key = 'C'", ("C\x1b[2J",), "holds the character U+001B"),
    ("UPDATE latest_metrics SET value = ? WHERE key = 'auc'", (float("inf"),), "auc"),
])
def test_hostile_run_values_are_refused_on_one_line(tracking, make_key, run_cli, tmp_path,
                                                     sql, args, needle):
    run_id, _, _ = tracking.train()
    _edit(tracking, sql, *args)
    result = _attest(run_cli, tracking, run_id, make_key("ci"), tmp_path / "ev")
    assert_error(result, 3, needle)
    assert not (tmp_path / "ev").exists()


def test_hostile_names_are_carried_as_data(tracking, make_key, run_cli, tmp_path):
    # Names MLflow's client would refuse, and values that look like markup and JSON,
    # straight into the store: they are JSON strings in the evidence, nothing more.
    hostile = {"C": "1.0", "max_iter": '50"}, "injected": {"x": 1', "../../etc": "x",
               "a.b": "| cell | break |\n---", "config": "{}", "ünï cödé": "`backticks`"}
    run_id, _, _ = tracking.train()
    with sqlite3.connect(tracking.db) as db:
        db.execute("DELETE FROM params WHERE run_uuid = ?", (run_id,))
        db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                       [(k, v, run_id) for k, v in hostile.items()])
    result = _attest(run_cli, tracking, run_id, make_key("ci"), tmp_path / "ev", "--json")
    assert result.exit_code == 0, result.stderr
    provenance = payload(tmp_path / "ev" / "provenance.sigstore.json")
    assert provenance["predicate"]["buildDefinition"]["externalParameters"]["config"] == hostile
    card = (tmp_path / "ev" / "MODEL_CARD.md").read_text()
    table = card.split("### Training configuration and hyperparameters")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(hostile)  # header, rule, one row per param
