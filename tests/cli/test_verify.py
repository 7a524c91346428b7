"""``mlprov verify`` and the trust file (issue 2 items 7 and 8)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import COMMIT, Attested, assert_error

EXPECTED_CHECKS = ["index", "signature:model.sig", "manifest", "files",
                   "signature:provenance.sigstore.json", "provenance", "subject", "identity",
                   "signature:sbom.sigstore.json", "sbom", "card", "index-consistent"]


def test_verify_prints_result_on_stdout_and_checks_on_stderr(verify_cli, attested: Attested):
    r = verify_cli(attested.model, attested.evidence, "--key", str(attested.key.public))
    assert r.exit_code == 0, r.stderr
    [line] = r.stdout.splitlines()
    assert line.startswith("verified m mlid:sha256:")
    assert " sha256:" in line
    assert [ln.split()[:2] for ln in r.stderr.splitlines()] == [
        ["ok", f"{name}:"] for name in EXPECTED_CHECKS]


def test_verify_json_success(verify_cli, attested: Attested):
    r = verify_cli(attested.model, attested.evidence, "--key", str(attested.key.public),
                   "--json")
    assert r.exit_code == 0, r.stderr
    verdict = json.loads(r.stdout)  # raises on anything but exactly one document
    assert verdict["schema"] == "https://mlprov.dev/schemas/verdict/v1"
    assert verdict["verified"] is True
    assert [c["name"] for c in verdict["checks"]] == EXPECTED_CHECKS
    assert all(c["ok"] is True and c["detail"] for c in verdict["checks"])
    assert verdict["name"] == "m"
    assert verdict["identity"].startswith("mlid:sha256:")
    assert verdict["rootDigest"].startswith("sha256:")
    assert verdict["signers"] == {"model.sig": "ci.key.pub",
                                  "provenance.sigstore.json": "ci.key.pub",
                                  "sbom.sigstore.json": "ci.key.pub"}
    assert r.stderr == ""


def test_verify_json_failure(verify_cli, attested: Attested):
    (attested.model / "weights.bin").write_bytes(b"tampered")
    r = verify_cli(attested.model, attested.evidence, "--key", str(attested.key.public),
                   "--json")
    assert_error(r, 1, "changed: weights.bin")
    verdict = json.loads(r.stdout)
    assert verdict["schema"] == "https://mlprov.dev/schemas/verdict/v1"
    assert verdict["verified"] is False
    checks = {c["name"]: c for c in verdict["checks"]}
    assert set(checks) == set(EXPECTED_CHECKS)
    assert checks["files"]["ok"] is False
    assert "changed: weights.bin" in checks["files"]["detail"]
    assert checks["signature:model.sig"]["ok"] is True
    assert checks["subject"]["ok"] is None  # skipped: depends on the files' root
    assert checks["index-consistent"]["ok"] is None


def test_verify_json_bad_signature(verify_cli, attested: Attested, make_key):
    other = make_key("other")
    r = verify_cli(attested.model, attested.evidence, "--key", str(other.public), "--json")
    assert r.exit_code == 1
    verdict = json.loads(r.stdout)
    assert verdict["verified"] is False
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["signature:model.sig"]["ok"] is False
    assert checks["signature:provenance.sigstore.json"]["ok"] is False
    assert checks["files"]["ok"] is None


def test_trust_file_with_two_keys_and_roles(run_cli, verify_cli, make_key, model_dir: Path,
                                            tmp_path: Path):
    ci, alice = make_key("ci"), make_key("alice", passphrase=None)
    trust_dir = tmp_path / "policy"
    trust_dir.mkdir()
    trust = trust_dir / "trust.yaml"
    # Key paths are relative to the trust file, not to the working directory.
    trust.write_text("version: 1\nkeys:\n"
                     "  - {name: ci, public_key: ../keys/ci.key.pub, roles: [builder]}\n"
                     "  - {name: alice, public_key: ../keys/alice.key.pub, roles: [reviewer]}\n")
    for signer in (ci, alice):
        out = tmp_path / f"ev-{signer.private.stem}"
        r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(signer.private),
                    "--out", str(out), "--commit", COMMIT)
        assert r.exit_code == 0, r.stderr
    r = verify_cli(model_dir, tmp_path / "ev-ci", "--trust", str(trust), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["signers"] == {"model.sig": "ci",
                                               "provenance.sigstore.json": "ci",
                                               "sbom.sigstore.json": "ci"}
    r = verify_cli(model_dir, tmp_path / "ev-alice", "--trust", str(trust))
    assert_error(r, 1, "signed by alice", "lacks the builder role")


def test_single_signature_file_as_evidence(verify_cli, attested: Attested):
    for name in ("model.sig", "provenance.sigstore.json"):
        r = verify_cli(attested.model, attested.evidence / name, "--key",
                       str(attested.key.public))
        assert r.exit_code == 0, (name, r.stderr)
    (attested.model / "config.json").write_text("{}")
    r = verify_cli(attested.model, attested.evidence / "model.sig", "--key",
                   str(attested.key.public))
    assert_error(r, 1, "changed: config.json")


def test_failure_hint_points_at_json(verify_cli, attested: Attested):
    (attested.model / "weights.bin").write_bytes(b"x")
    r = verify_cli(attested.model, attested.evidence, "--key", str(attested.key.public))
    line = assert_error(r, 1)
    assert "--json" in line and "do not use this model" in line
