"""The registry's records and errors: what its operations return, raise and pass around.

Every part of the registry package uses these, and none of them uses anything of
the package but its store interfaces, so they sit below the façade
(:mod:`mlprov.registry._core`), the recorder, the gatekeeper and the modules of
operations.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.canonical import loads_strict
from mlprov.errors import VerificationError
from mlprov.registry._catalog import need_model
from mlprov.registry._gate import GateOutcome
from mlprov.registry._uri import ModelUri, version_uri
from mlprov.registry.interface import (
    NotFoundError,
    ReadTransaction,
    RegistryError,
    Stage,
    VersionRecord,
)

if TYPE_CHECKING:
    from mlprov.thresholds import Thresholds

__all__ = [
    "ACTOR_ENV",
    "AliasChange",
    "ArchivedVersionError",
    "ChangeResult",
    "GatePolicy",
    "PendingChange",
    "PolicyDeniedError",
    "PullResult",
    "RegisterResult",
    "RegistrationRefusedError",
    "Resolved",
    "default_actor",
    "dumps_event",
    "event_document",
    "need_version",
    "resolve_uri",
    "rollback_target",
]

ACTOR_ENV = "MLPROV_ACTOR"


class PolicyDeniedError(VerificationError):
    """The policy gating a change said no; the denial was audited."""

    hint = "the reasons are the policy's; fix them (e.g. add a review) and try again"

    def __init__(self, message: str, *, result: ChangeResult, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


class ArchivedVersionError(RegistryError):
    """An alias, stage or ``latest`` URI leads to an Archived version: not handed out."""

    hint = ("point the alias at a version in use (`mlprov rollback`, `mlprov alias set`), "
            "or pass --allow-archived to take it anyway (audited)")


class RegistrationRefusedError(VerificationError):
    """The model or its evidence did not verify against the registry's trust (audited)."""

    hint = "run `mlprov verify MODEL --evidence DIR --trust TRUST` to see every failed check"


@dataclass(frozen=True)
class RegisterResult:
    """What ``register`` did."""

    name: str
    version: int
    identity: str
    root_digest: str
    created: bool
    reproducible: bool
    same_identity: tuple[int, ...]
    decision: str | None
    seq: int | None

    @property
    def uri(self) -> str:
        """``models:/NAME/N``."""
        return version_uri(self.name, self.version)


@dataclass(frozen=True)
class ChangeResult:
    """What a gated change decided, and where it is recorded."""

    kind: str
    name: str
    version: int | None
    target: str | None
    allowed: bool
    deny: tuple[str, ...]
    warn: tuple[str, ...]
    policy_uri: str
    policy_digest: str
    decision: str
    seq: int
    previous: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    #: A dry run: the gate was evaluated, nothing was signed or recorded
    #: (``decision`` is empty and ``seq`` 0).
    dry_run: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        """The result as printed with ``--json``."""
        return {"kind": self.kind, "name": self.name, "version": self.version,
                "target": self.target, "allowed": self.allowed, "deny": list(self.deny),
                "warn": list(self.warn), "policy": {"uri": self.policy_uri,
                                                    "digest": self.policy_digest},
                "decision": self.decision or None, "auditSeq": self.seq or None,
                "previous": self.previous, "details": self.details, "dryRun": self.dry_run}


@dataclass(frozen=True)
class Resolved:
    """A URI resolved to a version, with the decision that put it there."""

    uri: str
    record: VersionRecord
    decision: str
    via: str

    @property
    def name(self) -> str:
        """The model's name."""
        return self.record.name

    @property
    def version(self) -> int:
        """The version number."""
        return self.record.version

    def to_json_dict(self) -> dict[str, Any]:
        """The resolution as printed by ``mlprov resolve --json``."""
        r = self.record
        return {"uri": self.uri, "name": r.name, "version": r.version,
                "versionUri": version_uri(r.name, r.version), "stage": r.stage.value,
                "identity": r.identity, "rootDigest": r.root_digest,
                "reproducible": r.reproducible, "decision": self.decision, "via": self.via}


def default_actor() -> str:
    """Who is making a change: ``$MLPROV_ACTOR``, else ``user@host`` (a claim, not proof)."""
    value = os.environ.get(ACTOR_ENV)
    if value:
        return value
    import getpass  # here: socket costs a read command's start-up (issue 16) for nothing
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class PendingChange:
    """A change being recorded inside a write transaction."""

    kind: str
    name: str | None
    version: int | None
    target: str | None
    actor: str
    reason: str | None
    outcome: GateOutcome
    subject_name: str
    subject_digest: str
    resource_uri: str
    inputs: dict[str, str]
    change: dict[str, Any]
    details: dict[str, Any]
    event_kind: str | None = None


@dataclass(frozen=True)
class GatePolicy:
    """The registry's gate for one kind of move (see :meth:`Registry.gate_policy`).

    ``gate`` is the policy file's name, ``"none"`` (ungated) or None (no gate:
    refused); ``path`` the policy file; ``data`` the data file the config names
    (None: the policy's own); ``thresholds`` the registry's.
    """

    gate: str | None
    path: Path | None
    data: Path | None
    thresholds: Thresholds


@dataclass(frozen=True)
class AliasChange:
    """One accepted change of an alias, from the audit log."""

    seq: int
    time: str
    kind: str
    version: int | None
    actor: str
    reason: str | None
    decision: str | None

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov alias history --json``."""
        return {"seq": self.seq, "time": self.time, "kind": self.kind, "version": self.version,
                "actor": self.actor, "reason": self.reason, "decision": self.decision}


@dataclass(frozen=True)
class PullResult:
    """What ``pull`` wrote."""

    resolved: Resolved
    path: Path
    files: int
    bytes: int


# ---------------------------------------------------------------------- helpers


#: The audit entry kinds that change a setting, and the setting each changes.


def denied_message(result: ChangeResult) -> str:
    what = {
        "stage.transition": f"moving {result.name} v{result.version} to "
                            f"{result.details.get('to')}",
        "alias.set": f"pointing {result.name}@{result.details.get('alias')} at "
                     f"v{result.version}",
        "alias.rollback": f"rolling {result.name}@{result.details.get('alias')} back to "
                          f"v{result.version}",
    }.get(result.kind, f"{result.kind} of {result.name}")
    policy = result.policy_uri.rsplit("/", 1)[-1]
    reasons = "; ".join(result.deny) or "no reason given"
    return f"denied by {policy}: {what}: {reasons} (audit entry {result.seq})"


def need_version(tx: ReadTransaction, name: str, version: int, *,
                 deleted: bool = False) -> VersionRecord:
    """The version ``name`` ``version``; a deleted one (or a deleted model's) with ``deleted``.

    Raises:
        NotFoundError: unknown model (renamed: the hint names the new name) or
            version, or deleted.
    """
    record = tx.get_version(name, version)
    need_model(tx, name, deleted=deleted)
    if record is None:
        raise NotFoundError(f"{name} has no version {version}",
                            hint=f"`mlprov models show {name}` lists its versions")
    if record.deleted_seq is not None and not deleted:
        raise NotFoundError(f"{name} v{version} was deleted (audit entry {record.deleted_seq})",
                            hint="a deleted version is not resolved, pulled or changed; its "
                                 f"history stays: `mlprov audit log --name {name}`")
    return record


def rollback_target(history: list[AliasChange]) -> int | None:
    """The version a rollback without ``--to`` goes to, from the alias's history.

    The most recent earlier target that is not the current one and that the
    alias was never rolled back *from*: after v1, v2, v3 and a rollback to v2,
    the next rollback goes to v1, not back to v3.
    """
    if not history:
        return None
    current = history[-1].version
    rolled_back_from = {history[i - 1].version for i, change in enumerate(history)
                        if change.kind == "alias.rollback" and i > 0}
    for change in reversed(history[:-1]):
        if change.version is not None and change.version != current \
                and change.version not in rolled_back_from:
            return change.version
    return None


def resolve_uri(tx: ReadTransaction, uri: ModelUri, *, allow_archived: bool = False) -> Resolved:
    resolved = _lookup(tx, uri)
    if resolved.record.stage is Stage.ARCHIVED and resolved.via != "version" \
            and not allow_archived:
        record = resolved.record
        raise ArchivedVersionError(
            f"{uri} leads to {record.name} v{record.version}, which is in stage Archived: "
            "not handed out")
    return resolved


def _lookup(tx: ReadTransaction, uri: ModelUri) -> Resolved:
    name = uri.name
    need_model(tx, name)
    if uri.alias is not None:
        alias = tx.get_alias(name, uri.alias)
        if alias is None:
            raise NotFoundError(f"{name} has no alias {uri.alias!r}",
                                hint=f"`mlprov models show {name}` lists its aliases")
        record = need_version(tx, name, alias.version)
        return Resolved(uri=str(uri), record=record, decision=alias.decision,
                        via=f"@{uri.alias}")
    if uri.version is not None:
        record = need_version(tx, name, uri.version)
        return Resolved(uri=str(uri), record=record, decision=record.registration,
                        via="version")
    if uri.stage is not None:
        found = tx.list_versions(name, stage=uri.stage, limit=1, descending=True)
        if not found:
            raise NotFoundError(f"{name} has no version in stage {uri.stage.value}")
        record = found[0]
        return Resolved(uri=str(uri), record=record,
                        decision=record.stage_decision or record.registration, via="stage")
    latest = tx.list_versions(name, limit=1, descending=True)
    if not latest:
        raise NotFoundError(f"{name} has no versions")
    return Resolved(uri=str(uri), record=latest[0], decision=latest[0].registration,
                    via="latest")


def event_document(record: Any) -> dict[str, Any]:
    """An event as delivered and printed: its stored payload plus its id."""
    payload = loads_strict(record.payload, what=f"event {record.id}")
    assert isinstance(payload, dict)
    return {"id": record.id, **payload}


def dumps_event(record: Any) -> bytes:
    """The bytes a hook receives for an event."""
    return json.dumps(event_document(record), sort_keys=True).encode("utf-8")
