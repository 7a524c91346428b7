"""Does a verified decision put this version where a row says it is?

A row (an alias, a stage, a registration) names the decision that put a
version there; the row is only a claim. :func:`placement_problems` checks the
signed decision's own words against the row: the version and its root digest,
that it passed, which registry made it, which kind of change and which alias
or stage. ``resolve`` runs these checks; ``pull`` and ``load`` run them and
also walk the log after the decision (:func:`._pull.check_latest`), which
refuses a row replaying an older decision of the same alias.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from mlprov.registry._decisions import SignedByRegistry, change_of
from mlprov.registry.interface import Stage

if TYPE_CHECKING:
    from mlprov.registry._records import Resolved

__all__ = ["Scope", "decided_name", "expected_change", "placement_problems"]

#: Which later audit entries of the same name and target supersede a decision:
#: ``none`` (a registration: nothing), ``version`` (a stage: only the same version's),
#: ``any`` (an alias: any later move of it).
Scope = Literal["none", "version", "any"]


def expected_change(resolved: Resolved) -> tuple[set[str], str | None, Scope]:
    """What may put a version where ``resolved`` found it: kinds, target, what supersedes."""
    if resolved.via.startswith("@"):
        return {"alias.set", "alias.rollback"}, resolved.via, "any"
    if resolved.via == "stage":
        record = resolved.record
        if record.stage is Stage.NONE and resolved.decision == record.registration:
            # Never moved: a version is in stage None by its registration.
            return {"model.register"}, "version", "none"
        return {"stage.transition"}, "stage", "version"
    return {"model.register"}, "version", "none"


def decided_name(resource_uri: object, version: int) -> str | None:
    """The model name a decision about ``models:/NAME/version`` names, else None."""
    if not isinstance(resource_uri, str) or not resource_uri.startswith("models:/"):
        return None
    name, _, number = resource_uri[len("models:/"):].rpartition("/")
    return name if name and number == str(version) else None


def placement_problems(decision: SignedByRegistry, resolved: Resolved,
                       registry_id: str) -> list[str]:
    """What in ``decision`` (verified) contradicts the row ``resolved`` was read from."""
    record = resolved.record
    change = change_of(decision)
    kinds, _, _ = expected_change(resolved)
    problems = []
    if decided_name(decision.predicate.get("resourceUri"), record.version) is None:
        problems.append(f"it is about {decision.predicate.get('resourceUri')}")
    if decision.subject_sha256() != {record.root_digest.removeprefix("sha256:")}:
        problems.append("it names another root digest")
    if decision.predicate.get("verificationResult") != "PASSED":
        problems.append("it was a denial")
    if change.get("registry") != registry_id:
        problems.append("it was made by another registry")
    if change.get("kind") not in kinds:
        problems.append(f"it records a {change.get('kind')} change")
    transition = change.get("transition") if isinstance(change.get("transition"), dict) else {}
    assert isinstance(transition, dict)
    if resolved.via.startswith("@") and transition.get("alias") != resolved.via[1:]:
        problems.append("it set another alias")
    if resolved.via == "stage" and change.get("kind") == "stage.transition" \
            and transition.get("to") != record.stage.value:
        problems.append(f"it moved the version to {transition.get('to')}")
    return problems
