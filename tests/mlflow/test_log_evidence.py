"""mlprov.mlflow.log_evidence / autolog / card inside real MLflow runs (issue 15 items 2, 5).

Each test trains a tiny scikit-learn model in a real run on a SQLite tracking store in
tmp_path, attests it from the run, and checks the evidence with ``mlprov verify`` on
the files MLflow serves back: the model (``models:/m-<id>``) and the evidence logged
next to it (``runs:/<run>/<name>.mlprov``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import assert_error
from tests.evidence_kit import payload
from tests.mlflow.conftest import COMMIT, Tracking, require_mlflow

require_mlflow()

import mlprov  # noqa: E402
import mlprov.attestation  # noqa: E402
import mlprov.mlflow  # noqa: E402
from mlprov.errors import IdentityError, InputError, KeyMaterialError  # noqa: E402


def _verify(run_cli, tracking: Tracking, tmp_path: Path, evidence, key) -> tuple[Path, Path]:
    """Download the model and its evidence as MLflow serves them; verify with the CLI."""
    model = tracking.download(evidence.model_uri, tmp_path / "served-model")
    ev = tracking.download(evidence.evidence_uri, tmp_path / "served-evidence")
    result = run_cli("verify", str(model), "--evidence", str(ev), "--key", str(key.public),
                     "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["verified"] is True
    return model, ev


def test_log_evidence_in_a_run_verifies_on_what_mlflow_serves(tracking, make_key, run_cli,
                                                               tmp_path):
    key = make_key("ci")
    run_id, info, evidence = tracking.train(
        inside=lambda info: mlprov.mlflow.log_evidence("credit-risk", key=key.private))

    assert evidence.run_id == run_id and evidence.model_id == info.model_id
    assert evidence.model_uri == f"models:/{info.model_id}"
    assert evidence.evidence_uri == f"runs:/{run_id}/credit-risk.mlprov"
    model, ev = _verify(run_cli, tracking, tmp_path, evidence, key)

    # The run is the inputs: params as the strings MLflow stored, the commit tag, the
    # dataset hashed from the file's content, the run id; metrics in the eval.
    provenance = payload(ev / "provenance.sigstore.json")["predicate"]
    external = provenance["buildDefinition"]["externalParameters"]
    assert external["name"] == "credit-risk"
    assert external["config"] == {"C": "1.0", "max_iter": "50"}
    assert external["code"] == {"commit": COMMIT, "dirty": False}
    train = mlprov.hash_path(tracking.root / "data" / "train.csv").root
    assert external["data"] == [{"digest": f"sha256:{train}", "name": "train"}]
    assert provenance["runDetails"]["metadata"]["invocationId"] == run_id
    assert payload(ev / "eval.sigstore.json")["predicate"]["metrics"] == {
        "accuracy": 1, "auc": 0.97}
    # The model attested is the bytes the artefact store holds.
    assert evidence.result.root_digest == mlprov.hash_path(model).root
    assert (model / "model.pkl").read_bytes() == \
        (tracking.model_files(info.model_id) / "model.pkl").read_bytes()
    import mlflow

    tags = mlflow.MlflowClient(tracking.uri).get_logged_model(info.model_id).tags
    assert tags["mlprov.evidence"] == evidence.evidence_uri
    assert tags["mlprov.root_digest"] == f"sha256:{evidence.result.root_digest}"


def test_tampered_model_bytes_fail_verify(tracking, make_key, run_cli, tmp_path):
    key = make_key("ci")
    _, info, evidence = tracking.train(
        inside=lambda info: mlprov.mlflow.log_evidence("credit-risk", key=key.private,
                                                       environment=[]))
    stored = tracking.model_files(info.model_id) / "model.pkl"
    stored.write_bytes(stored.read_bytes() + b"\x00")  # in the artefact store itself

    model = tracking.download(evidence.model_uri, tmp_path / "served-model")
    ev = tracking.download(evidence.evidence_uri, tmp_path / "served-evidence")
    result = run_cli("verify", str(model), "--evidence", str(ev), "--key", str(key.public))
    assert result.exit_code == 1
    assert "changed: model.pkl" in result.stderr


def test_card_from_the_run_with_slices_is_signed(tracking, make_key, run_cli, tmp_path):
    key, evaluator = make_key("ci"), make_key("eval")
    slices = {"slices": {"x<3": {"auc": 0.91}}}

    def log(info):
        run_card = mlprov.mlflow.card(info.run_id, evaluation=slices)
        assert run_card.document() == {"metrics": {"accuracy": 1.0, "auc": 0.97}, **slices}
        return mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[],
                                          eval_key=evaluator.private, card=run_card)

    _, _, evidence = tracking.train(inside=log)
    ev = tracking.download(evidence.evidence_uri, tmp_path / "served-evidence")
    statement = payload(ev / "eval.sigstore.json")["predicate"]
    assert statement["slices"] == {"x<3": {"auc": 0.91}}
    card = (ev / "MODEL_CARD.md").read_text()
    assert "| x<3 | auc | 0.91 |" in card and "| C | `\"1.0\"` |" in card
    assert "- mlflow" in card.split("---")[1]  # a Hugging Face tag in the header
    # The card is the signed one: mlprov card re-renders the same bytes from the evidence.
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"version: 1\nkeys:\n  - {{name: ci, public_key: {key.public}, "
                     f"roles: [builder]}}\n  - {{name: eval, public_key: {evaluator.public}, "
                     f"roles: [evaluator]}}\n")
    result = run_cli("card", str(ev), "--trust", str(trust))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip("\n") == card.rstrip("\n")


def test_autolog_attests_every_log_model(tracking, make_key, monkeypatch, tmp_path):
    import mlflow
    from mlflow.models import Model

    key = make_key("ci")
    monkeypatch.setenv("MLPROV_KEY", str(key.private))
    monkeypatch.delenv("MLPROV_EVAL_KEY", raising=False)
    original = Model.__dict__["log"]
    # The SBOM lists no packages here (scanning 130 installed ones twice costs a second).
    monkeypatch.setattr(mlprov.attestation, "installed_packages", lambda: [])
    mlprov.mlflow.autolog()
    try:
        run_id, info, _ = tracking.train(name="first")
        _, second, _ = tracking.train(name="second")
    finally:
        mlprov.mlflow.autolog(disable=True)
    assert Model.__dict__["log"] is original
    client = mlflow.MlflowClient(tracking.uri)
    for logged in (info, second):
        tags = client.get_logged_model(logged.model_id).tags
        assert tags["mlprov.evidence"] == f"runs:/{logged.run_id}/" \
            f"{client.get_logged_model(logged.model_id).name}.mlprov"
    assert [a.path for a in client.list_artifacts(run_id)] == ["first.mlprov"]
    model = tracking.download(f"models:/{info.model_id}", tmp_path / "served-model")
    evidence = tracking.download(f"runs:/{run_id}/first.mlprov", tmp_path / "served-evidence")
    assert mlprov.verify(model, evidence=evidence, key=key.public).verified


def test_a_missing_key_file_is_one_line(tracking, tmp_path, monkeypatch, run_cli):
    missing = tmp_path / "no-such.key"
    with pytest.raises(KeyMaterialError) as caught:
        tracking.train(inside=lambda info: mlprov.mlflow.log_evidence(key=missing,
                                                                      environment=[]))
    assert "\n" not in str(caught.value) and "no-such.key" in str(caught.value)
    monkeypatch.setenv("MLPROV_KEY", str(missing))
    with pytest.raises(KeyMaterialError) as caught:
        mlprov.mlflow.autolog()
    assert "\n" not in str(caught.value) and "no-such.key" in str(caught.value)
    monkeypatch.delenv("MLPROV_KEY")
    with pytest.raises(InputError, match="no signing key given") as caught:
        mlprov.mlflow.autolog()
    assert "MLPROV_KEY" in caught.value.diagnostics()
    result = run_cli("attest", "--mlflow-run", "0" * 32, "--key", str(missing), "--out",
                     str(tmp_path / "ev"))
    assert_error(result, 2, "no-such.key")


def test_evidence_is_logged_once_per_model_name(tracking, make_key):
    key = make_key("ci")

    def twice(info):
        mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[])
        with pytest.raises(InputError, match=r"already holds evidence at credit-risk\.mlprov"):
            mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[])

    tracking.train(inside=twice)


def test_a_dataset_mlprov_cannot_hash_is_refused_unless_named_by_content(tracking, make_key):
    import mlflow
    import pandas as pd

    key = make_key("ci")
    other = tracking.root / "data" / "made-in-code.csv"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("x,y\n0,1\n")

    def log(info):
        frame = pd.DataFrame({"x": [0], "y": [1]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="in-code"), context="training")
        with pytest.raises(InputError, match=r"dataset 'in-code' .* cannot hash") as caught:
            mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[])
        assert "data=" in caught.value.diagnostics()
        return mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[],
                                          data={"in-code": other})

    _, _, evidence = tracking.train(inside=log)
    assert evidence.result.identity.startswith("mlid:sha256:")


@pytest.mark.parametrize("source", ["absolute", "dot-dot"])
def test_a_local_source_outside_the_data_root_is_refused(tracking, make_key, tmp_path, source):
    # A tracking store does not get to make mlprov hash any file on the machine.
    key = make_key("ci")
    dataset = (str(tmp_path / "outside.csv") if source == "absolute" else "../outside.csv")

    def log(info):
        with pytest.raises(InputError, match="lies outside") as caught:
            mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[])
        assert "data_root" in caught.value.diagnostics()
        # Named by the caller, the same file is fine.
        return mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[],
                                          data={"train": tmp_path / "outside.csv"})

    _, _, evidence = tracking.train(dataset=dataset, inside=log)
    assert evidence.result.identity.startswith("mlid:sha256:")


def test_a_run_without_a_commit_tag_needs_a_commit(tracking, make_key):
    key = make_key("ci")
    other = "89abcdef0123456789abcdef0123456789abcdef"

    def log(info):
        with pytest.raises(IdentityError, match=r"no mlflow\.source\.git\.commit tag"):
            mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[])
        return mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[],
                                          commit=other)

    _, _, evidence = tracking.train(commit=None, inside=log)
    assert evidence.result.identity.startswith("mlid:sha256:")


def test_log_evidence_outside_a_run_says_so(tracking, make_key):
    with pytest.raises(InputError, match="no active MLflow run"):
        mlprov.mlflow.log_evidence("credit-risk", key=make_key("ci").private)


def test_a_metric_that_is_not_finite_is_refused(tracking, make_key):
    import mlflow

    key = make_key("ci")

    def log(info):
        # Logged after log_model: MLflow 3.9's SQL store fails log_model itself after a
        # NaN metric (it links the run's metrics to the model); 3.17 does not.
        mlflow.log_metric("loss", float("nan"))
        with pytest.raises(InputError, match="metric 'loss' is nan"):
            mlprov.mlflow.log_evidence("credit-risk", key=key.private, environment=[])

    tracking.train(inside=log)
