"""A registry server's rows and blobs as a read-only metadata store and blob store.

:class:`RemoteMetadataStore` and :class:`RemoteBlobStore` implement
:mod:`mlprov.registry.interface` over the server's ``/api/v1/store`` and
``/api/v1/blobs`` endpoints, so a client builds an ordinary
:class:`~mlprov.registry.Registry` over them and runs the registry's own
verification (signed head, decisions, audit chain, evidence, every blob's
digest) against the registry key *it* pinned. The server is treated exactly as
an untrusted database and blob store: a row it makes up, a blob it swaps or a
log it cuts fails the same checks that catch an edited database.

Both are read-only: a change goes through the server's API
(:class:`~mlprov.server.RemoteRegistry`), never through these.

Within one read transaction every answer is memoised, so a transaction sees
one answer per question. Answers of different requests are not one snapshot:
a change committed in between can make a check fail, and the client retries
such reads (:meth:`RemoteRegistry._consistent`).

What is kept longer, and why it stays safe:

- **The signed head** is read once per *operation* (:meth:`RemoteMetadataStore.operation`,
  one attempt of a client read such as a resolve or a pull), however many
  transactions the operation opens; never beyond it. The retry guard reads it
  again only when the operation failed (:meth:`RemoteMetadataStore.fresh_head`).
- **Content-addressed answers** (signed decisions and blobs, named by their
  SHA-256 digest) are kept in bounded in-process LRU caches by digest, and only
  after their bytes were hashed and matched the digest; a cached entry answers
  only a question about that same digest, so a server that later answers the
  same digest with other bytes is never asked again, and could change nothing.
  Rows, aliases, state and the head are mutable and never cached across operations.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlprov.registry.interface import (
    AliasRecord,
    AuditRecord,
    BlobCorruptError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    CheckpointRecord,
    DeliveryRecord,
    DeploymentRecord,
    EventRecord,
    MetadataStore,
    ModelRecord,
    ReadTransaction,
    RegistryError,
    RenameRecord,
    ReviewRecord,
    Stage,
    StoredBlob,
    TagRecord,
    VersionRecord,
    WriteTransaction,
    check_digest,
)
from mlprov.server._errors import MalformedResponseError
from mlprov.server._transport import Transport, quote_segment
from mlprov.server._wire import decode_record, decode_records

__all__ = ["RemoteBlobStore", "RemoteMetadataStore"]

_STORE = "/api/v1/store"
_PAGE = 5000
_SMALL_BLOB = 4 * 1024 * 1024
#: In-process caches of verified content-addressed answers (entries, bytes held).
_DECISION_CACHE = (1024, 16 * 1024 * 1024)
_BLOB_CACHE = (256, 64 * 1024 * 1024)
#: Blob sizes learnt from bytes hashed here (a digest's size never changes).
_SIZES_KEPT = 16384


class DigestCache:
    """A bounded, thread-safe LRU of bytes by SHA-256 digest, verified on the way in.

    :meth:`put` keeps ``data`` only when it hashes to ``digest``; :meth:`get`
    answers only for that exact digest. Bounded by entry count and by bytes held.
    """

    def __init__(self, entries: int, max_bytes: int) -> None:
        self._entries = entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> bytes | None:
        """The verified bytes of ``digest``, if kept (now the most recently used)."""
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
            return data

    def put(self, digest: str, data: bytes) -> bool:
        """Keep ``data`` as ``digest``'s bytes if it hashes to it; whether it was kept."""
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest or \
                len(data) > self._max_bytes // 4:
            return False
        with self._lock:
            old = self._items.pop(digest, None)
            self._bytes -= len(old) if old is not None else 0
            self._items[digest] = data
            self._bytes += len(data)
            while len(self._items) > self._entries or self._bytes > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= len(evicted)
        return True

    def __contains__(self, digest: object) -> bool:
        with self._lock:
            return digest in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class _Operation:
    """What one client operation remembers: the head answer it read (see the module docstring)."""

    def __init__(self) -> None:
        self.head: dict[str, Any] | None = None


class _ReadOnly(RegistryError):
    """A change asked of a remote registry's stores: changes go through the server's API."""

    hint = ("run this on the server's host against the registry itself, or use the API "
            "operation the server offers (see docs/server.md)")


class RemoteReadTransaction(ReadTransaction):
    """One read transaction against the server (answers memoised for its duration)."""

    def __init__(self, store: RemoteMetadataStore) -> None:
        self.t = store.transport
        self._store = store
        self._memo: dict[str, Any] = {}

    def _get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        key = self.t.target(path, query)
        if key not in self._memo:
            _, document = self.t.json("GET", path, query=query)
            if not isinstance(document, dict):
                raise MalformedResponseError(f"GET {path}: the server's answer is not an "
                                             "object")
            self._memo[key] = document
        return self._memo[key]

    def _one(self, cls: type[Any], path: str, query: dict[str, Any] | None = None) -> Any:
        document = self._get(path, query)
        if "record" not in document:
            raise MalformedResponseError(f"GET {path}: no record in the server's answer")
        record = document["record"]
        return None if record is None else decode_record(cls, record)

    def _many(self, cls: type[Any], path: str, query: dict[str, Any] | None = None
              ) -> list[Any]:
        return decode_records(cls, self._get(path, query).get("records"))

    @staticmethod
    def _model(name: str) -> str:
        return f"{_STORE}/models/{quote_segment(name)}"

    def _head(self) -> dict[str, Any]:
        """The signed head and the log's last entry, answered from one server snapshot.

        What :meth:`Registry.head` compares (the head's sequence number against
        the log's end) then never straddles a change committed in between.
        Within one operation the answer is read once (:meth:`RemoteMetadataStore.operation`).
        """
        operation = self._store.current_operation()
        if operation is not None and operation.head is not None:
            return operation.head
        head: dict[str, Any] = self._get(f"{_STORE}/head")
        if operation is not None:
            operation.head = head
        return head

    # ------------------------------------------------------------------ reads

    def get_state(self, key: str) -> str | None:
        if key == "head":
            value = self._head().get("head")
            if value is not None and not isinstance(value, str):
                raise MalformedResponseError("the server sent a malformed signed head")
            return value
        value = self._get(f"{_STORE}/state/{quote_segment(key)}").get("value")
        if value is not None and not isinstance(value, str):
            raise MalformedResponseError(f"the server sent a malformed state value {key!r}")
        return value

    def get_model(self, name: str) -> ModelRecord | None:
        result: ModelRecord | None = self._one(ModelRecord, self._model(name))
        return result

    def list_models(self) -> list[ModelRecord]:
        return self._many(ModelRecord, f"{_STORE}/models")

    def get_version(self, name: str, version: int) -> VersionRecord | None:
        result: VersionRecord | None = self._one(
            VersionRecord, f"{self._model(name)}/versions/{int(version)}")
        return result

    def list_versions(self, name: str, *, stage: Stage | None = None,
                      limit: int | None = None, descending: bool = False
                      ) -> list[VersionRecord]:
        return self._many(VersionRecord, f"{self._model(name)}/versions",
                          {"stage": stage.value if stage is not None else None,
                           "limit": limit, "descending": descending})

    def find_versions(self, name: str, identity: str) -> list[VersionRecord]:
        return self._many(VersionRecord, f"{self._model(name)}/versions",
                          {"identity": identity})

    def find_by_root(self, root_digest: str, *, limit: int = 16) -> list[VersionRecord]:
        return self._many(VersionRecord, f"{_STORE}/roots/{quote_segment(root_digest)}",
                          {"limit": limit})

    def count_versions(self, name: str) -> dict[Stage, int]:
        counts = self._get(f"{self._model(name)}/counts").get("counts")
        if not isinstance(counts, dict):
            raise MalformedResponseError("the server sent malformed version counts")
        out: dict[Stage, int] = {}
        for key, value in counts.items():
            try:
                stage = Stage(key)
            except ValueError:
                raise MalformedResponseError("the server sent an unknown stage") from None
            if not isinstance(value, int) or isinstance(value, bool):
                raise MalformedResponseError("the server sent malformed version counts")
            out[stage] = value
        return out

    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        result: AliasRecord | None = self._one(
            AliasRecord, f"{self._model(name)}/aliases/{quote_segment(alias)}")
        return result

    def list_aliases(self, name: str) -> list[AliasRecord]:
        return self._many(AliasRecord, f"{self._model(name)}/aliases")

    def list_reviews(self, name: str, version: int) -> list[ReviewRecord]:
        return self._many(ReviewRecord, f"{self._model(name)}/versions/{int(version)}/reviews")

    def audit_head(self) -> AuditRecord | None:
        record = self._head().get("record")
        return None if record is None else decode_record(AuditRecord, record)

    def audit_entry(self, seq: int) -> AuditRecord | None:
        if seq < 1:
            return None
        result: AuditRecord | None = self._one(AuditRecord, f"{_STORE}/audit/{int(seq)}")
        return result

    def audit_entries(self, *, since: int = 0, until: int | None = None,
                      limit: int | None = None, name: str | None = None,
                      target: str | None = None, accepted: bool | None = None,
                      descending: bool = False) -> list[AuditRecord]:
        out: list[AuditRecord] = []
        cursor = since
        while True:
            want = _PAGE if limit is None else min(_PAGE, limit - len(out))
            if descending:  # one page: descending answers are small (the newest first)
                return self._many(AuditRecord, f"{_STORE}/audit", {
                    "since": since, "until": until, "limit": limit or _PAGE, "name": name,
                    "target": target, "accepted": accepted, "descending": True})
            page = self._many(AuditRecord, f"{_STORE}/audit", {
                "since": cursor, "until": until, "limit": want, "name": name,
                "target": target, "accepted": accepted})
            out.extend(page)
            if len(page) < want or (limit is not None and len(out) >= limit):
                return out
            if page[-1].seq <= cursor:
                raise MalformedResponseError("the server's audit pages do not advance")
            cursor = page[-1].seq

    def iter_audit(self, *, since: int = 0, batch: int = 5000) -> Iterator[AuditRecord]:
        cursor = since
        size = max(1, min(batch, _PAGE))
        while True:
            page = self._many(AuditRecord, f"{_STORE}/audit", {"since": cursor, "limit": size})
            yield from page
            if len(page) < size:
                return
            if page[-1].seq <= cursor:
                raise MalformedResponseError("the server's audit pages do not advance")
            cursor = page[-1].seq

    def get_decision(self, digest: str) -> bytes | None:
        # Decisions are named by their digest: one verified earlier answers again.
        cached = self._store.decisions.get(digest)
        if cached is not None:
            return cached
        value = self._get(f"{_STORE}/decisions/{quote_segment(digest)}").get("value")
        if value is None:
            return None
        if not isinstance(value, str):
            raise MalformedResponseError("the server sent a malformed decision")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponseError("the server sent a malformed decision") from None
        # Kept only if it hashes to its name; other bytes go back to the caller,
        # whose digest check refuses them (read_decision).
        self._store.decisions.put(digest, data)
        return data

    def checkpoints(self) -> list[CheckpointRecord]:
        return self._many(CheckpointRecord, f"{_STORE}/checkpoints")

    def events(self, *, since: int = 0, limit: int | None = None) -> list[EventRecord]:
        return self._many(EventRecord, f"{_STORE}/events", {"since": since, "limit": limit})

    def due_deliveries(self, now: float, *, limit: int = 100) -> list[DeliveryRecord]:
        raise _ReadOnly("hook deliveries are the server's to make")

    def deliveries(self, *, event_id: int | None = None) -> list[DeliveryRecord]:
        return self._many(DeliveryRecord, f"{_STORE}/deliveries", {"event": event_id})

    def get_event(self, event_id: int) -> EventRecord | None:
        result: EventRecord | None = self._one(EventRecord, f"{_STORE}/events/{int(event_id)}")
        return result

    def get_deployment(self, name: str, version: int) -> DeploymentRecord | None:
        result: DeploymentRecord | None = self._one(
            DeploymentRecord, f"{_STORE}/deployments/{quote_segment(name)}/{int(version)}")
        return result

    def list_deployments(self, name: str | None = None) -> list[DeploymentRecord]:
        return self._many(DeploymentRecord, f"{_STORE}/deployments", {"name": name})

    def versions_for_replay(self) -> Iterator[VersionRecord]:
        offset = 0
        while True:
            page = self._many(VersionRecord, f"{_STORE}/versions",
                              {"offset": offset, "limit": _PAGE})
            yield from page
            if len(page) < _PAGE:
                return
            offset += len(page)

    def all_aliases(self) -> list[AliasRecord]:
        return self._many(AliasRecord, f"{_STORE}/aliases")

    # ------------------------------------------------------------------ the catalog

    def _post(self, path: str, document: dict[str, Any]) -> dict[str, Any]:
        import json

        key = f"POST {path} {json.dumps(document, sort_keys=True)}"
        if key not in self._memo:
            _, answer = self.t.json("POST", path, document=document, retry=True)
            if not isinstance(answer, dict):
                raise MalformedResponseError(f"POST {path}: the server's answer is not an "
                                             "object")
            self._memo[key] = answer
        found: dict[str, Any] = self._memo[key]
        return found

    def all_models(self) -> list[ModelRecord]:
        return self._many(ModelRecord, f"{_STORE}/all-models")

    def list_tags(self, name: str, version: int | None = None) -> list[TagRecord]:
        return self._many(TagRecord, f"{self._model(name)}/tags", {"version": version})

    def model_tags(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        if not names:
            return {}
        tags = self._post(f"{_STORE}/model-tags", {"names": list(names)}).get("tags")
        if not isinstance(tags, dict) or not all(
                isinstance(k, str) and _str_map(v) for k, v in tags.items()):
            raise MalformedResponseError("the server sent malformed tags")
        return tags

    def _per_version(self, path: str, keys: Sequence[tuple[str, int]], numbers: bool
                     ) -> dict[tuple[str, int], Any]:
        if not keys:
            return {}
        entries = self._post(path, {"keys": [[n, v] for n, v in keys]}).get("entries")
        return _entries(entries, numbers)

    def version_tags(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                    dict[str, str]]:
        return self._per_version(f"{_STORE}/version-tags", keys, numbers=False)

    def version_metrics(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int],
                                                                       dict[str, float]]:
        return self._per_version(f"{_STORE}/version-metrics", keys, numbers=True)

    def aliases_of(self, names: Sequence[str]) -> dict[str, list[AliasRecord]]:
        if not names:
            return {}
        found = self._post(f"{_STORE}/aliases-of", {"names": list(names)}).get("aliases")
        if not isinstance(found, dict):
            raise MalformedResponseError("the server sent malformed aliases")
        return {str(name): decode_records(AliasRecord, records)
                for name, records in found.items()}

    def all_tags(self) -> list[TagRecord]:
        return self._many(TagRecord, f"{_STORE}/tags")

    def all_metrics(self) -> dict[tuple[str, int], dict[str, float]]:
        return _entries(self._get(f"{_STORE}/metrics").get("entries"), True)

    def renames_of(self, name: str) -> list[RenameRecord]:
        return self._many(RenameRecord, f"{self._model(name)}/renames")

    def renamed_from(self, old_name: str) -> tuple[RenameRecord, str] | None:
        answer = self._get(f"{_STORE}/renamed-from/{quote_segment(old_name)}")
        record, now = answer.get("record"), answer.get("now")
        if record is None:
            return None
        if not isinstance(now, str):
            raise MalformedResponseError("the server sent a malformed rename")
        return decode_record(RenameRecord, record), now

    def all_renames(self) -> list[RenameRecord]:
        return self._many(RenameRecord, f"{_STORE}/renames")

    def search_models(self, query: Any) -> list[ModelRecord]:
        raise _ReadOnly("a registry server searches itself: use its search API "
                        "(RemoteRegistry.search_models)")

    def search_versions(self, query: Any) -> list[VersionRecord]:
        raise _ReadOnly("a registry server searches itself: use its search API "
                        "(RemoteRegistry.search_versions)")


def _str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                           for k, v in value.items())


def _entries(entries: Any, numbers: bool) -> dict[tuple[str, int], Any]:
    """``[[name, version, {key: value}], ...]`` -> ``{(name, version): {key: value}}``."""
    if not isinstance(entries, list):
        raise MalformedResponseError("the server sent malformed per-version values")
    out: dict[tuple[str, int], Any] = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], int) and not isinstance(entry[1], bool)
                and isinstance(entry[2], dict)):
            raise MalformedResponseError("the server sent malformed per-version values")
        values = entry[2]
        if numbers:
            if not all(isinstance(k, str) and isinstance(v, (int, float))
                       and not isinstance(v, bool) for k, v in values.items()):
                raise MalformedResponseError("the server sent malformed metrics")
            values = {k: float(v) for k, v in values.items()}
        elif not _str_map(values):
            raise MalformedResponseError("the server sent malformed tags")
        out[(entry[0], entry[1])] = values
    return out


class RemoteMetadataStore(MetadataStore):
    """A registry server's rows, read-only (see the module docstring)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.description = f"registry server {transport.url}"
        self.decisions = DigestCache(*_DECISION_CACHE)
        self._local = threading.local()

    @contextmanager
    def operation(self) -> Iterator[_Operation]:
        """One client operation: its transactions share one read of the signed head.

        Nothing is kept past the block: the next operation reads the head again.
        """
        outer = getattr(self._local, "operation", None)
        current = self._local.operation = _Operation()
        try:
            yield current
        finally:
            self._local.operation = outer

    def current_operation(self) -> _Operation | None:
        """The operation this thread runs, if any."""
        found: _Operation | None = getattr(self._local, "operation", None)
        return found

    def fresh_head(self) -> str | None:
        """The signed head as the server holds it now, past any operation's memo."""
        _, document = self.transport.json("GET", f"{_STORE}/head")
        if not isinstance(document, dict):
            raise MalformedResponseError("the server's head answer is not an object")
        value = document.get("head")
        if value is not None and not isinstance(value, str):
            raise MalformedResponseError("the server sent a malformed signed head")
        return value

    def create_schema(self) -> None:
        raise _ReadOnly(f"{self.description} is not created from a client")

    @contextmanager
    def read(self) -> Iterator[ReadTransaction]:
        yield RemoteReadTransaction(self)

    def write(self) -> contextlib.AbstractContextManager[WriteTransaction]:
        raise _ReadOnly(f"{self.description} is changed through its API, not by writing "
                        "its rows: this operation is not offered remotely")

    def close(self) -> None:
        self.transport.close()


class RemoteBlobStore(BlobStore):
    """A registry server's blobs, read-only; every byte checked against its digest.

    Blobs of at most 4 MiB (evidence, manifests, settings) are kept in a local
    content-addressed cache (``cache``) and re-hashed on every read from it, so
    a version verified again is not downloaded again; model files go straight
    to their destination (``copy_to``), hashed on the way. Within the process,
    verified small blobs are also kept in memory (:class:`DigestCache`), and the
    size of every blob hashed here is remembered by digest, so :meth:`stat` of a
    blob already verified asks the server nothing.
    """

    def __init__(self, transport: Transport, cache: Path | None = None) -> None:
        self.transport = transport
        self.cache = cache
        self.description = f"blobs of registry server {transport.url}"
        self.memory = DigestCache(*_BLOB_CACHE)
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._sizes_lock = threading.Lock()

    def _verified_size(self, digest: str, size: int | None = None) -> int | None:
        """Remember (``size`` given) or recall the size of bytes that hashed to ``digest``."""
        with self._sizes_lock:
            if size is not None:
                self._sizes[digest] = size
                self._sizes.move_to_end(digest)
                while len(self._sizes) > _SIZES_KEPT:
                    self._sizes.popitem(last=False)
                return size
            found = self._sizes.get(digest)
            if found is not None:
                self._sizes.move_to_end(digest)
            return found

    def _path(self, digest: str) -> str:
        return f"/api/v1/blobs/{quote_segment(check_digest(digest))}"

    def _cached(self, digest: str) -> Path | None:
        if self.cache is None:
            return None
        hexdigest = digest.removeprefix("sha256:")
        return self.cache / hexdigest[:2] / hexdigest

    def stat(self, digest: str) -> int | None:
        known = self._verified_size(digest)
        if known is not None:
            return known
        cached = self._cached(digest)
        if cached is not None and cached.is_file():
            return cached.stat().st_size
        answer = self.transport.request("HEAD", self._path(digest))
        if answer.status == 404:
            return None
        if answer.status != 200:
            from mlprov.server._http_errors import error_from_answer

            raise error_from_answer(answer.status, None, what=f"HEAD blob {digest}")
        size = answer.headers.get("content-length", "")
        if not size.isdigit():
            raise MalformedResponseError(f"the server gave no size for blob {digest}")
        return int(size)

    def get_bytes(self, digest: str, *, max_size: int | None = None) -> bytes:
        check_digest(digest)
        kept = self.memory.get(digest)
        if kept is not None and (max_size is None or len(kept) <= max_size):
            return kept
        cached = self._cached(digest)
        if cached is not None:
            with contextlib.suppress(OSError):
                data = cached.read_bytes()
                if self.memory.put(digest, data) and \
                        (max_size is None or len(data) <= max_size):
                    self._verified_size(digest, len(data))
                    return data
        limit = max_size if max_size is not None else 1024 * 1024 * 1024
        answer = self.transport.request("GET", self._path(digest), max_size=limit)
        self._check_status(answer.status, answer.data, digest)
        if max_size is not None and len(answer.data) > max_size:
            raise BlobCorruptError(f"blob {digest} is larger than {max_size} bytes")
        if "sha256:" + hashlib.sha256(answer.data).hexdigest() != digest:
            raise BlobCorruptError(f"the server's blob {digest} does not match its digest "
                                   "(swapped or corrupted)")
        self._verified_size(digest, len(answer.data))
        if len(answer.data) <= _SMALL_BLOB:
            self.memory.put(digest, answer.data)
            if cached is not None:
                self._store(cached, answer.data)
        return answer.data

    def _check_status(self, status: int, data: bytes, digest: str) -> None:
        if status == 404:
            raise BlobNotFoundError(f"blob {digest} is not on the registry server")
        if status != 200:
            from mlprov.server._http_errors import error_from_answer
            from mlprov.server._transport import Answer

            document = Transport.parse(Answer(status, {"content-type": "application/json"},
                                              data), what="blob") if data else None
            raise error_from_answer(status, document, what=f"GET blob {digest}")

    @staticmethod
    def _store(path: Path, data: bytes) -> None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".blob-", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)

    def copy_to(self, digest: str, dest: Path) -> int:
        check_digest(digest)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(dest, flags, 0o644)
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                class _Hashing:
                    def write(self, chunk: bytes) -> None:
                        nonlocal size
                        hasher.update(chunk)
                        size += len(chunk)
                        out.write(chunk)

                answer = self.transport.request("GET", self._path(digest),
                                                stream_to=_Hashing(),  # type: ignore[arg-type]
                                                max_size=2**62)
                self._check_status(answer.status, answer.data, digest)
            if "sha256:" + hasher.hexdigest() != digest:
                raise BlobCorruptError(f"the server's blob {digest} does not match its "
                                       "digest (swapped or corrupted)")
        except BaseException:
            with contextlib.suppress(OSError):
                dest.unlink()
            raise
        self._verified_size(digest, size)
        return size

    # ------------------------------------------------------------------ read-only

    def put_bytes(self, data: bytes) -> BlobInfo:
        raise _ReadOnly(f"{self.description} are written by the server only")

    def put_file(self, path: Path, *, expected: str | None = None) -> BlobInfo:
        raise _ReadOnly(f"{self.description} are written by the server only")

    def iter_digests(self) -> Iterator[str]:
        raise _ReadOnly(f"{self.description} are not listed to clients")

    def iter_blobs(self) -> Iterator[StoredBlob]:
        raise _ReadOnly(f"{self.description} are not listed to clients")

    def clean_partial(self, older_than: float) -> int:
        raise _ReadOnly(f"{self.description} are cleaned by the server only")

    def delete(self, digest: str) -> bool:
        raise _ReadOnly(f"{self.description} are deleted by the server only")
