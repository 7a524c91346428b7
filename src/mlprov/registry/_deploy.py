"""Deployments: several pinned model versions as one versioned, signed, promotable unit.

``deployment create NAME --model A@production --model B/3`` resolves each URI
now, re-verifies each version, and records deployment ``NAME`` version N: a
spec (canonical JSON naming each member's name, version, identity and root
digest) signed by the registry key as an in-toto statement
(``https://mlprov.dev/predicates/deployment/v1``), plus the usual decision,
audit entry and event. Promoting a deployment to a stage evaluates that stage's
gate for every member; all must pass. Both go through the gatekeeper (config
pin, re-verification, gate evaluation) and the recorder, as a version's moves do.

Deployment aliases (``deployments:/NAME@ALIAS``) are gated like model aliases:
the alias's gate in ``mlprov.toml`` (with the registry's thresholds) is
evaluated for every member, over its facts and its own stage, so an alias gated
as production takes only a deployment whose members are all in Production.
They live in the audit log alone (kinds ``deployment.alias.set|delete``, target
``deployment@ALIAS``; no table): the latest accepted entry is the alias, found
through the log's (name, target) index and verified like any placement
(:func:`check_deployment_placement`: its signed decision, and nothing after it
in the intact chain to the signed head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError, VerificationError
from mlprov.registry._catalog import missing_model
from mlprov.registry._decisions import (
    DEPLOYMENT_PREDICATE,
    VSA_PREDICATE,
    SignedByRegistry,
    change_of,
    sign,
    verify_signed,
)
from mlprov.registry._facts import RegistryIntegrityError, read_decision
from mlprov.registry._gate import GateOutcome, rule_outcome
from mlprov.registry._gatekeeper import (
    check_config_pinned,
    dry_result,
    evaluate_gate,
    verify_for_gate,
    verify_record,
)
from mlprov.registry._placement import Scope
from mlprov.registry._pull import check_latest
from mlprov.registry._recorder import after_commit, change_tx, record_change, retrying
from mlprov.registry._reports import DeploymentMember
from mlprov.registry._show import verified_stage
from mlprov.registry._uri import (
    check_alias,
    check_name,
    check_version,
    parse_model_uri,
    parse_stage,
    version_uri,
)
from mlprov.registry.interface import (
    AuditRecord,
    DeploymentRecord,
    NotFoundError,
    ReadTransaction,
    Stage,
    VersionRecord,
    WriteTransaction,
)
from mlprov.statements import Statement

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._facts import VersionFacts
    from mlprov.registry._records import ChangeResult
    from mlprov.trust import Trust

__all__ = ["DEPLOYMENT_SCHEMA", "DeploymentView", "alias_target", "check_deployment_placement",
           "create_deployment", "current_alias", "delete_deployment_alias", "deployment_uri",
           "list_deployments", "promote_deployment", "set_deployment_alias",
           "show_deployment", "verified_members", "verified_view"]

DEPLOYMENT_SCHEMA = "https://mlprov.dev/schemas/deployment/v1"


def deployment_uri(name: str, version: int) -> str:
    """``deployments:/NAME/N``."""
    return f"deployments:/{name}/{version}"


def alias_target(alias: str) -> str:
    """The audit target of a deployment alias: ``deployment@ALIAS``."""
    return f"deployment@{alias}"


@dataclass(frozen=True)
class DeploymentView:
    """A deployment version, its signed spec verified.

    ``members`` (from :func:`show_deployment`): each pinned version re-verified,
    with its verified stage; ``aliases``: the deployment aliases pointing here,
    each backed by its verified decision.
    """

    record: DeploymentRecord
    spec: dict[str, Any]
    signer: str
    members: tuple[DeploymentMember, ...] = ()
    aliases: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov deployment show --json``."""
        r = self.record
        return {"name": r.name, "version": r.version, "uri": deployment_uri(r.name, r.version),
                "stage": r.stage.value, "specDigest": r.spec_digest,
                "statement": r.statement, "decision": r.decision,
                "stageDecision": r.stage_decision, "createdAt": r.created_at,
                "models": self.spec.get("models", []), "signedBy": self.signer,
                "members": [m.to_json_dict() for m in self.members],
                "aliases": list(self.aliases)}


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


def _gate_members(registry: RegistryContext, tx: ReadTransaction, view: DeploymentView,
                  gate: str | None, *, what: str, transition: dict[str, Any],
                  state: dict[str, Any]) -> tuple[GateOutcome, dict[str, str]]:
    """Evaluate ``gate`` for every member of a deployment; all must pass.

    Each member is re-verified and gated over its own facts and stage, with the
    registry's thresholds; its messages are prefixed with its URI.
    """
    record = view.record
    outcomes: list[tuple[str, GateOutcome]] = []
    inputs: dict[str, str] = {f"{deployment_uri(record.name, record.version)}#statement":
                              record.statement}
    for member in view.spec["models"]:
        mname, mversion = member["name"], member["version"]
        uri = version_uri(mname, mversion)
        model_record = tx.get_version(mname, mversion)
        if model_record is None or model_record.root_digest != member["rootDigest"] \
                or model_record.deleted_seq is not None:
            outcomes.append((uri, rule_outcome("deployment-member", allowed=False, deny=(
                "the pinned version is gone, changed or deleted",))))
            continue
        try:
            facts = verify_for_gate(registry, tx, model_record)
        except VerificationError as exc:
            outcomes.append((uri, rule_outcome("evidence-verified", allowed=False,
                                               deny=(str(exc),))))
            continue
        inputs.update({f"{uri}#{k}": v for k, v in facts.input_attestations().items()})
        outcomes.append((uri, evaluate_gate(registry, tx, gate, record=model_record,
                                            facts=facts, what=what, transition=transition,
                                            state=state)))
    return _combine(outcomes), inputs


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
            view = verified_view(registry, record)
            outcome, inputs = _gate_members(
                registry, tx, view, registry.settings.config.gate_for_stage(stage),
                what=f"moving deployment {name} v{version} to {stage.value}",
                transition={"from": record.stage.value, "to": stage.value, "actor": actor,
                            "reason": reason},
                state={"deployment": name, "deploymentVersion": version})
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


def verified_view(registry: RegistryContext, record: DeploymentRecord, *,
                  trust: Trust | None = None) -> DeploymentView:
    """Verify a deployment's signed statement and that it is the spec the row names."""
    signed = verify_signed(registry.blobs.get_bytes(record.statement),
                           trust or registry.settings.trust,
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
    """One deployment version (or all of ``name``), each verified with its members.

    Each member is re-verified (:func:`verified_members`) and each deployment
    alias pointing at a version is checked against its signed decision.

    Raises:
        NotFoundError: no such deployment (version).
        RegistryIntegrityError: a spec, member, stage or alias does not verify.
    """
    settings = registry.settings
    trust = settings.trust
    with registry.metadata.read() as tx:
        records = ([r for r in [tx.get_deployment(name, version)] if r is not None]
                   if version is not None else tx.list_deployments(name))
        if not records:
            raise NotFoundError(f"no deployment {name}" + (f" v{version}" if version else ""),
                                hint="`mlprov deployment list` shows the deployments")
        aliases = _verified_aliases(tx, name, {r.version: r for r in records}, trust,
                                    settings.registry_id)
        views = []
        for record in records:
            view = verified_view(registry, record)
            members = tuple(m for m, _r, _f in verified_members(registry, tx, view))
            views.append(DeploymentView(record=record, spec=view.spec, signer=view.signer,
                                        members=members,
                                        aliases=tuple(sorted(aliases.get(record.version, ())))))
    return views


def verified_members(registry: RegistryContext, tx: ReadTransaction, view: DeploymentView, *,
                     trust: Trust | None = None
                     ) -> list[tuple[DeploymentMember, VersionRecord, VersionFacts]]:
    """Every member the verified spec pins, re-verified, with its verified stage.

    Raises:
        RegistryIntegrityError: a pinned version is gone, or its row is not what the
            spec pins, or it does not verify.
    """
    out = []
    using = trust or registry.settings.trust
    for member in view.spec["models"]:
        mname, mversion = member["name"], member["version"]
        uri = version_uri(mname, mversion)
        record = tx.get_version(mname, mversion)
        if record is None and tx.get_model(mname) is None:  # renamed since (or never held)
            found = missing_model(tx, mname)
            raise NotFoundError(f"{deployment_uri(view.record.name, view.record.version)} "
                                f"pins {uri}: {found}", hint="create a deployment version "
                                "naming the versions as they are called now")
        if record is None or (record.root_digest, record.identity) != (
                member["rootDigest"], member["identity"]):
            raise RegistryIntegrityError(
                f"{deployment_uri(view.record.name, view.record.version)} pins {uri}, which "
                "is gone from the registry or is not the version it pinned")
        if record.deleted_seq is not None:
            raise NotFoundError(
                f"{deployment_uri(view.record.name, view.record.version)} pins {uri}, which "
                f"was deleted (audit entry {record.deleted_seq})",
                hint="a deleted version is not handed out; create a deployment version "
                     "without it")
        facts = verify_record(registry, record, [], trust=trust, tx=tx)
        stage = verified_stage(tx, record, using, registry.settings.registry_id)
        out.append((DeploymentMember(
            name=mname, version=mversion, uri=uri, requested=str(member.get("requested", uri)),
            identity=str(facts.verdict.identity), root_digest=str(facts.verdict.root_digest),
            stage=stage), record, facts))
    return out


# ---------------------------------------------------------------------- aliases


def current_alias(tx: ReadTransaction, name: str, alias: str) -> AuditRecord | None:
    """The audit entry that set ``deployments:/NAME@ALIAS`` last, or None (never, or deleted).

    Found through the columns; :func:`check_deployment_placement` verifies it.
    """
    latest = tx.audit_entries(name=name, target=alias_target(alias), accepted=True,
                              descending=True, limit=1)
    if not latest or latest[0].kind != "deployment.alias.set" or latest[0].version is None:
        return None
    return latest[0]


def _verified_aliases(tx: ReadTransaction, name: str, records: dict[int, DeploymentRecord],
                      trust: Trust, registry_id: str) -> dict[int, list[str]]:
    """Version -> the aliases pointing at it (of ``records``), each decision verified."""
    prefix = alias_target("")
    targets = {e.target for e in tx.audit_entries(name=name, accepted=True)
               if e.target is not None and e.target.startswith(prefix)}
    found: dict[int, list[str]] = {}
    for target in sorted(targets):
        alias = target[len(prefix):]
        entry = current_alias(tx, name, alias)
        if entry is None or entry.version not in records or entry.decision is None:
            continue
        check_deployment_placement(tx, records[entry.version],
                                   read_decision(tx.get_decision, entry.decision),
                                   f"@{alias}", trust, registry_id)
        found.setdefault(entry.version, []).append(alias)
    return found


def _expected(via: str, record: DeploymentRecord) -> tuple[set[str], str, Scope]:
    if via.startswith("@"):
        return {"deployment.alias.set"}, alias_target(via[1:]), "any"
    if via == "stage":
        return {"deployment.transition"}, "deployment.stage", "version"
    return {"deployment.create"}, "deployment", "none"


def check_deployment_placement(tx: ReadTransaction, record: DeploymentRecord,
                               decision_bytes: bytes, via: str, trust: Trust,
                               registry_id: str) -> SignedByRegistry:
    """Verify the decision that put a deployment version where a URI found it.

    ``via``: ``version`` or ``latest`` (its creation), ``stage``, or ``@ALIAS``.
    Signed by the registry, about this version and its spec, passed, of the
    right kind and target, held by its audit entry and not superseded since.

    Raises:
        RegistryIntegrityError: otherwise; SignatureError: not the registry's.
    """
    uri = deployment_uri(record.name, record.version)
    what = f"the decision behind {uri} ({via})"
    decision = verify_signed(decision_bytes, trust, what=what, predicate_type=VSA_PREDICATE)
    change = change_of(decision)
    kinds, target, scope = _expected(via, record)
    transition = change.get("transition") if isinstance(change.get("transition"), dict) else {}
    assert isinstance(transition, dict)
    problems = []
    if decision.predicate.get("resourceUri") != uri:
        problems.append(f"it is about {decision.predicate.get('resourceUri')}")
    if decision.statement.subject_sha256() != {record.spec_digest.removeprefix("sha256:")}:
        problems.append("it names another spec")
    if decision.predicate.get("verificationResult") != "PASSED":
        problems.append("it was a denial")
    if change.get("registry") != registry_id:
        problems.append("it was made by another registry")
    if change.get("kind") not in kinds:
        problems.append(f"it records a {change.get('kind')} change")
    if via.startswith("@") and transition.get("alias") != via[1:]:
        problems.append("it set another alias")
    if via == "stage" and transition.get("to") != record.stage.value:
        problems.append(f"it moved the deployment to {transition.get('to')}")
    if problems:
        raise RegistryIntegrityError(f"{what} does not match the registry's records: "
                                     f"{'; '.join(problems)}")
    seq = change.get("auditSeq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise RegistryIntegrityError(f"{what} names no audit entry")
    check_latest(tx, decision_bytes, seq, name=record.name, version=record.version,
                 target=target, scope=scope, what=what)
    return decision


def set_deployment_alias(registry: RegistryContext, name: str, alias: str, version: int, *,
                         reason: str, actor: str, dry_run: bool = False) -> ChangeResult:
    """Point ``deployments:/NAME@ALIAS`` at a version, if the alias's gate allows every member.

    Raises:
        NotFoundError: no such deployment version.
        InputError: the alias already points there.
        PolicyDeniedError: a member's gate said no (audited, unless ``dry_run``).
    """
    from mlprov.registry._records import PendingChange

    check_name(name, what="deployment name")
    check_alias(alias)
    check_version(version)
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with change_tx(registry, dry_run) as tx:
            record = tx.get_deployment(name, version)
            if record is None:
                raise NotFoundError(f"no deployment {deployment_uri(name, version)}",
                                    hint="`mlprov deployment list` shows the deployments")
            current = current_alias(tx, name, alias)
            previous = current.version if current is not None else None
            if previous == version:
                raise InputError(f"deployments:/{name}@{alias} already points to version "
                                 f"{version}")
            outcome, inputs = _gate_members(
                registry, tx, verified_view(registry, record),
                registry.settings.config.gate_for_alias(alias),
                what=f"pointing deployments:/{name}@{alias} at v{version}",
                transition={"alias": alias, "actor": actor, "reason": reason},
                state={"deployment": name, "deploymentVersion": version,
                       "deploymentStage": record.stage.value, "alias": alias,
                       "fromDeploymentVersion": previous, "toDeploymentVersion": version})
            details = {"alias": alias, "from": previous, "to": version}
            pending = PendingChange(
                kind="deployment.alias.set", name=name, version=version,
                target=alias_target(alias), actor=actor, reason=reason, outcome=outcome,
                subject_name=deployment_uri(name, version), subject_digest=record.spec_digest,
                resource_uri=deployment_uri(name, version), inputs=inputs,
                change={"name": name, "version": version,
                        "transition": {"alias": alias, "fromVersion": previous,
                                       "toVersion": version}},
                details=details)
            if dry_run:
                return dry_result(pending)
            assert isinstance(tx, WriteTransaction)
            return record_change(registry, tx, pending)  # the log entry is the alias

    if dry_run:
        return run()
    return after_commit(registry, retrying(run))


def delete_deployment_alias(registry: RegistryContext, name: str, alias: str, *, reason: str,
                            actor: str) -> ChangeResult:
    """Remove a deployment alias: never gated (it grants nothing), signed and audited.

    Raises:
        NotFoundError: the alias does not exist.
    """
    from mlprov.registry._records import PendingChange

    check_name(name, what="deployment name")
    check_alias(alias)
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            current = current_alias(tx, name, alias)
            record = tx.get_deployment(name, current.version) \
                if current is not None and current.version is not None else None
            if current is None or record is None:
                raise NotFoundError(f"deployment {name} has no alias {alias!r}",
                                    hint=f"`mlprov deployment show {name}` lists its aliases")
            pending = PendingChange(
                kind="deployment.alias.delete", name=name, version=record.version,
                target=alias_target(alias), actor=actor, reason=reason,
                outcome=rule_outcome("alias-delete"),
                subject_name=deployment_uri(name, record.version),
                subject_digest=record.spec_digest,
                resource_uri=deployment_uri(name, record.version),
                inputs={f"{deployment_uri(name, record.version)}#statement": record.statement},
                change={"name": name, "version": record.version,
                        "transition": {"kind": "deployment.alias.delete", "alias": alias,
                                       "fromVersion": record.version}},
                details={"alias": alias, "from": record.version, "to": None})
            return record_change(registry, tx, pending)

    return after_commit(registry, retrying(run))


def list_deployments(registry: RegistryContext) -> list[DeploymentRecord]:
    """Every deployment version."""
    with registry.metadata.read() as tx:
        return tx.list_deployments()

