"""Descriptions and tags of models and versions: audited changes, and the reads that show them.

``mlprov models describe`` and ``mlprov tag set|delete`` are changes like any
other: signed, audited (who, when, the old and the new value) and announced
by the recorder, allowed by a built-in rule unless the registry's config names
a policy for them (:mod:`._changegate`). ``audit verify`` replays them, so a
tag or description written into the database directly is reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlprov.errors import InputError
from mlprov.registry._catalog import (
    ModelInfo,
    VersionInfo,
    check_description,
    check_tag_key,
    check_tag_value,
    frozen_mapping,
    need_model,
)
from mlprov.registry._changegate import catalog_change
from mlprov.registry._gatekeeper import check_config_pinned
from mlprov.registry._recorder import after_commit, record_change, retrying
from mlprov.registry._records import ChangeResult, default_actor, need_version
from mlprov.registry._uri import check_name, check_version
from mlprov.registry.interface import NotFoundError, TagRecord, VersionRecord, WriteTransaction

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["MAX_TAGS", "delete_tag", "model_info", "set_description", "set_tag",
           "version_info"]

#: Tags per model or version, at most.
MAX_TAGS = 100


def _label(name: str, version: int | None) -> str:
    return name if version is None else f"{name} v{version}"


def _target(tx: WriteTransaction, name: str, version: int | None
            ) -> tuple[str | None, VersionRecord | None]:
    """The current description of the model or version, and the version's record."""
    model = need_model(tx, name)
    if version is None:
        return model.description, None
    record = need_version(tx, name, version)
    return record.description, record


def set_description(registry: RegistryContext, name: str, text: str, *,
                    version: int | None = None, reason: str | None = None,
                    actor: str | None = None) -> ChangeResult:
    """Describe a model or one version (``""`` clears it); audited with the old text."""
    check_name(name)
    if version is not None:
        check_version(version)
    new = check_description(text)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            old, record = _target(tx, name, version)
            if old == new:
                state = "has no description" if new is None else "has that description"
                raise InputError(f"{_label(name, version)} already {state}")
            pending = catalog_change(
                registry, tx, kind="model.describe" if version is None else "version.describe",
                gate="descriptions", name=name, version=record, target="description",
                actor=who, reason=reason, details={"from": old, "to": new},
                what=f"describing {_label(name, version)}")
            return record_change(registry, tx, pending, lambda _decision, _seq, _time:
                                 tx.set_description(name, version, new))

    return after_commit(registry, retrying(run))


def set_tag(registry: RegistryContext, name: str, key: str, value: str = "", *,
            version: int | None = None, reason: str | None = None,
            actor: str | None = None) -> ChangeResult:
    """Set a tag of a model or one version; audited with the old value."""
    check_name(name)
    if version is not None:
        check_version(version)
    check_tag_key(key)
    check_tag_value(value)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            _old, record = _target(tx, name, version)
            tags = {t.key: t.value for t in tx.list_tags(name, version)}
            old = tags.get(key)
            if old == value:
                raise InputError(f"{_label(name, version)} already has tag {key}={value!r}")
            if old is None and len(tags) >= MAX_TAGS:
                raise InputError(f"{_label(name, version)} has {MAX_TAGS} tags already",
                                 hint="delete one first: `mlprov tag delete`")
            pending = catalog_change(
                registry, tx, kind="model.tag" if version is None else "version.tag",
                gate="tags", name=name, version=record, target="tag", actor=who,
                reason=reason, details={"key": key, "from": old, "to": value},
                what=f"tagging {_label(name, version)} {key}={value}")
            return record_change(registry, tx, pending, lambda _decision, seq, now: tx.set_tag(
                TagRecord(name=name, version=version, key=key, value=value, seq=seq,
                          updated_at=now)))

    return after_commit(registry, retrying(run))


def delete_tag(registry: RegistryContext, name: str, key: str, *, version: int | None = None,
               reason: str | None = None, actor: str | None = None) -> ChangeResult:
    """Remove a tag of a model or one version; audited with the value it had."""
    check_name(name)
    if version is not None:
        check_version(version)
    check_tag_key(key)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            _old, record = _target(tx, name, version)
            old = {t.key: t.value for t in tx.list_tags(name, version)}.get(key)
            if old is None:
                raise NotFoundError(f"{_label(name, version)} has no tag {key!r}",
                                    hint=f"`mlprov models show {name}` lists its tags")
            pending = catalog_change(
                registry, tx, kind="model.tag" if version is None else "version.tag",
                gate="tags", name=name, version=record, target="tag", actor=who,
                reason=reason, details={"key": key, "from": old, "to": None},
                what=f"removing tag {key} of {_label(name, version)}")
            return record_change(registry, tx, pending, lambda _decision, _seq, _time:
                                 tx.delete_tag(name, version, key))

    return after_commit(registry, retrying(run))


def model_info(registry: RegistryContext, name: str) -> ModelInfo:
    """A model in use with its description, tags and aliases."""
    check_name(name)
    with registry.metadata.read() as tx:
        model = need_model(tx, name)
        tags = tx.model_tags([name]).get(name, {})
        aliases = tx.list_aliases(name)
    return ModelInfo(name=name, created_at=model.created_at,
                     latest_version=model.latest_version, description=model.description,
                     tags=frozen_mapping(tags),
                     aliases=frozen_mapping({a.alias: a.version for a in aliases}))


def version_info(registry: RegistryContext, name: str, version: int) -> VersionInfo:
    """A version in use with its description, tags, aliases and indexed eval metrics."""
    check_name(name)
    check_version(version)
    with registry.metadata.read() as tx:
        record = need_version(tx, name, version)
        tags = tx.version_tags([(name, version)]).get((name, version), {})
        metrics = tx.version_metrics([(name, version)]).get((name, version), {})
        aliases = tuple(a.alias for a in tx.list_aliases(name) if a.version == version)
    return VersionInfo.of(record, tags=tags, aliases=aliases, metrics=metrics)
