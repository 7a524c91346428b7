"""The read-only web UI at ``/``: models, versions, aliases, the audit log.

Three static files and nothing else: the page (``/``), its script and its
style sheet (``/ui/app.js``, ``/ui/app.css``), no external assets, no inline
script or style, so the Content-Security-Policy allows only this origin's own
files (``default-src 'none'``). The files hold no data and need no token; every
piece of data comes from the API with the same bearer token as any client
(typed into the page, kept in the tab's ``sessionStorage``, never in a cookie,
so there is nothing for another site to ride on). The script builds the page
with ``textContent`` only: a hostile reason or name in the audit log is shown
as text, never run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlprov.server._endpoint import Endpoint

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from mlprov.server._state import ServerState

__all__ = ["UI_CSP", "ui_endpoints"]

UI_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
          "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlprov registry</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header><h1>mlprov registry</h1><nav id="nav"></nav></header>
<main id="main"><p>Loading...</p></main>
<footer>Read-only. Every answer here is the server's word: verify with
<code>mlprov pull</code>, <code>mlprov audit verify</code>.</footer>
</body>
</html>
"""

_CSS = """body { font-family: system-ui, sans-serif; margin: 0; color: #1b1f24; }
header { background: #24292f; color: #fff; padding: .6rem 1rem; display: flex;
         align-items: center; gap: 2rem; }
header h1 { font-size: 1.1rem; margin: 0; }
nav a { color: #fff; margin-right: 1rem; }
main { padding: 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left;
         vertical-align: top; }
code, .digest { font-family: ui-monospace, monospace; font-size: .85rem; }
.error { color: #cf222e; }
footer { color: #57606a; font-size: .8rem; padding: 1rem; }
form input { width: 30rem; }
"""

_JS = r"""// The mlprov registry UI: read-only; data from /api/v1 with the user's bearer token.
"use strict";
(function () {
  const KEY = "mlprov-token";

  function token() { return sessionStorage.getItem(KEY); }

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  function table(headers, rows) {
    const t = el("table");
    const head = el("tr");
    headers.forEach((h) => head.appendChild(el("th", h)));
    t.appendChild(head);
    rows.forEach((cells) => {
      const tr = el("tr");
      cells.forEach((cell) => {
        const td = el("td");
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = String(cell ?? "");
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    return t;
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token() },
                                         credentials: "omit", cache: "no-store" });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : "HTTP " + response.status;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function main() { return document.getElementById("main"); }

  function show(...nodes) {
    const m = main();
    m.replaceChildren(...nodes);
  }

  function login(message) {
    const form = el("form", null, { id: "login" });
    form.appendChild(el("p", message || "Paste an API token (mlprov server token create) " +
                                        "or an OIDC token:"));
    const input = el("input", null, { type: "password", id: "token", autocomplete: "off" });
    form.appendChild(input);
    form.appendChild(el("button", "Sign in", { type: "submit" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      route();
    });
    show(form);
  }

  function link(text, hash) { return el("a", text, { href: hash }); }

  async function models() {
    const data = await api("/api/v1/models");
    const rows = data.models.map((m) => [
      link(m.name, "#/models/" + encodeURIComponent(m.name)), "v" + m.latestVersion,
      Object.entries(m.aliases).map(([a, v]) => "@" + a + "=v" + v).join(" ")]);
    show(el("h2", "Models"), table(["name", "latest", "aliases"], rows));
  }

  async function model(name) {
    const data = await api("/api/v1/models/" + encodeURIComponent(name));
    const aliases = Object.entries(data.aliases).map(([a, info]) =>
      ["@" + a, "v" + info.version, info.updatedAt]);
    const versions = data.versions.map((v) => [
      "v" + v.version, v.stage, el("span", v.rootDigest, { class: "digest" }),
      el("span", v.identity, { class: "digest" }), v.reviews,
      v.reproducible ? "" : "non-reproducible", v.createdAt]);
    show(el("h2", data.name), el("h3", "Aliases"), table(["alias", "version", "since"], aliases),
         el("h3", "Versions"),
         table(["version", "stage", "root digest", "identity", "reviews", "", "created"],
               versions));
  }

  async function audit() {
    const data = await api("/api/v1/audit?limit=200");
    const rows = data.entries.slice().reverse().map((e) => [
      e.seq, e.time, e.kind, e.accepted ? "accepted" : "denied", e.actor,
      e.name ? e.name + (e.version ? " v" + e.version : "") : "", e.target || "",
      e.reason || ""]);
    show(el("h2", "Audit log (newest first)"),
         table(["#", "time", "kind", "", "actor", "model", "target", "reason"], rows));
  }

  async function whoami() {
    const me = await api("/api/v1/whoami");
    const nav = document.getElementById("nav");
    nav.replaceChildren(link("Models", "#/"), link("Audit log", "#/audit"),
                        el("span", "signed in as " + me.name, { id: "who" }),
                        el("a", "sign out", { href: "#/signout" }));
  }

  async function route() {
    const hash = location.hash;
    if (hash.startsWith("#token=")) {  // for scripts: the fragment never reaches the server
      const params = new URLSearchParams(hash.slice(1));
      sessionStorage.setItem(KEY, params.get("token") || "");
      const next = params.get("next") || "/";
      history.replaceState(null, "", location.pathname + "#" + (next.startsWith("/") ? next : "/"));
    }
    if (location.hash === "#/signout") {
      sessionStorage.removeItem(KEY);
      history.replaceState(null, "", location.pathname + "#/");
    }
    if (!token()) { login(); return; }
    try {
      await whoami();
      const path = location.hash.replace(/^#/, "") || "/";
      if (path.startsWith("/models/")) await model(decodeURIComponent(path.slice(8)));
      else if (path === "/audit") await audit();
      else await models();
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem(KEY);
        login("Not signed in: " + error.message);
        return;
      }
      show(el("p", error.message, { class: "error", id: "error" }));
    }
  }

  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", route);
})();
"""


def _static(body: str, media_type: str):  # type: ignore[no-untyped-def]
    async def serve(request: Request, state: ServerState) -> Response:
        from starlette.responses import Response

        del request
        if not state.config.server.ui:
            from mlprov.server._endpoint import json_response

            return json_response({"error": {"status": 404, "type": "NotFound",
                                            "message": "the web UI is off (server.ui)",
                                            "hint": "use the API or the CLI",
                                            "exitCode": 3}}, 404)
        return Response(body, media_type=media_type,
                        headers={"Content-Security-Policy": UI_CSP})

    serve.__name__ = f"ui_{media_type.split('/')[1].split(';')[0]}"
    return serve


def ui_endpoints() -> list[Endpoint]:
    """The UI's three static files (no token: they hold no data)."""
    return [
        Endpoint("GET", "/", _static(_PAGE, "text/html; charset=utf-8"), "The web UI",
                 "none (data needs a token)", public=True, tag="ui"),
        Endpoint("GET", "/ui/app.js", _static(_JS, "text/javascript; charset=utf-8"),
                 "The web UI's script", "none", public=True, tag="ui"),
        Endpoint("GET", "/ui/app.css", _static(_CSS, "text/css; charset=utf-8"),
                 "The web UI's style sheet", "none", public=True, tag="ui"),
    ]
