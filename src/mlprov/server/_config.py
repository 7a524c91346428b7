"""``server.toml``: where the server listens, its limits, who may do what, OIDC issuers.

Everything is checked when the file is read (unknown keys, wrong types, a role
or principal name that could never match, an OIDC issuer over plain HTTP), so a
typo cannot silently widen or narrow access. Without a file the server runs
with the defaults below and the built-in roles only (docs/server.md)::

    [server]
    max_body = "1MiB"          # a JSON request body
    max_upload = "64GiB"       # one registration (model files + evidence, streamed)
    rate_limit = 600           # requests per minute per principal
    rate_burst = 120

    [authz]
    protected_aliases = ["production", "champion"]
    separation_of_duties = true

    [groups]
    risk = ["alice", "bob"]

    [[grants]]
    principals = ["group:risk"]
    promote = [{ names = ["credit-*"], stages = ["Production"] }]
    aliases = [{ names = ["credit-*"], aliases = ["production"] }]

    [[oidc]]
    issuer = "https://token.actions.githubusercontent.com"
    audience = "https://mlprov.example.com"

    [[oidc.principals]]
    name = "ci-train"
    claims = { repository = "org/models", ref = "refs/heads/main" }
    roles = ["registrar"]
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlprov._internal.readers import load_toml, read_text
from mlprov.errors import InputError

__all__ = [
    "BUILTIN_ROLES",
    "STAGES",
    "AliasRule",
    "Grant",
    "OidcIssuer",
    "OidcPrincipal",
    "ServerConfig",
    "StageRule",
    "check_principal_name",
    "check_role_name",
    "load_config",
    "parse_size",
]

STAGES = ("None", "Staging", "Production", "Archived")
_PRINCIPAL = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}\Z")
_ROLE = re.compile(r"\A[a-z][a-z0-9_-]{0,63}\Z")
_GLOB = re.compile(r"\A[A-Za-z0-9._+*?\[\]!-]{1,200}\Z")
_SIZE = re.compile(r"\A([0-9]{1,15})\s*(B|KiB|MiB|GiB|TiB)?\Z")
_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}
_MAX_CONFIG = 1024 * 1024


def check_principal_name(name: Any) -> str:
    """Return ``name`` if it is a usable principal name.

    Raises:
        InputError: otherwise (letters, digits and ``. _ @ + : -``, at most 128).
    """
    if not isinstance(name, str) or not _PRINCIPAL.match(name):
        raise InputError(f"invalid principal name {name!r}",
                         hint="use letters, digits and . _ @ + : - (at most 128 characters)")
    return name


def check_role_name(name: Any) -> str:
    """Return ``name`` if it is a usable role name (lower-case letters, digits, ``_ -``).

    Raises:
        InputError: otherwise.
    """
    if not isinstance(name, str) or not _ROLE.match(name):
        raise InputError(f"invalid role name {name!r}",
                         hint="roles: reader, registrar, promoter, reviewer, admin, or a "
                              "role server.toml defines")
    return name


def parse_size(value: Any, *, what: str) -> int:
    """``1048576``, ``"1MiB"``, ``"20GiB"`` -> bytes.

    Raises:
        InputError: anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = _SIZE.match(value.strip())
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise InputError(f"invalid size for {what}: {value!r}",
                     hint="a positive number of bytes, or e.g. \"4MiB\", \"20GiB\"")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)


def _globs(values: list[str]) -> list[str]:
    for value in values:
        if not _GLOB.match(value):
            raise ValueError(f"invalid name pattern {value!r} (letters, digits, . _ + - and "
                             "the glob characters * ? [ ] !)")
    return values


class StageRule(_Model):
    """Which names may be moved to which stages (``promote``, ``deploy``)."""

    names: list[str]
    stages: list[Literal["None", "Staging", "Production", "Archived"]]

    @field_validator("names")
    @classmethod
    def _check_names(cls, values: list[str]) -> list[str]:
        return _globs(values)


class AliasRule(_Model):
    """Which aliases of which names may be set, deleted and rolled back."""

    names: list[str]
    aliases: list[str]

    @field_validator("names", "aliases")
    @classmethod
    def _check_names(cls, values: list[str]) -> list[str]:
        return _globs(values)


class Grant(_Model):
    """What a role, or the principals and groups of a ``[[grants]]`` entry, may do.

    Name lists are globs (``fnmatch``, case-sensitive). An alias glob never
    matches a *protected* alias: those are granted only by name.
    """

    principals: list[str] = Field(default_factory=list)
    read: list[str] = Field(default_factory=list)
    register_: list[str] = Field(default_factory=list, alias="register")
    promote: list[StageRule] = Field(default_factory=list)
    aliases: list[AliasRule] = Field(default_factory=list)
    review: list[str] = Field(default_factory=list)
    deploy: list[StageRule] = Field(default_factory=list)
    annotate: list[str] = Field(default_factory=list)
    rename: list[str] = Field(default_factory=list)
    delete: list[str] = Field(default_factory=list)
    admin: bool = False

    @field_validator("read", "register_", "review", "annotate", "rename", "delete")
    @classmethod
    def _check_globs(cls, values: list[str]) -> list[str]:
        return _globs(values)

    @field_validator("principals")
    @classmethod
    def _check_principals(cls, values: list[str]) -> list[str]:
        for value in values:
            name = value.removeprefix("group:")
            if not _PRINCIPAL.match(name):
                raise ValueError(f"invalid principal {value!r} (a principal name, or "
                                 "group:NAME)")
        return values


_ALL_STAGES: list[Any] = list(STAGES)

#: The built-in roles (a ``[roles.NAME]`` table in server.toml replaces one).
BUILTIN_ROLES: dict[str, Grant] = {
    "reader": Grant(read=["*"]),
    "registrar": Grant(read=["*"], register_=["*"], annotate=["*"]),
    "promoter": Grant(read=["*"], promote=[StageRule(names=["*"], stages=_ALL_STAGES)],
                      aliases=[AliasRule(names=["*"], aliases=["*"])],
                      deploy=[StageRule(names=["*"], stages=_ALL_STAGES)], annotate=["*"]),
    "reviewer": Grant(read=["*"], review=["*"]),
    "admin": Grant(admin=True),
}


class OidcPrincipal(_Model):
    """An OIDC identity mapped to a principal: every listed claim must match exactly.

    A claim's value is one string or a list of accepted strings.
    """

    name: str
    claims: dict[str, str | list[str]]
    roles: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _PRINCIPAL.match(value):
            raise ValueError(f"invalid principal name {value!r}")
        return value

    @field_validator("claims")
    @classmethod
    def _check_claims(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        if not value:
            raise ValueError("an OIDC principal needs at least one claim to match (e.g. sub)")
        return value

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _ROLE.match(value):
                raise ValueError(f"invalid role name {value!r}")
        return values


Algorithm = Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384",
                    "PS512", "EdDSA"]
DEFAULT_ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256")


class OidcIssuer(_Model):
    """An OIDC issuer whose bearer tokens (JWTs) the server accepts."""

    issuer: str
    audience: str
    jwks_uri: str | None = None
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    leeway: int = Field(default=60, ge=0, le=600)
    max_lifetime: int = Field(default=24 * 3600, ge=60)
    principals: list[OidcPrincipal] = Field(default_factory=list)
    #: Revocation before expiry: token ids (``jti``) and subjects (``sub``) refused, and
    #: a cut-off refusing every token issued (``iat``) before it (a leaked signing key
    #: at the issuer, or "log everyone out"). Read at start: restart the server to apply.
    revoked_ids: list[str] = Field(default_factory=list, max_length=100_000)
    revoked_subjects: list[str] = Field(default_factory=list, max_length=100_000)
    not_before: datetime | None = None

    @field_validator("not_before", mode="before")
    @classmethod
    def _check_aware(cls, value: Any) -> Any:
        if isinstance(value, str):  # TOML's own datetime, or the same quoted
            try:
                value = datetime.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"not_before {value[:40]!r} is not an ISO 8601 time") from exc
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("not_before needs a time zone (e.g. 2026-12-06T12:00:00Z)")
        return value

    @field_validator("issuer", "jwks_uri")
    @classmethod
    def _check_https(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from mlprov.server._url import is_loopback, parse_server_url

        try:
            parsed = parse_server_url(value) if not value.startswith("http://") or \
                is_loopback(_host_of(value)) else None
        except InputError as exc:
            raise ValueError(str(exc)) from exc
        if parsed is None:
            raise ValueError(f"{value!r}: OIDC issuers and key sets must be https:// "
                             "(http:// only on loopback)")
        return value


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


class ServerSettings(_Model):
    """``[server]``: the listener, limits and timeouts."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body: int | str = "1MiB"
    max_upload: int | str = "64GiB"
    max_review: int | str = "4MiB"
    upload_idle_timeout: float = Field(default=60.0, gt=0, le=3600)
    rate_limit: int = Field(default=600, ge=1)
    rate_burst: int = Field(default=120, ge=1)
    # Store rows and blobs: a client verifying a pull asks one per file and per row.
    read_rate_limit: int = Field(default=60000, ge=1)
    read_burst: int = Field(default=10000, ge=1)
    workers: int = Field(default=4, ge=1, le=64)
    graceful_timeout: float = Field(default=30.0, ge=0, le=3600)
    keep_alive: float = Field(default=5.0, gt=0, le=600)
    # A connection must finish each request's headers this soon (slow clients).
    header_timeout: float = Field(default=10.0, gt=0, le=600)
    ui: bool = True
    tmp_dir: str | None = None
    # Refusals recorded one by one in the audit trail, per principal per window;
    # beyond, counted and recorded as one summary entry (0: log only).
    refusal_audit_limit: int = Field(default=10, ge=0, le=10000)
    refusal_audit_window: float = Field(default=600.0, ge=1, le=86400)


class AuthzSettings(_Model):
    """``[authz]``: protected aliases and separation of duties."""

    protected_aliases: list[str] = Field(default_factory=lambda: ["production", "champion"])
    separation_of_duties: bool = True


class _File(_Model):
    server: ServerSettings = Field(default_factory=ServerSettings)
    authz: AuthzSettings = Field(default_factory=AuthzSettings)
    roles: dict[str, Grant] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    grants: list[Grant] = Field(default_factory=list)
    oidc: list[OidcIssuer] = Field(default_factory=list)


class ServerConfig:
    """A checked ``server.toml`` (or the defaults): limits, roles, grants, groups, issuers."""

    def __init__(self, document: dict[str, Any] | None = None, *, source: str = "defaults"
                 ) -> None:
        try:
            parsed = _File.model_validate(document or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{source}: {where}: {first['msg']}",
                             hint="see docs/server.md for server.toml") from exc
        self.source = source
        self.server = parsed.server
        self.authz = parsed.authz
        self.max_body = parse_size(parsed.server.max_body, what="server.max_body")
        self.max_upload = parse_size(parsed.server.max_upload, what="server.max_upload")
        self.max_review = parse_size(parsed.server.max_review, what="server.max_review")
        for name in parsed.roles:
            check_role_name(name)
        self.roles: dict[str, Grant] = {**BUILTIN_ROLES, **parsed.roles}
        for group, members in parsed.groups.items():
            check_principal_name(group)
            for member in members:
                check_principal_name(member)
        self.groups = parsed.groups
        for grant in parsed.grants:
            if not grant.principals:
                raise InputError(f"{source}: a [[grants]] entry names no principals",
                                 hint="principals = [\"alice\", \"group:risk\"]")
        self.grants = parsed.grants
        issuers = [i.issuer for i in parsed.oidc]
        if len(set(issuers)) != len(issuers):
            raise InputError(f"{source}: an OIDC issuer is listed twice")
        self.oidc = parsed.oidc
        for alias in parsed.authz.protected_aliases:
            if not re.match(r"\A[a-z][a-z0-9_-]{0,99}\Z", alias):
                raise InputError(f"{source}: invalid protected alias {alias!r}")
        self.protected_aliases = frozenset(parsed.authz.protected_aliases)

    def groups_of(self, principal: str) -> frozenset[str]:
        """The groups ``[groups]`` puts ``principal`` in."""
        return frozenset(g for g, members in self.groups.items() if principal in members)


def load_config(path: Path | str | None) -> ServerConfig:
    """Read and check ``server.toml`` (None: the defaults).

    Raises:
        InputError: unreadable, not TOML, or not a valid configuration.
    """
    if path is None:
        return ServerConfig()
    text = read_text(Path(path), what="server configuration", limit=_MAX_CONFIG)
    document = load_toml(text, what=str(path))
    if not isinstance(document, dict):
        raise InputError(f"{path} is not a TOML table")
    return ServerConfig(document, source=str(path))
