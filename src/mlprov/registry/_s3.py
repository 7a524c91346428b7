"""A content-addressed blob store in an S3 bucket: ``s3://BUCKET/PREFIX/sha256/<2 hex>/<64 hex>``.

Invariants, the same as :class:`~mlprov.registry._blobs.LocalBlobStore`'s:

- A blob's key is the SHA-256 of its bytes, computed on the client before the
  upload. Writes are write-once: ``PutObject`` and ``CompleteMultipartUpload``
  carry ``If-None-Match: *``, and a ``412 Precondition Failed`` means the key is
  already stored, which (the key being the content's hash) is the same content.
  See https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
- Every upload carries ``x-amz-checksum-sha256`` (the whole object's, or each
  part's for a multipart upload), so the server refuses bytes damaged in
  transit. A multipart upload re-hashes the whole object on the client while it
  reads the parts and is aborted unless that hash is the key's, because S3's own
  multipart checksum is a checksum of part checksums, not the object's SHA-256.
- Every read re-hashes the bytes; nothing read back is trusted. ``copy_to``
  streams to a temporary file beside the destination, so a model is never held
  in memory and a corrupt blob leaves nothing behind.

The endpoint, region and credentials come from the usual AWS settings
(``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles),
read by boto3. boto3 is the ``team`` extra and is imported only when an S3 store
is made.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlprov.errors import DigestMismatchError, InputError
from mlprov.registry._blobs import READ_FLAGS, fsync_enabled
from mlprov.registry.interface import (
    BlobCorruptError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    StoredBlob,
    StoreError,
    check_digest,
)

__all__ = ["S3BlobStore", "parse_s3_url"]

#: S3's smallest part (except the last) is 5 MiB, its largest 5 GiB, at most 10,000 parts.
MIN_PART_SIZE = 5 << 20
_MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 << 20
DEFAULT_CONCURRENCY = 8
_CHUNK = 1 << 20
_TEAM_HINT = "pip install 'mlprov[team]'"
_CREDENTIALS_HINT = ("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and "
                     "that they may read and write the bucket")
_NETWORK_HINT = "check AWS_ENDPOINT_URL (or the profile's endpoint) and the network, then retry"
_DENIED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                     "ExpiredToken", "InvalidToken", "InvalidClientTokenId"})
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_BUCKET = re.compile(r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_KEY = re.compile(r"\Asha256/([0-9a-f]{2})/([0-9a-f]{64})\Z")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://BUCKET[/PREFIX]`` into the bucket and the prefix (no slashes at its ends).

    Raises:
        InputError: not an ``s3://`` URL, or not a valid bucket name.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or parts.query or parts.fragment or "@" in parts.netloc:
        raise InputError(f"not an s3://BUCKET/PREFIX URL: {url!r}")
    if not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        raise InputError(f"not a valid S3 bucket name in {url!r}")
    prefix = parts.path.strip("/")
    if prefix and any(segment in ("", ".", "..") for segment in prefix.split("/")):
        raise InputError(f"empty, '.' or '..' segment in the S3 prefix of {url!r}")
    return parts.netloc, prefix


def make_client(*, max_pool_connections: int = 16) -> Any:
    """A boto3 S3 client configured from the standard AWS environment and profile.

    Path-style addressing is used when ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``)
    names an endpoint: S3-compatible servers rarely serve bucket subdomains.

    Raises:
        InputError: boto3 is not installed.
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise InputError("the S3 blob store needs boto3, which is not installed",
                         hint=_TEAM_HINT) from exc
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    s3_options: dict[str, Any] = {
        # Integrity is carried by the signed x-amz-checksum-sha256 header, which the
        # server verifies, so the body need not be hashed a second time to sign it.
        "payload_signing_enabled": False,
    }
    if endpoint:
        s3_options["addressing_style"] = "path"
    retries: dict[str, Any] = {}  # AWS_MAX_ATTEMPTS / AWS_RETRY_MODE win over these defaults
    if not os.environ.get("AWS_RETRY_MODE"):
        retries["mode"] = "standard"
    if not os.environ.get("AWS_MAX_ATTEMPTS"):
        retries["max_attempts"] = 5
    config = Config(
        connect_timeout=10, read_timeout=60, retries=retries,
        max_pool_connections=max_pool_connections,
        s3=s3_options,
        # mlprov sends SHA-256 itself and re-hashes every read: no extra CRC32.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        session = boto3.session.Session()
        region = os.environ.get("AWS_REGION") or session.region_name
        return session.client("s3", endpoint_url=endpoint or None, region_name=region,
                              config=config)
    except Exception as exc:  # botocore's profile and config errors have no common base
        raise StoreError(f"cannot configure an S3 client: {exc}",
                         hint="check AWS_PROFILE, AWS_CONFIG_FILE and the AWS_* variables") \
            from exc


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return ""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class S3BlobStore(BlobStore):
    """Blobs as write-once objects under one bucket and prefix.

    Args:
        bucket: the bucket (it must exist).
        prefix: a key prefix, without slashes at its ends ("" for none).
        client: a boto3 S3 client (default: :func:`make_client`).
        part_size: the multipart part size; objects larger than this are uploaded
            in parts (at least 5 MiB, S3's minimum; grown for objects over 10,000 parts).
        concurrency: parts uploaded at once (each held in memory while it is sent).
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None,
                 part_size: int = DEFAULT_PART_SIZE,
                 concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if part_size < MIN_PART_SIZE:
            raise InputError(f"S3 part size {part_size} is under S3's 5 MiB minimum")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self.concurrency = max(1, concurrency)
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.description = f"S3 blob store {self.url}"
        self._client: Any = client if client is not None else make_client(
            max_pool_connections=max(16, 2 * self.concurrency))
        from botocore.exceptions import BotoCoreError, ClientError

        self._boto_errors: tuple[type[Exception], ...] = (BotoCoreError, ClientError)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3BlobStore:
        """A store for ``s3://BUCKET[/PREFIX]`` (options as for the constructor)."""
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, **options)

    # ------------------------------------------------------------------ helpers

    def _key(self, digest: str) -> str:
        hexdigest = check_digest(digest)[len("sha256:"):]
        key = f"sha256/{hexdigest[:2]}/{hexdigest}"
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, exc: Exception, doing: str) -> StoreError:
        """A one-line StoreError for a boto3/botocore failure."""
        code = _error_code(exc)
        if code in _DENIED:
            return StoreError(f"S3 refused access while {doing} in {self.url} ({code})",
                              hint=_CREDENTIALS_HINT)
        if code == "NoSuchBucket":
            return StoreError(f"S3 bucket {self.bucket!r} does not exist (while {doing})",
                              hint="create the bucket, or fix the s3:// URL and AWS_ENDPOINT_URL")
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            return StoreError(f"no AWS credentials for {self.url}", hint=_CREDENTIALS_HINT)
        if not code:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return StoreError(f"S3 request failed while {doing} in {self.url}: {message}",
                              hint=_NETWORK_HINT)
        return StoreError(f"S3 request failed while {doing} in {self.url} ({code})",
                          hint=_NETWORK_HINT)

    def _get(self, digest: str) -> Any:
        key = self._key(digest)
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key)
        except self._boto_errors as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise BlobNotFoundError(f"blob {digest} is missing from {self.description}") \
                    from exc
            raise self._error(exc, f"reading blob {digest}") from exc

    def _corrupt(self, digest: str) -> BlobCorruptError:
        return BlobCorruptError(f"blob {digest} in {self.description} does not match its digest")

    # ------------------------------------------------------------------ writes

    def _put_once(self, digest: str, data: bytes) -> None:
        """``PutObject`` with ``If-None-Match: *``; 412 means it is already stored."""
        key = self._key(digest)
        for _ in range(3):
            try:
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*",
                    ChecksumSHA256=_b64(bytes.fromhex(digest[7:])))
                return
            except self._boto_errors as exc:
                code = _error_code(exc)
                if code in ("PreconditionFailed", "412"):
                    return  # same key, same content: someone stored it first
                if code == "ConditionalRequestConflict":  # a concurrent write in flight
                    if self.stat(digest) is not None:
                        return
                    continue
                raise self._error(exc, f"storing blob {digest}") from exc
        raise StoreError(f"S3 kept reporting a conflicting write of blob {digest} in {self.url}",
                         hint=_NETWORK_HINT)

    def _part_size_for(self, size: int) -> int:
        part = self.part_size
        while -(-size // part) > _MAX_PARTS:
            part *= 2
        return part

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        checksum = _b64(hashlib.sha256(data).digest())  # hashlib drops the GIL for big inputs
        response = self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
            ChecksumSHA256=checksum)
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}

    def _put_multipart(self, digest: str, size: int, read: Callable[[int, int], bytes],
                       what: str) -> None:
        """Upload ``size`` bytes given by ``read(offset, length)`` in parts.

        The whole object is re-hashed as the parts are read, in order, and the
        upload completes only if that hash is ``digest``; any failure aborts it.

        Raises:
            DigestMismatchError: the bytes read now are not the ones hashed before.
        """
        key = self._key(digest)
        part_size = self._part_size_for(size)
        try:
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
        except self._boto_errors as exc:
            raise self._error(exc, f"storing blob {digest}") from exc
        whole = hashlib.sha256()
        parts: list[dict[str, Any]] = []
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="mlprov-s3") as pool:
                pending: deque[Future[dict[str, Any]]] = deque()
                for number, offset in enumerate(range(0, size, part_size), start=1):
                    data = read(offset, min(part_size, size - offset))
                    whole.update(data)
                    pending.append(pool.submit(self._upload_part, key, upload_id, number, data))
                    del data
                    while len(pending) >= self.concurrency:  # bounds the parts in memory
                        parts.append(pending.popleft().result())
                while pending:
                    parts.append(pending.popleft().result())
            if "sha256:" + whole.hexdigest() != digest:
                raise DigestMismatchError(f"{what} changed while it was stored: its bytes no "
                                          f"longer hash to {digest}")
            try:
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts}, IfNoneMatch="*")
            except self._boto_errors as exc:
                if _error_code(exc) not in ("PreconditionFailed", "412"):
                    raise
                # Already stored under this key (the same content); drop our parts.
                self._abort(key, upload_id)
        except BaseException as exc:
            self._abort(key, upload_id)
            if isinstance(exc, self._boto_errors):
                raise self._error(exc, f"storing blob {digest}") from exc
            raise

    def _abort(self, key: str, upload_id: str) -> None:
        # Best effort: the upload may already be gone (completed by a 412 or expired);
        # a bucket lifecycle rule for incomplete uploads catches what this misses.
        with contextlib.suppress(*self._boto_errors):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data`` (write-once; an existing blob of that size is kept)."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.stat(digest) == len(data):
            return BlobInfo(digest, len(data))
        if len(data) <= self.part_size:
            self._put_once(digest, data)
        else:
            view = memoryview(data)
            self._put_multipart(digest, len(data),
                                lambda offset, length: bytes(view[offset:offset + length]),
                                "the data")
        return BlobInfo(digest, len(data))

    def put_file(self, path: Path, *, expected: str | None = None) -> BlobInfo:
        """Upload a file; refuses symlinks and special files.

        A file up to one part is read once into memory; a larger one is read
        twice (hashed to name it, then uploaded in parts and re-hashed).
        """
        try:
            fd = os.open(path, READ_FLAGS)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError(f"not a regular file: {path}")
            try:
                head = self._read_at(fd, 0, self.part_size + 1)
                if len(head) <= self.part_size:
                    digest, size = "sha256:" + hashlib.sha256(head).hexdigest(), len(head)
                else:
                    head = b""  # not kept: the file is read again, part by part
                    digest, size = self._hash_fd(fd)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror}") from exc
            if expected is not None and digest != expected:
                raise DigestMismatchError(f"{path} changed while it was stored: it is now "
                                          f"{digest}, the evidence signs {expected}")
            if self.stat(digest) == size:
                return BlobInfo(digest, size)
            if size <= self.part_size:
                self._put_once(digest, head)
            else:
                self._put_multipart(digest, size, lambda offset, length: self._read_exact(
                    fd, offset, length, path), str(path))
            return BlobInfo(digest, size)
        finally:
            os.close(fd)

    @staticmethod
    def _read_at(fd: int, offset: int, length: int) -> bytes:
        chunks = []
        while length > 0 and (chunk := os.pread(fd, min(length, 64 << 20), offset)):
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def _read_exact(self, fd: int, offset: int, length: int, path: Path) -> bytes:
        try:
            data = self._read_at(fd, offset, length)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        if len(data) != length:
            raise DigestMismatchError(f"{path} changed while it was stored: it shrank")
        return data

    @staticmethod
    def _hash_fd(fd: int) -> tuple[str, int]:
        h = hashlib.sha256()
        size = 0
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while n := os.preadv(fd, [buf], size):
            h.update(view[:n])
            size += n
        return "sha256:" + h.hexdigest(), size

    # ------------------------------------------------------------------ reads

    def get_bytes(self, digest: str, *, max_size: int | None = None) -> bytes:
        """Download a blob and check its digest (and its size against ``max_size`` first)."""
        response = self._get(digest)
        body = response["Body"]
        try:
            size = int(response.get("ContentLength", 0))
            if max_size is not None and size > max_size:
                raise BlobCorruptError(f"blob {digest} is {size} bytes, over the "
                                       f"{max_size}-byte bound for its kind")
            try:
                data: bytes = body.read()
            except self._boto_errors as exc:
                raise self._error(exc, f"reading blob {digest}") from exc
        finally:
            body.close()
        if len(data) != size or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise self._corrupt(digest)
        return data

    def _get_range(self, key: str, etag: str, offset: int, length: int, digest: str) -> bytes:
        """One part of a ranged download, pinned to the ETag the first part came with."""
        try:
            response = self._client.get_object(
                Bucket=self.bucket, Key=key, IfMatch=etag,
                Range=f"bytes={offset}-{offset + length - 1}")
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except self._boto_errors as exc:
            if _error_code(exc) in ("PreconditionFailed", "412"):  # replaced while read
                raise self._corrupt(digest) from exc
            raise self._error(exc, f"reading blob {digest}") from exc
        if len(data) != length:
            raise self._corrupt(digest)
        return data

    def _stream(self, digest: str) -> Iterator[bytes]:
        """A blob's bytes in order, unverified.

        The first part is streamed; the rest are fetched ``concurrency`` ranges at
        a time, so at most that many parts are held in memory.
        """
        key = self._key(digest)
        part = self.part_size
        try:
            first = self._client.get_object(Bucket=self.bucket, Key=key,
                                            Range=f"bytes=0-{part - 1}")
        except self._boto_errors as exc:
            if _error_code(exc) not in ("InvalidRange", "416"):
                if _error_code(exc) in _NOT_FOUND:
                    raise BlobNotFoundError(f"blob {digest} is missing from "
                                            f"{self.description}") from exc
                raise self._error(exc, f"reading blob {digest}") from exc
            first = self._get(digest)  # an empty object has no byte 0 to range over
        body = first["Body"]
        ranged = "ContentRange" in first  # a server may ignore Range and send it all
        total = int(first["ContentRange"].rsplit("/", 1)[1] if ranged else first.get(
            "ContentLength", 0))
        rest = iter(range(part, total, part) if ranged else ())
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="mlprov-s3")
        pending: deque[Future[bytes]] = deque()

        def fill() -> None:
            while len(pending) < self.concurrency and (offset := next(rest, None)) is not None:
                pending.append(pool.submit(self._get_range, key, first["ETag"], offset,
                                           min(part, total - offset), digest))

        try:
            fill()
            try:
                yield from body.iter_chunks(_CHUNK)
            finally:
                body.close()
            while pending:
                data = pending.popleft().result()
                fill()
                yield data
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)

    def copy_to(self, digest: str, dest: Path) -> int:
        """Stream a blob into the new file ``dest``, hashing on the way; verified, then renamed.

        Parts are fetched in parallel (ranged GETs) but hashed and written in order,
        into a temporary file beside ``dest`` that is renamed only once it verified.
        """
        if os.path.lexists(dest):
            raise StoreError(f"cannot create {dest}: File exists")
        check_digest(digest)  # before anything is created
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
        try:
            out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(
                os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create {dest}: {exc.strerror}") from exc
        h = hashlib.sha256()
        size = 0
        try:
            try:
                for chunk in self._stream(digest):
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view):]
                    size += len(chunk)
                if fsync_enabled():
                    os.fsync(out)
            except OSError as exc:
                raise StoreError(f"cannot copy blob {digest} to {dest}: {exc.strerror}") \
                    from exc
            except self._boto_errors as exc:
                raise self._error(exc, f"reading blob {digest}") from exc
            finally:
                os.close(out)
            if "sha256:" + h.hexdigest() != digest:
                raise self._corrupt(digest)
            self._publish(temp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return size

    @staticmethod
    def _publish(temp: Path, dest: Path) -> None:
        """Give the verified ``temp`` the name ``dest``, never replacing an existing file."""
        try:
            os.link(temp, dest)  # fails if dest exists, unlike a rename
        except FileExistsError as exc:
            raise StoreError(f"cannot create {dest}: File exists") from exc
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise StoreError(f"cannot create {dest}: {exc.strerror}") from exc
            if os.path.lexists(dest):  # no hard links here: check, then rename
                raise StoreError(f"cannot create {dest}: File exists") from exc
            try:
                os.replace(temp, dest)
            except OSError as again:
                raise StoreError(f"cannot create {dest}: {again.strerror}") from again

    def stat(self, digest: str) -> int | None:
        """The blob's size (HEAD), or None when absent."""
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except self._boto_errors as exc:
            if _error_code(exc) in _NOT_FOUND:
                return None
            raise self._error(exc, f"looking up blob {digest}") from exc
        return int(response["ContentLength"])

    def iter_digests(self) -> Iterator[str]:
        """Every stored blob's digest, in key (so digest) order."""
        for blob in self.iter_blobs():
            yield blob.digest

    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob with its size and ``LastModified`` time, in key order."""
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + "sha256/"):
                for item in page.get("Contents", ()):
                    match = _KEY.match(item["Key"][len(base):])
                    if match and match.group(2).startswith(match.group(1)):
                        yield StoredBlob(f"sha256:{match.group(2)}", int(item["Size"]),
                                         item["LastModified"].timestamp())
        except self._boto_errors as exc:
            raise self._error(exc, "listing blobs") from exc

    def delete(self, digest: str) -> bool:
        """``DeleteObject`` (S3 answers the same whether or not the key existed)."""
        if self.stat(digest) is None:
            return False
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(digest))
        except self._boto_errors as exc:
            raise self._error(exc, f"deleting blob {digest}") from exc
        return True

    def clean_partial(self, older_than: float) -> int:
        """Abort this store's multipart uploads started before ``older_than``."""
        base = f"{self.prefix}/" if self.prefix else ""
        removed = 0
        try:
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + "sha256/"):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < older_than:
                        self._abort(upload["Key"], upload["UploadId"])
                        removed += 1
        except self._boto_errors as exc:
            raise self._error(exc, "listing unfinished uploads") from exc
        return removed
