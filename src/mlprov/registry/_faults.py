"""Fault injection for crash tests: kill the process at a named point.

``MLPROV_FAULT=register.blobs-stored`` (a point name) makes the process SIGKILL
itself when it reaches that point, so tests can show that a crash there leaves
no half-written state. Unset (always, outside tests), a point costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_ENV", "point"]

FAULT_ENV = "MLPROV_FAULT"


def point(name: str) -> None:
    """Die here (SIGKILL, no clean-up) when ``$MLPROV_FAULT`` names this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
