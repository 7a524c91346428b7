"""What every endpoint shares: authentication, rate limits, body limits, errors, JSON.

An :class:`Endpoint` is one route of the API with what the OpenAPI document
says about it. :func:`starlette_endpoint` wraps its handler so that, in order:

1. a request without a valid bearer token is answered 401 (except the few
   ``public`` endpoints: health, readiness);
2. the principal's rate limit is taken (429 with ``Retry-After`` when spent);
   failed authentications are limited per client address too;
3. the handler runs with a :class:`Call` (request, principal, access);
4. an :class:`~mlprov.errors.MlprovError` becomes its one-line JSON error
   answer (:mod:`._http_errors`); a refusal (403) is also logged as one JSON
   line on the ``mlprov.server.audit`` logger and, when a principal was
   authenticated, recorded in the registry's signed audit trail (bounded per
   principal, :mod:`._refusals`) before the answer goes out; anything else is
   a bare 500, logged with its traceback on the server only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlprov.errors import InputError, MlprovError
from mlprov.server._authz import Access, Principal
from mlprov.server._errors import AuthenticationError, PermissionDeniedError
from mlprov.server._http_errors import answer_of, unexpected

if TYPE_CHECKING:
    from pydantic import BaseModel
    from starlette.requests import Request
    from starlette.responses import Response

    from mlprov.server._state import ServerState

__all__ = ["Call", "Endpoint", "json_body", "json_response", "starlette_endpoint"]

log = logging.getLogger("mlprov.server")
audit_log = logging.getLogger("mlprov.server.audit")


@dataclass(frozen=True)
class Call:
    """One authenticated request as a handler sees it."""

    request: Request
    state: ServerState
    principal: Principal
    access: Access

    def param(self, name: str) -> str:
        """A path parameter."""
        value = self.request.path_params[name]
        assert isinstance(value, str)
        return value

    def query(self, name: str) -> str | None:
        """A query parameter given at most once.

        Raises:
            InputError: given more than once.
        """
        values = self.request.query_params.getlist(name)
        if len(values) > 1:
            raise InputError(f"query parameter {name!r} given more than once")
        return values[0] if values else None


Handler = Callable[[Call], Awaitable["Response"]]
PublicHandler = Callable[["Request", "ServerState"], Awaitable["Response"]]


@dataclass(frozen=True)
class Endpoint:
    """A route of the API and what its OpenAPI entry says."""

    method: str
    path: str
    handler: Any
    summary: str
    permission: str = "any authenticated principal"
    public: bool = False
    body: type[BaseModel] | str | None = None
    query: tuple[str, ...] = ()
    responses: dict[str, str] = field(default_factory=dict)
    tag: str = "registry"


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """A JSON answer (compact, ASCII-safe, NaN refused)."""
    from starlette.responses import Response

    body = json.dumps(document, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json",
                    headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (413 beyond, checked as it arrives).

    Raises:
        BodyTooLarge: the body (or its declared length) exceeds ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class BodyTooLarge(InputError):
    """A request body over the server's limit (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than this server accepts ({limit} "
                         "bytes)", hint="the server's admin sets the limits in server.toml "
                                        "[server] (max_body, max_upload, max_review)")
        self.limit = limit


async def json_body(call: Call, model: type[Any]) -> Any:
    """The request's JSON body, checked against ``model`` (a pydantic model).

    Raises:
        InputError: not JSON, nested too deep, duplicate keys, or not the model.
    """
    from pydantic import ValidationError

    from mlprov.canonical import loads_strict

    if call.request.headers.get("content-type", "").split(";")[0].strip() \
            != "application/json":
        raise InputError("the request body must be application/json")
    data = await read_body(call.request, call.state.config.max_body)
    document = loads_strict(data, what="the request body")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InputError(f"the request body is invalid: {where}: {first['msg']}",
                         hint="see /api/v1/openapi.json for the request's schema") from exc


def _client_address(request: Request) -> str:
    client = request.client
    return client.host if client is not None else "unknown"


async def _audit_refusal(state: ServerState, principal: Principal,
                         error: PermissionDeniedError, endpoint: Endpoint) -> str:
    """Record a refusal in the audit trail if its principal's bound allows; say what was done."""
    action = error.refused.action if error.refused else "other"
    one_by_one = state.refusals.admit(principal.name, action)
    summaries = state.refusals.summaries()
    if not one_by_one and not summaries:
        return "counted"
    try:
        await state.run(lambda: state.record_refusal(
            principal, error, f"{endpoint.method} {endpoint.path}", one_by_one=one_by_one,
            summaries=summaries))
    except Exception:  # the refusal stands; the log line below still records it
        log.exception("could not record a refusal of %s in the audit trail", principal.name)
        return "failed"
    return "recorded" if one_by_one else "counted"


def _error_answer(exc: MlprovError, request: Request, principal: Principal | None,
                  audited: str | None = None, private: tuple[str, ...] = ()) -> Response:
    status, document = answer_of(exc, private)
    headers: dict[str, str] = {}
    if isinstance(exc, BodyTooLarge):
        status = 413
        document["error"]["status"] = 413
    if status == 401:
        description = str(exc).replace('"', "'")[:200]
        headers["WWW-Authenticate"] = (f'Bearer realm="mlprov", error="invalid_token", '
                                       f'error_description="{description}"')
    if status == 503:
        headers["Retry-After"] = "1"
    if status == 403:
        audit_log.warning(json.dumps({
            "event": "refused", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "principal": principal.name if principal else None,
            "via": principal.via if principal else None,
            "method": request.method, "path": request.url.path,
            "client": _client_address(request), "reason": str(exc),
            "auditTrail": audited or "not recorded (no principal)"}))
    return json_response(document, status, headers)


def starlette_endpoint(state: ServerState, endpoint: Endpoint) -> Callable[..., Any]:
    """The Starlette endpoint for ``endpoint`` (see the module docstring)."""
    from starlette.requests import ClientDisconnect

    async def run(request: Request) -> Response:
        principal: Principal | None = None
        try:
            if endpoint.public:
                response: Response = await endpoint.handler(request, state)
                return response
            address = _client_address(request)
            try:
                principal = await state.run(state.authenticator.authenticate,
                                            request.headers.get("authorization"))
            except (AuthenticationError, PermissionDeniedError):
                wait = state.auth_failures.take(address)
                if wait:
                    return _too_many(wait)
                raise
            rates = state.read_rates if endpoint.tag == "store" else state.rates
            wait = rates.take(f"principal:{principal.name}")
            if wait:
                return _too_many(wait)
            access = Access(principal, state.config)
            response = await endpoint.handler(Call(request, state, principal, access))
            return response
        except MlprovError as exc:
            audited = None
            if principal is not None and isinstance(exc, PermissionDeniedError):
                audited = await _audit_refusal(state, principal, exc, endpoint)
            return _error_answer(exc, request, principal, audited, state.private_paths)
        except ClientDisconnect:
            from starlette.responses import Response

            return Response(status_code=400)
        except Exception as exc:  # a bug: logged here, never shown to the client
            log.exception("internal error in %s %s", request.method, request.url.path)
            return json_response(unexpected(exc), 500)

    run.__name__ = getattr(endpoint.handler, "__name__", "endpoint")
    return run


def _too_many(wait: float) -> Response:
    return json_response({"error": {"status": 429, "type": "RateLimited",
                                    "message": "too many requests",
                                    "hint": f"retry after {wait:.1f} s", "exitCode": 3}},
                         429, {"Retry-After": str(max(1, int(wait + 0.999)))})
