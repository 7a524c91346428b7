"""The errors of the registry server and of its clients, and the HTTP status of each.

A client maps what a server answers back to these (never to a raw ``OSError``
or ``http.client`` exception), so the CLI's one error-to-exit-code map applies:
an authentication problem is exit 3 with the token to fix, a refused permission
exit 1 with the permission named, a malformed or unverifiable answer exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlprov.errors import EXIT_ERROR, MlprovError, VerificationError

__all__ = [
    "AuthenticationError",
    "MalformedResponseError",
    "PermissionDeniedError",
    "Refused",
    "ServerError",
    "ServerUnavailableError",
]


class ServerError(MlprovError):
    """Talking to a registry server failed (network, TLS, an unexpected answer)."""

    exit_code = EXIT_ERROR
    hint = "check the server URL (--registry https://HOST) and that the server is running"


class ServerUnavailableError(ServerError):
    """The server could not be reached or kept answering 5xx after bounded retries."""

    hint = ("the server is down, overloaded or restarting; try again later (the request was "
            "retried with backoff)")


class AuthenticationError(ServerError):
    """HTTP 401: no bearer token, or one the server does not accept.

    Unknown, expired or revoked API tokens; OIDC tokens of the wrong issuer,
    audience or signature.
    """

    hint = ("set MLPROV_TOKEN to a token from `mlprov server token create` (ask the "
            "server's admin), or to the CI job's OIDC token")


@dataclass(frozen=True)
class Refused:
    """What a principal was refused, as data (the server records it in the audit trail).

    ``action`` is the permission's kind (``read``, ``promote``, ``alias``...),
    ``permission`` the phrase the message names, ``name``/``version`` the
    model (or deployment) asked about, ``target`` a stage, an alias or a new name.
    """

    action: str
    permission: str
    name: str | None = None
    version: int | None = None
    target: str | None = None


class PermissionDeniedError(VerificationError):
    """HTTP 403: the authenticated principal lacks the permission the request needs.

    A check said no (exit 1); nothing was changed. The server logs the refusal and
    records it in the registry's audit trail (``refused``: what was refused).
    """

    hint = "ask the server's admin for the permission named (server.toml grants, token roles)"

    def __init__(self, message: str, *, hint: str | None = None,
                 refused: Refused | None = None) -> None:
        super().__init__(message, hint=hint)
        self.refused = refused


class MalformedResponseError(VerificationError):
    """The server's answer is not what the API promises: refused, never used."""

    hint = ("the server (or something between it and you) sent a malformed answer; do not "
            "trust it, and tell the server's admin")
