"""OIDC bearer tokens: a JWT from a configured issuer, checked against its published keys.

For each ``[[oidc]]`` issuer of ``server.toml`` the server accepts JWTs that:

- name that issuer (``iss``, exactly) and the configured audience (``aud``);
- are signed with an algorithm the issuer's entry allows (asymmetric only:
  ``alg: none`` and every ``HS*`` algorithm are refused before anything else, so
  a token "signed" with the issuer's *public* key as an HMAC secret never counts);
- verify with a key of the issuer's JWKS (fetched from ``jwks_uri``, or found by
  OIDC discovery, over https; cached ten minutes, refetched at most every 30 s
  when a token names an unknown ``kid``), whose type fits the algorithm; keys are
  never taken from the token (``jku``, ``x5u``, ``jwk`` headers are refused);
- carry ``exp``, ``iat``, ``iss``, ``aud`` (and ``sub``), are not expired or not
  yet valid (``leeway`` seconds of clock skew), and live at most ``max_lifetime``.

The verified claims are then mapped to a principal: the first ``[[oidc.principals]]``
entry whose every claim matches exactly (e.g. GitHub Actions' ``repository``,
``ref``, ``workflow_ref``). A verified token that maps to no principal is refused.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from typing import Any

from mlprov.canonical import loads_strict
from mlprov.errors import MlprovError
from mlprov.server._authz import Principal
from mlprov.server._config import OidcIssuer, OidcPrincipal
from mlprov.server._errors import AuthenticationError, PermissionDeniedError

__all__ = ["JWT_SHAPE", "OidcVerifier", "looks_like_jwt"]

_MAX_JWT = 16 * 1024
_MAX_JWKS = 1024 * 1024
_JWKS_TTL = 600.0
_REFETCH_EVERY = 30.0
_FETCH_TIMEOUT = 5.0
JWT_SHAPE = "three base64url parts joined by dots"
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit")


def looks_like_jwt(token: str) -> bool:
    """Whether ``token`` has a JWT's shape (three base64url parts)."""
    parts = token.split(".")
    return len(parts) == 3 and all(parts[:2]) and all(set(p) <= _B64URL for p in parts)


class _KeySet:
    """One issuer's JWKS, cached."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetched = 0.0


class OidcVerifier:
    """Verifies OIDC bearer tokens against the configured issuers (see module docstring)."""

    def __init__(self, issuers: list[OidcIssuer], *, fetch: Any = None) -> None:
        self.issuers = {i.issuer: i for i in issuers}
        self._fetch = fetch or _fetch_json
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
        """Verify ``token`` and map it to a principal; returns it and the claims.

        Raises:
            AuthenticationError: not a valid token of a configured issuer.
            PermissionDeniedError: valid, but no configured principal matches it.
        """
        import jwt

        if len(token) > _MAX_JWT or not looks_like_jwt(token):
            raise AuthenticationError("the bearer token is not a well-formed JWT")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the bearer token is not a well-formed JWT: {exc}") \
                from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS"):
            raise AuthenticationError(f"OIDC token with algorithm {alg!r} refused: only "
                                      "asymmetric signatures (RS256, ES256, ...) are accepted")
        for name in _FORBIDDEN_HEADERS:
            if name in header:
                raise AuthenticationError(f"OIDC token with a {name!r} header refused (keys "
                                          "come from the issuer's JWKS only)")
        issuer_name = unverified.get("iss")
        issuer = self.issuers.get(issuer_name) if isinstance(issuer_name, str) else None
        if issuer is None:
            raise AuthenticationError(f"OIDC token from issuer {issuer_name!r}, which this "
                                      "server does not accept",
                                      hint="the server's admin lists accepted issuers in "
                                           "server.toml [[oidc]]")
        if alg not in issuer.algorithms:
            raise AuthenticationError(f"OIDC token signed with {alg}, which the issuer "
                                      f"{issuer.issuer} is not allowed to use here "
                                      f"({', '.join(issuer.algorithms)})")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("OIDC token with a malformed 'kid' header")
        key = self._key(issuer, kid, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[alg], audience=issuer.audience,
                issuer=issuer.issuer, leeway=issuer.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"],
                         "verify_signature": True, "verify_exp": True,
                         "verify_aud": True, "verify_iss": True, "verify_iat": True,
                         "verify_nbf": True, "strict_aud": False})
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError(
                f"OIDC token of {issuer.issuer} expired at {unverified.get('exp')}",
                hint="request a fresh token (CI: the job's id-token) and set MLPROV_TOKEN") \
                from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError(
                f"OIDC token for audience {unverified.get('aud')!r}, but this server is "
                f"{issuer.audience!r}", hint=f"request the token with audience "
                                             f"{issuer.audience}") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationError("OIDC token not valid yet (nbf/iat in the future)") \
                from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError(f"OIDC token's signature does not verify with the keys "
                                      f"of {issuer.issuer}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"OIDC token lacks the claim {exc.claim!r}") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthenticationError(f"OIDC token refused: {exc}") from exc
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)) \
                or exp - iat > issuer.max_lifetime:
            raise AuthenticationError(f"OIDC token lives longer than the "
                                      f"{issuer.max_lifetime} s this server accepts")
        _check_not_revoked(issuer, claims)
        return self._principal(issuer, claims), claims

    # ------------------------------------------------------------------ keys

    def _key(self, issuer: OidcIssuer, kid: str | None, alg: str) -> Any:
        import jwt

        for refetch in (False, True):
            keys = self._keys(issuer, refresh=refetch)
            candidates = [k for k in keys if (kid is None or k.get("kid") == kid)
                          and k.get("use", "sig") == "sig"
                          and k.get("alg", alg) == alg]
            if kid is None and len(candidates) > 1:
                raise AuthenticationError("OIDC token names no key id ('kid') and the issuer "
                                          "has several keys")
            if candidates:
                try:
                    return jwt.PyJWK(candidates[0], algorithm=alg).key
                except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError,
                        KeyError) as exc:
                    raise AuthenticationError(f"the issuer's key {kid!r} does not fit "
                                              f"algorithm {alg}") from exc
        raise AuthenticationError(f"OIDC token signed with key {kid!r}, which "
                                  f"{issuer.issuer} does not publish")

    def _keys(self, issuer: OidcIssuer, *, refresh: bool) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            keyset = self._sets.setdefault(issuer.issuer, _KeySet())
            fresh = keyset.fetched and now - keyset.fetched < _JWKS_TTL
            may_refetch = not keyset.fetched or now - keyset.fetched >= _REFETCH_EVERY
            if fresh and not (refresh and may_refetch):
                return keyset.keys
            if refresh and not may_refetch:
                return keyset.keys
        try:
            uri = issuer.jwks_uri or self._discover(issuer)
            document = self._fetch(uri)
        except MlprovError as exc:
            raise AuthenticationError(f"cannot check OIDC tokens of {issuer.issuer}: {exc}",
                                      hint="the issuer's key set is unreachable; try again "
                                           "later") from exc
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise AuthenticationError(f"the key set of {issuer.issuer} is malformed")
        with self._lock:
            keyset.keys = keys
            keyset.fetched = now
        return keys

    def _discover(self, issuer: OidcIssuer) -> str:
        from mlprov.server._url import is_loopback

        document = self._fetch(issuer.issuer.rstrip("/") + "/.well-known/openid-configuration")
        uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(uri, str):
            raise AuthenticationError(f"{issuer.issuer}'s OIDC discovery names no jwks_uri")
        from urllib.parse import urlsplit

        parts = urlsplit(uri)
        if parts.scheme != "https" and not (parts.scheme == "http"
                                             and is_loopback(parts.hostname or "")):
            raise AuthenticationError(f"{issuer.issuer}'s key set is not served over https")
        return uri

    # ------------------------------------------------------------------ principals

    @staticmethod
    def _principal(issuer: OidcIssuer, claims: dict[str, Any]) -> Principal:
        for entry in issuer.principals:
            if _claims_match(entry, claims):
                return Principal(name=entry.name, roles=frozenset(entry.roles),
                                 groups=frozenset(entry.groups), via=f"oidc:{issuer.issuer}")
        sub = claims.get("sub")
        raise PermissionDeniedError(
            f"the OIDC identity {sub!r} of {issuer.issuer} maps to no principal of this "
            "server", hint="the server's admin maps identities in server.toml "
                           "[[oidc.principals]] (claims to match, roles)")


def _check_not_revoked(issuer: OidcIssuer, claims: dict[str, Any]) -> None:
    """Refuse a verified token that its issuer's entry revokes.

    ``revoked_ids`` (``jti``), ``revoked_subjects`` (``sub``), ``not_before`` (``iat``);
    the claims are hostile, so only exact string matches count.
    """
    jti, sub, iat = claims.get("jti"), claims.get("sub"), claims.get("iat")
    if isinstance(jti, str) and jti in issuer.revoked_ids:
        raise AuthenticationError(f"OIDC token {jti[:64]!r} of {issuer.issuer} was revoked",
                                  hint="request a fresh token")
    if isinstance(sub, str) and sub in issuer.revoked_subjects:
        raise AuthenticationError(f"OIDC tokens of {sub[:128]!r} from {issuer.issuer} are "
                                  "revoked on this server",
                                  hint="ask the server's admin (server.toml revoked_subjects)")
    if issuer.not_before is not None and isinstance(iat, (int, float)) \
            and iat < issuer.not_before.timestamp():
        raise AuthenticationError(
            f"OIDC token of {issuer.issuer} issued before "
            f"{issuer.not_before.isoformat()}, when this server revoked older tokens",
            hint="request a fresh token")


def _claims_match(entry: OidcPrincipal, claims: dict[str, Any]) -> bool:
    for name, accepted in entry.claims.items():
        value = claims.get(name)
        if not isinstance(value, str):
            return False
        if value not in (accepted if isinstance(accepted, list) else [accepted]):
            return False
    return True


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Key sets are fetched from the configured URL only: a redirect is an error.

    (A redirect could lead to plain HTTP or another host: keys must come from the
    issuer itself, over the transport its configuration names.)
    """

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused",
                                     headers, fp)


def _fetch_json(url: str) -> Any:
    """GET a JSON document (JWKS, discovery) with a timeout and a size bound."""
    from mlprov.errors import InputError

    request = urllib.request.Request(url, headers={"Accept": "application/json",  # noqa: S310
                                                   "User-Agent": "mlprov-server"})
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=_FETCH_TIMEOUT) as response:
            data = response.read(_MAX_JWKS + 1)
    except OSError as exc:
        raise InputError(f"cannot fetch {url}: {exc}") from exc
    if len(data) > _MAX_JWKS:
        raise InputError(f"{url} is larger than {_MAX_JWKS} bytes")
    return loads_strict(data, what=url)
