"""``/api/v1/store/...`` and ``/api/v1/blobs/...``: the registry's rows and blobs, as stored.

These are what a client verifies with (:mod:`._remote_store`): the same rows
and content-addressed blobs the registry's own verification reads, handed out
unchanged so the client runs that verification itself against the registry
public key it pinned. The server vouches for none of it.

Access: rows addressed by a model name need ``read`` on that name; lists of
models, events and lineage look-ups are filtered to readable names. The audit
log, decisions, checkpoints, settings and blobs (by digest) need ``read`` on
some name: a client verifying a version needs the whole hash chain after its
decision, and blobs are named only by their content digest (docs/server.md,
"What read rules hide").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlprov._internal.names import check_alias, check_name, parse_version
from mlprov.errors import InputError
from mlprov.registry.interface import ReadTransaction, Stage, check_digest
from mlprov.server._endpoint import Call, Endpoint, json_response
from mlprov.server._wire import encode_record

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["HIDDEN_STATE", "store_endpoints"]

#: Registry state keys a client may not read: where the blobs live (an S3 bucket), the
#: stored public key (clients pin theirs), gc bookkeeping. Everything else is what
#: verification reads (the id, the signed head, the settings it names, settings later
#: versions add).
HIDDEN_STATE = frozenset({"blobs", "public_key", "gc_epoch"})
_STATE_KEY = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
_MAX_LIMIT = 5000
_INLINE_BLOB = 4 * 1024 * 1024


def _int(call: Call, name: str, default: int | None = None, *, low: int = 0,
         high: int = 2**62) -> int | None:
    text = call.query(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise InputError(f"query parameter {name!r} is not a number: {text[:30]!r}")
    value = int(text)
    if not low <= value <= high:
        raise InputError(f"query parameter {name!r} is out of range")
    return value


def _bool(call: Call, name: str) -> bool | None:
    text = call.query(name)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise InputError(f"query parameter {name!r} is true or false")
    return text == "true"


def _readable(call: Call, name: str) -> str:
    check_name(name)
    call.access.require(call.access.may_read(name), f"read {name}", action="read", name=name)
    return name


def _any_read(call: Call) -> None:
    call.access.require(call.access.may_read_any(), "read the registry", action="read")


async def _tx(call: Call, fn: Callable[[ReadTransaction], Any]) -> Response:
    state = call.state

    def work() -> Any:
        with state.registry().metadata.read() as tx:
            return fn(tx)

    return json_response(await state.run(work))


def _one(record: Any) -> dict[str, Any]:
    return {"record": None if record is None else encode_record(record)}


def _many(records: list[Any]) -> dict[str, Any]:
    return {"records": [encode_record(r) for r in records]}


# ---------------------------------------------------------------------- handlers


async def get_state(call: Call) -> Response:
    """A registry state value (settings digests, the signed head, the registry id)."""
    _any_read(call)
    key = call.param("key")
    if not _STATE_KEY.match(key) or key in HIDDEN_STATE:
        raise InputError(f"state key {key[:40]!r} is not readable")
    return await _tx(call, lambda tx: {"value": tx.get_state(key)})


async def list_models(call: Call) -> Response:
    """Every model the principal may read."""
    _any_read(call)
    return await _tx(call, lambda tx: _many([m for m in tx.list_models()
                                             if call.access.may_read(m.name)]))


async def get_model(call: Call) -> Response:
    """One model (``record`` null when there is none)."""
    name = _readable(call, call.param("name"))
    return await _tx(call, lambda tx: _one(tx.get_model(name)))


async def list_versions(call: Call) -> Response:
    """A model's versions: by stage, limit and order, or those with an identity."""
    name = _readable(call, call.param("name"))
    identity = call.query("identity")
    if identity is not None:
        if len(identity) > 200 or not identity.isprintable():
            raise InputError("invalid identity")
        return await _tx(call, lambda tx: _many(tx.find_versions(name, identity)))
    stage_text = call.query("stage")
    try:
        stage = Stage(stage_text) if stage_text is not None else None
    except ValueError:
        raise InputError(f"unknown stage {str(stage_text)[:30]!r}") from None
    limit = _int(call, "limit", None, low=1, high=10**9)
    descending = bool(_bool(call, "descending"))
    return await _tx(call, lambda tx: _many(tx.list_versions(name, stage=stage, limit=limit,
                                                             descending=descending)))


async def get_version(call: Call) -> Response:
    """One version row."""
    name = _readable(call, call.param("name"))
    version = parse_version(call.param("version"))
    return await _tx(call, lambda tx: _one(tx.get_version(name, version)))


async def list_reviews(call: Call) -> Response:
    """The reviews attached to a version."""
    name = _readable(call, call.param("name"))
    version = parse_version(call.param("version"))
    return await _tx(call, lambda tx: _many(tx.list_reviews(name, version)))


async def count_versions(call: Call) -> Response:
    """How many versions of a model are in each stage."""
    name = _readable(call, call.param("name"))
    return await _tx(call, lambda tx: {"counts": {s.value: n for s, n in
                                                  tx.count_versions(name).items()}})


async def list_aliases(call: Call) -> Response:
    """A model's aliases."""
    name = _readable(call, call.param("name"))
    return await _tx(call, lambda tx: _many(tx.list_aliases(name)))


async def get_alias(call: Call) -> Response:
    """One alias."""
    name = _readable(call, call.param("name"))
    alias = check_alias(call.param("alias"))
    return await _tx(call, lambda tx: _one(tx.get_alias(name, alias)))


async def find_by_root(call: Call) -> Response:
    """Versions (of readable names) whose root digest is the given one: lineage look-ups."""
    _any_read(call)
    digest = check_digest(call.param("digest"))
    limit = _int(call, "limit", 16, low=1, high=256)
    assert limit is not None
    return await _tx(call, lambda tx: _many([r for r in tx.find_by_root(digest, limit=limit)
                                             if call.access.may_read(r.name)]))


async def audit_entries(call: Call) -> Response:
    """Audit entries ``since < seq <= until``, filtered as the store filters them."""
    _any_read(call)
    since = _int(call, "since", 0)
    until = _int(call, "until")
    limit = _int(call, "limit", _MAX_LIMIT, low=1, high=_MAX_LIMIT)
    name = call.query("name")
    if name is not None:
        check_name(name)
    target = call.query("target")
    if target is not None and (len(target) > 250 or not target.isprintable()):
        raise InputError("invalid target")
    accepted = _bool(call, "accepted")
    descending = bool(_bool(call, "descending"))
    assert since is not None
    return await _tx(call, lambda tx: _many(tx.audit_entries(
        since=since, until=until, limit=limit, name=name, target=target, accepted=accepted,
        descending=descending)))


async def head(call: Call) -> Response:
    """The signed head and the last audit entry, read in one transaction (one snapshot)."""
    _any_read(call)
    return await _tx(call, lambda tx: {"head": tx.get_state("head"),
                                       "record": _one(tx.audit_head())["record"]})


async def audit_head(call: Call) -> Response:
    """The last audit entry."""
    _any_read(call)
    return await _tx(call, lambda tx: _one(tx.audit_head()))


async def audit_entry(call: Call) -> Response:
    """One audit entry."""
    _any_read(call)
    seq = parse_version(call.param("seq"))
    return await _tx(call, lambda tx: _one(tx.audit_entry(seq)))


async def get_decision(call: Call) -> Response:
    """A signed decision's bytes (base64; ``value`` null when not stored)."""
    import base64

    _any_read(call)
    digest = check_digest(call.param("digest"))

    def read(tx: ReadTransaction) -> dict[str, Any]:
        data = tx.get_decision(digest)
        return {"value": None if data is None else base64.b64encode(data).decode("ascii")}

    return await _tx(call, read)


async def checkpoints(call: Call) -> Response:
    """Every signed checkpoint."""
    _any_read(call)
    return await _tx(call, lambda tx: _many(tx.checkpoints()))


def _event_readable(call: Call, record: Any) -> bool:
    import json

    try:
        name = json.loads(record.payload).get("name")
    except (ValueError, AttributeError):
        return call.access.admin
    return name is None or (isinstance(name, str) and call.access.may_read(name))


async def events(call: Call) -> Response:
    """Events after ``since`` (of readable names)."""
    _any_read(call)
    since = _int(call, "since", 0)
    limit = _int(call, "limit", _MAX_LIMIT, low=1, high=_MAX_LIMIT)
    assert since is not None
    return await _tx(call, lambda tx: _many([e for e in tx.events(since=since, limit=limit)
                                             if _event_readable(call, e)]))


async def get_event(call: Call) -> Response:
    """One event."""
    _any_read(call)
    event_id = parse_version(call.param("id"))

    def read(tx: ReadTransaction) -> dict[str, Any]:
        record = tx.get_event(event_id)
        return _one(record if record is not None and _event_readable(call, record) else None)

    return await _tx(call, read)


async def deliveries(call: Call) -> Response:
    """Hook deliveries (of one event, or all): admin only (they name hooks and errors)."""
    call.access.require(call.access.admin, "read hook deliveries", action="admin")
    event_id = _int(call, "event", None, low=1)
    return await _tx(call, lambda tx: _many(tx.deliveries(event_id=event_id)))


async def list_deployments(call: Call) -> Response:
    """Deployment versions (of one name, or of every readable name)."""
    _any_read(call)
    name = call.query("name")
    if name is not None:
        _readable(call, name)
    return await _tx(call, lambda tx: _many([d for d in tx.list_deployments(name)
                                             if call.access.may_read(d.name)]))


async def get_deployment(call: Call) -> Response:
    """One deployment version."""
    name = _readable(call, call.param("name"))
    version = parse_version(call.param("version"))
    return await _tx(call, lambda tx: _one(tx.get_deployment(name, version)))


async def all_versions(call: Call) -> Response:
    """Every version of every model, a page at a time (audit replay needs them all)."""
    call.access.require(call.access.may_read("*") or call.access.admin,
                        "read every model (needed to replay the audit log)", action="read")
    offset = _int(call, "offset", 0)
    limit = _int(call, "limit", _MAX_LIMIT, low=1, high=_MAX_LIMIT)
    assert offset is not None and limit is not None

    def read(tx: ReadTransaction) -> dict[str, Any]:
        page = []
        for index, record in enumerate(tx.versions_for_replay()):
            if index >= offset + limit:
                break
            if index >= offset:
                page.append(record)
        return _many(page)

    return await _tx(call, read)


async def all_aliases(call: Call) -> Response:
    """Every alias of every model (audit replay)."""
    call.access.require(call.access.may_read("*") or call.access.admin,
                        "read every model (needed to replay the audit log)", action="read")
    return await _tx(call, lambda tx: _many(tx.all_aliases()))


async def blob(call: Call) -> Response:
    """A blob's bytes, checked against its digest on the server too (GET), or its size (HEAD)."""
    from starlette.responses import FileResponse, Response

    _any_read(call)
    digest = check_digest(call.param("digest"))
    state = call.state
    blobs = (await state.run(state.registry)).blobs
    size = await state.run(blobs.stat, digest)
    if size is None:
        from mlprov.registry import NotFoundError

        raise NotFoundError(f"blob {digest} is not stored")
    headers = {"X-Mlprov-Digest": digest, "Content-Length": str(size)}
    if call.request.method == "HEAD":
        return Response(status_code=200, headers=headers,
                        media_type="application/octet-stream")
    if size <= _INLINE_BLOB:
        data = await state.run(lambda: blobs.get_bytes(digest, max_size=_INLINE_BLOB))
        return Response(data, media_type="application/octet-stream",
                        headers={"X-Mlprov-Digest": digest})
    import tempfile
    from pathlib import Path

    from starlette.background import BackgroundTask

    directory = Path(tempfile.mkdtemp(prefix="blob-", dir=state.tmp))
    target = directory / "blob"

    def cleanup() -> None:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)

    try:
        await state.run(blobs.copy_to, digest, target)
    except BaseException:
        cleanup()
        raise
    return FileResponse(target, media_type="application/octet-stream",
                        headers={"X-Mlprov-Digest": digest},
                        background=BackgroundTask(cleanup))


# ---------------------------------------------------------------------- the catalog
# Descriptions, tags, indexed metrics and renames (issue 13): rows like the others,
# checked by the client against the signed log (audit verify replays them).

_MAX_BATCH = 1000


async def _batch(call: Call, field: str) -> list[Any]:
    from pydantic import BaseModel, ConfigDict, Field

    class Batch(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        names: list[str] = Field(default_factory=list, max_length=_MAX_BATCH)
        keys: list[list[str | int]] = Field(default_factory=list, max_length=_MAX_BATCH)

    from mlprov.server._endpoint import json_body

    body = await json_body(call, Batch)
    items: list[Any] = list(getattr(body, field))
    for item in items:
        if isinstance(item, list):
            if len(item) != 2 or not isinstance(item[0], str) or not isinstance(item[1], int):
                raise InputError("keys are [name, version] pairs")
            item = item[0]
        _readable(call, item)
    return items


async def all_models(call: Call) -> Response:
    """Every model, deleted ones too (audit replay)."""
    call.access.require(call.access.may_read("*") or call.access.admin,
                        "read every model (needed to replay the audit log)", action="read")
    return await _tx(call, lambda tx: _many(tx.all_models()))


async def list_tags(call: Call) -> Response:
    """The tags of a model, or of one of its versions (``?version=N``)."""
    name = _readable(call, call.param("name"))
    text = call.query("version")
    version = parse_version(text) if text is not None else None
    return await _tx(call, lambda tx: _many(tx.list_tags(name, version)))


async def model_tags(call: Call) -> Response:
    """The tags of each named model (body: ``{"names": [...]}``)."""
    names = await _batch(call, "names")
    return await _tx(call, lambda tx: {"tags": tx.model_tags(names)})


async def version_tags(call: Call) -> Response:
    """The tags of each version (body: ``{"keys": [[name, version], ...]}``)."""
    keys = [(k[0], k[1]) for k in await _batch(call, "keys")]
    return await _tx(call, lambda tx: {"entries": [
        [name, version, tags] for (name, version), tags in tx.version_tags(keys).items()]})


async def version_metrics(call: Call) -> Response:
    """The indexed eval metrics of each version (body: ``{"keys": [[name, version], ...]}``)."""
    keys = [(k[0], k[1]) for k in await _batch(call, "keys")]
    return await _tx(call, lambda tx: {"entries": [
        [name, version, metrics]
        for (name, version), metrics in tx.version_metrics(keys).items()]})


async def aliases_of(call: Call) -> Response:
    """The aliases of each named model (body: ``{"names": [...]}``)."""
    names = await _batch(call, "names")
    return await _tx(call, lambda tx: {"aliases": {
        name: [encode_record(a) for a in records]
        for name, records in tx.aliases_of(names).items()}})


async def all_tags(call: Call) -> Response:
    """Every tag (audit replay)."""
    call.access.require(call.access.may_read("*") or call.access.admin,
                        "read every model (needed to replay the audit log)", action="read")
    return await _tx(call, lambda tx: _many(tx.all_tags()))


async def all_metrics(call: Call) -> Response:
    """Every version's indexed metrics (audit replay)."""
    call.access.require(call.access.may_read("*") or call.access.admin,
                        "read every model (needed to replay the audit log)", action="read")
    return await _tx(call, lambda tx: {"entries": [
        [name, version, metrics] for (name, version), metrics in tx.all_metrics().items()]})


async def renames_of(call: Call) -> Response:
    """Every rename of the model now named NAME."""
    name = _readable(call, call.param("name"))
    return await _tx(call, lambda tx: _many(tx.renames_of(name)))


async def renamed_from(call: Call) -> Response:
    """The latest rename away from an old name, and the model's name now."""
    _any_read(call)
    old = check_name(call.param("name"))

    def read(tx: ReadTransaction) -> dict[str, Any]:
        found = tx.renamed_from(old)
        if found is None or not call.access.may_read(found[1]):
            return {"record": None, "now": None}
        return {"record": encode_record(found[0]), "now": found[1]}

    return await _tx(call, read)


async def all_renames(call: Call) -> Response:
    """Every rename (audit replay)."""
    call.access.require(call.access.may_read("*") or call.access.admin,
                        "read every model (needed to replay the audit log)", action="read")
    return await _tx(call, lambda tx: _many(tx.all_renames()))


def store_endpoints() -> list[Endpoint]:
    """The store's endpoints, for the app and its OpenAPI document."""
    s, r = "store", "/api/v1/store"
    read_name = "read NAME"
    return [
        Endpoint("GET", f"{r}/state/{{key}}", get_state, "A registry state value "
                 "(settings digests, signed head, id)", "read (any name)", tag=s),
        Endpoint("GET", f"{r}/models", list_models, "Models the principal may read",
                 "read (filtered)", tag=s),
        Endpoint("GET", f"{r}/models/{{name}}", get_model, "One model", read_name, tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/versions", list_versions, "A model's versions",
                 read_name, query=("stage", "limit", "descending", "identity"), tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/versions/{{version}}", get_version,
                 "One version row", read_name, tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/versions/{{version}}/reviews", list_reviews,
                 "A version's reviews", read_name, tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/counts", count_versions,
                 "Versions per stage", read_name, tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/aliases", list_aliases, "A model's aliases",
                 read_name, tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/aliases/{{alias}}", get_alias, "One alias",
                 read_name, tag=s),
        Endpoint("GET", f"{r}/roots/{{digest}}", find_by_root,
                 "Versions by root digest (lineage)", "read (filtered)", query=("limit",),
                 tag=s),
        Endpoint("GET", f"{r}/audit", audit_entries, "Audit entries", "read (any name)",
                 query=("since", "until", "limit", "name", "target", "accepted",
                        "descending"), tag=s),
        Endpoint("GET", f"{r}/audit/head", audit_head, "The last audit entry",
                 "read (any name)", tag=s),
        Endpoint("GET", f"{r}/head", head, "The signed head and the last audit entry, "
                 "from one snapshot", "read (any name)", tag=s),
        Endpoint("GET", f"{r}/audit/{{seq}}", audit_entry, "One audit entry",
                 "read (any name)", tag=s),
        Endpoint("GET", f"{r}/decisions/{{digest}}", get_decision, "A signed decision",
                 "read (any name)", tag=s),
        Endpoint("GET", f"{r}/checkpoints", checkpoints, "Signed checkpoints",
                 "read (any name)", tag=s),
        Endpoint("GET", f"{r}/events", events, "Events", "read (filtered)",
                 query=("since", "limit"), tag=s),
        Endpoint("GET", f"{r}/events/{{id}}", get_event, "One event", "read (filtered)",
                 tag=s),
        Endpoint("GET", f"{r}/deliveries", deliveries, "Hook deliveries", "admin",
                 query=("event",), tag=s),
        Endpoint("GET", f"{r}/deployments", list_deployments, "Deployment versions",
                 "read (filtered)", query=("name",), tag=s),
        Endpoint("GET", f"{r}/deployments/{{name}}/{{version}}", get_deployment,
                 "One deployment version", read_name, tag=s),
        Endpoint("GET", f"{r}/versions", all_versions, "Every version (audit replay)",
                 "read *", query=("offset", "limit"), tag=s),
        Endpoint("GET", f"{r}/aliases", all_aliases, "Every alias (audit replay)", "read *",
                 tag=s),
        Endpoint("GET", f"{r}/all-models", all_models, "Every model, deleted ones too",
                 "read *", tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/tags", list_tags, "A model's or version's tags",
                 read_name, query=("version",), tag=s),
        Endpoint("POST", f"{r}/model-tags", model_tags, "Tags of several models",
                 "read each NAME", body="application/json", tag=s),
        Endpoint("POST", f"{r}/version-tags", version_tags, "Tags of several versions",
                 "read each NAME", body="application/json", tag=s),
        Endpoint("POST", f"{r}/version-metrics", version_metrics,
                 "Indexed metrics of several versions", "read each NAME",
                 body="application/json", tag=s),
        Endpoint("POST", f"{r}/aliases-of", aliases_of, "Aliases of several models",
                 "read each NAME", body="application/json", tag=s),
        Endpoint("GET", f"{r}/tags", all_tags, "Every tag (audit replay)", "read *", tag=s),
        Endpoint("GET", f"{r}/metrics", all_metrics, "Every indexed metric (audit replay)",
                 "read *", tag=s),
        Endpoint("GET", f"{r}/models/{{name}}/renames", renames_of, "A model's renames",
                 read_name, tag=s),
        Endpoint("GET", f"{r}/renamed-from/{{name}}", renamed_from,
                 "Where an old name went", "read (filtered)", tag=s),
        Endpoint("GET", f"{r}/renames", all_renames, "Every rename (audit replay)", "read *",
                 tag=s),
        Endpoint("GET", "/api/v1/blobs/{digest}", blob, "A blob's bytes by content digest",
                 "read (any name)", tag=s),
        Endpoint("HEAD", "/api/v1/blobs/{digest}", blob, "A blob's size", "read (any name)",
                 tag=s),
    ]
