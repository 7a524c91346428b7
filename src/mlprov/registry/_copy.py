"""Copy a version between registries (dev -> staging -> production environments).

The source is read as ``pull`` reads it (:func:`._pull.prepare`: its signed
head, the decision behind the URI, the evidence against the source's trust),
its files copied out digest-checked, its evidence materialised. The target then
registers them like any model (:func:`._register.register`): it re-verifies
everything against its *own* trust and refuses (audited) what does not verify;
its own gates decide every later move. Nothing the source decided is trusted
there: the source registry's id and location, the URI, the version and the
digest of the source's decision behind the URI are only *recorded*, in the
target's registration entry and its signed decision (``details.copiedFrom``).

Reviews the source counted are attached in the target too, each verified again
against the target's trust (:func:`._moves.add_review`); one that does not
count there is skipped, with the reason. Copy the parents first: the target
walks a derived model's lineage through its own registered versions.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.errors import InputError, VerificationError
from mlprov.registry._facts import materialize
from mlprov.registry._moves import add_review
from mlprov.registry._pull import copy_files, prepare
from mlprov.registry._register import register
from mlprov.registry._reports import CopyResult, SkippedReview
from mlprov.registry._uri import check_name, version_uri

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["copy_version"]

def copy_version(source: RegistryContext, uri: str, target: RegistryContext, *,
                 name: str | None = None, actor: str | None = None,
                 reason: str | None = None) -> CopyResult:
    """Register the version ``uri`` names in ``source`` into ``target`` (see the module docstring).

    Raises:
        InputError: ``target`` is ``source``, or ``name`` is not a model name.
        RegistryIntegrityError, BlobCorruptError: the source does not verify.
        RegistrationRefusedError: the target's trust refuses it (audited there).
    """
    if name is not None:
        check_name(name)
    source_id, target_id = source.settings.registry_id, target.settings.registry_id
    if source_id == target_id:
        raise InputError(f"{target.location.describe()} is the source registry itself",
                         hint="copy to another registry (--to DIR|URL)")
    resolved, facts = prepare(source, uri, None, allow_archived=True)
    record = resolved.record
    source_version = version_uri(record.name, record.version)
    origin: dict[str, Any] = {
        "registry": source_id, "location": source.location.describe(), "uri": resolved.uri,
        "version": source_version, "stage": record.stage.value,
        "decision": resolved.decision, "via": resolved.via,
    }
    work = Path(tempfile.mkdtemp(prefix="mlprov-copy-"))
    try:
        staging = work / "files"
        staging.mkdir()
        model, _size = copy_files(source, facts, staging)
        evidence = work / "evidence"
        evidence.mkdir()
        materialize(source.blobs, facts.evidence, evidence)
        why = reason or f"copied from {source_version} of registry {source_id}"
        registered = register(target, model, evidence=evidence, actor=actor, reason=why,
                              name=name, origin=origin)
        attached, present, skipped = _copy_reviews(source, target, facts, registered.name,
                                                   registered.version, work / "reviews",
                                                   actor=actor, source_version=source_version)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CopyResult(source_registry=source_id, source_uri=resolved.uri,
                      source_version=source_version, source_decision=resolved.decision,
                      target_registry=target_id, registered=registered,
                      reviews_attached=attached, reviews_present=present,
                      reviews_skipped=skipped)


def _copy_reviews(source: RegistryContext, target: RegistryContext, facts: Any, name: str,
                  version: int, directory: Path, *, actor: str | None, source_version: str
                  ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[SkippedReview, ...]]:
    """Attach in the target every review the source counted, each verified there again."""
    directory.mkdir()
    with target.metadata.read() as tx:
        there = {r.digest for r in tx.list_reviews(name, version)}
    attached, present, skipped = [], [], []
    for digest, review in zip(facts.review_digests, facts.reviews, strict=False):
        if digest in there:
            present.append(digest)
            continue
        if not review.counted:
            skipped.append(SkippedReview(digest, f"it does not count in the source registry: "
                                                 f"{review.problem}"))
            continue
        path = directory / f"{digest.removeprefix('sha256:')}.sigstore.json"
        source.blobs.copy_to(digest, path)
        try:
            add_review(target, name, version, path, actor=actor,
                       reason=f"copied with {source_version}")
        except VerificationError as exc:  # the target's trust does not count it
            skipped.append(SkippedReview(digest, str(exc)))
            continue
        attached.append(digest)
    return tuple(attached), tuple(present), tuple(skipped)
