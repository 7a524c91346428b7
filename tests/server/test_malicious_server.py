"""A client facing a malicious server (or a tampering proxy) refuses what it is handed.

The client pins the registry's public key and verifies every decision, head,
audit entry and blob itself, so an edited database behind the server, a
swapped blob, a cut history, a replayed or forged decision, or another key are
refused with exit 1, and nothing is written where a model was to go.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mlprov.errors import VerificationError
from mlprov.registry import RegistryIntegrityError
from mlprov.registry.interface import BlobCorruptError
from mlprov.server import MalformedResponseError
from tests.cli.conftest import assert_error


def json_body(data: bytes) -> Any:
    return json.loads(data)


def test_an_edited_alias_row_behind_the_server_is_refused(proxied, tmp_path, run_cli):
    client = proxied["client"]()
    assert client.resolve("models:/credit-risk@production").version == 2  # pins the key
    db = Path(proxied["served"].registry) / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE aliases SET version = 1 WHERE alias = 'production'")
    with pytest.raises(RegistryIntegrityError):
        client.pull("models:/credit-risk@production", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    r = run_cli("pull", "models:/credit-risk@production", "--out", str(tmp_path / "o2"),
                "--registry", proxied["proxy"].url,
                env={"MLPROV_TOKEN": proxied["served"].tokens["reader"]})
    assert_error(r, 1)
    assert not (tmp_path / "o2").exists()


def test_a_cut_history_is_refused(proxied, tmp_path):
    client = proxied["client"]()
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

    proxied["proxy"].tamper = cut
    with pytest.raises(RegistryIntegrityError, match=r"cut|rolled back|does not hold|not the one"):
        client.pull("models:/credit-risk@production", tmp_path / "out")
    with pytest.raises(RegistryIntegrityError):
        client.head()
    report = client.verify_audit()
    assert not report.ok


def test_a_swapped_blob_is_refused_and_nothing_is_written(proxied, tmp_path):
    client = proxied["client"]()
    weights = proxied["models"][1].model / "weights.safetensors"
    digest = "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    other = proxied["models"][0].model / "weights.safetensors"

    def swap(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path == f"/api/v1/blobs/{digest}" and method == "GET":
            return status, headers, other.read_bytes()
        return status, headers, data

    proxied["proxy"].tamper = swap
    with pytest.raises(BlobCorruptError, match="does not match its digest"):
        client.pull("models:/credit-risk@production", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BlobCorruptError):
        client.load("models:/credit-risk@production")


def test_a_forged_row_in_an_answer_is_refused(proxied, tmp_path):
    client = proxied["client"]()

    def forge(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path == "/api/v1/store/models/credit-risk/aliases/production":
            document = json_body(data)
            document["record"]["version"] = 1
            data = json.dumps(document).encode()
        return status, headers, data

    proxied["proxy"].tamper = forge
    with pytest.raises(RegistryIntegrityError):
        client.pull("models:/credit-risk@production", tmp_path / "out")


def test_a_decision_not_signed_by_the_pinned_key_is_refused(proxied, keys):
    client = proxied["client"]("admin")
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

    proxied["proxy"].tamper = forge
    with pytest.raises(RegistryIntegrityError, match="pinned registry key"):
        client.set_alias("credit-risk", "canary", 1, reason="r")


def test_a_replayed_decision_is_refused(proxied):
    client = proxied["client"]("admin")
    first = client.set_alias("credit-risk", "canary", 1, reason="r")
    client.delete_alias("credit-risk", "canary", reason="r")
    replay = json.dumps({"schema": "https://mlprov.dev/schemas/registry-change/v1",
                         **first.to_json_dict()}).encode()
    proxied["proxy"].answer = lambda method, path, body: (
        (200, {"Content-Type": "application/json"}, replay)
        if method == "PUT" and path.endswith("/aliases/canary") else None)
    with pytest.raises(RegistryIntegrityError, match="replayed decision"):
        client.set_alias("credit-risk", "canary", 1, reason="r")


def test_a_denial_turned_into_an_approval_is_refused(proxied, make_model):
    admin = proxied["served"].client("admin")
    m = make_model(seed=77)
    admin.register(m.model, evidence=m.evidence)
    client = proxied["client"]("admin")

    def approve_it(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if status == 422 and path.endswith("/versions/3/stage"):
            document = json_body(data)["result"]
            document["allowed"], document["deny"] = True, []
            return 200, headers, json.dumps(document).encode()
        return status, headers, data

    proxied["proxy"].tamper = approve_it
    with pytest.raises(RegistryIntegrityError, match="outcome"):
        client.promote("credit-risk", 3, to="Production", reason="r")


def test_another_registry_key_is_refused(proxied, keys, tmp_path):
    proxied["client"]().close()  # first use: pinned
    mallory = (keys.root / "mallory.key.pub").read_text()

    def other_key(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path == "/api/v1/registry":
            document = json_body(data)
            document["publicKey"] = mallory
            data = json.dumps(document).encode()
        return status, headers, data

    proxied["proxy"].tamper = other_key
    with pytest.raises(RegistryIntegrityError, match="pinned at first use"):
        proxied["client"]()


GARBAGE = [b"not json", b"[]", b'{"record": {"name": 1}}', b'{"record": "x"}',
           b'{"records": [{"seq": true}]}', b'{"value": 5}', b'{"a": NaN}']


def test_malformed_answers_are_refused_not_crashes(proxied, tmp_path, run_cli):
    client = proxied["client"]()
    for n, garbage in enumerate(GARBAGE):
        def break_it(method: str, path: str, status: int, headers: dict[str, str],
                     data: bytes, garbage: bytes = garbage):
            if path.startswith("/api/v1/store/"):
                return status, headers, garbage
            return status, headers, data

        proxied["proxy"].tamper = break_it
        with pytest.raises((MalformedResponseError, VerificationError)):
            client.pull("models:/credit-risk@production", tmp_path / f"out{n}")
        r = run_cli("resolve", "models:/credit-risk@production", "--registry",
                    proxied["proxy"].url, env={"MLPROV_TOKEN": proxied["served"].tokens["reader"]})
        assert_error(r, 1)


def test_a_cached_digest_answered_differently_later_changes_nothing(proxied):
    client = proxied["client"]()
    first = client.load("models:/credit-risk@production")
    decisions = client.local.metadata.decisions
    blobs = client.local.blobs.memory
    assert len(decisions) and len(blobs)  # what the load verified is kept by digest

    def other_bytes(method: str, path: str, status: int, headers: dict[str, str],
                    data: bytes):
        if method == "GET" and path.startswith("/api/v1/store/decisions/"):
            return status, headers, json.dumps(
                {"value": base64.b64encode(b"another decision").decode()}).encode()
        if method == "GET" and path.startswith("/api/v1/blobs/"):
            return status, headers, b"another blob"
        return status, headers, data

    proxied["proxy"].tamper = other_bytes
    proxied["proxy"].log.clear()
    again = client.load("models:/credit-risk@production")
    assert (again.version, again.digest) == (first.version, first.digest)
    assert client.resolve("models:/credit-risk@production").version == 2
    asked = [path for _, path in proxied["proxy"].log]
    assert not [p for p in asked if p.startswith(("/api/v1/blobs/", "/api/v1/store/decisions/"))]
    # The server does answer those digests with other bytes: a client that has not
    # verified them yet refuses them.
    with pytest.raises(RegistryIntegrityError, match="decision"):
        proxied["client"]().resolve("models:/credit-risk@production")


def test_a_head_swapped_between_two_resolves_is_seen(proxied):
    client = proxied["client"]()
    heads: list[bytes] = []

    def keep(method: str, path: str, status: int, headers: dict[str, str], data: bytes):
        if path == "/api/v1/store/head":
            heads.append(data)
        return status, headers, data

    proxied["proxy"].tamper = keep
    assert client.resolve("models:/credit-risk@production").version == 2
    before = client.head()
    admin = proxied["served"].client("admin")  # behind the proxy's back
    admin.set_alias("credit-risk", "production", 1, reason="back")
    assert client.resolve("models:/credit-risk@production").version == 1
    assert client.head().seq > before.seq
    assert heads[-1] != heads[0]

    # The server swaps back to the head of before the move: refused, as the alias
    # row names a decision that head does not sign (no head is kept from before).
    proxied["proxy"].tamper = lambda method, path, status, headers, data: (
        (status, headers, heads[0]) if path == "/api/v1/store/head" else (status, headers, data))
    with pytest.raises(RegistryIntegrityError):
        client.resolve("models:/credit-risk@production")
