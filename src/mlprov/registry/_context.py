"""What the registry's operation modules need of a registry: one typed seam, no circle.

:class:`~mlprov.registry.Registry` (the façade in :mod:`._core`) implements this
protocol; the modules of operations (:mod:`._deploy`, :mod:`._pull`,
:mod:`._auditlog`, :mod:`._events`) take a ``RegistryContext`` and never import
the façade, so imports flow one way: ``_core`` -> operations -> ``_context`` ->
records, stores. The change pipeline (``record_change``: sign the decision, apply
the change, append the audit entry, enqueue the event, checkpoint, sign the head;
``retrying``; ``after_commit``) and the gate (``registry_state``, the policy
cache) are reached through it, by name, as public members.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlprov.registry._config import RegistryConfig
    from mlprov.registry._facts import VersionFacts
    from mlprov.registry._gate import PolicyCache
    from mlprov.registry._head import SignedHead
    from mlprov.registry._location import RegistryLocation
    from mlprov.registry._records import ChangeResult, PendingChange, Resolved
    from mlprov.registry.interface import (
        BlobStore,
        MetadataStore,
        ReadTransaction,
        VersionRecord,
        WriteTransaction,
    )
    from mlprov.trust import Trust

__all__ = ["RegistryContext"]


class RegistryContext(Protocol):
    """A registry as its operation modules see it."""

    home: Path
    location: RegistryLocation
    metadata: MetadataStore
    blobs: BlobStore
    policy_cache: PolicyCache

    @property
    def registry_id(self) -> str:
        """The registry's id."""

    @property
    def anchor(self) -> Trust:
        """Who may sign the registry's decisions and heads."""

    @property
    def trust(self) -> Trust:
        """The trust the registry enforces."""

    @property
    def config(self) -> RegistryConfig:
        """The recorded ``mlprov.toml``."""

    @property
    def signer(self) -> Any:
        """The registry's signer."""

    def head(self, *, anchor: Trust | None = None) -> SignedHead:
        """The verified signed head."""

    def policies_dir(self) -> Path:
        """The recorded policies, materialised."""

    def policy_uri_prefix(self) -> str:
        """The prefix of the registry's policy URIs in decisions."""

    def verify_record(self, record: VersionRecord, reviews: list[str], *, deep: bool = False,
                      trust: Trust | None = None, tx: ReadTransaction | None = None
                      ) -> VersionFacts:
        """Re-verify a stored version."""

    def registry_state(self, tx: ReadTransaction, record: VersionRecord,
                       extra: dict[str, Any]) -> dict[str, Any]:
        """The registry's state, as policies see it."""

    def check_config_pinned(self) -> None:
        """Refuse changes while an embedded registry's mlprov.toml differs."""

    def record_change(self, tx: WriteTransaction, pending: PendingChange,
                      apply: Callable[[str, int, str], None] | None = None) -> ChangeResult:
        """Sign, apply, audit, emit and checkpoint one change."""

    def retrying(self, fn: Callable[[], ChangeResult]) -> ChangeResult:
        """Run a change, retrying store conflicts a bounded number of times."""

    def after_commit(self, result: ChangeResult) -> ChangeResult:
        """Deliver hooks, mirror the head; raise if the change was denied."""

    def sign_checkpoint(self, tx: WriteTransaction, seq: int, entry_hash: str,
                        now: str) -> bytes:
        """Sign and store a checkpoint of the audit log."""

    def write_head(self, bundle: bytes, seq: int) -> None:
        """Mirror a checkpoint to head.json (best effort)."""

    def record_archived_use(self, resolved: Resolved, *, actor: str | None = None) -> None:
        """Audit an Archived version handed out through --allow-archived."""
