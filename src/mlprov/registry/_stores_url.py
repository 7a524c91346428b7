"""Which metadata store a registry location names: a directory or a database URL.

A directory holds the embedded SQLite database (``registry.db``). A URL names a
database server: ``postgresql+psycopg://USER@HOST[:PORT]/DB`` (psycopg 3, the
``team`` extra; ``postgresql://`` and ``postgres://`` mean the same) or
``sqlite:///PATH``. Passwords are never shown in messages.
"""

from __future__ import annotations

from pathlib import Path

from mlprov.errors import InputError
from mlprov.registry._home import DB_FILE, require_registry, resolve_home
from mlprov.registry._sql import SchemaUpgrade, SqlMetadataStore, sqlite_url

__all__ = ["is_database_url", "metadata_store_for", "normalise_database_url", "upgrade_registry"]

_POSTGRES_DRIVER = "postgresql+psycopg"
_POSTGRES_ALIASES = ("postgresql", "postgres")


def is_database_url(location: str | Path) -> bool:
    """Whether ``location`` is a database URL (``scheme://...``) rather than a directory."""
    return isinstance(location, str) and "://" in location


def normalise_database_url(url: str) -> str:
    """The SQLAlchemy URL mlprov opens for ``url``.

    Raises:
        InputError: an unsupported scheme or driver, or an in-memory SQLite database.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError("not a database URL: expected postgresql+psycopg://USER@HOST/DB or "
                         "sqlite:///PATH") from exc
    scheme = parsed.drivername
    if scheme in _POSTGRES_ALIASES:
        parsed = parsed.set(drivername=_POSTGRES_DRIVER)
    elif scheme.startswith("postgres") and scheme != _POSTGRES_DRIVER:
        raise InputError(f"unsupported PostgreSQL driver {scheme!r}",
                         hint="use postgresql+psycopg://USER@HOST/DB (psycopg 3)")
    elif scheme in ("sqlite", "sqlite+pysqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise InputError("an in-memory SQLite database cannot hold a registry",
                             hint="use sqlite:///PATH or a registry directory")
    elif scheme != _POSTGRES_DRIVER:
        raise InputError(f"unsupported registry database {scheme!r}",
                         hint="use postgresql+psycopg://USER@HOST/DB, sqlite:///PATH or a "
                              "registry directory")
    return parsed.render_as_string(hide_password=False)


def metadata_store_for(location: str | Path) -> SqlMetadataStore:
    """The metadata store at ``location``: a registry directory or a database URL.

    A directory's store is its SQLite database (the directory need not hold a
    registry yet: :meth:`SqlMetadataStore.create_schema` makes one).

    Raises:
        InputError: an unsupported URL, or the PostgreSQL driver is not installed.
    """
    if is_database_url(location):
        url = normalise_database_url(str(location))
        return SqlMetadataStore(url)
    path = Path(location).expanduser()
    return SqlMetadataStore(sqlite_url(path / DB_FILE),
                            description=f"registry database {path / DB_FILE}")


def upgrade_registry(location: str | Path | None = None) -> SchemaUpgrade:
    """Bring a registry's database to this mlprov's schema version (idempotent).

    Args:
        location: a registry directory or database URL (default: ``$MLPROV_HOME``,
            else ``~/.mlprov``).

    Raises:
        NotFoundError: no registry in that directory.
        StoreError: not a registry database, or newer than this mlprov.
    """
    if location is not None and is_database_url(location):
        store = metadata_store_for(location)
    else:
        home = resolve_home(location)
        require_registry(home)
        store = metadata_store_for(home)
    try:
        return store.upgrade_schema()
    finally:
        store.close()
