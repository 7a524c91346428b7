"""A team registry: metadata in PostgreSQL, blobs in S3 (SeaweedFS), real servers (#12).

Machines are played by separate local caches (``MLPROV_CACHE_HOME``): the one that
creates and changes the registry names its key; the others only resolve and pull.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlprov.errors import InputError
from mlprov.registry import Registry, RegistryError
from mlprov.registry._facts import RegistryIntegrityError
from mlprov.signing import KeyType, generate_key, write_key_pair
from tests.cli.conftest import assert_error

# --------------------------------------------------------------------------- the registry


@pytest.fixture
def team(tmp_path: Path, postgres_url: str, s3_url: str, keys, monkeypatch: pytest.MonkeyPatch
         ) -> dict[str, object]:
    """A team registry made on the 'admin' machine, with its key outside the database."""
    key = tmp_path / "registry.key"
    write_key_pair(generate_key(KeyType.ECDSA_P256), key, None)
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "admin-cache"))
    monkeypatch.delenv("MLPROV_REGISTRY_KEY", raising=False)
    with Registry.init(postgres_url, trust=keys.trust, blobs=s3_url, key=key,
                       thresholds=["auc>=0.7"]):
        pass
    return {"url": postgres_url, "blobs": s3_url, "key": key}


def test_a_team_registry_end_to_end(team, tmp_path: Path, make_model, approve,
                                    monkeypatch: pytest.MonkeyPatch):
    url, key = str(team["url"]), team["key"]
    m = make_model()
    with Registry.open(url, key=key) as reg:  # CI, with the key
        assert reg.location.describe().startswith("postgresql+psycopg://")
        registered = reg.register(m.model, evidence=m.evidence)
        reg.promote("credit-risk", registered.version, to="Staging", reason="eval")
        reg.add_review("credit-risk", 1, approve(m))
        reg.promote("credit-risk", 1, to="Production", reason="ship")
        reg.set_alias("credit-risk", "production", 1, reason="serve")
        assert reg.describe()["thresholds"] == ["auc>=0.7"]
        assert reg.verify_audit(deep=True).ok
    # A serving host: another cache, no key. It resolves, pulls and loads, verified.
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "serving-cache"))
    with Registry.open(url) as reader:
        assert reader.resolve("models:/credit-risk@production").version == 1
        pulled = reader.pull("models:/credit-risk@production", tmp_path / "serving")
        assert (pulled.path / "weights.safetensors").read_bytes() == \
            (m.model / "weights.safetensors").read_bytes()
        loaded = reader.load("models:/credit-risk@production")
        assert loaded.version == 1
        with pytest.raises(RegistryError, match="needs its private key"):
            reader.set_alias("credit-risk", "champion", 1, reason="no key here")
    # The database names another key later: every machine that pinned the old one refuses.
    from sqlalchemy import create_engine, text

    other = tmp_path / "other.key"
    write_key_pair(generate_key(KeyType.ECDSA_P256), other, None)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE registry_state SET value = :v WHERE key = 'public_key'"),
                     {"v": Path(f"{other}.pub").read_text()})
    engine.dispose()
    with pytest.raises(RegistryIntegrityError, match="pinned at first use"):
        Registry.open(url)


def test_team_registry_on_the_cli(team, tmp_path: Path, run_cli, make_model,
                                  monkeypatch: pytest.MonkeyPatch):
    url = str(team["url"])
    m = make_model()
    monkeypatch.setenv("MLPROV_REGISTRY", url)
    monkeypatch.setenv("MLPROV_REGISTRY_KEY", str(team["key"]))
    r = run_cli("register", str(m.model), "--evidence", str(m.evidence), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["uri"] == "models:/credit-risk/1"
    r = run_cli("promote", "credit-risk", "1", "--to", "Staging", "--reason", "x")
    assert r.exit_code == 0, r.stderr
    r = run_cli("registry", "show", "--json")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["home"].startswith("postgresql+psycopg://") and "@" in shown["home"]
    monkeypatch.delenv("MLPROV_REGISTRY_KEY")
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "laptop"))
    r = run_cli("resolve", "models:/credit-risk/Staging", "--registry", url)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "models:/credit-risk/1"
    assert_error(run_cli("promote", "credit-risk", "1", "--to", "Production", "--reason", "x"),
                 3, "needs its private key", "MLPROV_REGISTRY_KEY")


def test_team_init_refuses_what_it_cannot_do(tmp_path: Path, postgres_url: str, keys,
                                             s3_url: str, run_cli,
                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.delenv("MLPROV_REGISTRY_KEY", raising=False)
    with pytest.raises(InputError, match="needs a blob store"):
        Registry.init(postgres_url, trust=keys.trust)
    with pytest.raises(InputError, match="key is not kept in its database"):
        Registry.init(postgres_url, trust=keys.trust, blobs=s3_url)
    with pytest.raises(InputError, match="--blobs is for a team registry"):
        Registry.init(tmp_path / "embedded", trust=keys.trust, blobs=s3_url)
    key = tmp_path / "k.key"
    write_key_pair(generate_key(KeyType.ED25519), key, None)
    r = run_cli("registry", "init", "--registry", postgres_url, "--blobs", s3_url,
                "--trust", str(keys.trust), "--key", str(key), "--json")
    assert r.exit_code == 0, r.stderr
    assert_error(run_cli("registry", "init", "--registry", postgres_url, "--blobs", s3_url,
                         "--trust", str(keys.trust), "--key", str(key)),
                 3, "a registry already exists")
