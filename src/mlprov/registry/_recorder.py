"""The change recorder: every change to a registry is signed, applied, audited and announced here.

Every mutation runs in one write transaction (SQLite ``BEGIN IMMEDIATE``):
re-verify the version from the blob store, evaluate the gate's policy (both in
:mod:`._gatekeeper`), then :func:`record_change`: sign a decision (SLSA VSA v1)
with the registry key, write the state change (only if allowed), append the
audit entry chained to the previous one, enqueue the event, sign a checkpoint
every N entries and sign the new head. Blobs are made durable before the rows
that name them, so a crash at any point leaves either the whole change or none
of it (plus, at worst, unreferenced blobs, which are harmless).

:func:`retrying` re-runs a change a store refused for a conflict;
:func:`after_commit` mirrors the head, delivers hooks and raises for a denial.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlprov.canonical import canonical_json
from mlprov.errors import MlprovError
from mlprov.registry import _faults
from mlprov.registry._audit import GENESIS, make_entry
from mlprov.registry._decisions import (
    CHECKPOINT_PREDICATE,
    build_checkpoint,
    build_decision,
    sign,
    verify_signed,
)
from mlprov.registry._facts import RegistryIntegrityError
from mlprov.registry._head import SETTINGS, check_setting, read_head, sign_head
from mlprov.registry._home import HEAD_FILE, write_file_atomically
from mlprov.registry._records import ChangeResult, PendingChange, PolicyDeniedError, denied_message
from mlprov.registry._uri import sha256_digest, utc_now
from mlprov.registry.interface import (
    AuditRecord,
    CheckpointRecord,
    ReadTransaction,
    StoreConflictError,
    WriteTransaction,
)

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.trust import Trust

__all__ = ["EVENT_SCHEMA", "after_commit", "change_tx", "checkpoint_every", "record_change",
           "retrying", "sign_checkpoint", "write_head"]

EVENT_SCHEMA = "https://mlprov.dev/schemas/event/v1"
CONFLICT_RETRIES = 5
#: The setting each registry-config change replaces (named again in the new head).
_SETTING_KINDS = {"registry.trust": "trust", "registry.policies": "policies",
                  "registry.config": "config", "registry.thresholds": "thresholds"}

T = TypeVar("T")


def record_change(registry: RegistryContext, tx: WriteTransaction, pending: PendingChange,
                  apply: Callable[[str, int, str], None] | None = None) -> ChangeResult:
    """Sign the decision, apply the change if allowed, append the audit entry and event.

    ``apply(decision_digest, seq, time)`` writes the state change; it runs in
    ``tx`` after the signed decision is durable and only when the gate allowed.
    """
    settings_now = registry.settings
    head = tx.audit_head()
    seq = head.seq + 1 if head else 1
    prev = head.entry_hash if head else GENESIS
    settings = _settings_before(registry, tx, pending, seq, prev)
    now = utc_now()
    outcome = pending.outcome
    change = {
        "kind": pending.kind, "registry": settings_now.registry_id, "auditSeq": seq,
        "prevEntryHash": prev, "actor": pending.actor, **pending.change,
    }
    if pending.reason is not None:
        change["reason"] = pending.reason
    if outcome.input_digest:
        change["policyInputDigest"] = outcome.input_digest
    if outcome.deny:
        change["deny"] = list(outcome.deny)
    if outcome.warn:
        change["warn"] = list(outcome.warn)
    statement = build_decision(
        subject_name=pending.subject_name, root_digest=pending.subject_digest,
        resource_uri=pending.resource_uri, policy_uri=outcome.policy_uri,
        policy_digest=outcome.policy_digest, inputs=pending.inputs,
        passed=outcome.allowed, time=now, change=change)
    bundle = sign(statement, settings_now.signer)
    decision = sha256_digest(bundle)
    tx.put_decision(decision, bundle)  # durable with the entry: one commit
    if outcome.allowed and apply is not None:
        apply(decision, seq, now)
    details = {**pending.details,
               "policy": {"uri": outcome.policy_uri, "digest": outcome.policy_digest}}
    if outcome.input_digest:
        details["policyInputDigest"] = outcome.input_digest
    if outcome.deny:
        details["deny"] = list(outcome.deny)
    if outcome.warn:
        details["warn"] = list(outcome.warn)
    entry = make_entry(seq=seq, prev=prev, time=now, kind=pending.kind,
                       accepted=outcome.allowed, actor=pending.actor, reason=pending.reason,
                       name=pending.name, version=pending.version, target=pending.target,
                       decision=decision, details=details)
    tx.append_audit(entry)
    _enqueue_event(registry, tx, entry, pending, details)
    if seq % checkpoint_every(registry) == 0:
        sign_checkpoint(registry, tx, seq, entry.entry_hash, now)
    changed = _SETTING_KINDS.get(pending.kind)
    if settings is None:  # registry.init: the settings it just wrote
        settings = {k: v for k in SETTINGS if (v := tx.get_state(k)) is not None}
    elif changed is not None and outcome.allowed:
        settings[changed] = tx.get_state(changed) or ""
    sign_head(tx, registry_id=settings_now.registry_id, seq=seq, entry_hash=entry.entry_hash,
              time=now, signer=settings_now.signer, settings=settings)
    _faults.point("change.before-commit")
    return ChangeResult(kind=pending.kind, name=pending.name or "", version=pending.version,
                        target=pending.target, allowed=outcome.allowed, deny=outcome.deny,
                        warn=outcome.warn, policy_uri=outcome.policy_uri,
                        policy_digest=outcome.policy_digest, decision=decision, seq=seq,
                        previous=pending.details.get("from"), details=details)


def _settings_before(registry: RegistryContext, tx: WriteTransaction, pending: PendingChange,
                     seq: int, prev: str) -> dict[str, str] | None:
    """The signed settings a change starts from (None for ``registry.init``).

    The previous head must verify with the anchor and name the previous entry,
    and the store's settings must be the signed ones: otherwise nothing is
    signed or recorded, so a change never launders a row edited outside the
    registry into a new signed head.

    Raises:
        RegistryIntegrityError: the head or a setting was changed outside the registry.
    """
    if pending.kind == "registry.init":
        return None
    registry_id = registry.settings.registry_id
    anchor = registry.settings.anchor
    previous = read_head(tx, registry_id=registry_id, anchor=anchor, anchor_id=id(anchor))
    if previous.seq != seq - 1 or previous.entry_hash != prev:
        raise RegistryIntegrityError(
            f"the audit log ends at entry {seq - 1}, but the registry signed its head at "
            f"entry {previous.seq}: the log was cut or rolled back; nothing was recorded")
    for key in SETTINGS:
        check_setting(tx, previous, key)
    if registry.settings.is_stale(previous.settings):
        # Another process changed a setting since this one read it: decide again on
        # the settings now in force (retrying() runs the whole change once more).
        registry.settings.forget()
        raise StoreConflictError("the registry's settings changed while the change was "
                                 "prepared")
    return dict(previous.settings)


def checkpoint_every(registry: RegistryContext) -> int:
    """How often (in entries) a checkpoint is signed."""
    try:
        return registry.settings.config.checkpoint_every
    except MlprovError:
        return 100


def _enqueue_event(registry: RegistryContext, tx: WriteTransaction, entry: AuditRecord,
                   pending: PendingChange, details: dict[str, Any]) -> None:
    kind = pending.event_kind or (entry.kind if entry.accepted else "change.denied")
    payload = canonical_json({
        "schema": EVENT_SCHEMA, "kind": kind, "change": entry.kind,
        "time": entry.time, "registry": registry.settings.registry_id, "auditSeq": entry.seq,
        "name": entry.name, "version": entry.version, "target": entry.target,
        "accepted": entry.accepted, "actor": pending.actor, "reason": pending.reason,
        "decision": entry.decision, "details": details,
    })
    event_id = tx.insert_event(entry.seq, kind, entry.time, payload)
    try:
        hooks = registry.settings.config.hooks
    except MlprovError:
        hooks = ()
    for hook in hooks:
        if hook.wants(kind):
            tx.insert_delivery(event_id, hook.name, time.time())


def sign_checkpoint(registry: RegistryContext, tx: WriteTransaction, seq: int, entry_hash: str,
                    now: str) -> bytes:
    """Sign a checkpoint of the audit log at entry ``seq`` and store it in ``tx``."""
    statement = build_checkpoint(registry_id=registry.settings.registry_id, seq=seq,
                                 entry_hash=entry_hash, time=now)
    bundle = sign(statement, registry.settings.signer)
    tx.insert_checkpoint(CheckpointRecord(seq=seq, entry_hash=entry_hash, time=now,
                                          bundle=bundle))
    return bundle


def write_head(registry: RegistryContext, bundle: bytes, seq: int) -> None:
    """Mirror a checkpoint to ``head.json`` unless a newer one is there (best effort)."""
    path = registry.home / HEAD_FILE
    lock = registry.home / ".head.lock"
    try:
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            current = _head_seq(path, registry.settings.trust)
            if current is None or current < seq:
                write_file_atomically(path, bundle, 0o644)
    except (OSError, MlprovError):
        return


def _head_seq(path: Path, trust: Trust) -> int | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    signed = verify_signed(data, trust, what=HEAD_FILE, predicate_type=CHECKPOINT_PREDICATE)
    seq = signed.predicate.get("seq")
    return seq if isinstance(seq, int) else None


def change_tx(registry: RegistryContext, dry_run: bool
              ) -> contextlib.AbstractContextManager[ReadTransaction]:
    """A write transaction, or (dry run) a read one: a dry run writes nothing."""
    return registry.metadata.read() if dry_run else registry.metadata.write()


def retrying(fn: Callable[[], T]) -> T:
    """Run ``fn`` (one transaction), again when the store reports a conflict (5 tries)."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            return fn()
        except StoreConflictError:
            if attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def after_commit(registry: RegistryContext, result: ChangeResult, *,
                 raise_denied: bool = True) -> ChangeResult:
    """Deliver hooks (never failing the change), then raise if it was denied.

    ``raise_denied=False``: a denial is the expected outcome (a refusal recorded
    for a front end, :mod:`._refusals`), returned rather than raised.
    """
    if result.seq % checkpoint_every(registry) == 0:
        with contextlib.suppress(MlprovError):
            with registry.metadata.read() as tx:
                record = next((c for c in tx.checkpoints() if c.seq == result.seq), None)
            if record is not None:
                write_head(registry, record.bundle, record.seq)
    with contextlib.suppress(Exception):
        config = registry.settings.config
        if config.deliver_after_commit and config.hooks:
            from mlprov.registry._events import deliver_due

            deliver_due(registry, seq=result.seq)
    if not result.allowed and raise_denied:
        raise PolicyDeniedError(denied_message(result), result=result)
    return result
