"""Authorisation, deny by default: what an authenticated principal may do, and to what.

A principal's permissions are the union of the grants of its roles (the
built-in ``reader``, ``registrar``, ``promoter``, ``reviewer``, ``admin``, or
roles ``server.toml`` defines) and of every ``[[grants]]`` entry naming it or a
group it is in. Nothing is allowed that no grant names. Name lists are globs,
matched case-sensitively against the whole name (names are checked by the
registry's own rules first, so a glob cannot be steered by ``/``, ``..``,
newlines or look-alike characters). A *protected* alias (``production``,
``champion`` by default) is granted only by naming it: an alias glob such as
``*`` never matches one. ``admin`` may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

from mlprov.server._config import Grant, ServerConfig
from mlprov.server._errors import PermissionDeniedError, Refused

__all__ = ["Access", "Action", "Principal"]

#: What a refusal was of (recorded as the audit entry's ``details.action``).
Action = Literal["read", "register", "promote", "alias", "review", "deploy", "annotate",
                 "rename", "delete", "admin"]


@dataclass(frozen=True)
class Principal:
    """Who made a request, as authentication established it.

    ``via`` says how (``token:<id>`` or ``oidc:<issuer>``); ``name`` is what the
    audit log records as the change's actor.
    """

    name: str
    roles: frozenset[str]
    via: str
    groups: frozenset[str] = field(default_factory=frozenset)


def _globbed(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _matches(patterns: list[str], value: str) -> bool:
    return any(fnmatchcase(value, p) for p in patterns)


class Access:
    """What one principal may do under one configuration."""

    def __init__(self, principal: Principal, config: ServerConfig) -> None:
        self.principal = principal
        self.protected = config.protected_aliases
        groups = principal.groups | config.groups_of(principal.name)
        self.grants: list[Grant] = [config.roles[r] for r in sorted(principal.roles)
                                    if r in config.roles]
        self.grants += [g for g in config.grants
                        if principal.name in g.principals
                        or any(f"group:{group}" in g.principals for group in groups)]
        self.unknown_roles = sorted(r for r in principal.roles if r not in config.roles)
        self.admin = any(g.admin for g in self.grants)

    # ------------------------------------------------------------------ questions

    def may_read(self, name: str) -> bool:
        """Whether the principal may read model (or deployment) ``name``."""
        return self.admin or any(_matches(g.read, name) for g in self.grants)

    def may_read_any(self) -> bool:
        """Whether the principal may read anything at all (the audit log, blobs)."""
        return self.admin or any(g.read for g in self.grants)

    def may_register(self, name: str) -> bool:
        """Whether the principal may register versions of ``name``."""
        return self.admin or any(_matches(g.register_, name) for g in self.grants)

    def may_register_any(self) -> bool:
        """Whether the principal may register under some name (before the name is known)."""
        return self.admin or any(g.register_ for g in self.grants)

    def may_promote(self, name: str, stage: str) -> bool:
        """Whether the principal may move versions of ``name`` to ``stage``."""
        return self.admin or any(_matches(r.names, name) and stage in r.stages
                                 for g in self.grants for r in g.promote)

    def may_alias(self, name: str, alias: str) -> bool:
        """Whether the principal may set, delete or roll back ``name``'s ``alias``."""
        if self.admin:
            return True
        for grant in self.grants:
            for rule in grant.aliases:
                if not _matches(rule.names, name):
                    continue
                if alias in self.protected:
                    if alias in rule.aliases:  # protected: only granted by name
                        return True
                elif _matches(rule.aliases, alias):
                    return True
        return False

    def may_review(self, name: str) -> bool:
        """Whether the principal may attach reviews to versions of ``name``."""
        return self.admin or any(_matches(g.review, name) for g in self.grants)

    def may_annotate(self, name: str) -> bool:
        """Whether the principal may set descriptions and tags of ``name`` and its versions."""
        return self.admin or any(_matches(g.annotate, name) for g in self.grants)

    def may_rename(self, name: str) -> bool:
        """Whether the principal may rename model ``name`` (or give a model that name)."""
        return self.admin or any(_matches(g.rename, name) for g in self.grants)

    def may_delete(self, name: str) -> bool:
        """Whether the principal may delete model ``name`` or its versions."""
        return self.admin or any(_matches(g.delete, name) for g in self.grants)

    def may_deploy(self, name: str, stage: str | None) -> bool:
        """Whether the principal may create (``stage`` None) or move deployment ``name``."""
        return self.admin or any(_matches(r.names, name)
                                 and (stage is None or stage in r.stages)
                                 for g in self.grants for r in g.deploy)

    # ------------------------------------------------------------------ refusals

    def require(self, allowed: bool, permission: str, *, action: Action,
                name: str | None = None, version: int | None = None,
                target: str | None = None) -> None:
        """Raise :class:`PermissionDeniedError` naming ``permission`` unless ``allowed``.

        ``action``, ``name``, ``version`` and ``target`` (a stage, alias or new
        name) say what was refused, as data for the audit trail.
        """
        if not allowed:
            roles = ", ".join(sorted(self.principal.roles)) or "none"
            raise PermissionDeniedError(
                f"{self.principal.name} may not {permission} (roles: {roles})",
                hint="ask the server's admin for a grant (server.toml [[grants]] or a token "
                     "role)" + (f"; unknown roles {self.unknown_roles} grant nothing"
                                if self.unknown_roles else ""),
                refused=Refused(action=action, permission=permission, name=name,
                                version=version, target=target))
