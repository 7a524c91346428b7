"""`mlprov registry gc`: killed writers' blobs go, referenced blobs never do.

On every backend (SQLite + local blobs, PostgreSQL + SeaweedFS). The race a
collection could lose (a change reusing an old unreferenced blob while the
collection deletes it) is forced here, and refused with nothing recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlprov.registry import Registry, RegistryError
from mlprov.registry import _core as core
from mlprov.registry._gc import GC_STATE, check_blobs_kept, gc_epoch
from tests.registry.test_concurrency import _env, _register_cmd


def _blobs(registry: Registry) -> set[str]:
    return set(registry.blobs.iter_digests())


def _everything_verifies(registry: Registry, out: Path) -> None:
    report = registry.verify_audit(deep=True, sign_checkpoint=False)
    assert report.ok, report.problems
    for model in registry.list_models():
        for record in registry.iter_versions(model["name"]):
            registry.verify_version(record.name, record.version, deep=True)
            registry.pull(f"models:/{record.name}/{record.version}",
                          out / f"{record.name}-{record.version}")


def test_gc_deletes_exactly_what_a_killed_registration_left(registry, make_model, approve,
                                                            keys, tmp_path):
    kept = make_model()
    registry.register(kept.model, evidence=kept.evidence)
    registry.add_review("credit-risk", 1, approve(kept))
    registry.set_thresholds(["auc>=0.8"], reason="history: an older thresholds blob")
    registry.set_thresholds(["auc>=0.85"], reason="and a newer one")
    before = _blobs(registry)
    killed = make_model("fraud")
    done = subprocess.run(_register_cmd(registry.address, killed.model, killed.evidence),
                          env=_env() | {"MLPROV_FAULT": "register.blobs-stored"},
                          capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL
    orphans = _blobs(registry) - before
    assert orphans, "the killed registration stored blobs no row names"

    dry = registry.collect_garbage(grace=0, dry_run=True)
    assert {b.digest for b in dry.garbage} == orphans
    assert _blobs(registry) == before | orphans  # a dry run deletes nothing

    report = registry.collect_garbage(grace=0)
    assert report.deleted == len(orphans)
    assert _blobs(registry) == before
    _everything_verifies(registry, tmp_path / "pulled")
    again = registry.register(killed.model, evidence=killed.evidence)  # stores them again
    assert again.created and again.version == 1
    assert registry.collect_garbage(grace=0).deleted == 0


def test_old_settings_stay_with_the_history(registry, tmp_path):
    shipped = Path(core.__file__).parents[1] / "_policies"
    changed = tmp_path / "policies"
    import shutil

    shutil.copytree(shipped, changed, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    rego = sorted(p for p in changed.glob("*.rego") if not p.name.endswith("_test.rego"))[0]
    rego.write_text(rego.read_text() + "\n# edited: a file only the new snapshot has\n")
    with registry.metadata.read() as tx:
        old_policies = tx.get_state("policies")
    registry.set_policies(changed, reason="a new snapshot")
    assert registry.collect_garbage(grace=0).deleted == 0
    assert old_policies in _blobs(registry)
    assert registry.verify_audit(deep=True, sign_checkpoint=False).ok


def test_young_garbage_is_kept(registry):
    orphan = registry.blobs.put_bytes(b"uploaded a moment ago by a change still running")
    report = registry.collect_garbage()  # default grace: one hour
    assert report.deleted == 0 and report.kept_young >= 1
    assert orphan.digest in _blobs(registry)
    assert registry.collect_garbage(grace=0).deleted == 1


def test_a_change_racing_a_collection_is_refused_not_left_dangling(registry, make_model,
                                                                   monkeypatch, tmp_path):
    m = make_model()
    other = Registry.open(registry.address)
    real_point = core._faults.point

    def collect_now(name: str) -> None:  # a collection lands between upload and commit
        if name == "register.blobs-stored":
            other.collect_garbage(grace=0)
        real_point(name)

    monkeypatch.setattr(core._faults, "point", collect_now)
    with pytest.raises(RegistryError, match="concurrent `mlprov registry gc`"):
        registry.register(m.model, evidence=m.evidence)
    assert registry.list_models() == []
    monkeypatch.setattr(core._faults, "point", real_point)
    done = registry.register(m.model, evidence=m.evidence)
    assert done.created
    _everything_verifies(registry, tmp_path / "pulled")
    other.close()


def test_a_collection_that_died_half_way_makes_writers_check(registry):
    before = gc_epoch(registry.metadata)
    with registry.metadata.write() as tx:
        tx.set_state(GC_STATE, "running:dead")  # a collector killed mid-sweep
    missing = "sha256:" + "0" * 64
    with registry.metadata.read() as tx:
        with pytest.raises(RegistryError, match="nothing was recorded"):
            check_blobs_kept(tx, registry.blobs, "running:dead", [missing])
        with pytest.raises(RegistryError):
            check_blobs_kept(tx, registry.blobs, before, [missing])
    with registry.metadata.write() as tx:
        tx.set_state(GC_STATE, "done:x")
    with registry.metadata.read() as tx:  # no collection since: no lookups at all
        check_blobs_kept(tx, registry.blobs, "done:x", [missing])


GC_LOOP = textwrap.dedent("""
    import sys, time
    from mlprov.registry import Registry
    with Registry.open(sys.argv[1]) as reg:
        for _ in range(int(sys.argv[2])):
            reg.collect_garbage(grace=0)  # no grace: even blobs being uploaded now are fair game
            time.sleep(0.5)
""")

REGISTER_UNTIL_DONE = textwrap.dedent("""
    import sys
    from mlprov.registry import Registry, RegistryError
    with Registry.open(sys.argv[1]) as reg:
        for attempt in range(100):
            try:
                reg.register(sys.argv[2], evidence=sys.argv[3])
                print(attempt)
                break
            except RegistryError as exc:
                if "registry gc" not in str(exc):
                    raise
        else:
            sys.exit("never registered")
""")


@pytest.mark.multiprocess
def test_collections_running_beside_writers_never_lose_a_referenced_blob(registry, make_model,
                                                                         tmp_path):
    models = [make_model(name) for name in ("ranker", "fraud", "churn")]
    collector = subprocess.Popen([sys.executable, "-c", GC_LOOP, registry.address, "6"],
                                 env=_env(), stderr=subprocess.PIPE)
    writers = [subprocess.Popen([sys.executable, "-c", REGISTER_UNTIL_DONE, registry.address,
                                 str(m.model), str(m.evidence)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for m in models]
    refused = 0  # how often a writer lost its blobs to a collection and ran again
    for proc in writers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        refused += int(out)
    _out, err = collector.communicate(timeout=300)
    assert collector.returncode == 0, err.decode()
    assert sorted(m["name"] for m in registry.list_models()) == ["churn", "fraud", "ranker"]
    assert registry.collect_garbage(grace=0).deleted == 0  # nothing left half-way
    print(f"registrations run again after a collection: {refused}")
    _everything_verifies(registry, tmp_path / "pulled")


def test_gc_on_the_cli(registry, run_cli):
    orphan = registry.blobs.put_bytes(b"left by a killed writer").digest
    listed = run_cli("registry", "gc", "--registry", registry.address, "--grace", "0",
                     "--dry-run", "--json")
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    assert document["blobs"] == [orphan] and document["deleted"] == 0
    done = run_cli("registry", "gc", "--registry", registry.address, "--grace", "0s")
    assert done.exit_code == 0 and "deleted 1 unreferenced blob" in done.stdout
    bad = run_cli("registry", "gc", "--registry", registry.address, "--grace", "soon")
    assert bad.exit_code == 2
    assert "is not a duration" in bad.stderr and "Traceback" not in bad.stderr


@given(st.text(max_size=12))
def test_grace_durations_parse_or_are_refused_in_one_line(text: str) -> None:
    from mlprov._cli.registry import _duration

    try:
        seconds = _duration(None, None, text)  # type: ignore[arg-type]
    except click.BadParameter as exc:
        assert "\n" not in str(exc.message)
    else:
        assert 0 <= seconds < float("inf")


def test_a_missing_manifest_stops_the_collection(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    record = registry.get_version("credit-risk", 1)
    orphan = registry.blobs.put_bytes(b"garbage that must survive a failed collection").digest
    assert registry.blobs.delete(record.files_digest)
    with pytest.raises(Exception, match="missing"):
        registry.collect_garbage(grace=0)
    assert orphan in _blobs(registry)  # fail closed: nothing deleted
    assert os.environ.get("MLPROV_FAULT") is None
