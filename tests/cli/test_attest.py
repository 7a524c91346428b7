"""``mlprov attest`` (issue 2 item 6)."""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlprov.hashing import hash_path
from tests.cli.conftest import COMMIT, Attested, read_payload, snapshot


def test_evidence_directory_contents(attested: Attested):
    assert sorted(p.name for p in attested.evidence.iterdir()) == [
        "MODEL_CARD.md", "evidence.json", "model.sig", "provenance.sigstore.json",
        "sbom.cdx.json", "sbom.sigstore.json"]
    index = json.loads((attested.evidence / "evidence.json").read_text())
    assert index["schema"] == "https://mlprov.dev/schemas/evidence/v1"
    assert index["name"] == "m"
    assert index["rootDigest"] == f"sha256:{hash_path(attested.model).root}"
    for name in ("model.sig", "provenance.sigstore.json"):
        data = (attested.evidence / name).read_bytes()
        assert index["files"][name] == "sha256:" + hashlib.sha256(data).hexdigest()
        bundle = json.loads(data)
        assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


def test_oms_signature_lists_every_file(attested: Attested):
    statement = read_payload(attested.evidence / "model.sig")
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    manifest = hash_path(attested.model)
    assert statement["subject"] == [{"name": "model", "digest": {"sha256": manifest.root}}]
    assert {r["name"]: r["digest"] for r in statement["predicate"]["resources"]} == \
        manifest.by_path()


def test_provenance_records_inputs_builder_run_and_metrics(run_cli, make_key, model_dir: Path,
                                                          tmp_path: Path):
    key = make_key()
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"auc": 0.91, "loss": 0.2}\n')
    config = tmp_path / "train.yaml"
    config.write_text("lr: 0.001\nepochs: 3\n")
    out = tmp_path / "ev"
    r = run_cli("attest", str(model_dir), "--name", "credit-risk", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT, "--config", str(config),
                "--seed", "torch=42", "--data", "train=s3://bucket/train@sha256:" + "c" * 64,
                "--metrics", str(metrics), "--builder-id", "https://ci.example/builder",
                "--invocation-id", "run-17", "--started-on", "2026-01-31T12:00:00Z")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"{out}\n"
    statement = read_payload(out / "provenance.sigstore.json")
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": "credit-risk",
                                     "digest": {"sha256": hash_path(model_dir).root}}]
    definition = statement["predicate"]["buildDefinition"]
    external = definition["externalParameters"]
    assert external["name"] == "credit-risk"
    assert external["code"] == {"commit": COMMIT, "dirty": False}
    assert external["config"] == {"epochs": 3, "lr": 0.001}
    assert external["seeds"] == {"torch": 42}
    assert external["data"] == [{"name": "train", "digest": "sha256:" + "c" * 64}]
    assert definition["internalParameters"]["identity"].startswith("mlid:sha256:")
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "https://ci.example/builder"
    assert run["metadata"]["invocationId"] == "run-17"
    assert run["metadata"]["startedOn"] == "2026-01-31T12:00:00Z"
    assert run["metadata"]["finishedOn"].endswith("Z")
    [metrics_entry] = run["byproducts"]
    assert metrics_entry["name"] == "metrics"
    assert metrics_entry["digest"] == {
        "sha256": hashlib.sha256(metrics.read_bytes()).hexdigest()}
    assert metrics_entry["annotations"] == {"auc": 0.91, "loss": 0.2}


def test_defaults_builder_and_invocation(attested: Attested):
    run = read_payload(attested.evidence / "provenance.sigstore.json")["predicate"]["runDetails"]
    assert run["builder"]["id"] == "https://mlprov.dev/builders/local/v1"
    assert len(run["metadata"]["invocationId"]) == 36  # a UUID
    assert "byproducts" not in run


def test_evidence_inside_the_model_is_not_hashed(run_cli, make_key, model_dir: Path):
    key = make_key()
    out = model_dir / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    resources = read_payload(out / "model.sig")["predicate"]["resources"]
    assert not any(r["name"].startswith("evidence") for r in resources)
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--key", str(key.public))
    assert r.exit_code == 0, r.stderr
    # And re-attesting into the same place with --force works and still verifies.
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT, "--force")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "config.json", "evidence", "tokenizer", "weights.bin"]  # no staging left behind
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--key", str(key.public))
    assert r.exit_code == 0, r.stderr


def test_force_replaces_previous_evidence(run_cli, attested: Attested):
    before = snapshot(attested.evidence)
    r = run_cli("attest", str(attested.model), "--name", "m", "--key", str(attested.key.private),
                "--out", str(attested.evidence), "--commit", COMMIT, "--force")
    assert r.exit_code == 0, r.stderr
    assert snapshot(attested.evidence) != before  # a new invocation id and signature
    assert sorted(p.name for p in attested.evidence.parent.iterdir()
                  if p.name.startswith(".evidence")) == []


def test_attest_json(run_cli, make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    out = tmp_path / "ev"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT, "--json")
    assert r.exit_code == 0, r.stderr
    document = json.loads(r.stdout)  # exactly one document
    assert document["schema"] == "https://mlprov.dev/schemas/attest-result/v1"
    assert document["name"] == "m"
    assert document["identity"].startswith("mlid:sha256:")
    assert document["rootDigest"] == f"sha256:{hash_path(model_dir).root}"
    assert document["evidence"] == str(out)
    assert set(document["files"]) == {"model.sig", "provenance.sigstore.json", "sbom.cdx.json",
                                      "sbom.sigstore.json", "MODEL_CARD.md"}
    identity = run_cli("identity", "--commit", COMMIT)
    assert identity.stdout.strip() == document["identity"]


def test_single_file_model(run_cli, make_key, tmp_path: Path):
    key = make_key()
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\x01" * 1000)
    out = tmp_path / "ev"
    r = run_cli("attest", str(model), "--name", "one", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    r = run_cli("verify", str(model), "--evidence", str(out), "--key", str(key.public))
    assert r.exit_code == 0, r.stderr
    model.write_bytes(b"\x02" * 1000)
    r = run_cli("verify", str(model), "--evidence", str(out), "--key", str(key.public))
    assert r.exit_code == 1
    assert "changed: model.safetensors" in r.stderr


def test_the_mlprov_process_attests_and_exits_cleanly(make_key, model_dir: Path, tmp_path: Path):
    """The real process, whose exit skips the last garbage collections: one note, exit 0."""
    script = Path(sys.executable).with_name("mlprov")
    if not script.exists():
        pytest.skip("no mlprov console script beside this interpreter")
    key = make_key()
    out = tmp_path / "ev"
    done = subprocess.run([str(script), "attest", str(model_dir), "--name", "m", "--key",
                           str(key.private), "--out", str(out), "--commit", COMMIT],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    assert done.stderr.startswith("attested m: ") and done.stderr.count("\n") == 1
    assert (out / "sbom.cdx.json").is_file()


def test_only_the_console_script_freezes_its_objects_at_exit(monkeypatch):
    """``console_main`` (the ``mlprov`` script) adds the exit hook; ``main`` never does."""
    from mlprov._cli import main as cli_main
    from mlprov._cli import process
    from mlprov._internal import plugins

    registered: list[object] = []
    # It marks this process as the console script's: undone after the test, so later
    # in-process commands keep the garbage collector (test_attest_startup.py).
    monkeypatch.setattr(process, "_console", False)
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(cli_main, "main", lambda: "ran")
    # It also turns pydantic's plugins off (tests/cli/test_attest_startup.py), not here.
    monkeypatch.setattr(plugins, "disable_pydantic_plugins", lambda: registered.append("off"))
    assert cli_main.console_main() == "ran"
    assert registered == ["off", gc.freeze]
