"""The registry's signed head: after every change, what the log holds and what it acts on.

Every change (:meth:`Registry._record`) signs, in the same transaction, a head:
the audit log's last sequence number and entry hash, and the digests of the
settings the registry acts on (trust snapshot, policies, ``mlprov.toml``,
signing). It is a checkpoint statement (``predicateType`` the checkpoint's)
with a ``settings`` field, kept in the metadata store (state ``head``) and
mirrored to ``head.json``.

It closes what the database alone cannot prove:

- **settings**: the trust, policies and gate configuration are used only when
  their digests are the ones the head signs, so a row pointed at a permissive
  ``mlprov.toml`` or at a trust set with an extra ``registry`` key is refused;
- **truncation**: a log shorter (or longer) than its signed head is refused by
  ``audit verify``, ``resolve``, ``pull`` and ``load``;
- **rollback**: an old head replayed with an old log is consistent in itself, so
  a deploy pipeline remembers the last head it saw (``--min-seq N`` or
  ``--head-file F``) and refuses to go backwards.

Heads are verified with the registry's *anchor*: its own public key (or, for a
pipeline, the registry key its own trust file pins), never with keys the stored
trust set adds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.errors import InputError, MlprovError
from mlprov.registry._decisions import CHECKPOINT_PREDICATE, sign, verify_signed
from mlprov.registry.interface import RegistryIntegrityError

if TYPE_CHECKING:
    from mlprov.registry._decisions import SignedByRegistry
    from mlprov.registry.interface import ReadTransaction, WriteTransaction
    from mlprov.signing import BundleSigner
    from mlprov.statements import Statement
    from mlprov.trust import Trust

__all__ = ["HEAD_STATE", "SETTINGS", "SignedHead", "check_decision_in_log", "check_head_file",
           "check_log", "check_setting", "read_head", "sign_head"]

#: The metadata-store state key holding the latest signed head (a Sigstore bundle).
HEAD_STATE = "head"
#: The state keys whose digests a head signs.
SETTINGS = ("trust", "policies", "config", "signing", "thresholds")
HEAD_FILE_SCHEMA = "https://mlprov.dev/schemas/registry-head-seen/v1"
_MAX_HEAD_FILE = 64 * 1024


@dataclass(frozen=True)
class SignedHead:
    """A verified head: the log's last entry and the settings in force after it."""

    seq: int
    entry_hash: str
    settings: dict[str, str]
    bundle: bytes

    def to_json_dict(self) -> dict[str, Any]:
        """As ``--json`` outputs and head files show it."""
        return {"seq": self.seq, "entryHash": self.entry_hash}


def _statement(registry_id: str, seq: int, entry_hash: str, settings: dict[str, str],
               time: str) -> Statement:
    from mlprov.statements import Statement  # signing only: reading a head needs no pydantic

    return Statement.model_validate({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"mlprov-audit-log:{registry_id}",
                     "digest": {"sha256": entry_hash.removeprefix("sha256:")}}],
        "predicateType": CHECKPOINT_PREDICATE,
        "predicate": {"registry": registry_id, "seq": seq, "entryHash": entry_hash,
                      "time": time, "head": True, "settings": settings},
    })


def sign_head(tx: WriteTransaction, *, registry_id: str, seq: int, entry_hash: str,
              time: str, signer: BundleSigner, settings: dict[str, str]) -> bytes:
    """Sign the head after entry ``seq`` and store it.

    ``settings``: the signed ones the change started from, plus what it changed.
    """
    bundle = sign(_statement(registry_id, seq, entry_hash, settings, time), signer)
    tx.set_state(HEAD_STATE, bundle.decode("utf-8"))
    return bundle


_VERIFIED: dict[tuple[str, str, int], SignedHead] = {}
_DECISIONS: dict[tuple[str, str, int], SignedByRegistry] = {}
_VERIFIED_LOCK = threading.Lock()


def read_head(tx: ReadTransaction, *, registry_id: str, anchor: Trust, anchor_id: int
              ) -> SignedHead:
    """The stored head, verified with ``anchor`` (memoised per bundle and anchor).

    ``anchor_id`` names the anchor in the memo (``id()`` of a long-lived Trust).

    Raises:
        RegistryIntegrityError: no head, a head not signed by the anchor, another
            registry's head, or a malformed one.
    """
    text = tx.get_state(HEAD_STATE)
    if text is None:
        raise RegistryIntegrityError(
            "the registry has no signed head (its log cannot be checked for truncation)",
            hint="a registry made by mlprov 0.1.0 has none: re-create it, or restore the "
                 "database")
    data = text.encode("utf-8")
    key = (hashlib.sha256(data).hexdigest(), registry_id, anchor_id)
    with _VERIFIED_LOCK:
        found = _VERIFIED.get(key)
    if found is not None:
        return found
    try:
        signed = verify_signed(data, anchor, what="the registry's signed head",
                               predicate_type=CHECKPOINT_PREDICATE)
    except MlprovError as exc:
        raise RegistryIntegrityError(f"the registry's signed head does not verify: {exc}") \
            from exc
    predicate = signed.predicate
    seq, entry_hash, settings = (predicate.get("seq"), predicate.get("entryHash"),
                                 predicate.get("settings"))
    if predicate.get("registry") != registry_id:
        raise RegistryIntegrityError("the registry's signed head belongs to another registry")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(entry_hash, str) \
            or not isinstance(settings, dict) or predicate.get("head") is not True \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in settings.items()):
        raise RegistryIntegrityError("the registry's signed head is malformed")
    head = SignedHead(seq=seq, entry_hash=entry_hash, settings=dict(settings), bundle=data)
    with _VERIFIED_LOCK:
        if len(_VERIFIED) > 256:
            _VERIFIED.clear()
        _VERIFIED[key] = head
    return head


def check_log(tx: ReadTransaction, head: SignedHead) -> None:
    """Refuse a log that does not end where the signed head says.

    Raises:
        RegistryIntegrityError: the log is shorter (cut), longer, or ends in another entry.
    """
    last = tx.audit_head()
    seq = last.seq if last is not None else 0
    if seq < head.seq:
        raise RegistryIntegrityError(
            f"the audit log ends at entry {seq}, but the registry signed its head at entry "
            f"{head.seq}: the log was cut or rolled back")
    if seq > head.seq:
        raise RegistryIntegrityError(
            f"the audit log holds entries after its signed head ({seq} > {head.seq}): "
            "entries were added outside the registry")
    if last is None or last.entry_hash != head.entry_hash:
        raise RegistryIntegrityError(
            f"audit entry {seq} is not the one the registry's signed head names: the log "
            "was rewritten")


def check_decision_in_log(tx: ReadTransaction, decision: str, head: SignedHead,
                          anchor: Trust) -> SignedByRegistry:
    """Refuse a row (alias, stage) whose decision names no entry of the signed log.

    The decision must be stored, signed by the anchor, and held by the audit
    entry it names, at or before the signed head. Returns it, verified.

    Raises:
        RegistryIntegrityError: otherwise.
    """
    from mlprov.registry._decisions import VSA_PREDICATE, change_of

    data = tx.get_decision(decision)
    if data is None:
        raise RegistryIntegrityError(f"decision {decision[:19]}... is not stored")
    # Memoised by the bytes' own digest (the row's digest is only a claim) and the anchor.
    key = (hashlib.sha256(data).hexdigest(), "decision", id(anchor))
    with _VERIFIED_LOCK:
        signed = _DECISIONS.get(key)
    if signed is None:
        try:
            signed = verify_signed(data, anchor, what="the row's decision",
                                   predicate_type=VSA_PREDICATE)
        except MlprovError as exc:
            raise RegistryIntegrityError(f"the row's decision does not verify: {exc}") \
                from exc
        with _VERIFIED_LOCK:
            if len(_DECISIONS) > 4096:
                _DECISIONS.clear()
            _DECISIONS[key] = signed
    seq = change_of(signed).get("auditSeq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= head.seq:
        raise RegistryIntegrityError(
            f"a row names a decision of audit entry {seq}, which the signed log (ending at "
            f"entry {head.seq}) does not hold: the row was changed or the log cut")
    entry = tx.audit_entry(seq)
    if entry is None or entry.decision != decision:
        raise RegistryIntegrityError(
            f"a row names a decision that audit entry {seq} does not hold: the row was "
            "changed outside the registry")
    return signed


def check_setting(tx: ReadTransaction, head: SignedHead, key: str) -> str | None:
    """The digest of setting ``key`` if the head signs the one the store holds.

    Raises:
        RegistryIntegrityError: the store's setting is not the signed one.
    """
    stored = tx.get_state(key)
    if stored != head.settings.get(key):
        raise RegistryIntegrityError(
            f"the registry's {key} is not the one its signed head names: the database was "
            "changed outside the registry")
    return stored


def check_head_file(head: SignedHead, *, min_seq: int | None = None,
                    head_file: Path | None = None) -> None:
    """Refuse a head older than what a deploy pipeline saw before; remember this one.

    ``min_seq``: the lowest sequence number acceptable. ``head_file``: a JSON file
    the pipeline keeps (``{"seq": N, "entryHash": ...}``): the head must not be
    older, nor the same entry with another hash; then the file is updated.

    Raises:
        RegistryIntegrityError: the registry went backwards (or forked).
        InputError: the head file is unreadable or malformed.
    """
    if min_seq is not None and head.seq < min_seq:
        raise RegistryIntegrityError(
            f"the registry's signed head is at entry {head.seq}, older than the --min-seq "
            f"{min_seq} this pipeline requires: the registry was rolled back")
    if head_file is None:
        return
    seen: dict[str, Any] | None = None
    if head_file.exists():
        from mlprov._internal.readers import read_json

        document = read_json(head_file, what="head file", limit=_MAX_HEAD_FILE)
        if not isinstance(document, dict) or not isinstance(document.get("seq"), int) \
                or not isinstance(document.get("entryHash"), str):
            raise InputError(f"head file {head_file} is malformed",
                             hint="it holds {\"seq\": N, \"entryHash\": ...}, as mlprov writes")
        seen = document
    if seen is not None:
        if head.seq < seen["seq"]:
            raise RegistryIntegrityError(
                f"the registry's signed head is at entry {head.seq}, but {head_file} saw entry "
                f"{seen['seq']}: the registry was rolled back")
        if head.seq == seen["seq"] and head.entry_hash != seen["entryHash"]:
            raise RegistryIntegrityError(
                f"entry {head.seq} has another hash than {head_file} saw: the log was "
                "rewritten")
    document = {"schema": HEAD_FILE_SCHEMA, **head.to_json_dict()}
    data = (json.dumps(document, indent=2) + "\n").encode()
    directory = head_file.parent if str(head_file.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{head_file.name}.", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, head_file)
    except OSError as exc:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
        raise InputError(f"cannot write head file {head_file}: {exc.strerror}") from exc

