"""The read-only web UI at ``/``: models, versions, lineage, aliases, deployments, audit log.

Three static files and nothing else: the page (``/``), its script and its
style sheet (``/ui/app.js``, ``/ui/app.css``; kept in ``_static/``), no external
assets, no inline script or style, so the Content-Security-Policy allows only
this origin's own files (``default-src 'none'``). The files hold no data and
need no token; every piece of data comes from the API with the same bearer
token as any client (typed into the page, kept in the tab's ``sessionStorage``,
never in a cookie, so there is nothing for another site to ride on). The script
builds the page with ``textContent``, ``createElement`` and ``createElementNS``
only (the lineage graph is SVG made that way; a model card's Markdown is parsed
into elements, its links kept only when they are http(s)): a hostile name,
reason or card is shown as text, never run.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from mlprov.server._endpoint import Endpoint

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from mlprov.server._state import ServerState

__all__ = ["UI_CSP", "ui_endpoints"]

UI_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
          "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@cache
def _file(name: str) -> bytes:
    """One of the UI's files, shipped as package data (read once)."""
    from importlib.resources import files

    return files("mlprov.server").joinpath("_static", name).read_bytes()


def _static(name: str, media_type: str):  # type: ignore[no-untyped-def]
    async def serve(request: Request, state: ServerState) -> Response:
        from starlette.responses import Response

        del request
        if not state.config.server.ui:
            from mlprov.server._endpoint import json_response

            return json_response({"error": {"status": 404, "type": "NotFound",
                                            "message": "the web UI is off (server.ui)",
                                            "hint": "use the API or the CLI",
                                            "exitCode": 3}}, 404)
        return Response(_file(name), media_type=media_type,
                        headers={"Content-Security-Policy": UI_CSP})

    serve.__name__ = f"ui_{media_type.split('/')[1].split(';')[0]}"
    return serve


def ui_endpoints() -> list[Endpoint]:
    """The UI's three static files (no token: they hold no data)."""
    return [
        Endpoint("GET", "/", _static("index.html", "text/html; charset=utf-8"), "The web UI",
                 "none (data needs a token)", public=True, tag="ui"),
        Endpoint("GET", "/ui/app.js", _static("app.js", "text/javascript; charset=utf-8"),
                 "The web UI's script", "none", public=True, tag="ui"),
        Endpoint("GET", "/ui/app.css", _static("app.css", "text/css; charset=utf-8"),
                 "The web UI's style sheet", "none", public=True, tag="ui"),
    ]
