"""``mlprov.registry``: a model registry in which nothing is trusted because a row says so.

Names map to numbered versions, each bound to a verified identity, root digest
and evidence; versions move through stages (None → Staging → Production →
Archived) and aliases point at them. Every change is gated by a policy over
re-verified evidence, signed by the registry's key as a SLSA VSA, appended to
a hash-chained audit log and announced as an event, all in one transaction::

    from mlprov.registry import Registry

    registry = Registry.init("~/.mlprov", trust="trust.yaml")   # once
    registry = Registry.open()              # --registry DIR / $MLPROV_HOME / ~/.mlprov
    v = registry.register("model/", evidence="evidence/")
    registry.promote(v.name, v.version, to="Staging", reason="eval passed")
    registry.set_alias(v.name, "production", v.version, reason="approved")
    path = registry.load("models:/credit-risk@production")   # verified local path

Storage is pluggable (:mod:`mlprov.registry.interface`): SQLite through
SQLAlchemy Core and a local content-addressed blob store are the embedded
defaults. See docs/registry.md.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.arguments import (
    BYTES,
    PATH,
    TEXT,
    TRUST,
    checked,
    either,
    lazy_instance,
    optional,
)
from mlprov.registry._arguments import COUNT

if TYPE_CHECKING:
    from mlprov.registry._auditlog import AuditReport
    from mlprov.registry._catalog import ModelInfo, Page, VersionInfo
    from mlprov.registry._core import Registry
    from mlprov.registry._facts import VersionFacts
    from mlprov.registry._filter import FilterError
    from mlprov.registry._gc import GcReport
    from mlprov.registry._home import HOME_ENV, default_home
    from mlprov.registry._hooks import sign_webhook, verify_webhook
    from mlprov.registry._migrate import MigrationReport, migrate_registry
    from mlprov.registry._pull import LoadedModel
    from mlprov.registry._records import (
        AliasChange,
        ArchivedVersionError,
        ChangeResult,
        PolicyDeniedError,
        PullResult,
        RegisterResult,
        RegistrationRefusedError,
        Resolved,
    )
    from mlprov.registry._reports import (
        AliasFact,
        ChildLink,
        ComponentFact,
        CopyResult,
        DatasetFact,
        DeploymentMember,
        DeploymentPullResult,
        Descendant,
        EvaluationFact,
        HistoryEntry,
        InputsFact,
        LoadedDeployment,
        ParentLink,
        PendingApproval,
        PulledMember,
        RegistryLineage,
        ResolvedDeployment,
        ReviewFact,
        SbomFact,
        SkippedReview,
        VersionDetails,
    )
    from mlprov.registry._search import PageTokenError
    from mlprov.registry._sql import SchemaUpgrade
    from mlprov.registry._stores_url import upgrade_registry
    from mlprov.registry._uri import (
        DeploymentUri,
        ModelUri,
        parse_deployment_uri,
        parse_model_uri,
        parse_time,
    )
    from mlprov.registry.interface import (
        NotFoundError,
        RegistryBusyError,
        RegistryError,
        RegistryIntegrityError,
        Stage,
    )
    from mlprov.signing import PublicKey
    from mlprov.trust import Trust

# Every name below is imported on first use (PEP 562), so that a command which only
# reads (``mlprov resolve``) loads the modules it runs and not, say, SQLAlchemy.
_LAZY: dict[str, str] = {
    "AliasChange": "mlprov.registry._records",
    "AliasFact": "mlprov.registry._reports",
    "ArchivedVersionError": "mlprov.registry._records",
    "AuditReport": "mlprov.registry._auditlog",
    "ChangeResult": "mlprov.registry._records",
    "ChildLink": "mlprov.registry._reports",
    "ComponentFact": "mlprov.registry._reports",
    "CopyResult": "mlprov.registry._reports",
    "DatasetFact": "mlprov.registry._reports",
    "DeploymentMember": "mlprov.registry._reports",
    "DeploymentPullResult": "mlprov.registry._reports",
    "DeploymentUri": "mlprov.registry._uri",
    "Descendant": "mlprov.registry._reports",
    "EvaluationFact": "mlprov.registry._reports",
    "FilterError": "mlprov.registry._filter",
    "GcReport": "mlprov.registry._gc",
    "HOME_ENV": "mlprov.registry._home",
    "HistoryEntry": "mlprov.registry._reports",
    "InputsFact": "mlprov.registry._reports",
    "LoadedDeployment": "mlprov.registry._reports",
    "LoadedModel": "mlprov.registry._pull",
    "MigrationReport": "mlprov.registry._migrate",
    "ModelInfo": "mlprov.registry._catalog",
    "ModelUri": "mlprov.registry._uri",
    "NotFoundError": "mlprov.registry.interface",
    "Page": "mlprov.registry._catalog",
    "PageTokenError": "mlprov.registry._search",
    "ParentLink": "mlprov.registry._reports",
    "PendingApproval": "mlprov.registry._reports",
    "PolicyDeniedError": "mlprov.registry._records",
    "PullResult": "mlprov.registry._records",
    "PulledMember": "mlprov.registry._reports",
    "RegisterResult": "mlprov.registry._records",
    "RegistrationRefusedError": "mlprov.registry._records",
    "Registry": "mlprov.registry._core",
    "RegistryBusyError": "mlprov.registry.interface",
    "RegistryError": "mlprov.registry.interface",
    "RegistryIntegrityError": "mlprov.registry.interface",
    "RegistryLineage": "mlprov.registry._reports",
    "Resolved": "mlprov.registry._records",
    "ResolvedDeployment": "mlprov.registry._reports",
    "ReviewFact": "mlprov.registry._reports",
    "SbomFact": "mlprov.registry._reports",
    "SchemaUpgrade": "mlprov.registry._sql",
    "SkippedReview": "mlprov.registry._reports",
    "Stage": "mlprov.registry.interface",
    "VersionDetails": "mlprov.registry._reports",
    "VersionFacts": "mlprov.registry._facts",
    "VersionInfo": "mlprov.registry._catalog",
    "default_home": "mlprov.registry._home",
    "migrate_registry": "mlprov.registry._migrate",
    "parse_deployment_uri": "mlprov.registry._uri",
    "parse_model_uri": "mlprov.registry._uri",
    "parse_time": "mlprov.registry._uri",
    "sign_webhook": "mlprov.registry._hooks",
    "upgrade_registry": "mlprov.registry._stores_url",
    "verify_webhook": "mlprov.registry._hooks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "HOME_ENV",
    "AliasChange",
    "AliasFact",
    "ArchivedVersionError",
    "AuditReport",
    "ChangeResult",
    "ChildLink",
    "ComponentFact",
    "CopyResult",
    "DatasetFact",
    "DeploymentMember",
    "DeploymentPullResult",
    "DeploymentUri",
    "Descendant",
    "EvaluationFact",
    "FilterError",
    "GcReport",
    "HistoryEntry",
    "InputsFact",
    "LoadedDeployment",
    "LoadedModel",
    "MigrationReport",
    "ModelInfo",
    "ModelUri",
    "NotFoundError",
    "Page",
    "PageTokenError",
    "ParentLink",
    "PendingApproval",
    "PolicyDeniedError",
    "PullResult",
    "PulledMember",
    "RegisterResult",
    "RegistrationRefusedError",
    "Registry",
    "RegistryBusyError",
    "RegistryError",
    "RegistryIntegrityError",
    "RegistryLineage",
    "Resolved",
    "ResolvedDeployment",
    "ReviewFact",
    "SbomFact",
    "SchemaUpgrade",
    "SkippedReview",
    "Stage",
    "VersionDetails",
    "VersionFacts",
    "VersionInfo",
    "default_home",
    "load",
    "migrate_registry",
    "parse_deployment_uri",
    "parse_model_uri",
    "parse_time",
    "sign_webhook",
    "trust_from_snapshot",
    "trust_snapshot",
    "upgrade_registry",
    "verify_webhook",
]


@checked(trust=lazy_instance("mlprov.trust", "Trust", "a mlprov.trust.Trust (load_trust(path))"),
         registry_key=optional(lazy_instance("mlprov.signing", "PublicKey")))
def trust_snapshot(trust: Trust, *, registry_key: PublicKey | None = None) -> bytes:
    """The self-contained form a registry stores a trust in (canonical JSON, keys as PEM).

    With ``registry_key`` (a key-signing registry's public key), that key is
    added with the ``registry`` role unless the trust already gives it the role,
    as ``set_trust`` does, so the result's SHA-256 is the digest the registry
    records for this trust. A registry server's client sends it to
    ``PUT /api/v1/registry/trust``.

    Example:
        data = trust_snapshot(load_trust("trust.yaml"))

    Raises:
        TrustError: the trust's Sigstore root cannot be read.
    """
    from mlprov.registry._home import trust_snapshot_of

    return trust_snapshot_of(trust, Path(trust.source).name, registry_key)


@checked(data=BYTES, source=TEXT)
def trust_from_snapshot(data: bytes, *, source: str) -> Trust:
    """A :class:`~mlprov.trust.Trust` rebuilt from :func:`trust_snapshot`'s bytes.

    Example:
        trust = trust_from_snapshot(data, source="trust.yaml")

    Raises:
        InputError: not a trust snapshot (unknown schema, malformed keys or rules).
    """
    from mlprov.errors import InputError
    from mlprov.registry._home import load_trust_snapshot
    from mlprov.registry.interface import StoreError

    try:
        return load_trust_snapshot(data, source=source)
    except StoreError as exc:
        raise InputError(f"not a usable trust: {exc}",
                         hint="send the trust as mlprov.registry.trust_snapshot() makes it") \
            from exc


@checked(uri=TEXT, registry=optional(either(
    lazy_instance("mlprov.registry._core", "Registry", "a Registry"), PATH)), trust=optional(TRUST),
         min_seq=optional(COUNT), head_file=optional(PATH))
def load(uri: str, registry: Registry | Path | str | None = None, *,
         trust: Trust | Path | str | None = None, min_seq: int | None = None,
         head_file: Path | str | None = None, allow_archived: bool = False
         ) -> LoadedModel | LoadedDeployment:
    """Return a verified local copy of a ``models:/`` URI, and which version it is.

    The result is path-like (``open(model / "config.json")``) and carries
    ``name``, ``version``, ``digest``, ``identity`` and ``uri``. A
    ``deployments:/`` URI gives a :class:`LoadedDeployment`: each member's
    verified copy (``stack["credit-risk"]``), every member verified.

    The decision that put the version there, its evidence and every byte of
    its files are verified first; the path is a read-only checkout inside the
    registry (``checkouts/``), re-checked on every call.

    Example:
        model = mlprov.load("models:/credit-risk@production")
        print(model.version, model.digest)
        weights = open(model / "weights.safetensors", "rb")

    Args:
        uri: ``models:/NAME@ALIAS``, ``models:/NAME/N``, ``models:/NAME/STAGE``, or a
            ``deployments:/`` URI of the same forms.
        registry: a :class:`Registry`, or its directory (default:
            ``$MLPROV_HOME``, else ``~/.mlprov``).
        trust: verify with this trust (a :class:`~mlprov.trust.Trust` or a trust
            file) instead of the registry's own; it must name the registry's key
            with the ``registry`` role.
        min_seq: refuse a registry whose signed head is older than this entry.
        head_file: a file where the caller keeps the last head it saw: refuse an
            older (or forked) head, then record this one.
        allow_archived: hand out an Archived version that an alias or stage URI
            leads to (refused otherwise); recorded in the audit log.

    Raises:
        NotFoundError: unknown model, alias, stage or version.
        mlprov.errors.VerificationError: a signature, digest or decision check failed.
    """
    from mlprov.trust import Trust as _Trust
    from mlprov.trust import load_trust

    resolved_trust = trust if isinstance(trust, _Trust) or trust is None \
        else load_trust(Path(trust))
    deployment = uri.startswith("deployments:/")
    if deployment and allow_archived:
        from mlprov.errors import InputError

        raise InputError("allow_archived is for models:/ URIs",
                         hint="name the deployment's version (deployments:/NAME/N) to read "
                              "an Archived one")

    def take(reg: Registry) -> LoadedModel | LoadedDeployment:
        if deployment:
            return reg.load_deployment(uri, trust=resolved_trust, min_seq=min_seq,
                                       head_file=head_file)
        return reg.load(uri, trust=resolved_trust, min_seq=min_seq, head_file=head_file,
                        allow_archived=allow_archived)

    from mlprov.registry._core import Registry as _Registry

    if isinstance(registry, _Registry):
        return take(registry)
    with _Registry.open(registry) as opened:
        return take(opened)
