"""The registry: names, versions, stages, aliases, gated changes, the audit log.

Every mutation runs in one write transaction (SQLite ``BEGIN IMMEDIATE``):
re-verify the version from the blob store, evaluate the gate's policy, sign a
decision (SLSA VSA v1) with the registry key, write the state change (only if
allowed), append the audit entry chained to the previous one, and enqueue the
event. Blobs are made durable before the rows that name them, so a crash at
any point leaves either the whole change or none of it (plus, at worst,
unreferenced blobs, which are harmless).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlprov._internal.arguments import (
    BOOL,
    NUMBER,
    PATH,
    STRINGS,
    TEXT,
    checked,
    optional,
)
from mlprov._internal.readers import MAX_CONFIG_BYTES, read_bytes
from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError, MlprovError, VerificationError
from mlprov.registry import _faults
from mlprov.registry._arguments import (
    COUNT,
    PATH_OBJ,
    STAGE,
    THRESHOLDS,
    TRUST_OBJ,
    URI,
    VERSION,
)
from mlprov.registry._audit import GENESIS, make_entry
from mlprov.registry._blobs import LocalBlobStore
from mlprov.registry._config import DEFAULT_CONFIG, UNGATED, RegistryConfig, parse_config
from mlprov.registry._decisions import (
    CHECKPOINT_PREDICATE,
    build_checkpoint,
    build_decision,
    sign,
    verify_signed,
)
from mlprov.registry._facts import (
    EVIDENCE_INPUT,
    FILES_INPUT,
    SCAN_INPUT,
    RegistryIntegrityError,
    VerifiedCache,
    VersionFacts,
    evidence_map,
    evidence_map_document,
    files_document,
    find_ancestors,
    materialize_ancestors,
    parents_in,
    verify_version,
)
from mlprov.registry._gate import PolicyCache, evaluate, rule_outcome
from mlprov.registry._gc import (
    DEFAULT_GRACE,
    GcReport,
    check_blobs_kept,
    collect_garbage,
    gc_epoch,
)
from mlprov.registry._head import (
    SETTINGS,
    SignedHead,
    check_decision_in_log,
    check_head_file,
    check_log,
    check_setting,
    read_head,
    sign_head,
)
from mlprov.registry._home import (
    CONFIG_FILE,
    DB_FILE,
    HEAD_FILE,
    KEY_FILE,
    load_trust_snapshot,
    materialize_policies,
    policies_snapshot,
    policy_file_digests,
    require_registry,
    trust_snapshot,
)
from mlprov.registry._location import (
    BLOBS_STATE,
    PUBLIC_KEY_STATE,
    RegistryLocation,
    open_blob_store,
)
from mlprov.registry._records import (
    AliasChange,
    ArchivedVersionError,
    ChangeResult,
    GatePolicy,
    PendingChange,
    PolicyDeniedError,
    PullResult,
    RegisterResult,
    RegistrationRefusedError,
    Resolved,
    default_actor,
    denied_message,
    event_document,
    need_version,
    resolve_uri,
    rollback_target,
)
from mlprov.registry._sql import SqlMetadataStore, sqlite_url
from mlprov.registry._uri import (
    ModelUri,
    check_alias,
    check_name,
    check_version,
    parse_model_uri,
    sha256_digest,
    utc_now,
    version_uri,
)
from mlprov.registry.interface import (
    AliasRecord,
    AuditRecord,
    BlobStore,
    CheckpointRecord,
    MetadataStore,
    NotFoundError,
    ReadTransaction,
    RegistryError,
    ReviewRecord,
    Stage,
    StoreConflictError,
    VersionRecord,
    WriteTransaction,
)
from mlprov.trust import Role, Trust, load_trust

if TYPE_CHECKING:
    from mlprov.registry._pull import LoadedModel
    from mlprov.thresholds import Thresholds

__all__ = [
    "ArchivedVersionError",
    "ChangeResult",
    "PolicyDeniedError",
    "RegisterResult",
    "Registry",
    "Resolved",
]

EVENT_SCHEMA = "https://mlprov.dev/schemas/event/v1"
_MAX_EVIDENCE_FILE = 64 * 1024 * 1024
_MAX_REVIEW_FILE = 1024 * 1024
_CONFLICT_RETRIES = 5
SIGNING_SCHEMA = "https://mlprov.dev/schemas/registry-signing/v1"


def _keyless_signer(identity_token: str | None, staging: bool,
                    trust_config: Path | str | None) -> Any:
    """A Sigstore keyless session; the token defaults to ``$MLPROV_IDENTITY_TOKEN``."""
    from mlprov.signing import IDENTITY_TOKEN_ENV, make_signer

    return make_signer(sigstore=True, staging=staging, trust_config=trust_config,
                       identity_token=identity_token or os.environ.get(IDENTITY_TOKEN_ENV))


def _check_registry_identity(signer: Any, trust: Trust) -> None:
    """Refuse a keyless identity that no ``sigstore`` rule with the registry role names.

    Raises:
        InputError: the registry could not verify its own decisions.
    """
    _, issuer = signer.sigstore_identity
    subjects = signer.certificate_subjects()
    if not any(Role.REGISTRY in rule.roles and rule.matches(subject, issuer)
               for rule in trust.sigstore for subject in subjects):
        raise InputError(
            f"{trust.source} gives the registry's Sigstore identity {subjects[-1]} "
            f"(issuer {issuer}) no registry role",
            hint="add a sigstore rule for that identity with roles: [registry] to the trust "
                 "file")


class Registry:
    """A model registry in a directory (metadata in SQLite, blobs content-addressed).

    Open one with :meth:`open` (or create it with :meth:`init`). Every method
    that changes something is one transaction; see the module docstring.
    """

    def __init__(self, home: Path, metadata: MetadataStore, blobs: BlobStore, *,
                 location: RegistryLocation | None = None,
                 key: Path | str | None = None) -> None:
        self.location = location or RegistryLocation(home=home)
        self.home = home
        self._key = key
        self.metadata = metadata
        self.blobs = blobs
        self._trust: Trust | None = None
        self._trust_digest: str | None = None
        self._verified = VerifiedCache()
        self._config: RegistryConfig | None = None
        self._config_bytes: bytes | None = None
        self._signer: Any = None
        self._policies_dir: Path | None = None
        self.policy_cache = PolicyCache()
        self._registry_id: str | None = None
        self._anchor: Trust | None = None
        self._thresholds: Thresholds | None = None

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
        location = RegistryLocation.of(home)
        if location.embedded:
            path = location.home
            require_registry(path)
            store = SqlMetadataStore(sqlite_url(path / DB_FILE),
                                     description=f"registry database {path / DB_FILE}")
            store.check_schema()
            return cls(path, store, LocalBlobStore(path / "blobs"), location=location, key=key)
        team = cast(SqlMetadataStore, location.metadata_store())
        try:
            team.check_schema()
            with team.read() as tx:
                blobs_spec = tx.get_state(BLOBS_STATE)
                public_pem = tx.get_state(PUBLIC_KEY_STATE)
                registry_id = tx.get_state("registry_id")
            if registry_id is None or blobs_spec is None:
                raise NotFoundError(f"no registry in {location.describe()}",
                                    hint="create one with `mlprov registry init --registry URL "
                                         "--blobs s3://BUCKET/PREFIX --trust T --key K`")
            location.prepare_cache()
            if public_pem is not None:
                _pin_public_key(location, public_pem.encode())
            blobs = open_blob_store(blobs_spec, home=location.home)
        except BaseException:
            team.close()
            raise
        return cls(location.home, team, blobs, location=location, key=key)

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
        from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair

        location = RegistryLocation.of(home)
        path = location.home
        if location.embedded and blobs is not None:
            raise InputError("--blobs is for a team registry (--registry DATABASE_URL); an "
                             "embedded registry keeps its blobs in its directory")
        if not location.embedded:
            if blobs is None:
                raise InputError("a team registry needs a blob store",
                                 hint="pass --blobs s3://BUCKET/PREFIX (or a shared directory)")
            if not sigstore:
                key = location.key_file(key)
                if key is None:
                    raise InputError("a team registry's key is not kept in its database: name "
                                     "it", hint="mlprov keygen --out registry.key, then --key "
                                                "registry.key (or $MLPROV_REGISTRY_KEY)")
        elif (path / DB_FILE).exists():
            raise InputError(f"a registry already exists at {path}",
                             hint="use `mlprov registry set-trust` / `set-policies` to change "
                                  "it, or choose another --registry")
        policies_dir = Path(policies) if policies is not None else _shipped_policies()
        threshold_set = _thresholds(thresholds)
        if policies is not None:  # the shipped set's tests run in mlprov's own suite
            _check_policy_tests(policies_dir, threshold_set)
        trust_path = Path(trust)
        if not trust_path.is_file():
            raise InputError(f"trust file not found: {trust_path}")
        key_path = path / KEY_FILE
        # Check every input before anything is written; a key left by an earlier,
        # failed init (no database was made) is reused, or replaced by --key.
        signer: Any
        if sigstore:
            if key is not None:
                raise InputError("give the registry a signing key or Sigstore keyless "
                                 "signing, not both", hint="pass --key PRIVATE_KEY or --sigstore")
            signer = _keyless_signer(identity_token, staging, trust_config)
            _check_registry_identity(signer, load_trust(trust_path))
        elif identity_token is not None or staging or trust_config is not None:
            raise InputError("an identity token, staging or a trust config needs Sigstore "
                             "keyless signing", hint="add --sigstore")
        elif key is not None:
            signer = load_private_key(Path(key))
            key_bytes = Path(key).read_bytes()
        elif key_path.is_file():
            signer = load_private_key(key_path)
            key_bytes = key_path.read_bytes()
        else:
            from mlprov.signing import KeySigner

            private = generate_key(KeyType.ECDSA_P256)
            signer = KeySigner(private)
            key_bytes = b""
        trust_bytes = trust_snapshot(trust_path, None if sigstore else signer.public_key)
        if not location.embedded:
            assert blobs is not None
            return cls._init_team(
                location, signer=signer, key=key, blobs_spec=str(blobs),
                trust_bytes=trust_bytes, policies_dir=policies_dir,
                threshold_set=threshold_set, actor=actor, sigstore=sigstore)
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / "keys").mkdir(exist_ok=True)
            os.chmod(path / "keys", 0o700)
            if sigstore:
                pass  # no key: the Sigstore identity signs
            elif key_bytes:
                _write_file_atomically(key_path, key_bytes, 0o600)
                _write_file_atomically(key_path.with_name(key_path.name + ".pub"),
                                       signer.public_key.pem, 0o644)
            else:
                write_key_pair(private, key_path, None, overwrite=True)
        except OSError as exc:
            raise InputError(f"cannot create the registry at {path}: {exc.strerror}") from exc
        blob_store = LocalBlobStore(path / "blobs")
        settings = _initial_settings(blob_store, trust_bytes, policies_dir, threshold_set)
        signed_by: dict[str, Any] = {}
        if sigstore:
            config_digest = (blob_store.put_bytes(Path(trust_config).read_bytes()).digest
                             if trust_config is not None else None)
            signing_blob = blob_store.put_bytes(canonical_json({
                "schema": SIGNING_SCHEMA, "kind": "sigstore", "staging": staging,
                "trustConfig": config_digest})).digest
            settings.append(("signing", signing_blob))
            signed_by["signing"] = signing_blob
        else:
            signed_by["publicKey"] = signer.public_key.keyid
        store = SqlMetadataStore(sqlite_url(path / DB_FILE),
                                 description=f"registry database {path / DB_FILE}")
        store.create_schema()
        _write_file_atomically(path / CONFIG_FILE, DEFAULT_CONFIG.encode(), 0o644)
        registry = cls(path, store, blob_store, location=location, key=key)
        registry._signer = signer
        registry._record_init(settings, actor=actor, description=str(path),
                              details={**signed_by, **_thresholds_details(threshold_set)})
        return registry

    @classmethod
    def _init_team(cls, location: RegistryLocation, *, signer: Any, key: Path | str | None,
                   blobs_spec: str, trust_bytes: bytes, policies_dir: Path,
                   threshold_set: Thresholds, actor: str | None, sigstore: bool) -> Registry:
        """Create a team registry: settings as blobs its database names, nothing local.

        The public key goes into the database (for other machines to pin at first
        use) and into this machine's pin; the private key stays where it is.
        """
        blob_store = open_blob_store(blobs_spec, home=location.home)
        settings = _initial_settings(blob_store, trust_bytes, policies_dir, threshold_set)
        if sigstore:
            raise InputError("a keyless team registry is not supported yet",
                             hint="give the team registry a key (--key)")
        store = cast(SqlMetadataStore, location.metadata_store())
        try:
            store.create_schema()
            location.prepare_cache()
            registry = cls(location.home, store, blob_store, location=location, key=key)
            registry._signer = signer
            settings += [(BLOBS_STATE, blobs_spec),
                         (PUBLIC_KEY_STATE, signer.public_key.pem.decode())]
            registry._record_init(settings, actor=actor, description=location.describe(),
                                  details={"publicKey": signer.public_key.keyid,
                                           "blobs": blobs_spec,
                                           **_thresholds_details(threshold_set)})
            _pin_public_key(location, signer.public_key.pem)
        except BaseException:
            store.close()
            raise
        return registry

    def _record_init(self, settings: list[tuple[str, str]], *, actor: str | None,
                     description: str, details: dict[str, Any]) -> None:
        """Write a new registry's id and settings and record ``registry.init`` (one commit)."""
        import uuid

        found = dict(settings)
        self._registry_id = str(uuid.uuid4())
        with self.metadata.write() as tx:
            if tx.get_state("registry_id") is not None:
                raise InputError(f"a registry already exists at {description}")
            tx.set_state("registry_id", self._registry_id)
            for key_name, value in settings:
                tx.set_state(key_name, value)
            self.record_change(tx, self._config_change(
                "registry.init", actor=actor or default_actor(), reason="registry created",
                subject=found["trust"], inputs={f"registry:{k}": found[k]
                                                for k in ("trust", "policies", "config")},
                details={k: found[k] for k in ("trust", "policies", "config")} | details))

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
        if self._registry_id is None:
            with self.metadata.read() as tx:
                self._registry_id = tx.get_state("registry_id") or "unknown"
        return self._registry_id

    def _state(self, key: str) -> str:
        with self.metadata.read() as tx:
            value = tx.get_state(key)
        if value is None:
            raise RegistryError(f"the registry at {self.home} has no {key} recorded",
                                hint="the registry is incomplete; run `mlprov registry init`")
        return value

    @property
    def anchor(self) -> Trust:
        """Who may sign the registry's decisions and heads: its own key, nothing stored.

        For a key-signing registry, the public half of ``keys/registry.key`` (the
        key a deploy pipeline pins in its own trust file). For a keyless one, the
        ``registry`` rules of its stored trust set (a pipeline's trust file is the
        real anchor there; SECURITY.md).
        """
        if self._anchor is None:
            from mlprov.signing import load_public_key
            from mlprov.trust import TrustedKey

            public = self.location.public_key_file()
            if public.is_file():
                key = load_public_key(public)
                self._anchor = Trust(keys=(TrustedKey(name="registry", key=key,
                                                      roles=frozenset({Role.REGISTRY})),),
                                     source=str(public))
            else:
                stored = load_trust_snapshot(self.blobs.get_bytes(self._state("trust")),
                                             source="the registry's trust")
                self._anchor = Trust(keys=(), source=stored.source,
                                     trusted_root=stored.trusted_root,
                                     sigstore=tuple(r for r in stored.sigstore
                                                    if Role.REGISTRY in r.roles))
        return self._anchor

    @checked(anchor=optional(TRUST_OBJ))
    def head(self, *, anchor: Trust | None = None) -> SignedHead:
        """The registry's signed head, verified with ``anchor`` (default: :attr:`anchor`).

        The log must end where the head says.

        Example:
            head = registry.head()

        Raises:
            RegistryIntegrityError: no valid head, or a log cut, extended or rewritten.
        """
        trusted = anchor or self.anchor
        with self.metadata.read() as tx:
            head = read_head(tx, registry_id=self.registry_id, anchor=trusted,
                             anchor_id=id(trusted))
            check_log(tx, head)
        return head

    def _signed_setting(self, key: str) -> str:
        """A setting's digest, only if the signed head names it."""
        head = self.head()
        with self.metadata.read() as tx:
            digest = check_setting(tx, head, key)
        if digest is None:
            raise RegistryError(f"the registry at {self.home} has no {key} recorded",
                                hint="the registry is incomplete; run `mlprov registry init`")
        return digest

    @property
    def trust(self) -> Trust:
        """The trust the registry enforces: its signed snapshot.

        The registry role is held only by the registry's own key (:attr:`anchor`).
        """
        if self._trust is None:
            digest = self._signed_setting("trust")
            stored = load_trust_snapshot(self.blobs.get_bytes(digest),
                                         source=f"the registry's trust ({digest[:19]})")
            self._trust = _registry_role_from(stored, self.anchor)
            self._trust_digest = digest
        return self._trust

    def verify_record(self, record: VersionRecord, reviews: list[str], *, deep: bool = False,
                trust: Trust | None = None, tx: ReadTransaction | None = None) -> VersionFacts:
        """Re-verify a version (memoised by content digests; see :class:`VerifiedCache`).

        Parents registered here are found by root digest, so a derived model's
        lineage is walked through the registry's own copies of their evidence.
        """
        if tx is None:
            with self.metadata.read() as read_tx:
                return self.verify_record(record, reviews, deep=deep, trust=trust, tx=read_tx)
        stand_in = self._stand_in_model()
        if trust is not None:
            return verify_version(record, trust=trust, blobs=self.blobs,
                                  decisions=tx.get_decision, review_digests=reviews, deep=deep,
                                  lookup=tx.find_by_root, model_path=stand_in)
        registry_trust = self.trust
        return verify_version(record, trust=registry_trust, blobs=self.blobs,
                              decisions=tx.get_decision, review_digests=reviews, deep=deep,
                              cache=self._verified, trust_key=self._trust_digest,
                              lookup=tx.find_by_root, model_path=stand_in)

    def _stand_in_model(self) -> Path | None:
        """An empty, read-only directory ``verify`` takes as a stored version's model.

        Its files are the stored manifest's (no byte is read there); made once per
        registry directory or cache, so re-verification writes nothing. None when
        it cannot be made (then a temporary one is).
        """
        path = self.home / ".stored-model"
        try:
            if not path.is_dir():
                path.mkdir(mode=0o555, parents=True, exist_ok=True)
            if any(path.iterdir()):
                return None
        except OSError:
            return None
        return path

    @property
    def config(self) -> RegistryConfig:
        """The recorded ``mlprov.toml`` (the version the audit log accepted)."""
        if self._config is None:
            data = self.blobs.get_bytes(self._signed_setting("config"))
            self._config_bytes = data
            self._config = parse_config(data)
        return self._config

    @property
    def address(self) -> str:
        """What :meth:`open` takes to open this registry again: its directory or database URL."""
        return self.location.url if self.location.url is not None else str(self.home)

    def config_text(self) -> str:
        """The recorded ``mlprov.toml`` (gates, hooks), as the audit log accepted it."""
        self.config  # noqa: B018 - loads _config_bytes
        assert self._config_bytes is not None
        return self._config_bytes.decode("utf-8")

    @property
    def thresholds(self) -> Thresholds:
        """The registry's metric thresholds (empty: the policy data's own apply).

        Read only as the signed head names them.
        """
        if self._thresholds is None:
            from mlprov.thresholds import Thresholds

            head = self.head()
            with self.metadata.read() as tx:
                digest = check_setting(tx, head, "thresholds")
            self._thresholds = (Thresholds() if digest is None else Thresholds.from_bytes(
                self.blobs.get_bytes(digest), what="the registry's thresholds"))
        return self._thresholds

    @property
    def signer(self) -> Any:
        """The registry's :class:`~mlprov.signing.BundleSigner`, made once.

        Its key, or (keyless registries) a Sigstore session whose token is taken now.
        """
        if self._signer is None:
            signing = self._signing()
            if signing is not None:
                self._signer = self._keyless_session(signing)
            else:
                from mlprov.signing import load_private_key

                key_file = self.location.key_file(self._key)
                if key_file is None:
                    raise RegistryError(
                        f"changing the registry in {self.location.describe()} needs its "
                        "private key", hint="pass --key REGISTRY_KEY or set "
                                            "$MLPROV_REGISTRY_KEY (resolve and pull need none)")
                self._signer = load_private_key(key_file)
                if self._signer.public_key.keyid != self.anchor.keys[0].key.keyid \
                        if self.anchor.keys else False:
                    raise RegistryError(f"{key_file} is not this registry's key",
                                        hint="use the key the registry was created with")
        return self._signer

    def _signing(self) -> dict[str, Any] | None:
        """The recorded keyless signing settings, or None for a key-signing registry."""
        with self.metadata.read() as tx:
            digest = tx.get_state("signing")
        if digest is None:
            return None
        document = loads_strict(self.blobs.get_bytes(digest), what="registry signing settings")
        if not isinstance(document, dict) or document.get("schema") != SIGNING_SCHEMA:
            raise RegistryError("the registry's signing settings are unusable")
        return document

    def _keyless_session(self, signing: dict[str, Any]) -> Any:
        """A Sigstore keyless signer for the recorded instance."""
        import tempfile

        digest = signing.get("trustConfig")
        if not isinstance(digest, str):
            return _keyless_signer(None, bool(signing.get("staging")), None)
        with tempfile.TemporaryDirectory(prefix=".signing-", dir=self.home) as tmp:
            config = Path(tmp) / "trust_config.json"
            config.write_bytes(self.blobs.get_bytes(digest))
            return _keyless_signer(None, False, config)

    def policies_dir(self) -> Path:
        """The directory holding the recorded policies (rebuilt from blobs if needed)."""
        if self._policies_dir is None:
            digest = self._signed_setting("policies")
            self._policies_dir = materialize_policies(
                self.home, digest, self.blobs.get_bytes(digest), self.blobs)
        return self._policies_dir

    def gate_policy(self, *, stage: Stage | str | None = None, alias: str | None = None
                    ) -> GatePolicy:
        """Which policy, data and thresholds gate a move to ``stage`` or to ``alias``.

        The registry's own gate table (``mlprov.toml``), policies, data file and
        thresholds, for ``mlprov policy check --registry`` (a dry run of a move,
        ``--dry-run``, also evaluates the version's registered facts and state).

        Raises:
            InputError: neither or both of ``stage`` and ``alias``.
        """
        from mlprov.registry._uri import parse_stage

        if (stage is None) == (alias is None):
            raise InputError("name a stage or an alias, not both",
                             hint="the registry gates each change apart: --to STAGE or "
                                  "--alias ALIAS")
        if alias is not None:
            check_alias(alias)
            gate = self.config.gate_for_alias(alias)
        else:
            assert stage is not None
            gate = self.config.gate_for_stage(
                stage if isinstance(stage, Stage) else parse_stage(stage))
        directory = self.policies_dir()
        data_file = self.config.policy_data
        return GatePolicy(gate=gate, path=directory / gate if gate not in (None, UNGATED)
                          else None,
                          data=directory / data_file if data_file else None,
                          thresholds=self.thresholds)

    def _stored_parents(self, record: VersionRecord) -> tuple[tuple[str, str], ...]:
        """The parents recorded in a registered version's stored provenance.

        Read from the registry's own content-addressed copy (its digest is bound
        by the signed registration decision); used only to tell a new lineage
        from a failed reproduction.
        """
        from mlprov.bundles import read_envelopes
        from mlprov.evidence import PROVENANCE_FILE
        from mlprov.signing import b64decode_any
        from mlprov.statements import parse_statement

        files = evidence_map(self.blobs.get_bytes(record.evidence_digest))
        bundle = self.blobs.get_bytes(files[PROVENANCE_FILE])
        envelope, _hint = read_envelopes(bundle, what=PROVENANCE_FILE)[0]
        payload = b64decode_any(envelope.payload, what=PROVENANCE_FILE)
        return _parents_key(parse_statement(payload, what=PROVENANCE_FILE).predicate)

    def check_config_pinned(self) -> None:
        """Refuse changes while mlprov.toml on disk differs from the recorded one."""
        self.config  # noqa: B018 - loads _config_bytes
        if self.location.config_file is None:  # a team registry's config is only in its database
            return
        path = self.home / CONFIG_FILE
        try:
            on_disk = path.read_bytes()
        except OSError:
            on_disk = None
        if on_disk != self._config_bytes:
            raise RegistryError(
                f"{path} differs from the configuration the registry recorded",
                hint=f"record the edit with `mlprov registry set-config {path} --reason TEXT`, "
                     "or restore the file")

    # ------------------------------------------------------------------ recording

    def policy_uri_prefix(self) -> str:
        return f"mlprov-registry://{self.registry_id}/policies/"

    def record_change(self, tx: WriteTransaction, pending: PendingChange,
                apply: Callable[[str, int, str], None] | None = None) -> ChangeResult:
        """Sign the decision, apply the change if allowed, append the audit entry and event.

        ``apply(decision_digest, seq, time)`` writes the state change; it runs in
        ``tx`` after the signed decision is durable and only when the gate allowed.
        """
        head = tx.audit_head()
        seq = head.seq + 1 if head else 1
        prev = head.entry_hash if head else GENESIS
        settings = self._settings_before(tx, pending, seq, prev)
        now = utc_now()
        outcome = pending.outcome
        change = {
            "kind": pending.kind, "registry": self.registry_id, "auditSeq": seq,
            "prevEntryHash": prev, "actor": pending.actor, **pending.change,
        }
        if pending.reason is not None:
            change["reason"] = pending.reason
        if outcome.input_digest:
            change["policyInputDigest"] = outcome.input_digest
        if outcome.deny:
            change["deny"] = list(outcome.deny)
        if outcome.warn:
            change["warn"] = list(outcome.warn)
        statement = build_decision(
            subject_name=pending.subject_name, root_digest=pending.subject_digest,
            resource_uri=pending.resource_uri, policy_uri=outcome.policy_uri,
            policy_digest=outcome.policy_digest, inputs=pending.inputs,
            passed=outcome.allowed, time=now, change=change)
        bundle = sign(statement, self.signer)
        decision = sha256_digest(bundle)
        tx.put_decision(decision, bundle)  # durable with the entry: one commit
        if outcome.allowed and apply is not None:
            apply(decision, seq, now)
        details = {**pending.details,
                   "policy": {"uri": outcome.policy_uri, "digest": outcome.policy_digest}}
        if outcome.input_digest:
            details["policyInputDigest"] = outcome.input_digest
        if outcome.deny:
            details["deny"] = list(outcome.deny)
        if outcome.warn:
            details["warn"] = list(outcome.warn)
        entry = make_entry(seq=seq, prev=prev, time=now, kind=pending.kind,
                           accepted=outcome.allowed, actor=pending.actor, reason=pending.reason,
                           name=pending.name, version=pending.version, target=pending.target,
                           decision=decision, details=details)
        tx.append_audit(entry)
        self._enqueue_event(tx, entry, pending, details)
        if seq % self.config_for_checkpoints() == 0:
            self.sign_checkpoint(tx, seq, entry.entry_hash, now)
        changed = _SETTING_KINDS.get(pending.kind)
        if settings is None:  # registry.init: the settings it just wrote
            settings = {k: v for k in SETTINGS if (v := tx.get_state(k)) is not None}
        elif changed is not None and outcome.allowed:
            settings[changed] = tx.get_state(changed) or ""
        sign_head(tx, registry_id=self.registry_id, seq=seq, entry_hash=entry.entry_hash,
                  time=now, signer=self.signer, settings=settings)
        _faults.point("change.before-commit")
        return ChangeResult(kind=pending.kind, name=pending.name or "", version=pending.version,
                            target=pending.target, allowed=outcome.allowed, deny=outcome.deny,
                            warn=outcome.warn, policy_uri=outcome.policy_uri,
                            policy_digest=outcome.policy_digest, decision=decision, seq=seq,
                            previous=pending.details.get("from"), details=details)

    def _settings_before(self, tx: WriteTransaction, pending: PendingChange, seq: int,
                         prev: str) -> dict[str, str] | None:
        """The signed settings a change starts from (None for ``registry.init``).

        The previous head must verify with the anchor and name the previous entry,
        and the store's settings must be the signed ones: otherwise nothing is
        signed or recorded, so a change never launders a row edited outside the
        registry into a new signed head.

        Raises:
            RegistryIntegrityError: the head or a setting was changed outside the registry.
        """
        if pending.kind == "registry.init":
            return None
        previous = read_head(tx, registry_id=self.registry_id, anchor=self.anchor,
                             anchor_id=id(self.anchor))
        if previous.seq != seq - 1 or previous.entry_hash != prev:
            raise RegistryIntegrityError(
                f"the audit log ends at entry {seq - 1}, but the registry signed its head at "
                f"entry {previous.seq}: the log was cut or rolled back; nothing was recorded")
        for key in SETTINGS:
            check_setting(tx, previous, key)
        return dict(previous.settings)

    def config_for_checkpoints(self) -> int:
        """How often (in entries) a checkpoint is signed."""
        try:
            return self.config.checkpoint_every
        except MlprovError:
            return 100

    def _enqueue_event(self, tx: WriteTransaction, entry: AuditRecord, pending: PendingChange,
                       details: dict[str, Any]) -> None:
        kind = pending.event_kind or (entry.kind if entry.accepted else "change.denied")
        payload = canonical_json({
            "schema": EVENT_SCHEMA, "kind": kind, "change": entry.kind,
            "time": entry.time, "registry": self.registry_id, "auditSeq": entry.seq,
            "name": entry.name, "version": entry.version, "target": entry.target,
            "accepted": entry.accepted, "actor": pending.actor, "reason": pending.reason,
            "decision": entry.decision, "details": details,
        })
        event_id = tx.insert_event(entry.seq, kind, entry.time, payload)
        try:
            hooks = self.config.hooks
        except MlprovError:
            hooks = ()
        for hook in hooks:
            if hook.wants(kind):
                tx.insert_delivery(event_id, hook.name, time.time())

    def sign_checkpoint(self, tx: WriteTransaction, seq: int, entry_hash: str, now: str) -> bytes:
        statement = build_checkpoint(registry_id=self.registry_id, seq=seq,
                                     entry_hash=entry_hash, time=now)
        bundle = sign(statement, self.signer)
        tx.insert_checkpoint(CheckpointRecord(seq=seq, entry_hash=entry_hash, time=now,
                                              bundle=bundle))
        return bundle

    def write_head(self, bundle: bytes, seq: int) -> None:
        """Mirror a checkpoint to ``head.json`` unless a newer one is there (best effort)."""
        path = self.home / HEAD_FILE
        lock = self.home / ".head.lock"
        try:
            with open(lock, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                current = _head_seq(path, self.trust)
                if current is None or current < seq:
                    _write_file_atomically(path, bundle, 0o644)
        except (OSError, MlprovError):
            return

    def _config_change(self, kind: str, *, actor: str, reason: str | None, subject: str,
                       inputs: dict[str, str], details: dict[str, Any]) -> PendingChange:
        return PendingChange(kind=kind, name=None, version=None, target=kind.split(".", 1)[1],
                        actor=actor, reason=reason, outcome=rule_outcome("registry-owner"),
                        subject_name=f"mlprov-registry:{self.registry_id}",
                        subject_digest=subject, resource_uri=f"mlprov-registry:{self.registry_id}",
                        inputs=inputs, change=dict(details), details=details)

    def _write(self) -> contextlib.AbstractContextManager[WriteTransaction]:
        return self.metadata.write()

    def retrying(self, fn: Callable[[], ChangeResult]) -> ChangeResult:
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return fn()
            except StoreConflictError:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def after_commit(self, result: ChangeResult) -> ChangeResult:
        """Deliver hooks (never failing the change), then raise if it was denied."""
        if result.seq % self.config_for_checkpoints() == 0:
            with contextlib.suppress(MlprovError):
                with self.metadata.read() as tx:
                    record = next((c for c in tx.checkpoints() if c.seq == result.seq), None)
                if record is not None:
                    self.write_head(record.bundle, record.seq)
        with contextlib.suppress(Exception):
            if self.config.deliver_after_commit and self.config.hooks:
                from mlprov.registry._events import deliver_due

                deliver_due(self, seq=result.seq)
        if not result.allowed:
            raise PolicyDeniedError(denied_message(result), result=result)
        return result

    # ------------------------------------------------------------------ registry config

    @checked(trust=PATH, reason=TEXT, actor=optional(TEXT))
    def set_trust(self, trust: Path | str, *, reason: str, actor: str | None = None
                  ) -> ChangeResult:
        """Replace the trust the registry enforces (an audited, signed change).

        Example:
            registry.set_trust("trust.yaml", reason="add the QA key")
        """
        epoch = gc_epoch(self.metadata)
        keyless = self._signing() is not None
        if keyless:  # the registry must still be able to verify what it signs
            _check_registry_identity(self.signer, load_trust(Path(trust)))
        data = trust_snapshot(Path(trust), None if keyless else self.signer.public_key)
        digest = self.blobs.put_bytes(data).digest
        return self._set_setting("registry.trust", "trust", digest, reason=reason, actor=actor,
                                 epoch=epoch)

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
        directory = Path(policies) if policies is not None else _shipped_policies()
        _check_policy_tests(directory, self.thresholds, self.config.policy_data)
        epoch = gc_epoch(self.metadata)
        data = policies_snapshot(directory, self.blobs)
        _check_gates(self.config, data)
        digest = self.blobs.put_bytes(data).digest
        return self._set_setting("registry.policies", "policies", digest, reason=reason,
                                 actor=actor, epoch=epoch,
                                 blobs=tuple(policy_file_digests(data).values()))

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
        threshold_set = _thresholds(thresholds)
        _check_policy_tests(self.policies_dir(), threshold_set, self.config.policy_data)
        epoch = gc_epoch(self.metadata)
        digest = self.blobs.put_bytes(threshold_set.to_bytes()).digest
        return self._set_setting("registry.thresholds", "thresholds", digest, reason=reason,
                                 actor=actor, details={"thresholds": threshold_set.lines()},
                                 epoch=epoch)

    @checked(config=PATH, reason=TEXT, actor=optional(TEXT))
    def set_config(self, config: Path | str, *, reason: str, actor: str | None = None
                   ) -> ChangeResult:
        """Record a new ``mlprov.toml`` (checked; copied into the registry); audited.

        Example:
            registry.set_config("mlprov.toml", reason="gate @production")
        """
        path = Path(config)
        try:
            data = read_bytes(path, what="registry config", limit=MAX_CONFIG_BYTES)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        parsed = parse_config(data, what=str(path))
        with self.metadata.read() as tx:
            policies = tx.get_state("policies")
        assert policies is not None
        _check_gates(parsed, self.blobs.get_bytes(policies))
        epoch = gc_epoch(self.metadata)
        digest = self.blobs.put_bytes(data).digest
        config_file = self.location.config_file
        result = self._set_setting("registry.config", "config", digest, reason=reason,
                                   actor=actor, epoch=epoch,
                                   after=None if config_file is None else (
                                       lambda: _write_file_atomically(config_file, data,
                                                                      0o644)))
        return result

    def _set_setting(self, kind: str, key: str, digest: str, *, reason: str,
                     actor: str | None, epoch: str, blobs: tuple[str, ...] = (),
                     after: Callable[[], None] | None = None,
                     details: dict[str, Any] | None = None) -> ChangeResult:
        if key != "config":
            self.check_config_pinned()

        def run() -> ChangeResult:
            with self._write() as tx:
                check_blobs_kept(tx, self.blobs, epoch, (digest, *blobs))
                old = tx.get_state(key)
                if old == digest:
                    raise InputError(f"the registry's {key} is already {digest}")
                result = self.record_change(tx, self._config_change(
                    kind, actor=actor or default_actor(), reason=reason, subject=digest,
                    inputs={f"registry:{key}": digest},
                    details={"from": old, "to": digest, **(details or {})}),
                    lambda _decision, _seq, _time: tx.set_state(key, digest))
            if after is not None:
                after()
            return result

        result = self.retrying(run)
        self._trust = None
        self._trust_digest = None
        self._config = None
        self._policies_dir = None
        self._thresholds = None
        return self.after_commit(result)

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
        from mlprov.evidence import OMS_FILE
        from mlprov.oms import read_signed_manifest

        self.check_config_pinned()
        model_path, evidence_path = Path(model), Path(evidence)
        who = actor or default_actor()
        verdict = self._verify_for_registration(model_path, evidence_path)
        epoch = gc_epoch(self.metadata)
        if not verdict.verified:
            self._refuse_registration(verdict, who, reason)
        name = check_name(verdict.name or "")
        assert verdict.identity is not None and verdict.root_digest is not None
        signed = read_signed_manifest(verdict.statements[OMS_FILE].statement, what=OMS_FILE)
        manifest = _ingest_files(self.blobs, model_path, signed)
        if f"sha256:{manifest.root}" != verdict.root_digest:
            raise RegistrationRefusedError(f"{model_path} changed while it was registered")
        files_digest = self.blobs.put_bytes(files_document(manifest)).digest
        evidence_files = _ingest_evidence(self.blobs, evidence_path)
        evidence_digest = self.blobs.put_bytes(evidence_map_document(evidence_files)).digest
        scan_digest = self._scan(model_path, verdict)
        parents = _parents_key(verdict.provenance.predicate if verdict.provenance else {})
        _faults.point("register.blobs-stored")

        def run() -> RegisterResult:
            with self._write() as tx:
                # Same recipe from another parent is another model, not a failed
                # reproduction: compare parents too (they are not in the identity).
                existing = [r for r in tx.find_versions(name, verdict.identity or "")
                            if self._stored_parents(r) == parents]
                for record in existing:
                    if record.root_digest == verdict.root_digest:
                        return RegisterResult(
                            name=name, version=record.version, identity=record.identity,
                            root_digest=record.root_digest, created=False,
                            reproducible=record.reproducible,
                            same_identity=tuple(r.version for r in existing),
                            decision=record.registration, seq=record.created_seq)
                check_blobs_kept(tx, self.blobs, epoch, (
                    files_digest, evidence_digest, *evidence_files.values(),
                    *([scan_digest] if scan_digest else []),
                    *(f"sha256:{f.sha256}" for f in manifest.files)))
                now = utc_now()
                tx.ensure_model(name, now)
                model_record = tx.get_model(name)
                assert model_record is not None
                number = model_record.latest_version + 1
                same = tuple(r.version for r in existing)
                inputs = {f"evidence/{n}": d for n, d in evidence_files.items()}
                inputs[FILES_INPUT] = files_digest
                inputs[EVIDENCE_INPUT] = evidence_digest
                if scan_digest:
                    inputs[SCAN_INPUT] = scan_digest
                details = {"identity": verdict.identity, "rootDigest": verdict.root_digest,
                           "reproducible": not existing, "sameIdentityAs": list(same),
                           "files": len(manifest.files), "bytes": manifest.total_size}
                pending = PendingChange(
                    kind="model.register", name=name, version=number, target="version",
                    actor=who, reason=reason, outcome=rule_outcome("registration"),
                    subject_name=version_uri(name, number),
                    subject_digest=verdict.root_digest or "",
                    resource_uri=version_uri(name, number), inputs=inputs,
                    change={"name": name, "version": number, **details}, details=details)
                record = VersionRecord(
                    name=name, version=number, identity=verdict.identity or "",
                    root_digest=verdict.root_digest or "", files_digest=files_digest,
                    evidence_digest=evidence_digest, registration="", scan_digest=scan_digest,
                    reproducible=not existing, stage=Stage.NONE, stage_decision=None,
                    created_at=now, created_seq=0)

                def apply(decision: str, seq: int, _time: str) -> None:
                    tx.insert_version(_replace(record, registration=decision,
                                               created_seq=seq))

                result = self.record_change(tx, pending, apply)
                return RegisterResult(name=name, version=number, identity=verdict.identity or "",
                                      root_digest=verdict.root_digest or "", created=True,
                                      reproducible=not existing, same_identity=same,
                                      decision=result.decision, seq=result.seq)

        for attempt in range(_CONFLICT_RETRIES):
            try:
                registered = run()
                break
            except StoreConflictError:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        if registered.created and registered.seq is not None:
            self.after_commit(ChangeResult(
                kind="model.register", name=name, version=registered.version, target="version",
                allowed=True, deny=(), warn=(), policy_uri="", policy_digest="",
                decision=registered.decision or "", seq=registered.seq))
        return registered

    def _verify_for_registration(self, model: Path, evidence: Path) -> Any:
        """Verify a model to register; its parents are looked for in the registry too."""
        import shutil
        import tempfile

        from mlprov.evidence import PROVENANCE_FILE
        from mlprov.verification import verify

        try:
            first = parents_in((evidence / PROVENANCE_FILE).read_bytes())
        except OSError:
            first = []
        if not first:
            return verify(model, evidence=evidence, trust=self.trust)
        search = Path(tempfile.mkdtemp(prefix="mlprov-parents-"))
        try:
            with self.metadata.read() as tx:
                ancestors = find_ancestors(self.blobs, {}, tx.find_by_root, first=first)
            materialize_ancestors(self.blobs, ancestors, search)
            return verify(model, evidence=evidence, trust=self.trust, search=[search])
        finally:
            shutil.rmtree(search, ignore_errors=True)

    def _refuse_registration(self, verdict: Any, actor: str, reason: str | None) -> None:
        failures = verdict.failures()
        detail = failures[0].detail if failures else "no check ran"
        claimed = verdict.name if isinstance(verdict.name, str) else None
        claimed_name = claimed if claimed and _valid_name(claimed) else None
        outcome = rule_outcome("registration", allowed=False,
                               deny=tuple(f"{c.name}: {c.detail}" for c in failures)
                               or ("no verification check ran",))
        root = verdict.root_digest or GENESIS

        def run() -> ChangeResult:
            with self._write() as tx:
                return self.record_change(tx, PendingChange(
                    kind="model.register", name=claimed_name, version=None, target="version",
                    actor=actor, reason=reason, outcome=outcome,
                    subject_name=f"unregistered:{claimed_name or 'unknown'}",
                    subject_digest=root, resource_uri=f"unregistered:{claimed_name or 'unknown'}",
                    inputs={}, change={"claimedName": claimed}, details={"claimedName": claimed}))

        result = self.retrying(run)
        with contextlib.suppress(PolicyDeniedError):
            self.after_commit(result)
        more = f"; {len(failures) - 1} more check(s) failed" if len(failures) > 1 else ""
        raise RegistrationRefusedError(
            f"not registered: the model does not verify against the registry's trust: "
            f"{detail}{more} (refusal audited as entry {result.seq})")

    def _scan(self, model: Path, verdict: Any) -> str | None:
        """Scan the model's pickles; the report is stored and bound to the registration."""
        try:
            from mlprov.scanning import scan_verified_model
        except ImportError:  # pragma: no cover - scanning ships with mlprov
            return None
        report = scan_verified_model(model, verdict)
        return self.blobs.put_bytes(canonical_json(report.to_json_dict())).digest

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
        parsed = uri if isinstance(uri, ModelUri) else parse_model_uri(uri)
        anchor = trust or self.anchor
        head = self.head(anchor=anchor)
        check_head_file(head, min_seq=min_seq, head_file=head_file)
        with self.metadata.read() as tx:
            resolved = resolve_uri(tx, parsed, allow_archived=allow_archived)
            check_decision_in_log(tx, resolved.decision, head, anchor)
        self.record_archived_use(resolved, actor=actor)
        return resolved

    def record_archived_use(self, resolved: Resolved, *, actor: str | None = None) -> None:
        """Audit that an Archived version was handed out through ``--allow-archived``.

        Nothing is recorded for a version in use or one named by number.
        """
        record = resolved.record
        if record.stage is not Stage.ARCHIVED or resolved.via == "version":
            return
        who = actor or default_actor()

        def run() -> ChangeResult:
            with self._write() as tx:
                pending = PendingChange(
                    kind="version.archived-use", name=record.name, version=record.version,
                    target=resolved.via, actor=who, reason=f"--allow-archived: {resolved.uri}",
                    outcome=rule_outcome("allow-archived"),
                    subject_name=version_uri(record.name, record.version),
                    subject_digest=record.root_digest,
                    resource_uri=version_uri(record.name, record.version),
                    inputs={"registry:registration": record.registration},
                    change={"name": record.name, "version": record.version,
                            "uri": resolved.uri, "stage": record.stage.value},
                    details={"uri": resolved.uri, "stage": record.stage.value})
                return self.record_change(tx, pending)

        self.after_commit(self.retrying(run))

    @checked(digest=TEXT)
    def decision(self, digest: str) -> bytes:
        """A signed decision (Sigstore bundle bytes) by its digest, checked against it.

        Example:
            bundle = registry.decision(resolved.decision)

        Raises:
            RegistryIntegrityError: missing or changed.
        """
        from mlprov.registry._facts import read_decision

        with self.metadata.read() as tx:
            return read_decision(tx.get_decision, digest)

    @checked(name=TEXT, version=VERSION)
    def get_version(self, name: str, version: int) -> VersionRecord:
        """One version's record.

        Example:
            record = registry.get_version("credit-risk", 3)

        Raises:
            NotFoundError: unknown model or version.
        """
        check_name(name)
        check_version(version)
        with self.metadata.read() as tx:
            return need_version(tx, name, version)

    @checked(name=TEXT, version=VERSION, deep=BOOL, trust=optional(TRUST_OBJ))
    def verify_version(self, name: str, version: int, *, deep: bool = False,
                       trust: Trust | None = None) -> VersionFacts:
        """Re-verify a stored version from the blob store (see :mod:`._facts`).

        Example:
            facts = registry.verify_version("credit-risk", 3, deep=True)
        """
        with self.metadata.read() as tx:
            record = need_version(tx, name, version)
            reviews = [r.digest for r in tx.list_reviews(name, version)]
        return self.verify_record(record, reviews, deep=deep, trust=trust)

    # ------------------------------------------------------------------ gated changes

    def registry_state(self, tx: ReadTransaction, record: VersionRecord,
                        extra: dict[str, Any]) -> dict[str, Any]:
        name = record.name
        model = tx.get_model(name)
        return {
            **extra,
            "model": name,
            "version": record.version,
            "stage": record.stage.value,
            "reproducible": record.reproducible,
            "latestVersion": model.latest_version if model else record.version,
            "aliases": {a.alias: a.version for a in tx.list_aliases(name)},
            "stages": {stage.value: [v.version for v in tx.list_versions(
                name, stage=stage, limit=20, descending=True)]
                for stage in (Stage.STAGING, Stage.PRODUCTION)},
        }

    def _gated(self, tx: ReadTransaction, *, kind: str, record: VersionRecord,
               target: str, gate: str | None, what: str, transition: dict[str, Any],
               actor: str, reason: str | None, details: dict[str, Any],
               must_verify: bool = True, state: dict[str, Any] | None = None
               ) -> tuple[PendingChange, VersionFacts | None]:
        """Re-verify ``record``, evaluate ``gate``, and describe the pending change."""
        facts: VersionFacts | None = None
        failure: str | None = None
        try:
            facts = self.verify_record(record, [r.digest for r in tx.list_reviews(
                record.name, record.version)], tx=tx)
        except VerificationError as exc:
            failure = str(exc)
        if facts is None:
            if gate == UNGATED and not must_verify:
                outcome = rule_outcome("ungated")
                details = {**details, "evidenceVerified": False,
                           "verificationFailure": failure}
            else:
                outcome = rule_outcome("evidence-verified", allowed=False, deny=(
                    f"the version's evidence does not verify: {failure}",))
        else:
            outcome = evaluate(
                gate, what=what, policies_dir=self.policies_dir(),
                data_file=self.config.policy_data, policy_uri_prefix=self.policy_uri_prefix(),
                cache=self.policy_cache, verdict=facts.verdict, reviews=facts.reviews,
                scan=facts.scan, transition=transition,
                registry_state=self.registry_state(tx, record, state or {}),
                thresholds=self.thresholds)
        inputs = facts.input_attestations() if facts is not None else {
            "registry:registration": record.registration}
        change = {"name": record.name, "version": record.version, "identity": record.identity,
                  "transition": {**{k: v for k, v in transition.items()
                                    if k not in ("actor", "reason")}, **(state or {})}}
        pending = PendingChange(kind=kind, name=record.name, version=record.version, target=target,
                           actor=actor, reason=reason, outcome=outcome,
                           subject_name=version_uri(record.name, record.version),
                           subject_digest=record.root_digest,
                           resource_uri=version_uri(record.name, record.version),
                           inputs=inputs, change=change, details=details)
        return pending, facts

    @staticmethod
    def _dry_result(pending: PendingChange) -> ChangeResult:
        """What a change would decide: the gate's outcome, nothing signed or recorded."""
        outcome = pending.outcome
        details = {**pending.details,
                   "policy": {"uri": outcome.policy_uri, "digest": outcome.policy_digest}}
        if outcome.input_digest:
            details["policyInputDigest"] = outcome.input_digest
        return ChangeResult(kind=pending.kind, name=pending.name or "", version=pending.version,
                            target=pending.target, allowed=outcome.allowed, deny=outcome.deny,
                            warn=outcome.warn, policy_uri=outcome.policy_uri,
                            policy_digest=outcome.policy_digest, decision="", seq=0,
                            previous=pending.details.get("from"), details=details,
                            dry_run=True)

    def _change_tx(self, dry_run: bool) -> contextlib.AbstractContextManager[ReadTransaction]:
        """A write transaction, or (dry run) a read one: a dry run writes nothing."""
        return self.metadata.read() if dry_run else self._write()

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
        from mlprov.registry._uri import parse_stage

        check_name(name)
        check_version(version)
        stage = to if isinstance(to, Stage) else parse_stage(to)
        who = actor or default_actor()
        self.check_config_pinned()

        def run() -> ChangeResult:
            with self._change_tx(dry_run) as tx:
                record = need_version(tx, name, version)
                if record.stage is stage:
                    raise InputError(f"{name} v{version} is already in {stage.value}")
                transition = {"from": record.stage.value, "to": stage.value,
                              "actor": who, "reason": reason}
                pending, _ = self._gated(
                    tx, kind="stage.transition", record=record, target="stage",
                    gate=self.config.gate_for_stage(stage),
                    what=f"moving {name} v{version} to {stage.value}", transition=transition,
                    actor=who, reason=reason,
                    details={"from": record.stage.value, "to": stage.value},
                    must_verify=stage not in (Stage.ARCHIVED, Stage.NONE))
                if dry_run:
                    return self._dry_result(pending)
                assert isinstance(tx, WriteTransaction)
                return self.record_change(tx, pending, lambda decision, _seq, _time: tx.set_stage(
                    name, version, stage, decision))

        if dry_run:
            return run()
        return self.after_commit(self.retrying(run))

    @checked(name=TEXT, alias=TEXT, version=VERSION, reason=TEXT, actor=optional(TEXT),
             dry_run=BOOL)
    def set_alias(self, name: str, alias: str, version: int, *, reason: str,
                  actor: str | None = None, dry_run: bool = False,
                  _kind: str = "alias.set", _details: dict[str, Any] | None = None
                  ) -> ChangeResult:
        """Point ``alias`` at a version, if the alias's gate allows it.

        ``dry_run``: evaluate the gate exactly as the move would, record nothing.

        Example:
            registry.set_alias("credit-risk", "production", 3, reason="approved")

        Raises:
            PolicyDeniedError: the gate said no (the denial is audited).
        """
        check_name(name)
        check_alias(alias)
        check_version(version)
        who = actor or default_actor()
        self.check_config_pinned()

        def run() -> ChangeResult:
            with self._change_tx(dry_run) as tx:
                record = need_version(tx, name, version)
                current = tx.get_alias(name, alias)
                if current is not None and current.version == version:
                    raise InputError(f"{name}@{alias} already points to version {version}")
                previous = current.version if current else None
                transition = {"alias": alias, "actor": who, "reason": reason}
                pending, _ = self._gated(
                    tx, kind=_kind, record=record, target=f"@{alias}",
                    gate=self.config.gate_for_alias(alias),
                    what=f"pointing {name}@{alias} at v{version}", transition=transition,
                    actor=who, reason=reason,
                    details={"alias": alias, "from": previous, "to": version,
                             **(_details or {})},
                    state={"alias": alias, "fromVersion": previous, "toVersion": version,
                           "rollback": _kind == "alias.rollback"})
                if dry_run:
                    return self._dry_result(pending)
                assert isinstance(tx, WriteTransaction)
                return self.record_change(tx, pending, lambda decision, seq, now: tx.set_alias(
                    AliasRecord(name=name, alias=alias, version=version, decision=decision,
                                seq=seq, updated_at=now)))

        if dry_run:
            return run()
        return self.after_commit(self.retrying(run))

    @checked(name=TEXT, alias=TEXT, reason=TEXT, actor=optional(TEXT))
    def delete_alias(self, name: str, alias: str, *, reason: str, actor: str | None = None
                     ) -> ChangeResult:
        """Remove an alias. Never gated (it grants nothing), always signed and audited.

        Example:
            registry.delete_alias("credit-risk", "canary", reason="experiment over")

        Raises:
            NotFoundError: the alias does not exist.
        """
        check_alias(alias)
        who = actor or default_actor()
        self.check_config_pinned()

        def run() -> ChangeResult:
            with self._write() as tx:
                current = tx.get_alias(name, alias)
                if current is None:
                    raise NotFoundError(f"{name} has no alias {alias!r}")
                record = need_version(tx, name, current.version)
                pending = PendingChange(
                    kind="alias.delete", name=name, version=current.version,
                    target=f"@{alias}", actor=who, reason=reason,
                    outcome=rule_outcome("alias-delete"),
                    subject_name=version_uri(name, current.version),
                    subject_digest=record.root_digest,
                    resource_uri=version_uri(name, current.version),
                    inputs={"registry:registration": record.registration},
                    change={"name": name, "version": current.version,
                            "transition": {"kind": "alias.delete", "alias": alias,
                                           "fromVersion": current.version}},
                    details={"alias": alias, "from": current.version, "to": None})
                return self.record_change(
                    tx, pending, lambda _decision, _seq, _time: tx.delete_alias(name, alias))

        return self.after_commit(self.retrying(run))

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
        check_name(name)
        check_alias(alias)
        details: dict[str, Any] = {}
        if to is not None:
            check_version(to)
        else:
            to = rollback_target(self.alias_history(name, alias))
            if to is None:
                raise NotFoundError(f"{name}@{alias} has no earlier version to roll back to",
                                    hint="pass --to VERSION")
            details["chosen"] = ("the most recent earlier target the alias was not rolled "
                                 "back from")
        return self.set_alias(name, alias, to, reason=reason, actor=actor, dry_run=dry_run,
                              _kind="alias.rollback", _details=details)

    @checked(name=TEXT, version=VERSION, review=PATH, actor=optional(TEXT), reason=optional(TEXT))
    def add_review(self, name: str, version: int, review: Path | str, *,
                   actor: str | None = None, reason: str | None = None) -> ChangeResult:
        """Attach a signed review to a version; it must verify (and will at each use).

        Example:
            registry.add_review("credit-risk", 3, "alice.sigstore.json")

        Raises:
            VerificationError: the review does not verify for this version.
        """
        from mlprov.reviews import verify_reviews

        path = Path(review)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read review {path}: {exc.strerror}") from exc
        if size > _MAX_REVIEW_FILE:
            raise InputError(f"review {path} is too large ({size} bytes)")
        who = actor or default_actor()
        self.check_config_pinned()
        facts = self.verify_version(name, version)
        from mlprov.reviews import provenance_digest

        reviews = list(verify_reviews([path], self.trust,
                                      root_digest=facts.record.root_digest,
                                      identity=facts.record.identity, name=facts.record.name,
                                      provenance=provenance_digest(facts.verdict)))
        if not reviews or not reviews[0].counted:
            problem = reviews[0].problem if reviews else "no result"
            raise VerificationError(f"review {path} does not count for {name} v{version}: "
                                    f"{problem}",
                                    hint="a review must be signed by a key with the reviewer "
                                         "role in the registry's trust, about this version's "
                                         "root digest and identity (`mlprov review approve`)")
        epoch = gc_epoch(self.metadata)
        digest = self.blobs.put_file(path).digest

        def run() -> ChangeResult:
            with self._write() as tx:
                check_blobs_kept(tx, self.blobs, epoch, (digest,))
                record = need_version(tx, name, version)
                if any(r.digest == digest for r in tx.list_reviews(name, version)):
                    raise InputError(f"review {path} is already attached to {name} v{version}")
                review_info = _review_summary(reviews[0])
                pending = PendingChange(
                    kind="review.add", name=name, version=version, target="review",
                    actor=who, reason=reason, outcome=rule_outcome("review-verified"),
                    subject_name=version_uri(name, version), subject_digest=record.root_digest,
                    resource_uri=version_uri(name, version),
                    inputs={f"reviews/{digest.removeprefix('sha256:')}.sigstore.json": digest,
                            "registry:registration": record.registration},
                    change={"name": name, "version": version, "review": digest,
                            **review_info},
                    details={"review": digest, **review_info})
                return self.record_change(tx, pending, lambda _decision, seq, now: tx.insert_review(
                    ReviewRecord(name=name, version=version, digest=digest, added_at=now,
                                 seq=seq)))

        return self.after_commit(self.retrying(run))

    # ------------------------------------------------------------------ history

    @checked(name=TEXT, alias=TEXT, at=optional(TEXT))
    def alias_history(self, name: str, alias: str, *, at: str | None = None
                      ) -> list[AliasChange]:
        """Every accepted change of ``alias``, oldest first (to ``at``, if given).

        Read from the audit log's hashed bodies, not from the alias table.

        Example:
            changes = registry.alias_history("credit-risk", "production")
        """
        from mlprov.registry._audit import entry_from_record

        check_alias(alias)
        with self.metadata.read() as tx:
            records = tx.audit_entries(name=name, target=f"@{alias}", accepted=True)
        changes = []
        for record in records:
            entry = entry_from_record(record)
            if entry.name != name or entry.target != f"@{alias}" or not entry.accepted:
                continue
            if at is not None and entry.time > at:
                break
            version = None if entry.kind == "alias.delete" else entry.version
            changes.append(AliasChange(seq=entry.seq, time=entry.time, kind=entry.kind,
                                       version=version, actor=entry.actor,
                                       reason=entry.reason, decision=entry.decision))
        return changes

    # ------------------------------------------------------------------ views

    def describe(self) -> dict[str, Any]:
        """Where the registry is and what it enforces (JSON-ready)."""
        with self.metadata.read() as tx:
            state = {k: tx.get_state(k) for k in ("trust", "policies", "config")}
            head = tx.audit_head()
        config = self.config
        public = self.location.public_key_file()
        keyid = None
        with contextlib.suppress(OSError, MlprovError):
            from mlprov.signing import load_public_key

            keyid = load_public_key(public).keyid
        return {
            "home": self.location.describe(), "id": self.registry_id, "publicKey": keyid,
            "signing": "sigstore" if self._signing() is not None else "key",
            "trust": state["trust"], "policies": state["policies"], "config": state["config"],
            "signers": [{"name": k.name, "roles": sorted(r.value for r in k.roles)}
                        for k in self.trust.keys],
            "gates": {"stages": {s.value: g for s, g in config.stage_gates.items()},
                      "aliases": dict(config.alias_gates)},
            "hooks": [h.name for h in config.hooks],
            "thresholds": self.thresholds.lines(),
            "auditHead": head.seq if head else 0,
        }

    def list_models(self) -> list[dict[str, Any]]:
        """Every model: name, latest version, aliases (JSON-ready)."""
        with self.metadata.read() as tx:
            out = []
            for model in tx.list_models():
                out.append({"name": model.name, "latestVersion": model.latest_version,
                            "createdAt": model.created_at,
                            "aliases": {a.alias: a.version for a in tx.list_aliases(model.name)}})
        return out

    @checked(name=TEXT, limit=optional(COUNT))
    def show_model(self, name: str, *, limit: int | None = None) -> dict[str, Any]:
        """A model's versions (newest first, up to ``limit``) and aliases (JSON-ready).

        Example:
            model = registry.show_model("credit-risk", limit=10)

        Raises:
            NotFoundError: no such model.
        """
        with self.metadata.read() as tx:
            model = tx.get_model(name)
            if model is None:
                raise NotFoundError(f"no model named {name!r} in the registry")
            versions = tx.list_versions(name, limit=limit, descending=True)
            aliases = tx.list_aliases(name)
            reviews = {v.version: len(tx.list_reviews(name, v.version)) for v in versions}
        return {
            "name": name, "createdAt": model.created_at, "latestVersion": model.latest_version,
            "aliases": {a.alias: {"version": a.version, "decision": a.decision,
                                  "updatedAt": a.updated_at} for a in aliases},
            "versions": [{"version": v.version, "uri": version_uri(name, v.version),
                          "stage": v.stage.value, "identity": v.identity,
                          "rootDigest": v.root_digest, "reproducible": v.reproducible,
                          "reviews": reviews[v.version], "createdAt": v.created_at,
                          "registration": v.registration, "stageDecision": v.stage_decision}
                         for v in versions],
        }

    @checked(since=COUNT, limit=optional(COUNT), name=optional(TEXT))
    def audit_log(self, *, since: int = 0, limit: int | None = None,
                  name: str | None = None) -> list[dict[str, Any]]:
        """Audit entries after ``since`` (JSON-ready, parsed from the hashed bodies).

        Example:
            entries = registry.audit_log(since=0, limit=50, name="credit-risk")
        """
        from mlprov.registry._audit import entry_from_record

        with self.metadata.read() as tx:
            records = tx.audit_entries(since=since, limit=limit, name=name)
        return [entry_from_record(r).to_json_dict(r.entry_hash) for r in records]

    @checked(deep=BOOL, checkpoint=optional(PATH_OBJ), sign_checkpoint=BOOL)
    def verify_audit(self, *, deep: bool = False, checkpoint: Path | None = None,
                     sign_checkpoint: bool = False) -> Any:
        """Verify the audit log; see :func:`mlprov.registry._auditlog.verify_audit`.

        Read-only unless ``sign_checkpoint`` (what :meth:`checkpoint` does).

        Example:
            report = registry.verify_audit(deep=True)
        """
        from mlprov.registry._auditlog import verify_audit

        return verify_audit(self, deep=deep, checkpoint=checkpoint,
                            sign_checkpoint=sign_checkpoint)

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
        report = self.verify_audit(deep=deep, sign_checkpoint=True)
        if not report.ok:
            raise VerificationError(f"audit log does not verify: {report.problems[0]}",
                                    hint="do not checkpoint this registry; restore it "
                                         "from a backup")
        data = self.latest_checkpoint()
        if data is None:  # pragma: no cover - a verified, non-empty log always signs one
            raise RegistryError("no checkpoint could be signed")
        return report, data

    def latest_checkpoint(self) -> bytes | None:
        """The latest signed checkpoint bundle (keep it outside the registry)."""
        from mlprov.registry._auditlog import export_head

        return export_head(self)

    @checked(since=COUNT, limit=optional(COUNT))
    def events(self, *, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Events after id ``since``, each with its deliveries (JSON-ready).

        Example:
            events = registry.events(since=0, limit=20)
        """
        with self.metadata.read() as tx:
            records = tx.events(since=since, limit=limit)
            out = []
            for record in records:
                document = event_document(record)
                document["deliveries"] = [
                    {"hook": d.hook, "state": d.state, "attempts": d.attempts,
                     "lastError": d.last_error} for d in tx.deliveries(event_id=record.id)]
                out.append(document)
        return out

    @checked(now=optional(NUMBER))
    def deliver_events(self, *, now: float | None = None) -> Any:
        """Deliver every due event to its hooks (retries included); never raises for hooks.

        Example:
            registry.deliver_events()
        """
        from mlprov.registry._events import deliver_due

        return deliver_due(self, now=now)

    # ------------------------------------------------------------------ deployments

    @checked(name=TEXT, models=STRINGS, reason=TEXT, actor=optional(TEXT))
    def create_deployment(self, name: str, models: list[str], *, reason: str,
                          actor: str | None = None) -> ChangeResult:
        """Pin the versions ``models`` (URIs) as the next version of deployment ``name``.

        Example:
            registry.create_deployment("scoring", ["models:/credit-risk/3"], reason="r")
        """
        from mlprov.registry._deploy import create_deployment

        return create_deployment(self, name, models, reason=reason,
                                 actor=actor or default_actor())

    @checked(name=TEXT, version=VERSION, to=STAGE, reason=TEXT, actor=optional(TEXT))
    def promote_deployment(self, name: str, version: int, *, to: Stage | str, reason: str,
                           actor: str | None = None) -> ChangeResult:
        """Move a deployment version to a stage; the stage's gate must allow every member.

        Example:
            registry.promote_deployment("scoring", 1, to="Production", reason="r")
        """
        from mlprov.registry._deploy import promote_deployment

        return promote_deployment(self, name, version, to=to, reason=reason,
                                  actor=actor or default_actor())

    @checked(name=TEXT, version=optional(VERSION))
    def show_deployment(self, name: str, version: int | None = None) -> list[Any]:
        """Deployment versions of ``name`` (or one), each with its signed spec verified.

        Example:
            versions = registry.show_deployment("scoring")
        """
        from mlprov.registry._deploy import show_deployment

        return show_deployment(self, name, version)

    def list_deployments(self) -> list[dict[str, Any]]:
        """Every deployment version (JSON-ready; not verified, see :meth:`show_deployment`)."""
        from mlprov.registry._deploy import deployment_uri, list_deployments

        return [{"name": r.name, "version": r.version, "uri": deployment_uri(r.name, r.version),
                 "stage": r.stage.value, "createdAt": r.created_at}
                for r in list_deployments(self)]

    # ------------------------------------------------------------------ delegated

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
        from mlprov.registry._pull import pull

        return pull(self, uri, Path(out), trust=trust, min_seq=min_seq,
                    head_file=Path(head_file) if head_file is not None else None,
                    allow_archived=allow_archived, actor=actor)

    @checked(uri=URI, out=PATH, trust=optional(TRUST_OBJ))
    def export_evidence(self, uri: str, out: Path | str, *, trust: Trust | None = None
                        ) -> Resolved:
        """Write a version's evidence to a new directory, verified first (see ``pull``).

        Example:
            registry.export_evidence("models:/base/2", "parents/base")
        """
        from mlprov.registry._pull import export_evidence

        return export_evidence(self, uri, Path(out), trust=trust)

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
        from mlprov.registry._pull import load

        return load(self, uri, trust=trust, min_seq=min_seq,
                    head_file=Path(head_file) if head_file is not None else None,
                    allow_archived=allow_archived, actor=actor)

    @checked(grace=NUMBER, dry_run=BOOL)
    def collect_garbage(self, *, grace: float = DEFAULT_GRACE, dry_run: bool = False,
                        progress: Callable[[str], None] | None = None) -> GcReport:
        """Delete blobs nothing in the registry names, written over ``grace`` seconds ago.

        Killed writers leave such blobs; referenced blobs are never deleted
        (:mod:`mlprov.registry._gc`). Needs no registry key: nothing audited changes.

        Example:
            report = registry.collect_garbage(dry_run=True)
        """
        return collect_garbage(self.metadata, self.blobs, grace=grace, dry_run=dry_run,
                               progress=progress)

    @checked(name=TEXT)
    def iter_versions(self, name: str) -> Iterator[VersionRecord]:
        """Every version of ``name``.

        Example:
            for record in registry.iter_versions("credit-risk"): ...
        """
        with self.metadata.read() as tx:
            if tx.get_model(name) is None:
                raise NotFoundError(f"no model named {name!r} in the registry")
            records = tx.list_versions(name)
        yield from records


_SETTING_KINDS = {"registry.trust": "trust", "registry.policies": "policies",
                  "registry.config": "config", "registry.thresholds": "thresholds"}


def _registry_role_from(stored: Trust, anchor: Trust) -> Trust:
    """``stored`` with the ``registry`` role left only to the anchor's signers.

    A key added to the stored trust set with the ``registry`` role (by whoever can
    write the database) gains nothing: decisions and heads verify only with the
    registry's own key, or (keyless) its own identity rules.
    """
    from dataclasses import replace

    anchor_keys = {k.key.keyid for k in anchor.keys}
    keys = tuple(k if Role.REGISTRY not in k.roles or k.key.keyid in anchor_keys
                 else replace(k, roles=k.roles - {Role.REGISTRY}) for k in stored.keys)
    if anchor.keys:  # a key-signing registry: no Sigstore identity signs for it
        rules = tuple(r if Role.REGISTRY not in r.roles
                      else replace(r, roles=r.roles - {Role.REGISTRY}) for r in stored.sigstore)
    else:
        rules = stored.sigstore
    return replace(stored, keys=keys, sigstore=rules)


def _parents_key(predicate: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A provenance's parents as sorted (role, root digest) pairs."""
    from mlprov._internal.parents import parents_from_predicate

    return tuple(sorted((p.role, p.sha256 or p.name) for p in parents_from_predicate(predicate)))


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except InputError:
        return False
    return True


def _replace(record: VersionRecord, **changes: Any) -> VersionRecord:
    import dataclasses

    return dataclasses.replace(record, **changes)


def _review_summary(review: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute, key in (("decision", "decision"), ("reviewer", "reviewer"),
                           ("time", "time")):
        value = getattr(review, attribute, None)
        if isinstance(value, str):
            out[key] = value
    signer = getattr(review, "signer", None)
    name = getattr(signer, "name", None)
    if isinstance(name, str):
        out["signer"] = name
    return out


def _pin_public_key(location: RegistryLocation, pem: bytes) -> None:
    """Pin a team registry's public key locally at first use; refuse a different one later.

    Raises:
        RegistryIntegrityError: the database names another key than the pinned one.
    """
    pin = location.public_key_file()
    try:
        pinned = pin.read_bytes()
    except FileNotFoundError:
        _write_file_atomically(pin, pem, 0o644)
        return
    except OSError as exc:
        raise RegistryError(f"cannot read the pinned registry key {pin}: {exc.strerror}") from exc
    if pinned.strip() != pem.strip():
        raise RegistryIntegrityError(
            f"the registry in {location.describe()} names another public key than the one "
            f"pinned at first use ({pin})",
            hint="if the registry was re-created on purpose, delete the pin file; otherwise "
                 "its database was changed")


def _initial_settings(blobs: BlobStore, trust_bytes: bytes, policies_dir: Path,
                      thresholds: Thresholds) -> list[tuple[str, str]]:
    """Store a new registry's trust, policies, default config (and thresholds) as blobs.

    Raises:
        InputError: the default gates name a policy the set does not hold.
    """
    policies_bytes = policies_snapshot(policies_dir, blobs)
    config_bytes = DEFAULT_CONFIG.encode()
    _check_gates(parse_config(config_bytes), policies_bytes)
    settings = [("trust", blobs.put_bytes(trust_bytes).digest),
                ("policies", blobs.put_bytes(policies_bytes).digest),
                ("config", blobs.put_bytes(config_bytes).digest)]
    if thresholds:
        settings.append(("thresholds", blobs.put_bytes(thresholds.to_bytes()).digest))
    return settings


def _thresholds_details(thresholds: Thresholds) -> dict[str, Any]:
    return {"thresholds": thresholds.lines()} if thresholds else {}


def _thresholds(value: Thresholds | Iterable[str] | None) -> Thresholds:
    from mlprov.thresholds import Thresholds, parse_thresholds

    if value is None:
        return Thresholds()
    if isinstance(value, Thresholds):
        return value
    return parse_thresholds(value)


def _shipped_policies() -> Path:
    try:
        from mlprov.policy import shipped_policies_dir
    except ImportError as exc:  # pragma: no cover - the policy module ships with mlprov
        raise InputError("no policies given and none shipped",
                         hint="pass --policies DIR") from exc
    return shipped_policies_dir()


def _check_policy_tests(directory: Path, thresholds: Thresholds | None = None,
                        data_file: str | None = None) -> None:
    """Run a policy set's Rego tests, if it has any; refuse the set if one fails.

    The tests see the data the gates will see: the data file the config names
    (else the set's own), with the registry's ``thresholds`` in place.
    """
    from mlprov.policy import (
        TEST_SUFFIX,
        PolicyError,
        load_policy,
        load_policy_data,
        run_policy_tests,
    )

    if not directory.is_dir() or not any(directory.rglob(f"*{TEST_SUFFIX}")):
        return
    data: dict[str, Any] | None = None
    if data_file is not None and (directory / data_file).is_file():
        data = load_policy_data(directory / data_file)
    if thresholds:
        data = thresholds.apply(load_policy(directory).data if data is None else data)
    report = run_policy_tests(directory, data)
    if not report.ok:
        failed = [t for t in report.tests if not t.passed]
        first = failed[0]
        raise PolicyError(
            f"{report.failed} of {len(report.tests)} policy test(s) of {directory} fail, "
            f"first {first.file}: {first.name}" + (f" ({first.detail})" if first.detail else ""),
            hint=f"run `mlprov policy test {directory}` and fix the policies or their tests")


def _check_gates(config: RegistryConfig, policies_snapshot_bytes: bytes) -> None:
    """Refuse a config naming policies the snapshot does not hold (fail at set time)."""
    from mlprov.registry._home import policy_file_digests

    files = policy_file_digests(policies_snapshot_bytes)
    missing = sorted(p for p in config.policy_files() if p not in files)
    if missing:
        raise InputError(f"the gates name policies that are not in the registry's policies: "
                         f"{', '.join(missing)}",
                         hint="add them to the policies directory, or change [gates] in "
                              "mlprov.toml")
    if config.policy_data and config.policy_data not in files:
        raise InputError(f"policy data {config.policy_data} is not in the registry's policies")


def _write_file_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a stale one from a crashed run: never reuse its mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _head_seq(path: Path, trust: Trust) -> int | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    signed = verify_signed(data, trust, what=HEAD_FILE, predicate_type=CHECKPOINT_PREDICATE)
    seq = signed.predicate.get("seq")
    return seq if isinstance(seq, int) else None


def _ingest_files(blobs: BlobStore, model: Path, signed: Any) -> Any:
    """Copy every file the signed manifest names into the blob store, checking digests."""
    from mlprov.hashing import FileDigest, Manifest, manifest_sort_key

    root = model.resolve()
    entries = []
    for rel, digest in signed.files.items():
        source = model if rel == "." else model / rel
        if signed.allow_symlinks:
            real = Path(os.path.realpath(source))
            if real != root and root not in real.parents:
                raise InputError(f"{rel} leaves the model root")
            source = real
        info = blobs.put_file(source, expected=f"sha256:{digest}")
        entries.append(FileDigest(rel, digest, info.size))
    entries.sort(key=lambda f: manifest_sort_key(f.path))
    return Manifest(name=root.name, files=tuple(entries),
                    ignore_paths=tuple(signed.ignore_paths),
                    allow_symlinks=signed.allow_symlinks, is_file=model.is_file())


def _ingest_evidence(blobs: BlobStore, evidence: Path) -> dict[str, str]:
    """Store the evidence directory's top-level files; returns name -> digest."""
    from mlprov.hashing import check_relative_path

    if not evidence.is_dir():
        raise InputError(f"evidence directory not found: {evidence}",
                         hint="register needs the directory `mlprov attest --out` wrote")
    files: dict[str, str] = {}
    for entry in sorted(os.scandir(evidence), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        check_relative_path(entry.name)
        if entry.stat(follow_symlinks=False).st_size > _MAX_EVIDENCE_FILE:
            raise InputError(f"evidence file {entry.path} is too large")
        files[entry.name] = blobs.put_file(Path(entry.path)).digest
    return files


