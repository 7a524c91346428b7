"""Garbage collection of blobs no metadata names (``mlprov registry gc``).

A change stores its blobs first and its rows after, in one transaction; a
writer killed in between leaves blobs nothing names. They are harmless, and
this module removes them, never a blob the registry still needs:

- **What is referenced** is read from the metadata, in the same transaction
  that holds the registry's write lock while blobs are deleted, so no change
  commits between the two: every version's file manifest and the files it
  names, its evidence map and evidence files, its scan report; every review;
  every deployment's spec and statement; the settings (trust, policies and the
  policy files of each snapshot, config, thresholds, signing) the state names
  now and every setting digest the audit log ever named (the history stays
  verifiable). A document that should list references and cannot be read or
  parsed stops the collection: nothing is deleted (fail closed).
- **Only old garbage goes**: a blob written less than ``grace`` ago may belong
  to a change still uploading, so it is kept (default one hour).
- **A writer that reuses an old unreferenced blob** (a registration re-run
  after it was killed finds its blobs already stored) could lose it to a
  collection running between its upload and its commit. Writers read the
  collection epoch (:data:`GC_STATE`) before storing blobs and call
  :func:`check_blobs_kept` inside their transaction: when a collection ran
  (or one died half-way) in between, every blob the change names is looked up,
  and a missing one refuses the change ("run the command again"), so no row
  ever names a deleted blob.
- Partial writes of dead writers (temporary files, unfinished multipart
  uploads) are removed too once older than a day (:data:`PARTIAL_AGE`) and
  ``grace``: a live writer may still be filling one.

The collection changes no audited state, so it needs no registry key.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlprov.canonical import loads_strict
from mlprov.registry._facts import evidence_map, manifest_from_document
from mlprov.registry._head import SETTINGS
from mlprov.registry._home import policy_file_digests
from mlprov.registry.interface import (
    BlobNotFoundError,
    BlobStore,
    MetadataStore,
    ReadTransaction,
    RegistryError,
    StoredBlob,
)

__all__ = ["DEFAULT_GRACE", "GC_STATE", "GcReport", "check_blobs_kept", "collect_garbage",
           "gc_epoch", "referenced_blobs"]

#: The state key holding the collection epoch: ``running:<id>`` or ``done:<id>``.
GC_STATE = "gc_epoch"
#: Blobs younger than this (seconds) are kept: a change may still be uploading them.
DEFAULT_GRACE = 3600.0
#: Partial writes (a temporary file, a multipart upload) younger than this are a live
#: writer's, whatever the grace: only older ones are removed.
PARTIAL_AGE = 86400.0
_DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
_MAX_DOCUMENT = 64 << 20  # file manifests of very large models stay well under this
_MAX_SETTING = 16 << 20
_MAX_DEPTH = 32


@dataclass
class GcReport:
    """What a collection found and did."""

    referenced: int = 0
    stored: int = 0
    stored_bytes: int = 0
    garbage: list[StoredBlob] = field(default_factory=list)
    kept_young: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    partial_removed: int = 0
    dry_run: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        return {"referenced": self.referenced, "stored": self.stored,
                "storedBytes": self.stored_bytes, "garbage": len(self.garbage),
                "garbageBytes": sum(b.size for b in self.garbage),
                "keptYoung": self.kept_young, "deleted": self.deleted,
                "deletedBytes": self.deleted_bytes, "partialRemoved": self.partial_removed,
                "dryRun": self.dry_run,
                "blobs": [b.digest for b in self.garbage]}


def gc_epoch(metadata: MetadataStore) -> str:
    """The collection epoch; a writer reads it before it stores blobs."""
    with metadata.read() as tx:
        return tx.get_state(GC_STATE) or ""


def check_blobs_kept(tx: ReadTransaction, blobs: BlobStore, before: str,
                     digests: Iterable[str]) -> None:
    """Inside a change's transaction: refuse it if a collection removed a blob it names.

    Cheap unless a collection ran (or died) since ``before`` was read.

    Raises:
        RegistryError: a blob the change stored is gone; nothing is recorded.
    """
    now = tx.get_state(GC_STATE) or ""
    if now == before and not now.startswith("running:"):
        return
    for digest in dict.fromkeys(digests):
        if blobs.stat(digest) is None:
            raise RegistryError(
                f"blob {digest} this change stored was removed by a concurrent "
                "`mlprov registry gc`; nothing was recorded",
                hint="run the command again (it stores its blobs again)")


def _digests_in(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string of a parsed JSON value that is a blob digest."""
    if depth > _MAX_DEPTH:
        raise RegistryError("an audit entry nests too deeply to collect garbage safely")
    if isinstance(value, str):
        if _DIGEST.match(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _digests_in(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _digests_in(item, depth + 1)


def _setting_children(blobs: BlobStore, key: str, digest: str) -> Iterator[str]:
    """The blobs a setting's document names (policy files, a keyless trust config)."""
    if key not in ("policies", "signing"):
        return
    data = blobs.get_bytes(digest, max_size=_MAX_SETTING)
    if key == "policies":
        yield from policy_file_digests(data).values()
    else:
        yield from _digests_in(loads_strict(data, what="registry signing settings"))


def referenced_blobs(tx: ReadTransaction, blobs: BlobStore, *, since: int = 0,
                     progress: Callable[[str], None] | None = None) -> tuple[set[str], int]:
    """The blob digests the metadata in ``tx`` names, and the audit seq it was read at.

    With ``since``, only what changes after audit entry ``since`` added (rows are
    never removed and every change is an audit entry), so the pass under the
    write lock is short. Documents are followed (file manifests, evidence maps,
    policies snapshots, signing settings).

    Raises:
        RegistryError (or a store error): a document that lists references cannot
            be read; the caller must not delete anything then.
    """
    refs: set[str] = set()
    settings: set[tuple[str, str]] = set()
    for key in SETTINGS:
        value = tx.get_state(key)
        if value is not None:
            settings.add((key, value))
    head = since
    for entry in tx.iter_audit(since=since):
        head = max(head, entry.seq)
        body = loads_strict(entry.body, what=f"audit entry {entry.seq}")
        details = body.get("details") if isinstance(body, dict) else None
        if entry.kind.startswith("registry.") and isinstance(details, dict):
            changed = entry.kind.removeprefix("registry.")
            for name in ("from", "to"):
                value = details.get(name)
                if changed in SETTINGS and isinstance(value, str) and _DIGEST.match(value):
                    settings.add((changed, value))
            for setting in SETTINGS:  # registry.init names every initial setting
                value = details.get(setting)
                if isinstance(value, str) and _DIGEST.match(value):
                    settings.add((setting, value))
        refs.update(_digests_in(details))  # reviews, settings and more, by their digests
    for key, digest in sorted(settings):
        refs.add(digest)
        try:
            refs.update(_setting_children(blobs, key, digest))
        except BlobNotFoundError:
            if tx.get_state(key) == digest:
                raise
            # An old setting's blob is gone already; nothing of it is left to keep.
    versions = 0
    for record in tx.versions_for_replay():
        if record.created_seq <= since:
            continue
        versions += 1
        refs.update((record.files_digest, record.evidence_digest))
        if record.scan_digest:
            refs.add(record.scan_digest)
        manifest = manifest_from_document(
            blobs.get_bytes(record.files_digest, max_size=_MAX_DOCUMENT))
        refs.update(f"sha256:{f.sha256}" for f in manifest.files)
        refs.update(evidence_map(blobs.get_bytes(record.evidence_digest,
                                                 max_size=_MAX_DOCUMENT)).values())
        refs.update(r.digest for r in tx.list_reviews(record.name, record.version))
        if progress is not None and versions % 1000 == 0:
            progress(f"references: {versions} versions read")
    for deployment in tx.list_deployments():
        if deployment.created_seq > since:
            refs.update((deployment.spec_digest, deployment.statement))
    return refs, head


def collect_garbage(metadata: MetadataStore, blobs: BlobStore, *, grace: float = DEFAULT_GRACE,
                    dry_run: bool = False, now: float | None = None,
                    progress: Callable[[str], None] | None = None) -> GcReport:
    """Delete the blobs no metadata names that were written more than ``grace`` ago.

    References are read from a snapshot first, then, under the write lock, from
    the changes committed since; blobs go while the lock is held. With
    ``dry_run`` nothing is deleted or written; the report lists the garbage.

    Raises:
        InputError: a negative grace.
        RegistryError, StoreError: references could not be read (nothing deleted).
    """
    from mlprov.errors import InputError

    if grace < 0:
        raise InputError(f"the grace period cannot be negative ({grace})")
    report = GcReport(dry_run=dry_run)
    started = time.time() if now is None else now
    cutoff = started - grace
    if progress is not None:
        progress(f"listing {blobs.description}")
    listed = list(blobs.iter_blobs())  # before the lock: a blob stored later is no candidate
    report.stored = len(listed)
    report.stored_bytes = sum(b.size for b in listed)
    with metadata.read() as tx:
        refs, seen = referenced_blobs(tx, blobs, progress=progress)
    if dry_run:
        report.referenced = len(refs)
        report.garbage, report.kept_young = _garbage(listed, refs, cutoff)
        return report
    epoch = uuid.uuid4().hex
    with metadata.write() as tx:  # writers that stored blobs before this will check them
        tx.set_state(GC_STATE, f"running:{epoch}")
    with metadata.write() as tx:  # the write lock: no change commits while blobs go
        later, _head = referenced_blobs(tx, blobs, since=seen)
        refs |= later
        report.referenced = len(refs)
        report.garbage, report.kept_young = _garbage(listed, refs, cutoff)
        for number, blob in enumerate(report.garbage, 1):
            if blobs.delete(blob.digest):
                report.deleted += 1
                report.deleted_bytes += blob.size
            if progress is not None and number % 1000 == 0:
                progress(f"deleted {number}/{len(report.garbage)} blobs")
        report.partial_removed = blobs.clean_partial(min(cutoff, started - PARTIAL_AGE))
        tx.set_state(GC_STATE, f"done:{epoch}")
    return report


def _garbage(listed: list[StoredBlob], refs: set[str], cutoff: float
             ) -> tuple[list[StoredBlob], int]:
    garbage, young = [], 0
    for blob in listed:
        if blob.digest in refs:
            continue
        if blob.modified >= cutoff:
            young += 1
        else:
            garbage.append(blob)
    return garbage, young
