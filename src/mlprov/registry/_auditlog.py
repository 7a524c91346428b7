"""``mlprov audit verify``: prove the log was not changed, dropped or reordered.

Checks, in one pass over the log:

- the hash chain: each body hashes to its stored hash, names its predecessor's
  hash and its own sequence number, and matches its queryable columns;
- every signed checkpoint (in the database and ``head.json``, and one given by
  the caller, e.g. saved by CI earlier): signed by a key with the registry
  role, naming an entry that exists with that hash. A checkpoint past the end
  of the log means the tail was truncated;
- the signed decisions of every entry after the last checkpoint (all with
  ``deep``): each names its entry's sequence number, predecessor hash, kind
  and outcome, so a re-hashed rewrite of the unsigned tail is caught. A
  ``deep`` run that holds records, in this user's cache, the entry it
  verified through; the next ``deep`` run checks the signatures after it
  only (before it: each decision's bytes against the digest its hashed entry
  names, and that entry's hash against the recorded one), unless ``full``;
- replay: the current versions, stages, aliases and settings recomputed from
  the log equal the tables, so a row edited directly is caught.

Read-only, unless ``sign_checkpoint`` (``mlprov audit checkpoint``): then, when
everything holds, a new checkpoint of the head is signed and stored.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mlprov.errors import MlprovError, VerificationError
from mlprov.registry import _recorder
from mlprov.registry._audit import GENESIS, Entry, check_entry
from mlprov.registry._decisions import (
    CHECKPOINT_PREDICATE,
    VSA_PREDICATE,
    change_of,
    verify_signed,
)
from mlprov.registry._home import HEAD_FILE
from mlprov.registry._uri import utc_now
from mlprov.registry.interface import CheckpointRecord, ReadTransaction, RegistryError

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["AuditReport", "checkpoint", "export_head", "verify_audit"]

_K = TypeVar("_K", bound=tuple[Any, ...])
_V = TypeVar("_V")


@dataclass
class AuditReport:
    """The outcome of ``audit verify``."""

    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    checkpoints: int = 0
    decisions: int = 0
    decisions_known: int = 0
    verified_through: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    new_checkpoint: int | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return not self.problems

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov audit verify --json``."""
        return {"schema": "https://mlprov.dev/schemas/audit-verify/v1", "ok": self.ok,
                "entries": self.entries, "head": {"seq": self.head_seq, "hash": self.head_hash},
                "checkpointsVerified": self.checkpoints, "decisionsVerified": self.decisions,
                "decisionsVerifiedEarlier": self.decisions_known,
                "deepVerifiedThrough": self.verified_through,
                "problems": self.problems, "warnings": self.warnings,
                "newCheckpoint": self.new_checkpoint}


@dataclass
class _Replay:
    """The state recomputed from accepted entries, keyed by the models' names now."""

    versions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    stages: dict[tuple[str, int], tuple[str, str | None]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    deployments: dict[tuple[str, int], tuple[str, str, str | None]] = field(
        default_factory=dict)
    deployment_stages: dict[tuple[str, int], tuple[str, str | None]] = field(
        default_factory=dict)
    #: The catalog: model -> deleting entry (None: in use); descriptions and tags of
    #: models (version None) and versions; deleted versions; renames.
    models: dict[str, int | None] = field(default_factory=dict)
    descriptions: dict[tuple[str, int | None], str] = field(default_factory=dict)
    tags: dict[tuple[str, int | None], dict[str, str]] = field(default_factory=dict)
    deleted: dict[tuple[str, int], int] = field(default_factory=dict)
    renames: list[tuple[str, str, int, str | None]] = field(default_factory=list)

    def apply(self, entry: Entry) -> None:
        if not entry.accepted:
            return
        details = entry.details
        key = (entry.name or "", entry.version or 0)
        if entry.kind == "model.register":
            metrics = details.get("metrics")
            self.versions[key] = {"identity": details.get("identity"),
                                  "root": details.get("rootDigest"), "decision": entry.decision,
                                  "metrics": metrics if isinstance(metrics, dict) else {}}
            self.models[entry.name or ""] = None  # (again) in use
        elif entry.kind == "stage.transition":
            self.stages[key] = (str(details.get("to")), entry.decision)
        elif entry.kind in ("alias.set", "alias.rollback"):
            self.aliases[(entry.name or "", str(details.get("alias")))] = (
                entry.version or 0, entry.decision)
        elif entry.kind == "alias.delete":
            self.aliases.pop((entry.name or "", str(details.get("alias"))), None)
        elif entry.kind == "registry.init":
            for setting in ("trust", "policies", "config", "signing"):
                if isinstance(details.get(setting), str):
                    self.settings[setting] = details[setting]
        elif entry.kind == "deployment.create":
            self.deployments[key] = (str(details.get("spec")), str(details.get("statement")),
                                     entry.decision)
        elif entry.kind == "deployment.transition":
            self.deployment_stages[key] = (str(details.get("to")), entry.decision)
        elif entry.kind in ("registry.trust", "registry.policies", "registry.config"):
            self.settings[entry.kind.split(".", 1)[1]] = str(details.get("to"))
        else:
            self._apply_catalog(entry, details)

    def _apply_catalog(self, entry: Entry, details: dict[str, Any]) -> None:
        name = entry.name or ""
        version = entry.version if entry.kind.startswith("version.") else None
        if entry.kind in ("model.describe", "version.describe"):
            text = details.get("to")
            if isinstance(text, str):
                self.descriptions[(name, version)] = text
            else:
                self.descriptions.pop((name, version), None)
        elif entry.kind in ("model.tag", "version.tag"):
            tags = self.tags.setdefault((name, version), {})
            value = details.get("to")
            if isinstance(value, str):
                tags[str(details.get("key"))] = value
            else:
                tags.pop(str(details.get("key")), None)
        elif entry.kind == "version.delete":
            self.deleted[(name, entry.version or 0)] = entry.seq
        elif entry.kind == "model.delete":
            self.models[name] = entry.seq
            for number in details.get("versions") or []:
                self.deleted[(name, number)] = entry.seq
        elif entry.kind == "model.rename":
            old, new = str(details.get("from")), str(details.get("to"))
            self.renames.append((old, new, entry.seq, entry.decision))
            self._rename(old, new)

    def _rename(self, old: str, new: str) -> None:
        """Everything the model had under ``old`` is under ``new`` now."""
        _move(self.versions, old, new)
        _move(self.stages, old, new)
        _move(self.aliases, old, new)
        _move(self.descriptions, old, new)
        _move(self.tags, old, new)
        _move(self.deleted, old, new)
        if old in self.models:
            self.models[new] = self.models.pop(old)


def _move(table: dict[_K, _V], old: str, new: str) -> None:
    """Re-key every ``(old, ...)`` entry of ``table`` as ``(new, ...)``."""
    for key in [k for k in table if k[0] == old]:
        table[cast(_K, (new, *key[1:]))] = table.pop(key)


def _check_checkpoint(bundle: bytes, hashes: dict[int, str], head: int, registry: RegistryContext,
                      what: str, report: AuditReport, stored: CheckpointRecord | None = None
                      ) -> None:
    try:
        signed = verify_signed(bundle, registry.settings.anchor, what=what,
                               predicate_type=CHECKPOINT_PREDICATE)
    except MlprovError as exc:
        report.problems.append(f"{what}: {exc}")
        return
    predicate = signed.predicate
    seq, entry_hash = predicate.get("seq"), predicate.get("entryHash")
    if not isinstance(seq, int) or not isinstance(entry_hash, str):
        report.problems.append(f"{what} is malformed")
        return
    if predicate.get("registry") != registry.settings.registry_id:
        report.problems.append(f"{what} belongs to another registry")
        return
    if stored is not None and (stored.seq != seq or stored.entry_hash != entry_hash):
        report.problems.append(f"{what}: its row was changed (it signs entry {seq})")
        return
    if seq > head:
        report.problems.append(f"{what} signs entry {seq}, but the log ends at entry {head}: "
                               "the log was truncated")
        return
    if hashes.get(seq) != entry_hash:
        report.problems.append(f"{what} signs another hash for entry {seq}: the log before it "
                               "was rewritten")
        return
    report.checkpoints += 1


def _check_decision(registry: RegistryContext, tx: ReadTransaction, entry: Entry,
                    report: AuditReport) -> None:
    from mlprov.registry._facts import read_decision

    if entry.decision is None:
        report.problems.append(f"audit entry {entry.seq} ({entry.kind}) carries no signed "
                               "decision: it was not written by the registry")
        return
    what = f"decision of audit entry {entry.seq}"
    try:
        decision = verify_signed(read_decision(tx.get_decision, entry.decision),
                                 registry.settings.anchor, what=what, predicate_type=VSA_PREDICATE)
    except MlprovError as exc:
        report.problems.append(f"{what}: {exc}")
        return
    change = change_of(decision)
    result = decision.predicate.get("verificationResult")
    expected = {"auditSeq": entry.seq, "prevEntryHash": entry.prev, "kind": entry.kind,
                "registry": registry.settings.registry_id}
    wrong = sorted(k for k, v in expected.items() if change.get(k) != v)
    if (result == "PASSED") != entry.accepted:
        wrong.append("verificationResult")
    if wrong:
        report.problems.append(f"audit entry {entry.seq} disagrees with its signed decision "
                               f"({', '.join(wrong)}): the entry was rewritten")
    else:
        report.decisions += 1


def _check_decision_bytes(tx: ReadTransaction, entry: Entry, report: AuditReport) -> None:
    """A decision an earlier ``--deep`` run verified: its bytes must still be its digest."""
    from mlprov.registry._facts import read_decision

    assert entry.decision is not None
    try:
        read_decision(tx.get_decision, entry.decision)
    except MlprovError as exc:
        report.problems.append(f"decision of audit entry {entry.seq}: {exc}")
    else:
        report.decisions_known += 1


def _replay_problems(tx: ReadTransaction, replay: _Replay) -> list[str]:
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    for record in tx.versions_for_replay():
        key = (record.name, record.version)
        seen.add(key)
        logged = replay.versions.get(key)
        label = f"{record.name} v{record.version}"
        if logged is None:
            problems.append(f"{label} is in the versions table but was never registered in "
                            "the log (row inserted directly)")
            continue
        if (logged["identity"], logged["root"], logged["decision"]) != (
                record.identity, record.root_digest, record.registration):
            problems.append(f"{label}: its row differs from its registration in the log")
        stage, decision = replay.stages.get(key, ("None", None))
        if (record.stage.value, record.stage_decision) != (stage, decision):
            problems.append(f"{label}: its stage row says {record.stage.value}, the log says "
                            f"{stage}")
        if record.deleted_seq != replay.deleted.get(key):
            problems.append(f"{label}: its row says it was deleted by entry "
                            f"{record.deleted_seq}, the log says {replay.deleted.get(key)}")
        if record.description != replay.descriptions.get(key):
            problems.append(f"{label}: its description differs from the log's")
    for gone in sorted(set(replay.versions) - seen):
        problems.append(f"{gone[0]} v{gone[1]} was registered in the log but its row is gone")
    rows: dict[tuple[str, str], tuple[int, str | None]] = {
        (a.name, a.alias): (a.version, a.decision) for a in tx.all_aliases()}
    for alias_key in sorted(set(rows) | set(replay.aliases)):
        row, logged_alias = rows.get(alias_key), replay.aliases.get(alias_key)
        if row != logged_alias:
            table = row[0] if row else None
            logged_version = logged_alias[0] if logged_alias else None
            problems.append(f"{alias_key[0]}@{alias_key[1]}: the alias table says {table}, "
                            f"the log says {logged_version}")
    seen_deployments: set[tuple[str, int]] = set()
    for deployment in tx.list_deployments():
        key = (deployment.name, deployment.version)
        seen_deployments.add(key)
        label = f"deployment {deployment.name} v{deployment.version}"
        if replay.deployments.get(key) != (deployment.spec_digest, deployment.statement,
                                           deployment.decision):
            problems.append(f"{label}: its row differs from its creation in the log")
        stage, decision = replay.deployment_stages.get(key, ("None", None))
        if (deployment.stage.value, deployment.stage_decision) != (stage, decision):
            problems.append(f"{label}: its stage row says {deployment.stage.value}, the log "
                            f"says {stage}")
    for name, number in sorted(set(replay.deployments) - seen_deployments):
        problems.append(f"deployment {name} v{number} was created in the log but its row is "
                        "gone")
    for setting, digest in replay.settings.items():
        if tx.get_state(setting) != digest:
            problems.append(f"the registry's {setting} differs from the last audited change")
    problems.extend(_catalog_problems(tx, replay))
    return problems


def _catalog_problems(tx: ReadTransaction, replay: _Replay) -> list[str]:
    """Models (names, tombstones, descriptions), tags, metrics and renames against the log."""
    problems: list[str] = []
    rows = {m.name: m for m in tx.all_models()}
    for name in sorted(set(rows) | set(replay.models)):
        row = rows.get(name)
        if row is None:
            problems.append(f"model {name} is in the log but its row is gone (or renamed "
                            "outside the registry)")
        elif name not in replay.models:
            problems.append(f"model {name} is in the models table but the log never "
                            "registered (or renamed to) it")
        else:
            if row.deleted_seq != replay.models[name]:
                problems.append(f"model {name}: its row says deleted by entry "
                                f"{row.deleted_seq}, the log says {replay.models[name]}")
            if row.description != replay.descriptions.get((name, None)):
                problems.append(f"model {name}: its description differs from the log's")
    stored: dict[tuple[str, int | None], dict[str, str]] = {}
    for tag in tx.all_tags():
        stored.setdefault((tag.name, tag.version), {})[tag.key] = tag.value
    logged = {k: v for k, v in replay.tags.items() if v}
    for where in sorted(set(stored) | set(logged), key=lambda k: (k[0], k[1] or 0)):
        if stored.get(where, {}) != logged.get(where, {}):
            label = where[0] if where[1] is None else f"{where[0]} v{where[1]}"
            keys = sorted(k for k in set(stored.get(where, {})) | set(logged.get(where, {}))
                          if stored.get(where, {}).get(k) != logged.get(where, {}).get(k))
            problems.append(f"{label}: its tag(s) {', '.join(keys)} differ from the log's")
    metrics = tx.all_metrics()
    for key in sorted(set(metrics) | {k for k, v in replay.versions.items() if v["metrics"]}):
        wanted = {k: float(v) for k, v in replay.versions.get(key, {}).get("metrics", {}).items()
                  if isinstance(v, int | float)}
        if metrics.get(key, {}) != wanted:
            problems.append(f"{key[0]} v{key[1]}: its indexed metrics differ from its "
                            "registration in the log")
    renames = [(r.old_name, r.new_name, r.seq, r.decision) for r in tx.all_renames()]
    if renames != replay.renames:
        problems.append("the renames table differs from the renames in the log")
    return problems


def verify_audit(registry: RegistryContext, *, deep: bool = False, checkpoint: Path | None = None,
                 sign_checkpoint: bool = True, full: bool = False) -> AuditReport:
    """Verify the whole audit log (see the module docstring)."""
    report = AuditReport()
    replay = _Replay()
    try:  # the signed head: the log must end where it says, settings as it names them
        registry.settings.head()
    except MlprovError as exc:
        report.problems.append(str(exc))
    marker = _deep_marker(registry) if deep else None
    with registry.metadata.read() as tx:
        known = 0 if marker is None or full else _known_through(tx, marker, report)
        stored_checkpoints = tx.checkpoints()
        wanted = {c.seq for c in stored_checkpoints}
        last_checkpoint = max(wanted, default=0)
        hashes: dict[int, str] = {}
        prev, expected = GENESIS, 1
        for record in tx.iter_audit():
            entry, problems = check_entry(record, prev, expected)
            report.problems.extend(p.problem for p in problems)
            hashes[record.seq] = record.entry_hash
            report.entries += 1
            prev, expected = record.entry_hash, record.seq + 1
            if entry is None:
                continue
            replay.apply(entry)
            if record.seq <= known and entry.decision is not None:
                _check_decision_bytes(tx, entry, report)
            elif deep or record.seq > last_checkpoint or entry.decision is None:
                _check_decision(registry, tx, entry, report)
        report.head_seq = expected - 1
        report.head_hash = prev
        report.problems.extend(_replay_problems(tx, replay))
        stray = [e.seq for e in tx.events(since=0) if e.seq not in hashes]
        if stray:
            report.problems.append(f"{len(stray)} event(s) name audit entries the log does not "
                                   f"hold (first: entry {stray[0]}): the log was cut or events "
                                   "were added outside the registry")
    head = report.head_seq
    for stored in stored_checkpoints:
        _check_checkpoint(stored.bundle, hashes, head, registry,
                          f"checkpoint of entry {stored.seq}", report, stored)
    head_file = registry.home / HEAD_FILE
    if head_file.is_file():
        _check_checkpoint(head_file.read_bytes(), hashes, head, registry, HEAD_FILE, report)
    elif stored_checkpoints:
        report.warnings.append(f"{HEAD_FILE} is missing (it mirrors the latest checkpoint)")
    if checkpoint is not None:
        try:
            data = checkpoint.read_bytes()
        except OSError as exc:
            report.problems.append(f"cannot read checkpoint {checkpoint}: {exc.strerror}")
        else:
            _check_checkpoint(data, hashes, head, registry, f"checkpoint {checkpoint.name}",
                              report)
    if deep and report.ok and marker is not None:
        _record_deep(marker, registry.settings.registry_id, head, report.head_hash)
        report.verified_through = head
    if report.ok and sign_checkpoint and head:
        report.new_checkpoint = _sign_head(registry, head, report.head_hash)
    return report


_MARKER_SCHEMA = "https://mlprov.dev/schemas/audit-deep-verified/v1"


def _deep_marker(registry: RegistryContext) -> Path | None:
    """Where this user records how far ``--deep`` verified this registry (None: nowhere)."""
    import hashlib

    from mlprov.registry._location import cache_root

    try:
        name = hashlib.sha256(f"{registry.settings.registry_id}\n"
                              f"{registry.location.describe()}".encode()).hexdigest()[:32]
    except MlprovError:
        return None
    return cache_root() / "audit-verified" / f"{name}.json"


def _known_through(tx: ReadTransaction, marker: Path, report: AuditReport) -> int:
    """The entry an earlier ``--deep`` run verified through, if the log still holds it."""
    from mlprov.canonical import loads_strict

    try:
        data = marker.read_bytes()
        if len(data) > 4096:
            return 0
        document = loads_strict(data, what=str(marker))
    except (OSError, MlprovError):
        return 0
    if not isinstance(document, dict) or document.get("schema") != _MARKER_SCHEMA:
        return 0
    seq, entry_hash = document.get("seq"), document.get("entryHash")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or \
            not isinstance(entry_hash, str):
        return 0
    record = tx.audit_entry(seq)
    if record is None or record.entry_hash != entry_hash:
        report.problems.append(
            f"audit entry {seq} is not the one an earlier --deep run verified "
            f"({entry_hash}): the history was rewritten or cut since")
        return 0
    return seq


def _record_deep(marker: Path, registry_id: str, seq: int, entry_hash: str) -> None:
    """Remember that every decision through entry ``seq`` was verified (best effort)."""
    from mlprov.canonical import canonical_json
    from mlprov.registry._home import write_file_atomically

    with contextlib.suppress(OSError, MlprovError):
        marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file_atomically(marker, canonical_json({
            "schema": _MARKER_SCHEMA, "registry": registry_id, "seq": seq,
            "entryHash": entry_hash}), 0o600)


def _sign_head(registry: RegistryContext, seq: int, entry_hash: str) -> int | None:
    """Sign a checkpoint of the verified head (if it is still the head) and mirror it."""
    bundle: bytes | None = None
    with contextlib.suppress(MlprovError), registry.metadata.write() as tx:
        current = tx.audit_head()
        if current is None or current.seq != seq or current.entry_hash != entry_hash:
            return None
        bundle = _recorder.sign_checkpoint(registry, tx, seq, entry_hash, utc_now())
    if bundle is None:
        return None
    _recorder.write_head(registry, bundle, seq)
    return seq


def checkpoint(registry: RegistryContext, *, deep: bool = False) -> tuple[AuditReport, bytes]:
    """Verify the audit log, then sign a checkpoint of its head (``audit checkpoint``).

    Raises:
        VerificationError: the log does not verify (nothing is signed).
    """
    report = verify_audit(registry, deep=deep, sign_checkpoint=True)
    if not report.ok:
        raise VerificationError(f"audit log does not verify: {report.problems[0]}",
                                hint="do not checkpoint this registry; restore it "
                                     "from a backup")
    data = export_head(registry)
    if data is None:  # pragma: no cover - a verified, non-empty log always signs one
        raise RegistryError("no checkpoint could be signed")
    return report, data


def export_head(registry: RegistryContext) -> bytes | None:
    """The latest signed checkpoint (to keep outside the registry, e.g. in CI)."""
    with registry.metadata.read() as tx:
        checkpoints = tx.checkpoints()
    return checkpoints[-1].bundle if checkpoints else None
