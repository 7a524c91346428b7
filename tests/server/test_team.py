"""One end-to-end run on the team backend: PostgreSQL metadata, S3 blobs, the key on the server.

The server's token tables live in the same PostgreSQL database as the registry.
"""

from __future__ import annotations

import pytest

from mlprov.registry import Registry
from mlprov.server import PermissionDeniedError, ServerConfig, token_store
from mlprov.signing import KeyType, generate_key, write_key_pair


def test_a_team_registry_behind_the_server(serve, postgres_url, s3_url, keys, make_model,
                                           approve, tmp_path, monkeypatch):
    key = tmp_path / "registry.key"
    write_key_pair(generate_key(KeyType.ECDSA_P256), key, None)
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "server-cache"))
    monkeypatch.delenv("MLPROV_REGISTRY_KEY", raising=False)
    Registry.init(postgres_url, trust=keys.trust, blobs=s3_url, key=key).close()
    served = serve(ServerConfig({"authz": {"protected_aliases": []}}), registry=postgres_url,
                   key=str(key))
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "client-cache"))
    m = make_model()
    admin = served.client("admin")
    v = admin.register(m.model, evidence=m.evidence)
    admin.promote(v.name, v.version, to="Staging", reason="r")
    served.client("reviewer").add_review(v.name, v.version, approve(m))
    admin.promote(v.name, v.version, to="Production", reason="r")
    admin.set_alias(v.name, "production", v.version, reason="r")
    pulled = served.client("reader").pull("models:/credit-risk@production", tmp_path / "out")
    assert pulled.files == 2
    assert (tmp_path / "out" / "config.json").read_bytes() == \
        (m.model / "config.json").read_bytes()
    # A refusal is a signed entry of the PostgreSQL audit log too; an admin's settings
    # change goes through the server.
    with pytest.raises(PermissionDeniedError, match="reader-user may not move"):
        served.client("reader").promote(v.name, v.version, to="Archived", reason="r")
    assert admin.set_thresholds(["test/auc>=0.8"], reason="r").kind == "registry.thresholds"
    assert served.client("reader").verify_audit(deep=True, full=True).ok
    with Registry.open(postgres_url) as reg:
        store = token_store(reg)
        assert {t.principal for t in store.list()} >= {"admin-user", "reader-user"}
        store.close()
        entries = reg.audit_log()
    assert {e["actor"] for e in entries[1:]} == {"admin-user", "reviewer-user", "reader-user"}
    [refused] = [e for e in entries if e["kind"] == "access.refused"]
    assert (refused["actor"], refused["target"]) == ("reader-user", "Archived")
