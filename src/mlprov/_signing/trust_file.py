"""A trust file read without pydantic: the twin of :class:`~mlprov._signing.schemas.TrustFile`.

The model owns the rules. :func:`read_trust_file` accepts only the plain form a
person writes (every field a non-empty ``str`` where the model wants text,
``version`` the integer 1, roles by their names, no unknown fields) and returns
None for anything else, so the caller asks the model to accept it or to word the
refusal. ``tests/test_trust_file.py`` holds the twin to the model on arbitrary and
hostile documents (hypothesis): whatever the twin accepts, the model accepts with
the same fields. It exists so that ``mlprov verify --trust`` (and ``lineage
verify``) do not import pydantic to read a few lines of YAML (issue 16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlprov._signing.constants import Role

__all__ = ["KeyFields", "RuleFields", "TrustFileFields", "read_trust_file"]

_ROLES = {role.value: role for role in Role}
_TOP = frozenset({"version", "keys", "sigstore", "trusted_root"})
_KEY = frozenset({"name", "public_key", "roles"})
_RULE = frozenset({"name", "issuer", "subject", "subject_regex", "roles"})


@dataclass(frozen=True)
class KeyFields:
    """A ``keys`` entry (as :class:`~mlprov._signing.schemas.KeyEntry`)."""

    name: str
    public_key: str
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class RuleFields:
    """A ``sigstore`` entry (as :class:`~mlprov._signing.schemas.SigstoreEntry`)."""

    issuer: str
    roles: tuple[Role, ...]
    name: str | None = None
    subject: str | None = None
    subject_regex: str | None = None


@dataclass(frozen=True)
class TrustFileFields:
    """A trust file (as :class:`~mlprov._signing.schemas.TrustFile`)."""

    keys: tuple[KeyFields, ...] = ()
    sigstore: tuple[RuleFields, ...] = ()
    trusted_root: str | None = None

    @classmethod
    def from_model(cls, model: Any) -> TrustFileFields:
        """The fields of a ``TrustFile`` the model accepted."""
        return cls(keys=tuple(KeyFields(k.name, k.public_key, tuple(k.roles)) for k in model.keys),
                   sigstore=tuple(RuleFields(r.issuer, tuple(r.roles), r.name, r.subject,
                                             r.subject_regex) for r in model.sigstore),
                   trusted_root=model.trusted_root)


def _text(value: Any) -> bool:
    return type(value) is str and value != ""


def _optional_text(value: Any) -> bool:
    return value is None or _text(value)


def _roles(value: Any) -> tuple[Role, ...] | None:
    if type(value) is not list or not value:
        return None
    if not all(type(r) is str and r in _ROLES for r in value):
        return None
    return tuple(_ROLES[r] for r in value)


def _key(item: Any) -> KeyFields | None:
    if type(item) is not dict or item.keys() != _KEY:
        return None
    roles = _roles(item["roles"])
    if roles is None or not _text(item["name"]) or not _text(item["public_key"]):
        return None
    return KeyFields(item["name"], item["public_key"], roles)


def _rule(item: Any) -> RuleFields | None:
    if type(item) is not dict or not item.keys() <= _RULE or "issuer" not in item \
            or "roles" not in item:
        return None
    name, subject, regex = item.get("name"), item.get("subject"), item.get("subject_regex")
    roles = _roles(item["roles"])
    if roles is None or not _text(item["issuer"]) \
            or not all(_optional_text(v) for v in (name, subject, regex)) \
            or (subject is None) == (regex is None):
        return None
    if regex is not None:
        try:
            re.compile(regex)
        except Exception:
            return None
    return RuleFields(item["issuer"], roles, name, subject, regex)


def read_trust_file(document: Any) -> TrustFileFields | None:
    """The trust file's fields when the document is in the plain form, else None (ask the model)."""
    if type(document) is not dict or not document.keys() <= _TOP:
        return None
    version = document.get("version", 1)
    if type(version) is not int or version != 1:
        return None
    keys, rules = document.get("keys", []), document.get("sigstore", [])
    root = document.get("trusted_root")
    if type(keys) is not list or type(rules) is not list or not _optional_text(root):
        return None
    parsed_keys = [_key(item) for item in keys]
    parsed_rules = [_rule(item) for item in rules]
    if any(k is None for k in parsed_keys) or any(r is None for r in parsed_rules):
        return None
    return TrustFileFields(keys=tuple(k for k in parsed_keys if k is not None),
                           sigstore=tuple(r for r in parsed_rules if r is not None),
                           trusted_root=root)
