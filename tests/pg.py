"""A throwaway PostgreSQL server for the tests: one per session, one database per test.

Started as Debian's packaging allows on a CI machine (root): ``initdb`` and
``pg_ctl`` run as the ``postgres`` user through ``runuser``, the data directory
sits under ``/tmp`` (every parent must be traversable by ``postgres``), the
server listens on a random free port on 127.0.0.1 with its socket in that
directory (``-k``: Debian's ``/var/run/postgresql`` may be missing or taken),
and durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``)
because nothing here must survive a crash. About 0.6 s for the whole session.

``MLPROV_TEST_POSTGRES_URL`` names an existing server instead (its role needs
CREATEDB); each test still gets a database of its own, dropped afterwards.
Without PostgreSQL binaries the PostgreSQL tests skip, except under ``CI=true``,
where they fail: CI installs Debian's ``postgresql`` (see ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

URL_ENV = "MLPROV_TEST_POSTGRES_URL"
_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here (the reason is the message)."""


def pg_bin() -> Path | None:
    """The newest Debian PostgreSQL bin directory, else the one holding ``initdb`` on PATH."""
    candidates = sorted(Path("/").glob(_BIN_GLOB.lstrip("/")),
                        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()])
    for directory in reversed(candidates):
        if (directory / "initdb").is_file():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A server the tests may create databases on; ``url`` names its ``postgres`` database."""

    url: str
    _stop: list[list[str]] = field(default_factory=list)
    _cleanup: Path | None = None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, empty database for one test; its SQLAlchemy URL. Dropped afterwards."""
        import psycopg

        name = f"mlprov_test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self._plain_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            try:
                # A natural-language default collation ('B' after 'a'), as a production
                # database may have: mlprov's own columns must still sort by bytes.
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8 '
                              "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
            except psycopg.Error:  # a server without ICU (or before 15)
                admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self._url_of(name)
        finally:
            with psycopg.connect(self._plain_url(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _plain_url(self) -> str:
        return self.url.replace("postgresql+psycopg://", "postgresql://", 1)

    def _url_of(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def stop(self) -> None:
        """Stop a server this module started and remove its files."""
        for command in self._stop:
            subprocess.run(command, check=False, capture_output=True, timeout=60)
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)


def _as_postgres(command: list[str]) -> list[str]:
    """Run ``command`` as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and `runuser` (util-linux) is missing")
    return [runuser, "-u", "postgres", "--", *command]


def start_server(*, durable: bool = False) -> PostgresServer:
    """Use ``$MLPROV_TEST_POSTGRES_URL``, else start a throwaway server.

    ``durable`` keeps PostgreSQL's defaults (``fsync``, ``synchronous_commit`` and
    ``full_page_writes`` on), for benchmarks that time commits; the tests leave it off.

    Raises:
        PostgresUnavailable: no binaries, no ``postgres`` user, or the server did not start.
    """
    given = os.environ.get(URL_ENV)
    if given:
        return PostgresServer(url=given)
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable("psycopg is not installed (pip install -e '.[test]')") from exc
    bindir = pg_bin()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL is not installed (no initdb; Debian: apt-get "
                                  "install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="mlprov-pg-", dir="/tmp" if Path("/tmp").is_dir()
                                 else None))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(base, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no `postgres` user") from exc
        os.chown(base, user.pw_uid, user.pw_gid)
    data, log = base / "data", base / "log"
    try:
        subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                     "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
                                     "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {_output(exc)}") from exc
    pg_ctl = str(bindir / "pg_ctl")
    for _attempt in range(3):  # a random port may be taken between probe and start
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base}"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        start = _as_postgres([pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60",
                              "-o", options, "start"])
        result = subprocess.run(start, check=False, capture_output=True, timeout=120)
        if result.returncode == 0:
            server = PostgresServer(url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
            server._stop.append(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w",
                                              "stop"]))
            server._cleanup = base
            return server
    message = log.read_text(errors="replace")[-500:] if log.is_file() else ""
    shutil.rmtree(base, ignore_errors=True)
    raise PostgresUnavailable(f"pg_ctl start failed: {message.strip()}")


def _output(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return (exc.stderr or b"").decode(errors="replace").strip()[-500:]
    return str(exc)
