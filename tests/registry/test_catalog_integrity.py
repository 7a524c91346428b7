"""The catalog's rows are not trusted because they say so, on every backend.

Each attack edits the database (SQLite or PostgreSQL, through the store's own
engine) without the registry's key: a tag, a description, an indexed metric, a
tombstone, a model's name, the renames table. ``audit verify`` names each
edit; pulling refuses a deleted version brought back and a name the log does
not lead to. Undoing the edit makes the registry verify again.

And a registry made at schema 1 moves to schema 2 with ``mlprov registry
upgrade`` and is then used: tagged, searched, renamed, deleted from.
"""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import text

from mlprov.errors import MlprovError
from mlprov.registry import NotFoundError, Registry, RegistryIntegrityError
from mlprov.registry.interface import StoreError


def _sql(registry: Registry, *statements: str) -> None:
    with registry.metadata.engine.begin() as conn:  # type: ignore[attr-defined]
        for statement in statements:
            conn.execute(text(statement))


def _problems(registry: Registry) -> str:
    report = registry.verify_audit(sign_checkpoint=False)
    assert not report.ok
    return " | ".join(report.problems)


@pytest.fixture
def annotated(registry, make_model):
    """credit-risk v1, v2 tagged and described, renamed to cr, v2 deleted."""
    for _ in range(2):
        m = make_model()
        registry.register(m.model, evidence=m.evidence)
    registry.set_tag("credit-risk", "team", "search", version=1)
    registry.set_tag("credit-risk", "owner", "alice")
    registry.set_description("credit-risk", "Scores loans.")
    registry.rename_model("credit-risk", "cr", reason="shorter")
    registry.delete_version("cr", 2, reason="bad data")
    report = registry.verify_audit(sign_checkpoint=False)
    assert report.ok, report.problems
    return registry


EDITS: list[tuple[str, list[str], list[str], str]] = [
    ("a tag's value", ["UPDATE version_tags SET value = 'evil'"],
     ["UPDATE version_tags SET value = 'search'"], "cr v1: its tag(s) team differ"),
    ("a tag inserted", ["INSERT INTO model_tags (model_id, key, value, seq, updated_at) "
                        "SELECT id, 'injected', 'x', 1, 't' FROM models"],
     ["DELETE FROM model_tags WHERE key = 'injected'"], "cr: its tag(s) injected differ"),
    ("a tag deleted", ["DELETE FROM model_tags"],
     ["INSERT INTO model_tags (model_id, key, value, seq, updated_at) "
      "SELECT id, 'owner', 'alice', 1, 't' FROM models"], "cr: its tag(s) owner differ"),
    ("a description", ["UPDATE models SET description = 'forged'"],
     ["UPDATE models SET description = 'Scores loans.'"], "model cr: its description differs"),
    ("a version's description", ["UPDATE versions SET description = 'forged' WHERE version = 1"],
     ["UPDATE versions SET description = NULL WHERE version = 1"],
     "cr v1: its description differs"),
    ("an indexed metric", ["UPDATE version_metrics SET value = 0.99 WHERE key = 'auc'"],
     ["UPDATE version_metrics SET value = 0.91 WHERE key = 'auc'"],
     "cr v1: its indexed metrics differ"),
]


@pytest.mark.parametrize("edit", EDITS, ids=[e[0] for e in EDITS])
def test_an_edited_catalog_row_is_named(annotated, edit):
    _what, do, undo, problem = edit
    _sql(annotated, *do)
    assert problem in _problems(annotated)
    _sql(annotated, *undo)
    report = annotated.verify_audit(sign_checkpoint=False)
    assert report.ok, report.problems


def test_a_deleted_version_brought_back_is_refused(annotated, tmp_path):
    with annotated.metadata.engine.begin() as conn:  # type: ignore[attr-defined]
        deleted = conn.execute(text("SELECT deleted_seq FROM versions WHERE version = 2")).scalar()
    _sql(annotated, "UPDATE versions SET deleted_seq = NULL WHERE version = 2")
    assert f"cr v2: its row says it was deleted by entry None, the log says {deleted}" in \
        _problems(annotated)
    assert annotated.resolve("models:/cr/2").version == 2  # a lookup reads the row...
    with pytest.raises(RegistryIntegrityError, match="was deleted by audit entry"):
        annotated.pull("models:/cr/2", tmp_path / "out")  # ...handing out walks the log
    assert not (tmp_path / "out").exists()
    _sql(annotated, f"UPDATE versions SET deleted_seq = {deleted} WHERE version = 2")
    assert annotated.verify_audit(sign_checkpoint=False).ok


def test_a_model_renamed_in_the_database_is_refused(annotated, tmp_path):
    _sql(annotated, "UPDATE models SET name = 'forged'")
    problems = _problems(annotated)
    assert "model cr is in the log but its row is gone" in problems
    assert "model forged is in the models table but the log never registered" in problems
    with pytest.raises(MlprovError, match=r"credit-risk|the log calls the model .cr."):
        annotated.pull("models:/forged/1", tmp_path / "out")
    _sql(annotated, "UPDATE models SET name = 'cr'")
    assert annotated.verify_audit(sign_checkpoint=False).ok


@pytest.mark.parametrize("edit", [
    "DELETE FROM model_renames",
    "UPDATE model_renames SET old_name = 'other'",
    "UPDATE model_renames SET seq = 1",
])
def test_an_edited_rename_is_refused(annotated, tmp_path, edit):
    with annotated.metadata.engine.begin() as conn:  # type: ignore[attr-defined]
        row = conn.execute(text("SELECT seq, old_name FROM model_renames")).one()
    _sql(annotated, edit)
    assert "the renames table differs from the renames in the log" in _problems(annotated)
    annotated.verified.__init__()  # type: ignore[misc]  # a fresh process: nothing memoised
    with pytest.raises(RegistryIntegrityError):
        annotated.verify_version("cr", 1)
    with pytest.raises(MlprovError):
        annotated.pull("models:/cr/1", tmp_path / "out")
    _sql(annotated, "DELETE FROM model_renames",
         "INSERT INTO model_renames (seq, model_id, old_name, new_name, decision, time) "
         f"SELECT {row.seq}, m.id, '{row.old_name}', 'cr', a.decision, a.time "
         f"FROM models m, audit a WHERE m.name = 'cr' AND a.seq = {row.seq}")
    assert annotated.verify_audit(sign_checkpoint=False).ok
    annotated.verify_version("cr", 1)


# --------------------------------------------------------------------------- schema 1 -> 2


def _to_schema_1(registry: Registry) -> None:
    """Take the database back to what mlprov 0.1 (schema 1) wrote."""
    _sql(registry, "DROP TABLE model_tags", "DROP TABLE version_tags",
         "DROP TABLE version_metrics", "DROP TABLE model_renames",
         "DROP INDEX ix_versions_created", "DROP INDEX ix_aliases_alias",
         *(f"ALTER TABLE {t} DROP COLUMN {c}" for t in ("models", "versions")
           for c in ("description", "deleted_seq")),
         "UPDATE registry_state SET value = '1' WHERE key = 'schema_version'")


def test_a_registry_at_schema_1_is_upgraded_then_used(registry, make_model, run_cli,
                                                      monkeypatch, tmp_path):
    with monkeypatch.context() as patched:
        # As mlprov 0.1 registered: no eval metrics indexed (their entries name none either).
        patched.setattr("mlprov.registry._register.indexed_metrics", lambda _verdict: {})
        for _ in range(2):
            m = make_model()
            registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="ok")
    registry.set_alias("credit-risk", "canary", 2, reason="try")
    address = registry.address
    _to_schema_1(registry)
    registry.close()

    with pytest.raises(StoreError, match="schema version 1; this mlprov needs version 2"):
        Registry.open(address)
    r = run_cli("registry", "upgrade", "--registry", address, "--json")
    assert r.exit_code == 0, r.stderr
    upgrade = json.loads(r.stdout)
    assert (upgrade["fromVersion"], upgrade["toVersion"]) == (1, 2)
    assert upgrade["applied"] == ["2: the catalog: descriptions, deletions, tags, indexed eval "
                                  "metrics, renames"]

    with Registry.open(address) as reg:
        assert reg.verify_audit(sign_checkpoint=False).ok
        reg.set_tag("credit-risk", "team", "search", version=2)
        reg.set_description("credit-risk", "Upgraded.")
        assert [v.version for v in reg.search_versions(
            filter="tags.team = 'search'").items] == [2]
        assert dict(reg.version_info("credit-risk", 1).metrics) == {}  # none indexed before
        m = make_model()
        assert reg.register(m.model, evidence=m.evidence).version == 3
        assert dict(reg.version_info("credit-risk", 3).metrics) == {"auc": 0.91,
                                                                    "accuracy": 0.84}
        reg.rename_model("credit-risk", "credit-risk-eu")
        assert reg.pull("models:/credit-risk-eu@canary", tmp_path / "out").files == 2
        reg.delete_version("credit-risk-eu", 3, reason="r")
        with pytest.raises(NotFoundError, match="deleted"):
            reg.resolve("models:/credit-risk-eu/3")
        report = reg.verify_audit(sign_checkpoint=False)
        assert report.ok, report.problems
    r = run_cli("registry", "upgrade", "--registry", address)
    assert (r.exit_code, r.stdout) == (0, "schema version 2: up to date\n")


def test_a_migrated_registry_keeps_its_catalog(annotated, tmp_path):
    """`registry migrate` copies the new tables too, and the copy verifies."""
    from mlprov.registry import migrate_registry

    team_key = os.environ.get("MLPROV_REGISTRY_KEY") if annotated.location.url else None
    migrate_registry(annotated, tmp_path / "copy", key=team_key)
    with Registry.open(tmp_path / "copy") as copy:
        assert copy.verify_audit(sign_checkpoint=False).ok
        assert dict(copy.model_info("cr").tags) == {"owner": "alice"}
        assert [v.version for v in copy.search_versions("cr").items] == [1]
        with pytest.raises(NotFoundError, match="renamed to 'cr'"):
            copy.resolve("models:/credit-risk/1")
