"""``models:/`` URIs, model names and aliases, and timestamps.

URIs follow MLflow's forms, so the same strings work with both tools:
``models:/NAME/3``, ``models:/NAME@ALIAS``, ``models:/NAME/Production`` and
``models:/NAME/latest``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from mlprov._internal.arguments import TEXT, checked
from mlprov._internal.names import check_alias, check_name, check_version, parse_version
from mlprov.errors import InputError
from mlprov.registry.interface import Stage

__all__ = [
    "DeploymentUri",
    "ModelUri",
    "check_alias",
    "check_name",
    "check_version",
    "parse_deployment_uri",
    "parse_model_uri",
    "parse_time",
    "sha256_digest",
    "utc_now",
]



class UriError(InputError):
    """A ``models:/`` URI that cannot be parsed."""

    hint = ("use models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE "
            "(Staging, Production, Archived) or models:/NAME/latest")


def parse_stage(text: str) -> Stage:
    """Parse a stage name, case-insensitively.

    Raises:
        InputError: not a stage.
    """
    if not isinstance(text, str) or not text.isascii():
        raise InputError(f"unknown stage {text!r}",
                         hint="stages are None, Staging, Production and Archived")
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


def _parts(text: str, prefix: str, what: str, error: type[UriError]) -> ModelUri:
    """``NAME/N``, ``NAME@ALIAS``, ``NAME/STAGE`` or ``NAME/latest`` after ``prefix``."""
    if not isinstance(text, str) or not text.startswith(prefix):
        raise error(f"not a {prefix} URI: {text!r}")
    rest = text[len(prefix):]
    try:
        if "/" in rest:
            name, _, tail = rest.partition("/")
            check_name(name, what=what)
            if tail[:1].isdigit():
                return ModelUri(name=name, version=parse_version(tail))
            if tail == "latest":
                return ModelUri(name=name, latest=True)
            return ModelUri(name=name, stage=parse_stage(tail))
        if "@" in rest:
            name, _, alias = rest.partition("@")
            return ModelUri(name=check_name(name, what=what), alias=check_alias(alias))
    except InputError as exc:
        raise error(f"bad URI {text!r}: {exc}") from exc
    raise error(f"bad URI {text!r}: name a version, an alias, a stage or latest")


@checked(text=TEXT)
def parse_model_uri(text: str) -> ModelUri:
    """Parse ``models:/NAME/N``, ``models:/NAME@ALIAS``, ``models:/NAME/STAGE``, ``.../latest``.

    Example:
        parse_model_uri("models:/credit-risk@production")

    Raises:
        UriError: anything else.
    """
    return _parts(text, "models:/", "model name", UriError)


class DeploymentUriError(UriError):
    """A ``deployments:/`` URI that cannot be parsed."""

    hint = ("use deployments:/NAME/VERSION, deployments:/NAME@ALIAS, deployments:/NAME/STAGE "
            "(Staging, Production, Archived) or deployments:/NAME/latest")


@dataclass(frozen=True)
class DeploymentUri:
    """A parsed ``deployments:/`` URI: exactly one of version, alias, stage or latest."""

    name: str
    version: int | None = None
    alias: str | None = None
    stage: Stage | None = None
    latest: bool = False

    def __str__(self) -> str:
        return "deployments:/" + str(ModelUri(self.name, self.version, self.alias, self.stage,
                                              self.latest)).removeprefix("models:/")


@checked(text=TEXT)
def parse_deployment_uri(text: str) -> DeploymentUri:
    """Parse ``deployments:/NAME/N``, ``deployments:/NAME@ALIAS``, ``/STAGE`` or ``/latest``.

    Example:
        parse_deployment_uri("deployments:/credit-stack@production")

    Raises:
        DeploymentUriError: anything else.
    """
    parts = _parts(text, "deployments:/", "deployment name", DeploymentUriError)
    return DeploymentUri(parts.name, parts.version, parts.alias, parts.stage, parts.latest)


def utc_now() -> str:
    """Now as RFC 3339 UTC with microseconds (sorts as text)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@checked(text=TEXT)
def parse_time(text: str) -> str:
    """Parse an RFC 3339 / ISO 8601 time (naive means UTC) into :func:`utc_now`'s form.

    Example:
        parse_time("2026-01-31T12:00:00Z")

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
