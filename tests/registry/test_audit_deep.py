"""`audit verify --deep` checks each signature once per user; `--full` checks all again.

On every backend. What an earlier deep run verified is recorded in the user's
cache (never in the registry): later deep runs check only the signatures after
it, and still the bytes of every earlier decision and the hash of the entry it
ended at, so a decision swapped or a history rewritten since is caught.
"""

from __future__ import annotations

import json

from mlprov.registry._sql import decisions


def _changes(registry, make_model, count: int) -> None:
    for _ in range(count):
        m = make_model()
        registry.register(m.model, evidence=m.evidence)


def test_deep_verification_picks_up_where_it_left_off(registry, make_model):
    _changes(registry, make_model, 2)
    first = registry.verify_audit(deep=True)
    assert first.ok and first.decisions == first.entries and first.decisions_known == 0
    assert first.verified_through == first.head_seq
    _changes(registry, make_model, 1)
    second = registry.verify_audit(deep=True)
    assert second.ok
    assert second.decisions == second.head_seq - first.head_seq  # only the new ones
    assert second.decisions_known == first.head_seq
    again = registry.verify_audit(deep=True, full=True)
    assert again.ok and again.decisions == again.entries


def test_a_decision_swapped_after_a_deep_run_is_still_caught(registry, make_model):
    _changes(registry, make_model, 1)
    assert registry.verify_audit(deep=True).ok
    record = registry.get_version("credit-risk", 1)
    with registry.metadata.write() as tx:  # same digest row, other bytes
        tx.conn.execute(decisions.update().where(decisions.c.digest == record.registration)
                        .values(bundle=b"{}"))
    report = registry.verify_audit(deep=True)
    assert not report.ok
    assert any("was changed in the registry" in p for p in report.problems)


def test_a_history_rewritten_under_the_recorded_entry_is_reported(registry, make_model,
                                                                  tmp_path, monkeypatch):
    _changes(registry, make_model, 1)
    assert registry.verify_audit(deep=True).ok
    cache = tmp_path / "cache-copy"
    import os
    import shutil

    shutil.copytree(os.environ["MLPROV_CACHE_HOME"], cache)
    [marker] = (cache / "audit-verified").iterdir()
    document = json.loads(marker.read_text())
    document["entryHash"] = "sha256:" + "0" * 64  # as if the log held another entry there
    marker.write_text(json.dumps(document))
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(cache))
    report = registry.verify_audit(deep=True)
    assert not report.ok
    assert any("not the one an earlier --deep run verified" in p for p in report.problems)
    assert report.decisions == report.entries  # and everything was checked in full


def test_full_needs_deep_on_the_cli(registry, run_cli):
    done = run_cli("audit", "verify", "--registry", registry.address, "--full")
    assert done.exit_code == 2 and "--full goes with --deep" in done.stderr
    ok = run_cli("audit", "verify", "--registry", registry.address, "--deep", "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["deepVerifiedThrough"] == 1
