"""Who is asking: the ``Authorization: Bearer`` header, an API token or an OIDC token.

The header must be exactly ``Bearer <token>`` (RFC 6750, scheme case-insensitive,
one space, the token's characters only, at most 16 KiB). An ``mlpt_`` token is
looked up in the server's token table (:mod:`._tokens`); anything shaped like a
JWT goes to the OIDC verifier (:mod:`._oidc`). Every failure is an
:class:`AuthenticationError` (HTTP 401) whose message says what is wrong with
which token, without echoing the secret.
"""

from __future__ import annotations

import re

from mlprov.server._authz import Principal
from mlprov.server._errors import AuthenticationError
from mlprov.server._oidc import OidcVerifier, looks_like_jwt
from mlprov.server._tokens import TOKEN_PREFIX, TokenStore

__all__ = ["Authenticator", "bearer_token"]

_BEARER = re.compile(r"\A[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)\Z")
_MAX_HEADER = 16 * 1024


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization`` header value.

    Raises:
        AuthenticationError: no header, another scheme, or a malformed value.
    """
    if header is None or header == "":
        raise AuthenticationError("no bearer token: this endpoint needs "
                                  "'Authorization: Bearer TOKEN'")
    if len(header) > _MAX_HEADER:
        raise AuthenticationError("the Authorization header is too long")
    match = _BEARER.match(header)
    if match is None:
        scheme = header.split(" ", 1)[0][:20]
        if scheme.lower() != "bearer":
            raise AuthenticationError(f"the Authorization header uses the {scheme!r} scheme; "
                                      "this server takes 'Bearer TOKEN'")
        raise AuthenticationError("the Authorization header's bearer token is malformed")
    return match.group(1)


class Authenticator:
    """Turns a request's ``Authorization`` header into a :class:`Principal`."""

    def __init__(self, tokens: TokenStore, oidc: OidcVerifier) -> None:
        self.tokens = tokens
        self.oidc = oidc

    def authenticate(self, header: str | None) -> Principal:
        """The principal behind ``header`` (blocking: database or JWKS look-ups).

        Raises:
            AuthenticationError: see the module docstring.
            PermissionDeniedError: a valid OIDC token that maps to no principal.
        """
        token = bearer_token(header)
        if token.startswith(TOKEN_PREFIX):
            record = self.tokens.authenticate(token)
            return Principal(name=record.principal, roles=frozenset(record.roles),
                             via=f"token:{TOKEN_PREFIX}{record.id}")
        if looks_like_jwt(token):
            if not self.oidc.issuers:
                raise AuthenticationError("this server accepts no OIDC tokens (no [[oidc]] "
                                          "issuer in server.toml)",
                                          hint="use an API token from `mlprov server token "
                                               "create`")
            principal, _claims = self.oidc.verify(token)
            return principal
        raise AuthenticationError("the bearer token is neither an mlprov API token (mlpt_...) "
                                  "nor an OIDC token (a JWT)")
