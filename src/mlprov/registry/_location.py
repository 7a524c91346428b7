"""Where a registry is: one directory (embedded), or a database URL plus a blob store.

An **embedded** registry is a directory (``--registry DIR``, ``$MLPROV_HOME``,
``~/.mlprov``): SQLite, local blobs, the registry key and ``mlprov.toml`` in it.

A **team** registry is a database URL (``--registry postgresql+psycopg://USER@HOST/DB``
or ``$MLPROV_REGISTRY``): metadata in the database, blobs where its ``blobs`` state
says (``s3://BUCKET/PREFIX``, or a directory every machine mounts), settings (trust,
policies, config, thresholds) as signed blobs the database names. Nothing about it is
on the machine but a local cache (``$MLPROV_CACHE_HOME/registries/<hash>``, default
``~/.cache/mlprov``): materialised policies, ``checkouts/`` and ``head.json``, and
the registry's public key pinned at first use.

The database is not a root of trust. Its public key is pinned on first use in the
local cache (as SSH pins a host key) and a different key later is refused; a deploy
pipeline pins it in its own trust file instead (``pull --trust``). The private key
never lives in the database: machines that change the registry name it with
``--key``/``$MLPROV_REGISTRY_KEY``; machines that only resolve and pull need none.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mlprov.errors import InputError
from mlprov.registry._home import CONFIG_FILE, DB_FILE, HEAD_FILE, KEY_FILE, resolve_home
from mlprov.registry.interface import BlobStore, RegistryError

__all__ = ["CACHE_ENV", "KEY_ENV", "REGISTRY_ENV", "RegistryLocation", "cache_root",
           "open_blob_store"]

#: A registry location (directory or database URL) used when none is given.
REGISTRY_ENV = "MLPROV_REGISTRY"
#: The registry's private key, for machines that change a team registry.
KEY_ENV = "MLPROV_REGISTRY_KEY"
#: Where team registries' local caches go (default ``~/.cache/mlprov``).
CACHE_ENV = "MLPROV_CACHE_HOME"
#: The state key naming a team registry's blob store.
BLOBS_STATE = "blobs"
#: The state key holding a team registry's public key (PEM), pinned locally at first use.
PUBLIC_KEY_STATE = "public_key"
_PIN_FILE = "registry.key.pub"


@dataclass(frozen=True)
class RegistryLocation:
    """A registry's location: ``home`` is its directory, or the local cache of a URL."""

    home: Path
    url: str | None = None

    @classmethod
    def of(cls, location: Path | str | None) -> RegistryLocation:
        """Parse ``--registry``: a directory, a database URL, or None (the defaults)."""
        if location is None:
            value = os.environ.get(REGISTRY_ENV)
            location = value if value else None
        if isinstance(location, str) and "://" in location:
            from mlprov.registry._stores_url import normalise_database_url

            url = normalise_database_url(location)
            return cls(home=_cache_for(url), url=url)
        return cls(home=resolve_home(location))

    @property
    def embedded(self) -> bool:
        """A directory holding everything (no database server)."""
        return self.url is None

    def describe(self) -> str:
        """The location for messages (a URL without its password)."""
        if self.url is None:
            return str(self.home)
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def metadata_store(self) -> object:
        """The metadata store (an ``SqlMetadataStore``)."""
        from mlprov.registry._stores_url import metadata_store_for

        return metadata_store_for(self.url if self.url is not None else self.home)

    def exists(self) -> bool:
        """Whether an embedded registry is there (a team registry: ask its database)."""
        return self.url is not None or (self.home / DB_FILE).is_file()

    def key_file(self, key: Path | str | None = None) -> Path | None:
        """The registry's private key: ``key``, ``$MLPROV_REGISTRY_KEY``, or the embedded one."""
        if key is not None:
            return Path(key).expanduser()
        value = os.environ.get(KEY_ENV)
        if value:
            return Path(value).expanduser()
        return self.home / KEY_FILE if self.url is None else None

    def public_key_file(self) -> Path:
        """The registry's public key: beside its key (embedded) or pinned in the cache."""
        if self.url is None:
            return self.home / KEY_FILE.with_name(KEY_FILE.name + ".pub")
        return self.home / _PIN_FILE

    @property
    def config_file(self) -> Path | None:
        """The pinned ``mlprov.toml`` on disk (embedded only; a team's lives in the database)."""
        return self.home / CONFIG_FILE if self.url is None else None

    @property
    def head_file(self) -> Path:
        """Where the last signed checkpoint is mirrored."""
        return self.home / HEAD_FILE

    def prepare_cache(self) -> None:
        """Make the local cache of a team registry (0700)."""
        if self.url is not None:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)


def cache_root() -> Path:
    """This user's mlprov cache: ``$MLPROV_CACHE_HOME``, else ``~/.cache/mlprov``."""
    base = os.environ.get(CACHE_ENV)
    return Path(base).expanduser() if base else Path.home() / ".cache" / "mlprov"


def _cache_for(url: str) -> Path:
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    return cache_root() / "registries" / hashlib.sha256(shown.encode()).hexdigest()[:24]


def open_blob_store(spec: str, *, home: Path) -> BlobStore:
    """The blob store a team registry's ``blobs`` state names.

    ``s3://BUCKET/PREFIX`` (boto3, the ``team`` extra) or a directory (absolute,
    or ``file://`` URL) every machine of the team mounts.

    Raises:
        InputError: an unsupported location.
    """
    from mlprov.registry._blobs import LocalBlobStore

    if spec.startswith("s3://"):
        from mlprov.registry._s3 import S3BlobStore

        return S3BlobStore.from_url(spec)
    if spec.startswith("file://"):
        spec = spec.removeprefix("file://")
    if "://" in spec or not spec:
        raise InputError(f"unsupported blob store {spec!r}",
                         hint="use s3://BUCKET/PREFIX or an absolute directory path")
    path = Path(spec)
    if not path.is_absolute():
        raise RegistryError(f"the registry's blob store {spec!r} is not an absolute path")
    del home
    return LocalBlobStore(path)
