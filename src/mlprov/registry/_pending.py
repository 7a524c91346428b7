"""Pending approvals: versions whose next stage move waits on a review, and what is missing.

Like SageMaker's model approval status (PendingManualApproval / Rejected), but
asked of the registry's own gates rather than kept as a field anyone can set.
For every version in None (next: Staging) or Staging (next: Production), read
only, nothing signed or recorded:

1. re-verify it with its reviews (:func:`._gatekeeper.verify_for_gate`; a
   version that does not verify is not waiting on a review and is left out);
2. evaluate the next stage's gate exactly as ``promote --dry-run`` would; an
   allowed or ungated move is not pending;
3. evaluate it again with one, two and three *hypothetical* approvals by
   distinct reviewers who are not the builder added to the input. The denials
   they clear are what is missing (the policy's own words), the fewest that
   clear them all is how many approvals are needed, and the denials left are
   what a review would not fix. The hypothetical reviews exist only in these
   evaluations: no signature, no decision, no audit entry.

A standing rejection (a reviewer's latest review rejects) marks the version
``rejected``: it waits on that reviewer, whatever the count.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal

from mlprov.errors import InputError, MlprovError
from mlprov.registry._config import UNGATED
from mlprov.registry._gatekeeper import evaluate_gate, verify_for_gate
from mlprov.registry._reports import PendingApproval, ReviewFact
from mlprov.registry._uri import check_name, parse_stage, utc_now, version_uri
from mlprov.registry.interface import NotFoundError, ReadTransaction, Stage, VersionRecord

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._facts import VersionFacts

__all__ = ["MAX_HYPOTHETICAL", "pending_approvals"]

#: Hypothetical approvals tried at most (a policy needing more is reported as needing more).
MAX_HYPOTHETICAL = 3
#: The stage a version's next move goes to.
_NEXT = {Stage.NONE: Stage.STAGING, Stage.STAGING: Stage.PRODUCTION}


def _hypothetical(count: int) -> list[dict[str, Any]]:
    """``count`` approvals by distinct reviewers no trust names (for evaluation only)."""
    now = utc_now()
    reviews = []
    for i in range(1, count + 1):
        keyid = hashlib.sha256(f"mlprov:hypothetical-reviewer:{i}".encode()).hexdigest()
        reviews.append({
            "file": f"(hypothetical approval {i})", "fileDigest": f"sha256:{keyid}",
            "reviewer": f"(a reviewer {i})", "decision": "approve", "comment": "",
            "time": now, "evidence": {},
            "signer": {"id": f"key:{keyid}", "name": f"(hypothetical reviewer {i})",
                       "keyid": keyid, "roles": ["reviewer"], "kind": "key"}})
    return reviews


def _standing(facts: VersionFacts) -> tuple[int, tuple[ReviewFact, ...]]:
    """Standing approvals and rejections: each signer's latest counted review stands."""
    from mlprov.reviews import signer_id

    latest: dict[str, tuple[str, Any]] = {}
    for digest, review in zip(facts.review_digests, facts.reviews, strict=False):
        if not review.counted or review.signer is None:
            continue
        who = signer_id(review.signer)
        if who not in latest or str(review.time) > str(latest[who][1].time):
            latest[who] = (digest, review)
    approvals = sum(1 for _d, r in latest.values() if r.decision == "approve")
    rejections = tuple(ReviewFact(digest=d, counted=True, reviewer=r.reviewer,
                                  decision=r.decision, time=r.time, comment=r.comment,
                                  signer=r.signer.name)
                       for d, r in latest.values() if r.decision == "reject")
    return approvals, rejections


def _pending(registry: RegistryContext, tx: ReadTransaction, record: VersionRecord
             ) -> PendingApproval | None:
    target = _NEXT[record.stage]
    gate = registry.settings.config.gate_for_stage(target)
    if gate is None or gate == UNGATED:
        return None
    try:
        facts = verify_for_gate(registry, tx, record)
    except MlprovError:
        return None  # broken, not waiting on a review
    what = f"moving {record.name} v{record.version} to {target.value}"
    transition = {"from": record.stage.value, "to": target.value,
                  "actor": "mlprov review pending", "reason": "which review is missing?"}

    def deny(count: int) -> frozenset[str]:
        def amend(document: dict[str, Any]) -> None:
            document["reviews"] = [*document["reviews"], *_hypothetical(count)]

        outcome = evaluate_gate(registry, tx, gate, record=record, facts=facts, what=what,
                                transition=transition, state={},
                                amend=amend if count else None)
        return frozenset(outcome.deny) if not outcome.allowed else frozenset()

    now = deny(0)
    if not now:
        return None
    tried = [deny(k) for k in range(1, MAX_HYPOTHETICAL + 1)]
    left = tried[-1]
    missing = now - left
    approvals, rejections = _standing(facts)
    if not missing and not rejections:
        return None
    needed = next((k for k, d in enumerate(tried, start=1) if d == left), 0) if missing else 0
    status: Literal["pending", "rejected"] = "rejected" if rejections else "pending"
    return PendingApproval(
        uri=version_uri(record.name, record.version), name=record.name,
        version=record.version, stage=record.stage, next_stage=target, status=status,
        approvals=approvals, approvals_needed=needed, missing=tuple(sorted(missing)),
        rejections=rejections, blocked_by=tuple(sorted(left)), policy=gate)


def pending_approvals(registry: RegistryContext, *, stage: Stage | str | None = None,
                      name: str | None = None) -> list[PendingApproval]:
    """Versions whose move to ``stage`` (default: their next stage) waits on a review.

    Raises:
        InputError: ``stage`` is not Staging or Production.
        NotFoundError: ``name`` is not a registered model.
    """
    targets = set(_NEXT.values())
    if stage is not None:
        wanted = stage if isinstance(stage, Stage) else parse_stage(stage)
        if wanted not in targets:
            raise InputError(f"no move to {wanted.value} waits on a review",
                             hint="pending approvals are for moves to Staging or Production")
        targets = {wanted}
    if name is not None:
        check_name(name)
    found = []
    with registry.metadata.read() as tx:
        names = [name] if name is not None else [m.name for m in tx.list_models()]
        if name is not None and tx.get_model(name) is None:
            raise NotFoundError(f"no model named {name!r} in the registry")
        for model in names:
            for current, target in _NEXT.items():
                if target not in targets:
                    continue
                for record in tx.list_versions(model, stage=current):
                    pending = _pending(registry, tx, record)
                    if pending is not None:
                        found.append(pending)
    return sorted(found, key=lambda p: (p.name, p.version))
