"""Rate limits: a token bucket per principal (and per client address before authentication).

Each key gets ``burst`` requests at once and ``rate`` per minute after that; a
request over the limit is answered 429 with ``Retry-After``. Buckets live in
the process (a team running several replicas gets the limit per replica) and
idle ones are dropped, so a flood of made-up keys cannot grow memory without
bound.
"""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]

_MAX_KEYS = 100_000


class RateLimiter:
    """Token buckets by key: ``rate`` per minute, ``burst`` at once."""

    def __init__(self, rate: int, burst: int, *, clock: object = None) -> None:
        self.per_second = rate / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock if callable(clock) else time.monotonic

    def take(self, key: str) -> float:
        """Take one request for ``key``: 0 if allowed, else seconds until one is."""
        now: float = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.per_second)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self.per_second

    def _store(self, key: str, tokens: float, now: float) -> None:
        if len(self._buckets) >= _MAX_KEYS and key not in self._buckets:
            # Drop every bucket that has refilled: it holds no information.
            full = self.burst / self.per_second
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
            if len(self._buckets) >= _MAX_KEYS:
                self._buckets.clear()
        self._buckets[key] = (tokens, now)
