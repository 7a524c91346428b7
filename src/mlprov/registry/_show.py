"""What a version holds, from the registry: every value re-verified, none a row's claim.

:func:`show_version` (``mlprov models show NAME --version N``) re-verifies the
version from the blob store (:func:`._gatekeeper.verify_record`: registration
decision, evidence, file blobs, lineage, reviews) and reads its facts from the
verdict: the identity's inputs, metrics, evaluator, SBOM, parents. Around it:

- its stage, only as the verified decision behind the stage row puts it
  (:func:`._pull.check_placement`: signed, about this version, not superseded);
- its aliases, each with the verified decision that set it;
- its decision history: the audit entries about it, each body checked against
  its hash and its signed decision (kind, sequence number, outcome);
- its children, verified in full (:mod:`._relatives`).

A check that fails raises (``RegistryIntegrityError``, a ``VerificationError``):
nothing is shown from a version whose evidence does not verify.
:func:`verify_uri` and :func:`inspect` serve ``mlprov inspect|card|review`` on
a ``models:/`` URI the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

from mlprov.errors import MlprovError
from mlprov.evidence import EVAL_FILE
from mlprov.registry._audit import entry_from_record
from mlprov.registry._catalog import frozen_mapping, name_periods
from mlprov.registry._decisions import VSA_PREDICATE, change_of, verify_signed
from mlprov.registry._facts import RegistryIntegrityError, read_decision
from mlprov.registry._gatekeeper import verify_record
from mlprov.registry._pull import check_placement, prepare
from mlprov.registry._records import Resolved, need_version
from mlprov.registry._relatives import children, parent_links
from mlprov.registry._reports import (
    MAX_KEY_COMPONENTS,
    AliasFact,
    ComponentFact,
    DatasetFact,
    EvaluationFact,
    HistoryEntry,
    InputsFact,
    ReviewFact,
    SbomFact,
    VersionDetails,
)
from mlprov.registry._uri import check_name, check_version, version_uri
from mlprov.registry.interface import AuditRecord, ReadTransaction, Stage, VersionRecord
from mlprov.sbom import licence_names

if TYPE_CHECKING:
    from mlprov.inspection import Inspection
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._facts import VersionFacts
    from mlprov.trust import Trust

__all__ = ["inspect", "show_version", "verified_aliases", "verified_stage", "verify_uri"]


def verify_uri(registry: RegistryContext, uri: str, *, trust: Trust | None = None
               ) -> VersionFacts:
    """Resolve ``uri`` and re-verify the version as ``pull`` does (no file is copied).

    For reading (inspect, card, review, lineage): an Archived version is verified too.
    """
    _resolved, facts = prepare(registry, uri, trust, allow_archived=True)
    return facts


def inspect(registry: RegistryContext, uri: str, *, trust: Trust | None = None) -> Inspection:
    """``mlprov inspect models:/...``: the auditor's view of a registered version.

    Built from the registry's verdict; the model's files are the stored blobs the
    signed manifest names (present, of the signed sizes, digests checked on read).
    """
    from mlprov.inspection import inspection_of

    resolved, facts = prepare(registry, uri, trust, allow_archived=True)
    label = f"{version_uri(resolved.name, resolved.version)} (stored files)"
    # A copy: the verdict is memoised and shared, never changed.
    return inspection_of(dataclasses.replace(facts.verdict, model=label))


def verified_stage(tx: ReadTransaction, record: VersionRecord, trust: Trust,
                   registry_id: str) -> Stage:
    """The version's stage, as the verified decision behind its stage row puts it.

    Raises:
        RegistryIntegrityError: the row names no decision, or one that does not support it.
    """
    if record.stage_decision is None:
        if record.stage is not Stage.NONE:
            raise RegistryIntegrityError(
                f"the registry's row puts {record.name} v{record.version} in "
                f"{record.stage.value} without a decision")
        return record.stage
    resolved = Resolved(uri=f"models:/{record.name}/{record.stage.value}", record=record,
                        decision=record.stage_decision, via="stage")
    check_placement(tx, resolved, read_decision(tx.get_decision, record.stage_decision),
                    trust, registry_id)
    return record.stage


def verified_aliases(tx: ReadTransaction, record: VersionRecord, trust: Trust,
                     registry_id: str) -> tuple[AliasFact, ...]:
    """The aliases pointing at the version, each backed by its verified decision.

    Raises:
        RegistryIntegrityError: an alias row's decision does not support it.
    """
    found = []
    for alias in tx.list_aliases(record.name):
        if alias.version != record.version:
            continue
        resolved = Resolved(uri=f"models:/{record.name}@{alias.alias}", record=record,
                            decision=alias.decision, via=f"@{alias.alias}")
        decision = check_placement(tx, resolved, read_decision(tx.get_decision,
                                                               alias.decision),
                                   trust, registry_id)
        found.append(AliasFact(alias=alias.alias, decision=alias.decision,
                               seq=int(change_of(decision)["auditSeq"])))
    return tuple(found)


def _history(tx: ReadTransaction, record: VersionRecord, anchor: Trust, registry_id: str
             ) -> tuple[HistoryEntry, ...]:
    """The audit entries about the version, each checked against its hash and decision.

    Under each name the model had (renames), oldest first.
    """
    entries = []
    for period_name, after, until in name_periods(tx, record.name):
        for stored in tx.audit_entries(name=period_name, since=after, until=until):
            if stored.version != record.version or (until is not None and stored.seq >= until):
                continue
            entries.append(_checked_entry(tx, stored, anchor, registry_id))
    return tuple(entries)


def _checked_entry(tx: ReadTransaction, stored: AuditRecord, anchor: Trust, registry_id: str
                   ) -> HistoryEntry:
    seq = stored.seq
    if "sha256:" + hashlib.sha256(stored.body).hexdigest() != stored.entry_hash:
        raise RegistryIntegrityError(f"audit entry {seq} was modified: its body no longer "
                                     "matches its hash", hint="run `mlprov audit verify`")
    try:
        entry = entry_from_record(stored)
    except MlprovError as exc:
        raise RegistryIntegrityError(f"audit entry {seq} is unreadable: {exc}") from exc
    if (entry.seq, entry.name, entry.version, entry.kind, entry.decision) != (
            seq, stored.name, stored.version, stored.kind, stored.decision) \
            or entry.decision is None:
        raise RegistryIntegrityError(f"audit entry {seq}'s columns differ from its hashed "
                                     "body", hint="run `mlprov audit verify`")
    what = f"the decision of audit entry {seq}"
    decision = verify_signed(read_decision(tx.get_decision, entry.decision), anchor,
                             what=what, predicate_type=VSA_PREDICATE)
    change = change_of(decision)
    if change.get("auditSeq") != seq or change.get("kind") != entry.kind or \
            change.get("registry") != registry_id or \
            (decision.predicate.get("verificationResult") == "PASSED") != entry.accepted:
        raise RegistryIntegrityError(f"audit entry {seq} disagrees with its signed decision",
                                     hint="run `mlprov audit verify`")
    return HistoryEntry(seq=seq, time=entry.time, kind=entry.kind, accepted=entry.accepted,
                        actor=entry.actor, reason=entry.reason, target=entry.target,
                        decision=entry.decision, details=dict(entry.details))


def _reviews(facts: VersionFacts) -> tuple[ReviewFact, ...]:
    out = []
    for digest, review in zip(facts.review_digests, facts.reviews, strict=False):
        if not review.counted:
            out.append(ReviewFact(digest=digest, counted=False, problem=review.problem))
            continue
        out.append(ReviewFact(digest=digest, counted=True, reviewer=review.reviewer,
                              decision=review.decision, time=review.time,
                              comment=review.comment,
                              signer=review.signer.name if review.signer else None))
    return tuple(out)


def _inputs(facts: VersionFacts) -> tuple[str, InputsFact]:
    provenance = facts.verdict.provenance
    if provenance is None:  # verify_record raises first; kept for the type checker
        raise RegistryIntegrityError(f"{facts.record.name} v{facts.record.version}: no "
                                     "verified provenance")
    inputs = provenance.inputs
    code = inputs.code
    return provenance.builder_id, InputsFact(
        commit=code.commit, code_uri=code.uri, dirty=bool(code.dirty),
        datasets=tuple(DatasetFact(name=d.name, digest=d.digest, uri=d.uri)
                       for d in inputs.data),
        config=dict(inputs.config), seeds=dict(inputs.seeds))


def _evaluation(facts: VersionFacts) -> EvaluationFact | None:
    evaluation = facts.verdict.evaluation
    if evaluation is None:
        return None
    signed = facts.verdict.statements.get(EVAL_FILE)
    return EvaluationFact(
        evaluator=evaluation.evaluator.id,
        signed_by=signed.signer.name if signed is not None else None,
        metrics={k: float(v) for k, v in evaluation.metrics.items()},
        slices={name: {k: float(v) for k, v in values.items()}
                for name, values in evaluation.slices.items()},
        datasets=tuple(DatasetFact(name=d.name, digest=f"sha256:{d.sha256}", uri=d.uri)
                       for d in evaluation.datasets))


def _sbom(facts: VersionFacts) -> SbomFact | None:
    sbom = facts.verdict.sbom
    if sbom is None:
        return None
    components = sbom.document.get("components")
    return SbomFact(spec_version=sbom.spec_version, packages=len(sbom.packages),
                    licenses=sbom.license_counts(),
                    components=len(components) if isinstance(components, list) else 0,
                    key_components=_key_components(sbom.document))


def _key_components(document: dict[str, Any]) -> tuple[ComponentFact, ...]:
    """The components the (schema-checked) BOM's graph names as the model's direct needs."""
    model = document.get("metadata", {}).get("component", {})
    ref = model.get("bom-ref") if isinstance(model, dict) else None
    needs: list[Any] = []
    for entry in document.get("dependencies") or []:
        if isinstance(entry, dict) and ref is not None and entry.get("ref") == ref:
            needs = entry.get("dependsOn") or []
            break
    by_ref = {c.get("bom-ref"): c for c in document.get("components") or []
              if isinstance(c, dict) and isinstance(c.get("bom-ref"), str)}
    found = []
    for need in needs[:MAX_KEY_COMPONENTS]:
        component = by_ref.get(need)
        if component is None:
            continue
        version, purl = component.get("version"), component.get("purl")
        found.append(ComponentFact(
            name=str(component.get("name")), kind=str(component.get("type")),
            version=version if isinstance(version, str) else None,
            purl=purl if isinstance(purl, str) else None,
            licenses=licence_names(component)))
    return tuple(found)


def show_version(registry: RegistryContext, name: str, version: int, *,
                 trust: Trust | None = None) -> VersionDetails:
    """What version ``version`` of ``name`` holds, re-verified (see the module docstring).

    Raises:
        NotFoundError: unknown model or version.
        RegistryIntegrityError, BlobCorruptError, SignatureError: a check failed.
    """
    check_name(name)
    check_version(version)
    settings = registry.settings
    settings.head(anchor=trust)  # a cut, extended or rolled-back log stops here
    using = trust or settings.trust
    anchor = trust or settings.anchor
    registry_id = settings.registry_id
    with registry.metadata.read() as tx:
        record = need_version(tx, name, version)
        reviews = [r.digest for r in tx.list_reviews(name, version)]
        facts = verify_record(registry, record, reviews, trust=trust, tx=tx)
        stage = verified_stage(tx, record, using, registry_id)
        aliases = verified_aliases(tx, record, using, registry_id)
        history = _history(tx, record, anchor, registry_id)
        tags = tx.version_tags([(name, version)]).get((name, version), {})
        parents = parent_links(tx, facts)
        kids = children(registry, tx, record, trust=trust)
    builder, inputs = _inputs(facts)
    verdict = facts.verdict
    lineage = verdict.lineage
    return VersionDetails(
        name=record.name, version=record.version, uri=version_uri(name, version),
        identity=str(verdict.identity), root_digest=str(verdict.root_digest),
        evidence_name=str(verdict.name), stage=stage, stage_decision=record.stage_decision,
        registration=record.registration, reproducible=record.reproducible,
        created_at=_registered_at(history, record), builder=builder,
        files=len(facts.manifest.files), bytes=facts.manifest.total_size, inputs=inputs,
        evaluation=_evaluation(facts), sbom=_sbom(facts),
        lineage=lineage.status if lineage is not None else "absent",
        parents=parents, children=kids, reviews=_reviews(facts), aliases=aliases,
        history=history, description=record.description, tags=frozen_mapping(tags))


def _registered_at(history: tuple[HistoryEntry, ...], record: VersionRecord) -> str:
    """When the version was registered: its verified registration entry's time."""
    for entry in history:
        if entry.kind == "model.register" and entry.accepted and \
                entry.decision == record.registration:
            return entry.time
    raise RegistryIntegrityError(f"{record.name} v{record.version}: its registration is not "
                                 "in the audit log", hint="run `mlprov audit verify`")

