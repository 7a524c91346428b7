from pathlib import Path

from tests.conftest import COMMIT


def test_attest_then_verify_round_trip(run_cli, make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    out = tmp_path / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--key", str(key.public))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("verified m mlid:sha256:")
    (model_dir / "weights.bin").write_bytes(b"tampered")
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--key", str(key.public))
    assert r.exit_code == 1
    assert "changed: weights.bin" in r.stderr
