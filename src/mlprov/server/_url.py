"""Registry server URLs: ``https://HOST[:PORT][/PREFIX]``, and ``http://`` on loopback only.

A bearer token sent in clear text over a network can be replayed by whoever
sees it, so a client refuses ``http://`` to any host but this machine
(``127.0.0.0/8``, ``::1``, ``localhost``), where nothing crosses a wire.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from mlprov.errors import InputError

__all__ = ["ServerUrl", "is_loopback", "is_server_url", "parse_server_url"]

_HOST = re.compile(r"\A[A-Za-z0-9.-]{1,253}\Z")
_PREFIX = re.compile(r"\A(/[A-Za-z0-9._~-]+)*\Z")


def is_server_url(value: object) -> bool:
    """Whether a ``--registry`` value names a registry server (``http(s)://``)."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (a loopback address or ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerUrl:
    """A parsed server URL: scheme, host, port and path prefix (no trailing slash)."""

    scheme: str
    host: str
    port: int
    prefix: str

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        return self.scheme == "https"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.prefix}"

    def path(self, path: str) -> str:
        """The request path for an API path (``/api/v1/...``)."""
        return self.prefix + path


def parse_server_url(text: str) -> ServerUrl:
    """Parse a server URL; ``http://`` only for a loopback host.

    Raises:
        InputError: not an ``https://`` URL (or ``http://`` to loopback); user
            info, a query or a fragment in it; a malformed host, port or path.
    """
    if not isinstance(text, str) or not text.isascii() or not text.isprintable():
        raise InputError(f"invalid registry server URL {text!r}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise InputError(f"invalid registry server URL {text!r}",
                         hint="use https://HOST[:PORT]")
    if parts.username is not None or parts.password is not None:
        raise InputError("a registry server URL must not hold credentials",
                         hint="pass the token in MLPROV_TOKEN, never in the URL")
    if parts.query or parts.fragment:
        raise InputError(f"a registry server URL takes no query or fragment: {text!r}")
    host = parts.hostname or ""
    if not host or not (_HOST.match(host) or _is_ip(host)):
        raise InputError(f"invalid host in registry server URL {text!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise InputError(f"invalid port in registry server URL {text!r}") from exc
    prefix = parts.path.rstrip("/")
    if not _PREFIX.match(prefix) or any(seg in (".", "..") for seg in prefix.split("/")):
        raise InputError(f"invalid path in registry server URL {text!r}")
    if scheme == "http" and not is_loopback(host):
        raise InputError(
            f"refusing plain http:// to {host}: the token would cross the network in clear "
            "text", hint="use https:// (http:// is only for 127.0.0.1, ::1 and localhost)")
    return ServerUrl(scheme=scheme, host=host, port=port, prefix=prefix)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
