r"""Search queries in SQLAlchemy Core: a parsed filter becomes bound parameters, never SQL text.

:mod:`._filter` parses ``--filter`` and ``--order-by``; this module turns a
:class:`~._filter.SearchQuery` into one ``SELECT`` over the tables
:mod:`._sql` defines (handed in as :class:`CatalogTables`, so that module
imports this one and not the reverse). Values only ever travel as bound
parameters.

The same answer on SQLite and PostgreSQL:

- text compares by bytes (PostgreSQL columns are ``COLLATE "C"``);
- ``LIKE`` is case-sensitive on both: on PostgreSQL it is ``LIKE ... ESCAPE '\'``,
  on SQLite (whose ``LIKE`` ignores ASCII case) the pattern is rewritten into
  ``GLOB`` syntax; ``ILIKE`` matches ``lower(column)`` against the pattern with its
  ASCII letters lowered, and both databases' ``lower()`` fold ASCII only here;
- numbers are double precision on both; times are the registry's ISO 8601 text;
- sort orders are explicit: a metric's missing value sorts last in either
  direction (a flag column first), never by the database's NULL default.

Pages are keyset pages: the query continues strictly after the previous page's
last sort key (``SearchQuery.after``), which the sort order makes unique by
ending with the model name (and the version number), so a page never repeats
or skips a row another writer did not add or remove.

Each condition on tags, metrics or aliases is an ``IN`` over the
``(key, value)``-indexed table, so the database can start from the few
matching rows instead of every version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
)

from mlprov.registry._filter import Comparison, OrderKey, SearchQuery

__all__ = ["CatalogTables", "glob_pattern", "lower_ascii", "model_search", "version_search"]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class CatalogTables:
    """The tables a search reads (defined in :mod:`._sql`)."""

    models: Table
    versions: Table
    aliases: Table
    model_tags: Table
    version_tags: Table
    version_metrics: Table


def lower_ascii(text: str) -> str:
    """``text`` with ASCII letters lowered and nothing else changed (as SQL ``lower()`` here)."""
    return text.translate(_ASCII_LOWER)


def glob_pattern(pattern: str) -> str:
    r"""A LIKE pattern (``%``, ``_``, ``\`` escaping the next character) in SQLite GLOB syntax."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(_glob_literal(pattern[i + 1]))
            i += 2
            continue
        out.append("*" if char == "%" else "?" if char == "_" else _glob_literal(char))
        i += 1
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "*?[" else char


def _like(column: Any, pattern: str, *, insensitive: bool, dialect: str) -> ColumnElement[bool]:
    if insensitive:
        column, pattern = func.lower(column), lower_ascii(pattern)
    if dialect == "sqlite":
        result: ColumnElement[bool] = column.op("GLOB", is_comparison=True)(
            glob_pattern(pattern))
        return result
    matched: ColumnElement[bool] = column.like(pattern, escape="\\")
    return matched


def _compare(column: Any, clause: Comparison, dialect: str) -> ColumnElement[bool]:
    op, value = clause.op, clause.value
    if op == "IN":
        assert isinstance(value, tuple)
        result: ColumnElement[bool] = column.in_(list(value))
        return result
    if op in ("LIKE", "ILIKE"):
        assert isinstance(value, str)
        return _like(column, value, insensitive=op == "ILIKE", dialect=dialect)
    compared: ColumnElement[bool] = {
        "=": lambda: column == value, "!=": lambda: column != value,
        "<": lambda: column < value, "<=": lambda: column <= value,
        ">": lambda: column > value, ">=": lambda: column >= value,
    }[op]()
    return compared


def _version_condition(clause: Comparison, t: CatalogTables, dialect: str
                       ) -> ColumnElement[bool]:
    v, m = t.versions, t.models
    own = tuple_(v.c.model_id, v.c.version)
    field = clause.field
    if field == "name":
        return _compare(m.c.name, clause, dialect)
    if field in ("version", "stage", "identity", "root_digest", "created_at", "description"):
        return _compare(v.c[field], clause, dialect)
    if field == "alias":
        a = t.aliases
        return own.in_(select(a.c.model_id, a.c.version).where(_compare(a.c.alias, clause,
                                                                         dialect)))
    if field == "tag":
        vt = t.version_tags
        return own.in_(select(vt.c.model_id, vt.c.version).where(
            vt.c.key == clause.key, _compare(vt.c.value, clause, dialect)))
    if field == "metric":
        mt = t.version_metrics
        return own.in_(select(mt.c.model_id, mt.c.version).where(
            mt.c.key == clause.key, _compare(mt.c.value, clause, dialect)))
    raise AssertionError(f"unknown field {field}")  # _filter admits no other


def _model_condition(clause: Comparison, t: CatalogTables, dialect: str) -> ColumnElement[bool]:
    m = t.models
    field = clause.field
    if field in ("name", "created_at", "description"):
        return _compare(m.c[field], clause, dialect)
    if field == "alias":
        a = t.aliases
        return m.c.id.in_(select(a.c.model_id).where(_compare(a.c.alias, clause, dialect)))
    if field == "stage":
        v = t.versions
        return m.c.id.in_(select(v.c.model_id).where(
            v.c.deleted_seq.is_(None), _compare(v.c.stage, clause, dialect)))
    if field == "tag":
        mt = t.model_tags
        return m.c.id.in_(select(mt.c.model_id).where(
            mt.c.key == clause.key, _compare(mt.c.value, clause, dialect)))
    raise AssertionError(f"unknown model field {field}")  # _filter admits no other


def _after(keys: Sequence[tuple[Any, bool, Any]]) -> ColumnElement[bool]:
    """Rows strictly after ``(value, ...)`` in the order ``keys`` give (expr, descending, value).

    The first key's bound is repeated as a conjunct of its own (``k1 >= v1``), which
    the alternatives imply, so that the database seeks on the first key's index
    instead of filtering every row before the position.
    """
    if not keys:
        return false()
    alternatives = []
    for i, (expr, descending, value) in enumerate(keys):
        equal = [e == v for e, _d, v in keys[:i]]
        alternatives.append(and_(*equal, expr < value if descending else expr > value))
    first, descending, value = keys[0]
    return and_(first <= value if descending else first >= value, or_(*alternatives))


def _order(stmt: Select[Any], keys: Sequence[OrderKey], after: Sequence[Any] | None,
           columns: dict[str, Any], metric: Any) -> Select[Any]:
    """Apply ``keys`` (and the keyset position ``after``) to ``stmt``.

    ``metric(key)`` joins a metric and returns its value column.
    """
    order: list[Any] = []
    position: list[tuple[Any, bool, Any]] = []
    for index, key in enumerate(keys):
        value = after[index] if after is not None else None
        if key.field == "metric":
            column = metric(key.key)
            missing = case((column.is_(None), literal(1)), else_=literal(0))
            order.append(missing.asc())
            order.append(column.desc() if key.descending else column.asc())
            if after is not None:
                position.append((missing, False, 1 if value is None else 0))
                if value is not None:
                    position.append((column, key.descending, value))
            continue
        column = columns[key.field]
        order.append(column.desc() if key.descending else column.asc())
        if after is not None:
            position.append((column, key.descending, value))
    if after is not None:
        stmt = stmt.where(_after(position))
    return stmt.order_by(*order)


def version_search(query: SearchQuery, t: CatalogTables, dialect: str,
                   model_id: int | None) -> Select[Any]:
    """The page of versions in use that ``query`` asks for (``model_id``: of one model)."""
    v, m = t.versions, t.models
    joined = v.join(m, m.c.id == v.c.model_id)
    stmt = select(m.c.name, v).where(v.c.deleted_seq.is_(None))
    if model_id is not None:
        stmt = stmt.where(v.c.model_id == model_id)
    for clause in query.filter.clauses:
        stmt = stmt.where(_version_condition(clause, t, dialect))
    keys = [k for k in query.order if not (model_id is not None and k.field == "name")]
    after = None
    if query.after is not None:
        after = [value for key, value in zip(query.order, query.after, strict=True)
                 if not (model_id is not None and key.field == "name")]

    joins = iter(range(len(keys)))

    def metric(key: str | None) -> Any:
        nonlocal joined
        mt = t.version_metrics.alias(f"sort_metric_{next(joins)}")
        joined = joined.outerjoin(mt, and_(mt.c.model_id == v.c.model_id,
                                           mt.c.version == v.c.version, mt.c.key == key))
        return mt.c.value

    columns = {"name": m.c.name, "version": v.c.version, "created_at": v.c.created_at}
    stmt = _order(stmt, keys, after, columns, metric)
    return stmt.select_from(joined).limit(query.limit)


def model_search(query: SearchQuery, t: CatalogTables, dialect: str) -> Select[Any]:
    """The page of models in use that ``query`` asks for."""
    m = t.models
    stmt = select(m).where(m.c.deleted_seq.is_(None))
    for clause in query.filter.clauses:
        stmt = stmt.where(_model_condition(clause, t, dialect))
    columns = {"name": m.c.name, "created_at": m.c.created_at}

    def no_metric(_key: str | None) -> Any:
        raise AssertionError("models are not ordered by metrics")  # _filter refuses it

    stmt = _order(stmt, query.order, query.after, columns, no_metric)
    return stmt.limit(query.limit)
