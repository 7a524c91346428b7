"""``mlprov.server``: one authenticated HTTP server in front of a registry, and its client.

A team runs ``mlprov server --registry DIR|URL`` on the one host that holds the
registry's key and database; every other machine (CLI, Python, CI, serving)
reaches the registry through it with a bearer token (``MLPROV_TOKEN``: an API
token from ``mlprov server token create``, or an OIDC token such as GitHub
Actions'), and still trusts nothing the server says without verifying it with
the registry's public key, pinned locally::

    from mlprov.server import RemoteRegistry

    with RemoteRegistry.open("https://mlprov.example.com") as registry:
        model = registry.load("models:/credit-risk@production")   # verified here

    import mlprov
    mlprov.load("models:/credit-risk@production",
                registry="https://mlprov.example.com")            # the same

The server side (:func:`create_app`, :func:`serve`) needs the ``server`` extra
(``pip install 'mlprov[server]'``: starlette, uvicorn, PyJWT); importing this
package does not import them, and a client needs none of them. See
docs/server.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.arguments import (
    BOOL,
    PATH,
    TEXT,
    TRUST,
    checked,
    either,
    instance,
    int_in,
    lazy_instance,
    optional,
)
from mlprov.server._client import RemoteRegistry
from mlprov.server._config import BUILTIN_ROLES, ServerConfig, load_config
from mlprov.server._errors import (
    AuthenticationError,
    MalformedResponseError,
    PermissionDeniedError,
    ServerError,
    ServerUnavailableError,
)
from mlprov.server._tokens import TokenRecord, TokenStore, parse_expiry
from mlprov.server._transport import TOKEN_ENV
from mlprov.server._url import is_server_url, parse_server_url

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mlprov.registry import LoadedDeployment, LoadedModel, Registry
    from mlprov.trust import Trust

__all__ = [
    "BUILTIN_ROLES",
    "TOKEN_ENV",
    "AuthenticationError",
    "MalformedResponseError",
    "PermissionDeniedError",
    "RemoteRegistry",
    "ServerConfig",
    "ServerError",
    "ServerUnavailableError",
    "TokenRecord",
    "TokenStore",
    "create_app",
    "is_server_url",
    "load",
    "load_config",
    "open_registry",
    "parse_expiry",
    "parse_server_url",
    "token_store",
]


def open_registry(location: Path | str | None = None, *, key: Path | str | None = None,
                  token: str | None = None, trust: Trust | Path | str | None = None
                  ) -> Registry | RemoteRegistry:
    """Open a registry wherever it is: a directory, a database URL, or a server.

    ``location`` defaults to ``$MLPROV_REGISTRY`` (then ``$MLPROV_HOME``,
    ``~/.mlprov``). An ``https://`` URL (``http://`` on loopback) opens a
    :class:`RemoteRegistry` with ``token`` (default ``$MLPROV_TOKEN``).

    Example:
        registry = mlprov.server.open_registry("https://mlprov.example.com")
    """
    import os

    from mlprov.registry import Registry

    if location is None:
        location = os.environ.get("MLPROV_REGISTRY") or None
    if is_server_url(location):
        assert isinstance(location, str)
        return RemoteRegistry.open(location, token=token, trust=trust)
    return Registry.open(location, key=key)


@checked(uri=TEXT, registry=optional(either(
    lazy_instance("mlprov.registry", "Registry", "a mlprov.registry.Registry"),
    instance(RemoteRegistry), PATH)), trust=optional(TRUST), min_seq=optional(int_in(0)),
    head_file=optional(PATH), allow_archived=BOOL, token=optional(TEXT))
def load(uri: str, registry: Registry | RemoteRegistry | Path | str | None = None, *,
         trust: Trust | Path | str | None = None, min_seq: int | None = None,
         head_file: Path | str | None = None, allow_archived: bool = False,
         token: str | None = None) -> LoadedModel | LoadedDeployment:
    """:func:`mlprov.load` for registries anywhere, servers included (``mlprov.load``).

    With a server URL (``registry=`` or ``$MLPROV_REGISTRY``), the version is
    resolved, verified and downloaded here (decision, audit chain, evidence,
    every file's digest) and cached by digest under ``$MLPROV_CACHE_HOME``.

    Example:
        model = mlprov.load("models:/credit-risk@production",
                            registry="https://mlprov.example.com")
    """
    import os

    from mlprov import registry as local

    location: Any = registry
    if location is None:
        location = os.environ.get("MLPROV_REGISTRY") or None
    def take(remote: RemoteRegistry, pinned: Trust | None) -> LoadedModel | LoadedDeployment:
        if uri.startswith("deployments:/"):
            if allow_archived:
                from mlprov.errors import InputError

                raise InputError("allow_archived is for models:/ URIs")
            return remote.load_deployment(uri, trust=pinned, min_seq=min_seq,
                                          head_file=head_file)
        return remote.load(uri, trust=pinned, min_seq=min_seq, head_file=head_file,
                           allow_archived=allow_archived)

    if isinstance(location, RemoteRegistry):
        return take(location, _trust(trust))
    if is_server_url(location):
        with RemoteRegistry.open(location, token=token, trust=trust) as remote:
            return take(remote, None)
    assert not isinstance(registry, RemoteRegistry)
    return local.load(uri, registry, trust=trust, min_seq=min_seq, head_file=head_file,
                      allow_archived=allow_archived)


def _trust(trust: Trust | Path | str | None) -> Trust | None:
    from mlprov.trust import Trust as _Trust
    from mlprov.trust import load_trust

    return trust if isinstance(trust, _Trust) or trust is None else load_trust(Path(trust))


def token_store(registry: Registry) -> TokenStore:
    """The server's token tables in ``registry``'s database (created if missing).

    Example:
        with Registry.open("/srv/mlprov") as registry:
            token, record = token_store(registry).issue(principal="ci", roles=["registrar"],
                                                        created_by="admin", expires_at=None)
    """
    from mlprov.server._state import token_store_for

    store = token_store_for(registry)
    store.create()
    return store


def create_app(registry: str | Path, config: ServerConfig | None = None, *,
               key: str | Path | None = None, tls: bool = False) -> Starlette:
    """The server's ASGI application for the registry at ``registry`` (needs the extra).

    Example:
        app = create_app("/srv/mlprov", load_config("server.toml"))   # uvicorn app
    """
    from mlprov.server._app import create_app as make
    from mlprov.server._state import ServerState

    state = ServerState(str(registry), config or ServerConfig(),
                        key=str(key) if key is not None else None)
    return make(state, tls=tls)
