"""Re-verify a stored version from the blob store, trusting no database row.

Every change to a version (stage, alias, review, deployment) and every pull
starts here. The version's row only says where to look; what counts is:

1. the registration decision, signed by the registry key, binding
   ``models:/NAME/N`` to the root digest and to the digests of the stored
   file manifest, evidence and scan report;
2. the evidence, read straight from content-addressed blobs (digests checked on
   read; :class:`~._blobsource.BlobEvidenceSource`, no copy on disk) and
   verified with :func:`mlprov.verify` against the registry's trust, the
   stored file manifest standing for the model's files;
3. the model's files: every digest the *signed* manifest names must be a
   stored blob of the right size (``deep``: read and re-hashed in full).

A row that disagrees with any of these is reported as tampering.

Still written to a temporary directory, because the APIs they go through take
paths: the evidence of registered *ancestors* of a derived model (the lineage
walk searches directories), attached reviews (``verify_reviews``), and, with
``deep``, each file blob re-hashed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError, MlprovError
from mlprov.hashing import FileDigest, HashJob, Manifest, check_relative_path
from mlprov.registry._decisions import (
    VSA_PREDICATE,
    SignedByRegistry,
    change_of,
    input_digests,
    verify_signed,
)
from mlprov.registry._uri import version_uri
from mlprov.registry.interface import (
    BlobStore,
    RegistryIntegrityError,
    RenameRecord,
    StoreError,
    VersionRecord,
)
from mlprov.trust import Trust

if TYPE_CHECKING:
    from mlprov.verification import Verdict

__all__ = [
    "EVIDENCE_MAP_SCHEMA",
    "FILES_SCHEMA",
    "RegistryIntegrityError",
    "VersionFacts",
    "evidence_map",
    "files_document",
    "manifest_from_document",
    "verify_version",
]

FILES_SCHEMA = "https://mlprov.dev/schemas/registry-files/v1"
EVIDENCE_MAP_SCHEMA = "https://mlprov.dev/schemas/registry-evidence/v1"
#: Input-attestation URIs of the registry's own records in a registration decision.
FILES_INPUT = "registry:files"
EVIDENCE_INPUT = "registry:evidence"
SCAN_INPUT = "registry:scan"
_MAX_INDEX_BYTES = 64 * 1024 * 1024


@dataclass
class VersionFacts:
    """A version, re-verified: the verdict and everything the policy may use."""

    record: VersionRecord
    verdict: Verdict
    registration: SignedByRegistry
    manifest: Manifest
    evidence: dict[str, str]
    scan: dict[str, Any] | None = None
    reviews: list[Any] = field(default_factory=list)
    review_digests: list[str] = field(default_factory=list)

    def input_attestations(self) -> dict[str, str]:
        """Every input a decision about this version is evaluated over: URI -> digest."""
        inputs = {f"evidence/{name}": digest for name, digest in self.evidence.items()}
        inputs["registry:registration"] = self.record.registration
        inputs[FILES_INPUT] = self.record.files_digest
        if self.record.scan_digest:
            inputs[SCAN_INPUT] = self.record.scan_digest
        for digest in self.review_digests:
            inputs[f"reviews/{digest.removeprefix('sha256:')}.sigstore.json"] = digest
        return inputs


class _Prehashed(HashJob):
    """A finished "hash job" whose manifest comes from the content-addressed store.

    The store names each blob by the SHA-256 of its bytes (checked on write
    and on read), so a manifest built from the signed digests whose blobs are
    all present describes exactly the bytes a pull would hand out.
    """

    def __init__(self, manifest: Manifest) -> None:  # no background work to start
        self.ignore_paths = ()
        self.allow_symlinks = manifest.allow_symlinks
        self._stored = manifest

    def result(self) -> Manifest:
        return self._stored

    def cancel(self) -> None:
        return None


def files_document(manifest: Manifest) -> bytes:
    """The canonical JSON the registry stores for a version's file manifest."""
    return canonical_json({
        "schema": FILES_SCHEMA, "name": manifest.name, "isFile": manifest.is_file,
        "allowSymlinks": manifest.allow_symlinks, "ignorePaths": list(manifest.ignore_paths),
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in manifest.files],
    })


def manifest_from_document(data: bytes) -> Manifest:
    """Parse a stored file manifest (paths checked: no ``..``, no absolute names).

    Raises:
        StoreError: malformed.
    """
    try:
        document = loads_strict(data, what="stored file manifest")
        if not isinstance(document, dict) or document.get("schema") != FILES_SCHEMA:
            raise InputError("unknown schema")
        files = tuple(FileDigest(check_relative_path(f["path"]), str(f["sha256"]), int(f["size"]))
                      for f in document["files"])
        return Manifest(name=str(document["name"]), files=files,
                        ignore_paths=tuple(document["ignorePaths"]),
                        allow_symlinks=bool(document["allowSymlinks"]),
                        is_file=bool(document["isFile"]))
    except (InputError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"a stored file manifest is unusable: {exc}") from exc


def evidence_map(data: bytes) -> dict[str, str]:
    """Parse a stored evidence map: evidence file name -> blob digest.

    Raises:
        StoreError: malformed or unsafe names.
    """
    try:
        document = loads_strict(data, what="stored evidence map")
        if not isinstance(document, dict) or document.get("schema") != EVIDENCE_MAP_SCHEMA:
            raise InputError("unknown schema")
        return {check_relative_path(str(k)): str(v) for k, v in document["files"].items()}
    except (InputError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"a stored evidence map is unusable: {exc}") from exc


def evidence_map_document(files: dict[str, str]) -> bytes:
    """The canonical JSON of an evidence map."""
    return canonical_json({"schema": EVIDENCE_MAP_SCHEMA, "files": dict(sorted(files.items()))})


def materialize(blobs: BlobStore, files: dict[str, str], directory: Path) -> None:
    """Write blobs to ``directory`` under their names (digests checked)."""
    for name, digest in files.items():
        dest = directory / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        blobs.copy_to(digest, dest)


def check_renames(renames: Sequence[RenameRecord], name: str, trust: Trust,
                  decisions: Callable[[str], bytes | None]) -> None:
    """Verify the renames that lead to the model's current ``name``, oldest first.

    Each must be a signed, accepted ``model.rename`` decision naming the same old
    and new name and audit entry as its row, and together they must chain to ``name``.

    Raises:
        RegistryIntegrityError: a rename row disagrees with its decision, or the
            chain is broken.
    """
    previous: RenameRecord | None = None
    for rename in renames:
        what = f"the decision renaming {rename.old_name} to {rename.new_name}"
        decision = verify_signed(read_decision(decisions, rename.decision), trust, what=what,
                                 predicate_type=VSA_PREDICATE)
        change = change_of(decision)
        if (change.get("kind"), change.get("from"), change.get("to"), change.get("auditSeq"),
                decision.predicate.get("verificationResult")) != (
                "model.rename", rename.old_name, rename.new_name, rename.seq, "PASSED"):
            raise RegistryIntegrityError(f"the registry's rename row of {rename.old_name} "
                                         f"(audit entry {rename.seq}) disagrees with {what}")
        if previous is not None and (previous.new_name != rename.old_name
                                     or previous.seq >= rename.seq):
            raise RegistryIntegrityError(f"the renames of {name} do not follow each other")
        previous = rename
    if previous is not None and previous.new_name != name:
        raise RegistryIntegrityError(f"the renames of {name} lead to {previous.new_name}")


def registered_name(record: VersionRecord, registration: SignedByRegistry,
                    renames: Sequence[RenameRecord]) -> str:
    """The name the model had when ``registration`` was recorded (renames oldest first)."""
    seq = change_of(registration).get("auditSeq")
    name = record.name
    for rename in reversed(renames):
        if not isinstance(seq, int) or seq >= rename.seq:
            break
        name = rename.old_name
    return name


def check_registration(decision_bytes: bytes, record: VersionRecord, trust: Trust,
                       renames: Sequence[RenameRecord] = ()) -> SignedByRegistry:
    """Verify the decision that registered ``record`` and that it binds the row.

    ``renames`` (verified: :func:`check_renames`) say which name the model had
    when it was registered: the decision names that one.

    Raises:
        RegistryIntegrityError: the row disagrees with the signed decision.
        SignatureError, BundleError: the decision is not the registry's.
    """
    what = f"registration decision of {record.name} v{record.version}"
    decision = verify_signed(decision_bytes, trust, what=what, predicate_type=VSA_PREDICATE)
    change = change_of(decision)
    inputs = input_digests(decision)
    subjects = decision.statement.subject_sha256()
    problems = []
    registered = registered_name(record, decision, renames)
    if decision.predicate.get("resourceUri") != version_uri(registered, record.version):
        problems.append(f"it registered {decision.predicate.get('resourceUri')}")
    if decision.predicate.get("verificationResult") != "PASSED" or \
            change.get("kind") != "model.register":
        problems.append("it is not an accepted registration")
    if subjects != {record.root_digest.removeprefix("sha256:")}:
        problems.append("its subject is another root digest")
    if change.get("identity") != record.identity:
        problems.append("it names another identity")
    if inputs.get(FILES_INPUT) != record.files_digest:
        problems.append("it names another file manifest")
    if inputs.get(EVIDENCE_INPUT) != record.evidence_digest:
        problems.append("it names other evidence")
    if inputs.get(SCAN_INPUT) != record.scan_digest:
        problems.append("it names another scan report")
    if problems:
        raise RegistryIntegrityError(f"the registry's row for {record.name} v{record.version} "
                                     f"disagrees with its signed registration: "
                                     f"{'; '.join(problems)}")
    return decision


class VerifiedCache:
    """Verdicts memoised per process, keyed by the digests of everything verified.

    A verdict is a pure function of immutable, content-addressed bytes (the
    registration decision, the evidence map and every evidence blob it names,
    the file manifest) and of the trust: the key holds all of their digests, so
    a row pointing anywhere else, or a trust change, misses the cache. File
    blobs are still checked for presence and size on every call.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: dict[tuple[str, ...], tuple[SignedByRegistry, dict[str, str], Manifest,
                                                 Verdict, Any]] = {}

    def get(self, key: tuple[str, ...]) -> Any:
        """The cached entry, or None."""
        item = self._items.pop(key, None)
        if item is not None:
            self._items[key] = item  # most recently used last
        return item

    def put(self, key: tuple[str, ...], value: Any) -> None:
        """Remember an entry, evicting the least recently used."""
        self._items[key] = value
        while len(self._items) > self._size:
            self._items.pop(next(iter(self._items)))


def _check_file_blobs(manifest: Manifest, blobs: BlobStore, what: str, deep: bool,
                      scratch: Callable[[], Path] | None) -> None:
    for entry in manifest.files:
        digest = f"sha256:{entry.sha256}"
        if deep and scratch is not None:  # read every byte back and re-hash it
            probe = scratch() / "probe"
            blobs.copy_to(digest, probe)
            probe.unlink()
            continue
        size = blobs.stat(digest)
        if size is None:
            raise RegistryIntegrityError(f"{what}: file {entry.path} ({digest}) is "
                                         "missing from the blob store")
        if size != entry.size:
            raise RegistryIntegrityError(f"{what}: the stored blob of {entry.path} "
                                         "has the wrong size")


#: Ancestors looked up in the registry for one lineage walk, at most (a resource bound).
MAX_ANCESTORS = 256


def parents_in(provenance: bytes) -> list[Any]:
    """The parents a provenance bundle records, read *unverified*: only a lookup hint.

    The lineage walk in :func:`mlprov.verify` verifies whatever is found.
    """
    from mlprov.bundles import read_envelopes
    from mlprov.evidence import PROVENANCE_FILE
    from mlprov.lineage import read_parents
    from mlprov.signing import b64decode_any
    from mlprov.statements import parse_statement

    try:
        [(envelope, _hint)] = read_envelopes(provenance, what=PROVENANCE_FILE)[:1]
        statement = parse_statement(b64decode_any(envelope.payload, what="payload"),
                                    what=PROVENANCE_FILE)
        return [p for p in read_parents(statement, what=PROVENANCE_FILE) if not p.external]
    except MlprovError:
        return []


def _parents_of(blobs: BlobStore, evidence: dict[str, str]) -> list[Any]:
    from mlprov.evidence import PROVENANCE_FILE

    digest = evidence.get(PROVENANCE_FILE)
    if digest is None:
        return []
    return parents_in(blobs.get_bytes(digest, max_size=_MAX_INDEX_BYTES))


def find_ancestors(blobs: BlobStore, evidence: dict[str, str],
                   lookup: Callable[[str], list[VersionRecord]],
                   first: list[Any] | None = None) -> dict[str, str]:
    """Registered versions that may be ancestors: ``NAME-vN`` -> evidence map digest.

    Parents are looked up by the root digest the (unverified) provenance names
    (or ``first``), then their parents, and so on; the walk in ``verify``
    checks every edge.
    """
    found: dict[str, str] = {}
    queue: list[dict[str, str] | None] = [None if first is not None else evidence]
    seen: set[str] = set()
    while queue and len(found) < MAX_ANCESTORS:
        current = queue.pop()
        parents = (first or []) if current is None else _parents_of(blobs, current)
        for parent in parents:
            if parent.root_digest in seen:
                continue
            seen.add(parent.root_digest)
            for record in lookup(f"sha256:{parent.root_digest}"):
                label = f"{record.name}-v{record.version}"
                if label in found:
                    continue
                found[label] = record.evidence_digest
                queue.append(evidence_map(blobs.get_bytes(record.evidence_digest,
                                                          max_size=_MAX_INDEX_BYTES)))
    return found


def materialize_ancestors(blobs: BlobStore, ancestors: dict[str, str], directory: Path) -> None:
    """Write each ancestor's evidence to ``directory/NAME-vN/`` (for the lineage walk)."""
    for label, digest in ancestors.items():
        target = directory / label
        target.mkdir(parents=True)
        materialize(blobs, evidence_map(blobs.get_bytes(digest, max_size=_MAX_INDEX_BYTES)),
                    target)


def read_decision(get: Callable[[str], bytes | None], digest: str) -> bytes:
    """A signed decision's bytes from the metadata store, checked against its digest.

    Raises:
        RegistryIntegrityError: missing, or not the bytes its digest names.
    """
    import hashlib

    data = get(digest)
    if data is None:
        raise RegistryIntegrityError(f"decision {digest} is missing from the registry")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise RegistryIntegrityError(f"decision {digest} was changed in the registry")
    return data


def verify_version(record: VersionRecord, *, trust: Trust, blobs: BlobStore,
                   decisions: Callable[[str], bytes | None],
                   review_digests: Iterable[str] = (), deep: bool = False,
                   cache: VerifiedCache | None = None, trust_key: str | None = None,
                   lookup: Callable[[str], list[VersionRecord]] | None = None,
                   model_path: Path | None = None,
                   renames: Sequence[RenameRecord] = ()) -> VersionFacts:
    """Re-verify ``record`` from the blob store (see the module docstring).

    Args:
        record: the version's row (only a pointer to what is verified).
        trust: the trust to verify with.
        blobs: the blob store.
        decisions: the metadata store's signed decisions by digest (the
            registration decision among them).
        review_digests: the attached reviews' blobs, verified too.
        deep: re-read and re-hash every file blob, not only check its presence.
        cache: memoised verdicts (see :class:`VerifiedCache`).
        trust_key: a digest naming ``trust`` exactly (the cache is used only with it).
        lookup: finds registered versions by root digest, so that a derived
            model's lineage is walked through the registry's own copies.
        model_path: an existing, empty directory handed to ``verify`` as the
            model (its files are the stored manifest; no byte is read there).
            Default: an empty directory made in the temporary work directory.
        renames: the model's renames, oldest first (its rows; each is verified
            against its signed decision): a version registered under an earlier
            name is signed, and its provenance names, that name.

    Raises:
        RegistryIntegrityError: a row disagrees with signed data, or the
            evidence no longer verifies (e.g. after a trust change).
        BlobNotFoundError, BlobCorruptError: stored bytes are missing or changed.
    """
    what = f"{record.name} v{record.version}"
    evidence = evidence_map(blobs.get_bytes(record.evidence_digest, max_size=_MAX_INDEX_BYTES))
    ancestors = find_ancestors(blobs, evidence, lookup) if lookup is not None else {}
    key = (record.registration, record.evidence_digest, record.files_digest,
           record.scan_digest or "", record.root_digest, record.identity, record.name,
           str(record.version), trust_key or "",
           *(f"{label}={digest}" for label, digest in sorted(ancestors.items())),
           *(f"rename={r.decision}" for r in renames))
    use_cache = cache is not None and trust_key is not None
    cached = cache.get(key) if cache is not None and use_cache else None
    digests = list(review_digests)
    workdir: Path | None = None

    def scratch() -> Path:  # a temporary directory, made only when needed
        nonlocal workdir
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="mlprov-verify-"))
        return workdir

    try:
        if cached is not None:
            registration, evidence, manifest, verdict, scan = cached
            _check_file_blobs(manifest, blobs, what, deep, scratch if deep else None)
            facts = VersionFacts(record=record, verdict=verdict, registration=registration,
                                 manifest=manifest, evidence=evidence, scan=scan)
        else:
            check_renames(renames, record.name, trust, decisions)
            registration = check_registration(read_decision(decisions, record.registration),
                                              record, trust, renames)
            search: list[Path] = []
            if ancestors:
                search.append(scratch() / "parents")
                materialize_ancestors(blobs, ancestors, search[0])
            model = model_path
            if model is None:
                model = scratch() / "model"
                model.mkdir()
            facts = _verify_uncached(record, registration, trust, blobs, deep,
                                     scratch if deep else None, what, model, search,
                                     registered_name(record, registration, renames))
            if cache is not None and use_cache:
                cache.put(key, (facts.registration, facts.evidence, facts.manifest,
                                facts.verdict, facts.scan))
        if digests:
            review_key = ("reviews", record.name, record.root_digest, record.identity,
                          trust_key or "", *digests)
            reviews = cache.get(review_key) if cache is not None and use_cache else None
            if reviews is None:
                reviews = _verify_reviews(digests, record, facts.verdict, trust, blobs,
                                          scratch() / "reviews")
                if cache is not None and use_cache:
                    cache.put(review_key, reviews)
            facts.reviews, facts.review_digests = list(reviews), digests
        return facts
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _verify_uncached(record: VersionRecord, registration: SignedByRegistry, trust: Trust,
                     blobs: BlobStore, deep: bool, scratch: Callable[[], Path] | None,
                     what: str, model: Path, search: list[Path],
                     registered: str) -> VersionFacts:
    from mlprov.registry._blobsource import BlobEvidenceSource
    from mlprov.verification import verify

    evidence = evidence_map(blobs.get_bytes(record.evidence_digest,
                                            max_size=_MAX_INDEX_BYTES))
    manifest = manifest_from_document(blobs.get_bytes(record.files_digest,
                                                      max_size=_MAX_INDEX_BYTES))
    _check_file_blobs(manifest, blobs, what, deep, scratch)
    source = BlobEvidenceSource(blobs, evidence, label=f"stored evidence of {what}")
    try:
        verdict = verify(model, evidence=source, trust=trust, search=search,
                         hashing=_Prehashed(manifest))
    except MlprovError as exc:
        raise RegistryIntegrityError(f"{what}: its stored evidence does not verify: "
                                     f"{exc}") from exc
    if not verdict.verified:
        failure = verdict.failures()[0] if verdict.failures() else None
        detail = failure.detail if failure else "no check ran"
        raise RegistryIntegrityError(f"{what}: its stored evidence no longer verifies "
                                     f"against the registry's trust: {detail}",
                                     hint="if the trust file changed, re-attest the "
                                          "model or restore the signer's key")
    # A copy registered under another name: its signed registration names the evidence's;
    # otherwise the evidence names the model as it was called then (``registered``: renames).
    evidence_name = change_of(registration).get("evidenceName", registered)
    mismatch = [label for label, stored, verified in (
        ("root digest", record.root_digest, verdict.root_digest),
        ("identity", record.identity, verdict.identity),
        ("name", evidence_name, verdict.name)) if stored != verified]
    if mismatch:
        raise RegistryIntegrityError(f"the registry's row for {what} disagrees with its "
                                     f"verified evidence ({', '.join(mismatch)})")
    facts = VersionFacts(record=record, verdict=verdict, registration=registration,
                         manifest=manifest, evidence=evidence)
    if record.scan_digest:
        scan = loads_strict(blobs.get_bytes(record.scan_digest, max_size=_MAX_INDEX_BYTES),
                            what=f"scan report of {what}")
        facts.scan = scan if isinstance(scan, dict) else None
    return facts


def _verify_reviews(digests: list[str], record: VersionRecord, verdict: Any, trust: Trust,
                    blobs: BlobStore, directory: Path) -> list[Any]:
    """Verify stored reviews again (they were verified when attached, too)."""
    from mlprov.reviews import verify_reviews

    directory.mkdir()
    paths = []
    for digest in digests:
        path = directory / f"{digest.removeprefix('sha256:')}.sigstore.json"
        blobs.copy_to(digest, path)
        paths.append(path)
    from mlprov.reviews import provenance_digest

    # The name the version's provenance signs (a model renamed or copied under another
    # name keeps its reviews).
    return list(verify_reviews(paths, trust, root_digest=record.root_digest,
                               identity=record.identity, name=verdict.name,
                               provenance=provenance_digest(verdict)))
