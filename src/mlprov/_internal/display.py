r"""Untrusted text made safe to print on a terminal, one line per value.

Names, reasons, comments, file names, metric names and messages come from users,
evidence or database rows. Printed raw, a newline forges an output line (an audit
entry that never happened), an escape sequence rewrites the screen, a
bidirectional override shows one name as another. :func:`printable` escapes
every control, format, private-use, unassigned or separator character but
the space (Unicode categories C* and Z*) as ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``, and a
backslash as ``\\\\``, so the text is unambiguous and still readable. JSON output
is never escaped this way: it is exact, and its consumers parse it.
"""

from __future__ import annotations

import unicodedata
from typing import Any

__all__ = ["printable", "printable_tree", "validator_words"]

#: Controls, format characters, surrogates, private-use and unassigned code points,
#: and separators other than the plain space (a look-alike space hides a difference).
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    r"""``text`` with every control or format character escaped (and ``\`` doubled)."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # the common case, fast
    return "".join("\\\\" if c == "\\" else
                   _escape(c) if c != " " and unicodedata.category(c) in _UNSAFE else c
                   for c in text)


def printable_tree(value: Any) -> Any:
    """A copy of a JSON-like value with every string (keys too) made :func:`printable`."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(k): printable_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_tree(v) for v in value]
    return value


def validator_words(message: str) -> str:
    """A validator's refusal as mlprov words it: pydantic's ``Value error, `` prefix dropped."""
    return message.removeprefix("Value error, ")
