"""The API's OpenAPI 3.1 document, made from the endpoint table (never out of step).

Request bodies that are JSON take their schema from the pydantic model the
server validates them with; every path parameter, query parameter, the bearer
authentication and the error document are described once here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlprov.server._endpoint import Endpoint

__all__ = ["document"]

_PARAM = re.compile(r"\{([a-z_]+)\}")
_ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["status", "type", "message", "hint", "exitCode"],
        "properties": {"status": {"type": "integer"}, "type": {"type": "string"},
                       "message": {"type": "string"}, "hint": {"type": "string"},
                       "exitCode": {"type": "integer"}}},
        "result": {"type": "object", "description": "a denied change's result"}},
}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in _PARAM.findall(endpoint.path)]
    parameters += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
                   for q in endpoint.query]
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {"200": {"description": "OK"}}
    for code, text in endpoint.responses.items():
        responses[code] = {"description": text}
    if not endpoint.public:
        responses["401"] = {"description": "no valid bearer token", **error}
        responses["403"] = {"description": f"needs: {endpoint.permission}", **error}
        responses["429"] = {"description": "rate limited (Retry-After)", **error}
    responses.setdefault("400", {"description": "bad request", **error})
    operation: dict[str, Any] = {
        "summary": endpoint.summary, "tags": [endpoint.tag],
        "operationId": f"{endpoint.method.lower()}_{endpoint.handler.__name__}",
        "description": f"Permission: {endpoint.permission}.",
        "parameters": parameters, "responses": responses,
    }
    if endpoint.public:
        operation["security"] = []
    if isinstance(endpoint.body, str):
        operation["requestBody"] = {"required": True, "content": {
            endpoint.body: {"schema": {"type": "string", "format": "binary"}}}}
    elif endpoint.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{endpoint.body.__name__}"}}}}
    return operation


def document(endpoints: list[Endpoint], *, version: str, api_version: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``endpoints``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
        if endpoint.body is not None and not isinstance(endpoint.body, str):
            schemas[endpoint.body.__name__] = endpoint.body.model_json_schema(
                ref_template="#/components/schemas/{model}")
    return {
        "openapi": "3.1.0",
        "info": {"title": "mlprov registry server", "version": f"{api_version}",
                 "description": f"mlprov {version}. Clients verify every decision, head and "
                                "blob with the registry's public key (docs/server.md)."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "an mlprov API token (mlpt_...) or an OIDC token "
                                      "(JWT) of an issuer server.toml accepts"}}},
        "security": [{"bearer": []}],
    }
