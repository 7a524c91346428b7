"""Opening a registry, and creating one: its stores, key, first settings and init entry.

An embedded registry is a directory (SQLite, local blobs, ``keys/registry.key``,
``mlprov.toml``); a team registry is a database URL whose blob store and public
key are named in the database, pinned locally at first use. Creating either
checks every input before anything is written, stores the first settings as
blobs and records ``registry.init`` as the log's first, signed entry.

The façade's class is never imported here: it is passed in as ``make``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from mlprov.canonical import canonical_json
from mlprov.errors import InputError
from mlprov.registry._blobs import LocalBlobStore
from mlprov.registry._home import (
    CONFIG_FILE,
    DB_FILE,
    KEY_FILE,
    policies_snapshot,
    require_registry,
    trust_snapshot,
    write_file_atomically,
)
from mlprov.registry._location import (
    BLOBS_STATE,
    PUBLIC_KEY_STATE,
    RegistryLocation,
    open_blob_store,
)
from mlprov.registry._records import default_actor
from mlprov.registry._settings import SIGNING_SCHEMA, check_registry_identity, keyless_signer
from mlprov.registry._sqlite import SqliteMetadataStore
from mlprov.registry.interface import BlobStore, MetadataStore, NotFoundError, RegistryError

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.registry._sql import SqlMetadataStore
    from mlprov.thresholds import Thresholds

__all__ = ["MakeRegistry", "create_registry", "open_registry", "pin_public_key"]

C_co = TypeVar("C_co", bound="RegistryContext", covariant=True)
C = TypeVar("C", bound="RegistryContext")


class MakeRegistry(Protocol[C_co]):
    """What builds a registry from its parts (the façade's class)."""

    def __call__(self, home: Path, metadata: MetadataStore, blobs: BlobStore, *,
                 location: RegistryLocation | None = None,
                 key: Path | str | None = None) -> C_co:
        """A registry over these stores."""


def open_registry(home: Path | str | None, *, key: Path | str | None,
                  make: MakeRegistry[C]) -> C:
    """Open the registry at ``home`` (see :meth:`Registry.open`).

    Raises:
        NotFoundError: there is no registry there.
        RegistryIntegrityError: a team registry's public key is not the pinned one.
    """
    location = RegistryLocation.of(home)
    if location.embedded:
        path = location.home
        require_registry(path)
        # Reads on the standard library's sqlite3; SQLAlchemy only once something writes.
        store = SqliteMetadataStore(path / DB_FILE,
                                    description=f"registry database {path / DB_FILE}")
        try:
            store.check_schema()
        except BaseException:
            store.close()
            raise
        return make(path, store, LocalBlobStore(path / "blobs"), location=location, key=key)
    team = cast("SqlMetadataStore", location.metadata_store())
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
            pin_public_key(location, public_pem.encode())
        blobs = open_blob_store(blobs_spec, home=location.home)
    except BaseException:
        team.close()
        raise
    return make(location.home, team, blobs, location=location, key=key)


def create_registry(home: Path | str | None, *, trust: Path | str,
                    policies: Path | str | None, key: Path | str | None, actor: str | None,
                    sigstore: bool, identity_token: str | None, staging: bool,
                    trust_config: Path | str | None,
                    thresholds: Thresholds | Iterable[str] | None,
                    blobs: Path | str | None, make: MakeRegistry[C]) -> C:
    """Create a registry (see :meth:`Registry.init`).

    Raises:
        InputError: a registry exists there, or an input is unusable (or,
            keyless, the trust gives the signing identity no registry role).
        SigningError: keyless: no usable identity token.
    """
    from mlprov.registry._settings_ops import (
        check_policy_tests,
        shipped_policies,
        threshold_set,
    )
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
    policies_dir = Path(policies) if policies is not None else shipped_policies()
    thresholds_now = threshold_set(thresholds)
    if policies is not None:  # the shipped set's tests run in mlprov's own suite
        check_policy_tests(policies_dir, thresholds_now)
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
        signer = keyless_signer(identity_token, staging, trust_config)
        from mlprov.trust import load_trust

        check_registry_identity(signer, load_trust(trust_path))
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
        return _create_team(
            location, signer=signer, key=key, blobs_spec=str(blobs), trust_bytes=trust_bytes,
            policies_dir=policies_dir, thresholds=thresholds_now, actor=actor,
            sigstore=sigstore, make=make)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "keys").mkdir(exist_ok=True)
        os.chmod(path / "keys", 0o700)
        if sigstore:
            pass  # no key: the Sigstore identity signs
        elif key_bytes:
            write_file_atomically(key_path, key_bytes, 0o600)
            write_file_atomically(key_path.with_name(key_path.name + ".pub"),
                                  signer.public_key.pem, 0o644)
        else:
            write_key_pair(private, key_path, None, overwrite=True)
    except OSError as exc:
        raise InputError(f"cannot create the registry at {path}: {exc.strerror}") from exc
    blob_store = LocalBlobStore(path / "blobs")
    settings = _initial_settings(blob_store, trust_bytes, policies_dir, thresholds_now)
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
    from mlprov.registry._sql import SqlMetadataStore, sqlite_url

    store = SqlMetadataStore(sqlite_url(path / DB_FILE),
                             description=f"registry database {path / DB_FILE}")
    store.create_schema()
    from mlprov.registry._config import DEFAULT_CONFIG

    write_file_atomically(path / CONFIG_FILE, DEFAULT_CONFIG.encode(), 0o644)
    registry = make(path, store, blob_store, location=location, key=key)
    registry.settings.use_signer(signer)
    _record_init(registry, settings, actor=actor, description=str(path),
                 details={**signed_by, **_thresholds_details(thresholds_now)})
    return registry


def _create_team(location: RegistryLocation, *, signer: Any, key: Path | str | None,
                 blobs_spec: str, trust_bytes: bytes, policies_dir: Path,
                 thresholds: Thresholds, actor: str | None, sigstore: bool,
                 make: MakeRegistry[C]) -> C:
    """Create a team registry: settings as blobs its database names, nothing local.

    The public key goes into the database (for other machines to pin at first
    use) and into this machine's pin; the private key stays where it is.
    """
    blob_store = open_blob_store(blobs_spec, home=location.home)
    settings = _initial_settings(blob_store, trust_bytes, policies_dir, thresholds)
    if sigstore:
        raise InputError("a keyless team registry is not supported yet",
                         hint="give the team registry a key (--key)")
    store = cast("SqlMetadataStore", location.metadata_store())
    try:
        store.create_schema()
        location.prepare_cache()
        registry = make(location.home, store, blob_store, location=location, key=key)
        registry.settings.use_signer(signer)
        settings += [(BLOBS_STATE, blobs_spec),
                     (PUBLIC_KEY_STATE, signer.public_key.pem.decode())]
        _record_init(registry, settings, actor=actor, description=location.describe(),
                     details={"publicKey": signer.public_key.keyid, "blobs": blobs_spec,
                              **_thresholds_details(thresholds)})
        pin_public_key(location, signer.public_key.pem)
    except BaseException:
        store.close()
        raise
    return registry


def _record_init(registry: RegistryContext, settings: list[tuple[str, str]], *,
                 actor: str | None, description: str, details: dict[str, Any]) -> None:
    """Write a new registry's id and settings and record ``registry.init`` (one commit)."""
    import uuid

    found = dict(settings)
    registry_id = str(uuid.uuid4())
    registry.settings.registry_id = registry_id
    with registry.metadata.write() as tx:
        if tx.get_state("registry_id") is not None:
            raise InputError(f"a registry already exists at {description}")
        tx.set_state("registry_id", registry_id)
        for key_name, value in settings:
            tx.set_state(key_name, value)
        from mlprov.registry._recorder import record_change
        from mlprov.registry._settings_ops import config_change

        record_change(registry, tx, config_change(
            registry, "registry.init", actor=actor or default_actor(),
            reason="registry created", subject=found["trust"],
            inputs={f"registry:{k}": found[k] for k in ("trust", "policies", "config")},
            details={k: found[k] for k in ("trust", "policies", "config")} | details))


def pin_public_key(location: RegistryLocation, pem: bytes) -> None:
    """Pin a team registry's public key locally at first use; refuse a different one later.

    Raises:
        RegistryIntegrityError: the database names another key than the pinned one.
    """
    pin = location.public_key_file()
    try:
        pinned = pin.read_bytes()
    except FileNotFoundError:
        write_file_atomically(pin, pem, 0o644)
        return
    except OSError as exc:
        raise RegistryError(f"cannot read the pinned registry key {pin}: {exc.strerror}") from exc
    if pinned.strip() != pem.strip():
        from mlprov.registry._facts import RegistryIntegrityError

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
    from mlprov.registry._config import DEFAULT_CONFIG, parse_config
    from mlprov.registry._settings_ops import check_gates

    config_bytes = DEFAULT_CONFIG.encode()
    check_gates(parse_config(config_bytes), policies_bytes)
    settings = [("trust", blobs.put_bytes(trust_bytes).digest),
                ("policies", blobs.put_bytes(policies_bytes).digest),
                ("config", blobs.put_bytes(config_bytes).digest)]
    if thresholds:
        settings.append(("thresholds", blobs.put_bytes(thresholds.to_bytes()).digest))
    return settings


def _thresholds_details(thresholds: Thresholds) -> dict[str, Any]:
    return {"thresholds": thresholds.lines()} if thresholds else {}
