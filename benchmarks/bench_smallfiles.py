#!/usr/bin/env python3
"""Benchmark hashing where users feel it: many small files, a terminal, a re-verify.

Times, in paired interleaved rounds (every round runs every series once, in
the same order, so drift in machine load spreads over all of them), the
commands below on one model and reports medians and ratios of medians:

* ``find MODEL -type f -print0 | xargs -0 sha256sum`` — the baseline;
* ``mlprov attest`` and ``mlprov verify``, output piped;
* with ``--tty``: the same two under a pseudo-terminal (stdout and stderr on a
  pty, so the progress bar is drawn), for the bar's cost;
* with ``--cache``: ``mlprov verify --cache DIR`` cold (a fresh cache directory
  each round) and warm (the cache the cold run left), for the re-verify.

The model is ``--files N`` files of 1-4 KiB (default 100000) in directories of
1000, or with ``--large SIZE`` one file of SIZE (the cached re-verify case).
Targets (issue 16): verify and attest <= 1.5x the baseline for small files;
the bar <= 5% (tty / piped); warm cached verify <= 0.05x the cold one and
<= 0.4 s. Wall-clock figures include interpreter start-up, as users see them.

Exit status: 0 whether or not targets are met, 2 bad arguments, 3 a command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def parse_size(text: str) -> int:
    units = {"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "KB": 10**3, "MB": 10**6,
             "GB": 10**9}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * factor)
    return int(upper)


def write_small_files(model: Path, count: int, seed: int) -> int:
    rng = random.Random(seed)
    total = 0
    for i in range(count):
        directory = model / f"d{i // 1000:04d}"
        if i % 1000 == 0:
            directory.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(1024, 4096))
        (directory / f"f{i:06d}.bin").write_bytes(data)
        total += len(data)
    return total


def write_large_file(model: Path, size: int) -> int:
    model.mkdir(parents=True, exist_ok=True)
    with open(model / "model.safetensors", "wb") as f:
        left = size
        while left:
            n = min(left, 64 << 20)
            f.write(os.urandom(n))
            left -= n
    return size


def run_piped(cmd: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def run_tty(cmd: Sequence[str], env: dict[str, str]) -> float:
    """Run with stdout and stderr on a pseudo-terminal, drained as a terminal would."""
    master, slave = os.openpty()
    out = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child closed the terminal
                return
            if not chunk:
                return
            out.extend(chunk)

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    code = proc.wait()
    reader.join()
    elapsed = time.perf_counter() - start
    os.close(master)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code} on a tty: "
                           f"{out.decode(errors='replace')[-2000:]}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, metavar="N")
    parser.add_argument("--large", type=parse_size, metavar="SIZE",
                        help="one file of SIZE instead of small files (cached re-verify case)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tty", action="store_true", help="also run attest/verify on a pty")
    parser.add_argument("--cache", action="store_true", help="also time verify --cache")
    parser.add_argument("--skip-attest", action="store_true")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="work in DIR; a model of the same shape left there is reused")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.files < 1 or args.repeat < 1:
        parser.error("--files and --repeat must be >= 1")
    bindir = Path(sys.executable).parent
    mlprov = str(bindir / "mlprov")
    env = dict(os.environ)
    env.pop("MLPROV_KEY_PASSPHRASE", None)
    env.pop("MLPROV_CACHE", None)
    work = args.keep or Path(tempfile.mkdtemp(prefix="mlprov-bench-small-"))
    work.mkdir(parents=True, exist_ok=True)
    shape = f"large={args.large}" if args.large else f"files={args.files},seed={args.seed}"
    model = work / "model"
    stamp = work / "model.shape"
    try:
        if not (stamp.exists() and stamp.read_text() == shape and model.is_dir()):
            shutil.rmtree(model, ignore_errors=True)
            print(f"writing model ({shape}) ...", file=sys.stderr)
            if args.large:
                write_large_file(model, args.large)
            else:
                write_small_files(model, args.files, args.seed)
            stamp.write_text(shape)
        size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
        count = sum(1 for p in model.rglob("*") if p.is_file())
        key = work / "bench.key"
        if not key.exists():
            run_piped([mlprov, "keygen", "--out", str(key), "--type", "ecdsa-p256"], env)
        evidence = work / "evidence"
        shutil.rmtree(evidence, ignore_errors=True)
        attest = [mlprov, "attest", str(model), "--name", "bench", "--key", str(key),
                  "--commit", COMMIT, "--environment", str(work / "env.json")]
        (work / "env.json").write_text("")  # an empty environment: no package scan
        run_piped([*attest, "--out", str(evidence)], env)  # the evidence verify checks
        verify = [mlprov, "verify", str(model), "--evidence", str(evidence),
                  "--key", f"{key}.pub"]
        baseline = ["bash", "-c", 'find "$1" -type f -print0 | xargs -0 sha256sum >/dev/null',
                    "bench", str(model)]
        run_piped(baseline, env)  # warm the page cache
        series: dict[str, list[float]] = {}
        for round_no in range(args.repeat):
            out = work / f"ev-{round_no}"
            steps: list[tuple[str, Sequence[str], bool]] = [("find | xargs sha256sum", baseline,
                                                            False)]
            if not args.skip_attest:
                steps.append(("mlprov attest", [*attest, "--out", str(out)], False))
            steps.append(("mlprov verify", verify, False))
            if args.tty:
                if not args.skip_attest:
                    steps.append(("mlprov attest (tty)", [*attest, "--out", f"{out}-tty"], True))
                steps.append(("mlprov verify (tty)", verify, True))
            if args.cache:
                cache = work / f"cache-{round_no}"
                steps.append(("mlprov verify --cache (cold)", [*verify, "--cache", str(cache)],
                              False))
                steps.append(("mlprov verify --cache (warm)", [*verify, "--cache", str(cache)],
                              False))
            shutil.rmtree(work / f"cache-{round_no}", ignore_errors=True)  # cold is cold
            for label, cmd, tty in steps:
                series.setdefault(label, []).append((run_tty if tty else run_piped)(cmd, env))
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(f"{out}-tty", ignore_errors=True)
            print(f"  round {round_no + 1}/{args.repeat}", file=sys.stderr)
    except RuntimeError as exc:
        print(f"bench_smallfiles: {exc}", file=sys.stderr)
        return 3
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in series.items()}
    base = med["find | xargs sha256sum"]
    targets = []

    def target(label: str, value: float, limit: float, unit: str = "x") -> None:
        targets.append({"label": label, "value": round(value, 3), "limit": limit, "unit": unit,
                        "result": "PASS" if value <= limit else "MISS"})

    if not args.large:
        target("verify / find|xargs sha256sum", med["mlprov verify"] / base, 1.5)
        if "mlprov attest" in med:
            target("attest / find|xargs sha256sum", med["mlprov attest"] / base, 1.5)
    if args.tty:
        target("verify tty / piped", med["mlprov verify (tty)"] / med["mlprov verify"], 1.05)
        if "mlprov attest (tty)" in med:
            target("attest tty / piped", med["mlprov attest (tty)"] / med["mlprov attest"], 1.05)
    if args.cache:
        warm, cold = med["mlprov verify --cache (warm)"], med["mlprov verify --cache (cold)"]
        target("cached verify warm / cold", warm / cold, 0.05)
        target("cached verify warm", warm, 0.4, "s")
    report = {"model": {"files": count, "bytes": size, "shape": shape}, "repeat": args.repeat,
              "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
              "timings": {k: {"median_s": round(med[k], 4), "samples_s": [round(x, 4) for x in v]}
                          for k, v in series.items()},
              "targets": targets}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"model: {count} files, {size / (1 << 20):.1f} MiB ({shape}); median of "
          f"{args.repeat} interleaved rounds; {os.cpu_count()} CPUs; load average at the end "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'series':<32}{'median s':>10}{'min s':>9}{'max s':>9}")
    for k, v in series.items():
        print(f"{k:<32}{med[k]:>10.3f}{min(v):>9.3f}{max(v):>9.3f}")
    for t in targets:
        print(f"target {t['label']:<32} {t['value']:.3f}{t['unit']} <= {t['limit']}{t['unit']} "
              f"{t['result']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
