"""canonical_json's fast path (json's C encoder) against rfc8785, the reference.

For any value: the same bytes, or the same refusal. And the fast path is taken
exactly for the values it writes byte for byte as rfc8785 does.
"""

from __future__ import annotations

import enum
import sys
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

import mlprov.canonical as canonical
from mlprov.canonical import canonical_json
from mlprov.errors import InputError


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Loud(str):
    def __str__(self) -> str:
        return "LOUD"

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return b"\xff" + str.encode(self, *args, **kwargs)


class Tally(int):
    def __repr__(self) -> str:
        return "many"


LIMIT = 2**53 - 1
texts = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8) | \
    st.sampled_from(["", "\x00", "\x1f", "\x7f", '"', "\\", "\b\f\n\r\t", "\u2028",
                     "\ud800", "a\udfffb", "\U0001f600", "\ufb33", "\ue000", "\uffff"])
ints = st.integers(min_value=-LIMIT - 2, max_value=LIMIT + 2) | st.integers() | \
    st.sampled_from([LIMIT, -LIMIT, LIMIT + 1, -LIMIT - 1, 2**64])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, 1e21])
odd = st.sampled_from([Colour.RED, Level.HIGH, Loud("x"), Tally(5), b"bytes", {1, 2},
                       1 + 2j])
scalars = st.none() | st.booleans() | ints | texts | floats | odd
keys = texts | st.sampled_from([Colour.RED, Loud("k"), 1, None, (1,)])


def values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
        | st.dictionaries(keys, inner, max_size=5),
        max_leaves=30)


def _reference(value: Any) -> bytes | None:
    """rfc8785's bytes, or None where it refuses the value."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        return None


@settings(max_examples=2000)
@given(values())
def test_same_bytes_or_same_refusal_as_rfc8785(value: Any):
    expected = _reference(value)
    if expected is None:
        with pytest.raises(InputError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


@settings(max_examples=1000)
@given(values())
def test_the_fast_path_writes_what_rfc8785_writes(value: Any):
    """Whatever _plain admits, json's C encoder writes as rfc8785 does (or both refuse)."""
    try:
        admitted = canonical._plain(value)
    except RecursionError:
        admitted = False
    if admitted:
        try:
            fast: bytes | None = canonical._ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 must refuse it too
            fast = None
        assert fast == _reference(value)


_plain_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-LIMIT, max_value=LIMIT)
    | st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0xFFFF,
                                                     exclude_categories=["Cs"])),
                      inner, max_size=5),
    max_leaves=30)


@given(_plain_json)
def test_plain_documents_take_the_fast_path(value: Any):
    assert canonical._plain(value)
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [
    1.5, [0.0], {"a": 2**53}, {"a": -(2**53)}, {"\U0001f600": 1}, {1: "a"},
    {"k": Colour.RED}, [Level.HIGH], Loud("x"), Tally(1), {Loud("k"): 1}, {"a": b"x"},
    type("D", (dict,), {})(a=1), type("L", (list,), {})([1]),
], ids=lambda value: type(value).__name__)
def test_anything_else_is_left_to_rfc8785(value: Any):
    assert not canonical._plain(value)


def test_astral_keys_keep_utf16_order():
    value = {"\U0001f600": 1, "\ufb33": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < \
        canonical_json(value).index("\ufb33".encode())


def test_a_lone_surrogate_is_refused():
    with pytest.raises(InputError, match="non-UTF-8"):
        canonical_json({"a": "\ud800"})
    with pytest.raises(InputError):
        canonical_json({"\udc00": 1})


def test_deep_nesting_and_cycles_are_refused():
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() + 10):
        deep = [deep]
    with pytest.raises(InputError, match="nested too deeply"):
        canonical_json(deep)
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(InputError):
        canonical_json(cycle)


def test_plain_values_need_no_rfc8785():
    """rfc8785, the fallback, is imported only for a value the fast path leaves to it."""
    import subprocess

    code = ("import sys, mlprov.canonical as c; "
            "c.canonical_json({'a': [1, 'x', None, True, {'b': -3}]}); "
            "print('rfc8785' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout == "False\n"
