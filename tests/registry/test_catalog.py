"""The catalog through the Python API, on every backend (issue 13 items 1-3 and 8).

Descriptions and tags (audited with the old and new value, gated only when the
config names a policy), search (filters, orders, page tokens), renames (the old
name fails naming the new one; versions, aliases, reviews and tags follow;
what was signed keeps verifying) and deletions (tombstones: not resolved or
pulled, still verifying). Every test ends with ``audit verify`` intact.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from pathlib import Path

import pytest

from mlprov.canonical import loads_strict
from mlprov.errors import ArgumentError, InputError
from mlprov.registry import (
    FilterError,
    ModelInfo,
    NotFoundError,
    Page,
    PageTokenError,
    PolicyDeniedError,
    Registry,
    VersionInfo,
)
from mlprov.registry._config import DEFAULT_CONFIG
from tests.registry.conftest import GOOD_METRICS


def _metrics(auc: float) -> dict[str, object]:
    return {"metrics": {**GOOD_METRICS["metrics"], "test/auc": auc},  # type: ignore[dict-item]
            "slices": GOOD_METRICS["slices"]}


def _ok(registry: Registry) -> None:
    report = registry.verify_audit(sign_checkpoint=False)
    assert report.ok, report.problems


def _entries(registry: Registry, kind: str) -> list[dict[str, object]]:
    return [e for e in registry.audit_log() if e["kind"] == kind]


def _change(registry: Registry, digest: str) -> dict[str, object]:
    """The change record inside a signed decision (a DSSE payload in a Sigstore bundle)."""
    import base64

    bundle = loads_strict(registry.decision(digest), what="decision")
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    change = statement["predicate"]["https://mlprov.dev/registry/change/v1"]
    assert isinstance(change, dict)
    return change


# --------------------------------------------------------------------------- descriptions, tags


def test_descriptions_and_tags_are_signed_audited_changes(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    result = registry.set_description("credit-risk", "Scores loan applications.",
                                      reason="document it", actor="alice")
    assert (result.kind, result.allowed, result.details["from"], result.details["to"]) == (
        "model.describe", True, None, "Scores loan applications.")
    assert result.policy_uri.endswith("/rules/ungated/v1")
    registry.set_description("credit-risk", "Retrained on Q3.\nSee the card.", version=1,
                             actor="bob")
    registry.set_tag("credit-risk", "team", "search", actor="carol")
    registry.set_tag("credit-risk", "team", "ranking", actor="carol", reason="moved")
    registry.set_tag("credit-risk", "dataset", "2026-q3", version=1)
    registry.set_tag("credit-risk", "empty", version=1)
    deleted = registry.delete_tag("credit-risk", "dataset", version=1, actor="dave")

    info = registry.model_info("credit-risk")
    assert isinstance(info, ModelInfo)
    assert (info.description, dict(info.tags), info.latest_version) == (
        "Scores loan applications.", {"team": "ranking"}, 1)
    version = registry.version_info("credit-risk", 1)
    assert isinstance(version, VersionInfo)
    assert (version.description, dict(version.tags)) == ("Retrained on Q3.\nSee the card.",
                                                         {"empty": ""})
    assert dict(version.metrics) == {"auc": 0.91, "accuracy": 0.84}  # the verified eval's
    assert version.uri == "models:/credit-risk/1" and version.aliases == ()

    # who, when, the old and the new value: in the hashed entries and the signed decisions
    tags = _entries(registry, "model.tag")
    assert [(e["actor"], e["details"]["key"], e["details"]["from"], e["details"]["to"])
            for e in tags] == [("carol", "team", None, "search"),
                               ("carol", "team", "search", "ranking")]
    assert all(isinstance(e["time"], str) and e["time"] for e in tags)
    assert tags[1]["reason"] == "moved"
    [removed] = [e for e in _entries(registry, "version.tag") if e["actor"] == "dave"]
    assert (removed["version"], removed["details"]["from"], removed["details"]["to"]) == (
        1, "2026-q3", None)
    change = _change(registry, deleted.decision)
    assert (change["kind"], change["key"], change["from"], change["to"], change["actor"]) == (
        "version.tag", "dataset", "2026-q3", None, "dave")
    assert [e["details"]["to"] for e in _entries(registry, "model.describe")] == [
        "Scores loan applications."]
    assert {"model.tag", "version.tag", "model.describe", "version.describe"} <= {
        e["kind"] for e in registry.events()}

    shown = registry.show_model("credit-risk")  # models show --json
    assert (shown["description"], shown["tags"]) == ("Scores loan applications.",
                                                     {"team": "ranking"})
    assert (shown["versions"][0]["description"], shown["versions"][0]["tags"]) == (
        "Retrained on Q3.\nSee the card.", {"empty": ""})
    cleared = registry.set_description("credit-risk", "")
    assert cleared.details["to"] is None and registry.model_info("credit-risk").description \
        is None
    _ok(registry)


def test_records_are_frozen(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.set_tag("credit-risk", "team", "search")
    info = registry.model_info("credit-risk")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.description = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        info.tags["team"] = "x"  # type: ignore[index]
    assert hash(info) == hash(registry.model_info("credit-risk"))
    page = registry.search_versions("credit-risk")
    assert isinstance(page, Page) and isinstance(page.items, tuple)
    assert page.items[0].to_json_dict()["metrics"] == {"accuracy": 0.84, "auc": 0.91}


def test_annotation_inputs_are_checked_before_anything_is_recorded(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.set_tag("credit-risk", "team", "search")
    registry.set_description("credit-risk", "d")
    head = registry.head().seq
    for call, error, words in [
        (lambda: registry.set_tag("ghost", "team", "x"), NotFoundError, "no model named 'ghost'"),
        (lambda: registry.set_tag("credit-risk", "team", "x", version=9), NotFoundError,
         "has no version 9"),
        (lambda: registry.set_tag("credit-risk", "bad=key", "x"), InputError, "invalid tag key"),
        (lambda: registry.set_tag("credit-risk", " lead", "x"), InputError, "invalid tag key"),
        (lambda: registry.set_tag("credit-risk", "k", "x" * 1001), InputError, "longer than 1000"),
        (lambda: registry.set_tag("credit-risk", "k", "a\nb"), InputError, "control character"),
        (lambda: registry.set_tag("credit-risk", "team", "search"), InputError, "already has"),
        (lambda: registry.delete_tag("credit-risk", "nope"), NotFoundError, "has no tag 'nope'"),
        (lambda: registry.delete_tag("credit-risk", "team", version=1), NotFoundError,
         "has no tag"),
        (lambda: registry.set_description("credit-risk", "d"), InputError, "already has that"),
        (lambda: registry.set_description("credit-risk", "\x1b[2J"), InputError, "control"),
        (lambda: registry.set_description("credit-risk", "x" * 20001), InputError, "longer"),
        (lambda: registry.set_description("bad name!", "x"), InputError, "invalid model name"),
        (lambda: registry.model_info("ghost"), NotFoundError, "no model named"),
        (lambda: registry.version_info("credit-risk", 2), NotFoundError, "no version 2"),
    ]:
        with pytest.raises(error) as caught:
            call()
        assert words in str(caught.value), (words, str(caught.value))
        assert "\n" not in str(caught.value)
    for bad in ({"version": 0}, {"version": "1"}, {"reason": 3}, {"actor": b"x"}):
        with pytest.raises(ArgumentError):
            registry.set_tag("credit-risk", "team", "x", **bad)
    with pytest.raises(ArgumentError):
        registry.set_tag("credit-risk", "team", 3)  # type: ignore[arg-type]
    assert registry.head().seq == head  # nothing was recorded
    for n in range(99):
        registry.set_tag("credit-risk", f"k{n}", "v")
    with pytest.raises(InputError, match="has 100 tags already"):
        registry.set_tag("credit-risk", "one-more", "v")
    _ok(registry)


def _gate(registry: Registry, tmp_path: Path, **changes: str) -> None:
    config = tmp_path / "mlprov.toml"
    lines = "".join(f'{k} = "{v}"\n' for k, v in changes.items())
    config.write_text(DEFAULT_CONFIG + f"\n[gates.changes]\n{lines}")
    registry.set_config(config, reason="gate catalog changes")


def test_a_policy_named_under_gates_changes_gates_them(registry, make_model, tmp_path):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    _gate(registry, tmp_path, tags="production.rego", rename="staging.rego")
    assert registry.describe()["gates"]["changes"] == {"tags": "production.rego",
                                                       "rename": "staging.rego"}
    with pytest.raises(PolicyDeniedError) as caught:
        registry.set_tag("credit-risk", "team", "search", version=1)
    denied = caught.value.result
    assert not denied.allowed and denied.deny and denied.policy_uri.endswith("production.rego")
    [entry] = _entries(registry, "version.tag")
    assert entry["accepted"] is False  # the denial is audited
    assert dict(registry.version_info("credit-risk", 1).tags) == {}
    with pytest.raises(PolicyDeniedError, match=r"model\.tag of credit-risk: needs 1 approval"):
        registry.set_tag("credit-risk", "team", "search")  # a model's: each version judged
    registry.set_description("credit-risk", "descriptions stay ungated")
    with pytest.raises(InputError, match="unknown change 'tag'"):
        _gate(registry, tmp_path, tag="none")
    _gate(registry, tmp_path, tags="none")
    allowed = registry.set_tag("credit-risk", "team", "search", version=1)
    assert allowed.policy_uri.endswith("/rules/ungated/v1")
    _ok(registry)


# --------------------------------------------------------------------------- search


@pytest.fixture
def catalog(registry, make_model):
    """credit-risk v1-v4 (test/auc .80 .86 .90 .95), ranker-a, ranker-b; tags, stage, alias."""
    for auc in (0.80, 0.86, 0.90, 0.95):
        m = make_model(metrics=_metrics(auc))
        registry.register(m.model, evidence=m.evidence)
    for name in ("ranker-a", "ranker-b"):
        m = make_model(name)
        registry.register(m.model, evidence=m.evidence)
    registry.set_tag("credit-risk", "team", "search", version=2)
    registry.set_tag("credit-risk", "team", "search", version=3)
    registry.set_tag("ranker-a", "team", "search")
    registry.set_tag("ranker-b", "team", "ads")
    registry.promote("credit-risk", 3, to="Staging", reason="eval passed")
    registry.set_alias("credit-risk", "canary", 2, reason="try v2")
    registry.set_description("credit-risk", "Retrained", version=4)
    return registry


def _numbers(page: Page[VersionInfo]) -> list[int]:
    return [v.version for v in page.items]


def test_search_versions_by_every_field(catalog):
    reg = catalog
    search = reg.search_versions
    assert _numbers(search("credit-risk")) == [4, 3, 2, 1]  # newest first
    assert _numbers(search("credit-risk", filter="metrics.`test/auc` > 0.85")) == [4, 3, 2]
    assert _numbers(search("credit-risk", filter="metrics.`test/auc` > 0.85 AND "
                                                 "tags.team = 'search'")) == [3, 2]
    assert _numbers(search("credit-risk", filter="stage = 'staging'")) == [3]
    assert _numbers(search("credit-risk", filter="alias = 'canary'")) == [2]
    assert _numbers(search("credit-risk", filter="version IN (1, 4)")) == [4, 1]
    assert _numbers(search("credit-risk", filter="description LIKE 'Re%'")) == [4]
    v1 = reg.version_info("credit-risk", 1)
    assert _numbers(search("credit-risk", filter=f"identity = '{v1.identity}'")) == [1]
    assert _numbers(search("credit-risk", filter=f"root_digest = '{v1.root_digest}'")) == [1]
    v3 = reg.version_info("credit-risk", 3)
    assert _numbers(search("credit-risk", filter=f"created_at >= '{v3.created_at}'")) == [4, 3]
    assert [v.aliases for v in search("credit-risk", filter="version = 2").items] == [
        ("canary",)]

    everywhere = search(filter="name LIKE 'ranker-%'")  # versions of every model
    assert [(v.name, v.version) for v in everywhere.items] == [("ranker-a", 1), ("ranker-b", 1)]
    assert [v.name for v in search(filter="name ILIKE 'RANKER-%'").items] == ["ranker-a",
                                                                             "ranker-b"]
    assert search(filter="name LIKE 'RANKER-%'").items == ()  # LIKE is case-sensitive
    assert [(v.name, v.version) for v in search(filter="tags.team = 'search'").items] == [
        ("credit-risk", 3), ("credit-risk", 2)]
    digest = v1.root_digest
    assert [v.uri for v in search(filter=f"digest = '{digest}'").items] == [
        "models:/credit-risk/1"]

    assert _numbers(search("credit-risk", order_by="metrics.`test/auc`")) == [1, 2, 3, 4]
    assert _numbers(search("credit-risk", order_by=["created_at DESC"])) == [4, 3, 2, 1]
    assert [v.name for v in search(order_by="name DESC").items] == [
        "ranker-b", "ranker-a", "credit-risk", "credit-risk", "credit-risk", "credit-risk"]


def test_search_models(catalog):
    reg = catalog
    assert [m.name for m in reg.search_models().items] == ["credit-risk", "ranker-a",
                                                           "ranker-b"]
    found = reg.search_models("name LIKE 'ranker-%' AND tags.team = 'search'")
    assert [(m.name, dict(m.tags)) for m in found.items] == [("ranker-a", {"team": "search"})]
    assert [m.name for m in reg.search_models("stage = 'Staging'").items] == ["credit-risk"]
    assert [m.name for m in reg.search_models("alias = 'canary'").items] == ["credit-risk"]
    [model] = reg.search_models("name = 'credit-risk'").items
    assert (model.latest_version, dict(model.aliases)) == (4, {"canary": 2})
    assert [m.name for m in reg.search_models(order_by="created_at DESC").items] == [
        "ranker-b", "ranker-a", "credit-risk"]


def test_pages_and_their_tokens(catalog, keys, tmp_path):
    reg = catalog
    seen, token, pages = [], None, 0
    while True:
        page = reg.search_versions("credit-risk", filter="metrics.auc > 0", limit=1,
                                   order_by="metrics.`test/auc` DESC", page_token=token)
        seen.extend(_numbers(page))
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert (seen, pages) == ([4, 3, 2, 1], 4)
    first = reg.search_versions("credit-risk", limit=2)
    assert first.next_page_token is not None
    assert _numbers(reg.search_versions("credit-risk", limit=2,
                                        page_token=first.next_page_token)) == [2, 1]
    models = reg.search_models(limit=2)
    assert [m.name for m in reg.search_models(limit=2, page_token=models.next_page_token)
            .items] == ["ranker-b"]

    token = first.next_page_token
    bad_cases = [
        (lambda: reg.search_versions("credit-risk", filter="version > 0", limit=2,
                                     page_token=token), "another query"),
        (lambda: reg.search_versions("ranker-a", limit=2, page_token=token), "another query"),
        (lambda: reg.search_versions("credit-risk", limit=2, order_by="created_at",
                                     page_token=token), "another query"),
        (lambda: reg.search_models(limit=2, page_token=token), "another query"),
        (lambda: reg.search_versions("credit-risk", limit=2, page_token=token[:-2] + "AA"),
         "not issued by this registry"),
        (lambda: reg.search_versions("credit-risk", limit=2, page_token="garbage"),
         "malformed"),
        (lambda: reg.search_versions("credit-risk", limit=2, page_token="a.b.c"), "malformed"),
    ]
    for call, words in bad_cases:
        with pytest.raises(PageTokenError, match=words) as caught:
            call()
        assert caught.value.exit_code == 2 and "--page-token" in caught.value.diagnostics()
    other = Registry.init(tmp_path / "other", trust=keys.trust)  # another registry's token
    with pytest.raises(PageTokenError, match="not issued by this registry"):
        other.search_versions("credit-risk", limit=2, page_token=token)
    other.close()


def test_bad_searches(catalog):
    reg = catalog
    with pytest.raises(FilterError, match="at position 7") as caught:
        reg.search_versions("credit-risk", filter="stage ~ 'x'")
    assert caught.value.exit_code == 2
    with pytest.raises(FilterError, match="cannot order versions by stage"):
        reg.search_versions(order_by="stage")
    with pytest.raises(FilterError, match="versions"):
        reg.search_models("metrics.auc > 1")
    with pytest.raises(NotFoundError, match="no model named 'ghost'"):
        reg.search_versions("ghost")
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": True}, {"filter": 3},
                {"order_by": [1]}, {"page_token": 3}):
        with pytest.raises(ArgumentError):
            reg.search_versions("credit-risk", **bad)


# --------------------------------------------------------------------------- renames


def test_rename_moves_everything_and_the_old_name_fails_naming_the_new(registry, make_model,
                                                                       approve, tmp_path):
    first, second = make_model(), make_model()
    for m in (first, second):
        registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="eval passed")
    registry.add_review("credit-risk", 1, approve(first))
    registry.set_alias("credit-risk", "canary", 2, reason="try v2")
    registry.set_tag("credit-risk", "team", "search")
    registry.set_tag("credit-risk", "dataset", "q3", version=1)

    result = registry.rename_model("credit-risk", "credit-risk-eu", reason="EU only",
                                   actor="alice")
    assert (result.kind, result.name, result.details["from"], result.details["to"]) == (
        "model.rename", "credit-risk-eu", "credit-risk", "credit-risk-eu")
    assert result.policy_uri.endswith("/rules/registry-owner/v1")

    for uri in ("models:/credit-risk/1", "models:/credit-risk@canary",
                "models:/credit-risk/latest"):
        with pytest.raises(NotFoundError) as caught:
            registry.resolve(uri)
        assert "renamed to 'credit-risk-eu'" in str(caught.value)
        assert "credit-risk-eu" in caught.value.diagnostics()
    for call in (lambda: registry.promote("credit-risk", 1, to="Archived", reason="r"),
                 lambda: registry.search_versions("credit-risk"),
                 lambda: registry.set_tag("credit-risk", "k", "v"),
                 lambda: registry.pull("models:/credit-risk/1", tmp_path / "nope")):
        with pytest.raises(NotFoundError, match="renamed to 'credit-risk-eu'"):
            call()

    # stage, alias, review, tags and metrics followed; the version re-verifies and moves
    assert registry.resolve("models:/credit-risk-eu@canary").version == 2
    assert registry.resolve("models:/credit-risk-eu/Staging").version == 1
    assert dict(registry.model_info("credit-risk-eu").tags) == {"team": "search"}
    assert dict(registry.version_info("credit-risk-eu", 1).tags) == {"dataset": "q3"}
    assert registry.verify_version("credit-risk-eu", 1).verdict.name == "credit-risk"
    registry.promote("credit-risk-eu", 1, to="Production", reason="approved")  # review counts
    registry.set_alias("credit-risk-eu", "canary", 1, reason="back to v1")
    assert [c.version for c in registry.alias_history("credit-risk-eu", "canary")] == [2, 1]
    rolled = registry.rollback("credit-risk-eu", "canary", reason="v1 regressed")
    assert rolled.version == 2  # the history before the rename counts
    pulled = registry.pull("models:/credit-risk-eu@canary", tmp_path / "canary")
    assert pulled.resolved.name == "credit-risk-eu" and pulled.files == 2
    assert registry.load("models:/credit-risk-eu/1").version == 1
    assert registry.pull("models:/credit-risk-eu/Production", tmp_path / "prod").files == 2

    # the history keeps the old name
    assert {e["kind"] for e in registry.audit_log(name="credit-risk")} >= {
        "model.register", "stage.transition", "alias.set", "model.tag"}
    [entry] = _entries(registry, "model.rename")
    assert (entry["name"], entry["actor"], entry["details"]["from"]) == (
        "credit-risk-eu", "alice", "credit-risk")

    # the old name is free again: a model whose provenance names it is a new model
    third = make_model()
    new = registry.register(third.model, evidence=third.evidence)
    assert (new.name, new.version) == ("credit-risk", 1)
    assert registry.resolve("models:/credit-risk/1").record.root_digest == new.root_digest
    assert [m.name for m in registry.search_models().items] == ["credit-risk", "credit-risk-eu"]
    _ok(registry)


def test_rename_twice_and_bad_renames(registry, make_model, tmp_path):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    other = make_model("other")
    registry.register(other.model, evidence=other.evidence)
    registry.rename_model("credit-risk", "b")
    registry.rename_model("b", "c")
    for old in ("credit-risk", "b"):
        with pytest.raises(NotFoundError, match="renamed to 'c'"):
            registry.resolve(f"models:/{old}/1")
    assert registry.pull("models:/c/1", tmp_path / "c").files == 2
    registry.verify_version("c", 1, deep=True)
    head = registry.head().seq
    for call, error, words in [
        (lambda: registry.rename_model("c", "other"), InputError, "'other' exists"),
        (lambda: registry.rename_model("c", "c"), InputError, "already called"),
        (lambda: registry.rename_model("ghost", "x"), NotFoundError, "no model named 'ghost'"),
        (lambda: registry.rename_model("b", "x"), NotFoundError, "renamed to 'c'"),
        (lambda: registry.rename_model("c", "bad name"), InputError, "invalid model name"),
    ]:
        with pytest.raises(error, match=words):
            call()
    assert registry.head().seq == head
    registry.delete_model("other", reason="gone")
    with pytest.raises(InputError, match=r"'other' exists \(deleted"):
        registry.rename_model("c", "other")
    _ok(registry)


def _race(address: str, old: str, new: str, stage: str) -> dict[str, BaseException]:
    """Promote ``old`` v1 and rename ``old`` to ``new`` at once, from two registries."""
    barrier = threading.Barrier(2)
    errors: dict[str, BaseException] = {}

    def run(what: str) -> None:
        with Registry.open(address) as other:
            barrier.wait()
            try:
                if what == "promote":
                    other.promote(old, 1, to=stage, reason="race")
                else:
                    other.rename_model(old, new, reason="race")
            except BaseException as exc:
                errors[what] = exc

    threads = [threading.Thread(target=run, args=(what,)) for what in ("promote", "rename")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_a_rename_races_a_promotion(registry, make_model):
    """Two writers at once: one renames, one promotes by the old name. Either the
    promotion lands first (and the stage follows the rename) or it fails naming the
    new name; never a half of each."""
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    names = ["credit-risk", "renamed-1", "renamed-2", "renamed-3"]
    for old, new in itertools.pairwise(names):
        # A stage the version is not in now (an earlier round's promotion may have lost).
        current = registry.get_version(old, 1).stage.value
        stage = "Archived" if current == "Staging" else "Staging"
        errors = _race(registry.address, old, new, stage)
        assert "rename" not in errors, errors
        record = registry.get_version(new, 1)
        if "promote" in errors:
            assert isinstance(errors["promote"], NotFoundError), errors
            assert f"renamed to {new!r}" in str(errors["promote"])
        else:
            assert record.stage.value == stage
    _ok(registry)


# --------------------------------------------------------------------------- deletions


def test_deleting_a_version_is_a_tombstone(registry, make_model, approve, tmp_path):
    models = [make_model() for _ in range(4)]
    for m in models:
        registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="ok")
    registry.set_alias("credit-risk", "canary", 2, reason="try")
    registry.promote("credit-risk", 3, to="Staging", reason="ok")
    registry.add_review("credit-risk", 3, approve(models[2]))
    registry.promote("credit-risk", 3, to="Production", reason="approved")
    registration = registry.get_version("credit-risk", 1).registration

    with pytest.raises(InputError, match="alias\\(es\\) @canary") as caught:
        registry.delete_version("credit-risk", 2, reason="r")
    assert "alias delete credit-risk canary" in caught.value.diagnostics()
    with pytest.raises(InputError, match="in Production") as caught:
        registry.delete_version("credit-risk", 3, reason="r")
    assert "--to Archived" in caught.value.diagnostics()

    result = registry.delete_version("credit-risk", 1, reason="trained on leaked data",
                                     actor="alice")
    assert (result.kind, result.version, result.details["stage"]) == (
        "version.delete", 1, "Staging")
    for call in (lambda: registry.resolve("models:/credit-risk/1"),
                 lambda: registry.pull("models:/credit-risk/1", tmp_path / "v1"),
                 lambda: registry.load("models:/credit-risk/1"),
                 lambda: registry.get_version("credit-risk", 1),
                 lambda: registry.version_info("credit-risk", 1),
                 lambda: registry.promote("credit-risk", 1, to="Archived", reason="r"),
                 lambda: registry.set_alias("credit-risk", "old", 1, reason="r"),
                 lambda: registry.set_tag("credit-risk", "k", "v", version=1),
                 lambda: registry.export_evidence("models:/credit-risk/1", tmp_path / "ev"),
                 lambda: registry.delete_version("credit-risk", 1, reason="again")):
        with pytest.raises(NotFoundError, match="v1 was deleted \\(audit entry"):
            call()
    with pytest.raises(NotFoundError, match="no version in stage Staging"):
        registry.resolve("models:/credit-risk/Staging")  # v1 was its only one
    assert not (tmp_path / "v1").exists()
    assert 1 not in _numbers(registry.search_versions("credit-risk"))
    assert [v["version"] for v in registry.show_model("credit-risk")["versions"]] == [4, 3, 2]
    # the evidence, decisions and audit trail stay and still verify
    facts = registry.verify_version("credit-risk", 1, deep=True)
    assert facts.record.deleted_seq == result.seq
    assert registry.decision(registration)
    registry.delete_version("credit-risk", 4, reason="no longer needed")
    assert registry.resolve("models:/credit-risk/latest").version == 3
    _ok(registry)


def test_deleting_a_model(registry, make_model, tmp_path):
    for _ in range(2):
        m = make_model()
        registry.register(m.model, evidence=m.evidence)
    registry.set_alias("credit-risk", "canary", 2, reason="try")
    registry.set_tag("credit-risk", "team", "search")
    with pytest.raises(InputError, match="alias") as caught:
        registry.delete_model("credit-risk")
    assert "alias delete" in caught.value.diagnostics()
    registry.delete_alias("credit-risk", "canary", reason="done")
    result = registry.delete_model("credit-risk", reason="retired")
    assert (result.kind, result.details["versions"]) == ("model.delete", [1, 2])
    assert result.policy_uri.endswith("/rules/registry-owner/v1")
    for call in (lambda: registry.model_info("credit-risk"),
                 lambda: registry.resolve("models:/credit-risk/2"),
                 lambda: registry.show_model("credit-risk"),
                 lambda: registry.search_versions("credit-risk"),
                 lambda: registry.rename_model("credit-risk", "x"),
                 lambda: registry.delete_model("credit-risk")):
        with pytest.raises(NotFoundError, match="'credit-risk' was deleted"):
            call()
    assert registry.search_models().items == ()
    assert registry.verify_version("credit-risk", 2).record.deleted_seq == result.seq
    _ok(registry)
    # a new version of it puts the model back in use; the deleted versions stay deleted
    m = make_model()
    again = registry.register(m.model, evidence=m.evidence)
    assert (again.name, again.version) == ("credit-risk", 3)
    assert _numbers(registry.search_versions("credit-risk")) == [3]
    assert dict(registry.model_info("credit-risk").tags) == {"team": "search"}
    with pytest.raises(NotFoundError, match="v2 was deleted"):
        registry.resolve("models:/credit-risk/2")
    _ok(registry)


def test_a_model_with_a_production_version_is_not_deleted(registry, make_model, approve):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="ok")
    registry.add_review("credit-risk", 1, approve(m))
    registry.promote("credit-risk", 1, to="Production", reason="ok")
    with pytest.raises(InputError, match="v1 is in Production"):
        registry.delete_model("credit-risk", reason="r")
    registry.promote("credit-risk", 1, to="Archived", reason="retire")
    registry.delete_model("credit-risk", reason="r")
    _ok(registry)


def test_reviews_after_a_rename_and_deployments_of_a_deleted_version(registry, make_model,
                                                                     approve):
    first, second = make_model(), make_model()
    for m in (first, second):
        registry.register(m.model, evidence=m.evidence)
    registry.create_deployment("scoring", ["models:/credit-risk/2"], reason="pin v2")
    registry.rename_model("credit-risk", "cr")
    registry.promote("cr", 1, to="Staging", reason="ok")
    registry.add_review("cr", 1, approve(first))  # about the name its provenance signs
    registry.promote("cr", 1, to="Production", reason="approved")
    registry.delete_version("cr", 2, reason="bad data")
    with pytest.raises(NotFoundError, match="v2 was deleted"):
        registry.create_deployment("scoring", ["models:/cr/2"], reason="again")
    with pytest.raises(PolicyDeniedError, match="gone, changed or deleted"):
        registry.promote_deployment("scoring", 1, to="Staging", reason="ship it")
    _ok(registry)


def test_what_a_renamed_version_holds(registry, make_model):
    """`models show --version` after a rename: its history under both names, its
    description and tags, every value still verified."""
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="ok")
    registry.set_tag("credit-risk", "team", "search", version=1)
    registry.rename_model("credit-risk", "cr")
    registry.set_description("cr", "Renamed.", version=1)
    details = registry.show_version("cr", 1)
    assert (details.name, details.evidence_name, details.description, dict(details.tags)) == (
        "cr", "credit-risk", "Renamed.", {"team": "search"})
    assert [h.kind for h in details.history] == ["model.register", "stage.transition",
                                                 "version.tag", "version.describe"]
    assert details.stage.value == "Staging"
    document = details.to_json_dict()
    assert (document["description"], document["tags"]) == ("Renamed.", {"team": "search"})
    _ok(registry)


def test_a_deployment_of_a_renamed_model_names_the_new_name(registry, make_model, tmp_path):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.create_deployment("scoring", ["models:/credit-risk/1"], reason="pin v1")
    registry.rename_model("credit-risk", "cr")
    with pytest.raises(NotFoundError, match=r"pins models:/credit-risk/1: .*renamed to 'cr'"):
        registry.pull_deployment("deployments:/scoring/1", tmp_path / "out")
    registry.create_deployment("scoring", ["models:/cr/1"], reason="the new name")
    assert registry.pull_deployment("deployments:/scoring/2", tmp_path / "out").members
    _ok(registry)
