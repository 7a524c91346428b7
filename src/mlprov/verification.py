"""``mlprov.verify``: check a model against its evidence, trusting only signatures.

Every claim is taken from a statement whose signature verified with a trusted
key holding the needed role; ``evidence.json`` is only checked, never believed.
Each check is reported, so a deploy pipeline or an auditor sees what passed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlprov._internal.arguments import (
    BOOL,
    CALLBACK,
    EVIDENCE,
    HASH_JOB,
    PATH,
    PATHS,
    TRUST,
    checked,
    optional,
)
from mlprov._internal.documents import EVAL_PREDICATE_TYPE
from mlprov._internal.inputs import compute_identity
from mlprov._internal.provenance_reader import SLSA_PROVENANCE_V1, ProvenanceFacts
from mlprov._internal.provenance_reader import read_provenance as read_provenance_facts
from mlprov.bundles import VerifiedStatement, verify_statement_file, verify_statement_in
from mlprov.errors import InputError, MlprovError, VerificationError
from mlprov.evidence import (
    CARD_FILE,
    EVAL_FILE,
    INDEX_FILE,
    OMS_FILE,
    PROVENANCE_FILE,
    SBOM_BUNDLE_FILE,
    SBOM_FILE,
    STANDARD_FILES,
    DirectorySource,
    EvidenceSource,
    IndexFields,
    check_evidence_name,
    read_index_fields,
)
from mlprov.hashing import (
    DEFAULT_IGNORE_PATHS,
    HashJob,
    Manifest,
    ProgressCallback,
    default_ignore_paths,
    hash_path,
)
from mlprov.lineage import (
    DEFAULT_MAX_DEPTH,
    Lineage,
    VerifiedEvidence,
    _walk_lineage,
    read_parents,
)
from mlprov.oms import OMS_PREDICATE_TYPE, SignedManifest, read_signed_manifest
from mlprov.sbom import CYCLONEDX_BOM_PREDICATE, SbomInfo, read_bom
from mlprov.trust import Role, Trust, load_trust

if TYPE_CHECKING:
    from mlprov._internal.schema_verdicts import SchemaVerdicts
    from mlprov.evaluation import EvalPredicate
    from mlprov.provenance import TrainingProvenance

__all__ = ["VERDICT_SCHEMA", "Check", "Verdict", "compare_files", "verify"]

VERDICT_SCHEMA = "https://mlprov.dev/schemas/verdict/v1"
T = TypeVar("T")
_MAX_LISTED = 10


@dataclass(frozen=True)
class Check:
    """One verification step and its outcome (``ok`` None = skipped)."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class Verdict:
    """The outcome of verifying a model against its evidence."""

    model: str
    evidence: str
    checks: list[Check] = field(default_factory=list)
    name: str | None = None
    identity: str | None = None
    root_digest: str | None = None
    signers: dict[str, str] = field(default_factory=dict)
    #: Every statement whose signature verified, by evidence file name. Only
    #: these (never raw files) may feed later decisions such as policies.
    statements: dict[str, VerifiedStatement] = field(default_factory=dict)
    #: The verified training provenance's facts, when it verified (read without pydantic;
    #: :attr:`provenance` is the same as a pydantic model).
    provenance_facts: ProvenanceFacts | None = None
    #: The verified ML-BOM (``sbom.sigstore.json``), when its checks passed.
    sbom: SbomInfo | None = None
    #: The verified eval predicate (``eval.sigstore.json``), when its checks passed.
    evaluation: EvalPredicate | None = None
    #: The lineage graph walked from this evidence to every root (check
    #: ``lineage.verified``; ``lineage.status`` is ``incomplete`` when parents
    #: were not found), or None when it was not walked (no verified provenance).
    lineage: Lineage | None = None
    _provenance: TrainingProvenance | None = field(default=None, init=False, repr=False,
                                                   compare=False)

    @property
    def provenance(self) -> TrainingProvenance | None:
        """The verified training provenance, when it verified (built on first use)."""
        if self.provenance_facts is None:
            return None
        if self._provenance is None:
            from mlprov.provenance import training_provenance

            self._provenance = training_provenance(self.provenance_facts)
        return self._provenance

    @property
    def verified(self) -> bool:
        """True when every check ran and passed."""
        return bool(self.checks) and all(c.ok is True for c in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.ok is False]

    def to_json_dict(self) -> dict[str, Any]:
        """Return the machine-readable verdict (camelCase keys, like mlprov's other JSON)."""
        return {
            "schema": VERDICT_SCHEMA,
            "verified": self.verified,
            "model": self.model,
            "evidence": self.evidence,
            "name": self.name,
            "identity": self.identity,
            "rootDigest": self.root_digest,
            "signers": dict(self.signers),
            "checks": [asdict(c) for c in self.checks],
            "lineage": self.lineage.to_json_dict() if self.lineage is not None else None,
        }


class _Run:
    """Collects checks; a failed step yields None and its dependants are skipped."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.signed: SignedManifest | None = None  # the verified OMS manifest, once read

    def step(self, name: str, fn: Callable[[], tuple[T, str]]) -> T | None:
        try:
            value, detail = fn()
        except MlprovError as exc:
            self.verdict.checks.append(Check(name, False, str(exc)))
            return None
        self.verdict.checks.append(Check(name, True, detail))
        return value

    def skip(self, name: str, why: str) -> None:
        self.verdict.checks.append(Check(name, None, f"skipped: {why}"))

    def fail(self, name: str, detail: str) -> None:
        self.verdict.checks.append(Check(name, False, detail))


def compare_files(signed: dict[str, str], actual: Manifest, *, label: str) -> str:
    """Compare signed digests with the files on disk, naming every difference.

    Raises:
        VerificationError: a file is missing, extra or changed.
    """
    on_disk = actual.by_path()

    def show(path: str) -> str:
        return label if path == "." else path

    missing = sorted(set(signed) - set(on_disk))
    extra = sorted(set(on_disk) - set(signed))
    changed = sorted(p for p in set(signed) & set(on_disk) if signed[p] != on_disk[p])
    if not (missing or extra or changed):
        return f"{len(on_disk)} files, {actual.total_size} bytes match the signed manifest"
    parts = []
    for kind, paths in (("changed", changed), ("missing", missing), ("extra", extra)):
        if paths:
            listed = ", ".join(show(p) for p in paths[:_MAX_LISTED])
            more = f" (+{len(paths) - _MAX_LISTED} more)" if len(paths) > _MAX_LISTED else ""
            parts.append(f"{kind}: {listed}{more}")
    raise VerificationError("model files differ from the signed manifest: " + "; ".join(parts))


def _prehashed(job: HashJob | None, ignore: tuple[str, ...], allow_symlinks: bool
               ) -> Manifest | None:
    """Reuse a background hash when it covers the signed view, else None.

    The job may have ignored fewer paths than the signature records (those
    files are dropped here), never more, and must agree on symlinks.
    """
    if job is None or job.allow_symlinks != allow_symlinks \
            or not set(job.ignore_paths) <= set(ignore):
        return None
    try:
        return job.result().without(ignore)
    except MlprovError:
        return None  # hash again under the signed settings, which names the problem


def _check_files(model: Path, signed: SignedManifest, progress: ProgressCallback | None,
                 job: HashJob | None = None) -> tuple[Manifest, str]:
    ignore = tuple(dict.fromkeys(DEFAULT_IGNORE_PATHS + signed.ignore_paths))
    actual = _prehashed(job, ignore, signed.allow_symlinks)
    if actual is None:
        try:
            actual = hash_path(model, ignore_paths=ignore, allow_symlinks=signed.allow_symlinks,
                               progress=progress)
        except InputError as exc:
            raise VerificationError(str(exc)) from exc
    return actual, compare_files(signed.files, actual, label=model.name)


def _signature(run: _Run, source: EvidenceSource, name: str, trust: Trust, role: Role,
               predicate_type: str) -> VerifiedStatement | None:
    def go() -> tuple[VerifiedStatement, str]:
        verified = verify_statement_in(source, name, trust, role, predicate_type=predicate_type)
        return verified, f"signed by {verified.signer.describe()} ({role})"

    verified = run.step(f"signature:{name}", go)
    if verified is not None:
        run.verdict.signers[name] = verified.signer.name
        run.verdict.statements[name] = verified
    return verified


def _signed_manifest(run: _Run, oms: VerifiedStatement) -> SignedManifest | None:
    """The checked manifest of a verified OMS statement (evidence-only verification)."""
    run.signed = run.step("manifest", lambda: (
        read_signed_manifest(oms.parsed, what=oms.path.name), "safe and self-consistent"))
    return run.signed


def _verify_oms(run: _Run, model: Path, oms: VerifiedStatement,
                progress: ProgressCallback | None, job: HashJob | None) -> Manifest | None:
    signed = _signed_manifest(run, oms)
    if signed is None:
        run.skip("files", "no usable signed manifest")
        return None
    return run.step("files", lambda: _check_files(model, signed, progress, job))


def _verify_provenance(run: _Run, provenance: VerifiedStatement, root: str | None
                       ) -> ProvenanceFacts | None:
    what = provenance.path.name
    prov = run.step("provenance", lambda: (read_provenance_facts(provenance.parsed, what=what),
                                           "SLSA Provenance v1, mlprov training build type"))
    if prov is None:
        run.skip("subject", "no usable provenance")
        run.skip("identity", "no usable provenance")
        return None

    def subject(root: str) -> tuple[None, str]:
        digests = provenance.parsed.subject_sha256()
        names = {s.name or "" for s in provenance.parsed.subject}
        if names != {prov.name}:
            raise VerificationError(f"{what}: subject name {sorted(names)} is not {prov.name!r}")
        if root not in digests:
            raise VerificationError(f"{what}: subject is not the model's root digest "
                                    f"sha256:{root}")
        return None, f"subject is the model's root digest sha256:{root}"

    def identity() -> tuple[None, str]:
        recomputed = compute_identity(prov.inputs)
        if recomputed != prov.identity:
            raise VerificationError(f"identity {prov.identity} does not match its recorded "
                                    f"inputs ({recomputed})")
        return None, f"{recomputed} recomputed from the recorded inputs"

    if root is None:
        # Not a second failure: the subject cannot be checked without the files' root.
        run.skip("subject", "the model's root digest is unknown (files not verified)")
    else:
        known: str = root
        run.step("subject", lambda: subject(known))
    run.step("identity", identity)
    run.verdict.name, run.verdict.identity = prov.name, prov.identity
    run.verdict.provenance_facts = prov
    return prov


def _check_index(index: IndexFields, evidence: EvidenceSource, prov: ProvenanceFacts,
                 root: str) -> tuple[None, str]:
    if index.name != prov.name or index.identity != prov.identity:
        raise VerificationError(f"{INDEX_FILE} disagrees with the signed provenance "
                                "(name or identity edited)")
    if index.root_digest != f"sha256:{root}":
        raise VerificationError(f"{INDEX_FILE} names another root digest than the signatures")
    for required in STANDARD_FILES:
        if required not in index.files:
            raise VerificationError(f"{INDEX_FILE} does not list {required}")
    for file_name, digest in index.files.items():
        try:
            check_evidence_name(file_name, error=VerificationError)
        except VerificationError as exc:
            raise VerificationError(f"{INDEX_FILE} lists an unsafe file name {file_name!r}"
                                    ) from exc
        try:
            actual = "sha256:" + hashlib.sha256(_evidence_bytes(evidence, file_name)).hexdigest()
        except OSError as exc:
            raise VerificationError(f"evidence file missing: {file_name}") from exc
        if actual != digest:
            raise VerificationError(f"evidence file {file_name} changed since it was indexed")
    return None, f"{len(index.files)} evidence files match the index"


def _evidence_bytes(evidence: EvidenceSource, name: str) -> bytes:
    """An evidence file (in a directory: regular, not a symlink), bounded."""
    return evidence.read(name, what="evidence file", error=VerificationError)


def _file_sha256(evidence: EvidenceSource, name: str) -> str:
    try:
        return hashlib.sha256(_evidence_bytes(evidence, name)).hexdigest()
    except OSError as exc:
        raise VerificationError(f"evidence file missing: {name}") from exc


def _check_subject(verified: VerifiedStatement, root: str) -> None:
    if root not in verified.parsed.subject_sha256():
        raise VerificationError(f"{verified.path.name}: subject is not the model's root digest "
                                f"sha256:{root}")


def _check_sbom(evidence: EvidenceSource, verified: VerifiedStatement, root: str,
                verdicts: SchemaVerdicts | None = None) -> tuple[SbomInfo, str]:
    """The signed BOM: schema-valid, about this model, equal to sbom.cdx.json, pins intact."""
    from mlprov.canonical import loads_strict

    sbom = read_bom(verified.parsed, what=SBOM_BUNDLE_FILE, verdicts=verdicts)
    _check_subject(verified, root)
    try:
        data = _evidence_bytes(evidence, SBOM_FILE)
    except OSError as exc:
        raise VerificationError(f"evidence file missing: {SBOM_FILE}") from exc
    try:
        same = loads_strict(data, what=SBOM_FILE) == verified.parsed.predicate
    except InputError:
        same = False
    if not same:
        raise VerificationError(f"{SBOM_FILE} differs from the SBOM signed in {SBOM_BUNDLE_FILE}")
    if CARD_FILE not in sbom.pinned:
        raise VerificationError(f"{SBOM_BUNDLE_FILE}: the signed SBOM records no digest of "
                                f"{CARD_FILE}")
    pinned = sbom.pinned.get(PROVENANCE_FILE)
    if pinned is not None and _file_sha256(evidence, PROVENANCE_FILE) != pinned:
        raise VerificationError(f"{PROVENANCE_FILE} is not the provenance the signed SBOM "
                                "records (evidence of two attest runs mixed?)")
    return sbom, (f"CycloneDX {sbom.spec_version}: packages {len(sbom.packages)}, "
                  f"datasets {len(sbom.datasets)}; {SBOM_FILE} is the signed document")


def _check_eval(verified: VerifiedStatement, root: str, sbom: SbomInfo
                ) -> tuple[EvalPredicate, str]:
    from mlprov.evaluation import read_eval  # pydantic: only for evidence holding an eval

    predicate = read_eval(verified.statement, what=EVAL_FILE)
    _check_subject(verified, root)
    if sbom.pinned.get(EVAL_FILE) != verified.file_sha256:
        raise VerificationError(f"{EVAL_FILE} is not the eval statement the signed SBOM records")
    return predicate, (f"metrics {len(predicate.metrics)}, slices {len(predicate.slices)}, "
                       f"evaluator {predicate.evaluator.id}")


def _check_card(evidence: EvidenceSource, sbom: SbomInfo) -> tuple[None, str]:
    digest = _file_sha256(evidence, CARD_FILE)
    if digest != sbom.pinned.get(CARD_FILE):
        raise VerificationError(f"{CARD_FILE} does not match the digest the signed SBOM records")
    return None, f"sha256:{digest}, recorded in the signed SBOM"


def _verify_sbom_eval_card(run: _Run, evidence: EvidenceSource, trust: Trust,
                           root: str | None, verdicts: SchemaVerdicts | None = None) -> None:
    """The SBOM (builder), the eval statement (evaluator) and the model card it pins."""
    unknown_root = "the model's root digest is unknown"
    bom = _signature(run, evidence, SBOM_BUNDLE_FILE, trust, Role.BUILDER,
                     CYCLONEDX_BOM_PREDICATE)
    sbom: SbomInfo | None = None
    if bom is None or root is None:
        run.skip("sbom", "the SBOM signature did not verify" if bom is None else unknown_root)
    else:
        known, statement = root, bom
        sbom = run.step("sbom", lambda: _check_sbom(evidence, statement, known, verdicts))
    run.verdict.sbom = sbom
    # The eval statement is required when the signed SBOM records one; one the
    # SBOM does not record is refused (it was not part of this attestation).
    if (sbom is not None and EVAL_FILE in sbom.pinned) or evidence.exists(EVAL_FILE):
        signed = _signature(run, evidence, EVAL_FILE, trust, Role.EVALUATOR,
                            EVAL_PREDICATE_TYPE)
        if signed is None or root is None or sbom is None:
            run.skip("eval", "the eval signature did not verify" if signed is None
                     else unknown_root if root is None
                     else "the SBOM that records it did not verify")
        else:
            known, statement, recorded = root, signed, sbom
            run.verdict.evaluation = run.step(
                "eval", lambda: _check_eval(statement, known, recorded))
    if sbom is None:
        run.skip("card", "the SBOM did not verify")
    else:
        pins = sbom
        run.step("card", lambda: _check_card(evidence, pins))


def _resolve_trust(trust: Trust | Path | str | None, key: Path | str | None) -> Trust:
    if isinstance(trust, Trust):
        return trust
    if trust is not None and key is not None:
        raise InputError("give a trust file or a key, not both")
    if trust is not None:
        return load_trust(Path(trust))
    if key is not None:
        return Trust.single_key(Path(key))
    raise InputError("nothing to trust", hint="pass --trust TRUST_FILE or --key PUBLIC_KEY")


def _verified_start(run: _Run, evidence: EvidenceSource, oms: VerifiedStatement | None,
                    provenance: VerifiedStatement | None, prov: ProvenanceFacts | None,
                    root: str | None) -> VerifiedEvidence | None:
    """What ``verify_evidence`` would return, when every check above passed (else None).

    verify's checks cover verify_evidence's: both signatures (builder role), the
    signed manifest, the provenance subject's name and digest, the identity, and
    the index against the signed statements and every evidence file's bytes.
    """
    if oms is None or provenance is None or prov is None or root is None or run.signed is None \
            or run.signed.root != root or any(c.ok is False for c in run.verdict.checks) \
            or not any(c.name == "index-consistent" and c.ok for c in run.verdict.checks):
        return None
    try:
        parents = read_parents(provenance.parsed, what=PROVENANCE_FILE)
    except MlprovError:
        return None  # the walk reads them again and names the problem
    path = evidence.directory if evidence.directory is not None else Path(evidence.describe())
    return VerifiedEvidence(path=path, name=prov.name, identity=prov.identity, root_digest=root,
                            provenance_bundle=provenance.file_sha256,
                            manifest_bundle=oms.file_sha256, signer=provenance.signer.name,
                            parents=tuple(parents), manifest=run.signed)


def _check_lineage(run: _Run, evidence: EvidenceSource, trust: Trust,
                   prov: ProvenanceFacts | None, search: Sequence[Path | str],
                   require: bool, start: VerifiedEvidence | None = None) -> None:
    """Walk the lineage; a root model adds no check, missing parents fail only if required."""
    if prov is None:
        if require:
            run.skip("lineage", "no verified provenance to walk")
        return
    try:
        # The private entry point: it takes the start's evidence as verified above.
        lineage = _walk_lineage(evidence, trust=trust, search=search,
                                max_depth=DEFAULT_MAX_DEPTH, verified_start=start)
    except MlprovError as exc:
        run.fail("lineage", str(exc))
        return
    run.verdict.lineage = lineage
    if lineage.verified:
        if lineage.parents(lineage.start) or require:
            run.verdict.checks.append(Check("lineage", True, lineage.summary()))
    elif lineage.status != "incomplete" or require:
        more = len(lineage.failures) - 1
        first = lineage.failures[0] if lineage.failures else "lineage not verified"
        run.fail("lineage", first + (f" (+{more} more)" if more > 0 else ""))


@checked(model=optional(PATH), evidence=EVIDENCE, trust=optional(TRUST), key=optional(PATH),
         progress=CALLBACK, hashing=optional(HASH_JOB), search=PATHS, require_lineage=BOOL,
         cache=optional(PATH))
def verify(
    model: Path | str | None,
    *,
    evidence: Path | str | EvidenceSource,
    trust: Trust | Path | str | None = None,
    key: Path | str | None = None,
    progress: ProgressCallback | None = None,
    hashing: HashJob | None = None,
    search: Sequence[Path | str] = (),
    require_lineage: bool = False,
    cache: Path | str | None = None,
) -> Verdict:
    """Verify ``model`` against an evidence directory (or one signature file).

    A derived model's lineage is verified too (check ``lineage``) when its
    parents' evidence is found under the directory holding ``evidence`` or
    under ``search``; when parents are missing the verdict still passes,
    with ``verdict.lineage.status == "incomplete"``, unless ``require_lineage``.
    A parent found but not verifying always fails.

    Example:
        verdict = mlprov.verify("model/", evidence="evidence/", trust="trust.yaml")
        if not verdict.verified:
            raise SystemExit(verdict.failures()[0].detail)

    Args:
        model: the model file or directory on disk; None checks the evidence
            directory alone (signatures, subject, identity, index): the root
            digest is the signed manifest's and the ``files`` check is skipped.
        evidence: the directory ``mlprov attest`` wrote, or a single signed
            statement file (e.g. a ``model.sig`` made by ``model_signing``), or an
            :class:`~mlprov.evidence.EvidenceSource` holding the evidence files
            (e.g. bytes in memory, a registry's blobs): read through it, never
            copied to disk. Parents' evidence is then searched only under ``search``.
        trust: a :class:`Trust`, or the path of a trust file.
        key: a public key trusted for every role (instead of ``trust``).
        progress: called with byte counts while hashing.
        hashing: a :class:`HashJob` started on ``model`` before this call (with
            ``default_ignore_paths(model, evidence_dir)``); used when it matches
            the signed settings, so start-up overlaps the hashing.
        search: more directories holding parents' evidence (found by digest).
        require_lineage: fail unless the whole lineage verified to its roots.
        cache: the opt-in digest cache directory (``verify --cache``, see
            docs/digest-cache.md): the signed SBOM's schema check is remembered
            there (a BOM that passed under the same validator is not checked
            again). File digests come from ``hashing``'s cache, or ``hash_path``'s.

    Returns:
        The verdict; ``verdict.verified`` is true only when every check passed.

    Raises:
        InputError: the model, evidence or trust cannot be found or read.
        KeyMaterialError, TrustError: unusable trust material.
    """
    model_path = Path(model) if model is not None else None
    resolved = _resolve_trust(trust, key)
    if model_path is not None and not model_path.exists() and not model_path.is_symlink():
        raise InputError(f"model not found: {model_path}")
    if isinstance(evidence, EvidenceSource):
        source = evidence
    else:
        evidence_path = Path(evidence)
        if not evidence_path.exists():
            raise InputError(f"evidence not found: {evidence_path}")
        if evidence_path.is_file():
            if model_path is None:
                raise InputError("a single signature file is verified against the model's "
                                 "files", hint="give the model, or the evidence directory")
            verdict = Verdict(model=str(model_path), evidence=str(evidence_path))
            _verify_single(_Run(verdict), model_path, evidence_path, resolved, progress,
                           hashing)
            return verdict
        source = DirectorySource(evidence_path)
    verdict = Verdict(model=str(model_path or ""), evidence=source.describe())
    run = _Run(verdict)
    verdicts = None
    if cache is not None:
        from mlprov._internal.schema_verdicts import SchemaVerdicts

        verdicts = SchemaVerdicts.open(cache)
    index = run.step("index", lambda: (read_index_fields(source), f"{INDEX_FILE} readable"))
    oms = _signature(run, source, OMS_FILE, resolved, Role.BUILDER, OMS_PREDICATE_TYPE)
    if model_path is None:  # evidence only: the signed manifest names the root
        signed = _signed_manifest(run, oms) if oms else None
        root = signed.root if signed is not None else None
        run.skip("files", "evidence only: the model's files were not given")
    else:
        actual = _verify_oms(run, model_path, oms, progress, hashing) if oms else None
        if oms is None:
            run.skip("files", "the OMS signature did not verify")
        root = actual.root if actual is not None else None
    verdict.root_digest = f"sha256:{root}" if root else None
    provenance = _signature(run, source, PROVENANCE_FILE, resolved, Role.BUILDER,
                            SLSA_PROVENANCE_V1)
    prov = _verify_provenance(run, provenance, root) if provenance else None
    _verify_sbom_eval_card(run, source, resolved, root, verdicts)
    if verdicts is not None:
        verdicts.save()
    if index is not None and prov is not None and root is not None:
        run.step("index-consistent", lambda: _check_index(index, source, prov, root))
    else:
        run.skip("index-consistent", "an earlier check failed")
    _check_lineage(run, source, resolved, prov, search, require_lineage,
                   _verified_start(run, source, oms, provenance, prov, root))
    return verdict


def _verify_single(run: _Run, model: Path, path: Path, trust: Trust,
                   progress: ProgressCallback | None, job: HashJob | None) -> None:
    """Verify one signed statement file: an OMS signature or a provenance bundle."""
    def go() -> tuple[VerifiedStatement, str]:
        verified = verify_statement_file(path, trust, Role.BUILDER)
        return verified, f"signed by {verified.signer.describe()} ({Role.BUILDER})"

    verified = run.step(f"signature:{path.name}", go)
    if verified is None:
        return
    run.verdict.signers[path.name] = verified.signer.name
    run.verdict.statements[path.name] = verified
    predicate_type = verified.parsed.predicate_type
    if predicate_type == OMS_PREDICATE_TYPE:
        actual = _verify_oms(run, model, verified, progress, job)
        run.verdict.root_digest = f"sha256:{actual.root}" if actual else None
    elif predicate_type == SLSA_PROVENANCE_V1:
        ignore = default_ignore_paths(model, path.parent)
        actual = run.step("files", lambda: (
            _prehashed(job, ignore, False) or hash_path(model, ignore_paths=ignore,
                                                        progress=progress), "model hashed"))
        _verify_provenance(run, verified, actual.root if actual else None)
    else:
        run.fail("predicate", f"{path.name}: cannot verify a model against predicate type "
                              f"{predicate_type!r}")
