"""API tokens: made once, shown once, stored only as a hash, in the registry's database.

A token is ``mlpt_<id>_<secret>``: a 64-bit id (to find the row) and a 256-bit
random secret. The database holds the id, ``SHA-256(secret)`` (a fast hash is
enough for 256 random bits: there is nothing to guess), the principal, its
roles, who made it, when it expires and whether it was revoked; never the token.

**Where.** The server's tables live in the registry's own database (SQLite file
or PostgreSQL), beside the registry's tables but in their own SQLAlchemy
``MetaData`` and their own schema version (``server_schema``), created and
upgraded here, never by the registry's migrations. One database means a team
running several server replicas in front of one PostgreSQL registry shares the
tokens, and a revocation takes effect on every replica at once; a file beside
``server.toml`` would be one more thing to back up and could not be shared.
``mlprov registry migrate`` does not copy them: re-issue tokens after a move.

Token rows are not part of the signed audit log: they decide who may *ask*
the registry for a change; the registry records who did (the principal) in
its hash-chained log, and every change is still gated, signed and verified.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlprov.errors import InputError
from mlprov.registry.interface import StoreError
from mlprov.server._config import check_principal_name, check_role_name
from mlprov.server._errors import AuthenticationError

__all__ = ["SCHEMA_VERSION", "TOKEN_PREFIX", "TokenRecord", "TokenStore", "parse_expiry",
           "parse_token"]

TOKEN_PREFIX = "mlpt_"  # noqa: S105 - a token prefix, not a secret
#: The server tables' schema version (``server_schema.version``).
SCHEMA_VERSION = 1
_TOKEN = re.compile(r"\Amlpt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})\Z")
_ID = re.compile(r"\A(?:mlpt_)?([0-9a-f]{16})\Z")
_DURATION = re.compile(r"\A([1-9][0-9]{0,5})([mhdw])\Z")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Tokens expire after this long unless ``--expires`` says otherwise.
DEFAULT_EXPIRY = "90d"


def parse_token(text: str) -> tuple[str, str]:
    """Split an API token into its id and secret.

    Raises:
        AuthenticationError: not an API token.
    """
    match = _TOKEN.match(text)
    if match is None:
        raise AuthenticationError("the bearer token is not an mlprov API token "
                                  "(mlpt_...) or an OIDC token (a JWT)")
    return match.group(1), match.group(2)


def parse_expiry(text: str, *, now: datetime | None = None) -> str | None:
    """``30d``, ``12h``, ``90m``, ``2w`` -> an RFC 3339 UTC time; ``never`` -> None.

    Raises:
        InputError: anything else.
    """
    if text == "never":
        return None
    match = _DURATION.match(text)
    if match is None:
        raise InputError(f"invalid expiry {text!r}",
                         hint="a duration such as 30d, 12h, 90m or 2w, or never")
    moment = (now or datetime.now(UTC)) + timedelta(
        seconds=int(match.group(1)) * _UNIT[match.group(2)])
    return _rfc3339(moment)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored (never the secret)."""

    id: str
    principal: str
    roles: tuple[str, ...]
    description: str | None
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= _rfc3339(now or
                                                                        datetime.now(UTC)):
            return "expired"
        return "active"

    def to_json_dict(self) -> dict[str, Any]:
        """As ``mlprov server token list --json`` prints it."""
        return {"id": f"{TOKEN_PREFIX}{self.id}", "principal": self.principal,
                "roles": list(self.roles), "description": self.description,
                "createdAt": self.created_at, "createdBy": self.created_by,
                "expiresAt": self.expires_at, "revokedAt": self.revoked_at,
                "state": self.state()}


class TokenStore:
    """The server's tables in the registry's database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import (
            Column,
            MetaData,
            Table,
            Text,
            create_engine,
        )

        self.url = url
        self._sqlite = url.startswith("sqlite")
        self.metadata = MetaData()
        self.schema = Table("server_schema", self.metadata,
                            Column("key", Text, primary_key=True),
                            Column("value", Text, nullable=False))
        self.tokens = Table("server_tokens", self.metadata,
                            Column("id", Text, primary_key=True),
                            Column("secret_sha256", Text, nullable=False),
                            Column("principal", Text, nullable=False),
                            Column("roles", Text, nullable=False),
                            Column("description", Text),
                            Column("created_at", Text, nullable=False),
                            Column("created_by", Text, nullable=False),
                            Column("expires_at", Text),
                            Column("revoked_at", Text))
        try:
            self.engine = create_engine(
                url, connect_args={"timeout": 30} if self._sqlite else {},
                pool_pre_ping=not self._sqlite)
        except ImportError as exc:
            raise InputError("the registry's database needs the PostgreSQL driver psycopg",
                             hint="pip install 'mlprov[team]'") from exc

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"the server's token tables: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]}") from exc

    def create(self) -> None:
        """Create the server's tables if missing (idempotent); refuse a newer schema.

        Raises:
            StoreError: the tables are of a newer mlprov, or the database failed.
        """
        from sqlalchemy import select

        with self._begin() as conn:
            self.metadata.create_all(conn, checkfirst=True)
            row = conn.execute(select(self.schema.c.value).where(
                self.schema.c.key == "version")).first()
            if row is None:
                conn.execute(self.schema.insert().values(key="version",
                                                         value=str(SCHEMA_VERSION)))
            elif not row[0].isdigit() or int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"the server's tables have schema version {row[0]}; this "
                                 f"mlprov knows {SCHEMA_VERSION}", hint="upgrade mlprov")

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ tokens

    def issue(self, *, principal: str, roles: list[str], created_by: str,
              expires_at: str | None, description: str | None = None) -> tuple[str,
                                                                               TokenRecord]:
        """Make a token; returns it (shown once, never stored) and its record.

        Raises:
            InputError: an invalid principal or role name, or no role.
        """
        check_principal_name(principal)
        if not roles:
            raise InputError("a token needs at least one role",
                             hint="--role reader|registrar|promoter|reviewer|admin")
        for role in roles:
            check_role_name(role)
        if description is not None and (len(description) > 500
                                        or not description.isprintable()):
            raise InputError("a token description is printable text of at most 500 "
                             "characters")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = TokenRecord(id=token_id, principal=principal,
                             roles=tuple(sorted(set(roles))), description=description,
                             created_at=_rfc3339(datetime.now(UTC)), created_by=created_by,
                             expires_at=expires_at, revoked_at=None)
        self.create()
        with self._begin() as conn:
            conn.execute(self.tokens.insert().values(
                id=record.id, secret_sha256=_hash(secret), principal=record.principal,
                roles=json.dumps(list(record.roles)), description=record.description,
                created_at=record.created_at, created_by=record.created_by,
                expires_at=record.expires_at, revoked_at=None))
        return f"{TOKEN_PREFIX}{token_id}_{secret}", record

    def list(self) -> list[TokenRecord]:
        """Every token, oldest first (revoked and expired ones too)."""
        self.create()
        with self._begin() as conn:
            rows = conn.execute(self.tokens.select().order_by(
                self.tokens.c.created_at, self.tokens.c.id)).mappings().all()
        return [self._record(row) for row in rows]

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token by its id (``mlpt_<id>`` or ``<id>``); idempotent.

        Raises:
            InputError: not a token id; NotFoundError: no such token.
        """
        from mlprov.registry import NotFoundError

        match = _ID.match(token_id)
        if match is None:
            raise InputError(f"invalid token id {token_id!r}",
                             hint="`mlprov server token list` shows the ids (mlpt_<16 hex>)")
        self.create()
        with self._begin() as conn:
            conn.execute(self.tokens.update().where(
                self.tokens.c.id == match.group(1), self.tokens.c.revoked_at.is_(None)
            ).values(revoked_at=_rfc3339(datetime.now(UTC))))
            row = conn.execute(self.tokens.select().where(
                self.tokens.c.id == match.group(1))).mappings().first()
        if row is None:
            raise NotFoundError(f"no token {token_id!r}",
                                hint="`mlprov server token list` shows the tokens")
        return self._record(row)

    def authenticate(self, token: str, *, now: datetime | None = None) -> TokenRecord:
        """The record of an active token whose secret matches.

        Raises:
            AuthenticationError: malformed, unknown, wrong secret, revoked or expired
                (revocation and expiry are only said for a token whose secret matched).
        """
        token_id, secret = parse_token(token)
        with self._begin() as conn:
            row = conn.execute(self.tokens.select().where(
                self.tokens.c.id == token_id)).mappings().first()
        # Compare even when there is no row, so timing does not tell ids apart.
        stored = row["secret_sha256"] if row is not None else "0" * 64
        if not hmac.compare_digest(stored, _hash(secret)) or row is None:
            raise AuthenticationError(f"token {TOKEN_PREFIX}{token_id} is not known to this "
                                      "server")
        record = self._record(row)
        state = record.state(now)
        if state == "revoked":
            raise AuthenticationError(f"token {TOKEN_PREFIX}{token_id} of {record.principal} "
                                      f"was revoked at {record.revoked_at}")
        if state == "expired":
            raise AuthenticationError(f"token {TOKEN_PREFIX}{token_id} of {record.principal} "
                                      f"expired at {record.expires_at}",
                                      hint="ask the server's admin for a new token (`mlprov "
                                           "server token create`) and set MLPROV_TOKEN")
        return record

    @staticmethod
    def _record(row: Any) -> TokenRecord:
        roles = json.loads(row["roles"])
        return TokenRecord(id=row["id"], principal=row["principal"],
                           roles=tuple(str(r) for r in roles),
                           description=row["description"], created_at=row["created_at"],
                           created_by=row["created_by"], expires_at=row["expires_at"],
                           revoked_at=row["revoked_at"])
