"""Helpers for tests that reach a registry on either backend: the CLI against it, and a
blob changed behind the store's back (a file on disk, or an S3 object overwritten)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from click.testing import Result

from mlprov.registry import Registry
from mlprov.registry._blobs import LocalBlobStore


def cli_for(run_cli: Callable[..., Result], registry: Registry) -> Callable[..., Result]:
    """Run the CLI with ``--registry`` naming ``registry`` (a directory or a database URL)."""
    def run(*args: str) -> Result:
        return run_cli(*args, "--registry", registry.address)
    return run


def tamper_blob(registry: Registry, digest: str, edit: Callable[[bytes], bytes]) -> None:
    """Replace a stored blob's bytes under the same digest, as an attacker with write access."""
    blobs: Any = registry.blobs
    if isinstance(blobs, LocalBlobStore):
        path = registry.home / "blobs" / "sha256" / digest[7:9] / digest[7:]
        path.chmod(0o644)
        path.write_bytes(edit(path.read_bytes()))
        return
    data = edit(blobs.get_bytes(digest))
    # Overwritten without the store's write-once condition (see test_s3.py).
    blobs._client.put_object(Bucket=blobs.bucket, Key=blobs._key(digest), Body=data)
