"""Registering a model: verify it against its evidence and the registry's trust, store it.

The model's files (as its signed manifest names them), its evidence and a scan
report go into the blob store first; the version row, named by the signed
registration decision, follows in one change. The same identity and root
digest again return the existing version; the same identity with other bytes
(and the same parents) is a new version flagged non-reproducible. A model that
does not verify is refused, and the refusal is audited.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.canonical import canonical_json
from mlprov.errors import InputError
from mlprov.registry import _faults
from mlprov.registry._audit import GENESIS
from mlprov.registry._facts import (
    EVIDENCE_INPUT,
    FILES_INPUT,
    SCAN_INPUT,
    evidence_map,
    evidence_map_document,
    files_document,
    find_ancestors,
    materialize_ancestors,
    parents_in,
)
from mlprov.registry._gate import rule_outcome
from mlprov.registry._gatekeeper import check_config_pinned
from mlprov.registry._gc import check_blobs_kept, gc_epoch
from mlprov.registry._recorder import after_commit, record_change, retrying
from mlprov.registry._records import (
    ChangeResult,
    PendingChange,
    PolicyDeniedError,
    RegisterResult,
    RegistrationRefusedError,
    default_actor,
)
from mlprov.registry._uri import check_name, utc_now, version_uri
from mlprov.registry.interface import BlobStore, Stage, VersionRecord

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["register"]

_MAX_EVIDENCE_FILE = 64 * 1024 * 1024


def register(registry: RegistryContext, model: Path | str, *, evidence: Path | str,
             actor: str | None = None, reason: str | None = None, name: str | None = None,
             origin: dict[str, Any] | None = None) -> RegisterResult:
    """Verify and store a model version (see :meth:`Registry.register`).

    ``name`` registers it under another name than its provenance's (a copy,
    :mod:`._copy`): the signed registration then records the evidence's name
    (``evidenceName``), which re-verification expects instead. ``origin``
    (where a copy came from) is recorded in the audit entry and the decision.

    Raises:
        RegistrationRefusedError: verification failed (the refusal is audited).
    """
    from mlprov.evidence import OMS_FILE
    from mlprov.oms import read_signed_manifest

    check_config_pinned(registry)
    model_path, evidence_path = Path(model), Path(evidence)
    who = actor or default_actor()
    verdict = _verify_for_registration(registry, model_path, evidence_path)
    epoch = gc_epoch(registry.metadata)
    if not verdict.verified:
        _refuse_registration(registry, verdict, who, reason, origin)
    evidence_name = check_name(verdict.name or "")
    name = check_name(name) if name is not None else evidence_name
    assert verdict.identity is not None and verdict.root_digest is not None
    signed = read_signed_manifest(verdict.statements[OMS_FILE].statement, what=OMS_FILE)
    blobs = registry.blobs
    manifest = _ingest_files(blobs, model_path, signed)
    if f"sha256:{manifest.root}" != verdict.root_digest:
        raise RegistrationRefusedError(f"{model_path} changed while it was registered")
    files_digest = blobs.put_bytes(files_document(manifest)).digest
    evidence_files = _ingest_evidence(blobs, evidence_path)
    evidence_digest = blobs.put_bytes(evidence_map_document(evidence_files)).digest
    scan_digest = _scan(registry, model_path, verdict)
    parents = _parents_key(verdict.provenance.predicate if verdict.provenance else {})
    metrics = indexed_metrics(verdict)
    _faults.point("register.blobs-stored")

    def run() -> RegisterResult:
        with registry.metadata.write() as tx:
            # Same recipe from another parent is another model, not a failed
            # reproduction: compare parents too (they are not in the identity).
            existing = [r for r in tx.find_versions(name, verdict.identity or "")
                        if _stored_parents(registry, r) == parents]
            for record in existing:
                if record.root_digest == verdict.root_digest:
                    return RegisterResult(
                        name=name, version=record.version, identity=record.identity,
                        root_digest=record.root_digest, created=False,
                        reproducible=record.reproducible,
                        same_identity=tuple(r.version for r in existing),
                        decision=record.registration, seq=record.created_seq)
            check_blobs_kept(tx, blobs, epoch, (
                files_digest, evidence_digest, *evidence_files.values(),
                *([scan_digest] if scan_digest else []),
                *(f"sha256:{f.sha256}" for f in manifest.files)))
            now = utc_now()
            tx.ensure_model(name, now)
            model_record = tx.get_model(name)
            assert model_record is not None
            number = model_record.latest_version + 1
            same = tuple(r.version for r in existing)
            inputs = {f"evidence/{n}": d for n, d in evidence_files.items()}
            inputs[FILES_INPUT] = files_digest
            inputs[EVIDENCE_INPUT] = evidence_digest
            if scan_digest:
                inputs[SCAN_INPUT] = scan_digest
            details: dict[str, Any] = {
                "identity": verdict.identity, "rootDigest": verdict.root_digest,
                "reproducible": not existing, "sameIdentityAs": list(same),
                "files": len(manifest.files), "bytes": manifest.total_size}
            if name != evidence_name:
                details["evidenceName"] = evidence_name
            if origin is not None:
                details["copiedFrom"] = origin
            if metrics:  # indexed for search; audit verify replays them from here
                details["metrics"] = metrics
            pending = PendingChange(
                kind="model.register", name=name, version=number, target="version",
                actor=who, reason=reason, outcome=rule_outcome("registration"),
                subject_name=version_uri(name, number),
                subject_digest=verdict.root_digest or "",
                resource_uri=version_uri(name, number), inputs=inputs,
                change={"name": name, "version": number, **details}, details=details)
            record = VersionRecord(
                name=name, version=number, identity=verdict.identity or "",
                root_digest=verdict.root_digest or "", files_digest=files_digest,
                evidence_digest=evidence_digest, registration="", scan_digest=scan_digest,
                reproducible=not existing, stage=Stage.NONE, stage_decision=None,
                created_at=now, created_seq=0)

            def apply(decision: str, seq: int, _time: str) -> None:
                tx.insert_version(_replace(record, registration=decision, created_seq=seq))
                tx.set_version_metrics(name, number, metrics)

            result = record_change(registry, tx, pending, apply)
            return RegisterResult(name=name, version=number, identity=verdict.identity or "",
                                  root_digest=verdict.root_digest or "", created=True,
                                  reproducible=not existing, same_identity=same,
                                  decision=result.decision, seq=result.seq)

    registered = retrying(run)
    if registered.created and registered.seq is not None:
        after_commit(registry, ChangeResult(
            kind="model.register", name=name, version=registered.version, target="version",
            allowed=True, deny=(), warn=(), policy_uri="", policy_digest="",
            decision=registered.decision or "", seq=registered.seq))
    return registered


#: Eval metrics indexed for search per version, at most (by name), and their name's length.
MAX_INDEXED_METRICS = 1000
_MAX_METRIC_NAME = 250


def indexed_metrics(verdict: Any) -> dict[str, float]:
    """The verified eval's overall metrics that ``metrics.NAME`` filters search.

    Finite numbers with names of at most 250 characters, the first 1000 by name.
    """
    import math

    evaluation = getattr(verdict, "evaluation", None)
    metrics = getattr(evaluation, "metrics", None) or {}
    kept = {key: float(value) for key, value in sorted(metrics.items())
            if isinstance(key, str) and len(key) <= _MAX_METRIC_NAME
            and isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value)}
    return dict(list(kept.items())[:MAX_INDEXED_METRICS])


def _verify_for_registration(registry: RegistryContext, model: Path, evidence: Path) -> Any:
    """Verify a model to register; its parents are looked for in the registry too."""
    import shutil
    import tempfile

    from mlprov.evidence import PROVENANCE_FILE
    from mlprov.verification import verify

    try:
        first = parents_in((evidence / PROVENANCE_FILE).read_bytes())
    except OSError:
        first = []
    if not first:
        return verify(model, evidence=evidence, trust=registry.settings.trust)
    search = Path(tempfile.mkdtemp(prefix="mlprov-parents-"))
    try:
        with registry.metadata.read() as tx:
            ancestors = find_ancestors(registry.blobs, {}, tx.find_by_root, first=first)
        materialize_ancestors(registry.blobs, ancestors, search)
        return verify(model, evidence=evidence, trust=registry.settings.trust, search=[search])
    finally:
        shutil.rmtree(search, ignore_errors=True)


def _refuse_registration(registry: RegistryContext, verdict: Any, actor: str,
                         reason: str | None, origin: dict[str, Any] | None = None) -> None:
    failures = verdict.failures()
    detail = failures[0].detail if failures else "no check ran"
    claimed = verdict.name if isinstance(verdict.name, str) else None
    claimed_name = claimed if claimed and _valid_name(claimed) else None
    outcome = rule_outcome("registration", allowed=False,
                           deny=tuple(f"{c.name}: {c.detail}" for c in failures)
                           or ("no verification check ran",))
    root = verdict.root_digest or GENESIS
    copied = {"copiedFrom": origin} if origin is not None else {}

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            return record_change(registry, tx, PendingChange(
                kind="model.register", name=claimed_name, version=None, target="version",
                actor=actor, reason=reason, outcome=outcome,
                subject_name=f"unregistered:{claimed_name or 'unknown'}",
                subject_digest=root, resource_uri=f"unregistered:{claimed_name or 'unknown'}",
                inputs={}, change={"claimedName": claimed, **copied},
                details={"claimedName": claimed, **copied}))

    result = retrying(run)
    with contextlib.suppress(PolicyDeniedError):
        after_commit(registry, result)
    more = f"; {len(failures) - 1} more check(s) failed" if len(failures) > 1 else ""
    raise RegistrationRefusedError(
        f"not registered: the model does not verify against the registry's trust: "
        f"{detail}{more} (refusal audited as entry {result.seq})")


def _scan(registry: RegistryContext, model: Path, verdict: Any) -> str | None:
    """Scan the model's pickles; the report is stored and bound to the registration."""
    try:
        from mlprov.scanning import scan_verified_model
    except ImportError:  # pragma: no cover - scanning ships with mlprov
        return None
    report = scan_verified_model(model, verdict)
    return registry.blobs.put_bytes(canonical_json(report.to_json_dict())).digest


def _stored_parents(registry: RegistryContext, record: VersionRecord
                    ) -> tuple[tuple[str, str], ...]:
    """The parents recorded in a registered version's stored provenance.

    Read from the registry's own content-addressed copy (its digest is bound
    by the signed registration decision); used only to tell a new lineage
    from a failed reproduction.
    """
    from mlprov.bundles import read_envelopes
    from mlprov.evidence import PROVENANCE_FILE
    from mlprov.signing import b64decode_any
    from mlprov.statements import parse_statement

    files = evidence_map(registry.blobs.get_bytes(record.evidence_digest))
    bundle = registry.blobs.get_bytes(files[PROVENANCE_FILE])
    envelope, _hint = read_envelopes(bundle, what=PROVENANCE_FILE)[0]
    payload = b64decode_any(envelope.payload, what=PROVENANCE_FILE)
    return _parents_key(parse_statement(payload, what=PROVENANCE_FILE).predicate)


def _parents_key(predicate: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A provenance's parents as sorted (role, root digest) pairs."""
    from mlprov._internal.parents import parents_from_predicate

    return tuple(sorted((p.role, p.sha256 or p.name) for p in parents_from_predicate(predicate)))


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except InputError:
        return False
    return True


def _replace(record: VersionRecord, **changes: Any) -> VersionRecord:
    import dataclasses

    return dataclasses.replace(record, **changes)


def _ingest_files(blobs: BlobStore, model: Path, signed: Any) -> Any:
    """Copy every file the signed manifest names into the blob store, checking digests."""
    from mlprov.hashing import FileDigest, Manifest, manifest_sort_key

    root = model.resolve()
    entries = []
    for rel, digest in signed.files.items():
        source = model if rel == "." else model / rel
        if signed.allow_symlinks:
            real = Path(os.path.realpath(source))
            if real != root and root not in real.parents:
                raise InputError(f"{rel} leaves the model root")
            source = real
        info = blobs.put_file(source, expected=f"sha256:{digest}")
        entries.append(FileDigest(rel, digest, info.size))
    entries.sort(key=lambda f: manifest_sort_key(f.path))
    return Manifest(name=root.name, files=tuple(entries),
                    ignore_paths=tuple(signed.ignore_paths),
                    allow_symlinks=signed.allow_symlinks, is_file=model.is_file())


def _ingest_evidence(blobs: BlobStore, evidence: Path) -> dict[str, str]:
    """Store the evidence directory's top-level files; returns name -> digest."""
    from mlprov.hashing import check_relative_path

    if not evidence.is_dir():
        raise InputError(f"evidence directory not found: {evidence}",
                         hint="register needs the directory `mlprov attest --out` wrote")
    files: dict[str, str] = {}
    for entry in sorted(os.scandir(evidence), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        check_relative_path(entry.name)
        if entry.stat(follow_symlinks=False).st_size > _MAX_EVIDENCE_FILE:
            raise InputError(f"evidence file {entry.path} is too large")
        files[entry.name] = blobs.put_file(Path(entry.path)).digest
    return files
