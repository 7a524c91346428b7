"""Server fixtures: a real uvicorn server on a loopback ephemeral port, real tokens.

The registry fixtures (keys, attested models, reviews; PostgreSQL and S3
servers) are the registry suite's own.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlprov.registry import Registry
from mlprov.server import RemoteRegistry, ServerConfig, token_store
from tests.registry.conftest import (  # noqa: F401 - fixtures
    _attested_cache,
    _no_fsync,
    approve,
    environment_file,
    keys,
    make_model,
    postgres_server,
    postgres_url,
    s3_env,
    s3_server,
    s3_url,
)
from tests.server.proxy import Proxy

ROLES = ("reader", "registrar", "promoter", "reviewer", "admin")


@dataclass
class Served:
    """A running server over a registry, with a token per role."""

    url: str
    registry: str
    config: ServerConfig
    uvicorn: Any
    thread: threading.Thread
    tokens: dict[str, str] = field(default_factory=dict)
    cache_root: Path | None = None

    def token(self, principal: str, *roles: str, expires: str | None = None) -> str:
        from mlprov.server import parse_expiry

        with Registry.open(self.registry) as reg:
            store = token_store(reg)
            secret, _ = store.issue(principal=principal, roles=list(roles), created_by="test",
                                    expires_at=parse_expiry(expires) if expires else None)
            store.close()
        return secret

    def client(self, role: str = "admin", *, token: str | None = None, **kwargs: Any
               ) -> RemoteRegistry:
        return RemoteRegistry.open(self.url, token=token or self.tokens[role], **kwargs)


def start_server(registry: str, config: ServerConfig, *, oidc_fetch: Any = None,
                 tls: tuple[Path, Path] | None = None, key: str | None = None
                 ) -> tuple[Any, threading.Thread, str]:
    from mlprov.server._run import make_server
    from mlprov.server._state import ServerState

    state = ServerState(registry, config, oidc_fetch=oidc_fetch, key=key)
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (else 40 ms per answer)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The server `mlprov server` runs (same uvicorn settings), on our loopback socket.
    server = make_server(state, config, host="127.0.0.1", port=port,
                         tls_cert=tls[0] if tls else None, tls_key=tls[1] if tls else None)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    scheme = "https" if tls else "http"
    return server, thread, f"{scheme}://127.0.0.1:{port}"


def stop_server(server: Any, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture
def serve(tmp_path: Path, keys: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
          ) -> Iterator[Callable[..., Served]]:
    """Start servers (stopped after the test): ``serve(config=..., registry=...)``."""
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "client-cache"))
    monkeypatch.delenv("MLPROV_TOKEN", raising=False)
    monkeypatch.delenv("MLPROV_REGISTRY", raising=False)
    running: list[tuple[Any, threading.Thread]] = []
    counter = iter(range(100))

    def start(config: ServerConfig | None = None, *, registry: str | None = None,
              oidc_fetch: Any = None, tls: tuple[Path, Path] | None = None,
              key: str | None = None) -> Served:
        if registry is None:
            path = tmp_path / f"registry{next(counter)}"
            Registry.init(path, trust=keys.trust).close()
            registry = str(path)
        config = config or ServerConfig()
        server, thread, url = start_server(registry, config, oidc_fetch=oidc_fetch, tls=tls,
                                           key=key)
        running.append((server, thread))
        served = Served(url=url, registry=registry, config=config, uvicorn=server,
                        thread=thread)
        for role in ROLES:
            served.tokens[role] = served.token(f"{role}-user", role)
        return served

    yield start
    for server, thread in running:
        stop_server(server, thread)


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    """One server over a fresh embedded registry, default configuration."""
    return serve()


#: The proxied server's configuration: no alias protected (a promoter may set any).
PROTECTED = ServerConfig({"authz": {"protected_aliases": []}})


@pytest.fixture
def proxied(serve: Callable[..., Served], make_model: Any, approve: Any,  # noqa: F811
            ) -> Iterator[dict[str, Any]]:
    """v1 and v2 of credit-risk in Production; @production moved v1 -> v2; a proxy."""
    served = serve(PROTECTED)
    admin = served.client("admin")
    models = []
    for n in (1, 2):
        m = make_model()
        models.append(m)
        admin.register(m.model, evidence=m.evidence)
        admin.promote("credit-risk", n, to="Staging", reason="r")
        served.client("reviewer").add_review("credit-risk", n, approve(m))
        admin.promote("credit-risk", n, to="Production", reason="r")
        admin.set_alias("credit-risk", "production", n, reason="r")
    admin.close()
    proxy = Proxy(served.url)
    yield {"served": served, "models": models, "proxy": proxy,
           "client": lambda role="reader", **kw: RemoteRegistry.open(
               proxy.url, token=served.tokens[role], **kw)}
    proxy.stop()
