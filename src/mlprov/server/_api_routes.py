"""The registry's operations over HTTP: register, move, review, deploy, read the log.

Each handler checks the principal's permission for exactly what it asks
(:mod:`._authz`, deny by default), then calls one public method of
:class:`~mlprov.registry.Registry` on a worker thread with the authenticated
principal as the change's ``actor``: a client's own claim of who it is is
never read. The registry gates, signs and audits the change as it would for a
local caller; the answer carries the signed decision's digest and audit entry,
which the client verifies with the registry's public key.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlprov._internal.names import check_alias, check_name, parse_version
from mlprov.errors import InputError
from mlprov.server._endpoint import (
    BodyTooLarge,
    Call,
    Endpoint,
    json_body,
    json_response,
    read_body,
)

if TYPE_CHECKING:
    from starlette.responses import Response

    from mlprov.registry import ChangeResult, Registry

__all__ = ["API_VERSION", "api_endpoints", "register_result_json"]

API_VERSION = 1
REGISTER_SCHEMA = "https://mlprov.dev/schemas/registered-version/v1"
CHANGE_SCHEMA = "https://mlprov.dev/schemas/registry-change/v1"
VERSION_SCHEMA = "https://mlprov.dev/schemas/registry-version/v1"
CARD_SCHEMA = "https://mlprov.dev/schemas/model-card/v1"
StageName = Literal["None", "Staging", "Production", "Archived"]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PromoteRequest(_Body):
    """Move a version to a stage."""

    to: StageName
    reason: str = Field(min_length=1, max_length=2000)
    dryRun: bool = False


class AliasRequest(_Body):
    """Point an alias at a version."""

    version: int = Field(ge=1, lt=10**18)
    reason: str = Field(min_length=1, max_length=2000)
    dryRun: bool = False


class AliasDeleteRequest(_Body):
    """Remove an alias."""

    reason: str = Field(min_length=1, max_length=2000)


class RollbackRequest(_Body):
    """Re-point an alias to an earlier version."""

    to: int | None = Field(default=None, ge=1, lt=10**18)
    reason: str = Field(default="rollback", min_length=1, max_length=2000)
    dryRun: bool = False


class DeploymentRequest(_Body):
    """Pin versions as a deployment's next version."""

    models: list[str] = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


class DeploymentStageRequest(_Body):
    """Move a deployment version to a stage."""

    to: StageName
    reason: str = Field(min_length=1, max_length=2000)


class DescriptionRequest(_Body):
    """Set the description of a model (or of one version)."""

    text: str = Field(max_length=20000)
    version: int | None = Field(default=None, ge=1, lt=10**18)
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class TagRequest(_Body):
    """Set a tag of a model (or of one version)."""

    key: str = Field(min_length=1, max_length=250)
    value: str = Field(default="", max_length=5000)
    version: int | None = Field(default=None, ge=1, lt=10**18)
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class TagDeleteRequest(_Body):
    """Remove a tag of a model (or of one version)."""

    key: str = Field(min_length=1, max_length=250)
    version: int | None = Field(default=None, ge=1, lt=10**18)
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class RenameRequest(_Body):
    """Rename a model."""

    newName: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class DeleteRequest(_Body):
    """Delete a model or a version (a tombstone: the history stays)."""

    reason: str | None = Field(default=None, min_length=1, max_length=2000)


def register_result_json(result: Any) -> dict[str, Any]:
    """A :class:`~mlprov.registry.RegisterResult` as ``mlprov register --json`` prints it."""
    return {"schema": REGISTER_SCHEMA, "name": result.name, "version": result.version,
            "uri": result.uri, "identity": result.identity, "rootDigest": result.root_digest,
            "created": result.created, "reproducible": result.reproducible,
            "sameIdentityAs": list(result.same_identity), "decision": result.decision,
            "auditSeq": result.seq}


def _change(result: ChangeResult) -> Response:
    return json_response({"schema": CHANGE_SCHEMA, **result.to_json_dict()})


async def _on_registry(call: Call, work: Any) -> Any:
    state = call.state
    return await state.run(lambda: work(state.registry()))


# ---------------------------------------------------------------------- describe


async def describe(call: Call) -> Response:
    """The registry's id and public key (to pin), the API version, who is asking."""
    def work(registry: Registry) -> dict[str, Any]:
        anchor = registry.anchor
        key = anchor.keys[0].key if anchor.keys else None
        return {"schema": "https://mlprov.dev/schemas/server/v1", "apiVersion": API_VERSION,
                "registryId": registry.registry_id,
                "signing": "key" if key is not None else "sigstore",
                "publicKey": key.pem.decode("ascii") if key is not None else None,
                "publicKeyId": key.keyid if key is not None else None}

    document = await _on_registry(call, work)
    document["principal"] = _whoami(call)
    return json_response(document)


def _whoami(call: Call) -> dict[str, Any]:
    p = call.principal
    return {"name": p.name, "via": p.via, "roles": sorted(p.roles),
            "groups": sorted(p.groups | call.state.config.groups_of(p.name)),
            "admin": call.access.admin}


async def whoami(call: Call) -> Response:
    """The authenticated principal, its roles and groups."""
    return json_response(_whoami(call))


# ---------------------------------------------------------------------- reads


async def list_models(call: Call) -> Response:
    """Models the principal may read, with latest version and aliases."""
    call.access.require(call.access.may_read_any(), "read the registry", action="read")
    found = await _on_registry(call, lambda r: r.list_models())
    return json_response({"schema": "https://mlprov.dev/schemas/registry-models/v1",
                          "models": [m for m in found if call.access.may_read(m["name"])]})


async def show_model(call: Call) -> Response:
    """A model's versions (newest first) and aliases."""
    name = check_name(call.param("name"))
    call.access.require(call.access.may_read(name), f"read {name}", action="read",
                        name=name)
    limit_text = call.query("limit")
    limit = parse_version(limit_text) if limit_text is not None else 50
    shown = await _on_registry(call, lambda r: r.show_model(name, limit=min(limit, 5000)))
    return json_response({"schema": "https://mlprov.dev/schemas/registry-model/v1", **shown})


def _readable_uris(call: Call, uris: list[str]) -> list[str]:
    """The ``models:/NAME/N`` URIs of names the principal may read."""
    from mlprov.registry import parse_model_uri

    return [u for u in uris if call.access.may_read(parse_model_uri(u).name)]


def _version_of(call: Call) -> tuple[str, int]:
    name = check_name(call.param("name"))
    version = parse_version(call.param("version"))
    call.access.require(call.access.may_read(name), f"read {name}", action="read", name=name,
                        version=version)
    return name, version


async def show_version(call: Call) -> Response:
    """What a version holds, re-verified on the server (``mlprov models show --version``).

    Children and registered copies of parents are listed only under readable names.
    """
    name, version = _version_of(call)
    details = await _on_registry(call, lambda r: r.show_version(name, version))
    document = details.to_json_dict()
    document["children"] = [c for c in document["children"]
                            if call.access.may_read(c["name"])]
    for parent in document["parents"]:
        parent["registered"] = _readable_uris(call, parent["registered"])
    return json_response({"schema": VERSION_SCHEMA, **document})


async def version_card(call: Call) -> Response:
    """The version's model card (Markdown), re-rendered from its re-verified evidence."""
    from mlprov.card import card_from_verdict

    name, version = _version_of(call)
    uri = f"models:/{name}/{version}"
    markdown = await _on_registry(call, lambda r: card_from_verdict(r.verify_uri(uri).verdict))
    return json_response({"schema": CARD_SCHEMA, "uri": uri, "markdown": markdown})


async def version_lineage(call: Call) -> Response:
    """The version's lineage graph, verified through the registry's copies of its ancestors.

    ``?descendants=true`` adds the registered versions descending from it (each
    verified; only readable names are listed).
    """
    name, version = _version_of(call)
    uri = f"models:/{name}/{version}"
    with_descendants = call.query("descendants") == "true"
    graph = await _on_registry(call, lambda r: r.lineage(uri, descendants=with_descendants))
    document = graph.to_json_dict()
    for node in document["nodes"]:
        where = node.get("evidence")
        if isinstance(where, str) and where.startswith("models:/"):
            node["evidence"] = ", ".join(_readable_uris(call, where.split(", "))) or None
    if "descendants" in document:
        document["descendants"] = [d for d in document["descendants"]
                                   if call.access.may_read(d["name"])]
    return json_response(document)


async def resolve(call: Call) -> Response:
    """Resolve a ``models:/`` URI on the server (clients resolve and verify themselves)."""
    from mlprov.registry import parse_model_uri

    text = call.query("uri")
    if text is None:
        raise InputError("resolve needs ?uri=models:/NAME@ALIAS")
    uri = parse_model_uri(text)
    call.access.require(call.access.may_read(uri.name), f"read {uri.name}", action="read",
                        name=uri.name)
    resolved = await _on_registry(call, lambda r: r.resolve(text))
    return json_response({"schema": "https://mlprov.dev/schemas/resolved-version/v1",
                          **resolved.to_json_dict()})


async def alias_history(call: Call) -> Response:
    """Every accepted change of an alias, from the audit log."""
    name = check_name(call.param("name"))
    alias = check_alias(call.param("alias"))
    call.access.require(call.access.may_read(name), f"read {name}", action="read",
                        name=name)
    at = call.query("at")
    if at is not None:
        from mlprov.registry import parse_time

        at = parse_time(at)
    changes = await _on_registry(call, lambda r: r.alias_history(name, alias, at=at))
    return json_response({"schema": "https://mlprov.dev/schemas/alias-history/v1",
                          "name": name, "alias": alias, "at": at,
                          "changes": [c.to_json_dict() for c in changes]})


async def audit_log(call: Call) -> Response:
    """Audit entries (parsed from the hashed bodies), of readable names."""
    call.access.require(call.access.may_read_any(), "read the registry", action="read")
    since = call.query("since")
    limit = call.query("limit")
    name = call.query("name")
    if name is not None:
        check_name(name)
        call.access.require(call.access.may_read(name), f"read {name}", action="read",
                        name=name)
    entries = await _on_registry(call, lambda r: r.audit_log(
        since=int(since) if since is not None and since.isdigit() else 0,
        limit=min(parse_version(limit), 5000) if limit is not None else 1000, name=name))
    return json_response({"schema": "https://mlprov.dev/schemas/audit-log/v1",
                          "entries": [e for e in entries if e.get("name") is None
                                      or call.access.may_read(e["name"])]})


async def audit_verify(call: Call) -> Response:
    """The server's own verification of the audit log (clients verify it themselves too)."""
    call.access.require(call.access.may_read_any(), "read the registry", action="read")
    deep = call.query("deep") == "true"
    if deep:
        call.access.require(call.access.admin, "run a deep audit verification",
                            action="admin")
    report = await _on_registry(call, lambda r: r.verify_audit(deep=deep))
    return json_response(report.to_json_dict())


async def checkpoint(call: Call) -> Response:
    """Verify the log and sign a checkpoint of its head (admin)."""
    import base64

    call.access.require(call.access.admin, "sign a checkpoint", action="admin")
    report, bundle = await _on_registry(call, lambda r: r.checkpoint())
    return json_response({**report.to_json_dict(),
                          "checkpoint": base64.b64encode(bundle).decode("ascii")})


async def events(call: Call) -> Response:
    """Events after ``since`` (of readable names), with their deliveries."""
    call.access.require(call.access.may_read_any(), "read the registry", action="read")
    since = call.query("since")
    found = await _on_registry(call, lambda r: r.events(
        since=int(since) if since is not None and since.isdigit() else 0, limit=1000))
    shown = [e for e in found if e.get("name") is None or call.access.may_read(e["name"])]
    if not call.access.admin:  # hook names and delivery errors (URLs) are the admin's
        shown = [{k: v for k, v in e.items() if k != "deliveries"} for e in shown]
    return json_response({"schema": "https://mlprov.dev/schemas/events/v1", "events": shown})


async def list_deployments(call: Call) -> Response:
    """Deployment versions of readable names."""
    call.access.require(call.access.may_read_any(), "read the registry", action="read")
    found = await _on_registry(call, lambda r: r.list_deployments())
    return json_response({"schema": "https://mlprov.dev/schemas/deployments/v1",
                          "deployments": [d for d in found if call.access.may_read(d["name"])]})


async def show_deployment(call: Call) -> Response:
    """A deployment's versions, each signed spec, member and alias verified on the server."""
    name = check_name(call.param("name"), what="deployment name")
    call.access.require(call.access.may_read(name), f"read deployment {name}", action="read",
                        name=name)
    views = await _on_registry(call, lambda r: r.show_deployment(name))
    return json_response({"schema": "https://mlprov.dev/schemas/deployments/v1",
                          "deployments": [v.to_json_dict() for v in views]})


# ---------------------------------------------------------------------- changes


async def promote(call: Call) -> Response:
    """Move a version to a stage, if the principal may and the stage's gate allows."""
    name = check_name(call.param("name"))
    version = parse_version(call.param("version"))
    body: PromoteRequest = await json_body(call, PromoteRequest)
    call.access.require(call.access.may_promote(name, body.to),
                        f"move {name} to {body.to}", action="promote", name=name,
                        version=version, target=body.to)
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.promote(
        name, version, to=body.to, reason=body.reason, actor=who, dry_run=body.dryRun))
    return _change(result)


async def set_alias(call: Call) -> Response:
    """Point an alias at a version, if the principal may and the alias's gate allows."""
    name = check_name(call.param("name"))
    alias = check_alias(call.param("alias"))
    body: AliasRequest = await json_body(call, AliasRequest)
    call.access.require(call.access.may_alias(name, alias), f"set {name}@{alias}",
                        action="alias", name=name, version=body.version, target=f"@{alias}")
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.set_alias(
        name, alias, body.version, reason=body.reason, actor=who, dry_run=body.dryRun))
    return _change(result)


async def delete_alias(call: Call) -> Response:
    """Remove an alias (never gated; signed and audited)."""
    name = check_name(call.param("name"))
    alias = check_alias(call.param("alias"))
    body: AliasDeleteRequest = await json_body(call, AliasDeleteRequest)
    call.access.require(call.access.may_alias(name, alias), f"delete {name}@{alias}",
                        action="alias", name=name, target=f"@{alias}")
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.delete_alias(name, alias,
                                                               reason=body.reason, actor=who))
    return _change(result)


async def rollback(call: Call) -> Response:
    """Re-point an alias to an earlier version (gated like any alias move)."""
    name = check_name(call.param("name"))
    alias = check_alias(call.param("alias"))
    body: RollbackRequest = await json_body(call, RollbackRequest)
    call.access.require(call.access.may_alias(name, alias), f"roll back {name}@{alias}",
                        action="alias", name=name, version=body.to, target=f"@{alias}")
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.rollback(
        name, alias, to=body.to, reason=body.reason, actor=who, dry_run=body.dryRun))
    return _change(result)


def registrant(registry: Registry, name: str, version: int) -> str | None:
    """Who registered ``name`` v``version`` (the accepted ``model.register`` entry's actor)."""
    for entry in registry.audit_log(name=name):
        if entry.get("kind") == "model.register" and entry.get("version") == version \
                and entry.get("accepted"):
            actor = entry.get("actor")
            return actor if isinstance(actor, str) else None
    return None


async def add_review(call: Call) -> Response:
    """Attach a signed review (the body: the review bundle's bytes)."""
    name = check_name(call.param("name"))
    version = parse_version(call.param("version"))
    access = call.access
    access.require(access.may_review(name), f"review {name}", action="review", name=name,
                   version=version)
    data = await read_body(call.request, call.state.config.max_review)
    if not data:
        raise InputError("the request body must be the review bundle (JSON)")
    who = call.principal.name
    separation = call.state.config.authz.separation_of_duties
    reason = call.query("reason")
    if reason is not None and (len(reason) > 2000 or not reason.isprintable()):
        raise InputError("invalid reason")
    state = call.state

    def work(registry: Registry) -> ChangeResult:
        if separation and registrant(registry, name, version) == who:
            from mlprov.server._errors import PermissionDeniedError, Refused

            raise PermissionDeniedError(
                f"{who} registered {name} v{version} and so may not review it "
                "(separation of duties)", hint="another reviewer must add the review",
                refused=Refused(action="review", name=name, version=version,
                                permission=f"review {name} v{version}, which it registered "
                                           "(separation of duties)"))
        directory = Path(tempfile.mkdtemp(prefix="review-", dir=state.tmp))
        try:
            path = directory / "review.sigstore.json"
            path.write_bytes(data)
            return registry.add_review(name, version, path, actor=who, reason=reason)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    return _change(await _on_registry(call, work))


async def create_deployment(call: Call) -> Response:
    """Pin versions as a deployment's next version."""
    name = check_name(call.param("name"), what="deployment name")
    body: DeploymentRequest = await json_body(call, DeploymentRequest)
    from mlprov.registry import parse_model_uri

    call.access.require(call.access.may_deploy(name, None), f"create deployment {name}",
                        action="deploy", name=name)
    for uri in body.models:
        member = parse_model_uri(uri).name
        call.access.require(call.access.may_read(member), f"read {member}", action="read",
                            name=member)
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.create_deployment(
        name, list(body.models), reason=body.reason, actor=who))
    return _change(result)


async def promote_deployment(call: Call) -> Response:
    """Move a deployment version to a stage; every member must pass the stage's gate."""
    name = check_name(call.param("name"), what="deployment name")
    version = parse_version(call.param("version"))
    body: DeploymentStageRequest = await json_body(call, DeploymentStageRequest)
    call.access.require(call.access.may_deploy(name, body.to),
                        f"move deployment {name} to {body.to}", action="deploy", name=name,
                        version=version, target=body.to)
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.promote_deployment(
        name, version, to=body.to, reason=body.reason, actor=who))
    return _change(result)


# ---------------------------------------------------------------------- the catalog


async def set_description(call: Call) -> Response:
    """Set (empty text: clear) the description of a model or one of its versions."""
    name = check_name(call.param("name"))
    body: DescriptionRequest = await json_body(call, DescriptionRequest)
    call.access.require(call.access.may_annotate(name), f"annotate {name}",
                        action="annotate", name=name, version=body.version)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.set_description(
        name, body.text, version=body.version, reason=body.reason, actor=who)))


async def set_tag(call: Call) -> Response:
    """Set a tag of a model or one of its versions."""
    name = check_name(call.param("name"))
    body: TagRequest = await json_body(call, TagRequest)
    call.access.require(call.access.may_annotate(name), f"annotate {name}",
                        action="annotate", name=name, version=body.version)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.set_tag(
        name, body.key, body.value, version=body.version, reason=body.reason, actor=who)))


async def delete_tag(call: Call) -> Response:
    """Remove a tag of a model or one of its versions."""
    name = check_name(call.param("name"))
    body: TagDeleteRequest = await json_body(call, TagDeleteRequest)
    call.access.require(call.access.may_annotate(name), f"annotate {name}",
                        action="annotate", name=name, version=body.version)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.delete_tag(
        name, body.key, version=body.version, reason=body.reason, actor=who)))


async def rename_model(call: Call) -> Response:
    """Rename a model (needs ``rename`` on the old name and the new one)."""
    name = check_name(call.param("name"))
    body: RenameRequest = await json_body(call, RenameRequest)
    new_name = check_name(body.newName)
    call.access.require(call.access.may_rename(name) and call.access.may_rename(new_name),
                        f"rename {name} to {new_name}", action="rename", name=name,
                        target=new_name)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.rename_model(
        name, new_name, reason=body.reason, actor=who)))


async def delete_model(call: Call) -> Response:
    """Delete a model (a tombstone; its history and blobs stay)."""
    name = check_name(call.param("name"))
    body: DeleteRequest = await json_body(call, DeleteRequest)
    call.access.require(call.access.may_delete(name), f"delete {name}", action="delete",
                        name=name)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.delete_model(
        name, reason=body.reason, actor=who)))


async def delete_version(call: Call) -> Response:
    """Delete one version (a tombstone; a reason is required)."""
    name = check_name(call.param("name"))
    version = parse_version(call.param("version"))
    body: DeleteRequest = await json_body(call, DeleteRequest)
    if body.reason is None:
        raise InputError("deleting a version needs a reason")
    reason = body.reason
    call.access.require(call.access.may_delete(name), f"delete {name} v{version}",
                        action="delete", name=name, version=version)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.delete_version(
        name, version, reason=reason, actor=who)))


def _search_args(call: Call) -> dict[str, Any]:
    limit_text = call.query("limit")
    order = call.request.query_params.getlist("order_by")
    if len(order) > 3:
        raise InputError("at most 3 order_by keys")
    return {"filter": call.query("filter"), "order_by": order or None,
            "limit": min(parse_version(limit_text), 1000) if limit_text else 100,
            "page_token": call.query("page_token")}


async def search_models(call: Call) -> Response:
    """One page of the models in use matching a filter (MLflow's search syntax)."""
    call.access.require(call.access.may_read_any(), "read the registry", action="read")
    args = _search_args(call)
    page = await _on_registry(call, lambda r: r.search_models(**args))
    return json_response({"schema": "https://mlprov.dev/schemas/registry-models/v1",
                          "models": [m.to_json_dict() for m in page.items
                                     if call.access.may_read(m.name)],
                          "nextPageToken": page.next_page_token})


async def search_versions(call: Call) -> Response:
    """One page of the versions in use (of ``name``, or of every model) matching a filter."""
    call.access.require(call.access.may_read_any(), "read the registry", action="read")
    name = call.query("name")
    if name is not None:
        check_name(name)
        call.access.require(call.access.may_read(name), f"read {name}", action="read",
                        name=name)
    args = _search_args(call)
    page = await _on_registry(call, lambda r: r.search_versions(name, **args))
    return json_response({"schema": "https://mlprov.dev/schemas/registry-versions/v1",
                          "versions": [v.to_json_dict() for v in page.items
                                       if call.access.may_read(v.name)],
                          "nextPageToken": page.next_page_token})


def _deployment_alias(call: Call, name: str, alias: str) -> None:
    access = call.access
    access.require(access.may_deploy(name, None) and
                   (alias not in access.protected or access.may_alias(name, alias)),
                   f"set deployments:/{name}@{alias}", action="deploy", name=name,
                   target=f"@{alias}")


async def set_deployment_alias(call: Call) -> Response:
    """Point a deployment alias at a deployment version (every member gated)."""
    name = check_name(call.param("name"), what="deployment name")
    alias = check_alias(call.param("alias"))
    body: AliasRequest = await json_body(call, AliasRequest)
    _deployment_alias(call, name, alias)
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.set_deployment_alias(
        name, alias, body.version, reason=body.reason, actor=who, dry_run=body.dryRun))
    return _change(result)


async def delete_deployment_alias(call: Call) -> Response:
    """Remove a deployment alias (never gated; signed and audited)."""
    name = check_name(call.param("name"), what="deployment name")
    alias = check_alias(call.param("alias"))
    body: AliasDeleteRequest = await json_body(call, AliasDeleteRequest)
    _deployment_alias(call, name, alias)
    who = call.principal.name
    result = await _on_registry(call, lambda r: r.delete_deployment_alias(
        name, alias, reason=body.reason, actor=who))
    return _change(result)


async def register(call: Call) -> Response:
    """Register a model: the body is a tar of ``model/`` and ``evidence/``, streamed to disk.

    The principal must be allowed to register under the name the evidence's
    index gives (which the registry's verification then requires to be the
    signed provenance's name).
    """
    import anyio

    from mlprov.server._upload import UploadError, extract_upload

    access = call.access
    access.require(access.may_register_any(), "register models", action="register")
    state = call.state
    config = state.config
    model_file = call.query("model_file")
    reason = call.query("reason")
    if reason is not None and (len(reason) > 2000 or not reason.isprintable()):
        raise InputError("invalid reason")
    expected = call.request.headers.get("x-mlprov-upload-sha256")
    if expected is not None and (len(expected) != 64 or not all(
            c in "0123456789abcdef" for c in expected)):
        raise InputError("X-Mlprov-Upload-Sha256 must be 64 lower-case hex digits")
    declared = call.request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > config.max_upload):
        raise BodyTooLarge(config.max_upload)
    directory = Path(tempfile.mkdtemp(prefix="upload-", dir=state.tmp))
    try:
        archive = directory / "upload.tar"
        digest = hashlib.sha256()
        size = 0
        stream = call.request.stream().__aiter__()
        with open(archive, "wb") as out:
            while True:
                try:
                    with anyio.fail_after(config.server.upload_idle_timeout):
                        chunk = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise UploadError(f"the upload stalled for "
                                      f"{config.server.upload_idle_timeout:g} s") from None
                size += len(chunk)
                if size > config.max_upload:
                    raise BodyTooLarge(config.max_upload)
                digest.update(chunk)
                await anyio.to_thread.run_sync(out.write, chunk)
        if declared is not None and size != int(declared):
            raise UploadError("the upload is truncated (fewer bytes than Content-Length)")
        if expected is not None and digest.hexdigest() != expected:
            raise UploadError("the upload does not match its X-Mlprov-Upload-Sha256 "
                              "(truncated or changed in transit)")
        who = call.principal.name

        def work(registry: Registry) -> Any:
            from mlprov.evidence import read_index

            model, evidence = extract_upload(archive, directory / "tree",
                                             model_file=model_file,
                                             max_bytes=config.max_upload)
            archive.unlink()
            try:
                name = read_index(evidence).name
            except Exception as exc:  # malformed index: refused before the registry sees it
                raise UploadError(f"the upload's evidence/evidence.json is unusable: {exc}") \
                    from exc
            check_name(name)
            access.require(access.may_register(name), f"register {name}", action="register",
                           name=name)
            result = registry.register(model, evidence=evidence, actor=who, reason=reason)
            if result.name != name:  # cannot happen: verification ties the index to the name
                raise InputError("the registered name differs from the evidence index")
            return result

        result = await _on_registry(call, work)
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))
    return json_response(register_result_json(result), 201 if result.created else 200)


def api_endpoints() -> list[Endpoint]:
    """The operations' endpoints, for the app and its OpenAPI document."""
    m = "/api/v1/models/{name}"
    return [
        Endpoint("GET", "/api/v1/registry", describe, "The registry's id and public key "
                 "(pin it), the API version and the caller", tag="server"),
        Endpoint("GET", "/api/v1/whoami", whoami, "The authenticated principal", tag="server"),
        Endpoint("GET", "/api/v1/models", list_models, "Models", "read (filtered)"),
        Endpoint("POST", "/api/v1/models/register", register,
                 "Register a model (body: a tar of model/ and evidence/)", "register NAME",
                 body="application/x-tar", query=("reason", "model_file"),
                 responses={"201": "registered", "200": "already registered",
                            "422": "refused: did not verify (audited)"}),
        Endpoint("GET", m, show_model, "A model's versions and aliases", "read NAME",
                 query=("limit",)),
        Endpoint("GET", f"{m}/versions/{{version}}", show_version,
                 "What a version holds, re-verified on the server (models show --version)",
                 "read NAME"),
        Endpoint("GET", f"{m}/versions/{{version}}/card", version_card,
                 "The version's model card (Markdown) from its re-verified evidence",
                 "read NAME"),
        Endpoint("GET", f"{m}/versions/{{version}}/lineage", version_lineage,
                 "The version's verified lineage graph (and descendants)", "read NAME",
                 query=("descendants",)),
        Endpoint("POST", f"{m}/versions/{{version}}/stage", promote,
                 "Move a version to a stage (gated)", "promote NAME to STAGE",
                 body=PromoteRequest, responses={"422": "denied by the gate (audited)"}),
        Endpoint("POST", f"{m}/versions/{{version}}/reviews", add_review,
                 "Attach a signed review (body: the review bundle)",
                 "review NAME; not the version's registrant", body="application/json",
                 query=("reason",)),
        Endpoint("PUT", f"{m}/aliases/{{alias}}", set_alias, "Point an alias at a version "
                 "(gated)", "alias NAME ALIAS (protected aliases by name only)",
                 body=AliasRequest, responses={"422": "denied by the gate (audited)"}),
        Endpoint("DELETE", f"{m}/aliases/{{alias}}", delete_alias, "Remove an alias",
                 "alias NAME ALIAS", body=AliasDeleteRequest),
        Endpoint("POST", f"{m}/aliases/{{alias}}/rollback", rollback,
                 "Re-point an alias to an earlier version (gated)", "alias NAME ALIAS",
                 body=RollbackRequest),
        Endpoint("GET", f"{m}/aliases/{{alias}}/history", alias_history,
                 "An alias's changes, from the audit log", "read NAME", query=("at",)),
        Endpoint("GET", "/api/v1/resolve", resolve, "Resolve a models:/ URI (unverified; "
                 "clients verify)", "read NAME", query=("uri",)),
        Endpoint("GET", "/api/v1/deployments", list_deployments, "Deployments",
                 "read (filtered)", tag="deployments"),
        Endpoint("GET", "/api/v1/deployments/{name}", show_deployment,
                 "A deployment's versions, members and aliases, verified on the server",
                 "read NAME", tag="deployments"),
        Endpoint("POST", "/api/v1/deployments/{name}", create_deployment,
                 "Pin versions as a deployment's next version", "deploy NAME",
                 body=DeploymentRequest, tag="deployments"),
        Endpoint("POST", "/api/v1/deployments/{name}/{version}/stage", promote_deployment,
                 "Move a deployment version to a stage (every member gated)",
                 "deploy NAME to STAGE", body=DeploymentStageRequest, tag="deployments"),
        Endpoint("PUT", "/api/v1/deployments/{name}/aliases/{alias}", set_deployment_alias,
                 "Point a deployment alias at a version (every member gated)",
                 "deploy NAME (protected aliases by name)", body=AliasRequest,
                 tag="deployments"),
        Endpoint("DELETE", "/api/v1/deployments/{name}/aliases/{alias}",
                 delete_deployment_alias, "Remove a deployment alias", "deploy NAME",
                 body=AliasDeleteRequest, tag="deployments"),
        Endpoint("PUT", f"{m}/description", set_description,
                 "Set a model's or version's description (audited)", "annotate NAME",
                 body=DescriptionRequest, tag="catalog"),
        Endpoint("POST", f"{m}/tags", set_tag, "Set a tag (audited)", "annotate NAME",
                 body=TagRequest, tag="catalog"),
        Endpoint("DELETE", f"{m}/tags", delete_tag, "Remove a tag (audited)", "annotate NAME",
                 body=TagDeleteRequest, tag="catalog"),
        Endpoint("POST", f"{m}/rename", rename_model, "Rename a model (audited)",
                 "rename NAME and the new name", body=RenameRequest, tag="catalog"),
        Endpoint("DELETE", m, delete_model, "Delete a model (a tombstone)", "delete NAME",
                 body=DeleteRequest, tag="catalog"),
        Endpoint("DELETE", f"{m}/versions/{{version}}", delete_version,
                 "Delete a version (a tombstone)", "delete NAME", body=DeleteRequest,
                 tag="catalog"),
        Endpoint("GET", "/api/v1/search/models", search_models,
                 "Search models (MLflow's filter syntax)", "read (filtered)",
                 query=("filter", "order_by", "limit", "page_token"), tag="catalog"),
        Endpoint("GET", "/api/v1/search/versions", search_versions,
                 "Search versions (MLflow's filter syntax)", "read (filtered)",
                 query=("name", "filter", "order_by", "limit", "page_token"), tag="catalog"),
        Endpoint("GET", "/api/v1/audit", audit_log, "Audit entries", "read (filtered)",
                 query=("since", "limit", "name"), tag="audit"),
        Endpoint("GET", "/api/v1/audit/verify", audit_verify,
                 "The server's verification of the audit log", "read; deep: admin",
                 query=("deep",), tag="audit"),
        Endpoint("POST", "/api/v1/audit/checkpoint", checkpoint,
                 "Verify the log and sign a checkpoint", "admin", tag="audit"),
        Endpoint("GET", "/api/v1/events", events, "Events", "read (filtered)",
                 query=("since",), tag="audit"),
    ]
