r"""The search language of ``models list --filter`` and ``versions list --filter``.

MLflow's search syntax (https://mlflow.org/docs/latest/search-model-versions.html):
conditions joined by ``AND``, each ``FIELD OP VALUE``::

    name LIKE 'ranker-%' AND tags.team = 'search' AND metrics.`test/auc` > 0.85

- fields: ``name``, ``version``, ``stage``, ``alias``, ``identity``, ``root_digest``
  (``digest``), ``created_at`` (``creation_timestamp``), ``description``,
  ``tags.KEY`` and ``metrics.KEY`` (versions); models take ``name``, ``alias``,
  ``stage`` (a version in use there), ``created_at``, ``description``, ``tags.KEY``;
- a key with other characters than letters, digits and ``_`` is quoted:
  ``tags.`my key```, ``metrics."test/auc"``;
- operators ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` (numbers and times),
  ``LIKE`` and ``ILIKE`` (``%`` any text, ``_`` one character, ``\`` takes the next
  character literally; ``ILIKE`` folds ASCII letters only), ``IN ('a', 'b')``;
- strings in single or double quotes (a quote doubled inside: ``'it''s'``),
  numbers in decimal; a time is RFC 3339 text or, as in MLflow, milliseconds
  since the epoch.

This module parses text into a :class:`Filter` (a tuple of :class:`Comparison`)
and nothing else: no ``eval``, and the stores compile the tree into queries
with bound parameters (:mod:`._sqlsearch`), never into SQL text. Every
problem is one :class:`FilterError` naming the position (exit 2, a usage error).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mlprov.errors import EXIT_USAGE, InputError

__all__ = [
    "MAX_CLAUSES",
    "MAX_FILTER_CHARS",
    "Comparison",
    "Filter",
    "FilterError",
    "OrderKey",
    "Scope",
    "SearchQuery",
    "parse_filter",
    "parse_order",
]

Scope = Literal["models", "versions"]
Value = str | int | float
MAX_FILTER_CHARS = 4096
MAX_CLAUSES = 50
MAX_IN_VALUES = 100
MAX_VALUE_CHARS = 5000
MAX_ORDER_KEYS = 3


class FilterError(InputError):
    """A ``--filter`` or ``--order-by`` that does not parse (a usage error, exit 2)."""

    exit_code = EXIT_USAGE
    hint = ("filters are MLflow's search syntax: FIELD OP VALUE joined by AND, e.g. "
            "name LIKE 'ranker-%' AND tags.team = 'search' AND metrics.`test/auc` > 0.85")


@dataclass(frozen=True)
class Comparison:
    """One condition: ``field`` (``tag`` and ``metric`` with a ``key``), ``op``, ``value``.

    ``value`` is a string, an int (``version``), a float (``metric``), a
    normalised time string (``created_at``), or a tuple of them for ``IN``.
    """

    field: str
    key: str | None
    op: str
    value: Value | tuple[Value, ...]


@dataclass(frozen=True)
class Filter:
    """Conditions that must all hold (an empty filter matches everything)."""

    clauses: tuple[Comparison, ...] = ()

    def fingerprint(self) -> list[list[object]]:
        """A JSON-ready form that identifies the filter (page tokens name it)."""
        return [[c.field, c.key, c.op, list(c.value) if isinstance(c.value, tuple)
                 else c.value] for c in self.clauses]


@dataclass(frozen=True)
class OrderKey:
    """One sort key: ``field`` (``metric`` with a ``key``), descending or not."""

    field: str
    key: str | None = None
    descending: bool = False

    def label(self) -> str:
        """As written: ``created_at DESC``, ``metrics.`test/auc` ASC``."""
        name = f"metrics.`{self.key}`" if self.field == "metric" else self.field
        return f"{name} {'DESC' if self.descending else 'ASC'}"


@dataclass(frozen=True)
class SearchQuery:
    """One page of a search, as a store answers it.

    ``order`` ends with the scope's unique key (models: ``name``; versions:
    ``name``, ``version``), so ``after`` (the previous page's last sort key,
    one value per order key) names a position exactly.
    """

    filter: Filter
    order: tuple[OrderKey, ...]
    limit: int
    after: tuple[Value | None, ...] | None = None
    name: str | None = None


# --------------------------------------------------------------------------- tokens

_FIELDS: dict[str, str] = {
    "name": "name", "version": "version", "version_number": "version",
    "stage": "stage", "current_stage": "stage", "alias": "alias", "aliases": "alias",
    "identity": "identity", "root_digest": "root_digest", "digest": "root_digest",
    "created_at": "created_at", "creation_timestamp": "created_at",
    "description": "description",
}
_PREFIXES = {"tags": "tag", "tag": "tag", "metrics": "metric", "metric": "metric"}
_MODEL_FIELDS = frozenset({"name", "alias", "stage", "created_at", "description", "tag"})
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN"})
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_OPS: dict[str, frozenset[str]] = {
    "name": _STRING_OPS, "identity": _STRING_OPS, "root_digest": _STRING_OPS,
    "description": _STRING_OPS, "tag": _STRING_OPS,
    "stage": frozenset({"=", "!=", "IN"}),
    "alias": frozenset({"=", "LIKE", "ILIKE", "IN"}),
    "version": _NUMBER_OPS | {"IN"},
    "metric": _NUMBER_OPS,
    "created_at": _NUMBER_OPS,
}
_STAGES = ("None", "Staging", "Production", "Archived")
_KEYWORDS = frozenset({"and", "or", "not", "like", "ilike", "in"})

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?")
_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() takes "²" and "٣"
_SYMBOLS = ("<=", ">=", "!=", "==", "=", "<", ">", "(", ")", ",", ".")


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, quoted (backquoted key), string, number, symbol, end
    text: str
    pos: int  # 1-based character position in the filter


def _fail(text: str, pos: int, what: str) -> FilterError:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return FilterError(f"bad filter at position {pos}: {what} (in {shown!r})")


def _quoted(text: str, start: int, quote: str) -> tuple[str, int]:
    """The text between ``quote`` at ``start`` and its closing quote (doubled = literal)."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            if text[i + 1:i + 2] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(char)
        i += 1
    what = "backquoted key" if quote == "`" else "string"
    raise _fail(text, start + 1, f"unterminated {what}")


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in " \t\r\n":
            i += 1
            continue
        if char in "'\"`":
            value, end = _quoted(text, i, char)
            tokens.append(_Token("quoted" if char == "`" else "string", value, i + 1))
            i = end
            continue
        if match := _IDENT.match(text, i):
            tokens.append(_Token("ident", match.group(), i + 1))
            i = match.end()
            continue
        if char in _DIGITS or (char in "+-" and text[i + 1:i + 2] in _DIGITS):
            match = _NUMBER.match(text, i)
            assert match is not None
            if _IDENT.match(text, match.end()):
                raise _fail(text, i + 1, f"bad number {text[i:match.end() + 1]!r}")
            tokens.append(_Token("number", match.group(), i + 1))
            i = match.end()
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if symbol is None:
            raise _fail(text, i + 1, f"unexpected character {char!r}")
        tokens.append(_Token("symbol", symbol, i + 1))
        i += len(symbol)
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.scope = scope
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, token: _Token, what: str) -> FilterError:
        return _fail(self.text, token.pos, what)

    def word(self, token: _Token) -> str | None:
        return token.text.lower() if token.kind == "ident" else None

    def parse(self) -> Filter:
        clauses = [self.clause()]
        while True:
            token = self.peek()
            if token.kind == "end":
                break
            word = self.word(token)
            if word == "and":
                self.take()
                clauses.append(self.clause())
                if len(clauses) > MAX_CLAUSES:
                    raise self.fail(token, f"more than {MAX_CLAUSES} conditions")
                continue
            if word == "or":
                raise self.fail(token, "OR is not supported (MLflow's search syntax joins "
                                       "conditions with AND only)")
            raise self.fail(token, f"expected AND or the end, found {_shown(token)}")
        return Filter(tuple(clauses))

    def clause(self) -> Comparison:
        field, key, _token = self.field()
        op_token = self.peek()
        op = self.operator()
        if op not in _OPS[field]:
            allowed = ", ".join(sorted(_OPS[field]))
            raise self.fail(op_token, f"{_label(field, key)} does not take {op} "
                                      f"(it takes {allowed})")
        if op == "IN":
            values = self.in_list()
            return Comparison(field, key, op, tuple(self.value(field, key, op, t)
                                                     for t in values))
        value_token = self.take()
        if value_token.kind not in ("string", "number"):
            raise self.fail(value_token, f"expected a value after {op}, found "
                                         f"{_shown(value_token)}")
        return Comparison(field, key, op, self.value(field, key, op, value_token))

    def field(self) -> tuple[str, str | None, _Token]:
        token = self.take()
        if token.kind not in ("ident", "quoted"):
            raise self.fail(token, f"expected a field, found {_shown(token)}")
        name = token.text.lower() if token.kind == "ident" else token.text
        if self.peek().kind == "symbol" and self.peek().text == ".":
            self.take()
            kind = _PREFIXES.get(name)
            if kind is None:
                raise self.fail(token, f"unknown field prefix {token.text!r} (use tags.KEY "
                                       "or metrics.KEY)")
            key_token = self.take()
            if key_token.kind not in ("ident", "quoted", "string") or not key_token.text:
                raise self.fail(key_token, f"expected a key after {token.text}., found "
                                           f"{_shown(key_token)}")
            key = key_token.text
            if len(key) > 250:
                raise self.fail(key_token, "the key is longer than 250 characters")
            if self.scope == "models" and kind == "metric":
                raise self.fail(token, "metrics filter versions (use `mlprov versions list`)")
            return kind, key, token
        if name in _PREFIXES:
            raise self.fail(token, f"{token.text} needs a key: {token.text}.KEY")
        if token.kind == "ident" and name in _KEYWORDS:
            raise self.fail(token, f"expected a field, found the keyword {token.text.upper()}")
        field = _FIELDS.get(name)
        if field is None:
            known = ", ".join(sorted({v for v in _FIELDS.values()}
                                     & (set(_MODEL_FIELDS) if self.scope == "models"
                                        else set(_FIELDS.values()))))
            raise self.fail(token, f"unknown field {token.text!r} (fields: {known}, tags.KEY"
                                   + (", metrics.KEY)" if self.scope == "versions" else ")"))
        if self.scope == "models" and field not in _MODEL_FIELDS:
            raise self.fail(token, f"{field} filters versions (use `mlprov versions list`)")
        return field, None, token

    def operator(self) -> str:
        token = self.take()
        if token.kind == "symbol" and token.text in ("=", "==", "!=", "<", "<=", ">", ">="):
            return "=" if token.text == "==" else token.text
        word = self.word(token)
        if word in ("like", "ilike", "in"):
            return word.upper()
        if word == "not":
            raise self.fail(token, "NOT is not supported (use != )")
        raise self.fail(token, f"expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN), "
                               f"found {_shown(token)}")

    def in_list(self) -> list[_Token]:
        opening = self.take()
        if opening.kind != "symbol" or opening.text != "(":
            raise self.fail(opening, f"expected ( after IN, found {_shown(opening)}")
        values: list[_Token] = []
        while True:
            token = self.take()
            if token.kind not in ("string", "number"):
                raise self.fail(token, f"expected a value in the IN list, found "
                                       f"{_shown(token)}")
            values.append(token)
            if len(values) > MAX_IN_VALUES:
                raise self.fail(token, f"more than {MAX_IN_VALUES} values in one IN list")
            after = self.take()
            if after.kind == "symbol" and after.text == ",":
                continue
            if after.kind == "symbol" and after.text == ")":
                return values
            raise self.fail(after, f"expected , or ) in the IN list, found {_shown(after)}")

    def value(self, field: str, key: str | None, op: str, token: _Token) -> Value:
        label = _label(field, key)
        if field == "version":
            return self.version(token)
        if field == "metric":
            if token.kind != "number":
                raise self.fail(token, f"{label} compares numbers, not {_shown(token)}")
            number = float(token.text)
            if not math.isfinite(number):
                raise self.fail(token, f"{token.text} is not a finite number")
            return number
        if field == "created_at":
            return self.time(token)
        if token.kind != "string":
            raise self.fail(token, f"{label} takes a quoted string, not {_shown(token)}")
        if len(token.text) > MAX_VALUE_CHARS:
            raise self.fail(token, f"a value longer than {MAX_VALUE_CHARS} characters")
        if field == "stage":
            for stage in _STAGES:
                if token.text.lower() == stage.lower():
                    return stage
            raise self.fail(token, f"unknown stage {token.text!r} (stages: "
                                   f"{', '.join(_STAGES)})")
        if op in ("LIKE", "ILIKE") and _dangling_escape(token.text):
            raise self.fail(token, "the pattern ends with a lone \\ (write \\\\ for a "
                                   "backslash)")
        return token.text

    def version(self, token: _Token) -> int:
        text = token.text
        if token.kind not in ("number", "string") or not re.fullmatch(r"0|[1-9][0-9]{0,17}",
                                                                      text):
            raise self.fail(token, f"a version is a number 1, 2, 3..., not {_shown(token)}")
        return int(text)

    def time(self, token: _Token) -> str:
        if token.kind == "number":
            try:
                millis = float(token.text)
                moment = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
            except (ValueError, OverflowError, OSError) as exc:
                raise self.fail(token, f"{token.text} is not a time in milliseconds since "
                                       "the epoch") from exc
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        text = token.text.strip()
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise self.fail(token, f"{token.text!r} is not a time (use RFC 3339, e.g. "
                                   "'2026-01-31T12:00:00Z', or milliseconds since the "
                                   "epoch)") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dangling_escape(pattern: str) -> bool:
    """Whether ``pattern`` ends with an escape character that escapes nothing."""
    run = len(pattern) - len(pattern.rstrip("\\"))
    return run % 2 == 1


def _label(field: str, key: str | None) -> str:
    if field == "tag":
        return f"tags.{key}"
    if field == "metric":
        return f"metrics.{key}"
    return field


def _shown(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return f"the string {token.text[:40]!r}"
    if token.kind == "quoted":
        return f"`{token.text[:40]}`"
    return repr(token.text[:40])


def parse_filter(text: str | None, *, scope: Scope = "versions") -> Filter:
    """Parse a search filter (see the module docstring); None or blank matches everything.

    Raises:
        FilterError: it does not parse, names an unknown field, or compares a
            field with an operator or value it does not take.
    """
    if text is None or not text.strip():
        return Filter()
    if not isinstance(text, str):
        raise FilterError(f"a filter is text, not {type(text).__name__}")
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter is longer than {MAX_FILTER_CHARS} characters")
    return _Parser(text, scope).parse()


_ORDER_FIELDS: dict[Scope, frozenset[str]] = {
    "models": frozenset({"name", "created_at"}),
    "versions": frozenset({"name", "version", "created_at", "metric"}),
}


def parse_order(items: Sequence[str] | str | None, *, scope: Scope = "versions",
                name: str | None = None) -> tuple[OrderKey, ...]:
    """Parse ``--order-by`` items (``FIELD [ASC|DESC]``) and add the scope's unique key.

    Default order: models by name; versions of one model newest first; versions
    of every model by name, then newest first.

    Raises:
        FilterError: an unknown field or direction, a field named twice, or more
            than three keys.
    """
    if isinstance(items, str):
        items = [items]
    keys: list[OrderKey] = []
    for item in items or ():
        if not isinstance(item, str):
            raise FilterError(f"an --order-by item is text, not {type(item).__name__}")
        keys.append(_order_key(item, scope))
    if len(keys) > MAX_ORDER_KEYS:
        raise FilterError(f"at most {MAX_ORDER_KEYS} --order-by keys")
    seen = [(k.field, k.key) for k in keys]
    if len(set(seen)) != len(seen):
        raise FilterError("an --order-by field is named twice")
    if not keys:
        if scope == "models":
            keys = [OrderKey("name")]
        elif name is not None:
            keys = [OrderKey("version", descending=True)]
        else:
            keys = [OrderKey("name"), OrderKey("version", descending=True)]
    fields = {k.field for k in keys}
    if "name" not in fields and not (scope == "versions" and name is not None):
        keys.append(OrderKey("name"))
    if scope == "versions" and "version" not in fields:
        keys.append(OrderKey("version", descending=True))
    return tuple(keys)


def _order_key(item: str, scope: Scope) -> OrderKey:
    text = item.strip()
    descending = False
    words = text.rsplit(None, 1)
    if len(words) == 2 and words[1].lower() in ("asc", "desc"):
        text, descending = words[0].strip(), words[1].lower() == "desc"
    try:
        tokens = _tokens(text)
    except FilterError as exc:
        raise FilterError(f"bad --order-by {item!r}: {exc}") from exc
    parser = _Parser(text, scope)
    parser.tokens = tokens
    try:
        field, key, _token = parser.field()
    except FilterError as exc:
        raise FilterError(f"bad --order-by {item!r}: {exc}") from exc
    if parser.peek().kind != "end":
        raise FilterError(f"bad --order-by {item!r}: expected FIELD [ASC|DESC]")
    if field not in _ORDER_FIELDS[scope]:
        allowed = ", ".join(sorted(f if f != "metric" else "metrics.KEY"
                                   for f in _ORDER_FIELDS[scope]))
        raise FilterError(f"cannot order {scope} by {_label(field, key)} (order by {allowed})")
    return OrderKey(field, key, descending)
