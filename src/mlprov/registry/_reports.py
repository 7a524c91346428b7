"""Typed records of what a version holds, and of the registry's newer reads and moves.

Every value in these records was read from re-verified evidence or from a
registry-signed decision checked on the way (:mod:`._show`, :mod:`._relatives`,
:mod:`._copy`, :mod:`._deploy_serve`, :mod:`._pending`): nothing is a row's claim.
They are frozen; ``to_json_dict`` gives the ``--json`` form (camelCase keys).
Strings in them come from evidence and are hostile: the CLI escapes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlprov.registry.interface import Stage

if TYPE_CHECKING:
    from mlprov.lineage import Lineage
    from mlprov.registry._pull import LoadedModel
    from mlprov.registry._records import RegisterResult

#: Key components an SBOM summary lists at most (the count says how many there are).
MAX_KEY_COMPONENTS = 50

__all__ = [
    "MAX_KEY_COMPONENTS",
    "AliasFact",
    "ChildLink",
    "ComponentFact",
    "CopyResult",
    "DatasetFact",
    "DeploymentMember",
    "DeploymentPullResult",
    "Descendant",
    "EvaluationFact",
    "HistoryEntry",
    "InputsFact",
    "LoadedDeployment",
    "ParentLink",
    "PendingApproval",
    "PulledMember",
    "RegistryLineage",
    "ResolvedDeployment",
    "ReviewFact",
    "SbomFact",
    "SkippedReview",
    "VersionDetails",
]


@dataclass(frozen=True)
class DatasetFact:
    """A dataset named by the verified provenance or eval: name, digest, where it lives."""

    name: str
    digest: str
    uri: str | None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "digest": self.digest, "uri": self.uri}


@dataclass(frozen=True)
class InputsFact:
    """The identity's inputs, from the verified provenance.

    ``config`` is the training config with the hyperparameters (``params``)
    merged in, as the identity hashes it.
    """

    commit: str
    code_uri: str | None
    dirty: bool
    datasets: tuple[DatasetFact, ...]
    config: Mapping[str, Any]
    seeds: Mapping[str, int]

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"code": {"commit": self.commit, "uri": self.code_uri, "dirty": self.dirty},
                "datasets": [d.to_json_dict() for d in self.datasets],
                "config": dict(self.config), "seeds": dict(self.seeds)}


@dataclass(frozen=True)
class EvaluationFact:
    """The verified eval statement: metrics overall and per slice, and who evaluated."""

    evaluator: str
    signed_by: str | None
    metrics: Mapping[str, float]
    slices: Mapping[str, Mapping[str, float]]
    datasets: tuple[DatasetFact, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"evaluator": self.evaluator, "signedBy": self.signed_by,
                "metrics": dict(self.metrics),
                "slices": {k: dict(v) for k, v in self.slices.items()},
                "datasets": [d.to_json_dict() for d in self.datasets]}


@dataclass(frozen=True)
class ComponentFact:
    """A component of the verified SBOM the model depends on directly.

    ``kind`` is the CycloneDX component type (``data``, ``machine-learning-model``
    for a parent, ``library``...).
    """

    name: str
    kind: str
    version: str | None
    purl: str | None
    licenses: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "type": self.kind, "version": self.version,
                "purl": self.purl, "licenses": list(self.licenses)}


@dataclass(frozen=True)
class SbomFact:
    """A summary of the verified SBOM: CycloneDX version, components, packages, licences.

    ``key_components``: what the dependency graph names as the model's direct
    dependencies (datasets, parents, top-level packages), at most
    :data:`MAX_KEY_COMPONENTS` of them, in the SBOM's order.
    """

    spec_version: str
    packages: int
    licenses: Mapping[str, int]
    components: int = 0
    key_components: tuple[ComponentFact, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"specVersion": self.spec_version, "packages": self.packages,
                "licenses": dict(self.licenses), "components": self.components,
                "keyComponents": [c.to_json_dict() for c in self.key_components]}


@dataclass(frozen=True)
class ParentLink:
    """A parent the verified provenance records, and where this registry holds it.

    ``registered`` lists the versions (``models:/NAME/N``) whose root digest is
    the parent's; the version's lineage was walked through their evidence.
    """

    role: str
    name: str
    root_digest: str | None
    external: bool
    registered: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"role": self.role, "name": self.name, "rootDigest": self.root_digest,
                "external": self.external, "registered": list(self.registered)}


@dataclass(frozen=True)
class ChildLink:
    """A registered version whose provenance names this version as a parent.

    ``verified``: the child's own evidence and lineage verified, through this
    version; otherwise ``problem`` says why, and nothing else it claims is shown.
    """

    uri: str
    name: str
    version: int
    role: str | None
    verified: bool
    problem: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"uri": self.uri, "name": self.name, "version": self.version,
                "role": self.role, "verified": self.verified, "problem": self.problem}


@dataclass(frozen=True)
class ReviewFact:
    """An attached review, verified again: who, what, when and why.

    A review that no longer counts (``counted`` false) shows only ``problem``.
    """

    digest: str
    counted: bool
    reviewer: str | None = None
    decision: str | None = None
    time: str | None = None
    comment: str | None = None
    signer: str | None = None
    problem: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"digest": self.digest, "counted": self.counted, "reviewer": self.reviewer,
                "decision": self.decision, "time": self.time, "comment": self.comment,
                "signer": self.signer, "problem": self.problem}


@dataclass(frozen=True)
class AliasFact:
    """An alias pointing at the version, with the verified decision that set it."""

    alias: str
    decision: str
    seq: int

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"alias": self.alias, "decision": self.decision, "auditSeq": self.seq}


@dataclass(frozen=True)
class HistoryEntry:
    """One audit entry about the version; its hash and signed decision verified."""

    seq: int
    time: str
    kind: str
    accepted: bool
    actor: str
    reason: str | None
    target: str | None
    decision: str
    details: Mapping[str, Any]

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"seq": self.seq, "time": self.time, "kind": self.kind,
                "accepted": self.accepted, "actor": self.actor, "reason": self.reason,
                "target": self.target, "decision": self.decision,
                "details": dict(self.details)}


@dataclass(frozen=True)
class VersionDetails:
    """What a version holds, every value from its re-verified evidence and decisions.

    ``stage`` is where the verified decision behind the stage row put it;
    ``aliases`` those whose verified decisions point here; ``history`` the
    audit entries about it, each checked against its hash and signed decision.
    """

    name: str
    version: int
    uri: str
    identity: str
    root_digest: str
    evidence_name: str
    stage: Stage
    stage_decision: str | None
    registration: str
    reproducible: bool
    created_at: str
    builder: str
    files: int
    bytes: int
    inputs: InputsFact
    evaluation: EvaluationFact | None
    sbom: SbomFact | None
    lineage: str
    parents: tuple[ParentLink, ...]
    children: tuple[ChildLink, ...]
    reviews: tuple[ReviewFact, ...]
    aliases: tuple[AliasFact, ...]
    history: tuple[HistoryEntry, ...]
    #: The catalog's (audited; ``audit verify`` replays them): not part of the evidence.
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov models show NAME --version N --json``."""
        return {
            "name": self.name, "version": self.version, "uri": self.uri,
            "identity": self.identity, "rootDigest": self.root_digest,
            "evidenceName": self.evidence_name, "stage": self.stage.value,
            "stageDecision": self.stage_decision, "registration": self.registration,
            "reproducible": self.reproducible, "createdAt": self.created_at,
            "builder": self.builder, "files": self.files, "bytes": self.bytes,
            "inputs": self.inputs.to_json_dict(),
            "evaluation": self.evaluation.to_json_dict() if self.evaluation else None,
            "sbom": self.sbom.to_json_dict() if self.sbom else None,
            "lineage": self.lineage,
            "parents": [p.to_json_dict() for p in self.parents],
            "children": [c.to_json_dict() for c in self.children],
            "reviews": [r.to_json_dict() for r in self.reviews],
            "aliases": [a.to_json_dict() for a in self.aliases],
            "history": [h.to_json_dict() for h in self.history],
            "description": self.description, "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class Descendant:
    """A registered version descending from another, found through its verified provenance."""

    uri: str
    name: str
    version: int
    parent: str
    role: str | None
    depth: int
    verified: bool
    problem: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"uri": self.uri, "name": self.name, "version": self.version,
                "parent": self.parent, "role": self.role, "depth": self.depth,
                "verified": self.verified, "problem": self.problem}


@dataclass(frozen=True)
class RegistryLineage:
    """A registered version's lineage: its ancestors (verified graph) and descendants.

    ``lineage`` is the graph walked from the version's stored evidence through
    the registry's copies of its ancestors (each node's ``evidence`` names the
    registered version it was read from); ``descendants`` is None unless asked.
    """

    uri: str
    lineage: Lineage
    descendants: tuple[Descendant, ...] | None = None

    @property
    def verified(self) -> bool:
        """The ancestors verified to every root and every descendant verified."""
        return self.lineage.verified and all(d.verified for d in self.descendants or ())

    def to_json_dict(self) -> dict[str, Any]:
        """The lineage graph's JSON, with ``descendants`` when asked for."""
        document = self.lineage.to_json_dict()
        document["registryUri"] = self.uri
        if self.descendants is not None:
            document["descendants"] = [d.to_json_dict() for d in self.descendants]
        return document


@dataclass(frozen=True)
class SkippedReview:
    """A source review the copy's target did not attach, and why."""

    digest: str
    problem: str

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"digest": self.digest, "problem": self.problem}


@dataclass(frozen=True)
class CopyResult:
    """What ``copy`` did: the source version it verified, the target version it made.

    ``source_decision`` is the digest of the source's decision behind the URI
    (recorded in the target's registration entry, never trusted there).
    """

    source_registry: str
    source_uri: str
    source_version: str
    source_decision: str
    target_registry: str
    registered: RegisterResult
    reviews_attached: tuple[str, ...]
    reviews_present: tuple[str, ...]
    reviews_skipped: tuple[SkippedReview, ...]

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov copy --json``."""
        r = self.registered
        return {"source": {"registry": self.source_registry, "uri": self.source_uri,
                           "version": self.source_version, "decision": self.source_decision},
                "target": {"registry": self.target_registry, "uri": r.uri, "name": r.name,
                           "version": r.version, "created": r.created,
                           "identity": r.identity, "rootDigest": r.root_digest,
                           "decision": r.decision, "auditSeq": r.seq},
                "reviews": {"attached": list(self.reviews_attached),
                            "present": list(self.reviews_present),
                            "skipped": [s.to_json_dict() for s in self.reviews_skipped]}}


@dataclass(frozen=True)
class DeploymentMember:
    """A pinned model version of a deployment, re-verified: digests and verified stage."""

    name: str
    version: int
    uri: str
    requested: str
    identity: str
    root_digest: str
    stage: Stage

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "version": self.version, "uri": self.uri,
                "requested": self.requested, "identity": self.identity,
                "rootDigest": self.root_digest, "stage": self.stage.value}


@dataclass(frozen=True)
class ResolvedDeployment:
    """A ``deployments:/`` URI resolved and verified: the version, its decision, its members."""

    uri: str
    name: str
    version: int
    stage: Stage
    decision: str
    via: str
    spec_digest: str
    signed_by: str
    members: tuple[DeploymentMember, ...]

    @property
    def version_uri(self) -> str:
        """``deployments:/NAME/N``."""
        return f"deployments:/{self.name}/{self.version}"

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov resolve deployments:/... --json``."""
        return {"uri": self.uri, "name": self.name, "version": self.version,
                "versionUri": self.version_uri, "stage": self.stage.value,
                "decision": self.decision, "via": self.via, "specDigest": self.spec_digest,
                "signedBy": self.signed_by, "members": [m.to_json_dict() for m in self.members]}


@dataclass(frozen=True)
class PulledMember:
    """One member's files as ``pull`` wrote them."""

    uri: str
    path: Path
    files: int
    bytes: int

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"uri": self.uri, "path": str(self.path), "files": self.files,
                "bytes": self.bytes}


@dataclass(frozen=True)
class DeploymentPullResult:
    """What ``pull deployments:/...`` wrote: one directory per member."""

    resolved: ResolvedDeployment
    path: Path
    members: tuple[PulledMember, ...]


@dataclass(frozen=True)
class LoadedDeployment:
    """Verified local copies of every member of a deployment version.

    ``deployment["credit-risk"]`` is that member's
    :class:`~mlprov.registry.LoadedModel` (path-like).
    """

    uri: str
    name: str
    version: int
    members: tuple[LoadedModel, ...]

    def __getitem__(self, model: str) -> LoadedModel:
        found = [m for m in self.members if m.name == model]
        if len(found) != 1:
            from mlprov.registry.interface import NotFoundError

            raise NotFoundError(f"deployment {self.name} v{self.version} has "
                                f"{'no' if not found else 'more than one'} member {model!r}",
                                hint="iterate .members, or use the version's URI")
        return found[0]


@dataclass(frozen=True)
class PendingApproval:
    """A version whose next stage move waits on a review, and what is missing.

    ``missing`` are the gate's denials a further approval would clear (the
    policy's own words); ``approvals_needed`` how many approvals clear them (0
    when only a standing rejection blocks); ``rejections`` the standing
    rejections; ``blocked_by`` the denials a review would not clear.
    """

    uri: str
    name: str
    version: int
    stage: Stage
    next_stage: Stage
    status: Literal["pending", "rejected"]
    approvals: int
    approvals_needed: int
    missing: tuple[str, ...]
    rejections: tuple[ReviewFact, ...]
    blocked_by: tuple[str, ...]
    policy: str

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"uri": self.uri, "name": self.name, "version": self.version,
                "stage": self.stage.value, "nextStage": self.next_stage.value,
                "status": self.status, "approvals": self.approvals,
                "approvalsNeeded": self.approvals_needed, "missing": list(self.missing),
                "rejections": [r.to_json_dict() for r in self.rejections],
                "blockedBy": list(self.blocked_by), "policy": self.policy}
