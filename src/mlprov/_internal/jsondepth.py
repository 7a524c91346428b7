"""JSON nesting counted on the text, before any parser runs.

One owner: :mod:`mlprov._internal.readers` and :mod:`mlprov.canonical` both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlprov.errors import InputError, MlprovError

__all__ = ["MAX_JSON_DEPTH", "check_json_depth"]

#: Containers nested deeper than this are refused. mlprov's own documents nest
#: fewer than 16 levels; 64 leaves room for user data without risking the stack.
MAX_JSON_DEPTH = 64

# A string literal (escapes included) or one bracket. Possessive quantifiers keep the
# match linear; an unterminated string is skipped character by character and the
# parser refuses the document afterwards.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)
_JSON_TOKEN_BYTES = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)
_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)  # unrolled: faster
_JSON_STRING_BYTES = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_NOT_BRACKET_BYTES = re.compile(rb"[^\[\]{}]++")
_OPENERS = frozenset("[{") | frozenset(b"[{")


def _shallow(data: bytes | str, max_depth: int) -> bool:
    """Whether ``data`` surely nests at most ``max_depth`` deep (C-speed passes only).

    Strings removed, only brackets kept, then each round deletes the innermost
    pairs: a document of depth d is empty after d rounds. False means "too deep,
    or brackets that do not pair up" (the exact count below tells them apart).
    """
    if isinstance(data, str):
        brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", data))
        for _ in range(max_depth):
            if not brackets:
                return True
            brackets = brackets.replace("[]", "").replace("{}", "")
        return not brackets
    raw = _NOT_BRACKET_BYTES.sub(b"", _JSON_STRING_BYTES.sub(b"", data))
    for _ in range(max_depth):
        if not raw:
            return True
        raw = raw.replace(b"[]", b"").replace(b"{}", b"")
    return not raw


def check_json_depth(data: bytes | str, *, what: str, max_depth: int = MAX_JSON_DEPTH,
                     error: type[MlprovError] = InputError) -> None:
    """Refuse JSON text whose arrays and objects nest deeper than ``max_depth``.

    Counted on the text before any parser runs, so depth never reaches the
    parser's (or a later tree walk's) recursion.

    Raises:
        MlprovError: of class ``error``, naming ``what``.
    """
    if isinstance(data, str):
        brackets = data.count("[") + data.count("{")
    else:
        brackets = data.count(b"[") + data.count(b"{")
    if brackets <= max_depth or _shallow(data, max_depth):
        return
    finder: Iterator[re.Match[str]] | Iterator[re.Match[bytes]]
    if isinstance(data, str):
        finder = _JSON_TOKEN.finditer(data)
    else:
        finder = _JSON_TOKEN_BYTES.finditer(data)
    depth = 0
    for match in finder:
        first: str | int = match.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > max_depth:
                raise error(f"{what} is not valid JSON: nested deeper than {max_depth} "
                            "levels")
        elif first not in ('"', 34):
            depth -= 1
