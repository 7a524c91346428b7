"""Fixtures for keyless signing tests: local Sigstore instances, and no network at all."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlprov.statements import Statement, sha256_descriptor
from mlprov.trust import IdentityRule, Role, Trust
from tests.sigstore.fake_instance import GITHUB_ISSUER, FakeSigstore
from tests.sigstore.stub_server import OidcIssuer, StubServer, github_subject

SUBJECT = github_subject()
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_CI_VARIABLES = ("GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL",
                 "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GOOGLE_SERVICE_ACCOUNT_NAME", "BUILDKITE",
                 "GITLAB_CI", "CIRCLECI", "MLPROV_IDENTITY_TOKEN", "MLPROV_OFFLINE",
                 "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _offline_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Refuse every connection that is not to 127.0.0.1; forget the host's CI and caches."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
            raise OSError(f"test tried to reach the network: {address}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    for name in _CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # sigstore-python's TUF cache lives under the XDG directories: keep it per test.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def instance() -> FakeSigstore:
    return FakeSigstore()


@pytest.fixture
def other_instance() -> FakeSigstore:
    return FakeSigstore(name="other-instance")


@pytest.fixture
def root_file(instance: FakeSigstore, tmp_path: Path) -> Path:
    return instance.write_trusted_root(tmp_path / "trusted_root.json")


@pytest.fixture
def issuer() -> OidcIssuer:
    return OidcIssuer()


@pytest.fixture
def stub(instance: FakeSigstore, issuer: OidcIssuer) -> Iterator[StubServer]:
    with StubServer(instance, issuer) as server:
        yield server


@pytest.fixture
def trust_config(stub: StubServer, instance: FakeSigstore, tmp_path: Path) -> Path:
    """A ClientTrustConfig pointing a SigningContext at the stub."""
    path = tmp_path / "trust_config.json"
    path.write_text(json.dumps(instance.client_trust_config()))
    return path


def builder_rule(subject: str = SUBJECT, issuer: str = GITHUB_ISSUER,
                 roles: frozenset[Role] = frozenset({Role.BUILDER}), **kw: Any) -> IdentityRule:
    return IdentityRule(issuer=issuer, roles=roles, subject=subject, **kw)


def keyless_trust(root: Path | None, *rules: IdentityRule, offline: bool | None = True
                  ) -> Trust:
    return Trust(keys=(), source="test-trust", sigstore=rules or (builder_rule(),),
                 trusted_root=root, offline=offline)


def statement(digest: str = "a" * 64, predicate_type: str = "https://slsa.dev/provenance/v1"
              ) -> Statement:
    return Statement(subject=[sha256_descriptor("model", digest)],
                     predicate_type=predicate_type, predicate={"k": 1})


@pytest.fixture
def write_bundle(tmp_path: Path) -> Callable[..., Path]:
    def write(document: dict[str, Any], name: str = "s.sigstore.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(document))
        return path

    return write
