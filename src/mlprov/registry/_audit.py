"""The audit log: append-only entries, each hash-chained to the one before.

An entry's body is RFC 8785 canonical JSON holding its sequence number, the
previous entry's hash (``prev``), the time, what was asked and what was
decided; its hash is SHA-256 over those bytes. Editing, deleting or reordering
an entry changes a hash that the next entry (and any signed checkpoint after
it) names. The queryable columns beside the body are copies, checked against it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError
from mlprov.registry.interface import AuditRecord

__all__ = [
    "AUDIT_SCHEMA",
    "GENESIS",
    "ChainProblem",
    "check_entry",
    "entry_from_record",
    "make_entry",
]

AUDIT_SCHEMA = "https://mlprov.dev/schemas/audit-entry/v1"
#: ``prev`` of the first entry.
GENESIS = "sha256:" + "0" * 64


def make_entry(*, seq: int, prev: str, time: str, kind: str, accepted: bool, actor: str,
               reason: str | None, name: str | None = None, version: int | None = None,
               target: str | None = None, decision: str | None = None,
               details: dict[str, Any] | None = None) -> AuditRecord:
    """Build an entry and its hash; the columns are copied from the body."""
    body: dict[str, Any] = {
        "schema": AUDIT_SCHEMA, "seq": seq, "prev": prev, "time": time, "kind": kind,
        "accepted": accepted, "actor": actor, "name": name, "version": version,
        "target": target, "decision": decision, "details": details or {},
    }
    if reason is not None:
        body["reason"] = reason
    data = canonical_json(body)
    return AuditRecord(seq=seq, time=time, kind=kind, name=name, version=version,
                       target=target, accepted=accepted, decision=decision, body=data,
                       entry_hash="sha256:" + hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class ChainProblem:
    """Something wrong with one entry of the chain."""

    seq: int
    problem: str


@dataclass
class Entry:
    """A parsed audit entry."""

    seq: int
    prev: str
    time: str
    kind: str
    accepted: bool
    actor: str
    name: str | None
    version: int | None
    target: str | None
    decision: str | None
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self, entry_hash: str) -> dict[str, Any]:
        """The entry as printed by ``mlprov audit log --json``."""
        out: dict[str, Any] = {
            "seq": self.seq, "time": self.time, "kind": self.kind, "accepted": self.accepted,
            "actor": self.actor, "name": self.name, "version": self.version,
            "target": self.target, "decision": self.decision, "reason": self.reason,
            "details": self.details, "prev": self.prev, "hash": entry_hash,
        }
        return out


def entry_from_record(record: AuditRecord) -> Entry:
    """Parse an entry's body (no checks beyond shape).

    Raises:
        InputError: the body is not an audit entry.
    """
    body = loads_strict(record.body, what=f"audit entry {record.seq}")
    if not isinstance(body, dict) or body.get("schema") != AUDIT_SCHEMA:
        raise InputError(f"audit entry {record.seq} has an unknown schema")
    try:
        return Entry(seq=body["seq"], prev=body["prev"], time=body["time"], kind=body["kind"],
                     accepted=body["accepted"], actor=body["actor"], name=body["name"],
                     version=body["version"], target=body["target"],
                     decision=body["decision"], reason=body.get("reason"),
                     details=body.get("details") or {})
    except (KeyError, TypeError) as exc:
        raise InputError(f"audit entry {record.seq} is malformed: missing {exc}") from exc


def check_entry(record: AuditRecord, prev_hash: str, expected_seq: int
                ) -> tuple[Entry | None, list[ChainProblem]]:
    """Check one entry against its predecessor's hash and its own columns."""
    problems: list[ChainProblem] = []
    seq = record.seq
    if seq != expected_seq:
        problems.append(ChainProblem(expected_seq, f"entry {expected_seq} is missing "
                                                   f"(next stored entry is {seq})"))
    actual = "sha256:" + hashlib.sha256(record.body).hexdigest()
    if actual != record.entry_hash:
        problems.append(ChainProblem(seq, f"entry {seq} was modified: its body no longer "
                                          "matches its hash"))
    try:
        entry = entry_from_record(record)
    except InputError as exc:
        problems.append(ChainProblem(seq, str(exc)))
        return None, problems
    if entry.seq != seq:
        problems.append(ChainProblem(seq, f"entry stored as {seq} says it is entry "
                                          f"{entry.seq} (entries reordered)"))
    if entry.prev != prev_hash:
        problems.append(ChainProblem(seq, f"entry {seq} does not chain to entry {seq - 1} "
                                          "(an entry before it was changed, removed or "
                                          "reordered)"))
    columns = {"time": record.time, "kind": record.kind, "name": record.name,
               "version": record.version, "target": record.target,
               "accepted": record.accepted, "decision": record.decision}
    body = {"time": entry.time, "kind": entry.kind, "name": entry.name,
            "version": entry.version, "target": entry.target, "accepted": entry.accepted,
            "decision": entry.decision}
    changed = sorted(k for k in columns if columns[k] != body[k])
    if changed:
        problems.append(ChainProblem(seq, f"entry {seq}'s columns {', '.join(changed)} were "
                                          "changed (they differ from the hashed body)"))
    return entry, problems
