"""Read-only views of a registry, JSON-ready: what it enforces, its models, log and events.

Nothing here is verified beyond what reading a setting as the signed head names
it does; :mod:`._auditlog` verifies the log and :mod:`._pull` what is handed out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlprov.errors import MlprovError
from mlprov.registry._audit import entry_from_record
from mlprov.registry._catalog import name_periods, need_model
from mlprov.registry._records import AliasChange, event_document
from mlprov.registry._uri import check_alias, version_uri

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["alias_history", "audit_log", "describe", "events", "iter_alias_history",
           "iter_audit_log", "list_deployments", "list_models", "show_model"]


def alias_history(registry: RegistryContext, name: str, alias: str, *,
                  at: str | None = None) -> list[AliasChange]:
    """Every accepted change of ``alias``, oldest first (to ``at``), from the audit log."""
    return list(iter_alias_history(registry, name, alias, at=at))


def iter_alias_history(registry: RegistryContext, name: str, alias: str, *,
                       at: str | None = None) -> Iterator[AliasChange]:
    """:func:`alias_history` as it is read: one read transaction, a bounded batch of rows.

    The transaction stays open until the iterator is exhausted or closed.
    """
    check_alias(alias)
    target = f"@{alias}"
    with registry.metadata.read() as tx:
        for period_name, after, until in name_periods(tx, name):
            # under each name the model had, oldest first
            for record in tx.stream_audit(name=period_name, target=target, accepted=True,
                                          since=after, until=until):
                if until is not None and record.seq >= until:
                    continue
                entry = entry_from_record(record)
                if entry.name != record.name or entry.target != target or not entry.accepted:
                    continue
                if at is not None and entry.time > at:
                    return
                version = None if entry.kind == "alias.delete" else entry.version
                yield AliasChange(seq=entry.seq, time=entry.time, kind=entry.kind,
                                  version=version, actor=entry.actor, reason=entry.reason,
                                  decision=entry.decision)


def describe(registry: RegistryContext) -> dict[str, Any]:
    """Where the registry is and what it enforces."""
    with registry.metadata.read() as tx:
        state = {k: tx.get_state(k) for k in ("trust", "policies", "config")}
        head = tx.audit_head()
    settings = registry.settings
    config = settings.config
    public = registry.location.public_key_file()
    keyid = None
    with contextlib.suppress(OSError, MlprovError):
        from mlprov.signing import load_public_key

        keyid = load_public_key(public).keyid
    return {
        "home": registry.location.describe(), "id": settings.registry_id, "publicKey": keyid,
        "signing": "sigstore" if settings.signing() is not None else "key",
        "trust": state["trust"], "policies": state["policies"], "config": state["config"],
        "signers": [{"name": k.name, "roles": sorted(r.value for r in k.roles)}
                    for k in settings.trust.keys],
        "gates": {"stages": {s.value: g for s, g in config.stage_gates.items()},
                  "aliases": dict(config.alias_gates),
                  "changes": dict(config.change_gates)},
        "hooks": [h.name for h in config.hooks],
        "thresholds": settings.thresholds.lines(),
        "auditHead": head.seq if head else 0,
    }


def list_models(registry: RegistryContext) -> list[dict[str, Any]]:
    """Every model: name, latest version, aliases."""
    with registry.metadata.read() as tx:
        models = tx.list_models()
        aliases = tx.aliases_of([m.name for m in models])  # one query, not one per model
    return [{"name": model.name, "latestVersion": model.latest_version,
             "createdAt": model.created_at,
             "aliases": {a.alias: a.version for a in aliases.get(model.name, [])}}
            for model in models]


def show_model(registry: RegistryContext, name: str, *, limit: int | None = None
               ) -> dict[str, Any]:
    """A model's versions (newest first, up to ``limit``) and aliases.

    Raises:
        NotFoundError: no such model.
    """
    with registry.metadata.read() as tx:
        model = need_model(tx, name)
        versions = tx.list_versions(name, limit=limit, descending=True)
        aliases = tx.list_aliases(name)
        found = tx.reviews_of(name, [v.version for v in versions])  # one query
        reviews = {v.version: len(found.get(v.version, ())) for v in versions}
        keys = [(name, v.version) for v in versions]
        tags, version_tags = tx.model_tags([name]).get(name, {}), tx.version_tags(keys)
        metrics = tx.version_metrics(keys)
    return {
        "name": name, "createdAt": model.created_at, "latestVersion": model.latest_version,
        "description": model.description, "tags": tags,
        "aliases": {a.alias: {"version": a.version, "decision": a.decision,
                              "updatedAt": a.updated_at} for a in aliases},
        "versions": [{"version": v.version, "uri": version_uri(name, v.version),
                      "stage": v.stage.value, "identity": v.identity,
                      "rootDigest": v.root_digest, "reproducible": v.reproducible,
                      "reviews": reviews[v.version], "createdAt": v.created_at,
                      "registration": v.registration, "stageDecision": v.stage_decision,
                      "description": v.description,
                      "tags": version_tags.get((name, v.version), {}),
                      "metrics": metrics.get((name, v.version), {})}
                     for v in versions],
    }


def audit_log(registry: RegistryContext, *, since: int = 0, limit: int | None = None,
              name: str | None = None) -> list[dict[str, Any]]:
    """Audit entries after ``since``, parsed from the hashed bodies."""
    return list(iter_audit_log(registry, since=since, limit=limit, name=name))


def iter_audit_log(registry: RegistryContext, *, since: int = 0, limit: int | None = None,
                   name: str | None = None) -> Iterator[dict[str, Any]]:
    """:func:`audit_log` as it is read (one read transaction, a bounded batch of rows)."""
    with registry.metadata.read() as tx:
        for record in tx.stream_audit(since=since, limit=limit, name=name):
            yield entry_from_record(record).to_json_dict(record.entry_hash)


def events(registry: RegistryContext, *, since: int = 0, limit: int | None = None
           ) -> list[dict[str, Any]]:
    """Events after id ``since``, each with its deliveries."""
    with registry.metadata.read() as tx:
        records = tx.events(since=since, limit=limit)
        out = []
        for record in records:
            document = event_document(record)
            document["deliveries"] = [
                {"hook": d.hook, "state": d.state, "attempts": d.attempts,
                 "lastError": d.last_error} for d in tx.deliveries(event_id=record.id)]
            out.append(document)
    return out


def list_deployments(registry: RegistryContext) -> list[dict[str, Any]]:
    """Every deployment version (not verified; :func:`._deploy.show_deployment` verifies)."""
    from mlprov.registry._deploy import deployment_uri
    from mlprov.registry._deploy import list_deployments as records

    return [{"name": r.name, "version": r.version, "uri": deployment_uri(r.name, r.version),
             "stage": r.stage.value, "createdAt": r.created_at}
            for r in records(registry)]
