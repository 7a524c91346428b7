"""What the registry's parts need of a registry: one typed seam, no circle.

:class:`~mlprov.registry.Registry` (the façade in :mod:`._core`) implements this
protocol and hands itself to the modules that do the work; they take a
``RegistryContext`` and never import the façade, so imports flow one way:
``_core`` -> operations (``_setup``, ``_settings_ops``, ``_register``, ``_moves``,
``_lookup``, ``_views``, ``_deploy``, ``_pull``, ``_auditlog``, ``_events``) ->
``_gatekeeper`` -> ``_recorder`` -> ``_context`` -> settings, records, stores.

A context is state only: where the registry is, its stores, its settings and its
caches. What is done with it lives in modules of functions: every change goes
through :func:`._recorder.record_change` (sign the decision, apply the change,
append the audit entry, enqueue the event, checkpoint, sign the head) inside
:func:`._recorder.retrying`, then :func:`._recorder.after_commit`; every gated
move asks :mod:`._gatekeeper`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mlprov.registry._facts import VerifiedCache
    from mlprov.registry._gate import PolicyCache
    from mlprov.registry._location import RegistryLocation
    from mlprov.registry._settings import RegistrySettings
    from mlprov.registry.interface import BlobStore, MetadataStore

__all__ = ["RegistryContext"]


class RegistryContext(Protocol):
    """A registry as its parts see it."""

    @property
    def home(self) -> Path:
        """The registry directory (a team registry's local cache)."""

    @property
    def location(self) -> RegistryLocation:
        """Where the registry is: a directory, or a database URL and a local cache."""

    @property
    def metadata(self) -> MetadataStore:
        """The metadata store (rows, audit log, decisions, events)."""

    @property
    def blobs(self) -> BlobStore:
        """The content-addressed blob store."""

    @property
    def settings(self) -> RegistrySettings:
        """The id, anchor, signed head, trust, config, thresholds, policies and signer."""

    @property
    def policy_cache(self) -> PolicyCache:
        """Compiled policies and their data, by content."""

    @property
    def verified(self) -> VerifiedCache:
        """Re-verifications of stored versions, memoised by content digests."""
