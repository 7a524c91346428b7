"""How long a registry transaction waits for the write lock: ``$MLPROV_BUSY_TIMEOUT``.

Shared by both metadata stores (:mod:`._sql`, :mod:`._sqlite`) without importing either.
"""

from __future__ import annotations

import os

__all__ = ["BUSY_TIMEOUT_ENV", "busy_timeout"]

BUSY_TIMEOUT_ENV = "MLPROV_BUSY_TIMEOUT"
_DEFAULT_BUSY_TIMEOUT = 60.0


def busy_timeout() -> float:
    """``$MLPROV_BUSY_TIMEOUT`` in seconds (default 60; an unreadable value is the default)."""
    value = os.environ.get(BUSY_TIMEOUT_ENV)
    try:
        return float(value) if value else _DEFAULT_BUSY_TIMEOUT
    except ValueError:
        return _DEFAULT_BUSY_TIMEOUT
