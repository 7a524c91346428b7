"""Hand out a version: ``pull`` (to a directory) and ``load`` (a cached, verified path).

Before any byte is handed out, everything is checked again, none of it taken
from a database row on trust:

1. the decision that put the version where the URI found it (the alias's,
   the stage's or the registration) is signed by a key with the ``registry``
   role, names this version and root digest, passed, and is still the latest
   audited change of that alias or stage (an old decision replayed into a row
   is refused), with the audit chain intact from it to the head;
2. the version's evidence verifies against the trust (see :mod:`._facts`);
3. every file is copied from the blob store and re-hashed on the way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.errors import InputError
from mlprov.hashing import hash_path
from mlprov.registry._audit import Entry, check_entry, entry_from_record
from mlprov.registry._decisions import (
    VSA_PREDICATE,
    SignedByRegistry,
    change_of,
    verify_signed,
)
from mlprov.registry._facts import (
    RegistryIntegrityError,
    VersionFacts,
    read_decision,
)
from mlprov.registry._gatekeeper import verify_record
from mlprov.registry._lookup import record_archived_use
from mlprov.registry._placement import Scope, decided_name, expected_change, placement_problems
from mlprov.registry._uri import parse_model_uri, version_uri
from mlprov.registry.interface import ReadTransaction
from mlprov.trust import Trust
from mlprov.verification import compare_files

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._records import PullResult, Resolved

__all__ = ["check_latest", "check_placement", "checkout", "copy_files", "export_evidence",
           "load", "prepare", "pull"]


def check_placement(tx: ReadTransaction, resolved: Resolved, decision_bytes: bytes,
                    trust: Trust, registry_id: str) -> SignedByRegistry:
    """Verify the decision behind ``resolved`` (see the module docstring, step 1).

    The decision names the model as it was called then; the log from its entry
    to the head must lead from that name to the model's name now (renames), and
    hold no deletion of the version.

    Raises:
        RegistryIntegrityError: the decision does not support the resolution.
        SignatureError: it is not signed by a registry key the trust names.
    """
    record = resolved.record
    what = f"the decision that put {version_uri(record.name, record.version)} at " \
           f"{resolved.uri}"
    decision = verify_signed(decision_bytes, trust, what=what, predicate_type=VSA_PREDICATE)
    change = change_of(decision)
    _, target, scope = expected_change(resolved)
    problems = placement_problems(decision, resolved, registry_id)
    if problems:
        raise RegistryIntegrityError(f"{what} does not match the registry's records: "
                                     f"{'; '.join(problems)}")
    decided = decided_name(decision.predicate.get("resourceUri"), record.version)
    assert decided is not None
    seq = change.get("auditSeq")
    if not isinstance(seq, int):
        raise RegistryIntegrityError(f"{what} names no audit entry")
    check_latest(tx, decision_bytes, seq, name=record.name, version=record.version,
                 target=target, scope=scope, what=what, decided=decided)
    return decision


def check_latest(tx: ReadTransaction, decision_bytes: bytes, seq: int, *, name: str,
                 version: int, target: str | None, scope: Scope, what: str,
                 decided: str | None = None) -> None:
    """Check that nothing after a decision's audit entry superseded it.

    The entry (``seq``) holds the decision, about ``version``; the chain from it
    is intact; no later accepted entry of ``name`` and ``target`` supersedes it.
    ``decided``: a model version's decision, made when the model was called that;
    the walk follows every rename of the model from it, must end at ``name``, and
    refuses a deletion of the version on the way.

    Raises:
        RegistryIntegrityError: otherwise (a row replaying an old decision, a broken log,
            a row renamed or brought back from deletion outside the registry).
    """
    from mlprov.registry._uri import sha256_digest

    entry_record = tx.audit_entry(seq)
    if entry_record is None or entry_record.decision != sha256_digest(decision_bytes) \
            or sha256_digest(entry_record.body) != entry_record.entry_hash:
        raise RegistryIntegrityError(f"{what} is not the one audit entry {seq} records")
    prev = entry_record.entry_hash
    expected = seq + 1
    current = decided if decided is not None else name
    for later in tx.iter_audit(since=seq):
        entry, problems = check_entry(later, prev, expected)
        if problems:
            raise RegistryIntegrityError(f"the audit log after {what} is broken: "
                                         f"{problems[0].problem}",
                                         hint="run `mlprov audit verify`")
        assert entry is not None
        prev, expected = later.entry_hash, later.seq + 1
        if not entry.accepted:
            continue
        if decided is not None:
            if entry.kind == "model.rename" and entry.details.get("from") == current:
                current = str(entry.details.get("to"))
                continue
            if entry.name == current and _deletes(entry, version):
                raise RegistryIntegrityError(
                    f"{version_uri(current, version)} was deleted by audit entry "
                    f"{entry.seq}: the registry's row was changed to hand it out again")
        if entry.name != current or entry.target != target:
            continue
        if scope == "none" or (scope == "version" and entry.version != version):
            continue
        raise RegistryIntegrityError(
            f"{what} was superseded by audit entry {entry.seq} ({entry.kind}); the registry's "
            "row replays an old decision")
    if current != name:
        raise RegistryIntegrityError(
            f"{what}: the log calls the model {current!r} now, the registry's row "
            f"{name!r}: the row was changed")
    entry = entry_from_record(entry_record)
    if entry.version != version:
        raise RegistryIntegrityError(f"audit entry {seq} is about version {entry.version}")


def _deletes(entry: Entry, version: int) -> bool:
    """Whether an accepted entry about the model deleted ``version``."""
    if entry.kind == "version.delete":
        return entry.version == version
    if entry.kind == "model.delete":
        deleted = entry.details.get("versions")
        return isinstance(deleted, list) and version in deleted
    return False


@dataclass(frozen=True)
class LoadedModel(os.PathLike[str]):
    """A verified local copy of a model version, and which version it is.

    ``os.PathLike``: pass it wherever a path goes (``open``, ``torch.load``,
    ``Path(...)``); ``model / "config.json"`` joins. Attributes a path has and
    this object does not are read from :attr:`path` (``read_bytes()``,
    ``is_dir()``), except ``name``, which is the model's name (the file name
    is ``path.name``)::

        model = mlprov.load("models:/credit-risk@production")
        print(model.name, model.version, model.digest)
        weights = open(model / "weights.safetensors", "rb")
    """

    path: Path
    uri: str
    name: str
    version: int
    digest: str
    identity: str

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        return self.path / other

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(self.path, attribute)


def prepare(registry: RegistryContext, uri: str, trust: Trust | None, *,
            min_seq: int | None = None, head_file: Path | None = None,
            allow_archived: bool = False) -> tuple[Resolved, VersionFacts]:
    """Resolve ``uri`` and verify it as :func:`pull` does (head, decision, evidence).

    What every reader of a version by URI starts from (``pull``, ``load``,
    ``export_evidence``, inspect, card, lineage, review and copy).
    """
    from mlprov.registry._head import check_head_file
    from mlprov.registry._records import resolve_uri

    override = trust
    # The signed head first (with the pipeline's trust when given): a log cut or
    # rolled back, or settings changed outside the registry, stop everything here.
    head = registry.settings.head(anchor=override)
    check_head_file(head, min_seq=min_seq, head_file=head_file)
    trust = trust or registry.settings.trust
    parsed = parse_model_uri(uri)
    with registry.metadata.read() as tx:
        resolved = resolve_uri(tx, parsed, allow_archived=allow_archived)
        decision_bytes = read_decision(tx.get_decision, resolved.decision)
        check_placement(tx, resolved, decision_bytes, trust, registry.settings.registry_id)
        if resolved.via != "version" and tx.renames_of(resolved.name):
            # A renamed model: the log from the registration must lead to this name too.
            registration = replace(resolved, uri=version_uri(resolved.name, resolved.version),
                                   decision=resolved.record.registration, via="version")
            check_placement(tx, registration, read_decision(tx.get_decision,
                                                            registration.decision),
                            trust, registry.settings.registry_id)
        reviews = [r.digest for r in tx.list_reviews(resolved.name, resolved.version)]
        facts = verify_record(registry, resolved.record, reviews, trust=override, tx=tx)
    return resolved, facts


def copy_files(registry: RegistryContext, facts: VersionFacts, staging: Path) -> tuple[Path, int]:
    """Copy every file of the version into ``staging`` (digests checked); the model path."""
    manifest = facts.manifest
    if manifest.is_file:
        target = staging / (manifest.name or "model")
        registry.blobs.copy_to(f"sha256:{manifest.files[0].sha256}", target)
        return target, manifest.files[0].size
    total = 0
    for entry in manifest.files:
        dest = staging / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        total += registry.blobs.copy_to(f"sha256:{entry.sha256}", dest)
    return staging, total


def pull(registry: RegistryContext, uri: str, out: Path, *, trust: Trust | None = None,
         min_seq: int | None = None, head_file: Path | None = None,
         allow_archived: bool = False, actor: str | None = None) -> PullResult:
    """Copy the version ``uri`` names to ``out`` (a new or empty directory), verified.

    Raises:
        InputError: ``out`` exists and is not an empty directory.
        RegistryIntegrityError, BlobCorruptError, SignatureError: a check failed;
            nothing is left in ``out``.
    """
    from mlprov.registry._records import PullResult

    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise InputError(f"{out} exists and is not an empty directory",
                         hint="choose a new --out directory")
    resolved, facts = prepare(registry, uri, trust, min_seq=min_seq, head_file=head_file,
                               allow_archived=allow_archived)
    record_archived_use(registry, resolved, actor=actor)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        _, size = copy_files(registry, facts, staging)
        os.chmod(staging, 0o755)  # noqa: S103 - model files are not secret; mkdtemp made 0700
        if out.is_dir():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PullResult(resolved=resolved, path=out, files=len(facts.manifest.files), bytes=size)


def export_evidence(registry: RegistryContext, uri: str, out: Path, *,
                    trust: Trust | None = None) -> Resolved:
    """Write the evidence of the version ``uri`` names to the new directory ``out``.

    Verified first, like :func:`pull` (the decision behind ``uri`` and the
    evidence); used to name a registered model as a parent (``--parent
    ROLE=models:/NAME/N``).
    """
    from mlprov.registry._facts import materialize

    if out.is_symlink() or out.exists():
        raise InputError(f"{out} exists", hint="choose a new directory")
    # Evidence is for auditing, not serving: an Archived version's is exported too.
    resolved, facts = prepare(registry, uri, trust, allow_archived=True)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    # Written beside ``out`` and renamed into place: never half an evidence directory.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        materialize(registry.blobs, facts.evidence, staging)
        os.chmod(staging, 0o755)  # noqa: S103 - evidence is not secret; mkdtemp made 0700
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return resolved


def _make_read_only(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        with contextlib.suppress(OSError):
            os.chmod(path, 0o444 if path.is_file() else 0o555)
    with contextlib.suppress(OSError):
        os.chmod(root, 0o555)  # noqa: S103 - read-only for everyone: model files are not secret


def _checkout_ok(path: Path, facts: VersionFacts) -> bool:
    """Whether an existing checkout still holds exactly the signed files."""
    manifest = facts.manifest
    model = path / (manifest.name or "model") if manifest.is_file else path
    try:
        actual = hash_path(model)
        compare_files(manifest.by_path(), actual, label=manifest.name)
    except Exception:  # any difference, or an unreadable tree: rebuild it
        return False
    return True


def load(registry: RegistryContext, uri: str, *, trust: Trust | None = None,
         min_seq: int | None = None, head_file: Path | None = None,
         allow_archived: bool = False, actor: str | None = None) -> LoadedModel:
    """A verified local copy of ``uri``: a read-only checkout under ``checkouts/``.

    The checkout is re-hashed and the decision and evidence re-verified on every
    call; a damaged checkout is rebuilt from the blob store. The result says
    which version it is (no second ``resolve`` that could race a move).
    """
    resolved, facts = prepare(registry, uri, trust, min_seq=min_seq, head_file=head_file,
                               allow_archived=allow_archived)
    record_archived_use(registry, resolved, actor=actor)
    return LoadedModel(path=checkout(registry, resolved, facts), uri=resolved.uri,
                       name=resolved.name, version=resolved.version,
                       digest=resolved.record.root_digest, identity=resolved.record.identity)


def checkout(registry: RegistryContext, resolved: Resolved, facts: VersionFacts) -> Path:
    """The verified, read-only checkout of a version under ``checkouts/`` (made if needed)."""
    root = resolved.record.root_digest.removeprefix("sha256:")[:16]
    base = registry.home / "checkouts" / resolved.name
    path = base / f"v{resolved.version}-{root}"
    manifest = facts.manifest
    model = path / (manifest.name or "model") if manifest.is_file else path
    if path.is_dir() and _checkout_ok(path, facts):
        return model
    base.mkdir(parents=True, exist_ok=True)
    if path.exists():
        _remove(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=base))
    try:
        copy_files(registry, facts, staging)
        _make_read_only(staging)
        try:
            os.rename(staging, path)
        except OSError:  # another process made it first: check theirs
            _remove(staging)
            if not _checkout_ok(path, facts):
                raise RegistryIntegrityError(f"checkout {path} does not match "
                                             f"{resolved.uri}") from None
    except BaseException:
        if staging.exists():
            _remove(staging)
        raise
    return model


def _remove(path: Path) -> None:
    def writable(func: Any, p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)

    for sub in [path, *path.rglob("*")]:
        if sub.is_dir() and not sub.is_symlink():
            with contextlib.suppress(OSError):
                os.chmod(sub, 0o700)
    shutil.rmtree(path, onerror=writable)

