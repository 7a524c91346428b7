"""Verified lineage: a derived model's parents, and the walk back to every root.

A derived model's provenance names each parent in
``buildDefinition.resolvedDependencies`` (see ``docs/lineage.md``)::

    {"name": "parent:fine-tune-of:credit-risk-base",
     "digest": {"sha256": "<the parent's root digest>"},
     "annotations": {"role": "fine-tune-of", "name": "credit-risk-base",
                     "identity": "mlid:sha256:<hex>",
                     "provenanceBundle": "sha256:<digest of its provenance.sigstore.json>",
                     "manifestBundle": "sha256:<digest of its model.sig>"}}

An external root (a public base model without mlprov evidence) is recorded by
name and root digest with ``"external": true``.

:func:`verify_lineage` walks the graph from one evidence directory to every
root. Parents' evidence is found under search directories *by digest* (the
SHA-256 of the provenance bundle the child recorded), never by directory name.
At each node both signatures must verify with a trusted ``builder``; at each
edge the parent's root digest, provenance-bundle digest and manifest-bundle
digest must equal what the child recorded. Cycles (a model that is its own
ancestor), missing parents, depth over the bound and untrusted signers fail,
each naming the edge ``child -> parent (role)``. External roots are reported as
external, never as verified. With ``deep`` the ancestors' model files are
re-hashed when a copy is found.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

from mlprov._internal.arguments import (
    BOOL,
    EVIDENCE,
    PATH,
    PATHS,
    TEXT,
    TRUST,
    checked,
    instance,
    int_in,
    optional,
)
from mlprov._internal.display import printable
from mlprov._internal.inputs import compute_identity as identity_of
from mlprov._internal.intoto import StatementLike
from mlprov._internal.lineage_search import (
    SEARCH_DEPTH,
    ModelLocator,
    SearchIndex,
    SearchTree,
)
from mlprov._internal.provenance_reader import SLSA_PROVENANCE_V1
from mlprov._internal.provenance_reader import read_provenance as read_provenance_facts
from mlprov.bundles import parse_statement_fields, read_envelopes, verify_statement_in
from mlprov.errors import BundleError, InputError, LineageError, MlprovError
from mlprov.evidence import (
    INDEX_FILE,
    OMS_FILE,
    PROVENANCE_FILE,
    DirectorySource,
    EvidenceSource,
    as_source,
    check_evidence_name,
    read_index_fields,
)
from mlprov.identity import IDENTITY_PREFIX
from mlprov.oms import OMS_PREDICATE_TYPE, SignedManifest, read_signed_manifest
from mlprov.signing import b64decode_any
from mlprov.trust import Role, Trust, load_trust

if TYPE_CHECKING:
    from mlprov.statements import ResourceDescriptor

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "LINEAGE_SCHEMA",
    "MAX_PARENTS",
    "PARENT_PREFIX",
    "SEARCH_DEPTH",
    "FileCheck",
    "Lineage",
    "LineageEdge",
    "LineageFormat",
    "LineageNode",
    "NodeStatus",
    "ParentRecord",
    "ParentRole",
    "ParentSpec",
    "VerifiedEvidence",
    "parse_parent_spec",
    "read_parents",
    "render",
    "resolve_parent",
    "verify_evidence",
    "verify_lineage",
    "walk_lineage",
]

LINEAGE_SCHEMA = "https://mlprov.dev/schemas/lineage/v1"
#: ``resolvedDependencies`` names of parents start with this: ``parent:<role>:<name>``.
PARENT_PREFIX = "parent:"
#: How many edges the walk follows from the starting model before it gives up.
DEFAULT_MAX_DEPTH = 64
#: A provenance naming more parents than this is refused (a resource bound).
MAX_PARENTS = 1024

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_SHORT = 12  # hex digits of a digest shown in labels


class ParentRole(StrEnum):
    """How a model derives from a parent."""

    BASE = "base"
    FINE_TUNE_OF = "fine-tune-of"
    TEACHER = "teacher"
    MERGE_OF = "merge-of"
    QUANTIZED_FROM = "quantized-from"
    ADAPTER_OF = "adapter-of"


class NodeStatus(StrEnum):
    """What the walk concluded about one model in the graph."""

    VERIFIED = "verified"      # evidence signed by a trusted builder, consistent
    FAILED = "failed"          # evidence found but it does not verify, or edge broken
    EXTERNAL = "external"      # a root pinned by digest, without mlprov evidence
    MISSING = "missing"        # no evidence with the recorded digests was found
    UNVERIFIED = "unverified"  # read without a trust anchor (``lineage show`` alone)


class LineageFormat(StrEnum):
    """Output formats of :func:`render`."""

    TREE = "tree"
    JSON = "json"
    DOT = "dot"
    MERMAID = "mermaid"


def _display(text: str) -> str:
    """Make an untrusted string safe to print (the one escaping rule of all text output)."""
    return printable(text)


def _sha(hexdigest: str | None) -> str | None:
    return f"sha256:{hexdigest}" if hexdigest else None


def _strip_sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("sha256:") \
            or not _HEX64.match(value[7:]):
        raise BundleError(f"{what} is not sha256:<64 hex>")
    return value[7:]


# ---------------------------------------------------------------------------
# Parents as given to attest, and as recorded in the provenance
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParentSpec:
    """A ``--parent ROLE=SOURCE`` value: an evidence directory or an external root."""

    role: ParentRole
    evidence: Path | None = None
    external_name: str | None = None
    external_root: str | None = None

    def __str__(self) -> str:
        if self.evidence is not None:
            return f"{self.role}={self.evidence}"
        return f"{self.role}=external:{self.external_name}@sha256:{self.external_root}"


@checked(spec=TEXT)
def parse_parent_spec(spec: str) -> ParentSpec:
    """Parse ``ROLE=EVIDENCE_DIR`` or ``ROLE=external:NAME@sha256:HEX``.

    Example:
        parse_parent_spec("base=parents/base-evidence")
        parse_parent_spec("base=external:llama-3@sha256:" + "ab" * 32)

    Raises:
        InputError: an unknown role, an empty source, or a malformed external pin.
    """
    role_text, sep, source = spec.partition("=")
    roles = ", ".join(r.value for r in ParentRole)
    if not sep or not source:
        raise InputError(f"parent must be ROLE=EVIDENCE_DIR or ROLE=external:NAME@sha256:HEX, "
                         f"got {spec!r}", hint=f"ROLE is one of {roles}")
    try:
        role = ParentRole(role_text.strip())
    except ValueError:
        raise InputError(f"unknown parent role {role_text!r}",
                         hint=f"use one of {roles}") from None
    if source.startswith("external:"):
        name, at, hexdigest = source.removeprefix("external:").rpartition("@sha256:")
        hexdigest = hexdigest.lower()
        if not at or not name or not _HEX64.match(hexdigest):
            raise InputError(f"external parent must be external:NAME@sha256:<64 hex>, "
                             f"got {source!r}")
        if _display(name) != name or name != name.strip():
            raise InputError(f"external parent name {name!r} holds control characters or "
                             "surrounding spaces")
        return ParentSpec(role=role, external_name=name, external_root=hexdigest)
    return ParentSpec(role=role, evidence=Path(source))


@dataclass(frozen=True)
class ParentRecord:
    """One parent as a child's provenance records it (digests are hex)."""

    role: ParentRole
    name: str
    root_digest: str
    identity: str | None = None
    provenance_bundle: str | None = None
    manifest_bundle: str | None = None
    external: bool = False

    def descriptor(self) -> ResourceDescriptor:
        """The in-toto ResourceDescriptor written to ``resolvedDependencies``."""
        from mlprov.statements import ResourceDescriptor  # pydantic: attest with --parent only

        annotations: dict[str, Any] = {"role": self.role.value, "name": self.name}
        if self.external:
            annotations["external"] = True
        else:
            annotations.update(identity=self.identity,
                               provenanceBundle=_sha(self.provenance_bundle),
                               manifestBundle=_sha(self.manifest_bundle))
        return ResourceDescriptor(name=f"{PARENT_PREFIX}{self.role.value}:{self.name}",
                                  digest={"sha256": self.root_digest}, annotations=annotations)

    def to_json_dict(self) -> dict[str, Any]:
        """The record as JSON (``rootDigest`` etc. with their ``sha256:`` prefix)."""
        document: dict[str, Any] = {"role": self.role.value, "name": self.name,
                                    "rootDigest": _sha(self.root_digest),
                                    "external": self.external}
        if not self.external:
            document.update(identity=self.identity,
                            provenanceBundle=_sha(self.provenance_bundle),
                            manifestBundle=_sha(self.manifest_bundle))
        return document


def _read_parent(dep: dict[str, Any], what: str) -> ParentRecord:
    label = f"{what}: parent {dep.get('name')!r}"
    digest = dep.get("digest")
    annotations = dep.get("annotations")
    if not isinstance(digest, dict) or not isinstance(annotations, dict):
        raise BundleError(f"{label} lacks a digest or annotations")
    root = digest.get("sha256")
    if not isinstance(root, str) or not _HEX64.match(root):
        raise BundleError(f"{label} has no sha256 root digest")
    try:
        role = ParentRole(str(annotations.get("role")))
    except ValueError:
        raise BundleError(f"{label} has an unknown role {annotations.get('role')!r}") from None
    name = annotations.get("name")
    if not isinstance(name, str) or not name:
        raise BundleError(f"{label} has no name")
    if dep.get("name") != f"{PARENT_PREFIX}{role.value}:{name}":
        raise BundleError(f"{label} does not match its role and name annotations")
    external = annotations.get("external", False)
    if not isinstance(external, bool):
        raise BundleError(f"{label}: annotation external is not a boolean")
    if external:
        return ParentRecord(role=role, name=name, root_digest=root, external=True)
    identity = annotations.get("identity")
    if not isinstance(identity, str) or not identity.startswith(IDENTITY_PREFIX):
        raise BundleError(f"{label} has no identity")
    return ParentRecord(
        role=role, name=name, root_digest=root, identity=identity,
        provenance_bundle=_strip_sha(annotations.get("provenanceBundle"),
                                     f"{label}: provenanceBundle"),
        manifest_bundle=_strip_sha(annotations.get("manifestBundle"),
                                   f"{label}: manifestBundle"))


def read_parents(statement: StatementLike, *, what: str) -> list[ParentRecord]:
    """Read the parents a (verified) provenance statement records.

    Raises:
        BundleError: a ``parent:`` dependency is malformed, listed twice, or there
            are more than :data:`MAX_PARENTS`.
    """
    definition = statement.predicate.get("buildDefinition")
    deps = definition.get("resolvedDependencies") if isinstance(definition, dict) else None
    if not isinstance(deps, list):
        return []
    parents: list[ParentRecord] = []
    seen: set[tuple[ParentRole, str, str | None]] = set()
    for dep in deps:
        if not (isinstance(dep, dict) and isinstance(dep.get("name"), str)
                and dep["name"].startswith(PARENT_PREFIX)):
            continue
        record = _read_parent(dep, what)
        key = (record.role, record.root_digest, record.provenance_bundle)
        if key in seen:
            raise BundleError(f"{what}: parent {record.name!r} ({record.role}) is listed twice")
        seen.add(key)
        parents.append(record)
        if len(parents) > MAX_PARENTS:
            raise BundleError(f"{what}: records more than {MAX_PARENTS} parents")
    return parents


# ---------------------------------------------------------------------------
# One evidence directory, verified without the model's files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedEvidence:
    """An evidence directory whose statements were read (and verified, with a trust)."""

    path: Path
    name: str
    identity: str
    root_digest: str
    provenance_bundle: str
    manifest_bundle: str
    signer: str | None
    parents: tuple[ParentRecord, ...]
    manifest: SignedManifest

    def parent_record(self, role: ParentRole) -> ParentRecord:
        """What a child records about this model as its ``role`` parent."""
        return ParentRecord(role=role, name=self.name, root_digest=self.root_digest,
                            identity=self.identity, provenance_bundle=self.provenance_bundle,
                            manifest_bundle=self.manifest_bundle)


def _source_bytes(source: EvidenceSource, name: str) -> bytes:
    try:
        return source.read(name, what="evidence file", error=BundleError)
    except FileNotFoundError as exc:
        raise BundleError(f"evidence file missing: {source.describe(name)}") from exc


def _load(source: EvidenceSource, name: str, trust: Trust | None, predicate_type: str
          ) -> tuple[StatementLike, str, str | None]:
    """Return (statement, sha256 of the file, signer name); unverified without a trust.

    A verified statement comes as the verifier's fields (no pydantic model built).
    """
    if trust is not None:
        verified = verify_statement_in(source, name, trust, Role.BUILDER,
                                       predicate_type=predicate_type)
        return verified.parsed, verified.file_sha256, verified.signer.name
    data = _source_bytes(source, name)
    for envelope, _hint in read_envelopes(data, what=name):
        try:
            statement = parse_statement_fields(b64decode_any(envelope.payload, what=name),
                                               what=name)
        except BundleError:
            continue
        if statement.predicate_type == predicate_type:
            return statement, hashlib.sha256(data).hexdigest(), None
    raise BundleError(f"{name} holds no {predicate_type} statement")


@checked(evidence=EVIDENCE, trust=optional(instance(Trust, "a mlprov.trust.Trust")))
def verify_evidence(evidence: Path | str | EvidenceSource, trust: Trust | None
                    ) -> VerifiedEvidence:
    """Verify an evidence directory (or another source) on its own, without the model's files.

    Both signatures (``model.sig`` and the provenance) must verify with a key
    of ``trust`` holding the builder role; the provenance's subject must be the
    signed manifest's root digest; the identity must recompute from its inputs;
    ``evidence.json`` must agree with the signed statements and list files
    whose digests match. With ``trust=None`` the statements are read without
    checking signatures (for display only; the result's ``signer`` is None).
    For a source that is no directory, ``result.path`` is ``Path(source.describe())``.

    Example:
        found = verify_evidence("evidence/", load_trust(Path("trust.yaml")))

    Raises:
        InputError: ``evidence`` is not a directory.
        VerificationError: any check failed (BundleError, SignatureError, ...).
    """
    return _verify_evidence(as_source(evidence), trust)


def _verify_evidence(source: EvidenceSource, trust: Trust | None) -> VerifiedEvidence:
    """:func:`verify_evidence` without its argument checks (the walk calls it per model)."""
    index = read_index_fields(source)  # the model's checks, without building it
    oms, oms_sha, _ = _load(source, OMS_FILE, trust, OMS_PREDICATE_TYPE)
    signed = read_signed_manifest(oms, what=OMS_FILE)
    statement, prov_sha, signer = _load(source, PROVENANCE_FILE, trust, SLSA_PROVENANCE_V1)
    # The facts without their pydantic models (the same reader and errors, tested).
    prov = read_provenance_facts(statement, what=PROVENANCE_FILE)
    names = {s.name or "" for s in statement.subject}
    if names != {prov.name}:
        raise LineageError(f"{PROVENANCE_FILE}: subject name {sorted(names)} is not "
                           f"{prov.name!r}")
    if signed.root not in statement.subject_sha256():
        raise LineageError(f"{PROVENANCE_FILE}: subject is not the root digest "
                           f"sha256:{signed.root} that {OMS_FILE} signs")
    if identity_of(prov.inputs) != prov.identity:
        raise LineageError(f"identity {prov.identity} does not match its recorded inputs")
    if index.name != prov.name or index.identity != prov.identity \
            or index.root_digest != f"sha256:{signed.root}":
        raise LineageError(f"{INDEX_FILE} disagrees with the signed statements")
    if index.files.get(OMS_FILE) != f"sha256:{oms_sha}" \
            or index.files.get(PROVENANCE_FILE) != f"sha256:{prov_sha}":
        raise LineageError(f"{INDEX_FILE} does not list the signed files as they are")
    for file_name, digest in index.files.items():
        if file_name in (OMS_FILE, PROVENANCE_FILE):
            continue
        try:
            check_evidence_name(file_name, error=LineageError)
        except LineageError as exc:
            raise LineageError(f"{INDEX_FILE} lists an unsafe file name {file_name!r}") from exc
        try:
            actual = "sha256:" + hashlib.sha256(source.read(
                file_name, what="evidence file", error=LineageError)).hexdigest()
        except OSError as exc:
            raise LineageError(f"evidence file missing: {file_name}") from exc
        if actual != digest:
            raise LineageError(f"evidence file {file_name} changed since it was indexed")
    parents = read_parents(statement, what=PROVENANCE_FILE)
    path = source.directory if source.directory is not None else Path(source.describe())
    return VerifiedEvidence(path=path, name=prov.name, identity=prov.identity,
                            root_digest=signed.root, provenance_bundle=prov_sha,
                            manifest_bundle=oms_sha, signer=signer, parents=tuple(parents),
                            manifest=signed)


@checked(spec=instance(ParentSpec), trust=instance(Trust, "a mlprov.trust.Trust"))
def resolve_parent(spec: ParentSpec, trust: Trust) -> ParentRecord:
    """Turn a ``--parent`` value into the record a child's provenance carries.

    An evidence directory is verified first (:func:`verify_evidence` with
    ``trust``): a parent is never recorded unless its evidence verified.

    Example:
        record = resolve_parent(parse_parent_spec("base=base-evidence/"), trust)

    Raises:
        InputError: the directory is missing or not evidence.
        LineageError: the parent's evidence does not verify against ``trust``.
    """
    if spec.evidence is None:
        assert spec.external_name is not None and spec.external_root is not None
        return ParentRecord(role=spec.role, name=spec.external_name,
                            root_digest=spec.external_root, external=True)
    if not spec.evidence.is_dir():
        raise InputError(f"parent {spec}: not an evidence directory",
                         hint="pass the directory `mlprov attest --out` wrote for the parent")
    try:
        verified = verify_evidence(spec.evidence, trust)
    except MlprovError as exc:  # unsafe manifest paths (an InputError) included
        raise LineageError(f"parent {spec}: {exc}",
                           hint="pass --parent-trust TRUST_FILE or --parent-key PUBLIC_KEY "
                                "naming the parent's builder, or re-attest the parent") from exc
    return verified.parent_record(spec.role)


# ---------------------------------------------------------------------------
# Finding evidence and model files under search directories, by digest
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCheck:
    """With ``deep``: whether a copy of the model's files was found and matched."""

    status: str  # "verified" | "failed" | "absent"
    path: str | None
    detail: str

    def to_json_dict(self) -> dict[str, Any]:
        """The check as JSON."""
        return {"status": self.status, "path": self.path, "detail": self.detail}


@dataclass(frozen=True)
class LineageNode:
    """One model of the graph. Digests carry their ``sha256:`` prefix."""

    id: str
    status: NodeStatus
    name: str | None
    root_digest: str | None
    depth: int
    detail: str
    identity: str | None = None
    evidence: str | None = None
    provenance_bundle: str | None = None
    manifest_bundle: str | None = None
    signer: str | None = None
    files: FileCheck | None = None

    @property
    def label(self) -> str:
        """``name@sha256:<12 hex>``, safe to print."""
        short = (self.root_digest or "")[7:7 + _SHORT]
        return _display(f"{self.name or '?'}@sha256:{short}" if short else (self.name or "?"))

    def to_json_dict(self) -> dict[str, Any]:
        """The node as JSON (camelCase keys)."""
        return {
            "id": self.id, "status": self.status.value, "name": self.name,
            "rootDigest": self.root_digest, "identity": self.identity, "depth": self.depth,
            "evidence": self.evidence, "provenanceBundle": self.provenance_bundle,
            "manifestBundle": self.manifest_bundle, "signer": self.signer,
            "files": self.files.to_json_dict() if self.files else None, "detail": self.detail,
        }


@dataclass(frozen=True)
class LineageEdge:
    """A child -> parent link, as the child's provenance records it."""

    child: str
    parent: str
    role: ParentRole
    ok: bool
    detail: str

    def to_json_dict(self) -> dict[str, Any]:
        """The edge as JSON."""
        return {"child": self.child, "parent": self.parent, "role": self.role.value,
                "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Lineage:
    """The lineage graph of one model, each node and edge with its outcome.

    ``verified`` is true only when every node reached is verified or an
    external root, every edge matched, and signatures were checked.
    ``status`` is ``verified``, ``failed``, ``incomplete`` (only missing
    parents are wrong) or ``unverified`` (read without a trust anchor).
    """

    start: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    failures: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    trusted: bool = True
    deep: bool = False
    max_depth: int = DEFAULT_MAX_DEPTH
    search: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``verified``, ``failed``, ``incomplete`` or ``unverified``."""
        if len(self.failures) > len(self.missing):
            return "failed"
        if self.missing:
            return "incomplete"
        return "verified" if self.trusted else "unverified"

    @property
    def verified(self) -> bool:
        """True when the whole graph verified (external roots allowed)."""
        return self.status == "verified"

    @cached_property
    def _by_id(self) -> dict[str, LineageNode]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def _by_child(self) -> dict[str, list[LineageEdge]]:
        out: dict[str, list[LineageEdge]] = {}
        for edge in self.edges:
            out.setdefault(edge.child, []).append(edge)
        return out

    def node(self, node_id: str) -> LineageNode:
        """The node with this id (KeyError if none)."""
        return self._by_id[node_id]

    def parents(self, node_id: str) -> list[LineageEdge]:
        """The edges from ``node_id`` to its parents, in recorded order."""
        return list(self._by_child.get(node_id, []))

    @property
    def roots(self) -> tuple[LineageNode, ...]:
        """Nodes without parents that were verified (or read) or are external."""
        children = {e.child for e in self.edges}
        return tuple(n for n in self.nodes if n.id not in children and n.status in (
            NodeStatus.VERIFIED, NodeStatus.EXTERNAL, NodeStatus.UNVERIFIED))

    @property
    def externals(self) -> tuple[LineageNode, ...]:
        """The external roots (pinned by digest, never verified)."""
        return tuple(n for n in self.nodes if n.status is NodeStatus.EXTERNAL)

    def summary(self) -> str:
        """One line: how many models, edges and roots."""
        start = self.node(self.start)
        verified = sum(n.status is NodeStatus.VERIFIED for n in self.nodes)
        roots = ", ".join(n.label for n in self.roots) or "none"
        text = (f"{start.label}: {len(self.nodes)} model(s), {len(self.edges)} link(s), "
                f"{verified} verified; roots: {roots}")
        if self.externals:
            text += f"; {len(self.externals)} external root(s), pinned by digest, not verified"
        return text

    def to_json_dict(self) -> dict[str, Any]:
        """The machine-readable graph (``schema`` names its version)."""
        return {
            "schema": LINEAGE_SCHEMA, "verified": self.verified, "status": self.status,
            "start": self.start, "deep": self.deep, "maxDepth": self.max_depth,
            "search": list(self.search), "roots": [n.id for n in self.roots],
            "nodes": [n.to_json_dict() for n in self.nodes],
            "edges": [e.to_json_dict() for e in self.edges],
            "failures": list(self.failures),
        }


# ---------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------


@dataclass
class _Node:
    id: str
    status: NodeStatus
    name: str | None
    root: str | None  # hex
    depth: int
    detail: str
    via: str  # the first edge (or the start) this node was reached by, for messages
    evidence: VerifiedEvidence | None = None
    path: Path | None = None
    record: ParentRecord | None = None
    files: FileCheck | None = None
    where: str | None = None  # the evidence source, when it is not a directory on disk

    @property
    def label(self) -> str:
        short = (self.root or "")[:_SHORT]
        return _display(f"{self.name or '?'}@sha256:{short}" if short else (self.name or "?"))

    def freeze(self) -> LineageNode:
        ev, rec = self.evidence, self.record
        return LineageNode(
            id=self.id, status=self.status, name=self.name, root_digest=_sha(self.root),
            depth=self.depth, detail=self.detail,
            identity=ev.identity if ev else (rec.identity if rec else None),
            evidence=str(self.path) if self.path else self.where,
            provenance_bundle=_sha(ev.provenance_bundle if ev else
                                   (rec.provenance_bundle if rec else None)),
            manifest_bundle=_sha(ev.manifest_bundle if ev else
                                 (rec.manifest_bundle if rec else None)),
            signer=ev.signer if ev else None, files=self.files)


@dataclass
class _Walk:
    trust: Trust | None
    index: SearchIndex
    max_depth: int
    nodes: dict[str, _Node] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    _verified: dict[str, VerifiedEvidence | MlprovError] = field(default_factory=dict)

    def evidence(self, path: Path) -> VerifiedEvidence | MlprovError:
        """Verify an evidence directory once, whatever the number of edges reaching it."""
        key = self.index.tree.real(path)  # the scan's, for a directory it listed
        if key not in self._verified:
            try:
                self._verified[key] = _verify_evidence(DirectorySource(path), self.trust)
            except MlprovError as exc:
                self._verified[key] = exc
        return self._verified[key]

    def start(self, source: EvidenceSource) -> VerifiedEvidence | MlprovError:
        """Verify the starting evidence when it is not a directory (nothing else reaches it)."""
        try:
            return _verify_evidence(source, self.trust)
        except MlprovError as exc:
            return exc

    @property
    def ok_status(self) -> NodeStatus:
        return NodeStatus.VERIFIED if self.trust is not None else NodeStatus.UNVERIFIED

    def edge(self, child: _Node, parent: _Node, role: ParentRole, ok: bool, detail: str,
             *, missing: bool = False) -> None:
        self.edges.append(LineageEdge(child.id, parent.id, role, ok, detail))
        if not ok:
            message = f"{child.label} -> {parent.label} ({role}): {detail}"
            self.failures.append(message)
            if missing:
                self.missing.append(message)


def _edge_mismatch(found: VerifiedEvidence, record: ParentRecord) -> str | None:
    """Why ``found`` is not the parent ``record`` names, or None when it is."""
    if found.provenance_bundle != record.provenance_bundle:
        return (f"the parent's provenance bundle is sha256:{found.provenance_bundle}, the child "
                f"recorded sha256:{record.provenance_bundle} (the parent's evidence was "
                "replaced or re-signed)")
    if found.manifest_bundle != record.manifest_bundle:
        return (f"the parent's {OMS_FILE} is sha256:{found.manifest_bundle}, the child recorded "
                f"sha256:{record.manifest_bundle} (the parent's signed manifest was replaced)")
    if found.root_digest != record.root_digest:
        return (f"the parent's root digest is sha256:{found.root_digest}, the child recorded "
                f"sha256:{record.root_digest}")
    if found.identity != record.identity or found.name != record.name:
        return (f"the parent is {_display(found.name)} {found.identity}, the child recorded "
                f"{_display(record.name)} {record.identity}")
    return None


def _resolve(walk: _Walk, child: _Node, record: ParentRecord, queue: deque[_Node]) -> None:
    """Find, verify and link one parent of ``child``."""
    depth = child.depth + 1
    if record.external:
        pid = f"external:sha256:{record.root_digest}"
        node = walk.nodes.get(pid)
        if node is None:
            node = walk.nodes[pid] = _Node(
                pid, NodeStatus.EXTERNAL, record.name, record.root_digest, depth,
                "external root pinned by digest; no mlprov evidence, not verified",
                via=child.label, record=record)
        walk.edge(child, node, record.role, True, "external root, pinned by digest")
        return
    assert record.provenance_bundle is not None
    pid = f"sha256:{record.provenance_bundle}"
    node = walk.nodes.get(pid)
    if node is not None:  # reached before, by another edge: verified once, linked again
        if node.evidence is None:
            walk.edge(child, node, record.role, False, node.detail,
                      missing=node.status is NodeStatus.MISSING)
            return
        mismatch = _edge_mismatch(node.evidence, record)
        walk.edge(child, node, record.role, mismatch is None, mismatch or "digests match")
        return
    node = walk.nodes[pid] = _Node(pid, NodeStatus.MISSING, record.name, record.root_digest,
                                   depth, "", via="", record=record)
    node.via = f"{child.label} -> {node.label} ({record.role})"
    if depth > walk.max_depth:
        node.status, node.detail = NodeStatus.FAILED, (
            f"depth {depth} is over the bound of {walk.max_depth} (--max-depth); not checked")
        walk.edge(child, node, record.role, False, node.detail)
        return
    first_failure: tuple[Path, str] | None = None
    for candidate in walk.index.by_bundle(record.provenance_bundle):
        found = walk.evidence(candidate)
        why = str(found) if isinstance(found, MlprovError) else _edge_mismatch(found, record)
        if why is None:
            assert isinstance(found, VerifiedEvidence)
            node.status, node.evidence, node.path = walk.ok_status, found, candidate
            node.name, node.detail = found.name, (
                f"signed by {found.signer} ({Role.BUILDER})" if found.signer
                else "read without a trust anchor: signatures not checked")
            walk.edge(child, node, record.role, True, "digests match")
            queue.append(node)
            return
        first_failure = first_failure or (candidate, why)
    if first_failure is None:
        for candidate in walk.index.by_root(record.root_digest):
            found = walk.evidence(candidate)
            if isinstance(found, MlprovError):
                first_failure = first_failure or (
                    candidate, f"other evidence for this model does not verify: {found}")
                continue
            if found.root_digest == record.root_digest:
                first_failure = (candidate, _edge_mismatch(found, record)
                                 or "the evidence changed while it was read")
                break
    if first_failure is not None:
        path, why = first_failure
        node.status, node.path, node.detail = NodeStatus.FAILED, path, f"evidence {path}: {why}"
        walk.edge(child, node, record.role, False, node.detail)
        return
    where = ", ".join(str(r) for r in walk.index.roots) or "no search directory"
    node.detail = (f"parent evidence not found under {where} (looked for provenance bundle "
                   f"sha256:{record.provenance_bundle}, root sha256:{record.root_digest})")
    walk.edge(child, node, record.role, False, node.detail, missing=True)


def _find_cycles(walk: _Walk) -> None:
    """Fail every edge that closes a cycle between models (by root digest).

    Evidence cannot form a cycle (each child pins its parents' bundle digests),
    but a model can: evidence for model A naming B as parent, whose evidence
    names an earlier evidence of A. Cycles are found on the graph of models.
    """
    by_root: dict[str, list[int]] = {}
    for i, e in enumerate(walk.edges):
        child, parent = walk.nodes[e.child], walk.nodes[e.parent]
        if e.ok and child.root and parent.root and parent.status is not NodeStatus.EXTERNAL:
            by_root.setdefault(child.root, []).append(i)
    white, grey, black = 0, 1, 2
    color: dict[str, int] = {}
    for start in list(by_root):
        if color.get(start, white) != white:
            continue
        color[start] = grey
        stack: list[tuple[str, int]] = [(start, 0)]
        path = [start]
        while stack:
            root, at = stack[-1]
            out = by_root.get(root, [])
            if at == len(out):
                stack.pop()
                path.pop()
                color[root] = black
                continue
            stack[-1] = (root, at + 1)
            edge_index = out[at]
            edge = walk.edges[edge_index]
            target = walk.nodes[edge.parent].root
            assert target is not None
            state = color.get(target, white)
            if state == grey:
                cycle = [*path[path.index(target):], target]
                names = " -> ".join(_root_label(walk, r) for r in cycle)
                detail = (f"cycle: model sha256:{target[:_SHORT]} is its own ancestor "
                          f"({names})")
                walk.edges[edge_index] = LineageEdge(edge.child, edge.parent, edge.role,
                                                     False, detail)
                walk.failures.append(f"{walk.nodes[edge.child].label} -> "
                                     f"{walk.nodes[edge.parent].label} ({edge.role}): {detail}")
            elif state == white:
                color[target] = grey
                stack.append((target, 0))
                path.append(target)


def _root_label(walk: _Walk, root: str) -> str:
    for node in walk.nodes.values():
        if node.root == root:
            return node.label
    return f"sha256:{root[:_SHORT]}"


def _diff(signed: dict[str, str], actual: dict[str, str], label: str) -> tuple[int, str]:
    changed = sorted(p for p in signed if actual.get(p) != signed[p])
    listed = ", ".join(_display(label if p == "." else p) for p in changed[:5])
    more = f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""
    return len(changed), f"changed: {listed}{more}"


def _belongs_to(here: str, ev: str) -> int:
    """How surely the copy at real path ``here`` is the model whose evidence is at ``ev``.

    2: the evidence directory lies inside it (``attest --out model/evidence``);
    1: it sits beside the evidence directory (``x/model`` and ``x/evidence``);
    0: it is elsewhere (it may still verify by digest, but a mismatch says nothing).
    """
    if ev.startswith(here.rstrip(os.sep) + os.sep):
        return 2
    return 1 if os.path.dirname(here) == os.path.dirname(ev) else 0


def _ranked(candidates: list[Path], ev: str, locator: ModelLocator
            ) -> Iterator[tuple[int, Path]]:
    """``candidates`` as ``sorted(((belongs, i, c)), reverse=True)`` would order them, lazily.

    Only the copies that can belong to the evidence at ``ev`` are ranked: those
    holding it (an ancestor of ``ev``) and those beside it (same parent). They
    are found through a per-listing index, so a node costs the depth of its
    path, not the number of same-named copies; the rest follow in reverse order,
    and are reached only when no belonging copy matches.
    """
    by_real = locator.index_of(candidates)
    ranked: list[tuple[int, int]] = []
    if ev:
        holders = {here for here in _ancestors(ev) if here in by_real}
        for here in holders:
            ranked.extend((2, i) for i in by_real[here])
        for i in locator.beside_index_of(candidates).get(os.path.dirname(ev), ()):
            if locator.real(candidates[i]) not in holders:
                ranked.append((1, i))
    ranked.sort(reverse=True)
    seen = {i for _b, i in ranked}
    for belongs, i in ranked:
        yield belongs, candidates[i]
    for i in range(len(candidates) - 1, -1, -1):
        if i not in seen:
            yield 0, candidates[i]


def _ancestors(path: str) -> Iterator[str]:
    """The directories holding ``path``, nearest first (``_belongs_to`` == 2)."""
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return
        yield parent
        path = parent


def _check_files(walk: _Walk, locator: ModelLocator) -> None:
    """With ``deep``: re-hash a copy of each verified model's files, when one is found.

    Any copy under the model search directories whose files all match verifies
    the node. When none matches, the node fails if a copy belonging to its
    evidence (holding it, or beside it) exists: those are its files, changed.
    Otherwise its files are reported absent.
    """
    for node in walk.nodes.values():
        if node.status is not NodeStatus.VERIFIED or node.evidence is None:
            continue
        signed = node.evidence.manifest
        mismatches: list[tuple[int, int, str, str]] = []
        ev = locator.real(node.path) if node.path else ""
        # The copies belonging to the evidence first: usually the first one hashed matches.
        for belongs, candidate in _ranked(locator.candidates(signed), ev, locator):
            actual = locator.digests(candidate, signed)
            if actual == signed.files:
                node.files = FileCheck("verified", str(candidate),
                                       f"{len(signed.files)} files match the signed manifest")
                break
            if belongs:
                count, why = _diff(signed.files, actual, candidate.name) if actual is not None \
                    else (len(signed.files), "cannot be hashed")
                mismatches.append((-belongs, count, str(candidate), why))
        else:
            if not mismatches:
                node.files = FileCheck("absent", None, "no copy of the model's files found")
                continue
            _belongs, _count, path, why = min(mismatches)
            detail = f"model files at {path} differ from the signed manifest: {why}"
            node.files = FileCheck("failed", path, detail)
            node.status, node.detail = NodeStatus.FAILED, detail
            walk.failures.append(f"{node.via}: {detail}")


@checked(evidence=EVIDENCE, trust=optional(instance(Trust, "a mlprov.trust.Trust")),
         search=PATHS,
         max_depth=int_in(0), deep=BOOL, model_search=optional(PATHS))
def walk_lineage(
    evidence: Path | str | EvidenceSource,
    *,
    trust: Trust | None,
    search: Sequence[Path | str] = (),
    max_depth: int = DEFAULT_MAX_DEPTH,
    deep: bool = False,
    model_search: Sequence[Path | str] | None = None,
) -> Lineage:
    """Walk the lineage graph from ``evidence`` to every root.

    Failures are reported in the result (never raised), each naming its
    edge. With ``trust=None`` statements are read without checking their
    signatures, for display (the result is then never ``verified``).

    Example:
        lineage = walk_lineage("evidence/", trust=None)   # read only, for display

    Args:
        evidence: the starting model's evidence directory, or an evidence
            source (e.g. in memory); for a source that is no directory only
            ``search`` is searched for parents.
        trust: the signers trusted as builders, or None to only read.
        search: directories to look for parents' evidence in (by digest,
            :data:`SEARCH_DEPTH` levels down). ``evidence``'s parent directory is
            always searched too.
        max_depth: the most edges followed from the start.
        deep: re-hash the files of every verified model of which a copy is
            found under ``model_search``.
        model_search: where to look for models' files (default: the search
            directories).

    Raises:
        InputError: ``evidence`` is not a directory, or ``max_depth`` is negative.
    """
    return _walk_lineage(as_source(evidence), trust=trust, search=search, max_depth=max_depth,
                         deep=deep, model_search=model_search)


def _walk_lineage(source: EvidenceSource, *, trust: Trust | None, search: Sequence[Path | str],
                  max_depth: int, deep: bool = False,
                  model_search: Sequence[Path | str] | None = None,
                  verified_start: VerifiedEvidence | None = None) -> Lineage:
    """:func:`walk_lineage`; ``verified_start`` is the start's evidence, verified by the caller.

    ``mlprov.verify`` passes it when its own checks (a superset of
    :func:`verify_evidence`'s, on the same bytes, under the same trust) all
    passed, so a model's statements are not read, verified and parsed twice.
    """
    start_path = source.directory
    if start_path is not None and not start_path.is_dir():
        raise InputError(f"evidence directory not found: {start_path}")
    if max_depth < 0:
        raise InputError(f"max depth must be 0 or more, got {max_depth}")
    roots = [*([start_path.parent] if start_path is not None else []),
             *(Path(s) for s in search)]
    tree = SearchTree(roots)  # scanned once, for parents' evidence and (deep) models' files
    walk = _Walk(trust=trust, index=SearchIndex(tree), max_depth=max_depth)
    found: VerifiedEvidence | MlprovError
    if verified_start is not None and trust is not None:
        found = verified_start
        if start_path is not None:  # an edge back to the start finds it verified
            walk._verified[tree.real(start_path)] = verified_start
    else:
        found = walk.evidence(start_path) if start_path is not None else walk.start(source)
    where = source.describe()
    if isinstance(found, MlprovError):
        try:
            start_id = "sha256:" + hashlib.sha256(
                _source_bytes(source, PROVENANCE_FILE)).hexdigest()
        except BundleError:
            start_id = f"evidence:{where}"
        node = _Node(start_id, NodeStatus.FAILED, None, None, 0, str(found),
                     via=where, path=start_path, where=where)
        walk.nodes[start_id] = node
        walk.failures.append(f"{_display(where)}: {found}")
    else:
        start_id = f"sha256:{found.provenance_bundle}"
        node = _Node(start_id, walk.ok_status, found.name, found.root_digest, 0,
                     f"signed by {found.signer} ({Role.BUILDER})" if found.signer
                     else "read without a trust anchor: signatures not checked",
                     via="", evidence=found, path=start_path, where=where)
        node.via = node.label
        walk.nodes[start_id] = node
        queue: deque[_Node] = deque([node])
        while queue:
            child = queue.popleft()
            assert child.evidence is not None
            for record in child.evidence.parents:
                _resolve(walk, child, record, queue)
        _find_cycles(walk)
        if deep and trust is not None:
            locator_tree = SearchTree([Path(s) for s in model_search]) \
                if model_search is not None else tree
            _check_files(walk, ModelLocator(locator_tree))
    return Lineage(start=start_id, nodes=tuple(n.freeze() for n in walk.nodes.values()),
                   edges=tuple(walk.edges), failures=tuple(walk.failures),
                   missing=tuple(walk.missing), trusted=trust is not None, deep=deep,
                   max_depth=max_depth, search=tuple(str(r) for r in walk.index.roots))


@checked(evidence=PATH, trust=optional(TRUST), key=optional(PATH),
         search=PATHS,
         max_depth=int_in(0), deep=BOOL, model_search=optional(PATHS))
def verify_lineage(
    evidence: Path | str,
    *,
    trust: Trust | Path | str | None = None,
    key: Path | str | None = None,
    search: Sequence[Path | str] = (),
    max_depth: int = DEFAULT_MAX_DEPTH,
    deep: bool = False,
    model_search: Sequence[Path | str] | None = None,
) -> Lineage:
    """Verify the lineage of the model whose evidence is ``evidence``.

    ``trust`` is a :class:`~mlprov.trust.Trust` or a trust file; ``key`` a
    public key trusted instead. See :func:`walk_lineage` for the rest;
    ``lineage.verified`` says whether it verified and ``lineage.failures``
    names each broken edge.

    Example:
        lineage = mlprov.verify_lineage("evidence/", trust="trust.yaml", search=["parents/"])
        print(lineage.summary())

    Raises:
        InputError: nothing (or two things) to trust, or no such evidence directory.
        KeyMaterialError, TrustError: unusable trust material.
    """
    if trust is not None and key is not None:
        raise InputError("give a trust file or a key, not both")
    if isinstance(trust, Trust):
        resolved = trust
    elif trust is not None:
        resolved = load_trust(Path(trust))
    elif key is not None:
        resolved = Trust.single_key(Path(key))
    else:
        raise InputError("nothing to trust", hint="pass --trust TRUST_FILE or --key PUBLIC_KEY")
    return walk_lineage(evidence, trust=resolved, search=search, max_depth=max_depth,
                        deep=deep, model_search=model_search)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _status_text(node: LineageNode) -> str:
    text = node.status.value
    if node.files is not None and node.files.status != "failed":
        text += f", files {node.files.status}"
    return text


def _render_tree(lineage: Lineage) -> str:
    lines: list[str] = []
    shown: set[str] = set()

    def describe(node: LineageNode) -> str:
        text = f"{node.label} [{_status_text(node)}]"
        if node.status in (NodeStatus.FAILED, NodeStatus.MISSING):
            text += f" {_display(node.detail)}"
        return text

    start = lineage.node(lineage.start)
    lines.append(describe(start))
    shown.add(start.id)
    # (edge, prefix) in depth-first order; an explicit stack, as chains may be long
    stack: list[tuple[LineageEdge, str, bool]] = [
        (e, "", i == len(lineage.parents(start.id)) - 1)
        for i, e in reversed(list(enumerate(lineage.parents(start.id))))]
    while stack:
        edge, prefix, last = stack.pop()
        parent = lineage.node(edge.parent)
        branch = "`-- " if last else "|-- "
        text = f"{prefix}{branch}{edge.role.value}: {describe(parent)}"
        if not edge.ok and (edge.detail != parent.detail):
            text += f" [link failed: {_display(edge.detail)}]"
        if parent.id in shown and lineage.parents(parent.id):
            text += " (ancestors shown above)"
            lines.append(text)
            continue
        lines.append(text)
        shown.add(parent.id)
        inner = prefix + ("    " if last else "|   ")
        children = lineage.parents(parent.id)
        stack.extend((e, inner, i == len(children) - 1)
                     for i, e in reversed(list(enumerate(children))))
    lines.append(f"lineage: {lineage.status}")
    return "\n".join(lines)


_DOT_COLORS = {NodeStatus.VERIFIED: "#d4edda", NodeStatus.FAILED: "#f8d7da",
               NodeStatus.EXTERNAL: "#e2e3e5", NodeStatus.MISSING: "#fff3cd",
               NodeStatus.UNVERIFIED: "#ffffff"}


def _dot_string(text: str) -> str:
    escaped = _display(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _render_dot(lineage: Lineage) -> str:
    lines = ["digraph lineage {", "  rankdir=BT;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for node in lineage.nodes:
        # two escaped lines joined by DOT's own line break
        label = _dot_string(node.label)[:-1] + "\\n" + _dot_string(_status_text(node))[1:]
        style = ', style="rounded,filled,dashed"' if node.status is NodeStatus.EXTERNAL else ""
        lines.append(f"  {_dot_string(node.id)} [label={label}, "
                     f'fillcolor="{_DOT_COLORS[node.status]}"{style}];')
    for edge in lineage.edges:
        attrs = f"label={_dot_string(edge.role.value)}"
        if not edge.ok:
            attrs = f"label={_dot_string(edge.role.value + ' (failed)')}, color=red, fontcolor=red"
        lines.append(f"  {_dot_string(edge.child)} -> {_dot_string(edge.parent)} [{attrs}];")
    lines.append("}")
    return "\n".join(lines)


def _mermaid_text(text: str) -> str:
    # Mermaid entity codes (https://mermaid.js.org/syntax/flowchart.html#entity-codes-to-escape-characters)
    out = _display(text).replace("#", "#35;").replace('"', "#quot;")
    return out.replace("<", "#lt;").replace(">", "#gt;").replace("|", "#124;")


def _render_mermaid(lineage: Lineage) -> str:
    ids = {node.id: f"n{i}" for i, node in enumerate(lineage.nodes)}
    lines = ["flowchart BT"]
    for node in lineage.nodes:
        label = f"{_mermaid_text(node.label)}<br/>{_status_text(node)}"
        lines.append(f'  {ids[node.id]}["{label}"]:::{node.status.value}')
    for edge in lineage.edges:
        arrow = "-->" if edge.ok else "-.->"
        role = edge.role.value if edge.ok else f"{edge.role.value} (failed)"
        lines.append(f'  {ids[edge.child]} {arrow}|"{role}"| {ids[edge.parent]}')
    lines += [
        "  classDef verified fill:#d4edda,stroke:#28a745",
        "  classDef failed fill:#f8d7da,stroke:#dc3545",
        "  classDef external fill:#e2e3e5,stroke:#6c757d,stroke-dasharray: 5 5",
        "  classDef missing fill:#fff3cd,stroke:#ffc107",
        "  classDef unverified fill:#ffffff,stroke:#6c757d",
    ]
    return "\n".join(lines)


@checked(lineage=instance(Lineage), fmt=instance(LineageFormat))
def render(lineage: Lineage, fmt: LineageFormat) -> str:
    """Render the graph: an ASCII tree, JSON, Graphviz DOT or Mermaid.

    Example:
        print(render(lineage, LineageFormat.TREE))
    """
    match fmt:
        case LineageFormat.TREE:
            return _render_tree(lineage)
        case LineageFormat.JSON:
            import json

            return json.dumps(lineage.to_json_dict(), indent=2, sort_keys=True)
        case LineageFormat.DOT:
            return _render_dot(lineage)
        case LineageFormat.MERMAID:
            return _render_mermaid(lineage)
        case _:
            assert_never(fmt)
