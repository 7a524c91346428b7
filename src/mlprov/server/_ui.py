"""The read-only web UI (served at ``/``); see docs/server.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlprov.server._endpoint import Endpoint

__all__ = ["ui_endpoints"]


def ui_endpoints() -> list[Endpoint]:
    """The UI's routes (none yet)."""
    return []
