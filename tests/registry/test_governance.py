"""Issue 11 items 1, 4 and 5: thresholds as flags, dry runs that match, governance defaults."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mlprov.errors import InputError, PolicyError
from mlprov.registry import ArchivedVersionError, NotFoundError, PolicyDeniedError, Registry
from mlprov.registry._facts import RegistryIntegrityError
from mlprov.thresholds import parse_thresholds
from tests.cli.conftest import assert_error

SEED_METRICS = {"metrics": {"val/auc": 0.91, "test/auc": 0.89}}
SEED_THRESHOLDS = ["test/auc>=0.85", "val/auc>=0.85"]


def _db_rows(home: Path) -> list[tuple[object, ...]]:
    """Every row of every table, to show a dry run writes nothing."""
    db = sqlite3.connect(f"file:{home / 'registry.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [(t, *row) for t in sorted(tables)
                for row in db.execute(f"SELECT * FROM {t}")]
    finally:
        db.close()


# --- item 1: thresholds without editing files -----------------------------------------

def test_the_seed_model_passes_production_with_flag_thresholds(tmp_path, keys, make_model,
                                                                approve):
    seed = make_model("credit-risk", metrics=SEED_METRICS)
    with Registry.init(tmp_path / "shipped", trust=keys.trust) as shipped:
        shipped.register(seed.model, evidence=seed.evidence)
        shipped.promote("credit-risk", 1, to="Staging", reason="eval passed")
        shipped.add_review("credit-risk", 1, approve(seed))
        with pytest.raises(PolicyDeniedError) as denied:
            shipped.promote("credit-risk", 1, to="Production", reason="ship")
        # The denial names the metrics the eval does have.
        assert "eval metric auc is missing" in str(denied.value)
        assert "the eval has metrics test/auc, val/auc" in str(denied.value)
    with Registry.init(tmp_path / "team", trust=keys.trust, thresholds=SEED_THRESHOLDS) as reg:
        assert reg.thresholds.lines() == SEED_THRESHOLDS
        reg.register(seed.model, evidence=seed.evidence)
        reg.promote("credit-risk", 1, to="Staging", reason="eval passed")
        reg.add_review("credit-risk", 1, approve(seed))
        result = reg.promote("credit-risk", 1, to="Production", reason="ship")
        assert result.allowed
        assert reg.describe()["thresholds"] == SEED_THRESHOLDS


def test_flag_thresholds_are_enforced_both_ways(tmp_path, keys, make_model, approve):
    weak = make_model("credit-risk", metrics={"metrics": {"val/auc": 0.91, "test/auc": 0.8,
                                                          "loss": 0.5}})
    with Registry.init(tmp_path / "r", trust=keys.trust,
                       thresholds=[*SEED_THRESHOLDS, "loss<=0.4"]) as reg:
        reg.register(weak.model, evidence=weak.evidence)
        reg.promote("credit-risk", 1, to="Staging", reason="eval passed")
        reg.add_review("credit-risk", 1, approve(weak))
        dry = reg.promote("credit-risk", 1, to="Production", reason="ship", dry_run=True)
        assert not dry.allowed
        assert set(dry.deny) == {"eval metric test/auc = 0.8 is below the minimum 0.85",
                                 "eval metric loss = 0.5 is above the maximum 0.4"}


def test_slice_thresholds_replace_the_shipped_slice_thresholds(tmp_path, keys, make_model,
                                                                approve):
    sliced = make_model("credit-risk", metrics={
        "metrics": {"val/auc": 0.9, "test/auc": 0.9},
        "slices": {"age<30": {"auc": 0.55, "recall": 0.4}, "age>=30": {"auc": 0.9,
                                                                       "recall": 0.8}}})
    with Registry.init(tmp_path / "r", trust=keys.trust, thresholds=SEED_THRESHOLDS) as reg:
        reg.register(sliced.model, evidence=sliced.evidence)
        reg.promote("credit-risk", 1, to="Staging", reason="eval passed")
        reg.add_review("credit-risk", 1, approve(sliced))
        dry = reg.promote("credit-risk", 1, to="Production", reason="x", dry_run=True)
        # Only metric thresholds were given: the shipped slice threshold (auc >= 0.6) holds.
        assert dry.deny == ("eval metric auc = 0.55 in slice age<30 is below the minimum 0.6",)
        reg.set_thresholds([*SEED_THRESHOLDS, "slice:recall>=0.5"], reason="recall per slice")
        dry = reg.promote("credit-risk", 1, to="Production", reason="x", dry_run=True)
        assert dry.deny == ("eval metric recall = 0.4 in slice age<30 is below the minimum 0.5",)


def test_set_thresholds_is_audited_signed_and_pinned(tmp_path, keys):
    home = tmp_path / "r"
    with Registry.init(home, trust=keys.trust) as reg:
        result = reg.set_thresholds(SEED_THRESHOLDS, reason="the seed's metrics", actor="ops")
        assert result.kind == "registry.thresholds" and result.allowed
        entry = reg.audit_log(since=result.seq - 1)[0]
        assert entry["actor"] == "ops" and entry["reason"] == "the seed's metrics"
        assert entry["details"]["thresholds"] == SEED_THRESHOLDS
        assert reg.head().settings["thresholds"] == result.details["to"]
        assert reg.verify_audit(deep=True).ok
        with pytest.raises(InputError, match="already"):
            reg.set_thresholds(list(reversed(SEED_THRESHOLDS)), reason="same set")
        stored = result.details["to"]
    # Someone with database access swaps in a looser set: refused, not used.
    with Registry.open(home) as reg:
        loose = reg.blobs.put_bytes(parse_thresholds(["test/auc>=0.1"]).to_bytes()).digest
    db = sqlite3.connect(home / "registry.db", isolation_level=None)
    db.execute("UPDATE registry_state SET value = ? WHERE key = 'thresholds'", (loose,))
    db.close()
    with Registry.open(home) as reg, pytest.raises(RegistryIntegrityError):
        reg.thresholds  # noqa: B018
    assert stored != loose


def test_set_thresholds_runs_the_policy_tests_with_them(tmp_path, keys):
    """A team's own test reads the thresholds: a set that breaks it is refused."""
    import shutil

    from mlprov.policy import shipped_policies_dir

    policies = tmp_path / "policies"
    shutil.copytree(shipped_policies_dir(), policies)
    (policies / "bounds.rego").write_text(
        "package mlprov.bounds\nimport rego.v1\n"
        "deny contains msg if {\n  data.mlprov_config.production.metrics.auc.min < 0.5\n"
        "  msg := \"auc bound too low\"\n}\n")
    (policies / "bounds_test.rego").write_text(
        "package mlprov.bounds_test\nimport rego.v1\nimport data.mlprov.bounds\n"
        "test_bound_is_sane if {\n  count(bounds.deny) == 0\n}\n")
    with Registry.init(tmp_path / "r", trust=keys.trust, policies=policies) as reg:
        with pytest.raises(PolicyError, match="test_bound_is_sane"):
            reg.set_thresholds(["auc>=0.3"], reason="looser")
        assert reg.thresholds.lines() == []
        reg.set_thresholds(["auc>=0.8"], reason="stricter")
        assert reg.thresholds.lines() == ["auc>=0.8"]
    with pytest.raises(PolicyError, match="test_bound_is_sane"):
        Registry.init(tmp_path / "r2", trust=keys.trust, policies=policies,
                      thresholds=["auc>=0.2"])
    assert not (tmp_path / "r2" / "registry.db").exists()


def test_thresholds_on_the_cli(tmp_path, run_cli, keys, make_model):
    home = tmp_path / "reg"
    r = run_cli("registry", "init", "--registry", str(home), "--trust", str(keys.trust),
                "--threshold", "test/auc>=0.85", "--threshold", "val/auc>=0.85",
                "--threshold", "slice:auc>=0.6", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["thresholds"] == ["test/auc>=0.85", "val/auc>=0.85",
                                                  "slice:auc>=0.6"]
    r = run_cli("registry", "set-thresholds", "--registry", str(home), "test/auc>=0.9",
                "--threshold", "val/auc<=0.99", "--reason", "stricter", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["details"]["thresholds"] == ["test/auc>=0.9", "val/auc<=0.99"]
    r = run_cli("registry", "show", "--registry", str(home))
    assert "thresholds test/auc>=0.9, val/auc<=0.99" in r.stdout
    assert_error(run_cli("registry", "set-thresholds", "--registry", str(home),
                         "--threshold", "test/auc>>0.9", "--reason", "x"),
                 2, "not a threshold: 'test/auc>>0.9'")
    assert_error(run_cli("registry", "set-thresholds", "--registry", str(home),
                         "--reason", "x"), 2, "--clear")
    r = run_cli("registry", "set-thresholds", "--registry", str(home), "--clear",
                "--reason", "back to data.yaml")
    assert r.exit_code == 0, r.stderr
    assert "(the policy data own)" in r.stdout
    m = make_model("credit-risk", metrics=SEED_METRICS)
    base = ("policy", "check", "--policy", "policies/", "--evidence", str(m.evidence),
            "--trust", str(keys.trust), "--model", str(m.model), "--to", "Staging")
    r = run_cli(*base[:-2], "--to", "Production", "--json")
    assert r.exit_code == 1
    assert any("eval metric auc is missing" in d for d in json.loads(r.stdout)["deny"])
    r = run_cli(*base[:-2], "--to", "Production", "--threshold", "test/auc>=0.85",
                "--threshold", "val/auc>=0.85", "--json")
    deny = json.loads(r.stdout)["deny"]
    assert not any("metric" in d for d in deny), deny  # only the review is missing now
    assert any("approval" in d for d in deny)


# --- item 4: dry runs that match the registry --------------------------------------------

def test_a_dry_run_decides_what_the_move_decides_and_writes_nothing(tmp_path, keys,
                                                                     make_model, approve):
    m = make_model()
    home = tmp_path / "r"
    with Registry.init(home, trust=keys.trust) as reg:
        reg.register(m.model, evidence=m.evidence)
        reg.promote("credit-risk", 1, to="Staging", reason="eval passed")
        before = _db_rows(home)
        dry = reg.promote("credit-risk", 1, to="Production", reason="ship", dry_run=True)
        assert _db_rows(home) == before
        assert dry.dry_run and not dry.allowed and dry.decision == "" and dry.seq == 0
        with pytest.raises(PolicyDeniedError) as real:
            reg.promote("credit-risk", 1, to="Production", reason="ship")
        assert real.value.result.deny == dry.deny
        assert real.value.result.policy_digest == dry.policy_digest
        reg.add_review("credit-risk", 1, approve(m))
        before = _db_rows(home)
        dry = reg.promote("credit-risk", 1, to="Production", reason="ship", dry_run=True)
        assert dry.allowed and _db_rows(home) == before
        assert reg.get_version("credit-risk", 1).stage.value == "Staging"
        real_ok = reg.promote("credit-risk", 1, to="Production", reason="ship")
        assert real_ok.details["policyInputDigest"] == dry.details["policyInputDigest"]


def test_dry_runs_on_the_cli(tmp_path, run_cli, keys, make_model, approve):
    home = tmp_path / "reg"
    assert run_cli("registry", "init", "--registry", str(home), "--trust",
                   str(keys.trust)).exit_code == 0
    m = make_model()

    def cli(*args: str):
        return run_cli(*args, "--registry", str(home))

    assert cli("register", str(m.model), "--evidence", str(m.evidence)).exit_code == 0
    before = _db_rows(home)
    r = cli("promote", "credit-risk", "1", "--to", "Production", "--reason", "x", "--dry-run")
    assert r.exit_code == 1
    assert r.stdout.startswith("dry run: deny credit-risk v1: None -> Production")
    assert "  deny: a version enters Production from Staging" in r.stdout
    assert "  deny: needs 1 approval(s)" in r.stdout
    assert "dry run: nothing was signed or recorded" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("promote", "credit-risk", "1", "--to", "Staging", "--reason", "x", "--dry-run",
            "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["dryRun"] is True and doc["allowed"] is True and doc["decision"] is None
    r = cli("alias", "set", "credit-risk", "champion", "1", "--reason", "x", "--dry-run")
    assert r.exit_code == 1 and "gated as production" in r.stdout
    r = cli("alias", "set", "credit-risk", "canary", "1", "--reason", "x", "--dry-run")
    assert r.exit_code == 0 and r.stdout.startswith("dry run: allow")
    assert _db_rows(home) == before
    r = cli("audit", "log", "--json")
    assert r.exit_code == 0


def test_policy_check_uses_the_registrys_gate_table(tmp_path, run_cli, keys, make_model):
    home = tmp_path / "reg"
    assert run_cli("registry", "init", "--registry", str(home), "--trust",
                   str(keys.trust)).exit_code == 0
    m = make_model()
    check = ("policy", "check", "--evidence", str(m.evidence), "--model", str(m.model))
    # The shipped admission policy knows no "canary" alias; the registry gates it with
    # "*" = staging.rego, and so does the check when it is given the registry.
    r = run_cli(*check, "--policy", "policies/", "--trust", str(keys.trust), "--alias",
                "canary")
    assert r.exit_code == 1 and "no gate configured for alias canary" in r.stdout
    r = run_cli(*check, "--registry", str(home), "--alias", "canary")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert r.stdout.startswith("allow credit-risk")
    assert cli_alias_set(run_cli, home, m) == 0
    r = run_cli(*check, "--registry", str(home), "--to", "Archived")
    assert r.exit_code == 0 and "does not gate stage Archived" in r.stdout
    assert_error(run_cli(*check, "--registry", str(home), "--to", "Staging", "--alias", "x"),
                 2, "name a stage or an alias")
    assert_error(run_cli(*check, "--alias", "x"), 2, "--policy")


def cli_alias_set(run_cli, home: Path, m) -> int:
    assert run_cli("register", str(m.model), "--evidence", str(m.evidence), "--registry",
                   str(home)).exit_code == 0
    return run_cli("alias", "set", "credit-risk", "canary", "1", "--reason", "x",
                   "--registry", str(home)).exit_code


# --- item 5: governance defaults ----------------------------------------------------------

def test_stages_move_in_order(registry, make_model, approve):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.add_review("credit-risk", 1, approve(m))
    with pytest.raises(PolicyDeniedError, match="never straight from None"):
        registry.promote("credit-risk", 1, to="Production", reason="skip staging")
    registry.promote("credit-risk", 1, to="Staging", reason="eval passed")
    registry.promote("credit-risk", 1, to="Production", reason="ship")
    registry.promote("credit-risk", 1, to="Archived", reason="retired")
    # Out of Archived: gated like the target stage (production here, which passes).
    assert registry.promote("credit-risk", 1, to="Production", reason="back").allowed


def test_production_aliases_point_only_at_production_versions(registry, make_model, approve):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    registry.add_review("credit-risk", 1, approve(m))
    registry.promote("credit-risk", 1, to="Staging", reason="eval passed")
    for alias in ("production", "champion"):
        with pytest.raises(PolicyDeniedError, match="may point only at a version in Production"):
            registry.set_alias("credit-risk", alias, 1, reason="too early")
    assert registry.set_alias("credit-risk", "challenger", 1, reason="shadow").allowed
    registry.promote("credit-risk", 1, to="Production", reason="ship")
    assert registry.set_alias("credit-risk", "production", 1, reason="serve").allowed


def _three_in_production(registry, make_model, approve) -> None:
    for _ in range(3):
        m = make_model()
        result = registry.register(m.model, evidence=m.evidence)
        registry.add_review("credit-risk", result.version, approve(m))
        registry.promote("credit-risk", result.version, to="Staging", reason="eval")
        registry.promote("credit-risk", result.version, to="Production", reason="ship")
        registry.set_alias("credit-risk", "production", result.version, reason="serve")


def test_an_archived_version_is_not_served_through_an_alias_or_stage(registry, make_model,
                                                                      approve, tmp_path):
    _three_in_production(registry, make_model, approve)
    registry.promote("credit-risk", 3, to="Archived", reason="pulled")
    for uri in ("models:/credit-risk@production", "models:/credit-risk/Archived",
                "models:/credit-risk/latest"):
        with pytest.raises(ArchivedVersionError, match="credit-risk v3, which is in stage "
                                                       "Archived"):
            registry.resolve(uri)
    with pytest.raises(ArchivedVersionError):
        registry.pull("models:/credit-risk@production", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ArchivedVersionError):
        registry.load("models:/credit-risk@production")
    assert registry.resolve("models:/credit-risk/3").version == 3  # by number: always
    assert registry.resolve("models:/credit-risk/Production").version == 2
    seq = registry.head().seq
    forced = registry.load("models:/credit-risk@production", allow_archived=True,
                           actor="oncall")
    assert forced.version == 3
    [entry] = registry.audit_log(since=seq)
    assert entry["kind"] == "version.archived-use" and entry["actor"] == "oncall"
    assert entry["details"]["uri"] == "models:/credit-risk@production"
    assert registry.verify_audit(deep=True).ok


def test_archived_on_the_cli(tmp_path, run_cli, keys, make_model, approve):
    home = tmp_path / "reg"
    assert run_cli("registry", "init", "--registry", str(home), "--trust",
                   str(keys.trust)).exit_code == 0
    with Registry.open(home) as reg:
        _three_in_production(reg, make_model, approve)
        reg.promote("credit-risk", 3, to="Archived", reason="pulled")
    r = run_cli("resolve", "models:/credit-risk@production", "--registry", str(home))
    assert_error(r, 3, "models:/credit-risk@production leads to credit-risk v3, which is in "
                       "stage Archived", "--allow-archived")
    r = run_cli("pull", "models:/credit-risk@production", "--out", str(tmp_path / "o"),
                "--registry", str(home), "--allow-archived", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["version"] == 3


def test_rollback_goes_further_back_and_says_which(registry, make_model, approve):
    _three_in_production(registry, make_model, approve)
    first = registry.rollback("credit-risk", "production", reason="v3 regressed")
    assert (first.details["from"], first.version) == (3, 2)
    assert "not rolled back from" in first.details["chosen"]
    dry = registry.rollback("credit-risk", "production", reason="v2 too", dry_run=True)
    assert dry.version == 1 and dry.allowed and dry.dry_run
    second = registry.rollback("credit-risk", "production", reason="v2 too")
    assert (second.details["from"], second.version) == (2, 1)  # not back to 3
    with pytest.raises(NotFoundError, match="no earlier version"):
        registry.rollback("credit-risk", "production", reason="again")
    assert registry.rollback("credit-risk", "production", to=3, reason="fixed").version == 3


def test_rollback_on_the_cli_names_the_target(tmp_path, run_cli, keys, make_model, approve):
    home = tmp_path / "reg"
    assert run_cli("registry", "init", "--registry", str(home), "--trust",
                   str(keys.trust)).exit_code == 0
    with Registry.open(home) as reg:
        _three_in_production(reg, make_model, approve)
    before = _db_rows(home)
    r = run_cli("rollback", "credit-risk", "--alias", "production", "--dry-run",
                "--registry", str(home))
    assert r.exit_code == 0, r.stderr
    assert "target v2: the most recent earlier target" in r.stdout
    assert _db_rows(home) == before
    r = run_cli("rollback", "credit-risk", "--alias", "production", "--registry", str(home))
    assert r.exit_code == 0
    assert "rolling back to v2: the most recent earlier target" in r.stderr


def test_a_deployment_cannot_carry_a_member_past_the_registry_thresholds(tmp_path, keys,
                                                                         make_model, approve):
    """The thresholds gate a version's move and a deployment holding it alike."""
    weak = make_model("credit-risk", metrics={"metrics": {"val/auc": 0.91, "test/auc": 0.8}})
    with Registry.init(tmp_path / "r", trust=keys.trust, thresholds=SEED_THRESHOLDS) as reg:
        reg.register(weak.model, evidence=weak.evidence)
        reg.promote("credit-risk", 1, to="Staging", reason="eval passed")
        reg.add_review("credit-risk", 1, approve(weak))
        with pytest.raises(PolicyDeniedError, match=r"test/auc = 0\.8 is below the minimum 0\.85"):
            reg.promote("credit-risk", 1, to="Production", reason="ship")
        reg.create_deployment("stack", ["models:/credit-risk/1"], reason="release")
        reg.promote_deployment("stack", 1, to="Staging", reason="try")
        with pytest.raises(PolicyDeniedError, match=r"test/auc = 0\.8 is below the minimum 0\.85"):
            reg.promote_deployment("stack", 1, to="Production", reason="around the gate")



def _ready_for_production(registry, make_model, approve):
    m = make_model("credit-risk", metrics=SEED_METRICS)
    registry.set_thresholds(SEED_THRESHOLDS, reason="the seed's metrics")
    registry.register(m.model, evidence=m.evidence)
    registry.promote("credit-risk", 1, to="Staging", reason="eval passed")
    registry.add_review("credit-risk", 1, approve(m))
    assert registry.promote("credit-risk", 1, to="Production", reason="x", dry_run=True).allowed


def test_a_long_open_registry_decides_on_settings_another_process_changed(
        registry, make_model, approve):
    """A server or notebook keeps its Registry open: what others record since then counts."""
    _ready_for_production(registry, make_model, approve)
    registry.config  # noqa: B018 - read and cached, like the thresholds just used
    with Registry.open(registry.address) as other:  # e.g. `mlprov registry set-thresholds`
        other.set_thresholds(["test/auc>=0.95"], reason="stricter", actor="risk")
    # The long-open instance is refused by the new thresholds, not the ones it read.
    with pytest.raises(PolicyDeniedError, match=r"below the minimum 0\.95"):
        registry.promote("credit-risk", 1, to="Production", reason="ship it")
    assert registry.get_version("credit-risk", 1).stage.value == "Staging"
    with Registry.open(registry.address) as other:
        other.set_thresholds(SEED_THRESHOLDS, reason="back to the seed's", actor="risk")
    assert registry.promote("credit-risk", 1, to="Production", reason="ship it").allowed
    assert registry.verify_audit(deep=True).ok


def test_a_change_decided_on_old_settings_is_decided_again(registry, make_model, approve):
    """The settings move between this process's reads: the change is evaluated once more."""
    _ready_for_production(registry, make_model, approve)
    with Registry.open(registry.address) as other:
        other.set_thresholds(["test/auc>=0.95"], reason="stricter", actor="risk")
    settings = registry.settings
    assert settings.is_stale(registry.head().settings)  # the head moved under the cache
    assert not settings.is_stale(registry.head().settings)  # reported once, then current
    # A change whose transaction finds the settings moved since they were read is decided
    # again (the first try raises a conflict inside retrying()), never on the old ones.
    registry.thresholds  # noqa: B018 - cached under the current head
    with Registry.open(registry.address) as other:
        other.set_thresholds(["test/auc>=0.96"], reason="stricter still", actor="risk")
    with pytest.raises(PolicyDeniedError, match=r"below the minimum 0\.96"):
        registry.promote("credit-risk", 1, to="Production", reason="ship it")
