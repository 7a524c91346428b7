"""The gatekeeper: what every gated move (versions and deployments) asks before it is recorded.

A move is refused outright while an embedded registry's ``mlprov.toml`` differs
from the recorded one (:func:`check_config_pinned`). Otherwise the version is
re-verified from the blob store (:func:`verify_for_gate`; :func:`verify_record`
is the memoised re-verification every reader of a stored version uses) and the gate the
registry's config names for the move is evaluated over its facts, the transition
and the registry's state (:func:`evaluate_gate`); :func:`gated` turns that into
the :class:`PendingChange` the recorder signs, and :func:`dry_result` into the
answer of a dry run, with nothing signed or recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.errors import InputError, VerificationError
from mlprov.registry import _facts
from mlprov.registry._config import UNGATED
from mlprov.registry._gate import GateOutcome, evaluate, rule_outcome
from mlprov.registry._home import CONFIG_FILE
from mlprov.registry._records import ChangeResult, GatePolicy, PendingChange
from mlprov.registry._uri import check_alias, parse_stage, version_uri
from mlprov.registry.interface import ReadTransaction, RegistryError, Stage, VersionRecord

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._facts import VersionFacts
    from mlprov.trust import Trust

__all__ = ["check_config_pinned", "dry_result", "evaluate_gate", "gate_policy", "gated",
           "policy_uri_prefix", "registry_state", "verify_for_gate", "verify_record"]


def check_config_pinned(registry: RegistryContext) -> None:
    """Refuse changes while mlprov.toml on disk differs from the recorded one."""
    recorded = registry.settings.config_bytes
    if registry.location.config_file is None:  # a team registry's config is only in its database
        return
    path = registry.home / CONFIG_FILE
    try:
        on_disk = path.read_bytes()
    except OSError:
        on_disk = None
    if on_disk != recorded:
        registry.settings.head()  # another process may have recorded this very edit
        recorded = registry.settings.config_bytes
    if on_disk != recorded:
        raise RegistryError(
            f"{path} differs from the configuration the registry recorded",
            hint=f"record the edit with `mlprov registry set-config {path} --reason TEXT`, "
                 "or restore the file")


def policy_uri_prefix(registry: RegistryContext) -> str:
    """The prefix of the registry's policy URIs in its decisions."""
    return f"mlprov-registry://{registry.settings.registry_id}/policies/"


def gate_policy(registry: RegistryContext, *, stage: Stage | str | None = None,
                alias: str | None = None) -> GatePolicy:
    """Which policy, data and thresholds gate a move to ``stage`` or to ``alias``.

    Raises:
        InputError: neither or both of ``stage`` and ``alias``.
    """
    if (stage is None) == (alias is None):
        raise InputError("name a stage or an alias, not both",
                         hint="the registry gates each change apart: --to STAGE or "
                              "--alias ALIAS")
    if alias is not None:
        check_alias(alias)
        gate = registry.settings.config.gate_for_alias(alias)
    else:
        assert stage is not None
        gate = registry.settings.config.gate_for_stage(
            stage if isinstance(stage, Stage) else parse_stage(stage))
    directory = registry.settings.policies_dir()
    data_file = registry.settings.config.policy_data
    return GatePolicy(gate=gate, path=directory / gate if gate not in (None, UNGATED)
                      else None,
                      data=directory / data_file if data_file else None,
                      thresholds=registry.settings.thresholds)


def registry_state(tx: ReadTransaction, record: VersionRecord,
                   extra: dict[str, Any]) -> dict[str, Any]:
    """The registry's state around ``record``, as policies see it (``input.registry``)."""
    name = record.name
    model = tx.get_model(name)
    return {
        **extra,
        "model": name,
        "version": record.version,
        "stage": record.stage.value,
        "reproducible": record.reproducible,
        "latestVersion": model.latest_version if model else record.version,
        "aliases": {a.alias: a.version for a in tx.list_aliases(name)},
        "stages": {stage.value: [v.version for v in tx.list_versions(
            name, stage=stage, limit=20, descending=True)]
            for stage in (Stage.STAGING, Stage.PRODUCTION)},
    }


def verify_record(registry: RegistryContext, record: VersionRecord, reviews: list[str], *,
                  deep: bool = False, trust: Trust | None = None,
                  tx: ReadTransaction | None = None) -> VersionFacts:
    """Re-verify a version (memoised by content digests; see :class:`VerifiedCache`).

    Parents registered here are found by root digest, so a derived model's
    lineage is walked through the registry's own copies of their evidence.
    With ``trust`` (a pipeline's own), nothing is memoised.
    """
    if tx is None:
        with registry.metadata.read() as read_tx:
            return verify_record(registry, record, reviews, deep=deep, trust=trust, tx=read_tx)
    stand_in = _stand_in_model(registry.home)
    renames = tx.renames_of(record.name)  # a renamed model's versions name an older name
    if trust is not None:
        return _facts.verify_version(record, trust=trust, blobs=registry.blobs,
                                     decisions=tx.get_decision, review_digests=reviews,
                                     deep=deep, lookup=tx.find_by_root, model_path=stand_in,
                                     renames=renames)
    settings = registry.settings
    registry_trust = settings.trust
    return _facts.verify_version(record, trust=registry_trust, blobs=registry.blobs,
                                 decisions=tx.get_decision, review_digests=reviews, deep=deep,
                                 cache=registry.verified, trust_key=settings.trust_digest,
                                 lookup=tx.find_by_root, model_path=stand_in, renames=renames)


def _stand_in_model(home: Path) -> Path | None:
    """An empty, read-only directory ``verify`` takes as a stored version's model.

    Its files are the stored manifest's (no byte is read there); made once per
    registry directory or cache, so re-verification writes nothing. None when
    it cannot be made (then a temporary one is).
    """
    path = home / ".stored-model"
    try:
        if not path.is_dir():
            path.mkdir(mode=0o555, parents=True, exist_ok=True)
        if any(path.iterdir()):
            return None
    except OSError:
        return None
    return path


def verify_for_gate(registry: RegistryContext, tx: ReadTransaction,
                    record: VersionRecord) -> VersionFacts:
    """Re-verify ``record`` with its reviews, in ``tx``.

    Raises:
        VerificationError: the version's evidence does not verify.
    """
    return verify_record(registry, record, [r.digest for r in tx.list_reviews(
        record.name, record.version)], tx=tx)


def evaluate_gate(registry: RegistryContext, tx: ReadTransaction, gate: str | None, *,
                  record: VersionRecord, facts: VersionFacts, what: str,
                  transition: dict[str, Any], state: dict[str, Any],
                  amend: Callable[[dict[str, Any]], None] | None = None) -> GateOutcome:
    """Evaluate ``gate`` over a verified version, the move and the registry's state.

    ``state`` is added to :func:`registry_state`; the registry's thresholds
    replace the policy data's metric thresholds, for a deployment's members too.
    ``amend``: see :func:`._gate.evaluate` (never for a change that is recorded).
    """
    return evaluate(
        gate, what=what, policies_dir=registry.settings.policies_dir(),
        data_file=registry.settings.config.policy_data,
        policy_uri_prefix=policy_uri_prefix(registry), cache=registry.policy_cache,
        verdict=facts.verdict, reviews=facts.reviews, scan=facts.scan, transition=transition,
        registry_state=registry_state(tx, record, state),
        thresholds=registry.settings.thresholds, amend=amend)


def gated(registry: RegistryContext, tx: ReadTransaction, *, kind: str, record: VersionRecord,
          target: str, gate: str | None, what: str, transition: dict[str, Any], actor: str,
          reason: str | None, details: dict[str, Any], must_verify: bool = True,
          state: dict[str, Any] | None = None) -> tuple[PendingChange, VersionFacts | None]:
    """Re-verify ``record``, evaluate ``gate``, and describe the pending change."""
    facts: VersionFacts | None = None
    failure: str | None = None
    try:
        facts = verify_for_gate(registry, tx, record)
    except VerificationError as exc:
        failure = str(exc)
    if facts is None:
        if gate == UNGATED and not must_verify:
            outcome = rule_outcome("ungated")
            details = {**details, "evidenceVerified": False,
                       "verificationFailure": failure}
        else:
            outcome = rule_outcome("evidence-verified", allowed=False, deny=(
                f"the version's evidence does not verify: {failure}",))
    else:
        outcome = evaluate_gate(registry, tx, gate, record=record, facts=facts, what=what,
                                transition=transition, state=state or {})
    inputs = facts.input_attestations() if facts is not None else {
        "registry:registration": record.registration}
    change = {"name": record.name, "version": record.version, "identity": record.identity,
              "transition": {**{k: v for k, v in transition.items()
                                if k not in ("actor", "reason")}, **(state or {})}}
    pending = PendingChange(kind=kind, name=record.name, version=record.version, target=target,
                            actor=actor, reason=reason, outcome=outcome,
                            subject_name=version_uri(record.name, record.version),
                            subject_digest=record.root_digest,
                            resource_uri=version_uri(record.name, record.version),
                            inputs=inputs, change=change, details=details)
    return pending, facts


def dry_result(pending: PendingChange) -> ChangeResult:
    """What a change would decide: the gate's outcome, nothing signed or recorded."""
    outcome = pending.outcome
    details = {**pending.details,
               "policy": {"uri": outcome.policy_uri, "digest": outcome.policy_digest}}
    if outcome.input_digest:
        details["policyInputDigest"] = outcome.input_digest
    return ChangeResult(kind=pending.kind, name=pending.name or "", version=pending.version,
                        target=pending.target, allowed=outcome.allowed, deny=outcome.deny,
                        warn=outcome.warn, policy_uri=outcome.policy_uri,
                        policy_digest=outcome.policy_digest, decision="", seq=0,
                        previous=pending.details.get("from"), details=details,
                        dry_run=True)
