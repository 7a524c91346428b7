"""What a registry acts on, read as its signed head names it: one owner, one cache.

:class:`RegistrySettings` reads the registry's id, its anchor (who may sign its
decisions and heads), the signed head, the trust it enforces, its recorded
``mlprov.toml``, thresholds and policies, and makes its signer. Each is read once
and kept until a settings change calls :meth:`RegistrySettings.forget`. A setting
is read only as the signed head names it, so a row edited outside the registry is
never acted on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.canonical import loads_strict
from mlprov.errors import InputError
from mlprov.registry.interface import RegistryError

if TYPE_CHECKING:
    from mlprov.registry._config import RegistryConfig
    from mlprov.registry._head import SignedHead
    from mlprov.registry._location import RegistryLocation
    from mlprov.registry.interface import BlobStore, MetadataStore
    from mlprov.thresholds import Thresholds
    from mlprov.trust import Trust

__all__ = ["SIGNING_SCHEMA", "RegistrySettings", "check_registry_identity", "keyless_signer"]

SIGNING_SCHEMA = "https://mlprov.dev/schemas/registry-signing/v1"


class RegistrySettings:
    """A registry's id, anchor, signed head, trust, config, thresholds, policies and signer."""

    def __init__(self, home: Path, location: RegistryLocation, metadata: MetadataStore,
                 blobs: BlobStore, *, key: Path | str | None = None) -> None:
        self._home = home
        self._location = location
        self._metadata = metadata
        self._blobs = blobs
        self._key = key
        self._registry_id: str | None = None
        self._anchor: Trust | None = None
        self._trust: Trust | None = None
        self._trust_digest: str | None = None
        self._config: RegistryConfig | None = None
        self._config_bytes: bytes | None = None
        self._thresholds: Thresholds | None = None
        self._signer: Any = None
        self._policies_dir: Path | None = None
        #: The settings (key -> digest) of the signed head the cached values were read
        #: under: another process's change makes a later head name others.
        self._basis: dict[str, str] | None = None
        self._moved = False  # the basis moved since is_stale() last looked

    def forget(self) -> None:
        """Drop what a settings change replaces (trust, config, policies, thresholds)."""
        self._basis = None
        self._trust = None
        self._trust_digest = None
        self._config = None
        self._policies_dir = None
        self._thresholds = None

    @property
    def registry_id(self) -> str:
        """The registry's id (a UUID made at init; named in every decision)."""
        if self._registry_id is None:
            with self._metadata.read() as tx:
                self._registry_id = tx.get_state("registry_id") or "unknown"
        return self._registry_id

    @registry_id.setter
    def registry_id(self, value: str) -> None:
        self._registry_id = value

    def _state(self, key: str) -> str:
        with self._metadata.read() as tx:
            value = tx.get_state(key)
        if value is None:
            raise RegistryError(f"the registry at {self._home} has no {key} recorded",
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
        from mlprov.registry._home import load_trust_snapshot
        from mlprov.trust import Role, Trust

        if self._anchor is None:
            from mlprov.signing import load_public_key
            from mlprov.trust import TrustedKey

            public = self._location.public_key_file()
            if public.is_file():
                key = load_public_key(public)
                self._anchor = Trust(keys=(TrustedKey(name="registry", key=key,
                                                      roles=frozenset({Role.REGISTRY})),),
                                     source=str(public))
            else:
                stored = load_trust_snapshot(self._blobs.get_bytes(self._state("trust")),
                                             source="the registry's trust")
                self._anchor = Trust(keys=(), source=stored.source,
                                     trusted_root=stored.trusted_root,
                                     sigstore=tuple(r for r in stored.sigstore
                                                    if Role.REGISTRY in r.roles))
        return self._anchor

    def head(self, *, anchor: Trust | None = None) -> SignedHead:
        """The signed head, verified with ``anchor`` (default: :attr:`anchor`); the log ends there.

        Raises:
            RegistryIntegrityError: no valid head, or a log cut, extended or rewritten.
        """
        from mlprov.registry._head import check_log, read_head

        trusted = anchor or self.anchor
        with self._metadata.read() as tx:
            head = read_head(tx, registry_id=self.registry_id, anchor=trusted,
                             anchor_id=id(trusted))
            check_log(tx, head)
        if head.settings != self._basis:  # changed since read (by anyone): read again
            if self._basis is not None:
                self._moved = True
            self.forget()
            self._basis = dict(head.settings)
        return head

    def is_stale(self, settings: dict[str, str]) -> bool:
        """Whether a change may have been decided on settings other than ``settings``.

        A long-running process (a server, a notebook) keeps its :class:`Registry`
        open while other processes change trust, config, policies or thresholds.
        True when the values cached here were read under other settings, or when
        they were replaced since the last call (a change could have used some
        old and some new ones); the caller then decides the change again.
        """
        moved, self._moved = self._moved, False
        return moved or (self._basis is not None and settings != self._basis)

    def _signed_setting(self, key: str) -> str:
        """A setting's digest, only if the signed head names it."""
        from mlprov.registry._head import check_setting

        head = self.head()
        with self._metadata.read() as tx:
            digest = check_setting(tx, head, key)
        if digest is None:
            raise RegistryError(f"the registry at {self._home} has no {key} recorded",
                                hint="the registry is incomplete; run `mlprov registry init`")
        return digest

    @property
    def trust(self) -> Trust:
        """The trust the registry enforces: its signed snapshot.

        The registry role is held only by the registry's own key (:attr:`anchor`).
        """
        from mlprov.registry._home import load_trust_snapshot

        if self._trust is None:
            digest = self._signed_setting("trust")
            stored = load_trust_snapshot(self._blobs.get_bytes(digest),
                                         source=f"the registry's trust ({digest[:19]})")
            self._trust = _registry_role_from(stored, self.anchor)
            self._trust_digest = digest
        return self._trust

    @property
    def trust_digest(self) -> str:
        """The digest of the trust snapshot :attr:`trust` was read from."""
        self.trust  # noqa: B018 - loads _trust_digest
        assert self._trust_digest is not None
        return self._trust_digest

    @property
    def config(self) -> RegistryConfig:
        """The recorded ``mlprov.toml`` (the version the audit log accepted)."""
        if self._config is None:
            data = self._blobs.get_bytes(self._signed_setting("config"))
            self._config_bytes = data
            from mlprov.registry._config import parse_config

            self._config = parse_config(data)
        return self._config

    @property
    def config_bytes(self) -> bytes:
        """The recorded ``mlprov.toml``, byte for byte."""
        self.config  # noqa: B018 - loads _config_bytes
        assert self._config_bytes is not None
        return self._config_bytes

    @property
    def thresholds(self) -> Thresholds:
        """The registry's metric thresholds (empty: the policy data's own apply).

        Read only as the signed head names them.
        """
        from mlprov.registry._head import check_setting

        if self._thresholds is None:
            from mlprov.thresholds import Thresholds

            head = self.head()
            with self._metadata.read() as tx:
                digest = check_setting(tx, head, "thresholds")
            self._thresholds = (Thresholds() if digest is None else Thresholds.from_bytes(
                self._blobs.get_bytes(digest), what="the registry's thresholds"))
        return self._thresholds

    def policies_dir(self) -> Path:
        """The directory holding the recorded policies (rebuilt from blobs if needed)."""
        from mlprov.registry._home import materialize_policies

        if self._policies_dir is None:
            digest = self._signed_setting("policies")
            self._policies_dir = materialize_policies(
                self._home, digest, self._blobs.get_bytes(digest), self._blobs)
        return self._policies_dir

    @property
    def signer(self) -> Any:
        """The registry's :class:`~mlprov.signing.BundleSigner`, made once.

        Its key, or (keyless registries) a Sigstore session whose token is taken now.
        """
        if self._signer is None:
            signing = self.signing()
            if signing is not None:
                self._signer = self._keyless_session(signing)
            else:
                from mlprov.signing import load_private_key

                key_file = self._location.key_file(self._key)
                if key_file is None:
                    raise RegistryError(
                        f"changing the registry in {self._location.describe()} needs its "
                        "private key", hint="pass --key REGISTRY_KEY or set "
                                            "$MLPROV_REGISTRY_KEY (resolve and pull need none)")
                self._signer = load_private_key(key_file)
                if self._signer.public_key.keyid != self.anchor.keys[0].key.keyid \
                        if self.anchor.keys else False:
                    raise RegistryError(f"{key_file} is not this registry's key",
                                        hint="use the key the registry was created with")
        return self._signer

    def use_signer(self, signer: Any) -> None:
        """Sign with ``signer`` (a new registry's, already checked against its trust)."""
        self._signer = signer

    def signing(self) -> dict[str, Any] | None:
        """The recorded keyless signing settings, or None for a key-signing registry."""
        with self._metadata.read() as tx:
            digest = tx.get_state("signing")
        if digest is None:
            return None
        document = loads_strict(self._blobs.get_bytes(digest), what="registry signing settings")
        if not isinstance(document, dict) or document.get("schema") != SIGNING_SCHEMA:
            raise RegistryError("the registry's signing settings are unusable")
        return document

    def _keyless_session(self, signing: dict[str, Any]) -> Any:
        """A Sigstore keyless signer for the recorded instance."""
        import tempfile

        digest = signing.get("trustConfig")
        if not isinstance(digest, str):
            return keyless_signer(None, bool(signing.get("staging")), None)
        with tempfile.TemporaryDirectory(prefix=".signing-", dir=self._home) as tmp:
            config = Path(tmp) / "trust_config.json"
            config.write_bytes(self._blobs.get_bytes(digest))
            return keyless_signer(None, False, config)


def keyless_signer(identity_token: str | None, staging: bool,
                   trust_config: Path | str | None) -> Any:
    """A Sigstore keyless session; the token defaults to ``$MLPROV_IDENTITY_TOKEN``."""
    from mlprov.signing import IDENTITY_TOKEN_ENV, make_signer

    return make_signer(sigstore=True, staging=staging, trust_config=trust_config,
                       identity_token=identity_token or os.environ.get(IDENTITY_TOKEN_ENV))


def check_registry_identity(signer: Any, trust: Trust) -> None:
    """Refuse a keyless identity that no ``sigstore`` rule with the registry role names.

    Raises:
        InputError: the registry could not verify its own decisions.
    """
    from mlprov.trust import Role

    _, issuer = signer.sigstore_identity
    subjects = signer.certificate_subjects()
    if not any(Role.REGISTRY in rule.roles and rule.matches(subject, issuer)
               for rule in trust.sigstore for subject in subjects):
        raise InputError(
            f"{trust.source} gives the registry's Sigstore identity {subjects[-1]} "
            f"(issuer {issuer}) no registry role",
            hint="add a sigstore rule for that identity with roles: [registry] to the trust "
                 "file")


def _registry_role_from(stored: Trust, anchor: Trust) -> Trust:
    """``stored`` with the ``registry`` role left only to the anchor's signers.

    A key added to the stored trust set with the ``registry`` role (by whoever can
    write the database) gains nothing: decisions and heads verify only with the
    registry's own key, or (keyless) its own identity rules.
    """
    from dataclasses import replace

    from mlprov.trust import Role

    anchor_keys = {k.key.keyid for k in anchor.keys}
    keys = tuple(k if Role.REGISTRY not in k.roles or k.key.keyid in anchor_keys
                 else replace(k, roles=k.roles - {Role.REGISTRY}) for k in stored.keys)
    if anchor.keys:  # a key-signing registry: no Sigstore identity signs for it
        rules = tuple(r if Role.REGISTRY not in r.roles
                      else replace(r, roles=r.roles - {Role.REGISTRY}) for r in stored.sigstore)
    else:
        rules = stored.sigstore
    return replace(stored, keys=keys, sigstore=rules)
