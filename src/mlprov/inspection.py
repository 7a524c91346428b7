"""``mlprov inspect``: the auditor's view of an evidence directory.

An inspection is built only from a :class:`~mlprov.verification.Verdict`: the
evidence is verified first, and each fact shown comes from a statement whose
checks all passed. A claim that failed (or could not be checked) is shown as
such, with the reason, and none of its content is shown: an auditor never sees
an unverified value presented as a fact.

Facts, by the claim (evidence file) they come from:

- provenance (``provenance.sigstore.json``, builder): name, identity and its
  inputs, builder, platform, Python and mlprov versions, invocation, start and
  finish, code commit, datasets, parents;
- files (``model.sig``, builder): the root digest; the files themselves only
  when the model is given;
- SBOM (``sbom.sigstore.json``, builder): package count, licences, datasets;
- evaluation (``eval.sigstore.json``, evaluator): metrics overall and per slice,
  evaluation datasets, evaluator;
- model card (``MODEL_CARD.md``): its digest, as the signed SBOM records it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from mlprov._internal.arguments import CALLBACK, EVIDENCE, HASH_JOB, PATH, TRUST, checked, optional
from mlprov._internal.parents import parents_from_predicate
from mlprov.evidence import (
    CARD_FILE,
    EVAL_FILE,
    INDEX_FILE,
    OMS_FILE,
    PROVENANCE_FILE,
    SBOM_BUNDLE_FILE,
    EvidenceSource,
)
from mlprov.trust import Role

if TYPE_CHECKING:
    from mlprov.hashing import HashJob, ProgressCallback
    from mlprov.trust import Trust
    from mlprov.verification import Check, Verdict

__all__ = ["INSPECTION_SCHEMA", "Claim", "Inspection", "inspect_evidence", "inspection_of"]

INSPECTION_SCHEMA: Final = "https://mlprov.dev/schemas/inspection/v1"

Status = Literal["verified", "failed", "unverified", "absent", "not-checked"]


@dataclass(frozen=True)
class _ClaimKind:
    file: str
    claim: str
    role: Role | None
    checks: tuple[str, ...]


_CLAIMS = (
    _ClaimKind(OMS_FILE, "model files (OMS signature)", Role.BUILDER,
               (f"signature:{OMS_FILE}", "manifest")),
    _ClaimKind(PROVENANCE_FILE, "provenance", Role.BUILDER,
               (f"signature:{PROVENANCE_FILE}", "provenance", "subject", "identity")),
    _ClaimKind(SBOM_BUNDLE_FILE, "SBOM", Role.BUILDER, (f"signature:{SBOM_BUNDLE_FILE}", "sbom")),
    _ClaimKind(EVAL_FILE, "evaluation", Role.EVALUATOR, (f"signature:{EVAL_FILE}", "eval")),
    _ClaimKind(CARD_FILE, "model card (digest in the SBOM)", None, ("card",)),
    _ClaimKind(INDEX_FILE, "index (unsigned, cross-checked)", None,
               ("index", "index-consistent")),
)


@dataclass(frozen=True)
class Claim:
    """One evidence file's claim: who signed it, in which role, and whether it held."""

    file: str
    claim: str
    required_role: str | None
    status: Status
    detail: str
    signer: str | None = None
    signer_roles: tuple[str, ...] = ()
    #: A keyless signer's verified identity (``SigstoreIdentity.to_json_dict()``).
    signer_identity: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form (camelCase)."""
        signer: dict[str, Any] | None = ({"name": self.signer, "roles": list(self.signer_roles)}
                                         if self.signer else None)
        if signer is not None and self.signer_identity is not None:
            signer["sigstore"] = self.signer_identity
        return {"file": self.file, "claim": self.claim, "requiredRole": self.required_role,
                "status": self.status, "detail": self.detail, "signer": signer}


@dataclass(frozen=True)
class Section:
    """Facts from one claim, present only when the claim verified."""

    status: Status
    detail: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """``{"status", "detail"?, **facts}``."""
        document: dict[str, Any] = {"status": self.status}
        if self.detail:
            document["detail"] = self.detail
        return {**document, **self.facts}


def _status(checks: list[Check]) -> tuple[Status, str]:
    """A claim's status from its checks: any failure fails it; any skip leaves it unverified."""
    if not checks:
        return "absent", "not in the evidence"
    failed = [c for c in checks if c.ok is False]
    if failed:
        return "failed", failed[0].detail
    skipped = [c for c in checks if c.ok is None]
    if skipped:
        return "unverified", skipped[0].detail
    return "verified", checks[0].detail


@dataclass
class Inspection:
    """What an auditor sees: claims with their signers and status, and verified facts."""

    verdict: Verdict
    claims: list[Claim]
    provenance: Section
    files: Section
    sbom: Section
    evaluation: Section
    card: Section
    lineage: Section

    @property
    def files_checked(self) -> bool:
        """Whether the model's files were hashed and compared."""
        return bool(self.verdict.model)

    @property
    def evidence_verified(self) -> bool:
        """Every check of the evidence passed (the files' check aside when not given)."""
        checks = [c for c in self.verdict.checks
                  if self.files_checked or c.name != "files"]
        return bool(checks) and all(c.ok is True for c in checks)

    @property
    def verified(self) -> bool:
        """Every check passed, the model's files included (False when they were not given)."""
        return self.verdict.verified

    @property
    def ok(self) -> bool:
        """Everything that was checked passed: the evidence, and the files when given."""
        return self.verified if self.files_checked else self.evidence_verified

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return self.verdict.failures()

    def to_json_dict(self) -> dict[str, Any]:
        """The inspection as one JSON document."""
        return {
            "schema": INSPECTION_SCHEMA,
            "verified": self.verified,
            "evidenceVerified": self.evidence_verified,
            "filesChecked": self.files_checked,
            "evidence": self.verdict.evidence,
            "model": self.verdict.model or None,
            "provenance": self.provenance.to_json_dict(),
            "files": self.files.to_json_dict(),
            "sbom": self.sbom.to_json_dict(),
            "evaluation": self.evaluation.to_json_dict(),
            "card": self.card.to_json_dict(),
            "lineage": self.lineage.to_json_dict(),
            "claims": [c.to_json_dict() for c in self.claims],
            "checks": [asdict(c) for c in self.verdict.checks],
        }


def _claims(verdict: Verdict) -> tuple[list[Claim], dict[str, tuple[Status, str]]]:
    by_name: dict[str, list[Check]] = {}
    for check in verdict.checks:
        by_name.setdefault(check.name, []).append(check)
    claims, status = [], {}
    for kind in _CLAIMS:
        checks = [c for name in kind.checks for c in by_name.get(name, [])]
        state, detail = _status(checks)
        status[kind.file] = (state, detail)
        if state == "absent" and kind.file == EVAL_FILE:
            detail = "no evaluation was attested"
        signed = verdict.statements.get(kind.file)
        signer = signed.signer if signed is not None and state == "verified" else None
        claims.append(Claim(
            file=kind.file, claim=kind.claim,
            required_role=kind.role.value if kind.role else None, status=state, detail=detail,
            signer=signer.name if signer else None,
            signer_roles=tuple(sorted(r.value for r in signer.roles)) if signer else (),
            signer_identity=(signer.identity.to_json_dict()
                             if signer is not None and signer.identity is not None else None)))
    return claims, status


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _provenance_section(verdict: Verdict, state: Status, detail: str) -> Section:
    prov = verdict.provenance
    if state != "verified" or prov is None:
        return Section(state if state != "verified" else "failed", detail)
    predicate = prov.predicate
    definition = predicate.get("buildDefinition", {})
    internal = definition.get("internalParameters", {}) if isinstance(definition, dict) else {}
    run = predicate.get("runDetails", {})
    builder = run.get("builder", {}) if isinstance(run, dict) else {}
    version = builder.get("version", {}) if isinstance(builder, dict) else {}
    code = prov.inputs.code
    facts = {
        "name": prov.name,
        "identity": prov.identity,
        "inputs": prov.inputs.canonical_inputs(),
        "rootDigest": verdict.root_digest,
        "builder": {"id": prov.builder_id,
                    "mlprov": _text(version.get("mlprov") if isinstance(version, dict) else None),
                    "python": _text(internal.get("python") if isinstance(internal, dict) else None),
                    "platform": _text(internal.get("platform")
                                      if isinstance(internal, dict) else None)},
        "invocationId": prov.invocation_id,
        "startedOn": prov.started_on,
        "finishedOn": prov.finished_on,
        "code": {"uri": code.uri, "commit": code.commit, "dirty": code.dirty},
        "datasets": [{"name": d.name, "digest": d.digest, "uri": d.uri} for d in prov.inputs.data],
        "parents": [p.to_json_dict() for p in parents_from_predicate(predicate)],
    }
    return Section("verified", None, facts)


def _files_section(verdict: Verdict, oms: tuple[Status, str]) -> Section:
    checks = [c for c in verdict.checks if c.name == "files"]
    if oms[0] != "verified":
        return Section(oms[0] if oms[0] != "absent" else "failed", oms[1])
    if not verdict.model:
        return Section("not-checked", "the model was not given (pass --model to check it)",
                       {"rootDigest": verdict.root_digest})
    state, detail = _status(checks)
    if state != "verified":
        return Section(state, detail)
    return Section("verified", detail, {"rootDigest": verdict.root_digest})


def _sbom_section(verdict: Verdict, state: Status, detail: str) -> Section:
    if state != "verified" or verdict.sbom is None:
        return Section(state if state != "verified" else "failed", detail)
    return Section("verified", None, verdict.sbom.to_summary())


def _eval_section(verdict: Verdict, state: Status, detail: str) -> Section:
    evaluation = verdict.evaluation
    if state != "verified" or evaluation is None:
        return Section(state if state != "verified" else "failed", detail)
    signed = verdict.statements.get(EVAL_FILE)
    return Section("verified", None, {
        "evaluator": evaluation.evaluator.to_json_dict(),
        "metrics": dict(evaluation.metrics),
        "slices": {k: dict(v) for k, v in evaluation.slices.items()},
        "datasets": [{"name": d.name, "digest": f"sha256:{d.sha256}", "uri": d.uri}
                     for d in evaluation.datasets],
        "signedBy": signed.signer.name if signed is not None else None})


def _card_section(verdict: Verdict, state: Status, detail: str) -> Section:
    if state != "verified" or verdict.sbom is None:
        return Section(state if state != "verified" else "failed", detail)
    return Section("verified", None, {
        "file": CARD_FILE, "digest": f"sha256:{verdict.sbom.pinned.get(CARD_FILE)}"})


def _lineage_section(verdict: Verdict) -> Section:
    checks = [c for c in verdict.checks if c.name == "lineage"]
    if not checks:
        return Section("absent", "no lineage check ran (a root model, or parents not found)")
    state, detail = _status(checks)
    return Section(state, detail)


def inspection_of(verdict: Verdict) -> Inspection:
    """Build the auditor's view from a verdict (nothing else is read)."""
    claims, status = _claims(verdict)
    return Inspection(
        verdict=verdict, claims=claims,
        provenance=_provenance_section(verdict, *status[PROVENANCE_FILE]),
        files=_files_section(verdict, status[OMS_FILE]),
        sbom=_sbom_section(verdict, *status[SBOM_BUNDLE_FILE]),
        evaluation=_eval_section(verdict, *status[EVAL_FILE]),
        card=_card_section(verdict, *status[CARD_FILE]),
        lineage=_lineage_section(verdict))


@checked(evidence=EVIDENCE, trust=optional(TRUST), key=optional(PATH), model=optional(PATH),
         progress=CALLBACK, hashing=optional(HASH_JOB))
def inspect_evidence(evidence: Path | str | EvidenceSource, *,
                     trust: Trust | Path | str | None = None,
                     key: Path | str | None = None, model: Path | str | None = None,
                     progress: ProgressCallback | None = None,
                     hashing: HashJob | None = None) -> Inspection:
    """Verify an evidence directory (and the model's files, when given), then inspect it.

    ``evidence`` may also be an :class:`~mlprov.evidence.EvidenceSource` (see
    :func:`mlprov.verification.verify`).

    Example:
        inspection = mlprov.inspect_evidence("evidence/", trust="trust.yaml")

    Raises:
        InputError: the evidence, model or trust cannot be found or read.
        KeyMaterialError, TrustError: unusable trust material.
    """
    from mlprov.verification import verify

    source: Path | EvidenceSource
    if isinstance(evidence, EvidenceSource):
        source = evidence
    else:
        source = Path(evidence)
        if not source.is_dir():
            from mlprov.errors import InputError

            raise InputError(f"not an evidence directory: {source}",
                             hint="pass the directory `mlprov attest --out` wrote")
    return inspection_of(verify(model, evidence=source, trust=trust, key=key,
                                progress=progress, hashing=hashing))
