"""No string in the policy input can steer the gate; numbers reach it exactly (issue 10 item 1).

The input reaches rego-cpp as JSON text its own parser reads (floats, big integers
and NUL kept), and the answer is read from the engine's node tree by node kind,
never by parsing the JSON text the engine prints (which strings can reshape).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov._internal import rego
from mlprov.policy import load_policy, shipped_policies_dir

EXPLOIT_NAME = '","x"],"deny":[],"zz":[".pkl'

#: Strings an attacker would try: JSON and Rego syntax, escapes, controls, unicode.
HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from([EXPLOIT_NAME, '"', "\\", '\\"', "\n", "\x00", "\x00deny", '"]}', "[]",
                     '{"deny": []}', "\u2028", "\ud7ff", "\U0001f600", "'", "`", "%v", "%s",
                     "undefined", "(error", "true", "null"]),
    st.lists(st.sampled_from(['"', "\\", "]", "}", ",", ":", "deny", "[]", "\n", "\x00"]),
             max_size=12).map("".join),
)


@pytest.fixture(scope="module")
def production():
    return load_policy(shipped_policies_dir() / "production.rego")


@pytest.fixture(scope="module")
def allowed(allowed_input) -> dict[str, Any]:
    return allowed_input


@pytest.fixture(scope="module")
def denied(allowed) -> dict[str, Any]:
    """The same input with one unsafe-pickle finding whose file name is the exploit."""
    document = copy.deepcopy(allowed)
    document["scan"]["findings"] = [
        {"file": EXPLOIT_NAME, "kind": "import", "severity": "dangerous",
         "detail": "os.system", "global": "os.system"}]
    return document


def _eval_metrics(document: dict[str, Any]) -> dict[str, Any]:
    [metrics] = [s["predicate"]["metrics"] for s in document["statements"]
                 if "metrics" in s.get("predicate", {})]
    return metrics


def test_the_shipped_policy_allows_the_base_input(production, allowed):
    assert production.evaluate(allowed).allowed, production.evaluate(allowed).deny


def test_a_file_name_that_closes_the_json_cannot_allow(production, denied):
    decision = production.evaluate(denied)
    assert not decision.allowed
    assert any(EXPLOIT_NAME in message for message in decision.deny), decision.deny


@pytest.mark.parametrize(("value", "allowed_"), [
    (0.6999996, False), (math.nextafter(0.7, 0), False), (0.7, True), (0.70000001, True),
    (0.69999999999999995, True),  # the same double as 0.7
])
def test_edge_floats_against_min_0_70(production, allowed, value, allowed_):
    document = copy.deepcopy(allowed)
    _eval_metrics(document)["auc"] = value
    decision = production.evaluate(document)
    assert decision.allowed is allowed_, (value, decision.deny)
    if not allowed_:
        assert any(m.startswith("eval metric auc = ") for m in decision.deny), decision.deny


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return []


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_string_anywhere_turns_a_deny_into_an_allow(production, denied, data):
    """Arbitrary strings in every string position (file names, model name, reasons,
    comments, reviewer names, licence names, digests...), and as metric names."""
    document = copy.deepcopy(denied)
    paths = _string_paths(document)
    chosen = data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=len(paths),
                                unique=True))
    for path in chosen:
        _set(document, path, data.draw(HOSTILE))
    metrics = _eval_metrics(document)
    for name in data.draw(st.lists(HOSTILE, max_size=3)):
        metrics[name] = 1.0
    assert not production.evaluate(document).allowed


# --- the engine itself ------------------------------------------------------------------

ECHO = rego.Engine([("echo.rego", "package echo\nimport rego.v1\nv := input.v\n"
                     "lt if input.a < input.b\nn := count(input.s)\n")], {})

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=200)
@given(value=JSON)
def test_every_string_integer_and_structure_reaches_the_engine_and_back_exactly(value):
    [echoed] = ECHO.evaluate(["echo/v"], {"v": value})
    assert echoed == value


@settings(max_examples=300)
@given(a=st.floats(allow_nan=False, allow_infinity=False),
       b=st.floats(allow_nan=False, allow_infinity=False))
def test_float_comparisons_are_exact_or_refused(a, b):
    """rego-cpp refuses doubles it cannot parse (1.79e308, subnormals): a refusal is a
    policy error, which denies; an answer is always the exact one."""
    try:
        [lt] = ECHO.evaluate(["echo/lt"], {"a": a, "b": b})
    except rego.RegoFailure:
        return
    assert (lt is True) == (a < b)


#: Characters JSON must escape: rego-cpp's string built-ins see such a string's
#: escapes (count("\\n") is 2; docs/policy.md), equality and sets do not.
_ESCAPED = {'"', "\\", *map(chr, range(0x20))}


@settings(max_examples=100)
@given(s=st.text(max_size=30).filter(lambda s: not _ESCAPED & set(s)))
def test_strings_are_not_cut_or_re_encoded(s):
    [n] = ECHO.evaluate(["echo/n"], {"s": s})
    assert n == len(s)


def test_a_lone_surrogate_is_refused():
    with pytest.raises(rego.RegoFailure, match="not JSON"):
        ECHO.evaluate(["echo/v"], {"v": "\ud800"})


def test_input_that_is_not_json_is_refused():
    with pytest.raises(rego.RegoFailure, match="not JSON"):
        ECHO.evaluate(["echo/v"], {"v": float("nan")})


def test_a_closed_engine_refuses_queries(tmp_path: Path):
    engine = rego.Engine([("t.rego", "package t\nimport rego.v1\nx := 1\n")], {})
    assert engine.evaluate(["t/x"], {}) == [1]
    engine.close()
    with pytest.raises(rego.RegoFailure, match="closed"):
        engine.evaluate(["t/x"], {})


def test_sets_read_from_the_node_tree_keep_every_member():
    engine = rego.Engine([("t.rego", 'package t\nimport rego.v1\n'
                          'deny contains msg if { some f in input.files; '
                          'msg := sprintf("bad %v", [concat("", [f, "x"])]) }\n')], {})
    [deny] = engine.evaluate(["t/deny"], {"files": [EXPLOIT_NAME, "b"]})
    assert len(deny) == 2
    assert json.dumps(deny)  # plain Python values


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).filter(rego.is_plain)
    | st.text(max_size=20).filter(rego.is_plain),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8).filter(rego.is_plain), inner, max_size=4),
    max_leaves=20)

TWO_PATHS_SOURCE = ("package two\nimport rego.v1\nv := input.v\n"
                    "n := [count(x) | some x in input.s]\n"
             "eq := [x | some x in input.s; x == \"é\"]\n"
             "lt := [x | some x in input.f; x < 0.7]\n")
TWO_PATHS = rego.Engine([("two.rego", TWO_PATHS_SOURCE)], {})


@settings(max_examples=150)
@given(value=PLAIN, strings=st.lists(st.text(max_size=10).filter(rego.is_plain), max_size=4),
       floats=st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9,
                                 max_value=1e9).filter(rego.is_plain), max_size=4))
def test_the_fast_input_path_gives_exactly_what_the_exact_path_gives(value, strings, floats):
    """Plain documents go through regopy's node builder (fast); every other document as
    JSON text (exact). For plain documents both must give the same answers."""

    document = {"v": value, "s": strings, "f": floats}
    engine = TWO_PATHS
    fast = engine.evaluate(["two/v", "two/n", "two/eq", "two/lt"], document)
    engine._interpreter.set_input_term(rego.input_term(document))
    exact = engine.evaluate(["two/v", "two/n", "two/eq", "two/lt"], None)
    assert fast == exact
    assert fast[0] == value


@pytest.mark.parametrize(("value", "plain"), [
    (0.91, True), (0.7, True), (0.6999996, False), (math.nextafter(0.7, 0), False),
    (2**63, False), (-(2**63), True), ('a"b', False), ("a\\b", False), ("a\nb", False),
    ("a\x00", False), ("é", True), ("\ud800", False), ({"k": [1, "x", None]}, True)])
def test_what_counts_as_plain(value, plain):
    assert rego.is_plain(value) is plain
