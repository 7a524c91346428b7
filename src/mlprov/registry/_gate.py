"""Evaluate the policy that gates a change, failing closed.

The gate named in ``mlprov.toml`` is a policy file inside the registry's
policies snapshot (evaluated with :mod:`mlprov.policy`), or ``none`` (no policy:
the change is still verified, signed and audited). A stage or alias with no
gate, a policy that cannot be loaded and a policy error all deny.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.errors import MlprovError

if TYPE_CHECKING:
    from mlprov.thresholds import Thresholds

__all__ = ["GateOutcome", "PolicyCache", "rule_outcome"]

#: Built-in rules for changes that no policy file gates, named in decisions.
RULE_PREFIX = "https://mlprov.dev/registry/rules/"


@dataclass(frozen=True)
class GateOutcome:
    """What the gate said, and which policy said it."""

    allowed: bool
    deny: tuple[str, ...]
    warn: tuple[str, ...]
    policy_uri: str
    policy_digest: str
    input_digest: str | None = None
    gate: str | None = None
    decision: dict[str, Any] = field(default_factory=dict)


def rule_outcome(rule: str, *, allowed: bool = True, deny: tuple[str, ...] = ()
                 ) -> GateOutcome:
    """The outcome of a built-in rule (``rule`` names it, e.g. ``ungated``)."""
    uri = f"{RULE_PREFIX}{rule}/v1"
    digest = "sha256:" + hashlib.sha256(uri.encode()).hexdigest()
    return GateOutcome(allowed=allowed, deny=deny, warn=(), policy_uri=uri,
                       policy_digest=digest, gate=rule)


class PolicyCache:
    """Policies loaded (compiled) once per process, keyed by their path and snapshot."""

    def __init__(self) -> None:
        self._policies: dict[str, Any] = {}
        self._data: dict[str, dict[str, Any]] = {}

    def policy(self, path: Path) -> Any:
        """The loaded policy at ``path`` (inside a content-addressed snapshot dir)."""
        key = str(path)
        if key not in self._policies:
            from mlprov.policy import load_policy

            self._policies[key] = load_policy(path)
        return self._policies[key]

    def data(self, path: Path | None) -> dict[str, Any] | None:
        """The data file named in the config, or None (each policy then uses its own)."""
        if path is None:
            return None
        key = str(path)
        if key not in self._data:
            from mlprov.policy import load_policy_data

            self._data[key] = load_policy_data(path)
        return self._data[key]


def evaluate(gate: str | None, *, what: str, policies_dir: Path, data_file: str | None,
             policy_uri_prefix: str, cache: PolicyCache, verdict: Any, reviews: list[Any],
             scan: dict[str, Any] | None, transition: dict[str, Any],
             registry_state: dict[str, Any], thresholds: Thresholds | None = None,
             amend: Callable[[dict[str, Any]], None] | None = None) -> GateOutcome:
    """Evaluate ``gate`` for a change; never raises for a policy's own failure (denies).

    ``thresholds`` (the registry's own, from ``--threshold``) replace the policy
    data's metric thresholds (:meth:`mlprov.thresholds.Thresholds.apply`).
    ``amend`` changes the input before it is evaluated: only for a question that
    is never recorded (``review pending``: what would more approvals clear?).
    """
    if gate is None:
        return rule_outcome("no-gate", allowed=False, deny=(
            f"no policy gates {what} (add it to [gates] in the registry's mlprov.toml)",))
    from mlprov.registry._config import UNGATED  # pydantic models: loaded when a gate runs

    if gate == UNGATED:
        return rule_outcome("ungated")
    uri = f"{policy_uri_prefix}{gate}"
    path = policies_dir / gate
    if not path.is_file():
        return GateOutcome(allowed=False, deny=(f"policy {gate} is not in the registry's "
                                                "policies",), warn=(), policy_uri=uri,
                           policy_digest="sha256:" + hashlib.sha256(b"").hexdigest(), gate=gate)
    try:
        from mlprov.policy import build_input

        policy = cache.policy(path)
        data = cache.data(policies_dir / data_file if data_file else None)
        if thresholds:
            data = thresholds.apply(policy.data if data is None else data)
        document = build_input(verdict, reviews=reviews, scan=scan, transition=transition,
                               registry_state=registry_state)
        if amend is not None:
            amend(document)
        decision = policy.evaluate(document, data)
    except MlprovError as exc:
        digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        return GateOutcome(allowed=False, deny=(f"policy {gate} failed: {exc}",), warn=(),
                           policy_uri=uri, policy_digest=digest, gate=gate)
    return GateOutcome(allowed=bool(decision.allowed), deny=tuple(decision.deny),
                       warn=tuple(decision.warn), policy_uri=uri,
                       policy_digest=decision.policy_digest,
                       input_digest=decision.input_digest, gate=gate,
                       decision=decision.to_json_dict())
