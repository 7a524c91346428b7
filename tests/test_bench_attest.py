"""benchmarks/bench_attest.py: what its CPU time counts, how it pairs rounds, how it shards.

The benchmark's figures are only as good as its accounting: mlprov hashes in a forked child,
so CPU time that missed a grandchild would flatter mlprov against openssl. These tests run in
well under a second and time nothing against a limit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_attest.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_attest", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_attest"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"

# The child forks, the grandchild burns CPU and exits, the child waits for it (as mlprov's
# HashJob does) and then idles: only the grandchild's time makes the CPU figure.
FORK_AND_WAIT = (
    "import os, time\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    end = time.process_time() + 0.2\n"
    "    while time.process_time() < end: pass\n"
    "    os._exit(0)\n"
    "os.waitpid(pid, 0)\n"
)


def test_cpu_counts_a_forked_child_that_was_waited_for(bench: ModuleType) -> None:
    sample = bench.measure([[sys.executable, "-c", FORK_AND_WAIT]], {})
    assert sample.cpu >= 0.2
    assert sample.cpu == pytest.approx(sample.user + sample.sys)
    assert sample.wall > 0


def test_parallel_commands_add_their_cpu_and_wall_waits_for_the_last(bench: ModuleType) -> None:
    short = [sys.executable, "-c", BUSY.format(seconds=0.05)]
    longer = [sys.executable, "-c", BUSY.format(seconds=0.15)]
    sample = bench.measure([short, longer], {})
    assert sample.cpu >= 0.2
    assert sample.wall >= 0.15


def test_a_failing_command_raises_with_its_output(bench: ModuleType) -> None:
    failing = [sys.executable, "-c", "import sys; print('out'); sys.exit('boom')"]
    with pytest.raises(bench.CommandError) as info:
        bench.measure([[sys.executable, "-c", "pass"], failing], {})
    assert info.value.returncode == 1
    assert info.value.stdout.strip() == "out"
    assert "boom" in info.value.stderr


def test_headline_is_the_median_of_per_round_ratios(bench: ModuleType) -> None:
    def series(key: str, walls: list[float], cpus: list[float]) -> object:
        samples = [bench.Sample(wall=w, user=c, sys=0.0) for w, c in zip(walls, cpus, strict=True)]
        return bench.Series(key, key, samples)

    # Round 3 ran under load for both commands: the paired ratio cancels it.
    runs = {
        "mlprov_attest": series("mlprov_attest", [1.0, 1.1, 3.0], [1.2, 1.2, 1.2]),
        "openssl_dgst": series("openssl_dgst", [1.0, 1.0, 3.0], [1.0, 1.0, 1.0]),
    }
    figures = {t["key"]: t for t in bench.evaluate_targets(runs, bench.TARGETS)}
    wall = figures["attest_vs_openssl"]["wall"]
    assert wall["per_round"] == pytest.approx([1.0, 1.1, 1.0])
    assert wall["value"] == wall["median_of_ratios"] == pytest.approx(1.0)
    assert wall["ratio_of_medians"] == pytest.approx(1.1)
    assert (wall["limit"], wall["result"], wall["result_of_medians"]) == (1.05, "PASS", "MISS")
    cpu = figures["attest_vs_openssl"]["cpu"]
    assert (cpu["value"], cpu["limit"], cpu["result"]) == (pytest.approx(1.2), 1.15, "MISS")
    assert figures["attest_vs_ms_sign"]["wall"]["result"] == "SKIP"


def test_shards_split_evenly_between_two_openssl_processes(bench: ModuleType) -> None:
    plan = bench.plan_model(2 << 30, 0, 0, shards=4)
    assert plan == [(f"model-0000{i}-of-00004.safetensors", 512 << 20) for i in range(1, 5)]
    groups = bench.split_files([(Path(rel), size) for rel, size in plan], 2)
    assert sorted(len(g) for g in groups) == [2, 2]
    odd = bench.plan_model(1000, 0, 0, shards=3)
    assert [size for _, size in odd] == [333, 333, 334]
    assert bench.plan_model(1 << 20, 2, 0)[-1][0] == "model.safetensors"
