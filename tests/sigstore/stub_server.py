"""A local Fulcio and Rekor speaking the real HTTP protocol, on 127.0.0.1.

sigstore-python's own clients talk to it unmodified, pointed here by a
ClientTrustConfig (``FakeSigstore.client_trust_config``):

- Fulcio ``POST /api/v2/signingCert``: ``{"certificateSigningRequest": b64(PEM CSR)}``
  with ``Authorization: Bearer <OIDC token>``. The token's signature is checked
  against the test OIDC issuer's key, the CSR's proof of possession is checked,
  and the identity becomes the SAN as Fulcio derives it (GitHub: the
  ``job_workflow_ref`` URI plus the workflow extensions; else the email; else
  ``sub``). Answers ``{"signedCertificateEmbeddedSct": {"chain": {"certificates": [...]}}}``.
- Rekor v1 ``POST /api/v1/log/entries`` with a ``dsse/0.0.1`` proposed entry: the
  DSSE signature is checked against the proposed verifier, then the entry is
  logged (``FakeSigstore.log_dsse``) and returned as ``{uuid: LogEntry}``.
- GitHub Actions' token service ``GET /github-oidc?audience=...`` with
  ``Authorization: bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>``: ``{"value": <JWT>}``,
  what ``id.detect_credential`` asks for in a job with ``id-token: write``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.sigstore.fake_instance import GITHUB_ISSUER, FakeSigstore, now


@dataclass
class OidcIssuer:
    """Mints OIDC identity tokens (ES256 JWTs) the stub Fulcio accepts."""

    url: str = GITHUB_ISSUER
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def token(self, *, lifetime: int = 300, audience: str = "sigstore", **claims: Any) -> str:
        issued = int(now().timestamp())
        body = {"iss": self.url, "aud": audience, "iat": issued, "nbf": issued,
                "exp": issued + lifetime, "sub": "repo:o/r:ref:refs/heads/main", **claims}
        return jwt.encode(body, self.key, algorithm="ES256")

    def github_token(self, *, repository: str = "o/r", workflow_file: str = "train.yml",
                     ref: str = "refs/heads/main", **claims: Any) -> str:
        """A token shaped like GitHub Actions' (the claims Fulcio maps into extensions)."""
        return self.token(
            sub=f"repo:{repository}:ref:{ref}",
            job_workflow_ref=f"{repository}/.github/workflows/{workflow_file}@{ref}",
            repository=repository, ref=ref, sha="f" * 40, workflow="train",
            event_name="push", run_id="42", run_attempt="1", **claims)


def github_subject(repository: str = "o/r", workflow_file: str = "train.yml",
                   ref: str = "refs/heads/main") -> str:
    """The SAN Fulcio issues for a GitHub Actions workflow run."""
    return f"https://github.com/{repository}/.github/workflows/{workflow_file}@{ref}"


class StubServer:
    """Fulcio + Rekor v1 for one ``FakeSigstore``; counts what it was asked."""

    def __init__(self, instance: FakeSigstore, issuer: OidcIssuer) -> None:
        self.instance, self.issuer = instance, issuer
        self.cert_requests = 0
        self.log_requests = 0
        self.token_requests = 0
        #: github_token() arguments for the job's ambient token (repository, workflow_file, ref).
        self.ambient_claims: dict[str, str] = {}
        self.fail_fulcio: str | None = None
        self.cert_lifetime = dt.timedelta(minutes=10)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        instance.url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _identity(self, token: str) -> tuple[str, str, dict[str, str]]:
        """The certificate's subject, issuer and GitHub claims, as Fulcio derives them."""
        # The test issuer's key vouches for any `iss` it writes (one key, several issuers).
        claims = jwt.decode(token, self.issuer.key.public_key(), algorithms=["ES256"],
                            audience="sigstore")
        if claims["iss"] == GITHUB_ISSUER and "job_workflow_ref" in claims:
            repository, ref = claims["repository"], claims["ref"]
            return f"https://github.com/{claims['job_workflow_ref']}", GITHUB_ISSUER, {
                "trigger": claims["event_name"], "sha": claims["sha"],
                "workflow": claims["workflow"], "repository": repository, "ref": ref,
                "sourceRepositoryUri": f"https://github.com/{repository}",
                "sourceRepositoryRef": ref, "sourceRepositoryDigest": claims["sha"],
                "buildTrigger": claims["event_name"],
                "runInvocationUri": f"https://github.com/{repository}/actions/runs/"
                                    f"{claims['run_id']}/attempts/{claims['run_attempt']}"}
        return str(claims.get("email") or claims["sub"]), str(claims["iss"]), {}

    def signing_cert(self, request: dict[str, Any], authorization: str) -> tuple[int, Any]:
        self.cert_requests += 1
        if self.fail_fulcio:
            return 500, {"code": 500, "message": self.fail_fulcio}
        if not authorization.startswith("Bearer "):
            return 401, {"code": 401, "message": "missing bearer token"}
        try:
            subject, issuer, github = self._identity(authorization.removeprefix("Bearer "))
        except jwt.PyJWTError as exc:
            return 401, {"code": 401, "message": f"invalid identity token: {exc}"}
        csr = x509.load_pem_x509_csr(base64.b64decode(request["certificateSigningRequest"]))
        if not csr.is_signature_valid:
            return 400, {"code": 400, "message": "CSR proof of possession failed"}
        start = now()
        leaf = self.instance.issue(csr.public_key(), subject=subject, issuer=issuer,
                                   github=github, not_before=start,
                                   not_after=start + self.cert_lifetime)
        chain = [c.public_bytes(serialization.Encoding.PEM).decode()
                 for c in (leaf, self.instance.ca_cert)]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}

    def create_entry(self, request: dict[str, Any]) -> tuple[int, Any]:
        self.log_requests += 1
        if request.get("kind") != "dsse" or request.get("apiVersion") != "0.0.1":
            return 400, {"code": 400, "message": "this log takes dsse/0.0.1 entries only"}
        proposed = request["spec"]["proposedContent"]
        envelope = json.loads(proposed["envelope"])
        [verifier_b64] = proposed["verifiers"]
        verifier = base64.b64decode(verifier_b64)
        key = x509.load_pem_x509_certificate(verifier).public_key()
        payload = base64.b64decode(envelope["payload"])
        type_bytes = envelope["payloadType"].encode()
        pae = b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        try:
            for signature in envelope["signatures"]:
                key.verify(base64.b64decode(signature["sig"]), pae, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return 400, {"code": 400, "message": "DSSE signature does not verify"}
        return 201, self.instance.log_dsse(envelope, verifier)

    #: The bearer secret GitHub hands a job as ACTIONS_ID_TOKEN_REQUEST_TOKEN.
    actions_request_token = "actions-request-token"

    def github_environment(self) -> dict[str, str]:
        """The variables of a GitHub Actions job granted ``id-token: write``."""
        return {"GITHUB_ACTIONS": "true",
                "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/github-oidc?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.actions_request_token}

    def ambient_token(self, query: str, authorization: str) -> tuple[int, Any]:
        self.token_requests += 1
        if authorization != f"bearer {self.actions_request_token}":
            return 403, {"message": "bad request token"}
        audience = parse_qs(query).get("audience", ["?"])[0]
        return 200, {"value": self.issuer.github_token(audience=audience,
                                                       **self.ambient_claims)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, answer: Any) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/github-oidc":
                    self._answer(*stub.ambient_token(query,
                                                     self.headers.get("Authorization", "")))
                elif path == "/oidc/.well-known/openid-configuration":
                    # Discovery only: clients such as model_signing look it up up front.
                    self._answer(200, {"authorization_endpoint": f"{stub.url}/oidc/auth",
                                       "token_endpoint": f"{stub.url}/oidc/token"})
                else:
                    self._answer(404, {"message": f"no route {self.path}"})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    if self.path == "/api/v2/signingCert":
                        status, answer = stub.signing_cert(
                            request, self.headers.get("Authorization", ""))
                    elif self.path == "/api/v1/log/entries":
                        status, answer = stub.create_entry(request)
                    else:
                        status, answer = 404, {"code": 404, "message": f"no route {self.path}"}
                except Exception as exc:  # a stub bug: answer as a server would, visibly
                    status, answer = 500, {"code": 500, "message": f"stub: {exc!r}"}
                self._answer(status, answer)

            def log_message(self, *_: Any) -> None:
                pass  # keep pytest output clean

        return Handler
