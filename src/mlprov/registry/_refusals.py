"""Refusals in the audit trail: what a front end (the registry server) did not let through.

A registry server refuses a request its authenticated principal has no grant
for before the registry sees it, so the registry's own gates never record it.
:func:`record_refusal` records it anyway, as an entry of the same hash chain
with a signed decision like any denied change (``accepted: false``, the
decision's ``verificationResult`` ``FAILED``), so ``audit log`` shows it and
``audit verify --deep`` checks its signature. :func:`record_refusal_summary`
records how many refusals of one principal a front end left out of the trail
(its flood bound).

Nothing changes state: ``audit verify``'s replay skips entries that were not
accepted, so readers that predate these kinds verify logs holding them.
Every string is bounded and checked here (the caller is a server, but its
strings come from requests): names by the registry's own rules, free text
printable and short, actions from a closed alphabet. They are stored as
JSON values inside the hashed body, never parsed back as anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlprov.canonical import canonical_json
from mlprov.errors import InputError
from mlprov.registry._gate import rule_outcome
from mlprov.registry._recorder import after_commit, record_change, retrying
from mlprov.registry._records import ChangeResult, PendingChange
from mlprov.registry._uri import check_name, check_version, sha256_digest

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["REFUSAL_KIND", "SUMMARY_KIND", "record_refusal", "record_refusal_summary"]

#: The audit entry (and event) kind of one refusal.
REFUSAL_KIND = "access.refused"
#: The kind of a count of refusals left out of the trail.
SUMMARY_KIND = "access.refused-summary"
#: The built-in rule the decisions of refusals name.
_RULE = "server-authorization"

_ACTION = re.compile(r"[a-z][a-z-]{0,31}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
MAX_ACTOR = 200
MAX_REASON = 1000
MAX_TEXT = 300
#: The audit table's ``target`` column holds at most 120 characters (a stage, an alias).
MAX_TARGET = 120


def _text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit \
            or not value.isprintable():
        raise InputError(f"invalid {what} for a refusal entry (printable text, 1 to {limit} "
                         "characters)")
    return value


def _action(value: str) -> str:
    if not isinstance(value, str) or not _ACTION.fullmatch(value):
        raise InputError(f"invalid action {value[:40]!r} for a refusal entry",
                         hint="lower-case letters and -, e.g. promote, alias, read")
    return value


def _time(value: str, what: str) -> str:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise InputError(f"invalid {what} for a refusal summary (RFC 3339, UTC, Z)")
    return value


def _pending(registry: RegistryContext, kind: str, *, actor: str, name: str | None,
             version: int | None, target: str | None, reason: str,
             details: dict[str, Any]) -> PendingChange:
    registry_id = registry.settings.registry_id
    subject = sha256_digest(canonical_json({"kind": kind, "actor": actor, "name": name,
                                            "version": version, "target": target,
                                            "details": details}))
    return PendingChange(
        kind=kind, name=name, version=version, target=target, actor=actor, reason=None,
        outcome=rule_outcome(_RULE, allowed=False, deny=(reason,)),
        subject_name=f"mlprov-registry:{registry_id}", subject_digest=subject,
        resource_uri=f"mlprov-registry:{registry_id}", inputs={},
        change=dict(details), details=details, event_kind=kind)


def _record(registry: RegistryContext, pending: PendingChange) -> ChangeResult:
    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            return record_change(registry, tx, pending)

    return after_commit(registry, retrying(run), raise_denied=False)


def record_refusal(registry: RegistryContext, *, actor: str, action: str, reason: str,
                   name: str | None = None, version: int | None = None,
                   target: str | None = None, permission: str | None = None,
                   via: str | None = None, endpoint: str | None = None) -> ChangeResult:
    """Record that ``actor`` was refused ``action`` (see the module docstring)."""
    _text(actor, "principal", MAX_ACTOR)
    _action(action)
    _text(reason, "reason", MAX_REASON)
    if name is not None:
        check_name(name)
    if version is not None:
        check_version(version)
    if target is not None:
        _text(target, "target", MAX_TARGET)
    details: dict[str, Any] = {"action": action}
    for key, value in (("permission", permission), ("via", via), ("endpoint", endpoint)):
        if value is not None:
            details[key] = _text(value, key, MAX_TEXT)
    return _record(registry, _pending(registry, REFUSAL_KIND, actor=actor, name=name,
                                      version=version, target=target, reason=reason,
                                      details=details))


def record_refusal_summary(registry: RegistryContext, *, actor: str, count: int, first: str,
                           last: str, actions: Mapping[str, int]) -> ChangeResult:
    """Record that ``count`` refusals of ``actor`` between ``first`` and ``last`` were left out."""
    _text(actor, "principal", MAX_ACTOR)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count < 10**12:
        raise InputError("a refusal summary counts 1 or more refusals")
    if len(actions) > 32:
        raise InputError("a refusal summary names at most 32 actions")
    counts: dict[str, int] = {}
    for action, number in actions.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InputError("a refusal summary's counts are positive integers")
        counts[_action(action)] = number
    details = {"count": count, "first": _time(first, "first"), "last": _time(last, "last"),
               "actions": counts}
    reason = (f"{count} more refusal(s) of {actor} between {first} and {last} were not "
              "recorded one by one (the server's bound)")
    return _record(registry, _pending(registry, SUMMARY_KIND, actor=actor, name=None,
                                      version=None, target=None, reason=reason,
                                      details=details))
