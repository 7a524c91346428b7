"""Issue 10 item 9: bounded reads of untrusted files (mlprov._internal.readers).

FIFOs, devices and sockets are refused without blocking, sizes are checked
before reading, JSON depth and YAML alias expansion are bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov._internal import readers
from mlprov.canonical import loads_strict
from mlprov.errors import BundleError, InputError, MlprovError, TrustError

FIFO_TIMEOUT = 5.0


def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: each level is nine aliases of the one before (~340 bytes)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
        previous = name
    return "\n".join(lines) + "\n"


def within(seconds: float, fn: Callable[[], Any], *, fifo: Path | None = None) -> Any:
    """Run ``fn`` in a thread; fail (and unblock a FIFO reader) if it takes too long."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo is not None:  # open the write end so a blocked open() returns
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"did not return within {seconds}s (blocked on a FIFO?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_fifo_is_refused_without_blocking(fifo: Path):
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        within(FIFO_TIMEOUT, lambda: readers.read_bytes(fifo, what="evidence file", limit=10),
               fifo=fifo)


def test_fifo_error_is_of_the_callers_class(fifo: Path):
    with pytest.raises(TrustError, match=f"trust file {fifo} is a FIFO"):
        within(FIFO_TIMEOUT, lambda: readers.read_text(fifo, what="trust file", limit=10,
                                                       error=TrustError), fifo=fifo)


def test_symlink_to_dev_zero_is_refused(tmp_path: Path):
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(BundleError, match="is a device, not a regular file"):
        readers.read_bytes(link, what="evidence file", limit=1 << 20, error=BundleError)


def test_symlink_refused_where_symlinks_are_not_followed(tmp_path: Path):
    target = tmp_path / "real.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert readers.read_bytes(link, what="config", limit=10) == b"{}"
    with pytest.raises(InputError, match="is a symlink; refusing to follow it"):
        readers.read_bytes(link, what="evidence file", limit=10, follow_symlinks=False)


def test_socket_and_directory_are_refused(tmp_path: Path):
    with pytest.raises(InputError, match="is a directory"):
        readers.read_bytes(tmp_path, what="config", limit=10)
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(InputError, match=r"cannot read config|is a socket"):
            readers.read_bytes(sock_path, what="config", limit=10)


def test_oversized_file_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 11)
    with pytest.raises(InputError, match=r"too large \(11 bytes, the limit is 10\)"):
        readers.read_bytes(path, what="metrics file", limit=10)
    assert readers.read_bytes(path, what="metrics file", limit=11) == b"x" * 11


def test_missing_file_raises_file_not_found(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        readers.read_bytes(tmp_path / "nope", what="config", limit=10)


def test_not_utf8_is_refused(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_bytes(b"a: \xff\n")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        readers.read_text(path, what="config", limit=100)


# ------------------------------------------------------------------------------- JSON

@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_deep_json_is_refused_without_recursion_error(opener: str, closer: str):
    deep = opener * 100_000 + "1" + closer * 100_000
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        loads_strict(deep, what="evidence file")
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        loads_strict(deep.encode(), what="evidence file")


def test_json_depth_bound_is_exact_and_ignores_brackets_in_strings():
    ok = "[" * 64 + "]" * 64
    assert loads_strict(ok, what="x") is not None
    with pytest.raises(InputError, match="nested deeper"):
        loads_strict("[" * 65 + "]" * 65, what="x")
    text = json.dumps({"s": "[" * 1000 + '\\"{' * 1000, "t": ["]" * 100]})
    assert loads_strict(text, what="x")["t"] == ["]" * 100]


def test_read_json_wraps_parse_errors_in_the_callers_class(tmp_path: Path):
    path = tmp_path / "b.json"
    path.write_text("[" * 1000 + "]" * 1000)
    with pytest.raises(BundleError, match="nested deeper than 64 levels"):
        readers.read_json(path, what="evidence file", limit=1 << 20, error=BundleError)


# ------------------------------------------------------------------------------- YAML

def test_yaml_alias_bomb_is_refused_quickly():
    bomb = billion_laughs(9)
    assert len(bomb) < 1024
    with pytest.raises(InputError, match=r"expands to more than .* nodes"):
        readers.load_yaml(bomb, what="config c.yaml")


def test_yaml_recursive_alias_is_refused():
    with pytest.raises(InputError, match="refers to the node that holds it"):
        readers.load_yaml("&a [*a]", what="config")
    with pytest.raises(InputError, match="refers to the node that holds it"):
        readers.load_yaml("a: &x {b: *x}", what="config")


def test_yaml_small_aliases_still_work():
    assert readers.load_yaml("base: &b {x: 1}\nother: *b\n", what="c") == {
        "base": {"x": 1}, "other": {"x": 1}}
    assert readers.load_yaml(billion_laughs(3), what="c")["c"][0][0] == ["lol"] * 9


def test_yaml_depth_and_duplicate_keys():
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        readers.load_yaml("[" * 100_000 + "]" * 100_000, what="c")
    with pytest.raises(InputError, match="duplicate key 'a'"):
        readers.load_yaml("a: 1\na: 2\n", what="c")
    assert readers.load_yaml("a: 1\na: 2\n", what="c", unique_keys=False) == {"a": 2}
    with pytest.raises(InputError, match="mapping key must be a scalar"):
        readers.load_yaml("? [1]\n: 2\n", what="c")


def test_yaml_many_keys_is_linear():
    # Duplicate keys are found with a set, not a quadratic list scan.
    text = "".join(f"k{i}: {i}\n" for i in range(20_000))
    assert len(readers.load_yaml(text, what="c")) == 20_000


def test_toml_deep_inline_arrays_are_refused():
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        readers.load_toml("a = " + "[" * 10_000 + "]" * 10_000, what="config")
    assert readers.load_toml('a = "[[[[["\n[t]\nb = [[1], [2]]\n', what="c") == {
        "a": "[[[[[", "t": {"b": [[1], [2]]}}


# ------------------------------------------------------------------------ properties

_yamlish = st.text(alphabet=st.sampled_from(list("ab:-&*[]{},'\"!?|>#%@\n\t 01.")), max_size=200)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), _yamlish))
def test_load_yaml_raises_only_mlprov_errors(text: str):
    with contextlib.suppress(MlprovError):
        readers.load_yaml(text, what="fuzz")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300),
                 st.text(alphabet=st.sampled_from(list('[]{}",:\\0123 eE.-truefalsn')),
                         max_size=300)))
def test_loads_strict_raises_only_mlprov_errors(text: str):
    with contextlib.suppress(MlprovError):
        loads_strict(text, what="fuzz")
    with contextlib.suppress(MlprovError):
        loads_strict(text.encode("utf-8", "surrogatepass"), what="fuzz")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_load_toml_raises_only_mlprov_errors(text: str):
    with contextlib.suppress(MlprovError):
        readers.load_toml(text, what="fuzz")


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=30))
def test_shallow_json_round_trips(value: Any):
    assert loads_strict(json.dumps(value), what="x") == value


# ------------------------------------------------------- every kind, through its loader

def _kinds() -> list[tuple[str, Callable[[Path], Any], type[MlprovError]]]:
    from mlprov.bundles import verify_statement_file
    from mlprov.card import load_card_input
    from mlprov.errors import KeyMaterialError
    from mlprov.evaluation import load_metrics
    from mlprov.evidence import read_index
    from mlprov.identity import load_configs
    from mlprov.policy import load_policy_data
    from mlprov.signing import load_private_key, load_public_key
    from mlprov.trust import Role, Trust, load_trust

    def index(fifo: Path) -> Any:
        fifo.rename(fifo.parent / "evidence.json")
        return read_index(fifo.parent)

    return [
        ("evidence file",
         lambda p: verify_statement_file(p, Trust(keys=(), source="test"), Role.BUILDER),
         BundleError),
        ("evidence index", index, BundleError),
        ("trust file", load_trust, TrustError),
        ("public key", load_public_key, KeyMaterialError),
        ("private key", load_private_key, KeyMaterialError),
        ("metrics file", load_metrics, InputError),
        ("config", lambda p: load_configs([p]), InputError),
        ("card file", load_card_input, InputError),
        ("policy data", load_policy_data, InputError),
    ]


@pytest.mark.parametrize("kind", range(9), ids=[k[0] for k in _kinds()])
def test_every_kind_refuses_a_fifo_quickly(tmp_path: Path, kind: int):
    _what, load, error = _kinds()[kind]
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    with pytest.raises(error, match="FIFO, not a regular file"):
        within(FIFO_TIMEOUT, lambda: load(fifo), fifo=fifo)


@pytest.mark.parametrize("kind", range(9), ids=[k[0] for k in _kinds()])
def test_every_kind_refuses_dev_zero(tmp_path: Path, kind: int):
    _what, load, error = _kinds()[kind]
    link = tmp_path / "f.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(error, match=r"a device, not a regular file|is a symlink"):
        within(FIFO_TIMEOUT, lambda: load(link))


def test_review_that_is_a_fifo_does_not_count_and_does_not_hang(tmp_path: Path):
    from mlprov.reviews import verify_reviews
    from mlprov.trust import Trust

    fifo = tmp_path / "review.sigstore.json"
    os.mkfifo(fifo)
    [result] = within(FIFO_TIMEOUT, lambda: verify_reviews(
        [fifo], Trust(keys=(), source="test"), root_digest="0" * 64, identity="x"), fifo=fifo)
    assert not result.counted
    assert "FIFO" in result.problem


def test_registry_config_deep_toml_is_refused():
    from mlprov.registry._config import parse_config

    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        parse_config(("a = " + "[" * 100_000 + "]" * 100_000).encode())


def test_environment_file_fifo_and_deep_lock(tmp_path: Path):
    from mlprov.sbom import read_environment_file

    fifo = tmp_path / "requirements.txt"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO, not a regular file"):
        within(FIFO_TIMEOUT, lambda: read_environment_file(fifo), fifo=fifo)
    lock = tmp_path / "uv.lock"
    lock.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        read_environment_file(lock)
