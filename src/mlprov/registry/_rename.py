"""Renaming models, and deleting models and versions as tombstones.

Both are changes like any other: checked by the gate of catalog changes
(:mod:`._changegate`: a built-in rule, unless the config names a policy),
signed, audited and announced by the recorder.

**Renames.** The model row takes the new name; its versions, aliases, stages,
reviews and tags follow it (they hang on the row). Everything signed before
keeps the old name: audit entries, registration and stage decisions name
``models:/OLD/N``. So a rename is recorded twice over: a ``model.rename`` entry
(and decision) and a row in the renames table naming that decision, which
re-verification reads to accept a decision made under the old name
(:func:`._facts.check_renames`); pulling walks the log from the decision to
the head and follows the rename there too. ``models:/OLD/...`` is then unknown,
and the error names the new name. A later registration under the old name (a
training job still producing it) makes a new model of that name, as MLflow does.

**Deletions** are tombstones: the rows stay (marked with the deleting entry),
so the version's evidence, decisions, reviews and audit trail remain and still
verify (``audit verify``, :meth:`Registry.verify_version`), while resolving,
pulling, loading and every change refuse it, and searches leave it out. A
version with an alias or in Production is not deleted: move it first. A
model's deletion tombstones each of its versions in use; registering a new
version of it puts the model back in use (the deleted versions stay deleted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlprov.errors import InputError
from mlprov.registry._catalog import need_model
from mlprov.registry._changegate import catalog_change
from mlprov.registry._gatekeeper import check_config_pinned
from mlprov.registry._recorder import after_commit, record_change, retrying
from mlprov.registry._records import ChangeResult, default_actor, need_version
from mlprov.registry._uri import check_name, check_version
from mlprov.registry.interface import RenameRecord, Stage

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext

__all__ = ["delete_model", "delete_version", "rename_model"]


def rename_model(registry: RegistryContext, name: str, new_name: str, *,
                 reason: str | None = None, actor: str | None = None) -> ChangeResult:
    """Rename the model ``name`` to ``new_name`` (see the module docstring)."""
    check_name(name)
    check_name(new_name)
    if name == new_name:
        raise InputError(f"{name} is already called {new_name}")
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            need_model(tx, name)
            taken = tx.get_model(new_name)
            if taken is not None:
                state = " (deleted; its name stays with its history)" \
                    if taken.deleted_seq is not None else ""
                raise InputError(f"a model named {new_name!r} exists{state}",
                                 hint="choose another name")
            versions = tx.list_versions(name)
            pending = catalog_change(
                registry, tx, kind="model.rename", gate="rename", name=new_name, version=None,
                target="name", actor=who, reason=reason,
                details={"from": name, "to": new_name}, versions=versions,
                what=f"renaming {name} to {new_name}")
            return record_change(registry, tx, pending, lambda decision, seq, now:
                                 tx.rename_model(RenameRecord(
                                     old_name=name, new_name=new_name, seq=seq,
                                     decision=decision, time=now)))

    return after_commit(registry, retrying(run))


def delete_version(registry: RegistryContext, name: str, version: int, *, reason: str,
                   actor: str | None = None) -> ChangeResult:
    """Tombstone one version (see the module docstring).

    Raises:
        InputError: the version has an alias or is in Production (move it first).
    """
    check_name(name)
    check_version(version)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            record = need_version(tx, name, version)
            aliases = [a.alias for a in tx.list_aliases(name) if a.version == version]
            if aliases:
                shown = ", ".join(f"@{a}" for a in aliases)
                raise InputError(f"{name} v{version} has the alias(es) {shown}: it is not "
                                 "deleted while an alias points at it",
                                 hint=f"move the alias first: `mlprov alias set {name} "
                                      f"{aliases[0]} VERSION` or `mlprov alias delete {name} "
                                      f"{aliases[0]} --reason TEXT`")
            if record.stage is Stage.PRODUCTION:
                raise InputError(f"{name} v{version} is in Production: it is not deleted "
                                 "while in Production",
                                 hint=f"move it out first: `mlprov promote {name} {version} "
                                      "--to Archived --reason TEXT`")
            pending = catalog_change(
                registry, tx, kind="version.delete", gate="delete", name=name, version=record,
                target="deleted", actor=who, reason=reason,
                details={"stage": record.stage.value}, what=f"deleting {name} v{version}")
            return record_change(registry, tx, pending, lambda _decision, seq, _time:
                                 tx.delete_version(name, version, seq))

    return after_commit(registry, retrying(run))


def delete_model(registry: RegistryContext, name: str, *, reason: str | None = None,
                 actor: str | None = None) -> ChangeResult:
    """Tombstone a model and each of its versions in use (see the module docstring).

    Raises:
        InputError: the model has an alias, or a version in Production.
    """
    check_name(name)
    who = actor or default_actor()
    check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            need_model(tx, name)
            aliases = tx.list_aliases(name)
            if aliases:
                shown = ", ".join(f"@{a.alias}" for a in aliases)
                raise InputError(f"{name} has the alias(es) {shown}: it is not deleted while "
                                 "an alias points at one of its versions",
                                 hint=f"delete them first: `mlprov alias delete {name} "
                                      f"{aliases[0].alias} --reason TEXT`")
            versions = tx.list_versions(name)
            serving = [v.version for v in versions if v.stage is Stage.PRODUCTION]
            if serving:
                raise InputError(f"{name} v{serving[0]} is in Production: the model is not "
                                 "deleted while a version is in Production",
                                 hint=f"move it out first: `mlprov promote {name} {serving[0]} "
                                      "--to Archived --reason TEXT`")
            pending = catalog_change(
                registry, tx, kind="model.delete", gate="delete", name=name, version=None,
                target="deleted", actor=who, reason=reason,
                details={"versions": [v.version for v in versions]}, versions=versions,
                what=f"deleting {name}")
            return record_change(registry, tx, pending, lambda _decision, seq, _time:
                                 tx.delete_model(name, seq))

    return after_commit(registry, retrying(run))
