"""Registry read commands end to end: start-up, lookup and exit on a large embedded registry.

    python benchmarks/bench_startup.py [--versions 100000] [--history 20000] [--rounds 15]
    python benchmarks/bench_startup.py --workdir /tmp/startup-bench     # keep and reuse it

Builds (or reuses, in ``--workdir``) an embedded registry of ``--versions`` model
versions the way ``bench_registry.py`` does (three real attested versions of
credit-risk, the rest bulk-loaded filler with hash-chained audit entries and a
re-signed head), moves ``@production`` twice, and appends ``--history`` more
accepted changes of ``credit-risk@champion`` to the log (signed head re-signed).

Then it runs each command as a user does, as a new ``mlprov`` process (the
console script beside this interpreter; bytecode cached, as an installed package
has it) with stdout to /dev/null, ``--rounds`` times, interleaved (one of each per
round, the order rotated every round), and prints per command the median wall
time, the median CPU time (user + system), the peak RSS, and the wall ratio to
``python -c pass`` run in the same rounds (so load on a shared machine shows in
both). Target (issue 16): ``resolve``, ``models list`` and ``alias history`` at
most 0.2 s wall (median). Nothing is
asserted; ``--json`` prints one document instead of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET = 0.2
TARGETED = ("resolve", "models list", "alias history")
STAMP = "bench-startup.json"


def build(work: Path, versions: int, history: int) -> Path:
    """The registry directory, made in ``work`` (reused when ``work`` holds the same shape)."""
    home = work / "registry"
    wanted = {"versions": versions, "history": history, "layout": 1}
    stamp = work / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted and home.is_dir():
        return home
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sys.path.insert(0, str(HERE))
    import bench_registry

    from mlprov.registry import Registry
    from mlprov.registry._audit import make_entry
    from mlprov.registry._head import read_head, sign_head

    setup = bench_registry.setup_mlprov(work, versions, min(10_000, versions))
    registry: Any = setup.registry
    name = bench_registry.NAME
    for number in range(1, bench_registry.REAL + 1):
        registry.promote(name, number, to="Staging", reason="bench")
        registry.promote(name, number, to="Production", reason="bench")
    registry.set_alias(name, "production", 1, reason="bench")
    registry.set_alias(name, "production", 2, reason="bench")
    registry.close()
    if history:
        registry = Registry.open(home)
        with registry.metadata.read() as tx:
            head = tx.audit_head()
        assert head is not None
        seq, prev = head.seq, head.entry_hash
        now = "2026-01-02T00:00:00.000000Z"
        batch = []
        for i in range(history):
            seq += 1
            entry = make_entry(seq=seq, prev=prev, time=now, kind="alias.set", accepted=True,
                               actor="bench", reason=f"bulk history {i}", name=name,
                               version=1 + i % bench_registry.REAL, target="@champion",
                               decision=None, details={"alias": "champion"})
            prev = entry.entry_hash
            batch.append(entry)
            if len(batch) >= 5000 or i == history - 1:
                with registry.metadata.write() as wtx:
                    wtx.append_audit_many(batch)
                batch = []
        # The filler bypassed the registry: sign a head for its last entry, as every
        # change does (else the registry rightly refuses a log longer than its head).
        with registry.metadata.write() as wtx:
            before = read_head(wtx, registry_id=registry.registry_id, anchor=registry.anchor,
                               anchor_id=id(registry.anchor))
            sign_head(wtx, registry_id=registry.registry_id, seq=seq, entry_hash=prev,
                      time=now, signer=registry.signer, settings=before.settings)
        registry.close()
    stamp.write_text(json.dumps(wanted))
    return home


def mlprov_command() -> list[str]:
    """The ``mlprov`` console script beside this interpreter (else the same entry point)."""
    script = Path(sys.executable).parent / "mlprov"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c",
            "import sys; from mlprov._cli.main import console_main; sys.exit(console_main())"]


def run_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {error.strip()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000,
                        help="model versions in the registry (default 100000)")
    parser.add_argument("--history", type=int, default=20_000,
                        help="changes of credit-risk@champion in the log (default 20000)")
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command")
    parser.add_argument("--workdir", type=Path,
                        help="build the registry here and keep it (reused when the shape "
                             "matches)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.versions < 10 or args.rounds < 1 or args.history < 0:
        parser.error("need --versions >= 10, --rounds >= 1, --history >= 0")
    os.environ.setdefault("MLPROV_REGISTRY_FSYNC", "off")  # the build only; reads never sync
    if args.build_only:
        build(args.workdir, args.versions, args.history)
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-startup-"))
    try:
        began = time.perf_counter()
        # Built in a child process: a process forked from one that imported mlprov and
        # filled a registry would report that one's memory as its own peak RSS.
        subprocess.run([sys.executable, __file__, "--build-only", "--versions",
                        str(args.versions), "--history", str(args.history), "--workdir",
                        str(work)], check=True)
        home = work / "registry"
        built = time.perf_counter() - began
        mlprov = mlprov_command()
        at = ["--registry", str(home)]
        commands: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "mlprov --help": [*mlprov, "--help"],
            "resolve": [*mlprov, "resolve", "models:/credit-risk@production", *at],
            "models list": [*mlprov, "models", "list", *at],
            "alias history": [*mlprov, "alias", "history", "credit-risk", "production", *at],
            "models show": [*mlprov, "models", "show", "credit-risk", *at],
            "audit log --limit 50": [*mlprov, "audit", "log", "--limit", "50", *at],
        }
        if args.history:
            commands[f"alias history ({args.history} changes) --json"] = [
                *mlprov, "alias", "history", "credit-risk", "champion", "--json", *at]
            commands[f"audit log --json ({args.history + args.versions}+ entries)"] = [
                *mlprov, "audit", "log", "--json", *at]
        names = list(commands)
        # Measured as installed: pip byte-compiles a package, so the children keep their
        # bytecode (in a cache of their own when PYTHONDONTWRITEBYTECODE is set here).
        env = dict(os.environ)
        if env.pop("PYTHONDONTWRITEBYTECODE", None):
            env.setdefault("PYTHONPYCACHEPREFIX", str(work / "pycache"))
        for name in names:  # warm the page cache and the bytecode; not timed
            run_once(commands[name], env)
        samples: dict[str, list[tuple[float, float, int]]] = {n: [] for n in names}
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(run_once(commands[name], env))
        load = os.getloadavg()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    base = [s[0] for s in samples["python -c pass"]]
    results = []
    for name in names:
        wall = [s[0] for s in samples[name]]
        ratios = [w / b for w, b in zip(wall, base, strict=True)]
        median = statistics.median(wall)
        results.append({
            "command": name, "wallMedian": median, "wallMin": min(wall),
            "cpuMedian": statistics.median(s[1] for s in samples[name]),
            "maxRssKiB": max(s[2] for s in samples[name]),
            "ratioToPythonPass": statistics.median(ratios),
            "target": TARGET if name in TARGETED else None,
            "met": (median <= TARGET) if name in TARGETED else None})
    if args.json:
        print(json.dumps({"versions": args.versions, "history": args.history,
                          "rounds": args.rounds, "buildSeconds": built,
                          "loadAverage": load, "results": results}, indent=2))
        return 0
    print(f"{args.versions} versions, {args.history} changes of credit-risk@champion; "
          f"{args.rounds} rounds, interleaved; load average {load[0]:.2f} {load[1]:.2f}; "
          f"{os.cpu_count()} CPUs")
    print(f"\n{'command':52} {'wall p50':>9} {'min':>7} {'CPU p50':>8} {'peak RSS':>9} "
          f"{'/ python':>9}")
    for r in results:
        print(f"{r['command']:52} {r['wallMedian']:8.3f}s {r['wallMin']:6.3f}s "
              f"{r['cpuMedian']:7.3f}s {r['maxRssKiB'] / 1024:7.1f}MB "
              f"{r['ratioToPythonPass']:8.1f}x")
    print()
    for r in results:
        if r["target"] is not None:
            verdict = "target met " if r["met"] else "target MISS"
            print(f"{verdict}  {r['command']} <= {TARGET} s (median {r['wallMedian']:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
