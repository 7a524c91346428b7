"""Authentication: no token, a malformed header, unknown, revoked and expired tokens.

Real HTTP against a real server; the token store's own rules beside it.
"""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError
from mlprov.registry import Registry
from mlprov.server import AuthenticationError, token_store
from mlprov.server._auth import bearer_token
from mlprov.server._tokens import parse_expiry, parse_token


def request(url: str, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(body: bytes) -> dict:
    document = json.loads(body)
    assert set(document["error"]) == {"status", "type", "message", "hint", "exitCode"}
    return document["error"]


def test_health_and_ready_need_no_token(served):
    assert request(served.url, "GET", "/api/v1/health")[0] == 200
    status, _, body = request(served.url, "GET", "/api/v1/ready")
    assert status == 200 and json.loads(body) == {"status": "ready", "auditSeq": 1}


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/registry",
                                  "/api/v1/models", "/api/v1/store/audit",
                                  "/api/v1/blobs/sha256:" + "0" * 64])
def test_every_other_endpoint_needs_a_token(served, path):
    status, headers, body = request(served.url, "GET", path)
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer realm="mlprov"')
    assert "no bearer token" in error_of(body)["message"]


@pytest.mark.parametrize(("header", "message"), [
    ("Basic dXNlcjpwYXNz", "'Basic' scheme"),
    ("Bearer", "malformed"),
    ("Bearer  mlpt_x", "malformed"),
    ("Bearer mlpt_x y", "malformed"),
    ("bearer mlpt_0123456789abcdef_" + "a" * 42, "not an mlprov API token"),
    ("Bearer " + "A" * 20000, "too long"),
    ("Bearer not-a-token", "neither an mlprov API token"),
    ("Bearer a.b.c", "no OIDC tokens"),
])
def test_malformed_authorization_headers(served, header, message):
    status, _, body = request(served.url, "GET", "/api/v1/whoami", {"Authorization": header})
    assert status == 401, body
    assert message in error_of(body)["message"]


def test_unknown_wrong_secret_revoked_and_expired_tokens(served):
    good = served.tokens["reader"]
    token_id = good.split("_")[1]
    forged = f"mlpt_{token_id}_" + "A" * 43
    status, _, body = request(served.url, "GET", "/api/v1/whoami", bearer(forged))
    assert status == 401 and "not known" in error_of(body)["message"]
    unknown = "mlpt_" + "f" * 16 + "_" + "B" * 43
    status, _, body = request(served.url, "GET", "/api/v1/whoami", bearer(unknown))
    assert status == 401 and "not known" in error_of(body)["message"]

    status, _, body = request(served.url, "GET", "/api/v1/whoami", bearer(good))
    assert status == 200 and json.loads(body)["name"] == "reader-user"
    with Registry.open(served.registry) as reg:
        store = token_store(reg)
        record = store.revoke(f"mlpt_{token_id}")
        assert record.state() == "revoked"
        past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        expired, _ = store.issue(principal="old", roles=["reader"], created_by="t",
                                 expires_at=past)
        store.close()
    status, _, body = request(served.url, "GET", "/api/v1/whoami", bearer(good))
    assert status == 401 and "was revoked" in error_of(body)["message"]
    status, _, body = request(served.url, "GET", "/api/v1/whoami", bearer(expired))
    error = error_of(body)
    assert status == 401 and "expired at" in error["message"]
    assert "token create" in error["hint"]


def test_a_token_of_another_principal_acts_as_that_principal(served):
    status, _, body = request(served.url, "GET", "/api/v1/whoami",
                              bearer(served.tokens["promoter"]))
    assert json.loads(body)["name"] == "promoter-user"
    status, _, body = request(served.url, "POST", "/api/v1/audit/checkpoint",
                              bearer(served.tokens["promoter"]))
    assert status == 403 and "promoter-user may not sign a checkpoint" in \
        error_of(body)["message"]


def test_only_the_hash_is_stored(served):
    token = served.tokens["admin"]
    with Registry.open(served.registry) as reg:
        store = token_store(reg)
        with store.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(store.tokens.select())]
        store.close()
    secret = token.split("_", 2)[2]
    assert rows and not any(secret in str(cell) for row in rows for cell in row)


def test_failed_authentications_are_rate_limited(served):
    statuses = [request(served.url, "GET", "/api/v1/whoami", bearer("mlpt_nope"))[0]
                for _ in range(25)]
    assert statuses[:20] == [401] * 20 and 429 in statuses[20:]


def test_requests_are_rate_limited_per_principal(serve):
    from mlprov.server import ServerConfig

    served = serve(ServerConfig({"server": {"rate_limit": 60, "rate_burst": 3}}))
    reader, promoter = served.tokens["reader"], served.tokens["promoter"]
    statuses = [request(served.url, "GET", "/api/v1/whoami", bearer(reader))
                for _ in range(5)]
    assert [s for s, _, _ in statuses][:3] == [200, 200, 200]
    limited = [s for s in statuses if s[0] == 429]
    assert limited and int(limited[0][1]["retry-after"]) >= 1
    assert request(served.url, "GET", "/api/v1/whoami", bearer(promoter))[0] == 200


def test_expiry_durations():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("30d", now=now) == "2026-01-31T00:00:00Z"
    assert parse_expiry("12h", now=now) == "2026-01-01T12:00:00Z"
    assert parse_expiry("never") is None
    for bad in ("30", "0d", "-1d", "1y", "30d ", "٣d", ""):
        with pytest.raises(InputError):
            parse_expiry(bad)


def test_token_names_and_roles_are_checked(served):
    with Registry.open(served.registry) as reg:
        store = token_store(reg)
        for principal, roles in (("bad name", ["reader"]), ("x\n", ["reader"]),
                                 ("ok", []), ("ok", ["Admin"]), ("ok", ["a b"])):
            with pytest.raises(InputError):
                store.issue(principal=principal, roles=roles, created_by="t", expires_at=None)
        with pytest.raises(InputError):
            store.revoke("../../etc")
        store.close()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_bearer_parsing_never_crashes(header):
    try:
        token = bearer_token(header)
    except AuthenticationError:
        return
    assert header.lower().startswith("bearer ") and token == header[7:]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=120),
                 st.builds(lambda a, b: f"mlpt_{a}_{b}",
                           st.text(alphabet="0123456789abcdef", min_size=15, max_size=17),
                           st.text(alphabet="ABCabc012_-", min_size=42, max_size=44))))
def test_token_parsing_never_crashes(text):
    try:
        token_id, secret = parse_token(text)
    except AuthenticationError:
        return
    assert len(token_id) == 16 and len(secret) == 43 and text == f"mlpt_{token_id}_{secret}"


def test_store_reads_have_their_own_larger_budget(serve):
    from mlprov.server import ServerConfig

    served = serve(ServerConfig({"server": {"rate_limit": 60, "rate_burst": 2,
                                            "read_rate_limit": 600, "read_burst": 50}}))
    reader = bearer(served.tokens["reader"])
    statuses = [request(served.url, "GET", "/api/v1/store/audit/head", reader)[0]
                for _ in range(20)]
    assert statuses == [200] * 20
    statuses = [request(served.url, "GET", "/api/v1/whoami", reader)[0] for _ in range(4)]
    assert 429 in statuses
