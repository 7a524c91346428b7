"""Searching models and versions: filters, sort orders and page tokens.

``mlprov models list`` and ``mlprov versions list [NAME]`` take MLflow's filter
syntax (:mod:`._filter`), which the store turns into one indexed query with
bound parameters (:mod:`._sqlsearch`). Pages are keyset pages: the token names
the last row's sort key, so a page is found by an index seek, not by skipping
rows, and costs the same on page 1 and page 1000.

A page token is ``base64url(JSON) "." base64url(MAC)``: the JSON holds the
format version, a fingerprint of the query (scope, model, filter, order) and the
last sort key; the MAC (HMAC-SHA256, keyed by the registry's id) makes it this
registry's. A token that was changed, comes from another registry or from
another query (the filter, order or model differ) is refused (a usage error,
exit 2); one from the same query always continues where its page ended.

Like :meth:`Registry.resolve`, a search is a lookup: it reads rows, which
``mlprov audit verify`` checks against the signed log, and hands out nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlprov.registry._catalog import ModelInfo, Page, VersionInfo, frozen_mapping, need_model
from mlprov.registry._filter import (
    FilterError,
    OrderKey,
    Scope,
    SearchQuery,
    parse_filter,
    parse_order,
)
from mlprov.registry._uri import check_name
from mlprov.registry.interface import ModelRecord, VersionRecord

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "PageTokenError", "search_models", "search_versions"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_TOKEN_FORMAT = 1
_MAX_TOKEN = 4096


class PageTokenError(FilterError):
    """A page token this registry did not issue for this query (a usage error, exit 2)."""

    hint = ("pass the nextPageToken of the previous page of the same command (same filter, "
            "order and model), or start again without --page-token")


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise FilterError(f"the page size must be 1 to {MAX_LIMIT}, not {limit!r}")


def _fingerprint(scope: Scope, name: str | None, query: SearchQuery) -> str:
    document = {"scope": scope, "name": name, "filter": query.filter.fingerprint(),
                "order": [[k.field, k.key, k.descending] for k in query.order]}
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def _mac(registry: RegistryContext, data: bytes) -> bytes:
    key = b"mlprov page token\x00" + registry.settings.registry_id.encode()
    return hmac.new(key, data, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _issue(registry: RegistryContext, fingerprint: str, key: list[Any]) -> str:
    data = json.dumps({"v": _TOKEN_FORMAT, "q": fingerprint, "k": key},
                      separators=(",", ":"), allow_nan=False).encode()
    return f"{_b64(data)}.{_b64(_mac(registry, data))}"


def _position(registry: RegistryContext, token: str, fingerprint: str,
              order: Sequence[OrderKey]) -> tuple[Any, ...]:
    """The sort key a page token continues after.

    Raises:
        PageTokenError: not a token of this registry, or of another query.
    """
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise PageTokenError("the page token is malformed")
    body, _, mac = token.partition(".")
    try:
        data, given = _unb64(body), _unb64(mac)
    except (binascii.Error, ValueError) as exc:
        raise PageTokenError("the page token is malformed") from exc
    if not hmac.compare_digest(given, _mac(registry, data)):
        raise PageTokenError("the page token was not issued by this registry (or was changed)")
    try:
        document = json.loads(data)
    except ValueError as exc:  # pragma: no cover - a token with a valid MAC is ours
        raise PageTokenError("the page token is malformed") from exc
    if not isinstance(document, dict) or document.get("v") != _TOKEN_FORMAT:
        raise PageTokenError("the page token is of another format (made by another mlprov)")
    if document.get("q") != fingerprint:
        raise PageTokenError("the page token belongs to another query (its filter, order or "
                             "model differ)")
    key = document.get("k")
    if not isinstance(key, list) or len(key) != len(order) or not all(
            _key_type_ok(k, value) for k, value in zip(order, key, strict=True)):
        raise PageTokenError("the page token is malformed")  # pragma: no cover - MAC'd
    return tuple(key)


def _key_type_ok(key: OrderKey, value: Any) -> bool:
    if key.field == "version":
        return isinstance(value, int) and not isinstance(value, bool)
    if key.field == "metric":
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    return isinstance(value, str)


def _prepare(registry: RegistryContext, scope: Scope, name: str | None, filter_text: str | None,
             order_by: Sequence[str] | str | None, limit: int, page_token: str | None
             ) -> tuple[SearchQuery, str]:
    _check_limit(limit)
    parsed = parse_filter(filter_text, scope=scope)
    order = parse_order(order_by, scope=scope, name=name)
    query = SearchQuery(filter=parsed, order=order, limit=limit + 1, name=name)
    fingerprint = _fingerprint(scope, name, query)
    if page_token is not None:
        after = _position(registry, page_token, fingerprint, order)
        query = SearchQuery(filter=parsed, order=order, limit=limit + 1, after=after, name=name)
    return query, fingerprint


def search_models(registry: RegistryContext, filter_text: str | None = None, *,
                  order_by: Sequence[str] | str | None = None, limit: int = DEFAULT_LIMIT,
                  page_token: str | None = None) -> Page[ModelInfo]:
    """One page of models in use matching ``filter_text`` (see :meth:`Registry.search_models`)."""
    query, fingerprint = _prepare(registry, "models", None, filter_text, order_by, limit,
                                  page_token)
    with registry.metadata.read() as tx:
        records = tx.search_models(query)
        more = len(records) > limit
        records = records[:limit]
        names = [r.name for r in records]
        tags = tx.model_tags(names)
        aliases = tx.aliases_of(names)
    items = tuple(ModelInfo(
        name=r.name, created_at=r.created_at, latest_version=r.latest_version,
        description=r.description, tags=frozen_mapping(tags.get(r.name)),
        aliases=frozen_mapping({a.alias: a.version for a in aliases.get(r.name, [])}))
        for r in records)
    token = _issue(registry, fingerprint, [_model_key(k, records[-1]) for k in query.order]) \
        if more else None
    return Page(items=items, next_page_token=token)


def _model_key(key: OrderKey, record: ModelRecord) -> Any:
    return record.name if key.field == "name" else record.created_at


def search_versions(registry: RegistryContext, name: str | None = None,
                    filter_text: str | None = None, *,
                    order_by: Sequence[str] | str | None = None, limit: int = DEFAULT_LIMIT,
                    page_token: str | None = None) -> Page[VersionInfo]:
    """One page of versions in use (of ``name``, or of every model) matching ``filter_text``."""
    if name is not None:
        check_name(name)
    query, fingerprint = _prepare(registry, "versions", name, filter_text, order_by, limit,
                                  page_token)
    with registry.metadata.read() as tx:
        if name is not None:
            need_model(tx, name)  # unknown, renamed (the error names the new name), deleted
        records = tx.search_versions(query)
        more = len(records) > limit
        records = records[:limit]
        keys = [(r.name, r.version) for r in records]
        tags = tx.version_tags(keys)
        metrics = tx.version_metrics(keys)
        aliases = tx.aliases_of(sorted({r.name for r in records}))
    items = tuple(VersionInfo.of(
        r, tags=tags.get((r.name, r.version)), metrics=metrics.get((r.name, r.version)),
        aliases=tuple(a.alias for a in aliases.get(r.name, []) if a.version == r.version))
        for r in records)
    token = None
    if more:
        last = records[-1]
        token = _issue(registry, fingerprint, [
            _version_key(k, last, metrics.get((last.name, last.version), {}))
            for k in query.order])
    return Page(items=items, next_page_token=token)


def _version_key(key: OrderKey, record: VersionRecord, metrics: dict[str, float]) -> Any:
    if key.field == "metric":
        return metrics.get(key.key or "")
    return {"name": record.name, "version": record.version,
            "created_at": record.created_at}[key.field]
