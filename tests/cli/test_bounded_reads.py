"""Issue 10 item 9 through the CLI: untrusted files that are FIFOs, devices, too large,
too deep or alias bombs give one error line and the documented exit code, never a hang.

Commands that could hang run as a subprocess of the installed console script, with a
timeout, so a regression fails the test instead of blocking the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Attested, assert_error
from tests.conftest import COMMIT
from tests.test_readers import billion_laughs

MLPROV = str(Path(sys.executable).with_name("mlprov"))
TIMEOUT = 30  # generous on a loaded machine; a hang is forever


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLPROV_OFFLINE": "1"}
    return subprocess.run([MLPROV, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          env=env, check=False)


def one_error_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("name", ["provenance.sigstore.json", "MODEL_CARD.md",
                                  "evidence.json", "sbom.cdx.json"])
def test_fifo_evidence_file_fails_verify_without_hanging(attested: Attested, name: str):
    _replace_with_fifo(attested.evidence / name)
    proc = run("verify", str(attested.model), "--evidence", str(attested.evidence),
               "--key", str(attested.key.public))
    one_error_line(proc, 1, "FIFO")


def test_fifo_single_signature_file_fails_verify(attested: Attested, tmp_path: Path):
    fifo = tmp_path / "model.sig"
    os.mkfifo(fifo)
    proc = run("verify", str(attested.model), "--evidence", str(fifo),
               "--key", str(attested.key.public))
    one_error_line(proc, 1, "model.sig")  # not a regular file, so not read as a signature


def test_dev_zero_evidence_file_is_refused(verify_cli, attested: Attested):
    (attested.evidence / "sbom.cdx.json").unlink()
    (attested.evidence / "sbom.cdx.json").symlink_to("/dev/zero")
    r = verify_cli(attested.model, attested.evidence, "--key", str(attested.key.public))
    assert_error(r, 1, "sbom.cdx.json", "symlink")


def test_dev_zero_signature_file_is_refused(verify_cli, attested: Attested, tmp_path: Path):
    link = tmp_path / "model.sig"
    link.symlink_to("/dev/zero")
    r = verify_cli(attested.model, link, "--key", str(attested.key.public))
    assert_error(r, 1, "model.sig")


def test_deep_json_evidence_index_is_refused(verify_cli, attested: Attested):
    (attested.evidence / "evidence.json").write_text("[" * 100_000 + "]" * 100_000)
    r = verify_cli(attested.model, attested.evidence, "--key", str(attested.key.public))
    assert_error(r, 1, "nested deeper than 64 levels")


def test_fifo_trust_file_fails_without_hanging(attested: Attested, tmp_path: Path):
    fifo = tmp_path / "trust.yaml"
    os.mkfifo(fifo)
    proc = run("verify", str(attested.model), "--evidence", str(attested.evidence),
               "--trust", str(fifo))
    one_error_line(proc, 3, "trust file", "FIFO")


def test_alias_bomb_trust_file_is_refused(verify_cli, attested: Attested, tmp_path: Path):
    trust = tmp_path / "trust.yaml"
    trust.write_text(billion_laughs(9))
    r = verify_cli(attested.model, attested.evidence, "--trust", str(trust))
    assert_error(r, 3, "trust file", "expands to more than")


def test_oversized_trust_file_is_refused(verify_cli, attested: Attested, tmp_path: Path):
    trust = tmp_path / "trust.yaml"
    with open(trust, "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: large on paper, cheap on disk
    r = verify_cli(attested.model, attested.evidence, "--trust", str(trust))
    assert_error(r, 3, "too large")


def test_fifo_public_key_fails_without_hanging(attested: Attested, tmp_path: Path):
    fifo = tmp_path / "ci.pub"
    os.mkfifo(fifo)
    proc = run("verify", str(attested.model), "--evidence", str(attested.evidence),
               "--key", str(fifo))
    one_error_line(proc, 3, "FIFO")


def _attest(model: Path, key: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run("attest", str(model), "--name", "m", "--key", str(key), "--out", str(out),
               "--commit", COMMIT, *extra)


def test_fifo_config_fails_attest_without_hanging(model_dir: Path, make_key, tmp_path: Path):
    fifo = tmp_path / "mlprov.yaml"
    os.mkfifo(fifo)
    proc = _attest(model_dir, make_key().private, tmp_path / "ev", "--config", str(fifo))
    one_error_line(proc, 3, "config", "FIFO")
    assert not (tmp_path / "ev").exists()


def test_alias_bomb_config_is_refused_quickly(run_cli, model_dir: Path, make_key,
                                               tmp_path: Path):
    config = tmp_path / "mlprov.yaml"
    config.write_text(billion_laughs(9))
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(make_key().private),
                "--out", str(tmp_path / "ev"), "--commit", COMMIT, "--config", str(config))
    assert_error(r, 3, "config", "expands to more than")


@pytest.mark.parametrize("suffix,text", [
    (".json", "[" * 100_000 + "]" * 100_000),
    (".toml", "a = " + "[" * 100_000 + "]" * 100_000),
    (".yaml", "a: " + "[" * 100_000 + "]" * 100_000),
])
def test_deep_config_is_refused(run_cli, model_dir: Path, make_key, tmp_path: Path,
                                suffix: str, text: str):
    config = tmp_path / f"mlprov{suffix}"
    config.write_text(text)
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(make_key().private),
                "--out", str(tmp_path / "ev"), "--commit", COMMIT, "--config", str(config))
    assert_error(r, 3, "nested deeper than 64 levels")


def test_config_symlink_to_a_regular_file_is_followed(run_cli, model_dir: Path, make_key,
                                                      tmp_path: Path):
    real = tmp_path / "real.yaml"
    real.write_text("lr: 0.1\n")
    link = tmp_path / "mlprov.yaml"
    link.symlink_to(real)
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(make_key().private),
                "--out", str(tmp_path / "ev"), "--commit", COMMIT, "--config", str(link))
    assert r.exit_code == 0, r.stderr


def test_fifo_metrics_and_card_fail_attest_without_hanging(model_dir: Path, make_key,
                                                           tmp_path: Path):
    key = make_key().private
    for flag in ("--metrics", "--card"):
        fifo = tmp_path / f"fifo{flag}"
        os.mkfifo(fifo)
        proc = _attest(model_dir, key, tmp_path / "ev", flag, str(fifo))
        one_error_line(proc, 3, "FIFO")


def test_fifo_in_model_dir_fails_attest_and_verify(attested: Attested, make_key,
                                                   tmp_path: Path):
    os.mkfifo(attested.model / "pipe")
    proc = run("verify", str(attested.model), "--evidence", str(attested.evidence),
               "--key", str(attested.key.public))
    one_error_line(proc, 1, "special file in model")
    proc = _attest(attested.model, attested.key.private, tmp_path / "ev2")
    one_error_line(proc, 3, "special file in model")


def test_hash_file_never_blocks_on_a_fifo(tmp_path: Path):
    """A FIFO swapped in after the walk: hash_file opens with O_NONBLOCK and refuses it."""
    from mlprov.errors import UnsafePathError
    from mlprov.hashing import hash_file
    from tests.test_readers import within

    fifo = tmp_path / "weights.bin"
    os.mkfifo(fifo)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        within(5.0, lambda: hash_file(fifo), fifo=fifo)
