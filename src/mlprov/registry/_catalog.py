"""The catalog's records and checks: descriptions, tags, search pages, renames and tombstones.

What :meth:`Registry.model_info`, :meth:`Registry.version_info` and the
searches return (frozen dataclasses, JSON-ready through ``to_json_dict``), the
checks a tag or description passes before it is recorded, and what a lookup of
a renamed or deleted model answers. Like :mod:`._records`, it uses nothing of
the package but the store interfaces, so every part may use it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from mlprov.errors import InputError
from mlprov.registry._uri import version_uri
from mlprov.registry.interface import (
    ModelRecord,
    NotFoundError,
    ReadTransaction,
    Stage,
    VersionRecord,
)

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_TAG_VALUE",
    "ModelInfo",
    "Page",
    "VersionInfo",
    "check_description",
    "check_tag_key",
    "check_tag_value",
    "frozen_mapping",
    "missing_model",
    "name_periods",
    "need_model",
]

MAX_DESCRIPTION = 20_000
MAX_TAG_VALUE = 1000
MAX_TAG_KEY = 250
#: Letters, digits and ``_ - . / :`` and inner spaces, as MLflow's tag keys.
_TAG_KEY = re.compile(r"\A[A-Za-z0-9_./:-](?:[A-Za-z0-9_./: -]{0,248}[A-Za-z0-9_./:-])?\Z")

T = TypeVar("T")


def frozen_mapping(values: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of ``values`` (sorted by key)."""
    return MappingProxyType(dict(sorted((values or {}).items())))


@dataclass(frozen=True)
class ModelInfo:
    """A model in use: its description, tags and aliases (what ``models show`` adds)."""

    name: str
    created_at: str
    latest_version: int
    description: str | None
    tags: Mapping[str, str] = field(hash=False)
    aliases: Mapping[str, int] = field(hash=False)

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov models list --json`` (one model)."""
        return {"name": self.name, "createdAt": self.created_at,
                "latestVersion": self.latest_version, "description": self.description,
                "tags": dict(self.tags), "aliases": dict(self.aliases)}


@dataclass(frozen=True)
class VersionInfo:
    """A version in use with its description, tags, aliases and indexed eval metrics.

    A lookup, like :meth:`Registry.resolve`: ``mlprov audit verify`` checks these
    rows against the signed log; pulling a version verifies it.
    """

    name: str
    version: int
    stage: Stage
    identity: str
    root_digest: str
    reproducible: bool
    created_at: str
    registration: str
    stage_decision: str | None
    description: str | None
    tags: Mapping[str, str] = field(hash=False)
    aliases: tuple[str, ...]
    metrics: Mapping[str, float] = field(hash=False)

    @property
    def uri(self) -> str:
        """``models:/NAME/N``."""
        return version_uri(self.name, self.version)

    @classmethod
    def of(cls, record: VersionRecord, *, tags: Mapping[str, str] | None = None,
           aliases: tuple[str, ...] = (), metrics: Mapping[str, float] | None = None
           ) -> VersionInfo:
        """The info of a stored version, with what the other tables hold about it."""
        return cls(name=record.name, version=record.version, stage=record.stage,
                   identity=record.identity, root_digest=record.root_digest,
                   reproducible=record.reproducible, created_at=record.created_at,
                   registration=record.registration, stage_decision=record.stage_decision,
                   description=record.description, tags=frozen_mapping(tags),
                   aliases=aliases, metrics=frozen_mapping(metrics))

    def to_json_dict(self) -> dict[str, Any]:
        """As printed by ``mlprov versions list --json`` (one version)."""
        return {"name": self.name, "version": self.version, "uri": self.uri,
                "stage": self.stage.value, "identity": self.identity,
                "rootDigest": self.root_digest, "reproducible": self.reproducible,
                "createdAt": self.created_at, "registration": self.registration,
                "stageDecision": self.stage_decision, "description": self.description,
                "tags": dict(self.tags), "aliases": list(self.aliases),
                "metrics": dict(self.metrics)}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a search, and the token of the next (None: this was the last)."""

    items: tuple[T, ...]
    next_page_token: str | None


# --------------------------------------------------------------------------- checks


def check_tag_key(key: Any) -> str:
    """Return ``key`` if it can name a tag.

    Raises:
        InputError: not 1-250 letters, digits, ``_ - . / :`` or inner spaces.
    """
    if not isinstance(key, str) or not _TAG_KEY.match(key):
        raise InputError(f"invalid tag key {key!r}",
                         hint="use letters, digits, _ - . / : and inner spaces (at most "
                              f"{MAX_TAG_KEY} characters)")
    return key


def _controls(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


def check_tag_value(value: Any) -> str:
    """Return ``value`` if it can be a tag's value.

    Raises:
        InputError: not text, longer than 1000 characters, or holding a control character.
    """
    if not isinstance(value, str):
        raise InputError(f"a tag value is text, not {type(value).__name__}")
    if len(value) > MAX_TAG_VALUE:
        raise InputError(f"the tag value is longer than {MAX_TAG_VALUE} characters "
                         f"({len(value)})", hint="keep long text in the description")
    if _controls(value):
        raise InputError(f"the tag value {value[:40]!r} holds a control character",
                         hint="tag values are one line of text")
    return value


def check_description(text: Any) -> str | None:
    """Return the description to record (``""`` clears it: None).

    Raises:
        InputError: not text, too long, or holding control characters other than
            line breaks and tabs.
    """
    if not isinstance(text, str):
        raise InputError(f"a description is text, not {type(text).__name__}")
    if len(text) > MAX_DESCRIPTION:
        raise InputError(f"the description is longer than {MAX_DESCRIPTION} characters "
                         f"({len(text)})")
    if _controls(text, "\n\t"):
        raise InputError("the description holds a control character",
                         hint="descriptions are text: line breaks and tabs only")
    return text or None


# --------------------------------------------------------------------------- lookups


def missing_model(tx: ReadTransaction, name: str) -> NotFoundError:
    """The error for a model name the registry does not hold (naming a rename, if any)."""
    found = tx.renamed_from(name)
    if found is not None:
        rename, current = found
        return NotFoundError(f"no model named {name!r} in the registry: it was renamed to "
                             f"{current!r} (audit entry {rename.seq})",
                             hint=f"use the new name: models:/{current}/... "
                                  f"(`mlprov models show {current}`)")
    return NotFoundError(f"no model named {name!r} in the registry")


def need_model(tx: ReadTransaction, name: str, *, deleted: bool = False) -> ModelRecord:
    """The model ``name``; a deleted one only with ``deleted``.

    Raises:
        NotFoundError: no such model (renamed: the hint names the new name), or deleted.
    """
    model = tx.get_model(name)
    if model is None:
        raise missing_model(tx, name)
    if model.deleted_seq is not None and not deleted:
        raise NotFoundError(f"model {name!r} was deleted (audit entry {model.deleted_seq})",
                            hint="a deleted model is not resolved, pulled or changed; "
                                 f"`mlprov audit log --name {name}` shows its history")
    return model


def name_periods(tx: ReadTransaction, name: str) -> list[tuple[str, int, int | None]]:
    """The names the model ``name`` had: ``(name, after, until)`` audit sequence numbers.

    Entries with ``after < seq < until`` (``until`` None: no end) name the model
    by that name; the renames themselves fall between periods.
    """
    renames = tx.renames_of(name)
    if not renames:
        return [(name, 0, None)]
    periods: list[tuple[str, int, int | None]] = [(renames[0].old_name, 0, renames[0].seq)]
    for current, following in zip(renames, [*renames[1:], None], strict=True):
        periods.append((current.new_name, current.seq,
                        following.seq if following is not None else None))
    return periods
