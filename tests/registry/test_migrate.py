"""`mlprov registry migrate`: a registry moves between backends with its whole history.

Every direction on real servers: embedded -> team (PostgreSQL + SeaweedFS),
team -> embedded, and each to a new one of its kind. The copy is the same
registry: same head, same log, same decisions, verified with the source's key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlprov.errors import InputError
from mlprov.registry import PolicyDeniedError, Registry, RegistryError, migrate_registry
from mlprov.registry._sql import audit


@pytest.fixture(params=["to-embedded", "to-team"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """Where a copy goes: a new directory, or an empty database and a fresh S3 prefix."""
    if request.param == "to-embedded":
        return str(tmp_path / "copy"), None
    server = request.getfixturevalue("postgres_server")
    context = server.database()
    url = context.__enter__()
    request.addfinalizer(lambda: context.__exit__(None, None, None))
    s3 = request.getfixturevalue("s3_url")
    return url, f"{s3}-copy-{uuid.uuid4().hex[:8]}"


def _history(registry: Registry, make_model, approve) -> None:
    first, second = make_model(), make_model()
    registry.register(first.model, evidence=first.evidence)
    registry.register(second.model, evidence=second.evidence)
    registry.add_review("credit-risk", 1, approve(first))
    registry.add_review("credit-risk", 2, approve(second))
    for version in (1, 2):
        registry.promote("credit-risk", version, to="Staging", reason="eval passed")
        registry.promote("credit-risk", version, to="Production", reason="approved")
    registry.set_alias("credit-risk", "production", 1, reason="first release")
    registry.set_alias("credit-risk", "production", 2, reason="second release")
    registry.rollback("credit-risk", "production", reason="v2 misbehaves")
    registry.set_thresholds(["auc>=0.8"], reason="seed metrics")
    registry.create_deployment("credit-stack", ["models:/credit-risk/1"], reason="stack")
    third = make_model()
    registry.register(third.model, evidence=third.evidence)
    with pytest.raises(PolicyDeniedError):  # a denial is history too
        registry.set_alias("credit-risk", "production", 3, reason="not promoted")


def test_a_registry_moves_with_its_whole_history(registry, target, make_model, approve,
                                                 tmp_path, monkeypatch):
    _history(registry, make_model, approve)
    to, blobs = target
    key = registry.location.key_file()  # the source's: its directory's, or $MLPROV_REGISTRY_KEY
    report = migrate_registry(registry, to, blobs=blobs, key=key)
    assert report.verified and report.rows["audit"] == report.head_seq

    with Registry.open(to, key=key) as copy:
        assert copy.registry_id == registry.registry_id
        assert copy.audit_log() == registry.audit_log()
        assert copy.head().entry_hash == registry.head().entry_hash
        assert copy.verify_audit(deep=True, sign_checkpoint=False).ok
        here, there = (r.resolve("models:/credit-risk@production") for r in (registry, copy))
        assert there.record == here.record and there.decision == here.decision
        assert there.version == 1
        pulled = copy.pull("models:/credit-risk/2", tmp_path / "pulled")
        assert pulled.resolved.version == 2
        assert [d["name"] for d in copy.list_deployments()] == ["credit-stack"]
        # The copy is the registry: it takes new changes, signed with the same key,
        # and the chain goes on from where the source's ended.
        result = copy.set_alias("credit-risk", "champion", 2, reason="on the new backend")
        assert result.seq == report.head_seq + 1
        assert copy.verify_audit(sign_checkpoint=False).ok
    assert registry.verify_audit(sign_checkpoint=False).head_seq == report.head_seq


def test_a_source_that_does_not_verify_is_not_copied(registry, make_model, tmp_path):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    with registry.metadata.write() as tx:  # a row edited outside the registry
        tx.conn.execute(  # type: ignore[attr-defined]
            audit.update().where(audit.c.seq == 2).values(kind="model.forged"))
    target = tmp_path / "copy"
    with pytest.raises(RegistryError, match="does not verify; nothing was copied"):
        migrate_registry(registry, target)
    assert not target.exists()


def test_bad_targets_are_refused_before_anything_is_written(registry, tmp_path, run_cli):
    with pytest.raises(InputError, match="being migrated"):
        migrate_registry(registry, registry.address)
    bad = run_cli("registry", "migrate", "--registry", registry.address, "--to",
                  "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert bad.exit_code == 2, bad.stderr
    assert "needs a blob store" in bad.stderr and "Traceback" not in bad.stderr
    wrong = run_cli("registry", "migrate", "--registry", registry.address, "--to",
                    str(tmp_path / "dir"), "--blobs", "s3://bucket/prefix")
    assert wrong.exit_code == 2 and "--blobs is for a team target" in wrong.stderr
    assert not (tmp_path / "dir").exists()


@pytest.fixture
def embedded(tmp_path: Path, keys) -> Iterator[Registry]:
    """One embedded registry (for what edits files or checks only the CLI's shape)."""
    with Registry.init(tmp_path / "registry", trust=keys.trust) as reg:
        yield reg


def test_a_corrupted_blob_stops_the_migration_and_leaves_no_target(embedded, make_model,
                                                                   tmp_path):
    registry = embedded
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    digest = registry.get_version("credit-risk", 1).evidence_digest
    path = registry.blobs._path(digest)  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b" ")
    target = tmp_path / "copy"
    with pytest.raises(Exception, match="does not match its digest"):
        migrate_registry(registry, target)
    assert not target.exists()


def test_migrate_on_the_cli(embedded, make_model, tmp_path, run_cli):
    registry = embedded
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    done = run_cli("registry", "migrate", "--registry", registry.address, "--to",
                   str(tmp_path / "copy"), "--json")
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["verified"] is True and document["rows"]["versions"] == 1
    again = run_cli("registry", "migrate", "--registry", registry.address, "--to",
                    str(tmp_path / "copy"))
    assert again.exit_code == 3 and "already exists" in again.stderr
    shown = run_cli("audit", "verify", "--registry", str(tmp_path / "copy"))
    assert shown.exit_code == 0, shown.output
