"""Limits and hardening: bodies, uploads, hostile names and paths, headers, errors, races, TLS."""

from __future__ import annotations

import datetime
import hashlib
import http.client
import io
import json
import socket
import tarfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mlprov.errors import InputError
from mlprov.registry import Registry
from mlprov.server import ServerConfig, ServerError
from mlprov.server._run import plain_http_warning
from mlprov.server._url import parse_server_url
from tests.cli.conftest import assert_error
from tests.server.test_auth import error_of, request


def auth(served: Any, role: str = "admin", **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.tokens[role]}", **extra}


def audit_count(served: Any) -> int:
    with Registry.open(served.registry) as reg:
        return len(reg.audit_log())


# ---------------------------------------------------------------------- bodies


def test_json_bodies_are_bounded(serve):
    served = serve(ServerConfig({"server": {"max_body": 1024}}))
    body = json.dumps({"to": "Staging", "reason": "x" * 2000}).encode()
    status, _, data = request(served.url, "POST", "/api/v1/models/a/versions/1/stage",
                              auth(served, **{"Content-Type": "application/json"}), body)
    assert status == 413 and "larger than this server accepts" in error_of(data)["message"]


@pytest.mark.parametrize(("body", "message"), [
    (b"{", "the request body"),
    (b'{"to": "Staging", "reason": "r", "to": "None"}', "duplicate"),
    (b'{"to": "Staging", "reason": "r", "extra": 1}', "extra"),
    (b'{"to": "Prod", "reason": "r"}', "to"),
    (b'{"to": "Staging", "reason": ""}', "reason"),
    (b"[" * 100 + b"]" * 100, "deep"),
])
def test_malformed_json_bodies(served, body, message):
    status, _, data = request(served.url, "POST", "/api/v1/models/a/versions/1/stage",
                              auth(served, **{"Content-Type": "application/json"}), body)
    assert status == 400, data
    assert message in error_of(data)["message"].lower()


def test_a_json_body_needs_its_content_type(served):
    status, _, data = request(served.url, "POST", "/api/v1/models/a/versions/1/stage",
                              auth(served, **{"Content-Type": "text/plain"}),
                              b'{"to": "Staging", "reason": "r"}')
    assert status == 400 and "application/json" in error_of(data)["message"]


# ---------------------------------------------------------------------- uploads


def tar_of(members: list[tuple[str, bytes | None, str]], *, end: bool = True) -> bytes:
    """A tar of (name, data, kind) members; kind: file, dir, symlink, link, fifo."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data or b""))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "link": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
                         "char": tarfile.CHRTYPE}[kind]
            info.linkname = "../../../etc/passwd" if kind in ("symlink", "link") else ""
            tar.addfile(info)
    data = out.getvalue()
    if not end:  # cut at the last member's end: no end-of-archive blocks
        data = data.rstrip(b"\0")
        data += b"\0" * (-len(data) % 512)
    return data


def model_tar(m: Any, *, extra: list[tuple[str, bytes | None, str]] | None = None,
              end: bool = True) -> bytes:
    members: list[tuple[str, bytes | None, str]] = []
    for path in sorted(m.model.rglob("*")):
        if path.is_file():
            members.append((f"model/{path.relative_to(m.model)}", path.read_bytes(), "file"))
    for path in sorted(m.evidence.rglob("*")):
        if path.is_file():
            members.append((f"evidence/{path.relative_to(m.evidence)}", path.read_bytes(),
                            "file"))
    return tar_of(members + (extra or []), end=end)


def upload(served: Any, data: bytes, headers: dict[str, str] | None = None,
           role: str = "registrar") -> tuple[int, dict[str, Any]]:
    status, _, body = request(served.url, "POST", "/api/v1/models/register",
                              auth(served, role, **{"Content-Type": "application/x-tar",
                                                    **(headers or {})}), data)
    return status, json.loads(body)


def test_a_raw_upload_registers(served, make_model):
    m = make_model()
    data = model_tar(m)
    status, document = upload(served, data,
                              {"X-Mlprov-Upload-Sha256": hashlib.sha256(data).hexdigest()})
    assert status == 201, document
    assert document["uri"] == "models:/credit-risk/1"


@pytest.mark.parametrize(("extra", "message"), [
    ([("model/../../../tmp/evil", b"x", "file")], "not a clean relative path"),
    ([("/etc/evil", b"x", "file")], "not a clean relative path"),
    ([("model/./x", b"x", "file")], "not a clean relative path"),
    ([("model//x", b"x", "file")], "not a clean relative path"),
    ([("model\\..\\x", b"x", "file")], "not allowed"),
    ([("model/x\nbad", b"x", "file")], "not allowed"),
    ([("other/x", b"x", "file")], "outside model/ and evidence/"),
    ([("model/link", None, "symlink")], "not a regular file"),
    ([("model/hard", None, "link")], "not a regular file"),
    ([("model/fifo", None, "fifo")], "not a regular file"),
    ([("model/dev", None, "char")], "not a regular file"),
    ([("model/config.json", b"{}", "file")], "appears twice"),
    ([("model/config.json/inner", b"{}", "file")], "inside a file"),
    ([("evil", b"x", "file")], "outside model/ and evidence/"),
    ([("model", b"x", "file")], "must be inside"),
])
def test_unsafe_upload_members_are_refused(served, make_model, extra, message, tmp_path):
    m = make_model()
    before = audit_count(served)
    status, document = upload(served, model_tar(m, extra=extra))
    assert status == 400, document
    assert message in document["error"]["message"]
    assert audit_count(served) == before
    assert not Path("/tmp/evil").exists()


def test_truncated_uploads_are_refused(served, make_model):
    m = make_model()
    before = audit_count(served)
    data = model_tar(m)
    status, document = upload(served, model_tar(m, end=False))
    assert status == 400 and "truncated" in document["error"]["message"]
    status, document = upload(served, data[: len(data) // 2])
    assert status == 400 and "not a complete tar archive" in document["error"]["message"]
    status, document = upload(served, data, {"X-Mlprov-Upload-Sha256": "0" * 64})
    assert status == 400 and "does not match" in document["error"]["message"]
    # The connection dropped before the declared length arrived.
    parts = urlsplit(served.url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (f"POST /api/v1/models/register HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {served.tokens['registrar']}\r\n"
                f"Content-Type: application/x-tar\r\nContent-Length: {len(data)}\r\n\r\n")
        sock.sendall(head.encode() + data[:10000])
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(20)
        while sock.recv(65536):
            pass
    assert audit_count(served) == before
    with Registry.open(served.registry) as reg:
        assert reg.list_models() == []


def test_oversized_uploads_are_refused(serve, make_model):
    served = serve(ServerConfig({"server": {"max_upload": "32KiB"}}))
    m = make_model()
    status, document = upload(served, model_tar(m) + b"\0" * 40000)
    assert status == 413 and "larger than this server accepts" in document["error"]["message"]
    with pytest.raises(InputError, match="larger than this server accepts"):
        served.client("registrar").register(m.model, evidence=m.evidence)


def test_an_upload_needs_register_permission_before_a_byte_is_read(served, make_model):
    m = make_model()
    status, document = upload(served, model_tar(m), role="reader")
    assert status == 403 and "may not register" in document["error"]["message"]


# ---------------------------------------------------------------------- names and paths


@pytest.mark.parametrize("path", [
    "/api/v1/store/models/..%2F..%2Fetc/versions/1",
    "/api/v1/store/models/credit-risk%0A/versions/1",
    "/api/v1/store/models/cr%C3%A9dit/versions/1",
    "/api/v1/store/models/credit-risk/versions/01",
    "/api/v1/store/models/credit-risk/versions/-1",
    "/api/v1/store/models/credit-risk/versions/1e3",
    "/api/v1/store/models/credit-risk/aliases/Production",
    "/api/v1/store/models/credit-risk/aliases/production%0A",
    "/api/v1/store/state/..%2F..%2Fkeys%2Fregistry.key",
    "/api/v1/store/state/trust%00",
    "/api/v1/blobs/..%2F..%2Fkeys%2Fregistry.key",
    "/api/v1/blobs/sha256:" + "A" * 64,
    "/api/v1/store/decisions/sha256:..",
    "/api/v1/store/audit?since=-1",
    "/api/v1/store/audit?since=1&since=2",
    "/api/v1/store/audit?limit=99999999999999999999999",
    "/api/v1/resolve?uri=models:/a/../b",
    "/api/v1/models/%2E%2E/aliases/production/history",
])
def test_hostile_names_and_paths_are_bad_requests(served, path):
    status, headers, data = request(served.url, "GET", path, auth(served))
    assert status in (400, 404), (status, data)
    error = error_of(data)
    assert "Traceback" not in error["message"]
    assert headers["x-content-type-options"] == "nosniff"


def test_unknown_routes_and_methods_answer_json(served):
    status, _, data = request(served.url, "GET", "/api/v2/anything", auth(served))
    assert status == 404 and error_of(data)["type"] == "NotFound"
    status, _, data = request(served.url, "DELETE", "/api/v1/models", auth(served))
    assert status == 405 and error_of(data)["status"] == 405


def test_security_headers(served):
    _, headers, _ = request(served.url, "GET", "/api/v1/health")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "server" not in headers or "uvicorn" not in headers.get("server", "")


def test_internal_errors_show_no_details(served, monkeypatch):
    def explode(self: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret /srv/path detail")

    monkeypatch.setattr(Registry, "list_models", explode)
    status, _, data = request(served.url, "GET", "/api/v1/models", auth(served))
    assert status == 500
    assert b"secret" not in data and b"Traceback" not in data and b"RuntimeError" not in data
    assert error_of(data)["message"] == "internal error (the server logged it)"


def test_ready_answers_503_without_details_when_the_registry_is_broken(served):
    import sqlite3

    with sqlite3.connect(Path(served.registry) / "registry.db") as conn:
        conn.execute("DELETE FROM registry_state WHERE key = 'head'")
    status, _, data = request(served.url, "GET", "/api/v1/ready")
    assert status == 503 and json.loads(data) == {"status": "unavailable"}


# ---------------------------------------------------------------------- races


def test_concurrent_promotions_and_alias_moves(serve, make_model):
    served = serve(ServerConfig({"authz": {"protected_aliases": []}}))
    admin = served.client("admin")
    for _ in range(2):
        m = make_model()
        admin.register(m.model, evidence=m.evidence)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            client = served.client("promoter")
            if n < 2:
                client.promote("credit-risk", n + 1, to="Staging", reason=f"t{n}")
            else:
                client.set_alias("credit-risk", f"canary-{n}", 1 + n % 2, reason=f"t{n}")
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    entries = admin.audit_log()
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(entries) == 1 + 2 + 6
    assert admin.verify_audit().ok
    assert {v["stage"] for v in admin.show_model("credit-risk")["versions"]} == {"Staging"}


# ---------------------------------------------------------------------- transport


def test_urls(monkeypatch):
    assert str(parse_server_url("https://h.example")) == "https://h.example"
    assert str(parse_server_url("http://127.0.0.1:8080/")) == "http://127.0.0.1:8080"
    assert parse_server_url("https://h.example:8443/mlprov").path("/api/v1/x") == \
        "/mlprov/api/v1/x"
    for bad in ("http://h.example", "http://10.0.0.1", "ftp://h", "https://u:p@h",
                "https://h?x=1", "https://h/../x", "https://h\n", "https://",
                "https://h:99999"):
        with pytest.raises(InputError):
            parse_server_url(bad)
    assert plain_http_warning("0.0.0.0", False) is not None
    assert plain_http_warning("127.0.0.1", False) is None
    assert plain_http_warning("0.0.0.0", True) is None


def test_plain_http_to_another_host_is_refused_by_the_cli(run_cli):
    r = run_cli("resolve", "models:/a/1", "--registry", "http://models.example:8080",
                env={"MLPROV_TOKEN": "mlpt_x"})
    assert_error(r, 3, "refusing plain http://")


def test_a_server_that_is_down_is_retried_then_reported(tmp_path, monkeypatch):
    from mlprov.server import RemoteRegistry, ServerUnavailableError

    sleeps: list[float] = []
    monkeypatch.setattr("mlprov.server._transport.time.sleep", sleeps.append)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path))
    with pytest.raises(ServerUnavailableError, match="after 4 attempts"):
        RemoteRegistry.open(f"http://127.0.0.1:{port}", token="mlpt_x")


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "server.crt", tmp_path / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls(serve, tmp_path, monkeypatch, make_model):
    cert, key = self_signed(tmp_path)
    served = serve(tls=(cert, key))
    assert served.url.startswith("https://")
    with pytest.raises(ServerError, match="TLS certificate"):
        served.client("reader")
    monkeypatch.setenv("MLPROV_CA_BUNDLE", str(cert))
    client = served.client("registrar")
    m = make_model()
    assert client.register(m.model, evidence=m.evidence).created
    conn = http.client.HTTPSConnection("127.0.0.1", int(served.url.rsplit(":", 1)[1]),
                                       context=__import__("ssl").create_default_context(
                                           cafile=str(cert)))
    conn.request("GET", "/api/v1/health")
    response = conn.getresponse()
    assert response.getheader("strict-transport-security") == "max-age=31536000"
    conn.close()


@pytest.mark.parametrize(("headers", "status", "message"), [
    ({"X-Mlprov-Upload-Sha256": "xyz"}, 400, "64 lower-case hex"),
    ({"X-Mlprov-Upload-Sha256": "A" * 64}, 400, "64 lower-case hex"),
    ({"Content-Length": "12abc"}, 400, None),
])
def test_bad_upload_headers(served, headers, status, message):
    parts = urlsplit(served.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", "/api/v1/models/register")
    for key, value in {"Authorization": f"Bearer {served.tokens['registrar']}",
                       "Content-Type": "application/x-tar", **headers}.items():
        conn.putheader(key, value)
    if "Content-Length" not in headers:
        conn.putheader("Content-Length", "0")
    conn.endheaders()
    response = conn.getresponse()
    data = response.read()
    conn.close()
    assert response.status == status, data
    if message is not None:
        assert message in error_of(data)["message"]


def test_a_client_refused_mid_upload_gets_the_answer(serve, make_model):
    served = serve(ServerConfig({"server": {"max_upload": "1MiB"}}))
    m = make_model()
    big = m.model / "big.bin"
    big.write_bytes(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(InputError, match="larger than this server accepts"):
        served.client("registrar").register(m.model, evidence=m.evidence)
    assert threading.active_count() < 50  # no writer thread left blocked per attempt


@pytest.mark.parametrize("key", ["blobs", "public_key", "gc_epoch", "Head", "a" * 65])
def test_state_keys_that_are_not_for_clients(served, key):
    status, _, data = request(served.url, "GET", f"/api/v1/store/state/{key}", auth(served))
    assert status == 400 and "not readable" in error_of(data)["message"]


def test_answers_never_name_the_servers_directories(served, make_model):
    """A blob that fails its check is reported by digest, not by where the server keeps it."""
    import tempfile

    from mlprov.server._http_errors import redact_paths
    from tests.registry.stored import tamper_blob

    m = make_model()
    served.client("admin").register(m.model, evidence=m.evidence)
    with Registry.open(served.registry) as reg:
        facts = reg.verify_version("credit-risk", 1)
        tamper_blob(reg, facts.evidence["eval.sigstore.json"],
                    lambda data: data.replace(b'"payload"', b'"payloaD"'))
    status, _, body = request(served.url, "GET", "/api/v1/models/credit-risk/versions/1",
                              auth(served))
    error = error_of(body)
    assert status >= 400 and error["message"]
    text = error["message"] + (error["hint"] or "")
    for private in (served.registry, str(Path(served.registry).resolve()),
                    tempfile.gettempdir()):
        assert private not in text, text
    assert redact_paths("cannot read /srv/reg/blobs/sha256/ab/abcd: gone",
                        ("/srv/reg/blobs", "/srv/reg")) == \
        "cannot read <server>/sha256/ab/abcd: gone"


def test_a_stalled_upload_is_cut_off_and_others_are_served_meanwhile(serve, make_model):
    """A slow client holds its connection, not the server: after upload_idle_timeout
    without a byte the upload is refused, nothing stored; others are answered meanwhile."""
    import time

    served = serve(ServerConfig({"server": {"upload_idle_timeout": 1.0}}))
    m = make_model()
    data = model_tar(m)
    before = audit_count(served)
    parts = urlsplit(served.url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (f"POST /api/v1/models/register HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {served.tokens['registrar']}\r\n"
                f"Content-Type: application/x-tar\r\nContent-Length: {len(data)}\r\n\r\n")
        sock.sendall(head.encode() + data[:10000])  # then nothing: the client stalls
        started = time.monotonic()
        # While it stalls, another client is served at once.
        assert request(served.url, "GET", "/api/v1/health")[0] == 200
        sock.settimeout(30)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        waited = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer[:300]
    assert b"the upload stalled for 1 s" in rest
    assert 0.9 <= waited < 25  # cut off by the idle timeout, not by the test's own
    assert audit_count(served) == before
    with Registry.open(served.registry) as reg:
        assert reg.list_models() == []


def test_connections_that_never_finish_their_headers_are_closed(serve):
    """Slow headers (or none at all) cannot hold connections until the limit answers 503."""
    import time

    served = serve(ServerConfig({"server": {"header_timeout": 1.0}}))
    parts = urlsplit(served.url)

    def closed_after(first: bytes) -> float:
        with socket.create_connection((parts.hostname, parts.port)) as sock:
            if first:
                sock.sendall(first)
            started = time.monotonic()
            sock.settimeout(20)
            while sock.recv(65536):
                pass
            return time.monotonic() - started

    assert 0.8 <= closed_after(b"") < 10  # opened, nothing sent
    assert 0.8 <= closed_after(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n") < 10
    # A client that sends its headers in time is served, and then gets its keep-alive.
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(20)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # The next request started and stalled is cut off as the first would be.
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
        started = time.monotonic()
        while sock.recv(65536):
            pass
        assert time.monotonic() - started < 10
    assert request(served.url, "GET", "/api/v1/health")[0] == 200
