"""Looking versions up: resolve a URI, read a record or a decision, re-verify a version.

Reads only, with one exception: handing out an Archived version through
``--allow-archived`` is audited (:func:`record_archived_use`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlprov.registry._catalog import need_model
from mlprov.registry._head import check_decision_in_log, check_head_file
from mlprov.registry._records import (
    ChangeResult,
    PendingChange,
    Resolved,
    default_actor,
    need_version,
    resolve_uri,
)
from mlprov.registry._uri import ModelUri, check_name, check_version, parse_model_uri, version_uri
from mlprov.registry.interface import ReadTransaction, RegistryIntegrityError, Stage, VersionRecord

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._decisions import SignedByRegistry
    from mlprov.registry._facts import VersionFacts
    from mlprov.trust import Trust

__all__ = ["decision", "get_version", "iter_versions", "record_archived_use", "resolve",
           "verify_version"]

#: Reads of a resolve while changes keep committing between its head and its row.
_RACE_ATTEMPTS = 5


def resolve(registry: RegistryContext, uri: str | ModelUri, *, trust: Trust | None = None,
            min_seq: int | None = None, head_file: Path | None = None,
            allow_archived: bool = False, actor: str | None = None) -> Resolved:
    """Resolve a ``models:/`` URI against the signed head (see :meth:`Registry.resolve`)."""
    parsed = uri if isinstance(uri, ModelUri) else parse_model_uri(uri)
    anchor = trust or registry.settings.anchor
    for attempt in range(1, _RACE_ATTEMPTS + 1):
        head = registry.settings.head(anchor=anchor)
        check_head_file(head, min_seq=min_seq, head_file=head_file)
        try:
            with registry.metadata.read() as tx:
                resolved = resolve_uri(tx, parsed, allow_archived=allow_archived)
                decision = check_decision_in_log(tx, resolved.decision, head, anchor)
                _check_decision_names(registry, tx, resolved, decision)
        except RegistryIntegrityError:
            # A change committed between reading the signed head and the row makes the
            # row name a decision newer than that head: read both again, while the head
            # moves. A row that still names no entry of the signed log is refused.
            if attempt == _RACE_ATTEMPTS or registry.settings.head(anchor=anchor).seq == head.seq:
                raise
            continue
        break
    record_archived_use(registry, resolved, actor=actor)
    return resolved


def _check_decision_names(registry: RegistryContext, tx: ReadTransaction, resolved: Resolved,
                          decision: SignedByRegistry) -> None:
    """Refuse a row whose (genuine) decision put another version, digest or alias there.

    ``decision`` is in the signed log (:func:`check_decision_in_log` verified
    it); its words must also match the row: a row edited to name another
    version while keeping a real decision is refused here. A row replaying an
    older decision of the same alias needs the walk of the log after it, which
    ``pull`` and ``load`` do before handing anything out (docs/registry.md).
    """
    from mlprov.registry._placement import decided_name, placement_problems

    problems = placement_problems(decision, resolved, registry.settings.registry_id)
    decided = decided_name(decision.predicate.get("resourceUri"), resolved.record.version)
    if decided is not None and decided != resolved.record.name \
            and not tx.renames_of(resolved.record.name):
        problems.append(f"it is about the model {decided!r}")
    if problems:
        raise RegistryIntegrityError(f"the decision behind {resolved.uri} does not match the "
                                     f"registry's row: {'; '.join(problems)}: the row was "
                                     "changed outside the registry")


def record_archived_use(registry: RegistryContext, resolved: Resolved, *,
                        actor: str | None = None) -> None:
    """Audit that an Archived version was handed out through ``--allow-archived``.

    Nothing is recorded for a version in use or one named by number.
    """
    record = resolved.record
    if record.stage is not Stage.ARCHIVED or resolved.via == "version":
        return
    # Writes are rare here: their modules load only then (a resolve stays light).
    from mlprov.registry._gate import rule_outcome
    from mlprov.registry._recorder import after_commit, record_change, retrying

    who = actor or default_actor()

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            pending = PendingChange(
                kind="version.archived-use", name=record.name, version=record.version,
                target=resolved.via, actor=who, reason=f"--allow-archived: {resolved.uri}",
                outcome=rule_outcome("allow-archived"),
                subject_name=version_uri(record.name, record.version),
                subject_digest=record.root_digest,
                resource_uri=version_uri(record.name, record.version),
                inputs={"registry:registration": record.registration},
                change={"name": record.name, "version": record.version,
                        "uri": resolved.uri, "stage": record.stage.value},
                details={"uri": resolved.uri, "stage": record.stage.value})
            return record_change(registry, tx, pending)

    after_commit(registry, retrying(run))


def decision(registry: RegistryContext, digest: str) -> bytes:
    """A signed decision by its digest, checked against it."""
    from mlprov.registry._facts import read_decision

    with registry.metadata.read() as tx:
        return read_decision(tx.get_decision, digest)


def get_version(registry: RegistryContext, name: str, version: int) -> VersionRecord:
    """One version's record."""
    check_name(name)
    check_version(version)
    with registry.metadata.read() as tx:
        return need_version(tx, name, version)


def verify_version(registry: RegistryContext, name: str, version: int, *, deep: bool = False,
                   trust: Trust | None = None) -> VersionFacts:
    """Re-verify a stored version from the blob store (see :mod:`._facts`).

    A deleted version too: its evidence and decisions stay, and still verify.
    """
    from mlprov.registry._gatekeeper import verify_record

    with registry.metadata.read() as tx:
        record = need_version(tx, name, version, deleted=True)
        reviews = [r.digest for r in tx.list_reviews(name, version)]
    return verify_record(registry, record, reviews, deep=deep, trust=trust)


def iter_versions(registry: RegistryContext, name: str) -> Iterator[VersionRecord]:
    """Every version in use of ``name`` (a generator: nothing is read until the first ``next``)."""
    with registry.metadata.read() as tx:
        need_model(tx, name)
        records = tx.list_versions(name)
    yield from records
