"""The URIs of the MLflow plugin: which registry a store URI names, which version a download names.

Nothing here imports MLflow. Every URI comes from MLflow (a user's environment, a
request to ``mlflow server``, a version's ``source``) and is parsed as a whole:

- **store URIs** (``MLFLOW_REGISTRY_URI``, ``mlflow server --registry-store-uri``):
  ``mlprov://PATH`` is a registry directory (everything after ``mlprov://``, so
  ``mlprov:///abs/dir`` and ``mlprov://relative/dir``; ``mlprov://`` alone is mlprov's
  default, ``$MLPROV_REGISTRY``, else ``$MLPROV_HOME``, else ``~/.mlprov``);
  ``mlprov+postgresql://USER@HOST/DB`` (also ``mlprov+postgresql+psycopg://``,
  ``mlprov+postgres://``) and ``mlprov+sqlite:///PATH`` are a team registry's database
  (the URL without ``mlprov+``, as ``--registry`` takes it); ``mlprov+https://HOST`` is a
  registry behind ``mlprov server`` (``mlprov+http://`` on loopback only; the token in
  ``$MLPROV_TOKEN``);
- **verified-download URIs**: ``mlprov-verified://REGISTRY-ID/NAME/VERSION[/PATH]``, the
  ``source`` of every version the store hands out. It names the registry by its id, not
  by where it is: the downloading process opens the registry it is configured for
  (see :func:`VersionRef.check_registry`) and refuses another one, so a tracking server
  cannot send a loader to a registry of its choosing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from mlprov._internal.names import check_name, parse_version
from mlprov.errors import InputError

__all__ = [
    "DATABASE_SCHEMES",
    "SERVER_SCHEMES",
    "STORE_SCHEME",
    "VERIFIED_SCHEME",
    "StoreKind",
    "StoreLocation",
    "VersionRef",
    "check_verified_root",
    "is_store_uri",
    "open_location",
    "parse_store_uri",
    "parse_verified_uri",
    "verified_uri",
]

#: ``MLFLOW_REGISTRY_URI=mlprov://PATH``: a registry directory.
STORE_SCHEME: Final = "mlprov"
#: Team registries: the scheme names the database; the URL is the rest.
DATABASE_SCHEMES: Final = {
    "mlprov+postgresql": "postgresql",
    "mlprov+postgresql+psycopg": "postgresql+psycopg",
    "mlprov+postgres": "postgres",
    "mlprov+sqlite": "sqlite",
}
#: ``mlprov server`` over HTTPS (``mlprov+http`` only for a server on this machine).
SERVER_SCHEMES: Final = {"mlprov+https": "https", "mlprov+http": "http"}
#: The scheme of the verified-download artefact repository.
VERIFIED_SCHEME: Final = "mlprov-verified"

_MAX_URI = 4096
_REGISTRY_ID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_STORE_HINT = ("use mlprov://PATH (a registry directory), mlprov+postgresql://USER@HOST/DB "
               "or mlprov+sqlite:///PATH (a team registry)")


class StoreKind(Enum):
    """What a store URI names."""

    DIRECTORY = "directory"
    DATABASE = "database"
    SERVER = "server"


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store URI: a registry directory (None: mlprov's default), a database, a server."""

    kind: StoreKind
    address: str | None

    def describe(self) -> str:
        """Where it is, for messages: a database URL without its password."""
        if self.address is None:
            return "the default registry ($MLPROV_REGISTRY, $MLPROV_HOME or ~/.mlprov)"
        if self.kind is StoreKind.DATABASE:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                return make_url(self.address).render_as_string(hide_password=True)
            except ArgumentError:
                return "a database URL that does not parse"
        return self.address


def _check_text(uri: object, what: str) -> str:
    if not isinstance(uri, str) or not uri:
        raise InputError(f"not a {what}: {uri!r}")
    if len(uri) > _MAX_URI:
        raise InputError(f"{what} longer than {_MAX_URI} characters")
    if not uri.isprintable() or "\\" in uri:
        raise InputError(f"{what} holds a control character or a backslash: {uri!r}")
    return uri


def _scheme(uri: str) -> str:
    scheme, sep, _ = uri.partition("://")
    return scheme.lower() if sep else ""


def is_store_uri(uri: object) -> bool:
    """Whether ``uri`` is one of the plugin's store URIs (any scheme it registers)."""
    if not isinstance(uri, str):
        return False
    scheme = _scheme(uri)
    return scheme == STORE_SCHEME or scheme in DATABASE_SCHEMES or scheme in SERVER_SCHEMES


def parse_store_uri(uri: str) -> StoreLocation:
    """Parse a registry store URI (see the module docstring).

    Raises:
        InputError: another scheme, or a URI that cannot name a registry.
    """
    text = _check_text(uri, "mlprov registry URI")
    scheme = _scheme(text)
    rest = text[len(scheme) + 3:] if scheme else ""
    if scheme == STORE_SCHEME:
        if "?" in rest or "#" in rest:
            raise InputError(f"mlprov registry URI {text!r} has a query or fragment",
                             hint=_STORE_HINT)
        return StoreLocation(StoreKind.DIRECTORY, rest or None)
    if scheme in DATABASE_SCHEMES:
        if not rest:
            raise InputError(f"mlprov registry URI {scheme}:// names no database",
                             hint=_STORE_HINT)
        return StoreLocation(StoreKind.DATABASE, f"{DATABASE_SCHEMES[scheme]}://{rest}")
    if scheme in SERVER_SCHEMES:
        host = rest.split("/", 1)[0]
        if not host or "@" in host:
            raise InputError(f"mlprov registry URI {text!r} names no server host (user "
                             "information is not allowed in it)", hint=_STORE_HINT)
        return StoreLocation(StoreKind.SERVER, f"{SERVER_SCHEMES[scheme]}://{rest}")
    raise InputError(f"not an mlprov registry URI: {text!r}", hint=_STORE_HINT)


@dataclass(frozen=True)
class VersionRef:
    """A version named by a verified-download URI, and a path inside its files."""

    registry_id: str
    name: str
    version: int
    path: tuple[str, ...] = ()

    @property
    def subpath(self) -> str:
        """The path inside the model's files ("" for the whole model)."""
        return "/".join(self.path)

    def check_registry(self, registry_id: str) -> None:
        """Refuse a registry other than the one this URI names.

        Raises:
            InputError: ``registry_id`` is not the URI's.
        """
        if registry_id != self.registry_id:
            raise InputError(
                f"{verified_uri(self.registry_id, self.name, self.version)} is a version of "
                f"registry {self.registry_id}, but this process opens registry {registry_id}",
                hint="point MLFLOW_REGISTRY_URI (mlprov://...) or MLPROV_REGISTRY at the "
                     "registry that holds it")


def verified_uri(registry_id: str, name: str, version: int) -> str:
    """``mlprov-verified://REGISTRY-ID/NAME/VERSION``: where MLflow downloads a version from."""
    return f"{VERIFIED_SCHEME}://{registry_id}/{check_name(name)}/{int(version)}"


def _segments(text: str, what: str) -> list[str]:
    parts = [p for p in text.split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise InputError(f"{what} holds {part!r}: {text!r}")
    return parts


def _split_verified(uri: str) -> tuple[str, str, list[str]]:
    text = _check_text(uri, "mlprov verified-download URI")
    prefix = f"{VERIFIED_SCHEME}://"
    if not text.startswith(prefix) or "?" in text or "#" in text:
        raise InputError(f"not an mlprov verified-download URI: {text!r}",
                         hint=f"it reads {prefix}REGISTRY-ID/NAME/VERSION")
    registry_id, _, rest = text[len(prefix):].partition("/")
    if not _REGISTRY_ID.match(registry_id):
        raise InputError(f"{text!r} does not name a registry id")
    return text, registry_id, _segments(rest, "mlprov verified-download URI")


def check_verified_root(uri: str) -> str:
    """Check what a repository is made for: the URI, or its part up to the model's name.

    Raises:
        InputError: as :func:`parse_verified_uri`.
    """
    text, _, parts = _split_verified(uri)
    if parts:
        check_name(parts[0])
    if len(parts) > 1:
        parse_version(parts[1])
    return text


def parse_verified_uri(uri: str, artifact_path: str | None = None) -> VersionRef:
    """Parse ``mlprov-verified://REGISTRY-ID/NAME/VERSION[/PATH]`` (and a path inside it).

    MLflow may split the URI before a repository sees it (``.../NAME`` with
    ``artifact_path`` ``"3/MLmodel"``): the URI's path and ``artifact_path`` are read
    as one sequence of names.

    Raises:
        InputError: another scheme, an id that is not a registry id, a bad name or
            version, or a path holding ``.`` or ``..``.
    """
    text, registry_id, parts = _split_verified(uri)
    if artifact_path:
        parts += _segments(_check_text(artifact_path, "artifact path"), "artifact path")
    if len(parts) < 2:
        raise InputError(f"{text!r} names no model version",
                         hint=f"it reads {VERIFIED_SCHEME}://REGISTRY-ID/NAME/VERSION")
    return VersionRef(registry_id=registry_id, name=check_name(parts[0]),
                      version=parse_version(parts[1]), path=tuple(parts[2:]))


def open_location(location: StoreLocation) -> Any:
    """Open the registry ``location`` names.

    A :class:`~mlprov.registry.Registry`, or for a server the
    :class:`~mlprov.server.RemoteRegistry` client (token: ``$MLPROV_TOKEN``).

    Raises:
        NotFoundError: no registry there.
        mlprov.errors.MlprovError: the server refuses the token, or its key is not the
            pinned one.
    """
    if location.kind is StoreKind.SERVER:
        from mlprov.server import RemoteRegistry

        return RemoteRegistry.open(str(location.address))
    from mlprov.registry import Registry

    return Registry.open(location.address)

