"""A registered version's relatives: parents, children, descendants, and its lineage graph.

Parents come from the version's verified provenance; its lineage was walked
through the registry's copies of their evidence (:mod:`._facts`). Children are
the registered versions whose provenance names this version's root digest as a
parent. No index holds that, so every stored provenance is read as a lookup
hint (O(versions) blob reads, unverified); each candidate is then verified in
full, its evidence and its lineage through this version, and its *verified*
provenance must name this version. A child that does not verify is listed with
the reason and nothing it claims. Descendants are children, then theirs, up to
:data:`MAX_DESCENDANTS`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from mlprov._internal.parents import parents_from_predicate
from mlprov.errors import MlprovError
from mlprov.evidence import PROVENANCE_FILE
from mlprov.registry._facts import evidence_map, parents_in
from mlprov.registry._gatekeeper import verify_record
from mlprov.registry._pull import prepare
from mlprov.registry._reports import ChildLink, Descendant, ParentLink, RegistryLineage
from mlprov.registry._uri import version_uri
from mlprov.registry.interface import ReadTransaction, VersionRecord

if TYPE_CHECKING:
    from mlprov.lineage import Lineage
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._facts import VersionFacts
    from mlprov.trust import Trust

__all__ = ["MAX_DESCENDANTS", "children", "descendants", "parent_links", "registry_lineage"]

#: Descendants listed at most (a resource bound on one walk).
MAX_DESCENDANTS = 256
_MAX_INDEX_BYTES = 64 * 1024 * 1024

ChildIndex = dict[str, list[tuple[VersionRecord, str]]]


def parent_links(tx: ReadTransaction, facts: VersionFacts) -> tuple[ParentLink, ...]:
    """The parents the version's verified provenance records, and their registered versions."""
    provenance = facts.verdict.provenance
    if provenance is None:
        return ()
    links = []
    for parent in parents_from_predicate(provenance.predicate):
        registered: tuple[str, ...] = ()
        if parent.sha256 and not parent.external:
            registered = tuple(version_uri(r.name, r.version)
                               for r in tx.find_by_root(f"sha256:{parent.sha256}"))
        links.append(ParentLink(role=parent.role, name=parent.name,
                                root_digest=f"sha256:{parent.sha256}" if parent.sha256 else None,
                                external=parent.external, registered=registered))
    return tuple(links)


def _child_index(registry: RegistryContext, tx: ReadTransaction) -> ChildIndex:
    """Parent root digest -> (registered version, role) from every stored provenance (hints)."""
    index: ChildIndex = {}
    blobs = registry.blobs
    for record in tx.versions_for_replay():
        try:
            evidence = evidence_map(blobs.get_bytes(record.evidence_digest,
                                                    max_size=_MAX_INDEX_BYTES))
            digest = evidence.get(PROVENANCE_FILE)
            if digest is None:
                continue
            parents = parents_in(blobs.get_bytes(digest, max_size=_MAX_INDEX_BYTES))
        except MlprovError:  # unreadable: it cannot be shown as anyone's child
            continue
        for parent in parents:
            index.setdefault(f"sha256:{parent.root_digest}", []).append(
                (record, parent.role.value))
    return index


def _verify_child(registry: RegistryContext, tx: ReadTransaction, child: VersionRecord,
                  hint: str, parent_root: str, trust: Trust | None) -> ChildLink:
    uri = version_uri(child.name, child.version)
    try:
        facts = verify_record(registry, child, [], trust=trust, tx=tx)
    except MlprovError as exc:
        return ChildLink(uri=uri, name=child.name, version=child.version, role=hint,
                         verified=False, problem=str(exc))
    provenance = facts.verdict.provenance
    roles = [p.role for p in (parents_from_predicate(provenance.predicate)
                              if provenance is not None else ())
             if p.sha256 == parent_root.removeprefix("sha256:") and not p.external]
    problem = None
    if not roles:
        problem = "its verified provenance does not name this version as a parent"
    elif facts.verdict.lineage is None or not facts.verdict.lineage.verified:
        status = facts.verdict.lineage.status if facts.verdict.lineage else "not walked"
        problem = f"its lineage is {status}"
    return ChildLink(uri=uri, name=child.name, version=child.version,
                     role=roles[0] if roles else hint, verified=problem is None,
                     problem=problem)


def _children_of(registry: RegistryContext, tx: ReadTransaction, record: VersionRecord,
                 index: ChildIndex, trust: Trust | None) -> list[ChildLink]:
    found = []
    seen: set[tuple[str, int]] = set()
    for child, role in index.get(record.root_digest, []):
        key = (child.name, child.version)
        if key == (record.name, record.version) or key in seen:
            continue
        seen.add(key)
        found.append(_verify_child(registry, tx, child, role, record.root_digest, trust))
    return sorted(found, key=lambda c: (c.name, c.version))


def children(registry: RegistryContext, tx: ReadTransaction, record: VersionRecord, *,
             trust: Trust | None = None) -> tuple[ChildLink, ...]:
    """The registered versions whose verified provenance names ``record`` as a parent."""
    return tuple(_children_of(registry, tx, record, _child_index(registry, tx), trust))


def descendants(registry: RegistryContext, tx: ReadTransaction, record: VersionRecord, *,
                trust: Trust | None = None) -> tuple[Descendant, ...]:
    """Children, their children and so on (breadth first, at most :data:`MAX_DESCENDANTS`).

    A child that does not verify is listed, and not walked further.
    """
    index = _child_index(registry, tx)
    found: list[Descendant] = []
    queue: list[tuple[VersionRecord, int]] = [(record, 0)]
    seen = {(record.name, record.version)}
    while queue and len(found) < MAX_DESCENDANTS:
        current, depth = queue.pop(0)
        for link in _children_of(registry, tx, current, index, trust):
            if (link.name, link.version) in seen or len(found) >= MAX_DESCENDANTS:
                continue
            seen.add((link.name, link.version))
            found.append(Descendant(uri=link.uri, name=link.name, version=link.version,
                                    parent=version_uri(current.name, current.version),
                                    role=link.role, depth=depth + 1, verified=link.verified,
                                    problem=link.problem))
            child = tx.get_version(link.name, link.version)
            if link.verified and child is not None:
                queue.append((child, depth + 1))
    return tuple(found)


def _labelled(tx: ReadTransaction, lineage: Lineage, label: str) -> Lineage:
    """The graph with each node's ``evidence`` naming the registered version it was read from."""
    nodes = []
    for node in lineage.nodes:
        where = node.evidence
        if node.depth == 0:
            where = label
        elif node.root_digest:
            found = [version_uri(r.name, r.version) for r in tx.find_by_root(node.root_digest)]
            where = ", ".join(found) if found else where
        nodes.append(dataclasses.replace(node, evidence=where))
    return dataclasses.replace(lineage, nodes=tuple(nodes), search=())


def registry_lineage(registry: RegistryContext, uri: str, *, trust: Trust | None = None,
                     with_descendants: bool = False) -> RegistryLineage:
    """The lineage of the version ``uri`` names, verified through the registry's copies.

    Raises:
        NotFoundError: unknown model, version or alias.
        RegistryIntegrityError: the version (or the decision behind ``uri``) does not verify.
    """
    resolved, facts = prepare(registry, uri, trust, allow_archived=True)
    record = resolved.record
    lineage = facts.verdict.lineage
    if lineage is None:  # verify_record raises first (no verified provenance)
        from mlprov.registry._facts import RegistryIntegrityError

        raise RegistryIntegrityError(f"{resolved.uri}: no lineage was walked")
    with registry.metadata.read() as tx:
        graph = _labelled(tx, lineage, version_uri(record.name, record.version))
        found = descendants(registry, tx, record, trust=trust) if with_descendants else None
    return RegistryLineage(uri=version_uri(record.name, record.version), lineage=graph,
                           descendants=found)
