"""Tests for mlprov.canonical: RFC 8785 output and strict JSON parsing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlprov.canonical import MAX_DOCUMENT_BYTES, canonical_json, loads_strict
from mlprov.errors import InputError

# --- RFC 8785 output -----------------------------------------------------------------


def test_rfc8785_key_order_is_utf16_code_units():
    """The sorting example of RFC 8785 section 3.2.3."""
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return",
             "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One",
             "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
             "\u00f6": "Latin Small Letter O With Diaeresis"}
    out = canonical_json(value).decode("utf-8")
    order = [json.loads(f'"{k}"') for k in _keys_in_order(out)]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    # Code-point order would put U+FB33 before U+1F600: this is where UTF-16 differs.
    assert sorted(value) != order


def _keys_in_order(text: str) -> list[str]:
    pairs: list[str] = []
    json.loads(text, object_pairs_hook=lambda kv: pairs.extend(k for k, _ in kv) or {})
    return [json.dumps(k)[1:-1] for k in pairs]


def test_rfc8785_primitive_example():
    """The example of RFC 8785 section 3.2.2."""
    value = {"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
             "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
             "literals": [None, True, False]}
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,'
                '1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert canonical_json(value) == expected.encode("utf-8")


@pytest.mark.parametrize(("number", "text"), [
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (0.000001, "0.000001"),
    (1e-7, "1e-7"),
    (-0.0, "0"),
    (5.0, "5"),
    (0.1, "0.1"),
    (123456789.0, "123456789"),
    (-1.5e-10, "-1.5e-10"),
    (9007199254740991, "9007199254740991"),
    (-9007199254740991, "-9007199254740991"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (5e-324, "5e-324"),
])
def test_number_formatting(number: float, text: str):
    assert canonical_json(number) == text.encode()
    assert canonical_json([number]) == f"[{text}]".encode()


def test_no_whitespace_and_utf8_output():
    assert canonical_json({"b": [1, {"d": 2, "c": 3}], "a": "ü"}) == \
        '{"a":"ü","b":[1,{"c":3,"d":2}]}'.encode()


def test_control_characters_escaped():
    assert canonical_json("\x00\x1f\t\b\f") == b'"\\u0000\\u001f\\t\\b\\f"'


@pytest.mark.parametrize("value", [
    float("nan"), float("inf"), float("-inf"), {"x": [float("nan")]},
    2**53, -(2**53), {1: "non-string key"}, {"x": object()}, {"s": {1, 2}}, "\ud800", b"bytes",
])
def test_canonical_json_rejects(value: Any):
    with pytest.raises(InputError, match="canonical JSON"):
        canonical_json(value)


def test_canonical_json_deep_nesting_is_an_input_error():
    deep: Any = 1
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(InputError):
        canonical_json(deep)


# --- loads_strict --------------------------------------------------------------------


def test_loads_strict_parses_plain_json():
    assert loads_strict(b'{"a": [1, 2.5, "x", null, true]}', what="doc") == \
        {"a": [1, 2.5, "x", None, True]}
    assert loads_strict('"\u00fc"', what="doc") == "\u00fc"


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"a": 1, "a": 1}',
                                  '[{"x": {"k": 1, "k": 2}}]'])
def test_loads_strict_rejects_duplicate_keys(text: str):
    with pytest.raises(InputError, match="duplicate key"):
        loads_strict(text, what="signed doc")


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"x": -Infinity}', "1e400", "[-1e999]",
                                  '{"x": 1.0e309}'])
def test_loads_strict_rejects_non_finite_numbers(text: str):
    with pytest.raises(InputError):
        loads_strict(text, what="metrics")


@pytest.mark.parametrize("data", [b"", b"{", b"{'a': 1}", b"[1,]", b"\xff\xfe\xfa", b"01",
                                  b'{"a": 1} trailing'])
def test_loads_strict_rejects_malformed(data: bytes):
    with pytest.raises(InputError, match="the thing is not valid JSON"):
        loads_strict(data, what="the thing")


def test_loads_strict_rejects_deep_nesting():
    with pytest.raises(InputError):
        loads_strict("[" * 200_000 + "]" * 200_000, what="doc")


def test_loads_strict_rejects_oversized_documents():
    big = b'"' + b"a" * MAX_DOCUMENT_BYTES + b'"'
    with pytest.raises(InputError, match="too large"):
        loads_strict(big, what="bundle")


def test_loads_strict_measures_str_size_in_utf8_bytes():
    # Fewer characters than the bound, more UTF-8 bytes than it.
    text = '"' + "\u00fc" * (MAX_DOCUMENT_BYTES // 2 + 1) + '"'
    assert len(text) < MAX_DOCUMENT_BYTES
    with pytest.raises(InputError, match="too large"):
        loads_strict(text, what="bundle")


def test_loads_strict_accepts_document_at_the_bound():
    doc = b'"' + b"a" * (MAX_DOCUMENT_BYTES - 2) + b'"'
    assert len(doc) == MAX_DOCUMENT_BYTES
    assert len(loads_strict(doc, what="doc")) == MAX_DOCUMENT_BYTES - 2


# --- round trip ----------------------------------------------------------------------

_SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
_SCALAR = (st.none() | st.booleans() | _SAFE_INT
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(st.characters(blacklist_categories=("Cs",))))
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), inner,
                      max_size=5),
    max_leaves=30,
)


@given(_JSON)
def test_canonical_round_trip_is_stable(value: Any):
    once = canonical_json(value)
    assert canonical_json(loads_strict(once, what="doc")) == once
    assert once.decode("utf-8")  # valid UTF-8


_SMALL_FLOAT = st.floats(allow_nan=False, allow_infinity=False, min_value=-(2.0**53) + 1,
                         max_value=2.0**53 - 1)
_JSON_SMALL = st.recursive(
    st.none() | st.booleans() | _SAFE_INT | _SMALL_FLOAT | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=5),
    max_leaves=30,
)


@given(_JSON_SMALL)
def test_canonical_round_trip_through_plain_json_loads(value: Any):
    # Plain json.loads is enough while no float reaches 2**53 (see the test below).
    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once


@pytest.mark.parametrize("number", [3.180704217906875e16, 1e20, -1e21 / 10, 2.0**60,
                                    1.7976931348623157e308])
def test_large_floats_round_trip_through_loads_strict(number: float):
    """RFC 8785 writes these in integer form; reading them back must not break re-hashing."""
    once = canonical_json({"x": number})
    back = loads_strict(once, what="doc")
    assert back == {"x": number}
    assert canonical_json(back) == once


def test_loads_strict_keeps_other_big_integers_exact():
    # Not the canonical text of any double: stays an exact int (and is not canonical).
    assert loads_strict("9007199254740993", what="doc") == 9007199254740993
    assert loads_strict("12345678901234567890123", what="doc") == 12345678901234567890123
    assert loads_strict("9007199254740991", what="doc") == 9007199254740991
    with pytest.raises(InputError):
        canonical_json(loads_strict("9007199254740993", what="doc"))


@given(st.dictionaries(st.text(max_size=5), _SAFE_INT, max_size=8), st.randoms())
def test_canonical_json_ignores_insertion_order(value: dict[str, int], rnd: Any):
    keys = list(value)
    rnd.shuffle(keys)
    assert canonical_json({k: value[k] for k in keys}) == canonical_json(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_round_trip_exactly(number: float):
    parsed = loads_strict(canonical_json(number), what="doc")
    assert parsed == number  # -0.0 == 0 too
    assert math.isfinite(parsed)


# Ranges, not a filter: filtering st.integers() for huge values rejects most draws and
# sometimes trips hypothesis's filter_too_much health check (a flaky failure).
@given(st.integers(min_value=2**53) | st.integers(max_value=-(2**53))
       | st.sampled_from([math.nan, math.inf, -math.inf]))
def test_values_outside_json_domain_raise_input_error(value: Any):
    with pytest.raises(InputError):
        canonical_json({"v": value})
