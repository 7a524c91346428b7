"""An HTTP proxy in front of a test server that may rewrite any answer, and logs every request.

The malicious-server tests turn the real server into a lying one with it; the
round-trip tests count the requests a client makes through it.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

Tamper = Callable[[str, str, int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]

class Proxy:
    """An HTTP proxy to the server that may rewrite any answer (or answer itself).

    ``log`` lists every request it received, as ``(method, path)``.
    """

    def __init__(self, upstream: str) -> None:
        self.tamper: Tamper | None = None
        self.log: list[tuple[str, str]] = []
        self.answer: Callable[[str, str, bytes], tuple[int, dict[str, str], bytes] | None] \
            | None = None
        parts = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.log.append((self.command, unquote(self.path)))
                if proxy.answer is not None:
                    canned = proxy.answer(self.command, unquote(self.path), body)
                    if canned is not None:
                        self._send(*canned)
                        return
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
                out = {k: v for k, v in response.getheaders()
                       if k.lower() not in ("connection", "transfer-encoding")
                       and (k.lower() != "content-length" or self.command == "HEAD")}
                conn.close()
                if proxy.tamper is not None:
                    status, out, data = proxy.tamper(self.command, unquote(self.path), status,
                                                     out, data)
                self._send(status, out, data)

            def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
