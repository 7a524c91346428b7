"""``emit_json_stream`` writes byte for byte what ``emit_json`` writes for the whole document."""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov._cli.output import emit_json, emit_json_stream

_KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12)


def _printed(write: Any) -> str:
    @click.command()
    def command() -> None:
        write()

    result = CliRunner().invoke(command, [], catch_exceptions=False)
    assert result.exit_code == 0
    return result.output


@settings(max_examples=150, deadline=None)
@given(document=st.dictionaries(_KEYS, _VALUES, max_size=4), items=st.lists(_VALUES, max_size=5),
       summary=_VALUES)
def test_the_stream_is_the_document(document: dict[str, Any], items: list[Any], summary: Any):
    key, last = "\U0010ffffitems", "\U0010ffffz"  # sort after every generated key
    whole = {**document, key: items, last: summary}
    expected = _printed(lambda: emit_json(whole))
    streamed = _printed(lambda: emit_json_stream(document, key, iter(items),
                                                 later={last: lambda: summary}))
    assert streamed == expected
    assert json.loads(streamed) == json.loads(expected)


def test_a_summary_key_before_the_list_is_refused():
    with pytest.raises(ValueError, match="sort after"):
        emit_json_stream({"schema": "s"}, "changes", [], later={"alias": lambda: None})


def test_a_key_given_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        emit_json_stream({"changes": 1}, "changes", [])
