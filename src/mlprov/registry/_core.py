"""The registry's façade: :class:`Registry` opens a registry and delegates every operation.

It holds what a registry is made of (where it is, its stores, its settings and
caches; :class:`~._context.RegistryContext`) and hands itself to the modules
that do the work, which never reach back into it:

- :mod:`._setup`: opening a registry, and creating one;
- :mod:`._settings`: what it acts on (id, anchor, signed head, trust, config,
  thresholds, policies, signer), read as the signed head names it;
- :mod:`._recorder`: every change signed, applied, audited, announced and
  checkpointed in one transaction, with retries (the module docstring says how);
- :mod:`._gatekeeper`: what every gated move asks first;
- one module per group of operations: :mod:`._settings_ops`, :mod:`._register`,
  :mod:`._moves`, :mod:`._lookup`, :mod:`._views`, :mod:`._deploy`,
  :mod:`._pull`, :mod:`._auditlog`, :mod:`._events`; and what a version holds
  (:mod:`._show`, :mod:`._relatives`), copies (:mod:`._copy`), deployments
  served (:mod:`._deploy_serve`) and pending approvals (:mod:`._pending`), whose
  typed records are in :mod:`._reports`.

See docs/registry-architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.arguments import (
    BOOL,
    NUMBER,
    PATH,
    STRINGS,
    TEXT,
    checked,
    either,
    int_in,
    lazy_instance,
    mapping,
    optional,
)
from mlprov.registry import _faults  # noqa: F401 - re-exported: tests patch the fault points as ``_core._faults``
from mlprov.registry._arguments import (
    COUNT,
    ORDER_BY,
    PAGE_SIZE,
    PATH_OBJ,
    STAGE,
    THRESHOLDS,
    TRUST_OBJ,
    URI,
    VERSION,
)
from mlprov.registry._gate import PolicyCache
from mlprov.registry._location import RegistryLocation
from mlprov.registry._records import (
    ArchivedVersionError,
    ChangeResult,
    PolicyDeniedError,
    RegisterResult,
    Resolved,
    default_actor,
)
from mlprov.registry._settings import RegistrySettings

if TYPE_CHECKING:
    from mlprov.inspection import Inspection
    from mlprov.registry._catalog import ModelInfo, Page, VersionInfo
    from mlprov.registry._config import RegistryConfig
    from mlprov.registry._facts import VerifiedCache, VersionFacts
    from mlprov.registry._gc import GcReport
    from mlprov.registry._head import SignedHead
    from mlprov.registry._pull import LoadedModel
    from mlprov.registry._records import AliasChange, GatePolicy, PullResult
    from mlprov.registry._reports import (
        CopyResult,
        DeploymentPullResult,
        LoadedDeployment,
        PendingApproval,
        RegistryLineage,
        ResolvedDeployment,
        VersionDetails,
    )
    from mlprov.registry._uri import ModelUri
    from mlprov.registry.interface import BlobStore, MetadataStore, Stage, VersionRecord
    from mlprov.thresholds import Thresholds
    from mlprov.trust import Trust

__all__ = [
    "ArchivedVersionError",
    "ChangeResult",
    "PolicyDeniedError",
    "RegisterResult",
    "Registry",
    "Resolved",
]


class Registry:
    """A model registry in a directory (metadata in SQLite, blobs content-addressed).

    Open one with :meth:`open` (or create it with :meth:`init`). Every method
    that changes something is one transaction (see :mod:`._recorder`).
    """

    def __init__(self, home: Path, metadata: MetadataStore, blobs: BlobStore, *,
                 location: RegistryLocation | None = None,
                 key: Path | str | None = None) -> None:
        self.location = location or RegistryLocation(home=home)
        self.home = home
        self.metadata = metadata
        self.blobs = blobs
        self.settings = RegistrySettings(home, self.location, metadata, blobs, key=key)
        self.policy_cache = PolicyCache()
        self._verified: VerifiedCache | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    @checked(home=optional(PATH))
    def open(cls, home: Path | str | None = None, *, key: Path | str | None = None
             ) -> Registry:
        """Open the registry at ``home``: a directory or a database URL.

        Default: ``$MLPROV_REGISTRY``, else ``$MLPROV_HOME``, else ``~/.mlprov``. A
        team registry (``postgresql+psycopg://USER@HOST/DB``) finds its blob store
        in its database and pins its public key locally at first use
        (:mod:`mlprov.registry._location`); ``key`` (else ``$MLPROV_REGISTRY_KEY``)
        is its private key, needed only to change it.

        Example:
            registry = Registry.open()            # $MLPROV_HOME, else ~/.mlprov

        Raises:
            NotFoundError: there is no registry there.
            RegistryIntegrityError: a team registry's public key is not the pinned one.
        """
        from mlprov.registry import _setup

        make: _setup.MakeRegistry[Registry] = cls
        return _setup.open_registry(home, key=key, make=make)

    @classmethod
    @checked(home=optional(PATH), trust=PATH, policies=optional(PATH), key=optional(PATH),
             actor=optional(TEXT), sigstore=BOOL, identity_token=optional(TEXT), staging=BOOL,
             trust_config=optional(PATH), thresholds=optional(THRESHOLDS),
             blobs=optional(PATH))
    def init(cls, home: Path | str | None, *, trust: Path | str,
             policies: Path | str | None = None, key: Path | str | None = None,
             actor: str | None = None, sigstore: bool = False,
             identity_token: str | None = None, staging: bool = False,
             trust_config: Path | str | None = None,
             thresholds: Thresholds | Iterable[str] | None = None,
             blobs: Path | str | None = None) -> Registry:
        """Create a registry: its database, blob store, key, trust, policies and config.

        With ``sigstore`` the registry signs keyless (docs/keyless.md) instead of
        with a key: ``identity_token`` (else ``$MLPROV_IDENTITY_TOKEN``, else the
        CI job's ambient credential), on the public-good instance, ``staging`` or
        the instance of ``trust_config``; the trust file must give that identity
        the ``registry`` role in a ``sigstore`` rule. The choice is recorded in
        the registry's state and in the audited init entry.

        Example:
            registry = Registry.init("~/.mlprov", trust="trust.yaml")

        Args:
            home: the registry directory (created; must not hold a registry).
            trust: the trust file the registry enforces.
            policies: a directory of Rego policies (default: the shipped ones).
            key: the registry's signing key (PEM); generated when not given.
            actor: who is creating it (default: :func:`default_actor`).
            sigstore: sign keyless with Sigstore instead of a key.
            identity_token: the OIDC token for ``sigstore``.
            staging: ``sigstore`` on the Sigstore staging instance.
            trust_config: ``sigstore`` on a private instance (ClientTrustConfig JSON).
            thresholds: metric thresholds replacing the policy data's own
                (``["test/auc>=0.85", "slice:auc>=0.6"]``; :mod:`mlprov.thresholds`).
            blobs: a team registry's blob store (``home`` a database URL):
                ``s3://BUCKET/PREFIX`` or a directory every machine mounts. Its key
                (``key`` or ``$MLPROV_REGISTRY_KEY``) is never stored in the database.

        Raises:
            InputError: a registry exists there, or an input is unusable (or,
                keyless, the trust gives the signing identity no registry role).
            SigningError: keyless: no usable identity token.
        """
        from mlprov.registry import _setup

        make: _setup.MakeRegistry[Registry] = cls
        return _setup.create_registry(
            home, trust=trust, policies=policies, key=key, actor=actor, sigstore=sigstore,
            identity_token=identity_token, staging=staging, trust_config=trust_config,
            thresholds=thresholds, blobs=blobs, make=make)

    def close(self) -> None:
        """Release the database connections."""
        self.metadata.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ settings

    @property
    def registry_id(self) -> str:
        """The registry's id (a UUID made at init; named in every decision)."""
        return self.settings.registry_id

    @property
    def anchor(self) -> Trust:
        """Who may sign the registry's decisions and heads (:attr:`RegistrySettings.anchor`)."""
        return self.settings.anchor

    @checked(anchor=optional(TRUST_OBJ))
    def head(self, *, anchor: Trust | None = None) -> SignedHead:
        """The registry's signed head, verified with ``anchor`` (default: :attr:`anchor`).

        The log must end where the head says.

        Example:
            head = registry.head()

        Raises:
            RegistryIntegrityError: no valid head, or a log cut, extended or rewritten.
        """
        return self.settings.head(anchor=anchor)

    @property
    def trust(self) -> Trust:
        """The trust the registry enforces: its signed snapshot (registry role: :attr:`anchor`)."""
        return self.settings.trust

    @property
    def config(self) -> RegistryConfig:
        """The recorded ``mlprov.toml`` (the version the audit log accepted)."""
        return self.settings.config

    def config_text(self) -> str:
        """The recorded ``mlprov.toml`` (gates, hooks), as the audit log accepted it."""
        return self.settings.config_bytes.decode("utf-8")

    @property
    def thresholds(self) -> Thresholds:
        """The registry's metric thresholds (empty: the policy data's own apply)."""
        return self.settings.thresholds

    @property
    def signer(self) -> Any:
        """The registry's :class:`~mlprov.signing.BundleSigner` (key or Sigstore session)."""
        return self.settings.signer

    def policies_dir(self) -> Path:
        """The directory holding the recorded policies (rebuilt from blobs if needed)."""
        return self.settings.policies_dir()

    @property
    def address(self) -> str:
        """What :meth:`open` takes to open this registry again: its directory or database URL."""
        return self.location.url if self.location.url is not None else str(self.home)

    @property
    def verified(self) -> VerifiedCache:
        """Re-verifications of stored versions, memoised by content digests."""
        if self._verified is None:
            from mlprov.registry._facts import VerifiedCache

            self._verified = VerifiedCache()
        return self._verified

    def gate_policy(self, *, stage: Stage | str | None = None, alias: str | None = None
                    ) -> GatePolicy:
        """Which policy, data and thresholds gate a move to ``stage`` or to ``alias``.

        The registry's own gate table (``mlprov.toml``), policies, data file and
        thresholds, for ``mlprov policy check --registry`` (a dry run of a move,
        ``--dry-run``, also evaluates the version's registered facts and state).

        Raises:
            InputError: neither or both of ``stage`` and ``alias``.
        """
        from mlprov.registry import _gatekeeper

        return _gatekeeper.gate_policy(self, stage=stage, alias=alias)

    # ------------------------------------------------------------------ registry config

    @checked(trust=either(PATH, TRUST_OBJ), reason=TEXT, actor=optional(TEXT))
    def set_trust(self, trust: Trust | Path | str, *, reason: str, actor: str | None = None
                  ) -> ChangeResult:
        """Replace the trust the registry enforces (an audited, signed change).

        ``trust``: a trust file, or a loaded :class:`~mlprov.trust.Trust`.

        Example:
            registry.set_trust("trust.yaml", reason="add the QA key")
        """
        from mlprov.registry import _settings_ops

        return _settings_ops.set_trust(self, trust, reason=reason, actor=actor)

    @checked(policies=optional(PATH), reason=TEXT, actor=optional(TEXT))
    def set_policies(self, policies: Path | str | None, *, reason: str,
                     actor: str | None = None) -> ChangeResult:
        """Replace the policies (default: the shipped ones); an audited, signed change.

        The set's own Rego tests (``*_test.rego``) run first: a set whose tests fail
        is refused, nothing is recorded.

        Example:
            registry.set_policies("policies/", reason="stricter admission")

        Raises:
            PolicyError: a test of the set fails (or the set does not compile).
        """
        from mlprov.registry import _settings_ops

        return _settings_ops.set_policies(self, policies, reason=reason, actor=actor)

    @checked(thresholds=THRESHOLDS, reason=TEXT, actor=optional(TEXT))
    def set_thresholds(self, thresholds: Thresholds | Iterable[str], *, reason: str,
                       actor: str | None = None) -> ChangeResult:
        """Replace the registry's metric thresholds; an audited, signed change.

        ``thresholds`` replace the policy data's own (:mod:`mlprov.thresholds`);
        an empty set goes back to the data's. The policies' own tests run first,
        as for :meth:`set_policies`.

        Example:
            registry.set_thresholds(["test/auc>=0.85", "val/auc>=0.85"], reason="seed metrics")

        Raises:
            InputError: a threshold does not parse, or the set is unchanged.
            PolicyError: a test of the policies fails.
        """
        from mlprov.registry import _settings_ops

        return _settings_ops.set_thresholds(self, thresholds, reason=reason, actor=actor)

    @checked(config=PATH, reason=TEXT, actor=optional(TEXT))
    def set_config(self, config: Path | str, *, reason: str, actor: str | None = None
                   ) -> ChangeResult:
        """Record a new ``mlprov.toml`` (checked; copied into the registry); audited.

        Example:
            registry.set_config("mlprov.toml", reason="gate @production")
        """
        from mlprov.registry import _settings_ops

        return _settings_ops.set_config(self, config, reason=reason, actor=actor)

    # ------------------------------------------------------------------ register

    @checked(model=PATH, evidence=PATH, actor=optional(TEXT), reason=optional(TEXT))
    def register(self, model: Path | str, *, evidence: Path | str, actor: str | None = None,
                 reason: str | None = None) -> RegisterResult:
        """Verify a model against its evidence and the registry's trust, then store it.

        The same identity and root digest again return the existing version;
        the same identity with other bytes is registered as a new version
        flagged non-reproducible.

        Example:
            v = registry.register("model/", evidence="evidence/")

        Raises:
            RegistrationRefusedError: verification failed (the refusal is audited).
        """
        from mlprov.registry import _register

        return _register.register(self, model, evidence=evidence, actor=actor, reason=reason)

    # ------------------------------------------------------------------ reads

    @checked(uri=URI, trust=optional(TRUST_OBJ), min_seq=optional(COUNT),
             head_file=optional(PATH_OBJ), allow_archived=BOOL, actor=optional(TEXT))
    def resolve(self, uri: str | ModelUri, *, trust: Trust | None = None,
                min_seq: int | None = None, head_file: Path | None = None,
                allow_archived: bool = False, actor: str | None = None) -> Resolved:
        """Resolve ``models:/NAME/N``, ``models:/NAME@ALIAS``, ``/STAGE`` or ``/latest``.

        A lookup: :meth:`pull` and :func:`mlprov.load` verify what they hand out. It
        still refuses a log shorter than the registry's signed head, a row naming
        an entry the log does not hold, and (``min_seq``, ``head_file``) a registry
        older than a pipeline saw before; ``trust`` verifies the head with a
        pipeline's trust file instead of the registry's own key.

        An alias, stage or ``latest`` URI that leads to an Archived version is
        refused unless ``allow_archived``, which is recorded in the audit log
        (``version.archived-use``, by ``actor``). ``models:/NAME/N`` always resolves.

        Example:
            resolved = registry.resolve("models:/credit-risk@production")

        Raises:
            NotFoundError: no such model, version, alias or stage.
            ArchivedVersionError: the URI leads to an Archived version.
            RegistryIntegrityError: the log was cut, rolled back or rewritten.
        """
        from mlprov.registry import _lookup

        return _lookup.resolve(self, uri, trust=trust, min_seq=min_seq, head_file=head_file,
                               allow_archived=allow_archived, actor=actor)

    @checked(digest=TEXT)
    def decision(self, digest: str) -> bytes:
        """A signed decision (Sigstore bundle bytes) by its digest, checked against it.

        Example:
            bundle = registry.decision(resolved.decision)

        Raises:
            RegistryIntegrityError: missing or changed.
        """
        from mlprov.registry import _lookup

        return _lookup.decision(self, digest)

    @checked(name=TEXT, version=VERSION)
    def get_version(self, name: str, version: int) -> VersionRecord:
        """One version's record.

        Example:
            record = registry.get_version("credit-risk", 3)

        Raises:
            NotFoundError: unknown model or version.
        """
        from mlprov.registry import _lookup

        return _lookup.get_version(self, name, version)

    @checked(name=TEXT, version=VERSION, deep=BOOL, trust=optional(TRUST_OBJ))
    def verify_version(self, name: str, version: int, *, deep: bool = False,
                       trust: Trust | None = None) -> VersionFacts:
        """Re-verify a stored version from the blob store (see :mod:`._facts`).

        Example:
            facts = registry.verify_version("credit-risk", 3, deep=True)
        """
        from mlprov.registry import _lookup

        return _lookup.verify_version(self, name, version, deep=deep, trust=trust)

    @checked(name=TEXT)
    def iter_versions(self, name: str) -> Iterator[VersionRecord]:
        """Every version of ``name``.

        Example:
            for record in registry.iter_versions("credit-risk"): ...
        """
        from mlprov.registry import _lookup

        return _lookup.iter_versions(self, name)

    # ------------------------------------------------------------------ gated changes

    @checked(name=TEXT, version=VERSION, to=STAGE, reason=TEXT, actor=optional(TEXT),
             dry_run=BOOL)
    def promote(self, name: str, version: int, *, to: Stage | str, reason: str,
                actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Move a version to a stage, if the stage's gate allows it.

        With ``dry_run`` the same gate is evaluated (the registry's config,
        policies, thresholds, the version's facts and the registry's state) and
        its outcome returned, denied or not; nothing is signed or recorded.

        Example:
            registry.promote("credit-risk", 3, to="Staging", reason="eval passed")

        Raises:
            PolicyDeniedError: the gate said no (the denial is audited).
            NotFoundError: unknown model or version.
        """
        from mlprov.registry import _moves

        return _moves.promote(self, name, version, to=to, reason=reason, actor=actor,
                              dry_run=dry_run)

    @checked(name=TEXT, alias=TEXT, version=VERSION, reason=TEXT, actor=optional(TEXT),
             dry_run=BOOL)
    def set_alias(self, name: str, alias: str, version: int, *, reason: str,
                  actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Point ``alias`` at a version, if the alias's gate allows it.

        ``dry_run``: evaluate the gate exactly as the move would, record nothing.

        Example:
            registry.set_alias("credit-risk", "production", 3, reason="approved")

        Raises:
            PolicyDeniedError: the gate said no (the denial is audited).
        """
        from mlprov.registry import _moves

        return _moves.set_alias(self, name, alias, version, reason=reason, actor=actor,
                                dry_run=dry_run)

    @checked(name=TEXT, alias=TEXT, reason=TEXT, actor=optional(TEXT))
    def delete_alias(self, name: str, alias: str, *, reason: str, actor: str | None = None
                     ) -> ChangeResult:
        """Remove an alias. Never gated (it grants nothing), always signed and audited.

        Example:
            registry.delete_alias("credit-risk", "canary", reason="experiment over")

        Raises:
            NotFoundError: the alias does not exist.
        """
        from mlprov.registry import _moves

        return _moves.delete_alias(self, name, alias, reason=reason, actor=actor)

    @checked(name=TEXT, alias=TEXT, to=optional(VERSION), reason=TEXT, actor=optional(TEXT),
             dry_run=BOOL)
    def rollback(self, name: str, alias: str, *, to: int | None = None, reason: str,
                 actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Re-point ``alias`` to an earlier version.

        Without ``to``: the most recent earlier target of the alias that it was
        not rolled back from (so a second rollback goes further back instead of
        flipping back), named in the result's ``details["chosen"]``. Gated and
        audited like any alias move; ``dry_run`` evaluates the gate only.

        Example:
            >>> registry.rollback("credit-risk", "production",
            ...                   reason="v3 regressed")  # doctest: +SKIP

        Example:
            registry.rollback("credit-risk", "production", reason="latency regression")

        Raises:
            NotFoundError: no earlier target in the audit log.
        """
        from mlprov.registry import _moves

        return _moves.rollback(self, name, alias, to=to, reason=reason, actor=actor,
                               dry_run=dry_run)

    @checked(name=TEXT, version=VERSION, review=PATH, actor=optional(TEXT), reason=optional(TEXT))
    def add_review(self, name: str, version: int, review: Path | str, *,
                   actor: str | None = None, reason: str | None = None) -> ChangeResult:
        """Attach a signed review to a version; it must verify (and will at each use).

        Example:
            registry.add_review("credit-risk", 3, "alice.sigstore.json")

        Raises:
            VerificationError: the review does not verify for this version.
        """
        from mlprov.registry import _moves

        return _moves.add_review(self, name, version, review, actor=actor, reason=reason)

    # ------------------------------------------------------------------ the catalog
    # Descriptions, tags, search, renames and deletions (docs/registry.md#the-catalog).

    @checked(name=TEXT, text=TEXT, version=optional(VERSION), reason=optional(TEXT),
             actor=optional(TEXT))
    def set_description(self, name: str, text: str, *, version: int | None = None,
                        reason: str | None = None, actor: str | None = None) -> ChangeResult:
        """Describe a model, or one version (``version``); ``""`` clears the description.

        Signed and audited with the old and the new text (``model.describe``,
        ``version.describe``); no policy gates it unless ``[gates.changes]``
        names one for ``descriptions``.

        Example:
            registry.set_description("credit-risk", "Scores loan applications.")

        Raises:
            NotFoundError: unknown, renamed or deleted model or version.
            InputError: the text is too long, holds control characters, or is the
                current description.
        """
        from mlprov.registry import _annotations

        return _annotations.set_description(self, name, text, version=version, reason=reason,
                                            actor=actor)

    @checked(name=TEXT, key=TEXT, value=TEXT, version=optional(VERSION), reason=optional(TEXT),
             actor=optional(TEXT))
    def set_tag(self, name: str, key: str, value: str = "", *, version: int | None = None,
                reason: str | None = None, actor: str | None = None) -> ChangeResult:
        """Set a tag of a model, or of one version (``version``); signed and audited.

        The audit entry (``model.tag``, ``version.tag``) holds the old and the new
        value; ``metrics``-like search on tags: ``tags.KEY = 'VALUE'``.

        Example:
            registry.set_tag("credit-risk", "team", "search", version=3)

        Raises:
            NotFoundError: unknown, renamed or deleted model or version.
            InputError: a bad key or value, the same value again, or 100 tags already.
        """
        from mlprov.registry import _annotations

        return _annotations.set_tag(self, name, key, value, version=version, reason=reason,
                                    actor=actor)

    @checked(name=TEXT, key=TEXT, version=optional(VERSION), reason=optional(TEXT),
             actor=optional(TEXT))
    def delete_tag(self, name: str, key: str, *, version: int | None = None,
                   reason: str | None = None, actor: str | None = None) -> ChangeResult:
        """Remove a tag of a model or of one version; signed and audited with its value.

        Example:
            registry.delete_tag("credit-risk", "team", version=3)

        Raises:
            NotFoundError: no such tag (or model, or version).
        """
        from mlprov.registry import _annotations

        return _annotations.delete_tag(self, name, key, version=version, reason=reason,
                                       actor=actor)

    @checked(name=TEXT)
    def model_info(self, name: str) -> ModelInfo:
        """A model in use: its latest version, description, tags and aliases.

        Example:
            info = registry.model_info("credit-risk"); print(info.tags.get("team"))

        Raises:
            NotFoundError: unknown (renamed: the hint names the new name) or deleted.
        """
        from mlprov.registry import _annotations

        return _annotations.model_info(self, name)

    @checked(name=TEXT, version=VERSION)
    def version_info(self, name: str, version: int) -> VersionInfo:
        """A version in use: stage, digests, description, tags, aliases, eval metrics.

        Example:
            info = registry.version_info("credit-risk", 3); print(info.metrics["auc"])

        Raises:
            NotFoundError: unknown, renamed or deleted model or version.
        """
        from mlprov.registry import _annotations

        return _annotations.version_info(self, name, version)

    @checked(filter=optional(TEXT), order_by=optional(ORDER_BY), limit=PAGE_SIZE,
             page_token=optional(TEXT))
    def search_models(self, filter: str | None = None, *,
                      order_by: str | list[str] | None = None, limit: int = 100,
                      page_token: str | None = None) -> Page[ModelInfo]:
        """One page of the models in use matching ``filter`` (MLflow's search syntax).

        Fields: ``name``, ``alias``, ``stage`` (has a version there),
        ``created_at``, ``description``, ``tags.KEY``; ``AND`` joins conditions.
        ``order_by``: ``name`` or ``created_at``, ``ASC``/``DESC`` (default: by
        name). Pass ``page.next_page_token`` back as ``page_token`` for the next page.

        Example:
            page = registry.search_models("name LIKE 'ranker-%' AND tags.team = 'search'")

        Raises:
            FilterError: the filter or order does not parse (``exit_code`` 2).
            PageTokenError: a token of another query or registry, or changed.
        """
        from mlprov.registry import _search

        return _search.search_models(self, filter, order_by=order_by, limit=limit,
                                     page_token=page_token)

    @checked(name=optional(TEXT), filter=optional(TEXT), order_by=optional(ORDER_BY),
             limit=PAGE_SIZE, page_token=optional(TEXT))
    def search_versions(self, name: str | None = None, *, filter: str | None = None,
                        order_by: str | list[str] | None = None, limit: int = 100,
                        page_token: str | None = None) -> Page[VersionInfo]:
        """One page of the versions in use of ``name`` (or of every model) matching ``filter``.

        Fields: ``name``, ``version``, ``stage``, ``alias``, ``identity``,
        ``root_digest``, ``created_at``, ``description``, ``tags.KEY``,
        ``metrics.KEY`` (the verified eval's metrics, indexed at registration).
        ``order_by``: ``version``, ``created_at``, ``name`` or ``metrics.KEY``
        (missing values last), ``ASC``/``DESC``; default newest first.

        Example:
            page = registry.search_versions("credit-risk", filter="metrics.`test/auc` > 0.85")

        Raises:
            NotFoundError: unknown (renamed: the hint names the new name) or deleted model.
            FilterError: the filter or order does not parse (``exit_code`` 2).
            PageTokenError: a token of another query or registry, or changed.
        """
        from mlprov.registry import _search

        return _search.search_versions(self, name, filter, order_by=order_by, limit=limit,
                                       page_token=page_token)

    @checked(name=TEXT, new_name=TEXT, reason=optional(TEXT), actor=optional(TEXT))
    def rename_model(self, name: str, new_name: str, *, reason: str | None = None,
                     actor: str | None = None) -> ChangeResult:
        """Rename a model; its versions, stages, aliases, reviews and tags follow it.

        Signed and audited (``model.rename``); what was signed before keeps the old
        name, and ``models:/OLD/...`` then fails with a hint naming the new one.

        Example:
            registry.rename_model("credit-risk", "credit-risk-eu", reason="EU only")

        Raises:
            NotFoundError: unknown or deleted model.
            InputError: a model named ``new_name`` exists (or existed and was deleted).
            PolicyDeniedError: a policy named under ``[gates.changes]`` said no.
        """
        from mlprov.registry import _rename

        return _rename.rename_model(self, name, new_name, reason=reason, actor=actor)

    @checked(name=TEXT, reason=optional(TEXT), actor=optional(TEXT))
    def delete_model(self, name: str, *, reason: str | None = None,
                     actor: str | None = None) -> ChangeResult:
        """Delete a model and its versions as tombstones (signed and audited).

        They are no longer resolved, pulled or changed; their evidence, decisions
        and audit trail stay and still verify. A model with an alias or a version
        in Production is not deleted.

        Example:
            registry.delete_model("credit-risk-old", reason="retired")

        Raises:
            InputError: it has an alias or a version in Production (move them first).
        """
        from mlprov.registry import _rename

        return _rename.delete_model(self, name, reason=reason, actor=actor)

    @checked(name=TEXT, version=VERSION, reason=TEXT, actor=optional(TEXT))
    def delete_version(self, name: str, version: int, *, reason: str,
                       actor: str | None = None) -> ChangeResult:
        """Delete one version as a tombstone (see :meth:`delete_model`).

        Example:
            registry.delete_version("credit-risk", 2, reason="trained on leaked data")

        Raises:
            InputError: an alias points at it, or it is in Production (move it first).
        """
        from mlprov.registry import _rename

        return _rename.delete_version(self, name, version, reason=reason, actor=actor)

    # ------------------------------------------------------------------ history and views

    @checked(name=TEXT, alias=TEXT, at=optional(TEXT))
    def alias_history(self, name: str, alias: str, *, at: str | None = None
                      ) -> list[AliasChange]:
        """Every accepted change of ``alias``, oldest first (to ``at``, if given).

        Read from the audit log's hashed bodies, not from the alias table.

        Example:
            changes = registry.alias_history("credit-risk", "production")
        """
        from mlprov.registry import _views

        return _views.alias_history(self, name, alias, at=at)

    @checked(name=TEXT, alias=TEXT, at=optional(TEXT))
    def iter_alias_history(self, name: str, alias: str, *, at: str | None = None
                           ) -> Iterator[AliasChange]:
        """:meth:`alias_history` as it is read, in bounded memory (for long histories).

        One read transaction stays open until the iterator is exhausted or closed.

        Example:
            for change in registry.iter_alias_history("credit-risk", "production"): ...
        """
        from mlprov.registry import _views

        return _views.iter_alias_history(self, name, alias, at=at)

    def describe(self) -> dict[str, Any]:
        """Where the registry is and what it enforces (JSON-ready)."""
        from mlprov.registry import _views

        return _views.describe(self)

    def list_models(self) -> list[dict[str, Any]]:
        """Every model: name, latest version, aliases (JSON-ready)."""
        from mlprov.registry import _views

        return _views.list_models(self)

    @checked(name=TEXT, limit=optional(COUNT))
    def show_model(self, name: str, *, limit: int | None = None) -> dict[str, Any]:
        """A model's versions (newest first, up to ``limit``) and aliases (JSON-ready).

        Example:
            model = registry.show_model("credit-risk", limit=10)

        Raises:
            NotFoundError: no such model.
        """
        from mlprov.registry import _views

        return _views.show_model(self, name, limit=limit)

    @checked(since=COUNT, limit=optional(COUNT), name=optional(TEXT))
    def audit_log(self, *, since: int = 0, limit: int | None = None,
                  name: str | None = None) -> list[dict[str, Any]]:
        """Audit entries after ``since`` (JSON-ready, parsed from the hashed bodies).

        Example:
            entries = registry.audit_log(since=0, limit=50, name="credit-risk")
        """
        from mlprov.registry import _views

        return _views.audit_log(self, since=since, limit=limit, name=name)

    @checked(since=COUNT, limit=optional(COUNT), name=optional(TEXT))
    def iter_audit_log(self, *, since: int = 0, limit: int | None = None,
                       name: str | None = None) -> Iterator[dict[str, Any]]:
        """:meth:`audit_log` as it is read, in bounded memory (for long logs).

        One read transaction stays open until the iterator is exhausted or closed.

        Example:
            for entry in registry.iter_audit_log(name="credit-risk"): ...
        """
        from mlprov.registry import _views

        return _views.iter_audit_log(self, since=since, limit=limit, name=name)

    @checked(deep=BOOL, checkpoint=optional(PATH_OBJ), sign_checkpoint=BOOL, full=BOOL)
    def verify_audit(self, *, deep: bool = False, checkpoint: Path | None = None,
                     sign_checkpoint: bool = False, full: bool = False) -> Any:
        """Verify the audit log; see :func:`mlprov.registry._auditlog.verify_audit`.

        ``deep`` checks every signed decision the last ``deep`` run (of this user)
        did not; ``full`` with it, every one again. Read-only in the registry
        unless ``sign_checkpoint`` (what :meth:`checkpoint` does).

        Example:
            report = registry.verify_audit(deep=True)
        """
        from mlprov.registry import _auditlog

        return _auditlog.verify_audit(self, deep=deep, checkpoint=checkpoint,
                                      sign_checkpoint=sign_checkpoint, full=full)

    @checked(deep=BOOL)
    def checkpoint(self, *, deep: bool = False) -> tuple[Any, bytes]:
        """Verify the audit log, then sign a checkpoint of its head (``audit checkpoint``).

        Example:
            report, bundle = registry.checkpoint()

        Returns:
            The audit report and the signed checkpoint bundle (stored and mirrored
            to ``head.json``).

        Raises:
            VerificationError: the log does not verify (nothing is signed).
        """
        from mlprov.registry import _auditlog

        return _auditlog.checkpoint(self, deep=deep)

    @checked(actor=TEXT, action=TEXT, reason=TEXT, name=optional(TEXT),
             version=optional(VERSION), target=optional(TEXT), permission=optional(TEXT),
             via=optional(TEXT), endpoint=optional(TEXT))
    def record_refusal(self, actor: str, action: str, *, reason: str, name: str | None = None,
                       version: int | None = None, target: str | None = None,
                       permission: str | None = None, via: str | None = None,
                       endpoint: str | None = None) -> ChangeResult:
        """Record that ``actor`` was refused ``action`` by a front end (the registry server).

        One audit entry of kind ``access.refused`` (not accepted, nothing changed),
        chained and with a signed decision (``FAILED``) like a denied change:
        ``audit log`` shows it, ``audit verify --deep`` checks it. ``name``,
        ``version`` and ``target`` (a stage, an alias, a new name) say what was
        asked for; ``permission`` the missing permission; ``via`` how the actor
        authenticated; ``endpoint`` the route. Strings are bounded and must be
        printable. The caller bounds how many it records (see docs/server.md).

        Example:
            registry.record_refusal("ci", "promote", name="credit-risk", version=3,
                                    target="Production",
                                    reason="ci may not move credit-risk to Production")

        Raises:
            InputError: a string is empty, too long or not printable; a bad name.
        """
        from mlprov.registry import _refusals

        return _refusals.record_refusal(self, actor=actor, action=action, reason=reason,
                                        name=name, version=version, target=target,
                                        permission=permission, via=via, endpoint=endpoint)

    @checked(actor=TEXT, count=int_in(1), first=TEXT, last=TEXT,
             actions=mapping(values=int_in(1), what="counts"))
    def record_refusal_summary(self, actor: str, *, count: int, first: str, last: str,
                               actions: dict[str, int]) -> ChangeResult:
        """Record that ``count`` refusals of ``actor`` were left out of the trail (a bound).

        One audit entry of kind ``access.refused-summary``: how many, the first and
        last time (RFC 3339 UTC), and how many per action.

        Example:
            registry.record_refusal_summary("reader", count=512, first=t0, last=t1,
                                            actions={"promote": 512})
        """
        from mlprov.registry import _refusals

        return _refusals.record_refusal_summary(self, actor=actor, count=count, first=first,
                                                last=last, actions=actions)

    def latest_checkpoint(self) -> bytes | None:
        """The latest signed checkpoint bundle (keep it outside the registry)."""
        from mlprov.registry import _auditlog

        return _auditlog.export_head(self)

    @checked(since=COUNT, limit=optional(COUNT))
    def events(self, *, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Events after id ``since``, each with its deliveries (JSON-ready).

        Example:
            events = registry.events(since=0, limit=20)
        """
        from mlprov.registry import _views

        return _views.events(self, since=since, limit=limit)

    @checked(now=optional(NUMBER))
    def deliver_events(self, *, now: float | None = None) -> Any:
        """Deliver every due event to its hooks (retries included); never raises for hooks.

        Example:
            registry.deliver_events()
        """
        from mlprov.registry import _events

        return _events.deliver_due(self, now=now)

    @checked(grace=NUMBER, dry_run=BOOL)
    def collect_garbage(self, *, grace: float = 3600.0, dry_run: bool = False,  # _gc.DEFAULT_GRACE
                        progress: Callable[[str], None] | None = None) -> GcReport:
        """Delete blobs nothing in the registry names, written over ``grace`` seconds ago.

        Killed writers leave such blobs; referenced blobs are never deleted
        (:mod:`mlprov.registry._gc`). Needs no registry key: nothing audited changes.

        Example:
            report = registry.collect_garbage(dry_run=True)
        """
        from mlprov.registry._gc import collect_garbage

        return collect_garbage(self.metadata, self.blobs, grace=grace, dry_run=dry_run,
                               progress=progress)

    # ------------------------------------------------------------------ deployments

    @checked(name=TEXT, models=STRINGS, reason=TEXT, actor=optional(TEXT))
    def create_deployment(self, name: str, models: list[str], *, reason: str,
                          actor: str | None = None) -> ChangeResult:
        """Pin the versions ``models`` (URIs) as the next version of deployment ``name``.

        Example:
            registry.create_deployment("scoring", ["models:/credit-risk/3"], reason="r")
        """
        from mlprov.registry import _deploy

        return _deploy.create_deployment(self, name, models, reason=reason,
                                         actor=actor or default_actor())

    @checked(name=TEXT, version=VERSION, to=STAGE, reason=TEXT, actor=optional(TEXT))
    def promote_deployment(self, name: str, version: int, *, to: Stage | str, reason: str,
                           actor: str | None = None) -> ChangeResult:
        """Move a deployment version to a stage; the stage's gate must allow every member.

        Example:
            registry.promote_deployment("scoring", 1, to="Production", reason="r")
        """
        from mlprov.registry import _deploy

        return _deploy.promote_deployment(self, name, version, to=to, reason=reason,
                                          actor=actor or default_actor())

    @checked(name=TEXT, version=optional(VERSION))
    def show_deployment(self, name: str, version: int | None = None) -> list[Any]:
        """Deployment versions of ``name`` (or one), each with its signed spec verified.

        Example:
            versions = registry.show_deployment("scoring")
        """
        from mlprov.registry import _deploy

        return _deploy.show_deployment(self, name, version)

    def list_deployments(self) -> list[dict[str, Any]]:
        """Every deployment version (JSON-ready; not verified, see :meth:`show_deployment`)."""
        from mlprov.registry import _views

        return _views.list_deployments(self)

    # ------------------------------------------------------------------ handing out

    @checked(uri=URI, out=PATH, trust=optional(TRUST_OBJ), min_seq=optional(COUNT),
             head_file=optional(PATH), allow_archived=BOOL, actor=optional(TEXT))
    def pull(self, uri: str, out: Path | str, *, trust: Trust | None = None,
             min_seq: int | None = None, head_file: Path | str | None = None,
             allow_archived: bool = False, actor: str | None = None) -> PullResult:
        """Copy a version's files to ``out``, verifying every byte and every signature.

        ``min_seq``/``head_file``: refuse a registry older than the pipeline saw
        (see :meth:`resolve`); the head file is updated after the check.
        ``allow_archived``: hand out an Archived version an alias or stage URI
        leads to (audited, see :meth:`resolve`).

        Example:
            registry.pull("models:/credit-risk@production", "serving/model")
        """
        from mlprov.registry import _pull

        return _pull.pull(self, uri, Path(out), trust=trust, min_seq=min_seq,
                          head_file=Path(head_file) if head_file is not None else None,
                          allow_archived=allow_archived, actor=actor)

    @checked(uri=URI, out=PATH, trust=optional(TRUST_OBJ))
    def export_evidence(self, uri: str, out: Path | str, *, trust: Trust | None = None
                        ) -> Resolved:
        """Write a version's evidence to a new directory, verified first (see ``pull``).

        Example:
            registry.export_evidence("models:/base/2", "parents/base")
        """
        from mlprov.registry import _pull

        return _pull.export_evidence(self, uri, Path(out), trust=trust)

    @checked(uri=URI, trust=optional(TRUST_OBJ), min_seq=optional(COUNT), head_file=optional(PATH),
             allow_archived=BOOL, actor=optional(TEXT))
    def load(self, uri: str, *, trust: Trust | None = None, min_seq: int | None = None,
             head_file: Path | str | None = None, allow_archived: bool = False,
             actor: str | None = None) -> LoadedModel:
        """A verified local copy of the version ``uri`` names (cached under checkouts/).

        Returns a :class:`~mlprov.registry.LoadedModel`: path-like, and naming the
        version it resolved to. ``allow_archived`` as for :meth:`pull`.

        Example:
            model = registry.load("models:/credit-risk@production")
        """
        from mlprov.registry import _pull

        return _pull.load(self, uri, trust=trust, min_seq=min_seq,
                          head_file=Path(head_file) if head_file is not None else None,
                          allow_archived=allow_archived, actor=actor)

    # ------------------------------------------------------------------ what a version holds

    @checked(name=TEXT, version=VERSION, trust=optional(TRUST_OBJ))
    def show_version(self, name: str, version: int, *, trust: Trust | None = None
                     ) -> VersionDetails:
        """What a version holds, every value from its re-verified evidence and decisions.

        The identity's inputs, metrics (overall and per slice), evaluator, SBOM,
        parents and children, reviews, its stage and aliases (each backed by its
        verified decision) and its decision history (see :mod:`._show`).

        Example:
            details = registry.show_version("credit-risk", 3)
            print(details.stage, details.evaluation.metrics if details.evaluation else {})

        Raises:
            NotFoundError: unknown model or version.
            RegistryIntegrityError: a stored blob, row or decision does not verify.
        """
        from mlprov.registry import _show

        return _show.show_version(self, name, version, trust=trust)

    @checked(uri=URI, trust=optional(TRUST_OBJ))
    def verify_uri(self, uri: str, *, trust: Trust | None = None) -> VersionFacts:
        """Resolve ``uri`` and re-verify that version as :meth:`pull` does, copying nothing.

        The decision behind ``uri`` and the version's evidence (an Archived
        version too: this reads, it hands nothing out).

        Example:
            verdict = registry.verify_uri("models:/credit-risk@production").verdict

        Raises:
            RegistryIntegrityError: the version or the decision behind ``uri`` does not verify.
        """
        from mlprov.registry import _show

        return _show.verify_uri(self, str(uri), trust=trust)

    @checked(uri=URI, trust=optional(TRUST_OBJ))
    def inspect(self, uri: str, *, trust: Trust | None = None) -> Inspection:
        """The auditor's view (:func:`mlprov.inspect_evidence`) of a registered version.

        Example:
            inspection = registry.inspect("models:/credit-risk/3")
        """
        from mlprov.registry import _show

        return _show.inspect(self, str(uri), trust=trust)

    @checked(uri=URI, trust=optional(TRUST_OBJ), descendants=BOOL)
    def lineage(self, uri: str, *, trust: Trust | None = None, descendants: bool = False
                ) -> RegistryLineage:
        """A version's lineage, verified through the registry's copies of its ancestors.

        With ``descendants``: also the registered versions descending from it,
        each verified (see :mod:`._relatives`).

        Example:
            graph = registry.lineage("models:/credit-risk/3", descendants=True)
            print(graph.verified, [d.uri for d in graph.descendants or ()])
        """
        from mlprov.registry import _relatives

        return _relatives.registry_lineage(self, str(uri), trust=trust,
                                           with_descendants=descendants)

    # ------------------------------------------------------------------ copies between registries

    @checked(uri=URI, to=either(lazy_instance("mlprov.registry._core", "Registry", "a Registry"),
                                PATH),
             name=optional(TEXT), key=optional(PATH), actor=optional(TEXT), reason=optional(TEXT))
    def copy(self, uri: str, to: Registry | Path | str, *, name: str | None = None,
             key: Path | str | None = None, actor: str | None = None,
             reason: str | None = None) -> CopyResult:
        """Register the version ``uri`` names into the registry ``to``, with its reviews.

        This registry verifies the version as :meth:`pull` does; ``to`` (a
        :class:`Registry`, or its directory or database URL, opened with ``key``)
        re-verifies everything against its own trust and applies its own gates.
        Its registration entry records this registry, the version and the
        decision behind ``uri`` (``details.copiedFrom``); ``name`` registers it
        under another name. Reviews that count in ``to`` are attached there.

        Example:
            result = registry.copy("models:/credit-risk@staging", "/srv/mlprov-prod")
            print(result.registered.uri, result.reviews_attached)

        Raises:
            InputError: ``to`` is this registry.
            RegistrationRefusedError: ``to``'s trust refuses the version (audited there).
        """
        from mlprov.registry import _copy

        if isinstance(to, Registry):
            return _copy.copy_version(self, str(uri), to, name=name, actor=actor,
                                      reason=reason)
        with Registry.open(to, key=key) as target:
            return _copy.copy_version(self, str(uri), target, name=name, actor=actor,
                                      reason=reason)

    # ------------------------------------------------------------------ deployments served

    @checked(uri=TEXT, trust=optional(TRUST_OBJ), min_seq=optional(COUNT),
             head_file=optional(PATH))
    def resolve_deployment(self, uri: str, *, trust: Trust | None = None,
                           min_seq: int | None = None, head_file: Path | str | None = None
                           ) -> ResolvedDeployment:
        """Resolve ``deployments:/NAME/N``, ``@ALIAS``, ``/STAGE`` or ``/latest``, verified.

        The decision behind the URI, the signed spec and every member (its
        evidence, and its stage as its verified decision puts it); ``min_seq`` and
        ``head_file`` as for :meth:`resolve`.

        Example:
            stack = registry.resolve_deployment("deployments:/credit-stack@production")
            print([m.uri for m in stack.members])
        """
        from mlprov.registry import _deploy_serve

        return _deploy_serve.resolve_deployment(
            self, uri, trust=trust, min_seq=min_seq,
            head_file=Path(head_file) if head_file is not None else None)

    @checked(uri=TEXT, out=PATH, trust=optional(TRUST_OBJ), min_seq=optional(COUNT),
             head_file=optional(PATH))
    def pull_deployment(self, uri: str, out: Path | str, *, trust: Trust | None = None,
                        min_seq: int | None = None, head_file: Path | str | None = None
                        ) -> DeploymentPullResult:
        """Copy every member of a deployment to ``out/<model>/``, every byte verified.

        Example:
            registry.pull_deployment("deployments:/credit-stack/2", "serving/")
        """
        from mlprov.registry import _deploy_serve

        return _deploy_serve.pull_deployment(
            self, uri, Path(out), trust=trust, min_seq=min_seq,
            head_file=Path(head_file) if head_file is not None else None)

    @checked(uri=TEXT, trust=optional(TRUST_OBJ), min_seq=optional(COUNT),
             head_file=optional(PATH))
    def load_deployment(self, uri: str, *, trust: Trust | None = None,
                        min_seq: int | None = None, head_file: Path | str | None = None
                        ) -> LoadedDeployment:
        """Verified local copies of every member of a deployment (``mlprov.load`` does this).

        Example:
            stack = registry.load_deployment("deployments:/credit-stack@production")
            weights = open(stack["credit-risk"] / "weights.safetensors", "rb")
        """
        from mlprov.registry import _deploy_serve

        return _deploy_serve.load_deployment(
            self, uri, trust=trust, min_seq=min_seq,
            head_file=Path(head_file) if head_file is not None else None)

    @checked(name=TEXT, alias=TEXT, version=VERSION, reason=TEXT, actor=optional(TEXT),
             dry_run=BOOL)
    def set_deployment_alias(self, name: str, alias: str, version: int, *, reason: str,
                             actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Point ``deployments:/NAME@ALIAS`` at a version, if the alias's gate allows every member.

        Gated like a model alias (the same gate table and thresholds), for each
        member over its own facts and stage. ``dry_run``: evaluate, record nothing.

        Example:
            registry.set_deployment_alias("credit-stack", "production", 2, reason="go live")

        Raises:
            PolicyDeniedError: a member's gate said no (the denial is audited).
        """
        from mlprov.registry import _deploy

        return _deploy.set_deployment_alias(self, name, alias, version, reason=reason,
                                            actor=actor or default_actor(), dry_run=dry_run)

    @checked(name=TEXT, alias=TEXT, reason=TEXT, actor=optional(TEXT))
    def delete_deployment_alias(self, name: str, alias: str, *, reason: str,
                                actor: str | None = None) -> ChangeResult:
        """Remove a deployment alias (never gated; signed and audited).

        Example:
            registry.delete_deployment_alias("credit-stack", "canary", reason="done")

        Raises:
            NotFoundError: the alias does not exist.
        """
        from mlprov.registry import _deploy

        return _deploy.delete_deployment_alias(self, name, alias, reason=reason,
                                               actor=actor or default_actor())

    # ------------------------------------------------------------------ pending approvals

    @checked(stage=optional(STAGE), name=optional(TEXT))
    def pending_approvals(self, *, stage: Stage | str | None = None, name: str | None = None
                          ) -> list[PendingApproval]:
        """Versions whose next stage move waits on a review, and what is missing.

        Each version in None or Staging is re-verified and its next stage's gate
        evaluated as a dry run; what one to three further (hypothetical) approvals
        would clear is what is missing (see :mod:`._pending`). Nothing is recorded.

        Example:
            for p in registry.pending_approvals(stage="Production"):
                print(p.uri, p.approvals_needed, p.missing)

        Raises:
            InputError: ``stage`` is not Staging or Production.
            NotFoundError: ``name`` is not a registered model.
        """
        from mlprov.registry import _pending

        return _pending.pending_approvals(self, stage=stage, name=name)
