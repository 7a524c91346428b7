"""Canonical JSON (RFC 8785, JCS): the one byte form mlprov hashes and signs.

See https://www.rfc-editor.org/rfc/rfc8785. Any machine serialising the same
value gets the same bytes, so a digest over them is a stable identity.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlprov._internal.arguments import BYTES, TEXT, checked, either
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
    import rfc8785

    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"value cannot be written as canonical JSON: {exc}") from exc
    except RecursionError as exc:
        raise InputError("value cannot be written as canonical JSON: nested too deeply") \
            from exc


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


@checked(data=either(TEXT, BYTES), what=TEXT)
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
