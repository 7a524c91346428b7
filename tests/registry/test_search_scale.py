"""Searches stay index lookups as the registry grows (no wall-clock asserts).

3,000 versions in bulk on SQLite: the query plan of each kind of search uses
an index and never sorts the table, a page costs the same few statements
whatever its size, and paging through everything with a filter returns what
Python computes from the same rows. The same pages on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, insert

from mlprov.registry._filter import SearchQuery, parse_filter, parse_order
from mlprov.registry._sql import (
    _CATALOG,
    SqlMetadataStore,
    model_tags,
    version_metrics,
    version_tags,
)
from mlprov.registry._sqlsearch import model_search, version_search
from mlprov.registry.interface import Stage, VersionRecord

MODELS, PER_MODEL = 30, 100


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def bulk(metadata_url: str) -> Iterator[SqlMetadataStore]:
    store = SqlMetadataStore(metadata_url)
    store.create_schema()
    with store.write() as tx:
        for m in range(MODELS):
            tx.ensure_model(f"model-{m:02d}", "2026-01-01T00:00:00.000000Z")
        tx.insert_versions([VersionRecord(
            name=f"model-{m:02d}", version=v, identity=_digest(m),
            root_digest=_digest(m * 1000 + v),
            files_digest=_digest(1), evidence_digest=_digest(2), registration=_digest(3),
            scan_digest=None, reproducible=True, stage=Stage.NONE, stage_decision=None,
            created_at=f"2026-02-{1 + v % 28:02d}T00:00:{m:02d}.000000Z", created_seq=v)
            for m in range(MODELS) for v in range(1, PER_MODEL + 1)])
    with store.engine.begin() as conn:
        ids = dict(conn.exec_driver_sql("SELECT name, id FROM models").all())
        conn.execute(insert(version_metrics), [
            {"model_id": ids[f"model-{m:02d}"], "version": v, "key": "auc",
             "value": ((m * 31 + v * 17) % 100) / 100}
            for m in range(MODELS) for v in range(1, PER_MODEL + 1)])
        conn.execute(insert(version_tags), [
            {"model_id": ids[f"model-{m:02d}"], "version": v, "key": "team",
             "value": "search" if v % 10 == 0 else "ads", "seq": 1, "updated_at": "t"}
            for m in range(MODELS) for v in range(1, PER_MODEL + 1)])
        conn.execute(insert(model_tags), [
            {"model_id": ids[f"model-{m:02d}"], "key": "team", "value": f"t{m % 3}", "seq": 1,
             "updated_at": "t"} for m in range(MODELS)])
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    yield store
    store.close()


def _plan(store: SqlMetadataStore, stmt: Any) -> str:
    compiled = stmt.compile(dialect=store.engine.dialect)
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).all()
    return "\n".join(str(r[-1]) for r in rows)


def _query(text: str | None, order: list[str] | None = None, *, name: str | None = None,
           after: tuple[Any, ...] | None = None, scope: str = "versions") -> SearchQuery:
    return SearchQuery(filter=parse_filter(text, scope=scope),  # type: ignore[arg-type]
                       order=parse_order(order, scope=scope, name=name),  # type: ignore[arg-type]
                       limit=101, after=after, name=name)


@pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
def test_every_kind_of_search_is_an_index_lookup(bulk):
    def versions(query: SearchQuery, model_id: int | None = None) -> str:
        return _plan(bulk, version_search(query, _CATALOG, "sqlite", model_id))

    # a page of one model's versions, newest first: a seek on the primary key, no sort
    one_model = versions(_query(None, name="model-07"), model_id=8)
    assert "SEARCH versions USING INDEX sqlite_autoindex_versions_1 (model_id=?)" in one_model
    page_two = versions(_query(None, name="model-07", after=(50,)), model_id=8)
    assert "(model_id=? AND version<?)" in page_two
    # every model's: models in name order (their unique index), each model's versions seeked
    everything = versions(_query(None, after=("model-03", 50)))
    assert "SEARCH models USING COVERING INDEX sqlite_autoindex_models_1 (name>?)" in everything
    assert "SEARCH versions USING INDEX sqlite_autoindex_versions_1 (model_id=?)" in everything
    models = _plan(bulk, model_search(_query(None, scope="models", after=("model-03",)),
                                      _CATALOG, "sqlite"))
    assert "SEARCH models USING INDEX sqlite_autoindex_models_1 (name>?)" in models
    newest = versions(_query(None, ["created_at DESC"], after=("2026-02-03", "model-03", 5)))
    assert "SEARCH versions USING INDEX ix_versions_created (created_at<?)" in newest
    for plan in (one_model, page_two, everything, models):
        assert "TEMP B-TREE" not in plan and "SCAN versions" not in plan, plan
    # a condition starts from its (key, value) index: only matching rows are read (and sorted)
    for condition, index in (
            ("metrics.auc > 0.95", "ix_version_metrics_value (key=? AND value>?)"),
            ("tags.team = 'search'", "ix_version_tags_value (key=? AND value=?)"),
            ("alias = 'x'", "ix_aliases_alias (alias=?)")):
        plan = versions(_query(condition))
        assert index in plan and "SCAN versions" not in plan, plan
    by_tag = _plan(bulk, model_search(_query("tags.team = 't1'", scope="models"), _CATALOG,
                                      "sqlite"))
    assert "ix_model_tags_value (key=? AND value=?)" in by_tag and "SCAN models" not in by_tag
    by_name = _plan(bulk, model_search(_query("name = 'model-03'", scope="models"), _CATALOG,
                                       "sqlite"))
    assert "SEARCH models USING INDEX sqlite_autoindex_models_1 (name=?)" in by_name


def test_a_page_is_a_few_statements_and_pages_cover_everything(bulk):
    statements: list[str] = []
    event.listen(bulk.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    counts = []
    for size in (10, 101):
        statements.clear()
        with bulk.read() as tx:  # what a page of Registry.search_versions reads
            query = _query("metrics.auc >= 0.5 AND tags.team = 'ads'", ["metrics.auc DESC"])
            page = tx.search_versions(SearchQuery(filter=query.filter, order=query.order,
                                                  limit=size))
            keys = [(r.name, r.version) for r in page]
            tx.version_tags(keys)
            tx.version_metrics(keys)
            tx.aliases_of(sorted({name for name, _v in keys}))
        assert len(page) == size
        counts.append(len([s for s in statements if s.lstrip().upper().startswith("SELECT")]))
    assert counts[0] == counts[1] <= 7  # the same few statements, whatever the page size

    expected = sorted(
        ((m, v) for m in range(MODELS) for v in range(1, PER_MODEL + 1)
         if ((m * 31 + v * 17) % 100) / 100 >= 0.5 and v % 10),
        key=lambda mv: (-((mv[0] * 31 + mv[1] * 17) % 100), f"model-{mv[0]:02d}".encode(),
                        -mv[1]))
    seen: list[tuple[str, int]] = []
    after = None
    with bulk.read() as tx:
        while True:
            query = _query("metrics.auc >= 0.5 AND tags.team = 'ads'", ["metrics.auc DESC"],
                           after=after)
            rows = tx.search_versions(SearchQuery(filter=query.filter, order=query.order,
                                                  limit=100, after=after))
            seen.extend((r.name, r.version) for r in rows)
            if len(rows) < 100:
                break
            last = rows[-1]
            metric = tx.version_metrics([(last.name, last.version)])[(last.name, last.version)]
            after = (metric["auc"], last.name, last.version)
    assert seen == [(f"model-{m:02d}", v) for m, v in expected]
