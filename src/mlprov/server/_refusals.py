"""Refusals in the registry's audit trail, bounded per principal so none can flood it.

Every refusal (HTTP 403) of an authenticated principal is logged as a JSON
line on the ``mlprov.server.audit`` logger. The first ``limit`` refusals of a
principal in a window of ``window`` seconds are also recorded one by one in
the registry's signed, hash-chained audit log
(:meth:`~mlprov.registry.Registry.record_refusal`); the ones after are only
counted, and when the window is over the count is recorded as one summary
entry (:meth:`~mlprov.registry.Registry.record_refusal_summary`): how many,
first and last time, how many per action. So a reader token that hammers a
write endpoint (itself capped by the request rate limit) adds at most
``limit + 1`` entries per window to the log, and the log still says it tried.

Windows are per server process (replicas each keep their own); a summary
still pending when the process dies uncleanly is lost, but every refusal it
counted was logged. Windows are closed by a timer task, by the next refusal
of anyone, and at shutdown.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RefusalTrail", "Summary"]


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Window:
    start: float
    recorded: int = 0
    suppressed: int = 0
    first: str | None = None
    last: str | None = None
    actions: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Summary:
    """Refusals of one principal that were counted, not recorded one by one."""

    principal: str
    count: int
    first: str
    last: str
    actions: dict[str, int]


class RefusalTrail:
    """Which refusals to record one by one, and the counts of the others (thread-safe)."""

    def __init__(self, limit: int, window: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], str] = _utc_now) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._wall = wall
        self._windows: dict[str, _Window] = {}
        self._pending: list[Summary] = []
        self._lock = threading.Lock()

    def admit(self, principal: str, action: str) -> bool:
        """Whether this refusal is recorded one by one (else it is counted)."""
        now = self._clock()
        with self._lock:
            self._close(now, everything=False)
            window = self._windows.setdefault(principal, _Window(start=now))
            if window.recorded < self.limit:
                window.recorded += 1
                return True
            stamp = self._wall()
            window.suppressed += 1
            window.first = window.first or stamp
            window.last = stamp
            window.actions[action] += 1
            return False

    def _close(self, now: float, *, everything: bool) -> None:
        for principal, window in list(self._windows.items()):
            if not everything and now - window.start < self.window:
                continue
            del self._windows[principal]
            if window.suppressed and window.first and window.last:
                self._pending.append(Summary(principal=principal, count=window.suppressed,
                                             first=window.first, last=window.last,
                                             actions=dict(window.actions)))

    def summaries(self, *, everything: bool = False) -> list[Summary]:
        """Summaries of the windows that are over (``everything``: of all, at shutdown).

        Each is handed out once; its principal starts a fresh window.
        """
        with self._lock:
            self._close(self._clock(), everything=everything)
            out, self._pending = self._pending, []
        return out
