"""The ASGI application: routes, security headers, the OpenAPI document, start and stop.

``/api/v1/health`` (the process answers) and ``/api/v1/ready`` (the registry
opens and its signed head verifies) need no token; every other route does
(:mod:`._endpoint`). Every response carries security headers (no sniffing, no
framing, no referrer, no caching of API answers, a strict Content-Security-Policy;
HSTS over TLS). Unknown paths and methods are answered 404/405 as JSON.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mlprov import __version__
from mlprov.server._admin_routes import admin_endpoints
from mlprov.server._api_routes import API_VERSION, api_endpoints
from mlprov.server._endpoint import Endpoint, json_response, starlette_endpoint
from mlprov.server._store_routes import store_endpoints

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from mlprov.server._state import ServerState

__all__ = ["all_endpoints", "create_app", "openapi_document"]

log = logging.getLogger("mlprov.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class SecurityHeaders:
    """Adds security headers to every HTTP response (pure ASGI: streaming untouched)."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        ui = not path.startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}

                def add(name: str, value: str) -> None:
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))

                add("x-content-type-options", "nosniff")
                add("x-frame-options", "DENY")
                add("referrer-policy", "no-referrer")
                add("cross-origin-opener-policy", "same-origin")
                add("cross-origin-resource-policy", "same-origin")
                add("permissions-policy", "camera=(), microphone=(), geolocation=()")
                add("cache-control", "no-store")
                if not ui:
                    add("content-security-policy", _API_CSP)
                if self.tls:
                    add("strict-transport-security", "max-age=31536000")
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def health(request: Request, state: ServerState) -> Response:
    """The process answers (no token)."""
    del request, state
    return json_response({"status": "ok"})


async def ready(request: Request, state: ServerState) -> Response:
    """The registry opens and its signed head verifies (no token; no details on failure)."""
    del request

    def check() -> int:
        return state.registry().head().seq

    try:
        seq = await state.run(check)
    except Exception:  # any failure means not ready; the reason stays in the server log
        log.exception("readiness check failed")
        return json_response({"status": "unavailable"}, 503, {"Retry-After": "5"})
    return json_response({"status": "ready", "auditSeq": seq})


def all_endpoints(extra: list[Endpoint] | None = None) -> list[Endpoint]:
    """Every endpoint of the API (``extra``: more routes, e.g. of another feature)."""
    from mlprov.server._ui import ui_endpoints

    base = [
        Endpoint("GET", "/api/v1/health", health, "The process answers", "none",
                 public=True, tag="server"),
        Endpoint("GET", "/api/v1/ready", ready, "The registry opens and its head verifies",
                 "none", public=True, tag="server"),
        Endpoint("GET", "/api/v1/openapi.json", openapi, "This API's OpenAPI 3.1 document",
                 tag="server"),
    ]
    return (base + api_endpoints() + admin_endpoints() + store_endpoints() + (extra or [])
            + ui_endpoints())


async def openapi(call: Any) -> Response:
    """The OpenAPI document."""
    del call
    return json_response(openapi_document())


def openapi_document(extra: list[Endpoint] | None = None) -> dict[str, Any]:
    """The API's OpenAPI 3.1 document, made from the endpoint table."""
    from mlprov.server._openapi import document

    return document([e for e in all_endpoints(extra) if e.path.startswith("/api/")],
                    version=__version__, api_version=API_VERSION)


def create_app(state: ServerState, *, tls: bool = False,
               extra: list[Endpoint] | None = None) -> Starlette:
    """The ASGI application over ``state`` (closed when the app shuts down).

    ``extra``: more endpoints (hooks for features that add routes).
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Route

    routes = []
    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in all_endpoints(extra):
        by_path.setdefault(endpoint.path, []).append(endpoint)
    for path, endpoints in by_path.items():
        handlers = {e.method: starlette_endpoint(state, e) for e in endpoints}
        routes.append(Route(path, _dispatch(handlers), methods=sorted(handlers)))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = "no such endpoint" if status == 404 else "method not allowed"
        return json_response({"error": {"status": status, "type": "NotFound",
                                        "message": f"{message}: {request.method} "
                                                   f"{request.url.path[:200]}",
                                        "hint": "see /api/v1/openapi.json", "exitCode": 3}},
                             status)

    async def crashed(request: Request, exc: Exception) -> Response:
        from mlprov.server._http_errors import unexpected

        log.exception("internal error in %s %s", request.method, request.url.path,
                      exc_info=exc)
        return json_response(unexpected(exc), 500)

    async def close_refusal_windows() -> None:
        """Record refusal summaries when their windows are over (not only at the next one)."""
        import anyio

        period = min(state.config.server.refusal_audit_window, 60.0)
        while True:
            await anyio.sleep(period)
            try:
                await state.flush_refusals()
            except Exception:  # logged; the next round tries again
                log.exception("could not record refusal summaries")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        import asyncio

        del app
        timer = asyncio.get_running_loop().create_task(close_refusal_windows())
        try:
            yield
        finally:
            timer.cancel()
            state.close()

    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, tls=tls)],
                     exception_handlers={HTTPException: not_found, Exception: crashed},
                     lifespan=lifespan)


def _dispatch(handlers: dict[str, Callable[[Request], Awaitable[Response]]]
              ) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handlers[request.method](request)

    return endpoint
