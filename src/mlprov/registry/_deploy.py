"""Deployments: several pinned model versions as one versioned, signed, promotable unit.

``deployment create NAME --model A@production --model B/3`` resolves each URI
now, re-verifies each version, and records deployment ``NAME`` version N: a
spec (canonical JSON naming each member's name, version, identity and root
digest) signed by the registry key as an in-toto statement
(``https://mlprov.dev/predicates/deployment/v1``), plus the usual decision,
audit entry and event. Promoting a deployment to a stage evaluates that stage's
gate for every member; all must pass. Both go through the gatekeeper (config
pin, re-verification, gate evaluation) and the recorder, as a version's moves do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError, VerificationError
from mlprov.registry._decisions import DEPLOYMENT_PREDICATE, sign, verify_signed
from mlprov.registry._gate import GateOutcome, rule_outcome
from mlprov.registry._gatekeeper import check_config_pinned, evaluate_gate, verify_for_gate
from mlprov.registry._recorder import after_commit, record_change, retrying
from mlprov.registry._uri import check_name, parse_model_uri, parse_stage, version_uri
from mlprov.registry.interface import DeploymentRecord, NotFoundError, Stage
from mlprov.statements import Statement

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._records import ChangeResult

__all__ = ["DEPLOYMENT_SCHEMA", "DeploymentView", "create_deployment", "deployment_uri",
           "list_deployments", "promote_deployment", "show_deployment"]

DEPLOYMENT_SCHEMA = "https://mlprov.dev/schemas/deployment/v1"


def deployment_uri(name: str, version: int) -> str:
    """``deployments:/NAME/N``."""
    return f"deployments:/{name}/{version}"


@dataclass(frozen=True)
class DeploymentView:
    """A deployment version, its signed spec verified."""

    record: DeploymentRecord
    spec: dict[str, Any]
    signer: str

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov deployment show --json``."""
        r = self.record
        return {"name": r.name, "version": r.version, "uri": deployment_uri(r.name, r.version),
                "stage": r.stage.value, "specDigest": r.spec_digest,
                "statement": r.statement, "decision": r.decision,
                "stageDecision": r.stage_decision, "createdAt": r.created_at,
                "models": self.spec.get("models", []), "signedBy": self.signer}


def _members(registry: RegistryContext, tx: Any, uris: list[str]) -> list[tuple[str, Any]]:
    from mlprov.registry._records import resolve_uri

    if not uris:
        raise InputError("a deployment needs at least one --model")
    members: list[tuple[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for uri in uris:
        resolved = resolve_uri(tx, parse_model_uri(uri))
        key = (resolved.name, resolved.version)
        if key in seen:
            raise InputError(f"{version_uri(*key)} is named twice")
        seen.add(key)
        members.append((uri, resolved.record))
    return members


def create_deployment(registry: RegistryContext, name: str, models: list[str], *, reason: str,
                      actor: str) -> ChangeResult:
    """Pin the versions ``models`` name as deployment ``name``'s next version."""
    from mlprov.registry._records import PendingChange

    check_name(name, what="deployment name")
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            members = _members(registry, tx, models)
            failures: list[str] = []
            inputs: dict[str, str] = {}
            for _uri, record in members:
                try:
                    verify_for_gate(registry, tx, record)
                except VerificationError as exc:
                    failures.append(f"{version_uri(record.name, record.version)}: {exc}")
                inputs[f"{version_uri(record.name, record.version)}#registration"] = \
                    record.registration
            existing = tx.list_deployments(name)
            number = (existing[-1].version if existing else 0) + 1
            spec = {"schema": DEPLOYMENT_SCHEMA, "name": name, "version": number,
                    "registry": registry.settings.registry_id, "models": [
                        {"name": r.name, "version": r.version, "uri": version_uri(r.name,
                                                                                  r.version),
                         "requested": uri, "identity": r.identity, "rootDigest": r.root_digest}
                        for uri, r in members]}
            spec_bytes = canonical_json(spec)
            spec_digest = registry.blobs.put_bytes(spec_bytes).digest
            statement = Statement.model_validate({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": deployment_uri(name, number),
                             "digest": {"sha256": spec_digest.removeprefix("sha256:")}}],
                "predicateType": DEPLOYMENT_PREDICATE, "predicate": spec})
            statement_digest = registry.blobs.put_bytes(
                sign(statement, registry.settings.signer)).digest
            inputs[f"{deployment_uri(name, number)}#statement"] = statement_digest
            outcome = (rule_outcome("deployment-members-verified") if not failures else
                       rule_outcome("deployment-members-verified", allowed=False,
                                    deny=tuple(failures)))
            details = {"models": [version_uri(r.name, r.version) for _u, r in members],
                       "spec": spec_digest, "statement": statement_digest}
            pending = PendingChange(
                kind="deployment.create", name=name, version=number, target="deployment",
                actor=actor, reason=reason, outcome=outcome,
                subject_name=deployment_uri(name, number), subject_digest=spec_digest,
                resource_uri=deployment_uri(name, number), inputs=inputs,
                change={"name": name, "version": number, **details}, details=details)

            def apply(decision: str, seq: int, now: str) -> None:
                tx.insert_deployment(DeploymentRecord(
                    name=name, version=number, spec_digest=spec_digest,
                    statement=statement_digest, decision=decision, stage=Stage.NONE,
                    stage_decision=None, created_at=now, created_seq=seq))

            return record_change(registry, tx, pending, apply)

    return after_commit(registry, retrying(run))


def _combine(outcomes: list[tuple[str, GateOutcome]]) -> GateOutcome:
    first = outcomes[0][1]
    deny = tuple(f"{uri}: {message}" for uri, o in outcomes for message in o.deny)
    warn = tuple(f"{uri}: {message}" for uri, o in outcomes for message in o.warn)
    return GateOutcome(allowed=all(o.allowed for _u, o in outcomes), deny=deny, warn=warn,
                       policy_uri=first.policy_uri, policy_digest=first.policy_digest,
                       input_digest=None, gate=first.gate)


def promote_deployment(registry: RegistryContext, name: str, version: int, *, to: Stage | str,
                       reason: str, actor: str) -> ChangeResult:
    """Move a deployment version to a stage when the stage's gate allows every member."""
    from mlprov.registry._records import PendingChange

    stage = to if isinstance(to, Stage) else parse_stage(to)
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            record = tx.get_deployment(name, version)
            if record is None:
                raise NotFoundError(f"no deployment {deployment_uri(name, version)}",
                                    hint="`mlprov deployment list` shows the deployments")
            if record.stage is stage:
                raise InputError(f"{deployment_uri(name, version)} is already in {stage.value}")
            view = _verified_view(registry, record)
            gate = registry.settings.config.gate_for_stage(stage)
            outcomes: list[tuple[str, GateOutcome]] = []
            inputs: dict[str, str] = {f"{deployment_uri(name, version)}#statement":
                                      record.statement}
            for member in view.spec["models"]:
                mname, mversion = member["name"], member["version"]
                uri = version_uri(mname, mversion)
                model_record = tx.get_version(mname, mversion)
                if model_record is None or model_record.root_digest != member["rootDigest"] \
                        or model_record.deleted_seq is not None:
                    outcomes.append((uri, rule_outcome("deployment-member", allowed=False,
                                                       deny=("the pinned version is gone, "
                                                             "changed or deleted",))))
                    continue
                try:
                    facts = verify_for_gate(registry, tx, model_record)
                except VerificationError as exc:
                    outcomes.append((uri, rule_outcome("evidence-verified", allowed=False,
                                                       deny=(str(exc),))))
                    continue
                inputs.update({f"{uri}#{k}": v for k, v in facts.input_attestations().items()})
                outcomes.append((uri, evaluate_gate(
                    registry, tx, gate, record=model_record, facts=facts,
                    what=f"moving deployment {name} v{version} to {stage.value}",
                    transition={"from": record.stage.value, "to": stage.value,
                                "actor": actor, "reason": reason},
                    state={"deployment": name, "deploymentVersion": version})))
            outcome = _combine(outcomes)
            details = {"from": record.stage.value, "to": stage.value}
            pending = PendingChange(
                kind="deployment.transition", name=name, version=version,
                target="deployment.stage", actor=actor, reason=reason, outcome=outcome,
                subject_name=deployment_uri(name, version), subject_digest=record.spec_digest,
                resource_uri=deployment_uri(name, version), inputs=inputs,
                change={"name": name, "version": version,
                        "transition": {"from": record.stage.value, "to": stage.value}},
                details=details)
            return record_change(registry, tx, pending, lambda decision, _seq, _now:
                                 tx.set_deployment_stage(name, version, stage, decision))

    return after_commit(registry, retrying(run))


def _verified_view(registry: RegistryContext, record: DeploymentRecord) -> DeploymentView:
    """Verify a deployment's signed statement and that it is the spec the row names."""
    from mlprov.registry._facts import RegistryIntegrityError

    signed = verify_signed(registry.blobs.get_bytes(record.statement), registry.settings.trust,
                           what=f"statement of {deployment_uri(record.name, record.version)}",
                           predicate_type=DEPLOYMENT_PREDICATE)
    spec = signed.predicate
    spec_bytes = registry.blobs.get_bytes(record.spec_digest)
    if loads_strict(spec_bytes, what="deployment spec") != spec or \
            signed.statement.subject_sha256() != {record.spec_digest.removeprefix("sha256:")} \
            or spec.get("name") != record.name or spec.get("version") != record.version:
        raise RegistryIntegrityError(f"the registry's row for "
                                     f"{deployment_uri(record.name, record.version)} disagrees "
                                     "with its signed statement")
    return DeploymentView(record=record, spec=spec, signer=signed.signer.name)


def show_deployment(registry: RegistryContext, name: str, version: int | None = None
                    ) -> list[DeploymentView]:
    """One deployment version (or all of ``name``), each verified."""
    with registry.metadata.read() as tx:
        records = ([r for r in [tx.get_deployment(name, version)] if r is not None]
                   if version is not None else tx.list_deployments(name))
    if not records:
        raise NotFoundError(f"no deployment {name}" + (f" v{version}" if version else ""),
                            hint="`mlprov deployment list` shows the deployments")
    return [_verified_view(registry, r) for r in records]


def list_deployments(registry: RegistryContext) -> list[DeploymentRecord]:
    """Every deployment version."""
    with registry.metadata.read() as tx:
        return tx.list_deployments()

