"""The gate of catalog changes: renames, deletions, tags and descriptions.

These changes grant nothing a version did not have, so no policy gates them
unless the registry's ``mlprov.toml`` names one under ``[gates.changes]``
(``rename``, ``delete``, ``tags``, ``descriptions``). Without one a built-in
rule allows them, as settings changes are allowed to the registry's owner:
``registry-owner`` for renames and deletions, ``ungated`` for tags and
descriptions. A named policy is evaluated, through the gatekeeper, over every
version in use the change touches (a model's change: each of its versions;
all must pass), with the change in ``input.registry.change``. Whatever the
gate says, the change is signed, audited and announced by the recorder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlprov.canonical import canonical_json
from mlprov.errors import VerificationError
from mlprov.registry._config import UNGATED
from mlprov.registry._gate import GateOutcome, rule_outcome
from mlprov.registry._gatekeeper import evaluate_gate, verify_for_gate
from mlprov.registry._records import PendingChange
from mlprov.registry._uri import version_uri
from mlprov.registry.interface import ReadTransaction, VersionRecord

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["RULES", "catalog_change", "model_uri"]

#: The built-in rule allowing each catalog change no policy gates.
RULES = {"rename": "registry-owner", "delete": "registry-owner", "tags": "ungated",
         "descriptions": "ungated"}


def model_uri(name: str) -> str:
    """``models:/NAME``: a model as a whole (the subject of its renames and deletion)."""
    return f"models:/{name}"


def _outcome(registry: RegistryContext, tx: ReadTransaction, gate_name: str,
             versions: Sequence[VersionRecord], *, what: str, actor: str, reason: str | None,
             state: dict[str, Any]) -> tuple[GateOutcome, dict[str, str]]:
    gate = registry.settings.config.gate_for_change(gate_name)
    if gate is None:
        return rule_outcome(RULES[gate_name]), {}
    if gate == UNGATED:
        return rule_outcome("ungated"), {}
    if not versions:  # nothing for a policy to look at: a model without versions in use
        return rule_outcome("no-versions"), {}
    outcomes: list[tuple[str, GateOutcome]] = []
    inputs: dict[str, str] = {}
    for record in versions:
        uri = version_uri(record.name, record.version)
        try:
            facts = verify_for_gate(registry, tx, record)
        except VerificationError as exc:
            outcomes.append((uri, rule_outcome("evidence-verified", allowed=False,
                                               deny=(str(exc),))))
            continue
        prefix = "" if len(versions) == 1 else f"{uri}#"
        inputs.update({f"{prefix}{k}": v for k, v in facts.input_attestations().items()})
        outcomes.append((uri, evaluate_gate(
            registry, tx, gate, record=record, facts=facts, what=what,
            transition={"actor": actor, "reason": reason}, state=state)))
    if len(outcomes) == 1:
        return outcomes[0][1], inputs
    first = outcomes[0][1]
    return GateOutcome(
        allowed=all(o.allowed for _u, o in outcomes),
        deny=tuple(f"{uri}: {m}" for uri, o in outcomes for m in o.deny),
        warn=tuple(f"{uri}: {m}" for uri, o in outcomes for m in o.warn),
        policy_uri=first.policy_uri, policy_digest=first.policy_digest, gate=first.gate,
    ), inputs


def catalog_change(registry: RegistryContext, tx: ReadTransaction, *, kind: str, gate: str,
                   name: str, version: VersionRecord | None, target: str, actor: str,
                   reason: str | None, details: dict[str, Any],
                   versions: Sequence[VersionRecord] | None = None, what: str,
                   model: str | None = None) -> PendingChange:
    """The pending change ``kind`` of a model (``version`` None) or of one version.

    ``gate`` names the ``[gates.changes]`` entry. ``versions``: what a model's
    change touches (renames, deletions), bound into its decision's subject
    (``models:/NAME``, the digest of the change and of each version's
    registration); without them (a model's tags or description) the subject's
    digest is the change's and a policy looks at every version in use of
    ``model`` (default ``name``). A version's change is about that version (its
    root digest).
    """
    touched: list[VersionRecord]
    if version is not None:
        touched = [version]
    elif versions is not None:
        touched = list(versions)
    else:
        configured = registry.settings.config.gate_for_change(gate)
        touched = tx.list_versions(model or name) if configured not in (None, UNGATED) else []
    state = {"change": {"kind": kind, **details}}
    outcome, inputs = _outcome(registry, tx, gate, touched, what=what, actor=actor,
                               reason=reason, state=state)
    change = {"name": name, "version": version.version if version is not None else None,
              **details}
    if version is not None:
        subject_name = version_uri(name, version.version)
        subject_digest = version.root_digest
        inputs.setdefault("registry:registration", version.registration)
    else:
        subject_name = model_uri(name)
        bound: dict[str, Any] = {"change": change}
        if versions is not None:
            bound["versions"] = {str(v.version): v.registration for v in versions}
        subject_digest = "sha256:" + hashlib.sha256(canonical_json(bound)).hexdigest()
    return PendingChange(kind=kind, name=name,
                         version=version.version if version is not None else None,
                         target=target, actor=actor, reason=reason, outcome=outcome,
                         subject_name=subject_name, subject_digest=subject_digest,
                         resource_uri=subject_name, inputs=inputs, change=change,
                         details=details)
