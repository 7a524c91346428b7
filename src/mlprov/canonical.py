"""Canonical JSON (RFC 8785, JCS): the one byte form mlprov hashes and signs.

See https://www.rfc-editor.org/rfc/rfc8785. Any machine serialising the same
value gets the same bytes, so a digest over them is a stable identity.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlprov._internal.arguments import TEXT, TEXT_OR_BYTES, checked
from mlprov._internal.jsondepth import MAX_JSON_DEPTH, check_json_depth
from mlprov.errors import InputError

__all__ = ["canonical_json", "loads_strict"]

#: Documents larger than this are refused before parsing (a DoS bound).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` to RFC 8785 canonical JSON bytes.

    Example:
        canonical_json({"b": 1, "a": [1.5, None]})   # b'{"a":[1.5,null],"b":1}'

    Raises:
        InputError: the value holds something JSON cannot carry (NaN, infinity,
            non-string keys, integers beyond IEEE 754 double precision...).
    """
    fast = _fast_canonical(value)
    if fast is not None:
        return fast
    import rfc8785

    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"value cannot be written as canonical JSON: {exc}") from exc
    except RecursionError as exc:
        raise InputError("value cannot be written as canonical JSON: nested too deeply") \
            from exc


# The fast path. For a value made only of dict, list, tuple, str, int, bool and None
# (exactly those types: no subclass, whose own methods json and rfc8785 would treat
# differently), with str keys, no float and every int within the range rfc8785
# accepts, the C JSON encoder writes the bytes RFC 8785 prescribes: the same string
# escapes (\b \f \n \r \t \" \\, other controls as lower-case \u00XX, the rest
# as is), no whitespace, keys sorted. Python sorts keys by code point, RFC 8785 by
# UTF-16 code unit: the orders differ only for characters above U+FFFF, so a key
# holding one takes the rfc8785 path, as does anything else (floats: their ECMAScript
# form). A lone surrogate fails the UTF-8 encoding and takes it too (rfc8785 refuses
# it). tests/test_canonical_fast.py checks this against rfc8785 on generated values.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                            allow_nan=False)
_INT_LIMIT = 2**53 - 1  # rfc8785 refuses integers beyond +-(2**53 - 1)


def _fast_canonical(value: Any) -> bytes | None:
    """The canonical bytes of ``value`` when the fast path below applies, else None.

    None also for a value the fast path cannot write (a lone surrogate, nesting too
    deep): rfc8785 says what is wrong, if anything. Bytes mean ``value`` holds only
    dict, list, tuple, str, int, bool and None (exactly those types).
    """
    try:
        if _plain(value):
            return _ENCODER.encode(value).encode("utf-8")
    except (RecursionError, UnicodeEncodeError):
        pass
    return None


def _plain(value: Any) -> bool:
    """Whether json's C encoder writes ``value`` exactly as RFC 8785 does (see above)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        in_range: bool = -_INT_LIMIT <= value <= _INT_LIMIT
        return in_range
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) > "\uffff"):
                return False
            kind = type(item)
            if not (kind is str or kind is bool or item is None or _plain(item)):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            kind = type(item)
            if not (kind is str or kind is bool or item is None or _plain(item)):
                return False
        return True
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # json.loads turns an overflowing literal such as 1e400 into inf without
    # calling parse_constant; refuse it like the Infinity token.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range for a double")
    return value


_MAX_SAFE_INT = 2**53 - 1


def _exact_int(text: str) -> int | float:
    # RFC 8785 writes a double of 2**53 or more in integer form ("1e20" becomes
    # "100000000000000000000"), which json.loads would read back as an int outside
    # the range canonical_json accepts. Read such a literal as the double it names
    # (I-JSON, RFC 7493 2.2) when it is exactly that double's canonical text. Any
    # other integer stays an exact int (canonical_json refuses it if re-serialised).
    value = int(text)
    if abs(value) <= _MAX_SAFE_INT:
        return value
    import rfc8785

    try:
        as_double = float(value)
    except OverflowError:
        return value
    if rfc8785.dumps(as_double) == text.encode():
        return as_double
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # in C; only a short dict needs the loop that names the duplicate
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _val in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


@checked(data=TEXT_OR_BYTES, what=TEXT)
def loads_strict(data: bytes | str, *, what: str) -> Any:
    """Parse JSON strictly: no NaN/Infinity, no duplicate keys, bounded size.

    Number literals that overflow a double (``1e400``) count as Infinity.
    Integers beyond 2**53 - 1 are read as doubles when they are exactly the
    canonical text of one (what :func:`canonical_json` writes for large floats),
    so ``canonical_json(loads_strict(canonical_json(x)))`` always round-trips.
    Duplicate keys are refused because two parsers could each pick a different
    value from the same signed bytes. Arrays and objects may nest at most
    :data:`~mlprov._internal.jsondepth.MAX_JSON_DEPTH` levels (checked on the text,
    before the parser recurses).

    Example:
        document = loads_strict(Path("metrics.json").read_bytes(), what="metrics.json")

    Raises:
        InputError: naming ``what`` when the document is not such JSON.
    """
    # A str is bounded by its UTF-8 size (up to 4 bytes a character), not its length.
    size = len(data)
    if isinstance(data, str) and size <= MAX_DOCUMENT_BYTES:
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise InputError(f"{what} is too large ({size} bytes)")
    check_json_depth(data, what=what, max_depth=MAX_JSON_DEPTH)
    try:
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float,
                          parse_int=_exact_int,
                          object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{what} is not valid JSON: {exc}") from exc
