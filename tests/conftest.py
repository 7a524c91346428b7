"""Shared fixtures: real keys, small real model trees, and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jsonschema  # noqa: F401  # first, with every format checker the test extra has
import pytest
from click.testing import CliRunner, Result
from hypothesis import settings

from mlprov._cli.main import cli
from mlprov.signing import KeyType, generate_key, write_key_pair

# Wall-clock limits belong in benchmarks/, not in tests: hypothesis's default 200 ms
# deadline per example fails on a loaded machine, so no example has a deadline.
settings.register_profile("mlprov", deadline=None)
settings.load_profile("mlprov")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never prompt; a test that wants a passphrase sets it."""
    monkeypatch.delenv("MLPROV_KEY_PASSPHRASE", raising=False)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own ``$MLPROV_CACHE_HOME``: nothing is written to the user's cache."""
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[..., KeyPair]:
    """Make a real key pair on disk: make_key("ci", KeyType.ECDSA_P256, passphrase=None)."""

    def make(name: str = "ci", key_type: KeyType = KeyType.ECDSA_P256,
             passphrase: bytes | None = None) -> KeyPair:
        keys = tmp_path / "keys"
        keys.mkdir(exist_ok=True)
        private, public = write_key_pair(generate_key(key_type), keys / f"{name}.key",
                                         passphrase)
        return KeyPair(private, public)

    return make


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small real model tree: weights, a config, a nested tokenizer file."""
    root = tmp_path / "model"
    (root / "tokenizer").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(256 * 1024))
    (root / "config.json").write_text('{"hidden": 16, "layers": 2}\n')
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    return root


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Invoke the CLI in-process through its real entry point (exit-code mapping included)."""
    from mlprov._cli.main import main

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(_Main(main), list(args), env=env, catch_exceptions=False)

    return run


class _Main:
    """Adapts ``main()`` (which calls sys.exit) to CliRunner.invoke."""

    def __init__(self, main: Callable[..., object]) -> None:
        self._main = main
        self.name = "mlprov"

    def main(self, args: list[str], prog_name: str | None = None, **_: object) -> object:
        return self._main(args)


__all__ = ["COMMIT", "KeyPair", "cli"]
