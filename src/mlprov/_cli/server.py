"""``mlprov server``: run the registry server; ``mlprov server token``: its API tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlprov._cli.output import echo, emit_json, note

TOKENS_SCHEMA = "https://mlprov.dev/schemas/server-tokens/v1"
TOKEN_SCHEMA = "https://mlprov.dev/schemas/server-token/v1"  # noqa: S105 - a schema URI

SERVER_EPILOG = """\b
Examples:
  mlprov server --registry /srv/mlprov --config server.toml
  mlprov server --registry postgresql+psycopg://mlprov@db/mlprov --key registry.key \\
      --host 0.0.0.0 --port 8443 --tls-cert server.crt --tls-key server.key
  mlprov server token create --registry /srv/mlprov --principal ci --role registrar --expires 30d
\b
Clients: --registry https://HOST (or MLPROV_REGISTRY) with MLPROV_TOKEN. /api/v1/health
and /api/v1/ready need no token; everything else does. SIGTERM stops gracefully.
Exit codes: 0 stopped cleanly, 2 usage, 3 the registry or the configuration is
unusable.
"""


def _registry(value: str | None) -> str:
    import os

    location = value or os.environ.get("MLPROV_REGISTRY")
    if not location:
        raise click.UsageError("--registry DIR|URL is required (or MLPROV_REGISTRY)")
    from mlprov.server._url import is_server_url

    if is_server_url(location):
        raise click.UsageError("--registry names the registry itself (a directory or a "
                               "database URL), not a server")
    return str(Path(location).expanduser()) if "://" not in location else location


@click.group(invoke_without_command=True, epilog=SERVER_EPILOG)
@click.option("--registry", "registry", metavar="DIR|URL",
              help="The registry to serve: its directory or database URL (default: "
                   "$MLPROV_REGISTRY).")
@click.option("--host", metavar="ADDRESS", help="Listen address (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen port (default 8080).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TLS certificate chain (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TLS private key (PEM).")
@click.option("--config", "config_file", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="server.toml: limits, roles, grants, groups, OIDC issuers.")
@click.option("--key", metavar="KEY", type=click.Path(exists=True, dir_okay=False),
              help="The registry's private key (a team registry; default "
                   "$MLPROV_REGISTRY_KEY). It stays on this host.")
@click.pass_context
def server(ctx: click.Context, registry: str | None, host: str | None, port: int | None,
           tls_cert: Path | None, tls_key: Path | None, config_file: Path | None,
           key: str | None) -> None:
    """Serve a registry over HTTPS to authenticated clients (docs/server.md)."""
    if ctx.invoked_subcommand is not None:
        return
    import logging
    import sys

    from mlprov.server._config import load_config
    from mlprov.server._run import key_file_warning, make_server, plain_http_warning
    from mlprov.server._state import ServerState

    location = _registry(registry)
    config = load_config(config_file)
    settings = config.server
    host = host or settings.host
    port = settings.port if port is None else port
    cert = tls_cert or (Path(settings.tls_cert) if settings.tls_cert else None)
    tls_key = tls_key or (Path(settings.tls_key) if settings.tls_key else None)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    warning = plain_http_warning(host, cert is not None)
    if warning:
        note(warning)
    state = ServerState(location, config, key=key)
    warning = key_file_warning(state.registry().location.key_file(key))
    if warning:
        note(warning)
    uv = make_server(state, config, host=host, port=port, tls_cert=cert, tls_key=tls_key)
    scheme = "https" if cert is not None else "http"
    note(f"serving registry {state.registry_id} at {scheme}://{host}:{port} "
         f"(config: {config.source})")
    stopped_by: list[int] = []
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, restores these handlers, then
    # raises the signal again: recorded here, so a clean stop exits 0.
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: stopped_by.append(number))
    uv.run()
    if stopped_by:
        note(f"stopped on {signal.Signals(stopped_by[0]).name}: requests in flight finished")


def _who() -> str:
    """Who is making a token: ``user@host`` of this shell (the server's host)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _token_store(registry: str | None) -> Any:
    from mlprov.registry import Registry
    from mlprov.server import token_store

    opened = Registry.open(_registry(registry))
    click.get_current_context().call_on_close(opened.close)
    store = token_store(opened)
    click.get_current_context().call_on_close(store.close)
    return store


@server.group()
def token() -> None:
    """Create, list and revoke the server's API tokens (stored as hashes)."""


@token.command("create")
@click.option("--registry", "registry", metavar="DIR|URL",
              help="The registry the server serves (default: $MLPROV_REGISTRY).")
@click.option("--principal", required=True, metavar="NAME",
              help="Who the token authenticates (recorded as the actor of every change).")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE",
              help="reader, registrar, promoter, reviewer, admin, or a role of server.toml "
                   "(repeatable).")
@click.option("--expires", default="90d", show_default=True, metavar="DURATION",
              help="30d, 12h, 90m, 2w, or never.")
@click.option("--description", metavar="TEXT", help="What the token is for.")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its record as JSON.")
def create(registry: str | None, principal: str, roles: tuple[str, ...], expires: str,
           description: str | None, as_json: bool) -> None:
    """Make a token; print it once on stdout (only its hash is stored)."""
    from mlprov.server import parse_expiry

    expires_at = parse_expiry(expires)
    store = _token_store(registry)
    secret, record = store.issue(principal=principal, roles=list(roles),
                                 created_by=_who(), expires_at=expires_at,
                                 description=description)
    if as_json:
        emit_json({"schema": TOKEN_SCHEMA, "token": secret, **record.to_json_dict()})
    else:
        echo(secret)
    note(f"token mlpt_{record.id} for {principal} ({', '.join(record.roles)}), expires "
         f"{record.expires_at or 'never'}: shown once, keep it secret (MLPROV_TOKEN)")


@token.command("list")
@click.option("--registry", "registry", metavar="DIR|URL",
              help="The registry the server serves (default: $MLPROV_REGISTRY).")
@click.option("--json", "as_json", is_flag=True, help="Print the tokens as JSON.")
def list_tokens(registry: str | None, as_json: bool) -> None:
    """List tokens (ids, principals, roles, state); never the secrets."""
    store = _token_store(registry)
    records = store.list()
    if as_json:
        emit_json({"schema": TOKENS_SCHEMA, "tokens": [r.to_json_dict() for r in records]})
        return
    for record in records:
        doc = record.to_json_dict()
        echo(f"{doc['id']}  {record.principal:<20} {','.join(record.roles):<20} "
             f"{doc['state']:<8} expires {record.expires_at or 'never'}")


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@click.option("--registry", "registry", metavar="DIR|URL",
              help="The registry the server serves (default: $MLPROV_REGISTRY).")
@click.option("--json", "as_json", is_flag=True, help="Print the revoked token as JSON.")
def revoke(token_id: str, registry: str | None, as_json: bool) -> None:
    """Revoke a token (mlpt_<id>); it stops working at once on every replica."""
    store = _token_store(registry)
    record = store.revoke(token_id)
    if as_json:
        emit_json({"schema": TOKEN_SCHEMA, **record.to_json_dict()})
    else:
        echo(f"mlpt_{record.id}")
    note(f"revoked mlpt_{record.id} of {record.principal} at {record.revoked_at}")
