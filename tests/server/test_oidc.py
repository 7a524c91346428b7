"""OIDC bearer tokens: real JWTs signed with keys made here, JWKS served over local HTTP.

The claims are GitHub Actions' (https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect).
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError
from mlprov.server import AuthenticationError, PermissionDeniedError, ServerConfig
from mlprov.server._config import OidcIssuer
from mlprov.server._oidc import OidcVerifier

AUDIENCE = "https://mlprov.test"
CLAIMS = {"repository": "org/models", "ref": "refs/heads/main",
          "workflow_ref": "org/models/.github/workflows/train.yml@refs/heads/main"}


class Issuer:
    """A tiny OIDC issuer: discovery and JWKS over HTTP on loopback, keys made here."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.keys: list[dict[str, Any]] = [self.jwk(self.rsa, "rsa1", "RS256"),
                                           self.jwk(self.ec, "ec1", "ES256")]
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/jwks":
                    issuer.fetches += 1
                    body = {"keys": issuer.keys}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") \
            else jwt.algorithms.ECAlgorithm
        document = json.loads(algorithm.to_jwk(key.public_key()))
        return {**document, "kid": kid, "alg": alg, "use": "sig"}

    def token(self, *, key: Any = None, kid: str = "rsa1", alg: str = "RS256",
              headers: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": self.url, "aud": AUDIENCE, "sub": "repo:org/models:ref:refs/heads/main",
                   "iat": now, "exp": now + 300, **CLAIMS}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        signing = key if key is not None else (self.rsa if alg.startswith("RS") else self.ec)
        return jwt.encode(payload, signing, algorithm=alg,
                          headers={"kid": kid, **(headers or {})})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    yield found
    found.stop()


def config(issuer: Issuer, **extra: Any) -> ServerConfig:
    return ServerConfig({"oidc": [{
        "issuer": issuer.url, "audience": AUDIENCE, **extra,
        "principals": [{"name": "ci-train", "claims": {
            "repository": "org/models", "ref": ["refs/heads/main", "refs/heads/release"]},
            "roles": ["registrar"], "groups": ["ci"]}]}]})


def whoami(url: str, token: str) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    document = json.loads(response.read())
    conn.close()
    return response.status, document


def test_an_oidc_token_maps_to_a_principal(serve, issuer, make_model):
    served = serve(config(issuer))
    status, document = whoami(served.url, issuer.token())
    assert status == 200, document
    assert document == {"name": "ci-train", "via": f"oidc:{issuer.url}",
                        "roles": ["registrar"], "groups": ["ci"], "admin": False}
    status, _ = whoami(served.url, issuer.token(kid="ec1", alg="ES256"))
    assert status == 200
    # CI registers with its OIDC token; the audit log names the mapped principal.
    m = make_model()
    ci = served.client(token=issuer.token())
    assert ci.register(m.model, evidence=m.evidence).created
    assert served.client("admin").audit_log()[-1]["actor"] == "ci-train"


@pytest.mark.parametrize(("change", "message"), [
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}, "expired"),
    ({"aud": "https://other.test"}, "audience"),
    ({"iss": "https://issuer.evil"}, "does not accept"),
    ({"iat": int(time.time()), "exp": int(time.time()) + 7 * 86400}, "lives longer"),
    ({"sub": None}, "lacks the claim 'sub'"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
])
def test_bad_claims_are_refused(serve, issuer, change, message):
    served = serve(config(issuer))
    status, document = whoami(served.url, issuer.token(**change))
    assert status == 401, document
    assert message in document["error"]["message"]


def test_a_verified_identity_no_principal_matches_is_forbidden(serve, issuer):
    served = serve(config(issuer))
    status, document = whoami(served.url, issuer.token(repository="org/fork"))
    assert status == 403 and "maps to no principal" in document["error"]["message"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_alg_none_and_hmac_with_the_public_key_are_refused(serve, issuer):
    served = serve(config(issuer))
    header = b64(json.dumps({"alg": "none", "kid": "rsa1", "typ": "JWT"}).encode())
    now = int(time.time())
    body = b64(json.dumps({"iss": issuer.url, "aud": AUDIENCE, "sub": "x", "iat": now,
                           "exp": now + 60, **CLAIMS}).encode())
    status, document = whoami(served.url, f"{header}.{body}.")
    assert status == 401 and "'none'" in document["error"]["message"]
    # HS256 "signed" with the issuer's public key as the HMAC secret (key confusion).
    pem = issuer.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac

    signing = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'rsa1'}).encode())}.{body}"
    mac = hmac.new(pem, signing.encode(), hashlib.sha256).digest()
    status, document = whoami(served.url, f"{signing}.{b64(mac)}")
    assert status == 401 and "asymmetric" in document["error"]["message"]


def test_forged_signatures_and_unknown_keys_are_refused(serve, issuer):
    served = serve(config(issuer))
    mallory = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, document = whoami(served.url, issuer.token(key=mallory))
    assert status == 401 and "signature does not verify" in document["error"]["message"]
    status, document = whoami(served.url, issuer.token(key=mallory, kid="mallory"))
    assert status == 401 and "does not publish" in document["error"]["message"]
    # An EC token under the RSA key's id: the key does not fit the algorithm.
    status, document = whoami(served.url, issuer.token(kid="rsa1", alg="ES256"))
    assert status == 401
    status, document = whoami(served.url, issuer.token(
        headers={"jku": "http://127.0.0.1:1/keys"}))
    assert status == 401 and "'jku' header" in document["error"]["message"]


def test_an_algorithm_the_issuer_may_not_use(serve, issuer):
    served = serve(config(issuer, algorithms=["ES256"]))
    status, document = whoami(served.url, issuer.token())
    assert status == 401 and "not allowed to use here" in document["error"]["message"]


def test_key_rotation_refetches_the_key_set(issuer, monkeypatch):
    import mlprov.server._oidc as oidc

    verifier = OidcVerifier(config(issuer).oidc)
    verifier.verify(issuer.token())
    assert issuer.fetches == 1
    verifier.verify(issuer.token())
    assert issuer.fetches == 1  # cached
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.keys.append(issuer.jwk(new, "rsa2", "RS256"))
    with pytest.raises(AuthenticationError, match="does not publish"):
        verifier.verify(issuer.token(key=new, kid="rsa2"))  # refetch rate-limited
    monkeypatch.setattr(oidc, "_REFETCH_EVERY", 0.0)
    principal, _ = verifier.verify(issuer.token(key=new, kid="rsa2"))
    assert principal.name == "ci-train" and issuer.fetches == 2


def test_an_unreachable_issuer_is_an_authentication_error():
    issuer = OidcIssuer(issuer="http://127.0.0.1:9", audience=AUDIENCE)
    verifier = OidcVerifier([issuer])
    now = int(time.time())
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"iss": issuer.issuer, "aud": AUDIENCE, "sub": "s", "iat": now,
                        "exp": now + 60}, key, algorithm="ES256", headers={"kid": "k"})
    with pytest.raises(AuthenticationError, match="cannot check OIDC tokens"):
        verifier.verify(token)


def test_issuers_must_be_https_off_loopback():
    with pytest.raises(Exception, match="https"):
        ServerConfig({"oidc": [{"issuer": "http://issuer.example", "audience": "a"}]})
    with pytest.raises(Exception, match="at least one claim"):
        ServerConfig({"oidc": [{"issuer": "https://i.example", "audience": "a",
                                "principals": [{"name": "x", "claims": {}}]}]})


_B64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
               max_size=80)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.builds(lambda a, b, c: f"{a}.{b}.{c}", _B64, _B64, _B64),
                 st.builds(lambda h, p: f"{b64(h)}.{b64(p)}.c2ln",
                           st.binary(max_size=60), st.binary(max_size=60)),
                 st.builds(lambda h: f"{b64(json.dumps(h).encode())}.e30.c2ln",
                           st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]),
                                           st.one_of(st.text(max_size=8), st.integers(),
                                                     st.none()), max_size=4))))
def test_jwt_parsing_never_crashes(text):
    issuer = OidcIssuer(issuer="https://issuer.example", audience=AUDIENCE)

    def no_network(url: str) -> Any:
        raise AssertionError(f"fetched {url}")

    verifier = OidcVerifier([issuer], fetch=no_network)
    with pytest.raises((AuthenticationError, PermissionDeniedError)):
        verifier.verify(text)


def test_revoked_token_ids_subjects_and_older_tokens_are_refused(serve, issuer):
    now = int(time.time())
    served = serve(config(issuer, revoked_ids=["leaked-1"], revoked_subjects=["repo:org/gone"],
                          not_before="2026-01-01T00:00:00+00:00"))
    assert whoami(served.url, issuer.token(jti="fresh-2"))[0] == 200
    status, document = whoami(served.url, issuer.token(jti="leaked-1"))
    assert status == 401 and "'leaked-1'" in document["error"]["message"]
    assert "revoked" in document["error"]["message"]
    status, document = whoami(served.url, issuer.token(sub="repo:org/gone"))
    assert status == 401 and "revoked on this server" in document["error"]["message"]
    # A cut-off refuses everything issued before it (here: a token from a minute earlier).
    cutoff = served_at = now - 60
    served = serve(config(issuer, not_before=datetime.fromtimestamp(cutoff, UTC)))
    status, document = whoami(served.url, issuer.token(iat=served_at - 10, exp=now + 300))
    assert status == 401 and "issued before" in document["error"]["message"]
    assert whoami(served.url, issuer.token())[0] == 200
    # A jti of another type never reaches the revocation list: the JWT itself is refused.
    status, document = whoami(served.url, issuer.token(jti=["leaked-1"]))
    assert status == 401 and "JWT ID must be a string" in document["error"]["message"]
    assert "revoked" not in document["error"]["message"]


def test_a_cut_off_without_a_time_zone_is_refused_when_the_file_is_read(issuer):
    with pytest.raises(InputError, match="time zone"):
        config(issuer, not_before="2026-01-01T00:00:00")
