"""The server's state: the registry it fronts, its tokens, authentication, limits.

Registry work is blocking (SQLite or PostgreSQL, blob reads, policy
evaluation, signing), so it runs on worker threads, at most ``workers`` at a
time. Each worker thread opens its own :class:`~mlprov.registry.Registry` on
the same location (as separate processes would): the registry serialises its
writers in the database (``BEGIN IMMEDIATE`` / an advisory lock), and no
registry object is shared between threads.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlprov.server._auth import Authenticator
from mlprov.server._config import ServerConfig
from mlprov.server._oidc import OidcVerifier
from mlprov.server._ratelimit import RateLimiter
from mlprov.server._refusals import RefusalTrail, Summary
from mlprov.server._tokens import TokenStore

if TYPE_CHECKING:
    from mlprov.registry import Registry
    from mlprov.server._authz import Principal
    from mlprov.server._errors import PermissionDeniedError

__all__ = ["ServerState", "token_store_for"]

T = TypeVar("T")
log = logging.getLogger("mlprov.server")


def token_store_for(registry: Registry) -> TokenStore:
    """The server's token tables in ``registry``'s own database.

    Raises:
        InputError: the registry's metadata store is not an SQL database.
    """
    from mlprov.errors import InputError

    url = getattr(registry.metadata, "url", None)
    if not isinstance(url, str):
        raise InputError(f"the registry at {registry.address} keeps no SQL database for the "
                         "server's tokens")
    return TokenStore(url)


class ServerState:
    """Everything a request handler needs (one per server process)."""

    def __init__(self, address: str, config: ServerConfig, *, key: str | None = None,
                 oidc_fetch: Any = None) -> None:

        self.address = address
        self.config = config
        self.key = key
        self._local = threading.local()
        self._opened: list[Registry] = []
        self._lock = threading.Lock()
        first = self.registry()
        self.registry_id = first.registry_id
        self.tokens = token_store_for(first)
        self.tokens.create()
        self.authenticator = Authenticator(self.tokens, OidcVerifier(config.oidc,
                                                                     fetch=oidc_fetch))
        self.rates = RateLimiter(config.server.rate_limit, config.server.rate_burst)
        self.read_rates = RateLimiter(config.server.read_rate_limit, config.server.read_burst)
        # Failed authentications per client address: a stricter bucket, so
        # guessing tokens costs time.
        self.auth_failures = RateLimiter(60, 20)
        # Uploads are streamed here (a registration's whole model): [server] tmp_dir
        # puts them on a disk with room, default the system's temporary directory.
        self.tmp = Path(tempfile.mkdtemp(prefix="mlprov-server-",
                                         dir=config.server.tmp_dir or None))
        self._limiter: Any = None
        self.private_paths = _private_paths(first, self.tmp)
        self.refusals = RefusalTrail(config.server.refusal_audit_limit,
                                     config.server.refusal_audit_window)

    @property
    def limiter(self) -> Any:
        """The worker-thread limiter (made inside the event loop that uses it)."""
        if self._limiter is None:
            import anyio

            self._limiter = anyio.CapacityLimiter(self.config.server.workers)
        return self._limiter

    def registry(self) -> Registry:
        """This thread's registry, opened on first use."""
        from mlprov.registry import Registry

        found: Registry | None = getattr(self._local, "registry", None)
        if found is None:
            found = Registry.open(self.address, key=self.key)
            self._local.registry = found
            with self._lock:
                self._opened.append(found)
        return found

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking registry work on a worker thread."""
        import anyio.to_thread

        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def record_refusal(self, principal: Principal, error: PermissionDeniedError,
                       endpoint: str, *, one_by_one: bool, summaries: list[Summary]) -> None:
        """Record a refusal (``one_by_one``) and the summaries due in the audit trail.

        Runs on a worker thread. Strings are cut to the registry's bounds; they
        come from the server's own messages over names already checked.
        """
        registry = self.registry()
        refused = error.refused
        # The trail's target column holds a stage or an alias (120 characters); a long
        # new name of a refused rename stays in the permission's text.
        target = refused.target if refused and refused.target and \
            len(refused.target) <= 120 else None
        if one_by_one:
            registry.record_refusal(
                principal.name, refused.action if refused else "other",
                reason=str(error)[:1000], name=refused.name if refused else None,
                version=refused.version if refused else None,
                target=target,
                permission=refused.permission[:300] if refused else None,
                via=principal.via[:300], endpoint=endpoint[:300])
        self.record_summaries(summaries)

    def record_summaries(self, summaries: list[Summary]) -> None:
        """Record refusal summaries in the audit trail (a worker thread, or at shutdown)."""
        for summary in summaries:
            try:
                self.registry().record_refusal_summary(
                    summary.principal, count=summary.count, first=summary.first,
                    last=summary.last, actions=summary.actions)
            except Exception:  # the count stays in the log; the server carries on
                log.exception("could not record %d refusal(s) of %s in the audit trail",
                              summary.count, summary.principal)

    async def flush_refusals(self) -> None:
        """Record the refusal summaries whose windows are over."""
        summaries = self.refusals.summaries()
        if summaries:
            await self.run(self.record_summaries, summaries)

    def close(self) -> None:
        """Record pending refusal summaries; close every registry and the token store."""
        try:
            self.record_summaries(self.refusals.summaries(everything=True))
        except Exception:  # never block a shutdown on the audit trail
            log.exception("could not record the pending refusal summaries")
        with self._lock:
            opened, self._opened = self._opened, []
        for registry in opened:
            registry.close()
        self.tokens.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _private_paths(registry: Registry, tmp: Path) -> tuple[str, ...]:
    """The server's own directories, kept out of answers (see :func:`redact_paths`).

    The registry's home and its local blob store, the upload directory and the
    system's temporary directory, each as given and resolved; longest first, so
    the most specific one is named.
    """
    found: set[str] = set()
    candidates: list[Path] = [registry.home, tmp, Path(tempfile.gettempdir())]
    root = getattr(registry.blobs, "root", None)
    if isinstance(root, Path):
        candidates.append(root)
    for path in candidates:
        for form in (str(path), str(path.resolve())):
            if (form.startswith("/") and len(form) > 1) or ":\\" in form:
                found.add(form.rstrip("/\\"))
    return tuple(sorted(found, key=len, reverse=True))
