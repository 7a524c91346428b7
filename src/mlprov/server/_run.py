"""Running the server: uvicorn, TLS, graceful shutdown, the plain-HTTP warning.

uvicorn handles SIGTERM and SIGINT: it stops accepting connections, lets
requests in flight finish for up to ``graceful_timeout`` seconds, then runs the
application's shutdown (every registry and the token store closed, temporary
uploads removed).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.errors import InputError
from mlprov.server._url import is_loopback

if TYPE_CHECKING:
    from mlprov.server._config import ServerConfig
    from mlprov.server._state import ServerState

__all__ = ["key_file_warning", "make_server", "plain_http_warning"]

log = logging.getLogger("mlprov.server")


def plain_http_warning(host: str, tls: bool) -> str | None:
    """The warning for a server without TLS on a non-loopback address (else None)."""
    if tls or is_loopback(host):
        return None
    return (f"warning: serving plain HTTP on {host}: bearer tokens and models cross the "
            "network unencrypted; pass --tls-cert and --tls-key (or put a TLS proxy in front "
            "and listen on 127.0.0.1)")


def key_file_warning(path: Path | None) -> str | None:
    """The warning for a registry signing key others than its owner may read (else None).

    The key signs every decision and head clients verify: only the server's
    account should read it (mode 0600, as ``registry init`` writes it).
    """
    if path is None:
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (f"warning: the registry's signing key {path} is readable by others than its "
            f"owner (mode {mode & 0o777:o}); `chmod 600` it: whoever reads it can sign "
            "decisions clients accept")


def make_server(state: ServerState, config: ServerConfig, *, host: str, port: int,
                tls_cert: Path | None = None, tls_key: Path | None = None) -> Any:
    """A ``uvicorn.Server`` serving the app over ``state`` (run it with ``.run()``).

    Raises:
        InputError: only one of ``tls_cert`` and ``tls_key``, or one is unreadable.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise InputError("mlprov server needs uvicorn and starlette, which are not "
                         "installed", hint="pip install 'mlprov[server]'") from exc
    from mlprov.server._app import create_app
    from mlprov.server._slowclients import header_deadline_protocol

    if (tls_cert is None) != (tls_key is None):
        raise InputError("TLS needs both --tls-cert and --tls-key")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise InputError(f"TLS file not found: {path}")
    tls = tls_cert is not None
    app = create_app(state, tls=tls)
    settings = config.server
    uv_config = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, server_header=False,
        date_header=True, proxy_headers=False, lifespan="on",
        timeout_keep_alive=int(settings.keep_alive),
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        limit_concurrency=256, h11_max_incomplete_event_size=64 * 1024,
        http=header_deadline_protocol(settings.header_timeout),
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None)
    return uvicorn.Server(uv_config)
