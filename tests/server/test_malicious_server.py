"""A client facing a malicious server (or a tampering proxy) refuses what it is handed.

The client pins the registry's public key and verifies every decision, head,
audit entry and blob itself, so an edited database behind the server, a
swapped blob, a cut history, a replayed or forged decision, or another key are
refused with exit 1, and nothing is written where a model was to go.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from mlprov.errors import VerificationError
from mlprov.registry import RegistryIntegrityError
from mlprov.registry.interface import BlobCorruptError
from mlprov.server import MalformedResponseError, RemoteRegistry, ServerConfig
from tests.cli.conftest import assert_error

Tamper = Callable[[str, str, int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]

class Proxy:
    """An HTTP proxy to the server that may rewrite any answer (or answer itself)."""

    def __init__(self, upstream: str) -> None:
        self.tamper: Tamper | None = None
        self.answer: Callable[[str, str, bytes], tuple[int, dict[str, str], bytes] | None] \
            | None = None
        parts = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
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


PROTECTED = ServerConfig({"authz": {"protected_aliases": []}})


@pytest.fixture
def story(serve, make_model, approve, tmp_path) -> Iterator[dict[str, Any]]:
    """v1 and v2 of credit-risk in Production; @production moved v1 -> v2; a proxy."""
    served = serve(PROTECTED)
    admin = served.client("admin")
    models = []
    for n in (1, 2):
        m = make_model()
        models.append(m)
        admin.register(m.model, evidence=m.evidence)
        admin.promote("credit-risk", n, to="Staging", reason="r")
        served.client("reviewer").add_review("credit-risk", n, approve(m))
        admin.promote("credit-risk", n, to="Production", reason="r")
        admin.set_alias("credit-risk", "production", n, reason="r")
    admin.close()
    proxy = Proxy(served.url)
    yield {"served": served, "models": models, "proxy": proxy,
           "client": lambda role="reader", **kw: RemoteRegistry.open(
               proxy.url, token=served.tokens[role], **kw)}
    proxy.stop()


def json_body(data: bytes) -> Any:
    return json.loads(data)


def test_an_edited_alias_row_behind_the_server_is_refused(story, tmp_path, run_cli):
    client = story["client"]()
    assert client.resolve("models:/credit-risk@production").version == 2  # pins the key
    db = Path(story["served"].registry) / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE aliases SET version = 1 WHERE alias = 'production'")
    with pytest.raises(RegistryIntegrityError):
        client.pull("models:/credit-risk@production", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    r = run_cli("pull", "models:/credit-risk@production", "--out", str(tmp_path / "o2"),
                "--registry", story["proxy"].url,
                env={"MLPROV_TOKEN": story["served"].tokens["reader"]})
    assert_error(r, 1)
    assert not (tmp_path / "o2").exists()


def test_a_cut_history_is_refused(story, tmp_path):
    client = story["client"]()
    client.resolve("models:/credit-risk/1")
    head = client.head().seq

    def cut(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path.startswith(("/api/v1/store/audit", "/api/v1/store/head")):
            document = json_body(data)
            if "records" in document:
                document["records"] = [r for r in document["records"] if r["seq"] < head - 3]
            elif document.get("record") and document["record"]["seq"] >= head - 3:
                document["record"] = None
            data = json.dumps(document).encode()
        return status, headers, data

    story["proxy"].tamper = cut
    with pytest.raises(RegistryIntegrityError, match=r"cut|rolled back|does not hold|not the one"):
        client.pull("models:/credit-risk@production", tmp_path / "out")
    with pytest.raises(RegistryIntegrityError):
        client.head()
    report = client.verify_audit()
    assert not report.ok


def test_a_swapped_blob_is_refused_and_nothing_is_written(story, tmp_path):
    client = story["client"]()
    weights = story["models"][1].model / "weights.safetensors"
    digest = "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    other = story["models"][0].model / "weights.safetensors"

    def swap(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path == f"/api/v1/blobs/{digest}" and method == "GET":
            return status, headers, other.read_bytes()
        return status, headers, data

    story["proxy"].tamper = swap
    with pytest.raises(BlobCorruptError, match="does not match its digest"):
        client.pull("models:/credit-risk@production", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BlobCorruptError):
        client.load("models:/credit-risk@production")


def test_a_forged_row_in_an_answer_is_refused(story, tmp_path):
    client = story["client"]()

    def forge(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path == "/api/v1/store/models/credit-risk/aliases/production":
            document = json_body(data)
            document["record"]["version"] = 1
            data = json.dumps(document).encode()
        return status, headers, data

    story["proxy"].tamper = forge
    with pytest.raises(RegistryIntegrityError):
        client.pull("models:/credit-risk@production", tmp_path / "out")


def test_a_decision_not_signed_by_the_pinned_key_is_refused(story, keys):
    client = story["client"]("admin")
    from mlprov.bundles import sign_statement
    from mlprov.signing import load_private_key
    from mlprov.statements import Statement

    forged: dict[str, bytes] = {}

    def forge(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if method == "PUT" and path.endswith("/aliases/canary"):
            document = json_body(data)
            real = client.decision(document["decision"])
            payload = json.loads(base64.b64decode(json.loads(real)["dsseEnvelope"]["payload"]))
            bundle = sign_statement(Statement.model_validate(payload),
                                    load_private_key(keys.root / "mallory.key"))
            digest = "sha256:" + hashlib.sha256(bundle).hexdigest()
            forged[digest] = bundle
            document["decision"] = digest
            data = json.dumps(document).encode()
        if "/store/decisions/" in path:
            digest = path.rsplit("/", 1)[1]
            if digest in forged:
                data = json.dumps({"value": base64.b64encode(forged[digest]).decode()}).encode()
        return status, headers, data

    story["proxy"].tamper = forge
    with pytest.raises(RegistryIntegrityError, match="pinned registry key"):
        client.set_alias("credit-risk", "canary", 1, reason="r")


def test_a_replayed_decision_is_refused(story):
    client = story["client"]("admin")
    first = client.set_alias("credit-risk", "canary", 1, reason="r")
    client.delete_alias("credit-risk", "canary", reason="r")
    replay = json.dumps({"schema": "https://mlprov.dev/schemas/registry-change/v1",
                         **first.to_json_dict()}).encode()
    story["proxy"].answer = lambda method, path, body: (
        (200, {"Content-Type": "application/json"}, replay)
        if method == "PUT" and path.endswith("/aliases/canary") else None)
    with pytest.raises(RegistryIntegrityError, match="replayed decision"):
        client.set_alias("credit-risk", "canary", 1, reason="r")


def test_a_denial_turned_into_an_approval_is_refused(story, make_model):
    admin = story["served"].client("admin")
    m = make_model(seed=77)
    admin.register(m.model, evidence=m.evidence)
    client = story["client"]("admin")

    def approve_it(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if status == 422 and path.endswith("/versions/3/stage"):
            document = json_body(data)["result"]
            document["allowed"], document["deny"] = True, []
            return 200, headers, json.dumps(document).encode()
        return status, headers, data

    story["proxy"].tamper = approve_it
    with pytest.raises(RegistryIntegrityError, match="outcome"):
        client.promote("credit-risk", 3, to="Production", reason="r")


def test_another_registry_key_is_refused(story, keys, tmp_path):
    story["client"]().close()  # first use: pinned
    mallory = (keys.root / "mallory.key.pub").read_text()

    def other_key(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path == "/api/v1/registry":
            document = json_body(data)
            document["publicKey"] = mallory
            data = json.dumps(document).encode()
        return status, headers, data

    story["proxy"].tamper = other_key
    with pytest.raises(RegistryIntegrityError, match="pinned at first use"):
        story["client"]()


GARBAGE = [b"not json", b"[]", b'{"record": {"name": 1}}', b'{"record": "x"}',
           b'{"records": [{"seq": true}]}', b'{"value": 5}', b'{"a": NaN}']


def test_malformed_answers_are_refused_not_crashes(story, tmp_path, run_cli):
    client = story["client"]()
    for n, garbage in enumerate(GARBAGE):
        def break_it(method: str, path: str, status: int, headers: dict[str, str],
                     data: bytes, garbage: bytes = garbage):
            if path.startswith("/api/v1/store/"):
                return status, headers, garbage
            return status, headers, data

        story["proxy"].tamper = break_it
        with pytest.raises((MalformedResponseError, VerificationError)):
            client.pull("models:/credit-risk@production", tmp_path / f"out{n}")
        r = run_cli("resolve", "models:/credit-risk@production", "--registry",
                    story["proxy"].url, env={"MLPROV_TOKEN": story["served"].tokens["reader"]})
        assert_error(r, 1)
