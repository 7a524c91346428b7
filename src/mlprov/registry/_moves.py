"""Moving versions: stage transitions, aliases, rollbacks and reviews.

Promotions and alias moves are gated (:mod:`._gatekeeper`) and may be dry runs;
deleting an alias grants nothing and is never gated; a review must verify for
the version it is attached to. Every move is one signed, audited change
(:mod:`._recorder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.errors import InputError, VerificationError
from mlprov.registry._gate import rule_outcome
from mlprov.registry._gatekeeper import check_config_pinned, dry_result, gated
from mlprov.registry._gc import check_blobs_kept, gc_epoch
from mlprov.registry._lookup import verify_version
from mlprov.registry._recorder import after_commit, change_tx, record_change, retrying
from mlprov.registry._records import (
    ChangeResult,
    PendingChange,
    default_actor,
    need_version,
    rollback_target,
)
from mlprov.registry._uri import check_alias, check_name, check_version, parse_stage, version_uri
from mlprov.registry._views import alias_history
from mlprov.registry.interface import (
    AliasRecord,
    NotFoundError,
    ReviewRecord,
    Stage,
    WriteTransaction,
)

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["add_review", "delete_alias", "promote", "rollback", "set_alias"]

_MAX_REVIEW_FILE = 1024 * 1024


def promote(registry: RegistryContext, name: str, version: int, *, to: Stage | str,
            reason: str, actor: str | None = None, dry_run: bool = False) -> ChangeResult:
    """Move a version to a stage if the stage's gate allows (see :meth:`Registry.promote`)."""
    check_name(name)
    check_version(version)
    stage = to if isinstance(to, Stage) else parse_stage(to)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with change_tx(registry, dry_run) as tx:
            record = need_version(tx, name, version)
            if record.stage is stage:
                raise InputError(f"{name} v{version} is already in {stage.value}")
            transition = {"from": record.stage.value, "to": stage.value,
                          "actor": who, "reason": reason}
            pending, _ = gated(
                registry, tx, kind="stage.transition", record=record, target="stage",
                gate=registry.settings.config.gate_for_stage(stage),
                what=f"moving {name} v{version} to {stage.value}", transition=transition,
                actor=who, reason=reason,
                details={"from": record.stage.value, "to": stage.value},
                must_verify=stage not in (Stage.ARCHIVED, Stage.NONE))
            if dry_run:
                return dry_result(pending)
            assert isinstance(tx, WriteTransaction)
            return record_change(registry, tx, pending, lambda decision, _seq, _time:
                                 tx.set_stage(name, version, stage, decision))

    if dry_run:
        return run()
    return after_commit(registry, retrying(run))


def set_alias(registry: RegistryContext, name: str, alias: str, version: int, *, reason: str,
              actor: str | None = None, dry_run: bool = False, kind: str = "alias.set",
              details: dict[str, Any] | None = None) -> ChangeResult:
    """Point ``alias`` at a version if its gate allows (see :meth:`Registry.set_alias`).

    ``kind`` is ``alias.rollback`` for a rollback (the gate sees ``rollback: true``);
    ``details`` are added to the audit entry's.
    """
    check_name(name)
    check_alias(alias)
    check_version(version)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with change_tx(registry, dry_run) as tx:
            record = need_version(tx, name, version)
            current = tx.get_alias(name, alias)
            if current is not None and current.version == version:
                raise InputError(f"{name}@{alias} already points to version {version}")
            previous = current.version if current else None
            transition = {"alias": alias, "actor": who, "reason": reason}
            pending, _ = gated(
                registry, tx, kind=kind, record=record, target=f"@{alias}",
                gate=registry.settings.config.gate_for_alias(alias),
                what=f"pointing {name}@{alias} at v{version}", transition=transition,
                actor=who, reason=reason,
                details={"alias": alias, "from": previous, "to": version, **(details or {})},
                state={"alias": alias, "fromVersion": previous, "toVersion": version,
                       "rollback": kind == "alias.rollback"})
            if dry_run:
                return dry_result(pending)
            assert isinstance(tx, WriteTransaction)
            return record_change(registry, tx, pending, lambda decision, seq, now: tx.set_alias(
                AliasRecord(name=name, alias=alias, version=version, decision=decision,
                            seq=seq, updated_at=now)))

    if dry_run:
        return run()
    return after_commit(registry, retrying(run))


def delete_alias(registry: RegistryContext, name: str, alias: str, *, reason: str,
                 actor: str | None = None) -> ChangeResult:
    """Remove an alias; never gated, always signed and audited.

    Raises:
        NotFoundError: the alias does not exist.
    """
    check_alias(alias)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            current = tx.get_alias(name, alias)
            if current is None:
                raise NotFoundError(f"{name} has no alias {alias!r}")
            record = need_version(tx, name, current.version)
            pending = PendingChange(
                kind="alias.delete", name=name, version=current.version,
                target=f"@{alias}", actor=who, reason=reason,
                outcome=rule_outcome("alias-delete"),
                subject_name=version_uri(name, current.version),
                subject_digest=record.root_digest,
                resource_uri=version_uri(name, current.version),
                inputs={"registry:registration": record.registration},
                change={"name": name, "version": current.version,
                        "transition": {"kind": "alias.delete", "alias": alias,
                                       "fromVersion": current.version}},
                details={"alias": alias, "from": current.version, "to": None})
            return record_change(registry, tx, pending,
                                 lambda _decision, _seq, _time: tx.delete_alias(name, alias))

    return after_commit(registry, retrying(run))


def rollback(registry: RegistryContext, name: str, alias: str, *, to: int | None = None,
             reason: str, actor: str | None = None, dry_run: bool = False) -> ChangeResult:
    """Re-point ``alias`` to an earlier version (see :meth:`Registry.rollback`).

    Raises:
        NotFoundError: no earlier target in the audit log.
    """
    check_name(name)
    check_alias(alias)
    details: dict[str, Any] = {}
    if to is not None:
        check_version(to)
    else:
        to = rollback_target(alias_history(registry, name, alias))
        if to is None:
            raise NotFoundError(f"{name}@{alias} has no earlier version to roll back to",
                                hint="pass --to VERSION")
        details["chosen"] = ("the most recent earlier target the alias was not rolled "
                             "back from")
    return set_alias(registry, name, alias, to, reason=reason, actor=actor, dry_run=dry_run,
                     kind="alias.rollback", details=details)


def add_review(registry: RegistryContext, name: str, version: int, review: Path | str, *,
               actor: str | None = None, reason: str | None = None) -> ChangeResult:
    """Attach a signed review that verifies for the version (see :meth:`Registry.add_review`).

    Raises:
        VerificationError: the review does not verify for this version.
    """
    from mlprov.reviews import verify_reviews

    path = Path(review)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read review {path}: {exc.strerror}") from exc
    if size > _MAX_REVIEW_FILE:
        raise InputError(f"review {path} is too large ({size} bytes)")
    who = actor or default_actor()
    check_config_pinned(registry)
    facts = verify_version(registry, name, version)
    from mlprov.reviews import provenance_digest

    # The name the version's provenance signs (a model renamed since keeps it).
    reviews = list(verify_reviews([path], registry.settings.trust,
                                  root_digest=facts.record.root_digest,
                                  identity=facts.record.identity, name=facts.verdict.name,
                                  provenance=provenance_digest(facts.verdict)))
    if not reviews or not reviews[0].counted:
        problem = reviews[0].problem if reviews else "no result"
        raise VerificationError(f"review {path} does not count for {name} v{version}: "
                                f"{problem}",
                                hint="a review must be signed by a key with the reviewer "
                                     "role in the registry's trust, about this version's "
                                     "root digest and identity (`mlprov review approve`)")
    epoch = gc_epoch(registry.metadata)
    digest = registry.blobs.put_file(path).digest

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            check_blobs_kept(tx, registry.blobs, epoch, (digest,))
            record = need_version(tx, name, version)
            if any(r.digest == digest for r in tx.list_reviews(name, version)):
                raise InputError(f"review {path} is already attached to {name} v{version}")
            review_info = _review_summary(reviews[0])
            pending = PendingChange(
                kind="review.add", name=name, version=version, target="review",
                actor=who, reason=reason, outcome=rule_outcome("review-verified"),
                subject_name=version_uri(name, version), subject_digest=record.root_digest,
                resource_uri=version_uri(name, version),
                inputs={f"reviews/{digest.removeprefix('sha256:')}.sigstore.json": digest,
                        "registry:registration": record.registration},
                change={"name": name, "version": version, "review": digest, **review_info},
                details={"review": digest, **review_info})
            return record_change(registry, tx, pending, lambda _decision, seq, now:
                                 tx.insert_review(ReviewRecord(name=name, version=version,
                                                               digest=digest, added_at=now,
                                                               seq=seq)))

    return after_commit(registry, retrying(run))


def _review_summary(review: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute, key in (("decision", "decision"), ("reviewer", "reviewer"),
                           ("time", "time")):
        value = getattr(review, attribute, None)
        if isinstance(value, str):
            out[key] = value
    signer = getattr(review, "signer", None)
    name = getattr(signer, "name", None)
    if isinstance(name, str):
        out["signer"] = name
    return out
