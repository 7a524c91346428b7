"""``models:/`` URIs, model names and aliases, and timestamps.

URIs follow MLflow's forms, so the same strings work with both tools:
``models:/NAME/3``, ``models:/NAME@ALIAS``, ``models:/NAME/Production`` and
``models:/NAME/latest``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from mlprov.errors import InputError
from mlprov.registry.interface import Stage

__all__ = [
    "ModelUri",
    "check_alias",
    "check_name",
    "parse_model_uri",
    "parse_time",
    "sha256_digest",
    "utc_now",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")
_VERSION_LIKE = re.compile(r"^v\d+$")


class UriError(InputError):
    """A ``models:/`` URI that cannot be parsed."""

    hint = ("use models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE "
            "(Staging, Production, Archived) or models:/NAME/latest")


def check_name(name: str, *, what: str = "model name") -> str:
    """Return ``name`` if it can be used in ``models:/`` URIs.

    Raises:
        InputError: it holds characters other than letters, digits and ``._+-``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"invalid {what} {name!r}",
                         hint="use letters, digits and . _ + - (starting with a letter or "
                              "digit, at most 200 characters)")
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias (lower-case, not a stage or ``latest``).

    Raises:
        InputError: otherwise.
    """
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InputError(f"invalid alias {alias!r}",
                         hint="use lower-case letters, digits, _ and -, starting with a letter")
    if alias == "latest" or _VERSION_LIKE.match(alias):
        raise InputError(f"alias {alias!r} is reserved ('latest' and v<N> name versions)",
                         hint="choose another alias, e.g. production or champion")
    return alias


def parse_stage(text: str) -> Stage:
    """Parse a stage name, case-insensitively.

    Raises:
        InputError: not a stage.
    """
    for stage in Stage:
        if text.lower() == stage.value.lower():
            return stage
    raise InputError(f"unknown stage {text!r}",
                     hint="stages are None, Staging, Production and Archived")


@dataclass(frozen=True)
class ModelUri:
    """A parsed ``models:/`` URI: exactly one of version, alias, stage or latest."""

    name: str
    version: int | None = None
    alias: str | None = None
    stage: Stage | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        if self.stage is not None:
            return f"models:/{self.name}/{self.stage.value}"
        return f"models:/{self.name}/latest"


def version_uri(name: str, version: int) -> str:
    """The URI naming one version."""
    return f"models:/{name}/{version}"


def parse_model_uri(text: str) -> ModelUri:
    """Parse ``models:/NAME/N``, ``models:/NAME@ALIAS``, ``models:/NAME/STAGE``, ``.../latest``.

    Raises:
        UriError: anything else.
    """
    if not isinstance(text, str) or not text.startswith("models:/"):
        raise UriError(f"not a models:/ URI: {text!r}")
    rest = text[len("models:/"):]
    try:
        if "/" in rest:
            name, _, tail = rest.partition("/")
            check_name(name)
            if tail.isdigit() and not tail.startswith("0"):
                return ModelUri(name=name, version=int(tail))
            if tail == "latest":
                return ModelUri(name=name, latest=True)
            return ModelUri(name=name, stage=parse_stage(tail))
        if "@" in rest:
            name, _, alias = rest.partition("@")
            return ModelUri(name=check_name(name), alias=check_alias(alias))
    except InputError as exc:
        raise UriError(f"bad URI {text!r}: {exc}") from exc
    raise UriError(f"bad URI {text!r}: name a version, an alias, a stage or latest")


def utc_now() -> str:
    """Now as RFC 3339 UTC with microseconds (sorts as text)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> str:
    """Parse an RFC 3339 / ISO 8601 time (naive means UTC) into :func:`utc_now`'s form.

    Raises:
        InputError: not a time.
    """
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"not a time: {text!r}",
                         hint="use RFC 3339, e.g. 2026-01-31T12:00:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
