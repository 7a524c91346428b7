"""Helpers for CLI tests: an attested model, error-line checks, tree snapshots."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import COMMIT, KeyPair


@dataclass(frozen=True)
class Attested:
    """A model, the key that signed it, and its evidence directory."""

    model: Path
    key: KeyPair
    evidence: Path


@pytest.fixture
def attested(run_cli, make_key, model_dir: Path, tmp_path: Path) -> Attested:
    key = make_key("ci")
    out = tmp_path / "evidence"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    return Attested(model_dir, key, out)


@pytest.fixture
def verify_cli(run_cli) -> Callable[..., Result]:
    """Run ``mlprov verify`` with the given model, evidence and trust flags."""

    def run(model: Path, evidence: Path, *trust: str) -> Result:
        return run_cli("verify", str(model), "--evidence", str(evidence), *trust)

    return run


def assert_error(result: Result, code: int, *needles: str) -> str:
    """Assert the documented exit code and exactly one ``error:`` line on stderr."""
    stderr = result.stderr
    assert result.exit_code == code, (result.exit_code, result.stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), stderr
    for text in (result.stdout, stderr):
        assert "Traceback" not in text
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(root: Path) -> dict[str, Any]:
    """Every file, directory and symlink under ``root`` with its content (None if absent)."""
    if not os.path.lexists(root):
        return {}
    if root.is_file():
        return {".": root.read_bytes()}
    state: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            state[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return state


def read_payload(bundle: Path) -> dict[str, Any]:
    """The in-toto statement inside a Sigstore bundle file."""
    document = json.loads(bundle.read_bytes())
    payload: dict[str, Any] = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    return payload


__all__ = ["COMMIT", "Attested", "assert_error", "read_payload", "snapshot"]
