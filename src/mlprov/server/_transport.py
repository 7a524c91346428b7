"""The client's HTTP: one kept-alive connection per thread, bearer token, bounded retries.

Standard library only (``http.client``, ``ssl``): a machine that only pulls
models needs nothing the ``server`` extra brings. TLS is verified against the
system's CAs (``SSL_CERT_FILE``, or ``MLPROV_CA_BUNDLE`` for a private CA).

Retries: a request that cannot have changed anything (GET, HEAD; any request
the server refused with 429 or 503, or whose connection was refused before
it was sent) is retried up to four times with exponential backoff and
jitter, honouring ``Retry-After`` (at most 10 s); a change whose answer was
lost mid-way is never repeated blindly (its outcome is unknown: the error
says to check the audit log).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urlencode

from mlprov import __version__
from mlprov.canonical import loads_strict
from mlprov.errors import MlprovError
from mlprov.server._errors import (
    AuthenticationError,
    MalformedResponseError,
    ServerError,
    ServerUnavailableError,
)
from mlprov.server._http_errors import error_from_answer
from mlprov.server._url import ServerUrl

__all__ = ["CA_ENV", "TOKEN_ENV", "Answer", "Transport", "quote_segment"]

#: The bearer token (API token or OIDC token) clients send.
TOKEN_ENV = "MLPROV_TOKEN"  # noqa: S105 - a variable name, not a secret
#: A CA bundle for a server whose certificate a private CA issued.
CA_ENV = "MLPROV_CA_BUNDLE"
_MAX_JSON = 256 * 1024 * 1024
_ATTEMPTS = 4
_MAX_RETRY_AFTER = 10.0
_CHUNK = 1024 * 1024


def quote_segment(value: str) -> str:
    """``value`` as one path segment (``/`` and everything special percent-encoded)."""
    return quote(value, safe="")


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer."""

    status: int
    headers: dict[str, str]
    data: bytes


class _Refused(Exception):
    """The connection was refused before anything was sent: safe to retry any request."""


class Transport:
    """HTTP to one registry server, with its bearer token."""

    def __init__(self, url: ServerUrl, token: str | None, *, timeout: float = 60.0,
                 sleep: Any = time.sleep) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self._sleep = sleep
        self._local = threading.local()
        self._context: ssl.SSLContext | None = None
        if url.tls:
            cafile = os.environ.get(CA_ENV) or None
            self._context = ssl.create_default_context(cafile=cafile)

    # ------------------------------------------------------------------ connections

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.url.tls:
                conn = http.client.HTTPSConnection(self.url.host, self.url.port,
                                                   timeout=self.timeout,
                                                   context=self._context)
            else:
                conn = http.client.HTTPConnection(self.url.host, self.url.port,
                                                  timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()

    # ------------------------------------------------------------------ requests

    def _headers(self, extra: dict[str, str] | None, *, auth: bool) -> dict[str, str]:
        headers = {"User-Agent": f"mlprov/{__version__}", "Accept": "application/json"}
        if auth:
            if not self.token:
                raise AuthenticationError(
                    f"no token for the registry server {self.url}",
                    hint=f"set {TOKEN_ENV} to an API token (`mlprov server token create`, "
                         "from the server's admin) or to the CI job's OIDC token")
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def target(self, path: str, query: dict[str, Any] | None = None) -> str:
        """The request target for an API path and query."""
        params = {k: ("true" if v is True else "false" if v is False else str(v))
                  for k, v in (query or {}).items() if v is not None}
        return self.url.path(path) + (f"?{urlencode(params)}" if params else "")

    def _send(self, method: str, target: str, headers: dict[str, str], body: Any,
              chunked: bool) -> http.client.HTTPResponse:
        conn = self._connection()
        try:
            if conn.sock is None:
                conn.connect()
        except ConnectionRefusedError as exc:
            self._drop()
            raise _Refused(str(exc)) from exc
        except ssl.SSLCertVerificationError as exc:
            self._drop()
            raise ServerError(f"the TLS certificate of {self.url} does not verify: "
                              f"{exc.verify_message}",
                              hint=f"check the URL; for a private CA set {CA_ENV}") from exc
        except OSError as exc:
            self._drop()
            raise _Refused(str(exc)) from exc
        try:
            conn.request(method, target, body=body, headers=headers, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            # The server answered (and closed) before reading the whole body, e.g. a
            # 401, 403 or 413 for an upload: its answer is still there to read.
            return conn.getresponse()
        return conn.getresponse()

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                body: bytes | Iterable[bytes] | IO[bytes] | None = None,
                headers: dict[str, str] | None = None, auth: bool = True,
                stream_to: IO[bytes] | None = None, max_size: int = _MAX_JSON,
                retry: bool | None = None) -> Answer:
        """Send one request; return the complete answer (any status).

        ``stream_to``: write a 2xx answer's body there instead of keeping it.
        ``retry``: retry after a lost connection (default: GET and HEAD only).

        Raises:
            ServerUnavailableError: unreachable, or 5xx/429 after the retries.
            ServerError: TLS failure, or an answer lost mid-way for a change.
        """
        target = self.target(path, query)
        all_headers = self._headers(headers, auth=auth)
        idempotent = method in ("GET", "HEAD") if retry is None else retry
        chunked = body is not None and not isinstance(body, bytes)
        replayable = body is None or isinstance(body, bytes)
        last: str = ""
        for attempt in range(_ATTEMPTS):
            try:
                response = self._send(method, target, all_headers, body, chunked)
                answer = self._read(response, stream_to, max_size)
            except _Refused as exc:
                last = f"cannot connect to {self.url}: {exc}"
                if not replayable:
                    break
                self._backoff(attempt, None)
                continue
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                last = f"{method} {path}: the connection to {self.url} failed: " \
                       f"{type(exc).__name__}: {exc}"
                if idempotent and replayable and stream_to is None:
                    self._backoff(attempt, None)
                    continue
                raise ServerError(last, hint="the outcome of a change is unknown: check "
                                             "`mlprov audit log` before trying again") from exc
            if answer.status in (429, 502, 503, 504) and replayable and stream_to is None \
                    and (idempotent or answer.status in (429, 503)) \
                    and attempt + 1 < _ATTEMPTS:
                self._backoff(attempt, answer.headers.get("retry-after"))
                last = f"HTTP {answer.status}"
                continue
            return answer
        raise ServerUnavailableError(f"{method} {path}: {last} (after {_ATTEMPTS} attempts)")

    def _backoff(self, attempt: int, retry_after: str | None) -> None:
        delay = 0.25 * (2 ** attempt) * (1 + random.random())  # noqa: S311 - jitter
        if retry_after is not None and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER))
        self._sleep(delay)

    def _read(self, response: http.client.HTTPResponse, stream_to: IO[bytes] | None,
              max_size: int) -> Answer:
        headers = {k.lower(): v for k, v in response.getheaders()}
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_size:
            self._drop()
            raise MalformedResponseError(f"the server's answer is larger than {max_size} bytes")
        if stream_to is not None and 200 <= response.status < 300:
            size = 0
            for chunk in _chunks(response):
                size += len(chunk)
                if size > max_size:
                    self._drop()
                    raise MalformedResponseError("the server sent more bytes than announced")
                stream_to.write(chunk)
            if declared is not None and declared.isdigit() and size != int(declared):
                self._drop()
                raise ServerError("the server's answer was cut short")
            return Answer(response.status, headers, b"")
        data = response.read(max_size + 1)
        if len(data) > max_size:
            self._drop()
            raise MalformedResponseError(f"the server's answer is larger than {max_size} bytes")
        if response.will_close:
            self._drop()
        return Answer(response.status, headers, data)

    # ------------------------------------------------------------------ JSON

    def json(self, method: str, path: str, *, query: dict[str, Any] | None = None,
             document: Any = None, body: bytes | Iterable[bytes] | IO[bytes] | None = None,
             headers: dict[str, str] | None = None, auth: bool = True,
             allow: tuple[int, ...] = (), retry: bool | None = None) -> tuple[int, Any]:
        """Send a request and parse the JSON answer; an error answer raises its error.

        ``allow``: error statuses returned (with their document) instead of raised.
        ``retry``: as for :meth:`request` (a POST that only reads may be retried).

        Raises:
            MlprovError: the error the server's answer stands for.
        """
        if document is not None:
            body = json.dumps(document).encode("utf-8")
            headers = {**(headers or {}), "Content-Type": "application/json"}
        answer = self.request(method, path, query=query, body=body, headers=headers,
                              auth=auth, retry=retry)
        parsed = self.parse(answer, what=f"{method} {path}")
        if answer.status >= 400 and answer.status not in allow:
            raise error_from_answer(answer.status, parsed, what=f"{method} {path}")
        return answer.status, parsed

    @staticmethod
    def parse(answer: Answer, *, what: str) -> Any:
        """The JSON document of an answer (None for an empty body)."""
        if not answer.data:
            return None
        if not answer.headers.get("content-type", "").startswith("application/json"):
            if answer.status >= 400:
                return None
            raise MalformedResponseError(f"{what}: the server's answer is not JSON")
        try:
            return loads_strict(answer.data, what=f"the server's answer to {what}")
        except MlprovError as exc:
            raise MalformedResponseError(str(exc)) from exc


def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        chunk = response.read(_CHUNK)
        if not chunk:
            return
        yield chunk
