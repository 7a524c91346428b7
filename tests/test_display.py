"""Untrusted text made printable (issue 10 item 7): one line, no controls, unambiguous."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlprov._internal.display import printable, printable_tree


@given(st.text())
def test_printable_is_one_line_without_controls(text: str):
    shown = printable(text)
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown
    assert shown.isprintable()


@given(st.text(), st.text())
def test_printable_is_injective(a: str, b: str):
    assert (printable(a) == printable(b)) == (a == b)


def test_printable_keeps_ordinary_text_and_is_unambiguous():
    assert printable("credit-risk v1: None -> Staging") == "credit-risk v1: None -> Staging"
    assert printable("héllo wörld") == "héllo wörld"
    assert printable("a\nb") == "a\\x0ab" != printable("a\\x0ab") == "a\\\\x0ab"
    assert printable("\u202egnp.exe") == "\\u202egnp.exe"
    assert printable_tree({"k\n": ["v\x1b"]}) == {"k\\x0a": ["v\\x1b"]}
