"""Slow clients: a connection must finish a request's headers within a deadline.

uvicorn closes a keep-alive connection left idle after a response, but not one
that never completes a request line and headers: a fresh connection that sends
nothing, or headers a byte at a time. Such connections would pile up until
uvicorn's connection limit answers every other client 503. This protocol,
uvicorn's own h11 one, closes a connection whose request headers are not
complete ``timeout`` seconds after it opened, or after it started sending the
next request. Bodies have their own bounds (``max_body``, ``upload_idle_timeout``).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["header_deadline_protocol"]


def header_deadline_protocol(timeout: float) -> type[asyncio.Protocol]:
    """The h11 protocol of uvicorn, with a deadline for each request's headers."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or bool(self.cycle.response_complete)

        def _arm(self) -> None:
            if not self._waiting_for_headers():
                self._disarm()  # a request is being served: its body has its own bounds
            elif self._deadline is None:
                self._deadline = self.loop.call_later(timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
