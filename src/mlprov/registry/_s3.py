"""Blobs in S3-compatible object storage (AWS S3, MinIO, SeaweedFS, Ceph), with boto3.

Keys are ``PREFIX/sha256/<2 hex>/<64 hex>``: the name is the content's SHA-256, so
a blob is written once. Writes hash first (a file is streamed, never held whole),
skip a key that exists, and send ``If-None-Match: *`` (a 412 means a racing writer
stored the same bytes first) with the object's SHA-256 checksum, which the server
checks; files over :data:`MULTIPART_THRESHOLD` go up in parts, each with its own
checksum, the whole object checked by mlprov before it is committed, and aborted
on any failure. Reads check the size before downloading and the digest while
streaming: ``copy_to`` writes to a temporary sibling and renames only a verified
file, so no model is ever held in memory and nothing unverified is left behind.

Endpoint, region and credentials come from the usual AWS settings
(``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
profiles); with an endpoint set, path-style addressing is used (MinIO, SeaweedFS).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlprov.errors import DigestMismatchError, InputError
from mlprov.registry.interface import (
    BlobCorruptError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    StoreError,
    check_digest,
)

__all__ = ["MULTIPART_THRESHOLD", "S3BlobStore", "parse_s3_url"]

#: Files larger than this go up as a multipart upload.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
#: The part size of a multipart upload (S3's minimum is 5 MiB).
PART_SIZE = 32 * 1024 * 1024
_CHUNK = 1024 * 1024
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_INSTALL_HINT = "pip install 'mlprov[team]'"


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix without slashes at the ends).

    Raises:
        InputError: not such a URL.
    """
    if not url.startswith("s3://"):
        raise InputError(f"not an S3 URL: {url!r}", hint="write s3://BUCKET/PREFIX")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket or any(c in bucket for c in " \\\n\r\t") or ".." in prefix.split("/"):
        raise InputError(f"not an S3 URL: {url!r}", hint="write s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


def _b64(digest_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(digest_hex)).decode()


class S3BlobStore(BlobStore):
    """Content-addressed blobs under ``s3://BUCKET/PREFIX``."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None,
                 multipart_threshold: int = MULTIPART_THRESHOLD,
                 part_size: int = PART_SIZE) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"S3 blob store s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = client
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        """The store at ``s3://BUCKET/PREFIX`` (client from the AWS environment)."""
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix)

    # ----------------------------------------------------------------- client, keys

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use (boto3 is imported only then)."""
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as exc:
                raise InputError("an S3 blob store needs boto3", hint=_INSTALL_HINT) from exc
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
                "AWS_ENDPOINT_URL")
            config = Config(connect_timeout=10, read_timeout=60,
                            retries={"max_attempts": 5, "mode": "standard"},
                            s3={"addressing_style": "path" if endpoint else "auto"},
                            request_checksum_calculation="when_required",
                            response_checksum_validation="when_required")
            # A session of its own: the settings in force now (boto3's default
            # session would keep the credentials it resolved first).
            self._client = boto3.session.Session().client("s3", endpoint_url=endpoint,
                                                          config=config)
        return self._client

    def _key(self, digest: str) -> str:
        hexdigest = check_digest(digest)[len("sha256:"):]
        name = f"sha256/{hexdigest[:2]}/{hexdigest}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _error(self, exc: Exception, what: str) -> StoreError:
        code = _code(exc)
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403"):
            return StoreError(f"{self.description} refused {what}: {code} (check the "
                              "credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                              "AWS_PROFILE)")
        if code in ("NoSuchBucket",):
            return StoreError(f"{self.description}: the bucket {self.bucket!r} does not exist")
        detail = code or type(exc).__name__
        return StoreError(f"{self.description}: cannot {what}: {detail}")

    # ----------------------------------------------------------------- writes

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data`` once (a blob that exists is kept)."""
        hexdigest = hashlib.sha256(data).hexdigest()
        digest = "sha256:" + hexdigest
        if self.stat(digest) == len(data):
            return BlobInfo(digest, len(data))
        key = self._key(digest)
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                   IfNoneMatch="*", ChecksumSHA256=_b64(hexdigest))
        except Exception as exc:  # botocore raises ClientError and transport errors
            if _code(exc) not in ("PreconditionFailed", "412"):
                raise self._error(exc, f"store blob {digest}") from exc
        return BlobInfo(digest, len(data))

    def put_file(self, path: Path, *, expected: str | None = None) -> BlobInfo:
        """Hash the file (streamed), then upload it once, checked on both ends."""
        digest, size = _hash_file(path)
        if expected is not None and digest != expected:
            raise DigestMismatchError(f"{path} changed while it was stored: it is now "
                                      f"{digest}, the evidence signs {expected}")
        if self.stat(digest) == size:
            return BlobInfo(digest, size)
        if size <= self.multipart_threshold:
            data = _read_all(path, size)
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                raise DigestMismatchError(f"{path} changed while it was stored")
            return self.put_bytes(data)
        self._multipart(path, digest, size)
        return BlobInfo(digest, size)

    def _multipart(self, path: Path, digest: str, size: int) -> None:
        key = self._key(digest)
        try:
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                         ChecksumAlgorithm="SHA256")
        except Exception as exc:
            raise self._error(exc, f"start uploading {path}") from exc
        upload_id = upload["UploadId"]
        whole = hashlib.sha256()
        parts = []
        try:
            fd = _open_regular(path)
            try:
                number = 1
                while True:
                    chunk = _read_exactly(fd, self.part_size)
                    if not chunk:
                        break
                    whole.update(chunk)
                    part_hex = hashlib.sha256(chunk).hexdigest()
                    answer = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        Body=chunk, ChecksumSHA256=_b64(part_hex))
                    parts.append({"PartNumber": number, "ETag": answer["ETag"],
                                  "ChecksumSHA256": _b64(part_hex)})
                    number += 1
            finally:
                os.close(fd)
            if "sha256:" + whole.hexdigest() != digest:
                raise DigestMismatchError(f"{path} changed while it was uploaded")
            try:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts}, IfNoneMatch="*")
            except Exception as exc:
                if _code(exc) not in ("PreconditionFailed", "412"):
                    raise
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                   UploadId=upload_id)
            if isinstance(exc, DigestMismatchError | StoreError | InputError) \
                    or not isinstance(exc, Exception):
                raise
            raise self._error(exc, f"upload {path}") from exc

    # ----------------------------------------------------------------- reads

    def _get(self, digest: str) -> Any:
        key = self._key(digest)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise BlobNotFoundError(f"blob {digest} is missing from {self.description}") \
                    from exc
            raise self._error(exc, f"read blob {digest}") from exc

    def get_bytes(self, digest: str, *, max_size: int | None = None) -> bytes:
        """Read a blob (size checked before the download) and check its digest."""
        if max_size is not None:
            size = self.stat(digest)
            if size is None:
                raise BlobNotFoundError(f"blob {digest} is missing from {self.description}")
            if size > max_size:
                raise BlobCorruptError(f"blob {digest} is {size} bytes, over the "
                                       f"{max_size}-byte bound for its kind")
        body = self._get(digest)["Body"]
        h = hashlib.sha256()
        chunks = []
        total = 0
        try:
            for chunk in body.iter_chunks(_CHUNK):
                total += len(chunk)
                if max_size is not None and total > max_size:
                    raise BlobCorruptError(f"blob {digest} grew past the {max_size}-byte "
                                           "bound for its kind")
                h.update(chunk)
                chunks.append(chunk)
        except (BlobCorruptError, StoreError):
            raise
        except Exception as exc:
            raise self._error(exc, f"read blob {digest}") from exc
        finally:
            body.close()
        if "sha256:" + h.hexdigest() != digest:
            raise BlobCorruptError(f"blob {digest} in {self.description} does not match "
                                   "its digest")
        return b"".join(chunks)

    def copy_to(self, digest: str, dest: Path) -> int:
        """Stream a blob to ``dest`` through a checked temporary sibling."""
        if dest.exists() or dest.is_symlink():
            raise StoreError(f"cannot create {dest}: it exists")
        body = self._get(digest)["Body"]
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        temp = Path(name)
        h = hashlib.sha256()
        size = 0
        try:
            try:
                for chunk in body.iter_chunks(_CHUNK):
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                    size += len(chunk)
                os.fchmod(fd, 0o644)
            finally:
                os.close(fd)
                body.close()
            if "sha256:" + h.hexdigest() != digest:
                raise BlobCorruptError(f"blob {digest} in {self.description} does not match "
                                       "its digest")
            os.link(temp, dest)  # fails if dest appeared meanwhile: never overwrite
        except OSError as exc:
            raise StoreError(f"cannot copy blob {digest} to {dest}: {exc.strerror}") from exc
        except (BlobCorruptError, StoreError):
            raise
        except Exception as exc:
            raise self._error(exc, f"read blob {digest}") from exc
        finally:
            temp.unlink(missing_ok=True)
        return size

    def stat(self, digest: str) -> int | None:
        """The blob's size (a HEAD request), or None when absent."""
        key = self._key(digest)
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._error(exc, f"look up blob {digest}") from exc
        return int(answer["ContentLength"])

    def iter_digests(self) -> Iterator[str]:
        """Every stored blob's digest (listed page by page)."""
        base = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base)
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"]).rsplit("/", 1)[-1]
                    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                        yield f"sha256:{name}"
        except Exception as exc:
            raise self._error(exc, "list blobs") from exc


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code = error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(code) if code is not None else ""
    return ""


def _open_regular(path: Path) -> int:
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"not a regular file: {path}")
    return fd


def _hash_file(path: Path) -> tuple[str, int]:
    fd = _open_regular(path)
    h = hashlib.sha256()
    size = 0
    try:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while n := os.readv(fd, [buf]):
            h.update(view[:n])
            size += n
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return "sha256:" + h.hexdigest(), size


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK * 8))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_all(path: Path, size: int) -> bytes:
    fd = _open_regular(path)
    try:
        return _read_exactly(fd, size + 1)
    finally:
        os.close(fd)
