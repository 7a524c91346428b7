"""The search filter language: its parser, and its queries against a Python oracle.

Property tests (hypothesis): any text either parses or raises ``FilterError``
(never anything else); a generated valid filter selects, on SQLite and on
PostgreSQL, exactly the rows a Python evaluation of the same conditions selects,
and keyset pages over any order cover every row once, in order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov.errors import EXIT_USAGE
from mlprov.registry import FilterError
from mlprov.registry._filter import (
    Comparison,
    Filter,
    OrderKey,
    SearchQuery,
    parse_filter,
    parse_order,
)
from mlprov.registry._sqlsearch import glob_pattern, lower_ascii
from mlprov.registry.interface import AliasRecord, MetadataStore, Stage, TagRecord, VersionRecord

# --------------------------------------------------------------------------- the parser


def test_the_issue_s_examples_parse():
    parsed = parse_filter("name LIKE 'ranker-%' AND tags.team = 'search' AND "
                          "metrics.`test/auc` > 0.85")
    assert parsed.clauses == (Comparison("name", None, "LIKE", "ranker-%"),
                              Comparison("tag", "team", "=", "search"),
                              Comparison("metric", "test/auc", ">", 0.85))


@pytest.mark.parametrize(("text", "expected"), [
    ("version IN (1, 2, '3')", Comparison("version", None, "IN", (1, 2, 3))),
    ("version_number >= 2", Comparison("version", None, ">=", 2)),
    ("current_stage = 'production'", Comparison("stage", None, "=", "Production")),
    ("stage IN ('staging', \"Archived\")", Comparison("stage", None, "IN",
                                                      ("Staging", "Archived"))),
    ("tags.\"my key\" != 'it''s'", Comparison("tag", "my key", "!=", "it's")),
    ("tags.`a``b` = ''", Comparison("tag", "a`b", "=", "")),
    ("metrics.auc <= -1e-3", Comparison("metric", "auc", "<=", -0.001)),
    ("creation_timestamp > 1700000000000",
     Comparison("created_at", None, ">", "2023-11-14T22:13:20.000000Z")),
    ("created_at < '2026-01-31T12:00:00+01:00'",
     Comparison("created_at", None, "<", "2026-01-31T11:00:00.000000Z")),
    ("digest = 'sha256:ab'", Comparison("root_digest", None, "=", "sha256:ab")),
    ("alias ILIKE 'PROD%'", Comparison("alias", None, "ILIKE", "PROD%")),
    ("NAME like 'a\\_%'", Comparison("name", None, "LIKE", "a\\_%")),
    ("  ", None),
])
def test_forms(text: str, expected: Comparison | None):
    parsed = parse_filter(text)
    assert parsed.clauses == ((expected,) if expected is not None else ())


@pytest.mark.parametrize(("text", "position", "words"), [
    ("name", 5, "expected an operator"),
    ("name =", 7, "expected a value"),
    ("name = 3", 8, "takes a quoted string"),
    ("nmae = 'x'", 1, "unknown field 'nmae'"),
    ("tags = 'x'", 1, "needs a key"),
    ("name = 'a' OR name = 'b'", 12, "OR is not supported"),
    ("(name = 'a')", 1, "expected a field"),
    ("metrics.auc > 'high'", 15, "compares numbers"),
    ("name ~ 'x'", 6, "unexpected character"),
    ("stage = 'prod'", 9, "unknown stage"),
    ("name = 'x", 8, "unterminated string"),
    ("version = -1", 11, "a version is a number"),
    ("version = 01", 11, "a version is a number"),
    ("alias != 'x'", 7, "does not take !="),
    ("name LIKE 'x\\'", 11, "lone \\"),
    ("metrics.auc > 1 name = 'x'", 17, "expected AND"),
    ("created_at > 'yesterday'", 14, "not a time"),
    ("name IN ('a' 'b')", 14, "expected , or )"),
    ("version < 12abc", 11, "bad number"),
    ("and = 'x'", 1, "keyword AND"),
])
def test_bad_filters_name_the_position(text: str, position: int, words: str):
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    message = str(caught.value)
    assert f"at position {position}:" in message and words in message, message
    assert "\n" not in message and caught.value.exit_code == EXIT_USAGE == 2
    assert "AND" in caught.value.diagnostics()


def test_model_filters_take_model_fields_only():
    assert parse_filter("stage = 'Production' AND tags.team = 'x'", scope="models").clauses
    for text in ("metrics.auc > 1", "version = 1", "identity = 'x'"):
        with pytest.raises(FilterError, match="versions"):
            parse_filter(text, scope="models")


def test_limits():
    with pytest.raises(FilterError, match="longer than"):
        parse_filter("name = '" + "x" * 5000 + "'")
    with pytest.raises(FilterError, match="more than 50 conditions"):
        parse_filter(" AND ".join(["version = 1"] * 51))
    with pytest.raises(FilterError, match="more than 100 values"):
        parse_filter("version IN (" + ", ".join(["1"] * 101) + ")")


def test_orders():
    assert parse_order(None) == (OrderKey("name"), OrderKey("version", descending=True))
    assert parse_order(None, name="m") == (OrderKey("version", descending=True),)
    assert parse_order(["metrics.`test/auc` DESC"], name="m") == (
        OrderKey("metric", "test/auc", True), OrderKey("version", descending=True))
    assert parse_order("created_at", scope="models") == (OrderKey("created_at"),
                                                         OrderKey("name"))
    for bad, words in ((["stage"], "cannot order"), (["version sideways"], "bad --order-by"),
                       (["name", "name DESC"], "named twice"),
                       (["version", "name", "created_at", "metrics.a"], "at most 3")):
        with pytest.raises(FilterError, match=re.escape(words)):
            parse_order(bad)
    with pytest.raises(FilterError, match="metrics filter versions"):
        parse_order(["metrics.auc"], scope="models")


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=80) | st.lists(st.sampled_from([
    "name", "tags", ".", "`k`", "'v'", "\"v\"", "=", "!=", "<", ">=", "LIKE", "ilike", "IN",
    "(", ")", ",", "AND", "or", "not", "1", "-2.5e3", "metrics", "version", "stage",
    "created_at", "'Staging'", "`", "'", " ", "\\"]), max_size=12).map(" ".join))
def test_any_text_parses_or_is_a_filter_error(text: str):
    for scope in ("versions", "models"):
        try:
            parsed = parse_filter(text, scope=scope)  # type: ignore[arg-type]
        except FilterError as exc:
            assert "\n" not in str(exc)
            continue
        assert isinstance(parsed, Filter)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.text(max_size=30), max_size=4))
def test_any_order_parses_or_is_a_filter_error(items: list[str]):
    try:
        keys = parse_order(items)
    except FilterError:
        return
    assert keys[-1].field == "version"


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(alphabet="ab%_\\*?[]É", max_size=8),
       value=st.text(alphabet="abAB%_\\*?[]Éé", max_size=8))
def test_glob_rewriting_matches_like_semantics(pattern: str, value: str):
    """SQLite runs LIKE as GLOB: the rewritten pattern means what the LIKE pattern means."""
    import sqlite3

    if pattern.endswith("\\") and (len(pattern) - len(pattern.rstrip("\\"))) % 2:
        return  # refused by the parser
    conn = sqlite3.connect(":memory:")
    got = conn.execute("SELECT ? GLOB ?", (value, glob_pattern(pattern))).fetchone()[0]
    assert bool(got) == _like(value, pattern, insensitive=False)


# --------------------------------------------------------------------------- the oracle


@dataclass
class Row:
    name: str
    version: int
    stage: str
    identity: str
    root_digest: str
    created_at: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)
    deleted: bool = False


def _like(value: str, pattern: str, *, insensitive: bool) -> bool:
    if insensitive:
        value, pattern = lower_ascii(value), lower_ascii(pattern)
    regex, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None


def _holds(value: Any, clause: Comparison) -> bool:
    if value is None:
        return False  # SQL: a comparison with NULL is not true
    op, wanted = clause.op, clause.value
    if op == "IN":
        assert isinstance(wanted, tuple)
        return value in wanted
    if op in ("LIKE", "ILIKE"):
        return _like(value, str(wanted), insensitive=op == "ILIKE")
    return {"=": value == wanted, "!=": value != wanted, "<": value < wanted,
            "<=": value <= wanted, ">": value > wanted, ">=": value >= wanted}[op]


def matches(row: Row, clauses: tuple[Comparison, ...]) -> bool:
    for clause in clauses:
        if clause.field == "tag":
            ok = _holds(row.tags.get(clause.key or ""), clause)
        elif clause.field == "metric":
            ok = _holds(row.metrics.get(clause.key or ""), clause)
        elif clause.field == "alias":
            ok = any(_holds(a, clause) for a in row.aliases)
        else:
            ok = _holds(getattr(row, clause.field), clause)
        if not ok:
            return False
    return True


NAMES = ["ranker-a", "ranker-b", "Ranker_c", "crédit", "credit-risk", "x%y"]
TAG_VALUES = ["search", "Search", "ads", "", "a_b", "100%", "é"]
STAGES = ["None", "Staging", "Production", "Archived"]
ALIASES = ["production", "canary", "champion"]


def sample_rows() -> list[Row]:
    rows = []
    for n, name in enumerate(NAMES):
        for version in range(1, 6):
            k = n * 5 + version
            rows.append(Row(
                name=name, version=version, stage=STAGES[k % 4],
                identity=f"mlid:sha256:{k % 3:064x}", root_digest=f"sha256:{k:064x}",
                created_at=f"2026-01-{1 + k % 28:02d}T00:00:{k % 60:02d}.000000Z",
                description=[None, "scores loans", "Ranker for SEARCH", "50% faster"][k % 4],
                tags={key: TAG_VALUES[(k + i) % len(TAG_VALUES)]
                      for i, key in enumerate(["team", "owner", "my key"]) if (k + i) % 3},
                metrics={key: round(0.5 + ((k * 7 + i) % 11) / 20, 2)
                         for i, key in enumerate(["auc", "test/auc"]) if (k + i) % 4},
                deleted=k % 9 == 0))
    for name in NAMES:  # an alias on the newest version in use of some models
        live = [r for r in rows if r.name == name and not r.deleted]
        for alias, row in zip(ALIASES, reversed(live[: len(NAMES) % 3 + 1]), strict=False):
            row.aliases.add(alias)
    return rows


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def store(metadata_stores: Callable[[], MetadataStore]
          ) -> Iterator[tuple[MetadataStore, list[Row]]]:
    """A metadata store (every implementation: tests/registry/conftest.py) holding the rows."""
    store = metadata_stores()
    store.create_schema()
    rows = sample_rows()
    with store.write() as tx:
        for row in rows:
            tx.ensure_model(row.name, "2026-01-01T00:00:00.000000Z")
            tx.insert_version(VersionRecord(
                name=row.name, version=row.version, identity=row.identity,
                root_digest=row.root_digest, files_digest=_digest(1), evidence_digest=_digest(2),
                registration=_digest(row.version), scan_digest=None, reproducible=True,
                stage=Stage(row.stage), stage_decision=None, created_at=row.created_at,
                created_seq=row.version, description=row.description))
            for key, value in row.tags.items():
                tx.set_tag(TagRecord(name=row.name, version=row.version, key=key, value=value,
                                     seq=1, updated_at=row.created_at))
            tx.set_version_metrics(row.name, row.version, row.metrics)
            for alias in row.aliases:
                tx.set_alias(AliasRecord(name=row.name, alias=alias, version=row.version,
                                         decision=_digest(3), seq=1, updated_at=row.created_at))
            if row.deleted:
                tx.delete_version(row.name, row.version, 99)
    yield store, rows
    store.close()


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _key(key: str) -> str:
    return "`" + key.replace("`", "``") + "`"


@st.composite
def clauses(draw: st.DrawFn) -> tuple[str, Comparison]:
    """One condition as text, and what it means."""
    field_name = draw(st.sampled_from(["name", "version", "stage", "alias", "identity",
                                       "root_digest", "created_at", "description", "tag",
                                       "metric"]))
    strings = st.sampled_from(NAMES + TAG_VALUES + ["scores loans", "SCORES%", "%a%", "_a%",
                                                    "%\\%%", "r%", "Ranker\\_%", "%É%",
                                                    "production", "prod%", "%"])
    if field_name in ("tag", "metric"):
        key = draw(st.sampled_from(["team", "owner", "my key", "auc", "test/auc", "none"]))
        label = f"tags.{_key(key)}" if field_name == "tag" else f"metrics.{_key(key)}"
    else:
        key, label = None, field_name
    if field_name in ("version", "metric", "created_at"):
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]
                                  + (["IN"] if field_name == "version" else [])))
    elif field_name == "stage":
        op = draw(st.sampled_from(["=", "!=", "IN"]))
    elif field_name == "alias":
        op = draw(st.sampled_from(["=", "LIKE", "ILIKE", "IN"]))
    else:
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN"]))

    def one() -> tuple[str, Any]:
        if field_name == "version":
            number = draw(st.integers(1, 6))
            return str(number), number
        if field_name == "metric":
            number = draw(st.sampled_from([0.5, 0.55, 0.75, 0.8, 1.0, 0.62]))
            return repr(number), number
        if field_name == "created_at":
            day = draw(st.integers(1, 28))
            moment = f"2026-01-{day:02d}T00:00:00.000000Z"
            return _text(moment), moment
        if field_name == "stage":
            stage = draw(st.sampled_from(STAGES))
            return _text(stage.lower()), stage
        if field_name == "alias":
            alias = draw(st.sampled_from([*ALIASES, "prod%", "C%"]))
            return _text(alias), alias
        text = draw(strings)
        if op not in ("LIKE", "ILIKE"):
            text = text.replace("\\", "")
        return _text(text), text

    if op == "IN":
        values = [one() for _ in range(draw(st.integers(1, 3)))]
        text = f"{label} IN ({', '.join(t for t, _v in values)})"
        return text, Comparison(field_name, key, op, tuple(v for _t, v in values))
    written, value = one()
    return f"{label} {op} {written}", Comparison(field_name, key, op, value)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conditions=st.lists(clauses(), min_size=1, max_size=3))
def test_generated_filters_select_what_the_oracle_selects(store, conditions):
    metadata, rows = store
    text = " AND ".join(t for t, _c in conditions)
    parsed = parse_filter(text)
    assert parsed.clauses == tuple(c for _t, c in conditions)
    query = SearchQuery(filter=parsed, order=parse_order(None), limit=1000)
    with metadata.read() as tx:
        got = {(r.name, r.version) for r in tx.search_versions(query)}
    wanted = {(r.name, r.version) for r in rows if not r.deleted and matches(r, parsed.clauses)}
    assert got == wanted, text


ORDERS = [["version"], ["created_at DESC"], ["metrics.auc DESC"], ["metrics.`test/auc`"],
          ["name DESC", "metrics.auc"], ["created_at", "metrics.auc DESC"], []]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.sampled_from(ORDERS), size=st.integers(1, 7),
       scoped=st.sampled_from([None, "ranker-a", "crédit"]),
       condition=st.sampled_from(["", "metrics.auc > 0.6", "tags.team != 'ads'"]))
def test_keyset_pages_cover_every_row_once_in_order(store, order, size, scoped, condition):
    metadata, rows = store
    keys = parse_order(order, name=scoped)
    parsed = parse_filter(condition)
    wanted = [r for r in rows if not r.deleted and matches(r, parsed.clauses)
              and (scoped is None or r.name == scoped)]
    wanted.sort(key=lambda r: _sort_key(r, keys))
    seen: list[tuple[str, int]] = []
    after = None
    with metadata.read() as tx:
        while True:
            page = tx.search_versions(SearchQuery(filter=parsed, order=keys, limit=size,
                                                  after=after, name=scoped))
            seen.extend((r.name, r.version) for r in page)
            if len(page) < size:
                break
            last = next(r for r in rows if (r.name, r.version) == seen[-1])
            after = tuple(_value(last, k) for k in keys)
    assert seen == [(r.name, r.version) for r in wanted]


def _value(row: Row, key: OrderKey) -> Any:
    if key.field == "metric":
        return row.metrics.get(key.key or "")
    return getattr(row, key.field)


class _Desc:
    """Inverts the order of a value (for descending keys of a Python sort)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def _sort_key(row: Row, keys: tuple[OrderKey, ...]) -> tuple[Any, ...]:
    out: list[Any] = []
    for key in keys:
        value = _value(row, key)
        if key.field == "metric":
            out.append(value is None)  # missing metrics last, either direction
            value = 0.0 if value is None else value
        if isinstance(value, str):
            value = value.encode()  # byte order, as both databases sort
        out.append(_Desc(value) if key.descending else value)
    return tuple(out)


def test_ilike_folds_ascii_letters_only_on_every_backend(store):
    metadata, _rows = store
    with metadata.read() as tx:
        def names(text: str) -> set[str]:
            query = SearchQuery(filter=parse_filter(text), order=parse_order(None), limit=1000)
            return {r.name for r in tx.search_versions(query)}
        assert names("name ILIKE 'RANKER%'") == {"ranker-a", "ranker-b", "Ranker_c"}
        assert names("name LIKE 'ranker%'") == {"ranker-a", "ranker-b"}  # case-sensitive
        assert names("name ILIKE 'CRÉDIT'") == set()  # É is not folded (byte order)
        assert names("name ILIKE 'CRéDIT'") == {"crédit"}
        assert names("name LIKE 'x\\%y'") == {"x%y"}
        assert names("name LIKE 'x_y'") == {"x%y"}
        assert names("name LIKE 'Ranker\\_%'") == {"Ranker_c"}
    assert math.isclose(parse_filter("metrics.a = 1").clauses[0].value, 1.0)  # type: ignore
