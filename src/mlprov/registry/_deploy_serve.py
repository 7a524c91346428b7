"""Deployments served like models: resolve, pull and load ``deployments:/`` URIs.

``deployments:/NAME/N``, ``deployments:/NAME@ALIAS``, ``deployments:/NAME/STAGE``
(the newest version in that stage) and ``deployments:/NAME/latest`` resolve to a
deployment version. Before anything is handed out, as for a model (:mod:`._pull`):

1. the registry's signed head (and a pipeline's ``--head-file``/``--min-seq``);
2. the decision that put the deployment version where the URI found it (its
   creation, its stage move, or the alias's latest audited move), signed by the
   registry, about this version and its spec, not superseded
   (:func:`._deploy.check_deployment_placement`);
3. the deployment's signed statement and spec (:func:`._deploy.verified_view`);
4. every member the spec pins: its row is the pinned version, its evidence and
   registration re-verified (:func:`._deploy.verified_members`);
5. ``pull``: every file of every member copied and re-hashed, one directory per
   member, renamed into place when all are done; ``load``: each member's
   verified read-only checkout.

An alias, stage or ``latest`` URI that leads to an Archived deployment is not
handed out (name the version to read it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlprov.errors import InputError
from mlprov.registry._deploy import (
    check_deployment_placement,
    current_alias,
    deployment_uri,
    verified_members,
    verified_view,
)
from mlprov.registry._facts import read_decision
from mlprov.registry._head import check_head_file
from mlprov.registry._pull import LoadedModel, checkout, copy_files
from mlprov.registry._records import ArchivedVersionError, Resolved
from mlprov.registry._reports import (
    DeploymentPullResult,
    LoadedDeployment,
    PulledMember,
    ResolvedDeployment,
)
from mlprov.registry._uri import DeploymentUri, parse_deployment_uri, version_uri
from mlprov.registry.interface import (
    DeploymentRecord,
    NotFoundError,
    ReadTransaction,
    Stage,
    VersionRecord,
)

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._facts import VersionFacts
    from mlprov.trust import Trust

__all__ = ["load_deployment", "pull_deployment", "resolve_deployment"]

Member = tuple[VersionRecord, "VersionFacts"]


def _missing(name: str, what: str) -> NotFoundError:
    return NotFoundError(f"deployment {name} has no {what}",
                         hint=f"`mlprov deployment show {name}` lists its versions and aliases")


def _lookup(tx: ReadTransaction, uri: DeploymentUri) -> tuple[DeploymentRecord, str, str]:
    """The deployment version ``uri`` names, the decision that put it there, and how."""
    name = uri.name
    versions = tx.list_deployments(name)
    if not versions:
        raise NotFoundError(f"no deployment named {name!r} in the registry",
                            hint="`mlprov deployment list` shows the deployments")
    if uri.version is not None:
        record = tx.get_deployment(name, uri.version)
        if record is None:
            raise _missing(name, f"version {uri.version}")
        return record, record.decision, "version"
    if uri.alias is not None:
        entry = current_alias(tx, name, uri.alias)
        record = tx.get_deployment(name, entry.version) \
            if entry is not None and entry.version is not None else None
        if entry is None or record is None or entry.decision is None:
            raise _missing(name, f"alias {uri.alias!r}")
        return record, entry.decision, f"@{uri.alias}"
    if uri.stage is not None:
        staged = [r for r in versions if r.stage is uri.stage]
        if not staged or staged[-1].stage_decision is None:
            raise _missing(name, f"version in stage {uri.stage.value}")
        return staged[-1], str(staged[-1].stage_decision), "stage"
    return versions[-1], versions[-1].decision, "latest"


def _prepare(registry: RegistryContext, uri: str, trust: Trust | None, *,
             min_seq: int | None = None, head_file: Path | None = None
             ) -> tuple[ResolvedDeployment, list[Member]]:
    parsed = parse_deployment_uri(uri)
    settings = registry.settings
    head = settings.head(anchor=trust)
    check_head_file(head, min_seq=min_seq, head_file=head_file)
    using = trust or settings.trust
    with registry.metadata.read() as tx:
        record, decision, via = _lookup(tx, parsed)
        if record.stage is Stage.ARCHIVED and via != "version":
            raise ArchivedVersionError(
                f"{parsed} leads to deployment {record.name} v{record.version}, which is in "
                "stage Archived: not handed out",
                hint=f"name the version ({deployment_uri(record.name, record.version)}) to "
                     "read it")
        check_deployment_placement(tx, record, read_decision(tx.get_decision, decision), via,
                                   using, settings.registry_id)
        view = verified_view(registry, record, trust=trust)
        members = verified_members(registry, tx, view, trust=trust)
    resolved = ResolvedDeployment(
        uri=str(parsed), name=record.name, version=record.version, stage=record.stage,
        decision=decision, via=via, spec_digest=record.spec_digest, signed_by=view.signer,
        members=tuple(m for m, _r, _f in members))
    return resolved, [(r, f) for _m, r, f in members]


def resolve_deployment(registry: RegistryContext, uri: str, *, trust: Trust | None = None,
                       min_seq: int | None = None, head_file: Path | None = None
                       ) -> ResolvedDeployment:
    """Resolve a ``deployments:/`` URI and verify it and its members (nothing is copied)."""
    return _prepare(registry, uri, trust, min_seq=min_seq, head_file=head_file)[0]


def _directories(members: list[Member]) -> list[str]:
    """One directory name per member: its model's name, ``NAME-vN`` when two share a name."""
    names = [record.name for record, _facts in members]
    return [record.name if names.count(record.name) == 1 else
            f"{record.name}-v{record.version}" for record, _facts in members]


def pull_deployment(registry: RegistryContext, uri: str, out: Path, *,
                    trust: Trust | None = None, min_seq: int | None = None,
                    head_file: Path | None = None) -> DeploymentPullResult:
    """Copy every member of the deployment ``uri`` names into ``out``, one directory each.

    Raises:
        InputError: ``out`` exists and is not an empty directory.
        RegistryIntegrityError, BlobCorruptError, SignatureError: a check failed;
            nothing is left in ``out``.
    """
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise InputError(f"{out} exists and is not an empty directory",
                         hint="choose a new --out directory")
    resolved, members = _prepare(registry, uri, trust, min_seq=min_seq, head_file=head_file)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    pulled = []
    try:
        for directory, (record, facts) in zip(_directories(members), members, strict=True):
            target = staging / directory
            target.mkdir()
            _path, size = copy_files(registry, facts, target)
            pulled.append(PulledMember(uri=version_uri(record.name, record.version),
                                       path=out / directory, files=len(facts.manifest.files),
                                       bytes=size))
        os.chmod(staging, 0o755)  # noqa: S103 - model files are not secret; mkdtemp made 0700
        if out.is_dir():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DeploymentPullResult(resolved=resolved, path=out, members=tuple(pulled))


def load_deployment(registry: RegistryContext, uri: str, *, trust: Trust | None = None,
                    min_seq: int | None = None, head_file: Path | None = None
                    ) -> LoadedDeployment:
    """Verified read-only checkouts of every member of the deployment ``uri`` names."""
    resolved, members = _prepare(registry, uri, trust, min_seq=min_seq, head_file=head_file)
    loaded = []
    for record, facts in members:
        member_uri = version_uri(record.name, record.version)
        as_version = Resolved(uri=member_uri, record=record, decision=record.registration,
                              via="version")
        loaded.append(LoadedModel(path=checkout(registry, as_version, facts), uri=member_uri,
                                  name=record.name, version=record.version,
                                  digest=record.root_digest, identity=record.identity))
    return LoadedDeployment(uri=resolved.uri, name=resolved.name, version=resolved.version,
                            members=tuple(loaded))
