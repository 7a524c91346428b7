"""The S3 blob store against a real S3 server (SeaweedFS ``weed mini``, auth on).

The contract every blob store keeps is in ``test_stores.py`` (run over S3 too);
these are the S3-only behaviours: write-once keys, multipart uploads, tampering
in the bucket, bounds checked before a download, and clear errors.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

import pytest

from mlprov.errors import DigestMismatchError, InputError
from mlprov.registry._s3 import MIN_PART_SIZE, S3BlobStore, make_client, parse_s3_url
from mlprov.registry.interface import BlobCorruptError, BlobNotFoundError, StoreError
from tests.s3server import S3Server


def _key(store: S3BlobStore, digest: str) -> str:
    return f"{store.prefix}/sha256/{digest[7:9]}/{digest[7:]}"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(s3_url: str) -> S3BlobStore:
    return S3BlobStore.from_url(s3_url + "/team/blobs")


def test_url_forms():
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://my.bucket-1/a/b/") == ("my.bucket-1", "a/b")
    for bad in ("http://bucket/x", "s3://Bucket/x", "s3://b/x", "s3://bucket/a//b",
                "s3://bucket/../x", "s3://bucket/x?y=1", "s3://user@bucket/x"):
        with pytest.raises(InputError):
            parse_s3_url(bad)


def test_keys_are_content_addressed_under_the_prefix(store: S3BlobStore, s3_env: S3Server):
    info = store.put_bytes(b"hello")
    head = s3_env.client().head_object(Bucket=store.bucket, Key=_key(store, info.digest),
                                       ChecksumMode="ENABLED")
    assert head["ContentLength"] == 5
    assert head["ChecksumSHA256"]  # the server checked and kept the SHA-256 sent


def test_a_second_put_is_a_no_op_and_the_first_copy_stays(store: S3BlobStore,
                                                          s3_env: S3Server,
                                                          monkeypatch: pytest.MonkeyPatch):
    info = store.put_bytes(b"once")
    client = s3_env.client()
    etag = client.head_object(Bucket=store.bucket, Key=_key(store, info.digest))["ETag"]
    assert store.put_bytes(b"once") == info
    # Even past the HEAD (a lost race), the conditional PUT's 412 is "already stored".
    monkeypatch.setattr(store, "stat", lambda _digest: None)
    assert store.put_bytes(b"once") == info
    assert client.head_object(Bucket=store.bucket, Key=_key(store, info.digest))["ETag"] == etag
    assert list(store.iter_digests()) == [info.digest]


def test_concurrent_puts_leave_exactly_the_right_bytes(s3_url: str, tmp_path: Path):
    data = os.urandom(MIN_PART_SIZE + 12345)  # multipart, so the race is at Complete
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    stores = [S3BlobStore.from_url(s3_url, part_size=MIN_PART_SIZE) for _ in range(4)]
    for each in stores:  # every writer gets past its HEAD: all race to the condition
        each.stat = lambda _digest: None  # type: ignore[method-assign]
    start = threading.Barrier(len(stores))
    results: list[object] = []

    def put(each: S3BlobStore) -> None:
        start.wait()
        try:
            results.append(each.put_file(source).digest)
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=put, args=(each,)) for each in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [_sha(data)] * len(stores)
    reader = S3BlobStore.from_url(s3_url)
    assert reader.get_bytes(_sha(data)) == data
    assert list(reader.iter_digests()) == [_sha(data)]
    uploads = reader._client.list_multipart_uploads(Bucket=reader.bucket,
                                                   Prefix=reader.prefix)
    assert uploads.get("Uploads", []) == []  # the losers' parts were aborted


def test_multipart_upload_and_verified_download(s3_url: str, tmp_path: Path,
                                                s3_env: S3Server):
    store = S3BlobStore.from_url(s3_url, part_size=MIN_PART_SIZE, concurrency=2)
    data = os.urandom(11 << 20)  # three parts: 5 + 5 + 1 MiB
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    info = store.put_file(source, expected=_sha(data))
    assert (info.digest, info.size) == (_sha(data), len(data))
    head = s3_env.client().head_object(Bucket=store.bucket, Key=_key(store, info.digest))
    assert head["ETag"].strip('"').endswith("-3")  # really a three-part upload
    out = tmp_path / "out" / "big.bin"
    out.parent.mkdir()
    assert store.copy_to(info.digest, out) == len(data)
    assert out.read_bytes() == data
    assert sorted(p.name for p in out.parent.iterdir()) == ["big.bin"]  # no temp file left
    assert store.get_bytes(info.digest) == data
    assert store.put_bytes(data) == info  # multipart from memory too (here: already there)


def test_multipart_from_bytes(s3_url: str):
    store = S3BlobStore.from_url(s3_url, part_size=MIN_PART_SIZE)
    data = os.urandom(MIN_PART_SIZE + 1)
    info = store.put_bytes(data)
    assert store.get_bytes(info.digest) == data


def test_a_file_changed_between_hashing_and_upload_is_refused(s3_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    store = S3BlobStore.from_url(s3_url, part_size=MIN_PART_SIZE)
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(2 * MIN_PART_SIZE + 7))
    original = store._read_exact

    def read_then_change(fd: int, offset: int, length: int, path: Path) -> bytes:
        data = original(fd, offset, length, path)
        if offset == 0:  # another process rewrites the file during the upload
            with open(source, "r+b") as f:
                f.seek(MIN_PART_SIZE + 1)
                f.write(b"changed")
        return data

    monkeypatch.setattr(store, "_read_exact", read_then_change)
    with pytest.raises(DigestMismatchError):
        store.put_file(source)
    assert list(store.iter_digests()) == []
    assert store._client.list_multipart_uploads(
        Bucket=store.bucket, Prefix=store.prefix).get("Uploads", []) == []


def test_expected_digest_mismatch_uploads_nothing(store: S3BlobStore, tmp_path: Path):
    source = tmp_path / "f"
    source.write_bytes(b"abc")
    with pytest.raises(DigestMismatchError, match="changed while it was stored"):
        store.put_file(source, expected=_sha(b"abd"))
    assert list(store.iter_digests()) == []


@pytest.mark.parametrize("size", [100, MIN_PART_SIZE + 100])
def test_tampering_in_the_bucket_is_detected(s3_url: str, s3_env: S3Server,
                                             tmp_path: Path, size: int):
    store = S3BlobStore.from_url(s3_url, part_size=MIN_PART_SIZE)
    data = os.urandom(size)
    info = store.put_bytes(data)
    tampered = bytearray(data)
    tampered[size // 2] ^= 1
    # Someone with write access overwrites the key without the write-once condition.
    s3_env.client().put_object(Bucket=store.bucket, Key=_key(store, info.digest),
                               Body=bytes(tampered))
    assert store.stat(info.digest) == size  # stat does not read: same size, no alarm
    with pytest.raises(BlobCorruptError, match="does not match its digest"):
        store.get_bytes(info.digest)
    out = tmp_path / "out.bin"
    with pytest.raises(BlobCorruptError):
        store.copy_to(info.digest, out)
    assert list(tmp_path.iterdir()) == []  # neither dest nor a temp file


def test_max_size_is_refused_before_the_body_is_read(store: S3BlobStore,
                                                     monkeypatch: pytest.MonkeyPatch):
    info = store.put_bytes(b"x" * 1000)
    real_get = store._client.get_object
    reads: list[int] = []

    def get_object(**kwargs: object) -> dict[str, object]:
        response = real_get(**kwargs)
        body = response["Body"]
        real_read = body.read

        def read(*args: object) -> bytes:
            reads.append(1)
            return real_read(*args)  # type: ignore[no-any-return]

        body.read = read
        return response  # type: ignore[no-any-return]

    monkeypatch.setattr(store._client, "get_object", get_object)
    with pytest.raises(BlobCorruptError, match="over the 999-byte bound"):
        store.get_bytes(info.digest, max_size=999)
    assert reads == []
    assert store.get_bytes(info.digest, max_size=1000) == b"x" * 1000


def test_copy_to_never_replaces_an_existing_file(store: S3BlobStore, tmp_path: Path):
    info = store.put_bytes(b"new")
    dest = tmp_path / "dest"
    dest.write_bytes(b"old")
    with pytest.raises(StoreError, match="File exists"):
        store.copy_to(info.digest, dest)
    assert dest.read_bytes() == b"old"
    with pytest.raises(BlobNotFoundError):
        store.copy_to(_sha(b"absent"), tmp_path / "absent")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


def test_wrong_credentials_are_one_clear_line(s3_url: str,
                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = S3BlobStore.from_url(s3_url)
    for attempt in (lambda: store.put_bytes(b"x"), lambda: store.get_bytes(_sha(b"x"))):
        with pytest.raises(StoreError) as caught:
            attempt()
        message = str(caught.value)
        assert "S3 refused access" in message and "\n" not in message
        assert "AWS_SECRET_ACCESS_KEY" in caught.value.diagnostics()


def test_missing_bucket_is_one_clear_line(s3_env: S3Server):
    # Reads and listings: AWS answers PUT to a missing bucket the same way, but
    # SeaweedFS creates the bucket on a PUT by an admin identity, so a PUT is not tested.
    store = S3BlobStore.from_url("s3://no-such-bucket-mlprov/x")
    for attempt in (lambda: store.get_bytes(_sha(b"x")), lambda: list(store.iter_digests())):
        with pytest.raises(StoreError, match="bucket 'no-such-bucket-mlprov' does not exist") \
                as caught:
            attempt()
        assert "create the bucket" in caught.value.diagnostics()


def test_unreachable_endpoint_is_a_store_error(monkeypatch: pytest.MonkeyPatch, s3_env: S3Server):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = S3BlobStore.from_url("s3://bucket/x")
    with pytest.raises(StoreError, match="S3 request failed") as caught:
        store.stat(_sha(b"x"))
    assert "AWS_ENDPOINT_URL" in caught.value.diagnostics()


def test_client_comes_from_the_standard_aws_variables(s3_env: S3Server,
                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    client = make_client()
    assert client.meta.endpoint_url == s3_env.endpoint
    assert client.meta.region_name == "eu-west-3"
    assert client.meta.config.s3["addressing_style"] == "path"


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    with pytest.raises(InputError) as caught:
        make_client()
    assert "boto3" in str(caught.value)
    assert caught.value.diagnostics() == "pip install 'mlprov[team]'"


def test_importing_mlprov_registry_does_not_import_boto3():
    import subprocess

    code = ("import sys, mlprov.registry, mlprov.registry._s3; "
            "print('boto3' in sys.modules, 'botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.split() == ["False", "False"]


def test_a_registry_over_s3_registers_promotes_and_pulls(s3_url: str, keys, make_model,
                                                         tmp_path: Path):
    """The registry with its blobs in S3 (wired by hand until the lead's store wiring lands)."""
    from mlprov.registry import Registry, Stage

    local = Registry.init(tmp_path / "registry", trust=keys.trust)
    store = S3BlobStore.from_url(s3_url + "/blobs")
    for digest in local.blobs.iter_digests():  # init's snapshots (trust, policies, config)
        store.put_bytes(local.blobs.get_bytes(digest))
    registry = Registry(local.home, local.metadata, store)
    try:
        m = make_model()
        v1 = registry.register(m.model, evidence=m.evidence)
        assert v1.version == 1
        assert registry.promote("credit-risk", 1, to="Staging", reason="eval ok").allowed
        assert registry.get_version("credit-risk", 1).stage is Stage.STAGING
        pulled = registry.pull("models:/credit-risk/Staging", tmp_path / "out")
        assert pulled.files == 2
        assert (tmp_path / "out" / "weights.safetensors").read_bytes() == \
            (m.model / "weights.safetensors").read_bytes()
        # The model's files went to S3, not to the local directory.
        weights = "sha256:" + hashlib.sha256(
            (m.model / "weights.safetensors").read_bytes()).hexdigest()
        assert store.stat(weights) is not None and local.blobs.stat(weights) is None
    finally:
        registry.close()


def test_an_empty_blob_round_trips(store: S3BlobStore, tmp_path: Path):
    info = store.put_bytes(b"")  # no byte 0 to take a range from
    assert (info.size, store.stat(info.digest), store.get_bytes(info.digest)) == (0, 0, b"")
    assert store.copy_to(info.digest, tmp_path / "empty") == 0
    assert (tmp_path / "empty").read_bytes() == b""
