"""Threshold flags: parsed once into names and numbers, refused when malformed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlprov.errors import InputError, MlprovError
from mlprov.thresholds import Thresholds, parse_threshold, parse_thresholds


def test_the_forms_the_issue_names():
    t = parse_thresholds(["test/auc>=0.85", "val/auc>=0.85", "loss<=0.3", "slice:auc>=0.6"])
    assert t.metrics == {"test/auc": {"min": 0.85}, "val/auc": {"min": 0.85},
                         "loss": {"max": 0.3}}
    assert t.slices == {"auc": {"min": 0.6}}
    assert t.lines() == ["loss<=0.3", "test/auc>=0.85", "val/auc>=0.85", "slice:auc>=0.6"]


def test_two_bounds_combine_and_spaces_around_the_operator_are_fine():
    assert parse_thresholds(["loss >= 0", "loss<= 0.4"]).metrics == {
        "loss": {"min": 0.0, "max": 0.4}}


@pytest.mark.parametrize("text", [
    "auc", "auc>0.5", "auc=>0.5", "auc>=", ">=0.5", "auc>=0.5x", "auc>=nan", "auc>=inf",
    "auc>=-inf", "auc>=1_0", "auc>=0x10", "auc>=1e9999", "a uc>=0.5", "auc>=0.5>=0.6",
    "auc\n>=0.5", "auc>=0.5\n", "au\x1bc>=0.5", "au\u202ec>=0.5", "slice:>=0.5", "",
    "auc>=\u0660.5",
])
def test_malformed_thresholds_are_refused(text):
    with pytest.raises(InputError):
        parse_threshold(text)


def test_a_bound_given_twice_or_an_empty_range_is_refused():
    with pytest.raises(InputError, match="twice"):
        parse_thresholds(["auc>=0.5", "auc>=0.6"])
    with pytest.raises(InputError, match="admit nothing"):
        parse_thresholds(["auc>=0.9", "auc<=0.5"])
    with pytest.raises(InputError, match="not one string"):
        parse_thresholds("auc>=0.5")  # type: ignore[arg-type]


def test_apply_replaces_only_the_groups_given():
    data = {"mlprov_config": {"production": {"metrics": {"auc": {"min": 0.7}},
                                             "slices": {"auc": {"min": 0.6}},
                                             "min_approvals": 2}, "other": 1}}
    applied = parse_thresholds(["test/auc>=0.85"]).apply(data)
    assert applied["mlprov_config"]["production"] == {
        "metrics": {"test/auc": {"min": 0.85}}, "slices": {"auc": {"min": 0.6}},
        "min_approvals": 2}
    assert applied["mlprov_config"]["other"] == 1
    assert data["mlprov_config"]["production"]["metrics"] == {"auc": {"min": 0.7}}  # untouched
    assert parse_thresholds(["slice:recall>=0.5"]).apply({})["mlprov_config"] == {
        "production": {"slices": {"recall": {"min": 0.5}}}}


def test_stored_form_round_trips_and_is_checked():
    t = parse_thresholds(["test/auc>=0.85", "slice:auc>=0.6", "loss<=1"])
    assert Thresholds.from_bytes(t.to_bytes()) == t
    for bad in (b"[]", b'{"schema": "x", "metrics": {}, "slices": {}}',
                b'{"schema": "https://mlprov.dev/schemas/thresholds/v1", "metrics": '
                b'{"a": {"min": "1"}}, "slices": {}}',
                b'{"schema": "https://mlprov.dev/schemas/thresholds/v1", "metrics": '
                b'{"a b": {"min": 1}}, "slices": {}}',
                b'{"schema": "https://mlprov.dev/schemas/thresholds/v1", "metrics": '
                b'{"a": {"mid": 1}}, "slices": {}}'):
        with pytest.raises(InputError):
            Thresholds.from_bytes(bad)


@given(st.text(max_size=60))
def test_any_text_parses_or_is_refused_with_an_input_error(text):
    try:
        threshold = parse_threshold(text)
    except InputError as exc:
        assert "\n" not in str(exc).replace("\\n", "")
        return
    assert math.isfinite(threshold.value)
    assert parse_threshold(str(threshold)) == threshold  # the printed form means the same


names = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Zs", "Zl", "Zp",
                                                             "Cs", "Co", "Cn"),
                                       blacklist_characters="<>="), min_size=1, max_size=30)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(st.lists(st.tuples(st.booleans(), names, st.sampled_from([">=", "<="]), numbers),
                max_size=8))
def test_flags_round_trip_through_lines_and_the_stored_form(items):
    texts = [f"{'slice:' if s else ''}{n}{op}{v!r}" for s, n, op, v in items]
    try:
        t = parse_thresholds(texts)
    except MlprovError:
        return  # a bound twice, an empty range, a name starting 'slice:', ...
    assert parse_thresholds(t.lines()) == t
    assert Thresholds.from_bytes(t.to_bytes()) == t
