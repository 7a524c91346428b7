"""Several processes changing one registry at once, and processes killed mid-change.

Writers serialise on SQLite's write lock (``BEGIN IMMEDIATE``), so no update
is lost and the audit chain stays intact; blobs are durable before rows name
them, so a SIGKILL at any point leaves the whole change or none of it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlprov.registry import Registry, Stage

pytestmark = pytest.mark.multiprocess

WORKER = textwrap.dedent("""
    import json, sys
    from mlprov.errors import InputError
    from mlprov.registry import Registry
    home, worker, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    done = []
    with Registry.open(home) as reg:
        if len(sys.argv) > 4:  # a registering worker: a new model first, then moves
            done.append(reg.register(sys.argv[4], evidence=sys.argv[5]).seq)
        for n in range(rounds):
            version = (worker + n) % 3 + 1
            try:
                if n % 3 == 2:
                    stage = ["Staging", "Archived", "None"][(worker + n) % 3]
                    result = reg.promote("credit-risk", version, to=stage, reason=f"w{worker}")
                else:
                    alias = "canary" if n % 3 == 0 else f"w{worker}"
                    result = reg.set_alias("credit-risk", alias, version, reason=f"w{worker}")
            except InputError:
                continue  # "already points there" / "already in that stage": a no-op
            done.append(result.seq)
    print(json.dumps(done))
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get(
        "PYTHONPATH", "")
    env.pop("MLPROV_FAULT", None)
    return env


def test_concurrent_writers_lose_no_update(registry, make_model):
    """Eight processes register, promote and move aliases at once (issue 12 item 5)."""
    for _ in range(3):
        m = make_model()
        registry.register(m.model, evidence=m.evidence)
    start = registry.verify_audit(sign_checkpoint=False).head_seq
    workers, rounds = 8, 6
    newcomers = [make_model(f"model-{w}") for w in range(0, workers, 2)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, registry.address, str(w),
                               str(rounds), *([str(newcomers[w // 2].model),
                                               str(newcomers[w // 2].evidence)]
                                              if w % 2 == 0 else [])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_env()) for w in range(workers)]
    seqs: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        seqs.extend(json.loads(out))
    assert len(seqs) == len(set(seqs)), "two changes got the same audit entry"
    report = registry.verify_audit()
    assert report.ok, report.problems
    assert report.head_seq == start + len(seqs)  # every accepted change is in the log
    assert sorted(seqs) == list(range(start + 1, report.head_seq + 1))
    assert len(registry.list_models()) == 1 + len(newcomers)  # every registration landed
    deep = registry.verify_audit(deep=True, sign_checkpoint=False)
    assert deep.ok and deep.decisions == deep.entries  # every decision's signature checked
    # The alias table is exactly what the log says (replayed by verify_audit too).
    history = registry.alias_history("credit-risk", "canary")
    # The workers archive versions too: the alias may lead to an Archived one, which
    # resolve hands out only when asked to (and audits).
    resolved = registry.resolve("models:/credit-risk@canary", allow_archived=True)
    assert resolved.version == history[-1].version


def _register_cmd(home: Path | str, model: Path, evidence: Path) -> list[str]:
    mlprov = Path(sys.executable).parent / "mlprov"
    return [str(mlprov), "register", str(model), "--evidence", str(evidence), "--registry",
            str(home)]


def test_killed_after_blobs_before_rows_leaves_no_version(registry, make_model):
    m = make_model()
    env = _env() | {"MLPROV_FAULT": "register.blobs-stored"}
    done = subprocess.run(_register_cmd(registry.address, m.model, m.evidence), env=env,
                          capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL
    assert registry.list_models() == []
    assert registry.verify_audit().ok
    stored = set(registry.blobs.iter_digests())
    assert stored, "the blobs were written (harmless garbage until a row names them)"
    again = registry.register(m.model, evidence=m.evidence)
    assert (again.version, again.created) == (1, True)


def test_killed_inside_the_transaction_changes_nothing(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    head = registry.verify_audit(sign_checkpoint=False).head_seq
    script = ("import sys; from mlprov.registry import Registry; "
              "Registry.open(sys.argv[1]).promote('credit-risk', 1, to='Staging', reason='x')")
    env = _env() | {"MLPROV_FAULT": "change.before-commit"}
    done = subprocess.run([sys.executable, "-c", script, registry.address], env=env,
                          capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL
    assert registry.get_version("credit-risk", 1).stage is Stage.NONE
    report = registry.verify_audit(sign_checkpoint=False)
    assert report.ok and report.head_seq == head
    assert registry.promote("credit-risk", 1, to="Staging", reason="again").allowed


def test_sigkill_at_random_moments_of_register(registry, make_model, tmp_path):
    """Kill `mlprov register` of bigger models at random times: all or nothing, always."""
    rng = random.Random(7)
    outcomes = []
    for attempt in range(4):
        m = make_model(content=os.urandom(8 * 1024 * 1024))
        proc = subprocess.Popen(_register_cmd(registry.address, m.model, m.evidence), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.0))
        proc.send_signal(signal.SIGKILL)
        outcomes.append(proc.wait())
        with Registry.open(registry.address) as fresh:
            versions = list(fresh.iter_versions("credit-risk")) if fresh.list_models() else []
            registered = [e for e in fresh.audit_log() if e["kind"] == "model.register"]
            assert len(versions) == len(registered) <= attempt + 1
            for record in versions:  # every row that exists is whole: every byte is there
                assert fresh.verify_version("credit-risk", record.version, deep=True).verdict
            assert fresh.verify_audit(sign_checkpoint=False).ok
        # Whatever happened, registering again completes the job.
        done = registry.register(m.model, evidence=m.evidence)
        registry.pull(f"models:/credit-risk/{done.version}", tmp_path / f"out{attempt}")
    assert -signal.SIGKILL in outcomes  # at least one run was really killed mid-way
