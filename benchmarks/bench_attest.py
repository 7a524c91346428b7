#!/usr/bin/env python3
"""Benchmark ``mlprov attest`` / ``mlprov verify`` against ``openssl dgst`` and model_signing.

The script generates a synthetic model (one large file plus a number of small files in
sub-directories, or with ``--shards N`` N equal shards), warms the page cache with one untimed
read, then times in paired, interleaved rounds (every round runs every command once, in the same
order: A B A B ...):

* ``openssl dgst -sha256`` over every file of the model (one invocation),
* with ``--shards``: the same files split between two ``openssl dgst`` processes run at once,
* ``mlprov attest`` (ECDSA P-256 key, no passphrase),
* ``mlprov verify`` of the evidence ``attest`` just wrote,
* ``model_signing sign key`` and ``model_signing verify key`` (signature outside the model),

and the start-up time of ``mlprov --help`` and ``model_signing --help``. Every command runs as a
subprocess resolved from the same virtual environment as ``sys.executable``. Each run is
measured in wall-clock time and in CPU time: user + system time of the process and of every
descendant it waited for (``getrusage(RUSAGE_CHILDREN)`` before and after; mlprov's forked
hashing processes are waited for, so they count). For every figure the script reports the
median of the per-round ratios (the headline: each round's two runs are seconds apart, so
drift in machine load cancels) and the ratio of the medians, each marked PASS or MISS.

Exit status: 0 whether or not targets are met (this is a benchmark), 2 on bad arguments, 3 when a
command fails (its stderr is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MODEL_NAME = "bench"
MARKER = ".mlprov-bench"  # marks a --keep directory as one this script owns
SCHEMA_VERSION = 2  # of the --json document: 2 added CPU time, paired ratios, shards

KIB = 1 << 10
MIB = 1 << 20
SMALL_MIN = 4 * KIB
SMALL_MAX = 1 * MIB
GEN_CHUNK = 16 * MIB
READ_CHUNK = 8 * MIB

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": KIB,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": MIB,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1 << 30,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1 << 40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_VERSION_RE = re.compile(r"\d+(?:\.\d+)+[\w.+-]*")


class CommandError(Exception):
    """A benchmarked or set-up command exited non-zero."""

    def __init__(self, cmd: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"command failed with exit status {returncode}: {' '.join(cmd)}")
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


Logger = Callable[[str], None]


class SetupError(Exception):
    """The benchmark cannot start (missing tool, unusable directory, ...)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit of one figure in wall-clock and in CPU time; None: reported, no target."""

    wall: float | None = None
    cpu: float | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """A reported figure: ``numerator / denominator`` (or absolute seconds) and its limits."""

    key: str
    label: str
    numerator: str
    denominator: str | None  # None: absolute seconds of ``numerator``
    limit: Limit


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed run: wall-clock seconds, and CPU seconds of the process tree it waited for."""

    wall: float
    user: float
    sys: float

    @property
    def cpu(self) -> float:
        """User plus system seconds."""
        return self.user + self.sys


MEASURES = ("wall", "cpu")


@dataclass(slots=True)
class Series:
    """The samples of one benchmarked command, in run order (sample ``i`` is round ``i + 1``)."""

    key: str
    label: str
    samples: list[Sample] = field(default_factory=list)

    def values(self, measure: str) -> list[float]:
        """The ``wall`` or ``cpu`` seconds of every sample."""
        return [getattr(s, measure) for s in self.samples]

    def median(self, measure: str) -> float:
        """Median of the ``wall`` or ``cpu`` seconds."""
        return statistics.median(self.values(measure))


@dataclass(frozen=True, slots=True)
class Tools:
    """Executables used by the benchmark."""

    openssl: str
    mlprov: Path | None
    model_signing: Path


#: Parallel ``openssl dgst`` processes of the sharded baseline (issue 16: "two parallel
#: openssl processes").
OPENSSL_PROCESSES = 2

_MS_TARGETS: tuple[Target, ...] = (
    Target("attest_vs_ms_sign", "attest / model_signing sign", "mlprov_attest", "ms_sign",
           Limit(wall=0.85)),
    Target("verify_vs_ms_verify", "verify / model_signing verify", "mlprov_verify", "ms_verify",
           Limit(wall=0.85)),
)
_STARTUP = Target("startup", "mlprov --help start-up", "mlprov_help", None, Limit(wall=0.15))

#: Figures of a model with one large file (issue 16: attest 1 GiB <= 1.05x openssl in wall,
#: <= 1.15x in CPU).
TARGETS: tuple[Target, ...] = (
    Target("attest_vs_openssl", "attest / openssl dgst", "mlprov_attest", "openssl_dgst",
           Limit(wall=1.05, cpu=1.15)),
    *_MS_TARGETS,
    Target("verify_vs_openssl", "verify / openssl dgst", "mlprov_verify", "openssl_dgst",
           Limit()),
    _STARTUP,
)

#: Figures of a sharded model (issue 16: sharded 2 GiB <= 1.1x two parallel openssl processes
#: in wall). One openssl process is still timed, for CPU and for information.
SHARDED_TARGETS: tuple[Target, ...] = (
    Target("attest_vs_openssl_par", f"attest / openssl dgst x{OPENSSL_PROCESSES}",
           "mlprov_attest", "openssl_par", Limit(wall=1.1)),
    Target("verify_vs_openssl_par", f"verify / openssl dgst x{OPENSSL_PROCESSES}",
           "mlprov_verify", "openssl_par", Limit()),
    Target("attest_vs_openssl", "attest / openssl dgst", "mlprov_attest", "openssl_dgst",
           Limit()),
    *_MS_TARGETS,
    _STARTUP,
)

LABELS: dict[str, str] = {
    "openssl_dgst": "openssl dgst -sha256",
    "openssl_par": f"openssl dgst x{OPENSSL_PROCESSES} parallel",
    "mlprov_attest": "mlprov attest",
    "mlprov_verify": "mlprov verify",
    "ms_sign": "model_signing sign key",
    "ms_verify": "model_signing verify key",
    "mlprov_help": "mlprov --help",
    "ms_help": "model_signing --help",
}

# --------------------------------------------------------------------------- sizes & model


def parse_size(text: str) -> int:
    """Parse a size such as ``1GiB``, ``64MiB``, ``500MB`` or ``1048576`` into bytes."""
    match = _SIZE_RE.match(text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (try 1GiB, 64MiB, 500MB)")
    value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return value


def format_size(n: int) -> str:
    """Format a byte count with a binary unit, e.g. ``1.00 GiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def plan_model(total: int, small_files: int, seed: int, shards: int = 1
               ) -> list[tuple[str, int]]:
    """Return ``(relative path, size)`` for each file of a model of ``total`` bytes.

    ``small_files`` files of log-uniform size between 4 KiB and 1 MiB go into nested
    sub-directories (scaled down if they would exceed half the model); the rest is one large
    ``model.safetensors`` file, or with ``shards`` > 1 that many equal shards named as
    Hugging Face names them (``model-00001-of-00004.safetensors``; the last takes the remainder).
    Large files come last.
    """
    rng = random.Random(seed)
    sizes = [int(SMALL_MIN * (SMALL_MAX / SMALL_MIN) ** rng.random()) for _ in range(small_files)]
    budget = total // 2
    if sum(sizes) > budget:
        scale = budget / sum(sizes)
        sizes = [max(1, int(s * scale)) for s in sizes]
    plan = [(f"shard{i % 4}/part{i % 3}/small_{i:03d}.bin", size) for i, size in enumerate(sizes)]
    rest = total - sum(sizes)
    if shards == 1:
        return [*plan, ("model.safetensors", rest)]
    each = rest // shards
    for i in range(shards):
        size = each if i < shards - 1 else rest - each * (shards - 1)
        plan.append((f"model-{i + 1:05d}-of-{shards:05d}.safetensors", size))
    return plan


def split_files(files: Sequence[tuple[Path, int]], parts: int) -> list[list[Path]]:
    """Deal ``(path, size)`` into ``parts`` lists of about equal bytes (largest first, greedy)."""
    loads = [0] * parts
    groups: list[list[Path]] = [[] for _ in range(parts)]
    for path, size in sorted(files, key=lambda item: -item[1]):
        k = loads.index(min(loads))
        groups[k].append(path)
        loads[k] += size
    return [sorted(group) for group in groups if group]


def existing_model_matches(model: Path, plan: Sequence[tuple[str, int]]) -> bool:
    """Whether ``model`` holds exactly the planned files with the planned sizes."""
    if not model.is_dir():
        return False
    found = {
        p.relative_to(model).as_posix(): p.stat().st_size for p in model.rglob("*") if p.is_file()
    }
    return found == dict(plan)


def write_model(model: Path, plan: Sequence[tuple[str, int]]) -> None:
    """Write the planned files under ``model`` with random content (os.urandom in chunks)."""
    for rel, size in plan:
        path = model / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            remaining = size
            while remaining:
                n = min(remaining, GEN_CHUNK)
                fh.write(os.urandom(n))
                remaining -= n


def warm_page_cache(files: Sequence[Path]) -> int:
    """Read every file once (untimed) so all timed runs see a warm page cache."""
    total = 0
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    for path in files:
        with path.open("rb", buffering=0) as fh:
            while n := fh.readinto(view):
                total += n
    return total


# --------------------------------------------------------------------------- commands


def venv_tool(name: str) -> Path:
    """Path of console script ``name`` next to ``sys.executable`` (the same venv)."""
    return Path(sys.executable).parent / name


def find_tools(skip_mlprov: bool) -> Tools:
    """Locate openssl, mlprov and model_signing, or raise SetupError."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SetupError("openssl not found on PATH")
    model_signing = venv_tool("model_signing")
    if not model_signing.exists():
        raise SetupError(f"model_signing not found at {model_signing} (pip install model-signing)")
    mlprov: Path | None = None
    if not skip_mlprov:
        mlprov = venv_tool("mlprov")
        if not mlprov.exists():
            raise SetupError(
                f"mlprov not found at {mlprov} (pip install -e . or use --skip-mlprov)"
            )
    return Tools(openssl=openssl, mlprov=mlprov, model_signing=model_signing)


def bench_env() -> dict[str, str]:
    """Environment for subprocesses: inherited, minus the key passphrase and no-bytecode.

    With ``PYTHONDONTWRITEBYTECODE`` set, an editable mlprov (``pip install -e .``) would
    compile every module from source on every run (about 0.05 s of CPU per attest here), while
    the baselines, installed from wheels, load the ``.pyc`` files pip wrote. A user's install
    has them too, so the benchmark lets the untimed warm-up round write them.
    """
    env = dict(os.environ)
    env.pop("MLPROV_KEY_PASSPHRASE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(cmd: Sequence[str | Path], env: dict[str, str]) -> float:
    """Run ``cmd``, capturing its output; return wall-clock seconds or raise CommandError."""
    args = [str(c) for c in cmd]
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise CommandError(args, proc.returncode, proc.stdout, proc.stderr)
    return elapsed


def measure(commands: Sequence[Sequence[str | Path]], env: dict[str, str]) -> Sample:
    """Start ``commands`` at once and wait for all; return their wall-clock and CPU time.

    Wall-clock runs from the first start to the last exit. CPU time is the difference of
    ``getrusage(RUSAGE_CHILDREN)`` around the runs: the user and system time of every process
    this script waited for in between, which includes each of their descendants that was itself
    waited for (the kernel adds a reaped child's times to its parent's). mlprov waits for the
    hashing processes it forks, so their CPU counts. Nothing else runs beside them: this script
    starts no other child meanwhile. Output goes to temporary files (no reader threads here).
    Raises CommandError for the first command that exits non-zero.
    """
    argvs = [[str(c) for c in cmd] for cmd in commands]
    with contextlib.ExitStack() as files:
        outputs = [
            (files.enter_context(tempfile.TemporaryFile()),
             files.enter_context(tempfile.TemporaryFile()))
            for _ in argvs
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        procs = [
            subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            for argv, (out, err) in zip(argvs, outputs, strict=True)
        ]
        codes = [proc.wait() for proc in procs]
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for argv, code, (out, err) in zip(argvs, codes, outputs, strict=True):
            if code != 0:
                out.seek(0)
                err.seek(0)
                raise CommandError(argv, code, out.read().decode(errors="replace"),
                                   err.read().decode(errors="replace"))
    return Sample(wall=wall, user=after.ru_utime - before.ru_utime,
                  sys=after.ru_stime - before.ru_stime)


def tool_version(cmd: Sequence[str | Path], env: dict[str, str]) -> str:
    """Run a ``--version``-style command and return the first version number it prints."""
    args = [str(c) for c in cmd]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    match = _VERSION_RE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        return "unknown"
    return match.group(0)


def make_openssl_key(openssl: str, work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """Create an ECDSA P-256 key pair (PKCS#8 / SPKI PEM) for model_signing with openssl."""
    private, public = work / "ms-key.pem", work / "ms-key.pub.pem"
    run(
        [
            openssl,
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            private,
        ],
        env,
    )
    run([openssl, "pkey", "-in", private, "-pubout", "-out", public], env)
    return private, public


def make_mlprov_key(mlprov: Path, work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """Create an ECDSA P-256 key with ``mlprov keygen`` (writes KEY and KEY.pub)."""
    private = work / "mlprov-key.pem"
    run([mlprov, "keygen", "--out", private, "--type", "ecdsa-p256"], env)
    public = Path(f"{private}.pub")
    if not public.exists():
        raise SetupError(f"mlprov keygen did not write the public key {public}")
    return private, public


# --------------------------------------------------------------------------- benchmark


@dataclass(slots=True)
class Workspace:
    """Paths of one benchmark run."""

    root: Path
    model: Path
    owned: bool  # delete root at the end

    def cleanup(self) -> None:
        """Delete the workspace when it is a temporary directory."""
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)


def prepare_workspace(keep: Path | None, tmpdir: Path | None) -> Workspace:
    """Create a temporary workspace, or reuse/claim the ``--keep`` directory."""
    if keep is None:
        root = Path(tempfile.mkdtemp(prefix="mlprov-bench-", dir=tmpdir))
        return Workspace(root=root, model=root / "model", owned=True)
    keep = keep.resolve()
    if keep.exists() and any(keep.iterdir()) and not (keep / MARKER).exists():
        raise SetupError(f"--keep directory {keep} is not empty and was not made by this script")
    keep.mkdir(parents=True, exist_ok=True)
    (keep / MARKER).touch()
    # Remove what an earlier run left behind, except the (possibly reusable) model.
    for child in keep.iterdir():
        if child.name in ("model", MARKER):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return Workspace(root=keep, model=keep / "model", owned=False)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key pairs: one from ``mlprov keygen`` (absent with --skip-mlprov), one for model_signing."""

    mlprov: tuple[Path, Path] | None
    model_signing: tuple[Path, Path]


Argv = list[str | Path]


def round_commands(
    tools: Tools,
    ws: Workspace,
    files: Sequence[Path],
    keys: Keys,
    rnd: int,
    openssl_groups: Sequence[Sequence[Path]] = (),
) -> list[tuple[str, list[Argv]]]:
    """The ``(series key, argvs)`` timed in round ``rnd``, in execution order.

    A series' argvs run at the same time (one each, but for the parallel openssl baseline,
    one process per group of ``openssl_groups``). Evidence and signatures go to fresh paths
    outside the model directory, so they are never hashed as part of the model and every run
    writes from scratch.
    """
    commands: list[tuple[str, list[Argv]]] = [
        ("openssl_dgst", [[tools.openssl, "dgst", "-sha256", *files]]),
    ]
    if openssl_groups:
        commands.append(
            ("openssl_par", [[tools.openssl, "dgst", "-sha256", *g] for g in openssl_groups])
        )
    if tools.mlprov is not None and keys.mlprov is not None:
        key, pub = keys.mlprov
        evidence = ws.root / f"evidence-{rnd}"
        attest: list[str | Path] = [tools.mlprov, "attest", ws.model, "--name", MODEL_NAME]
        attest += ["--key", key, "--out", evidence, "--commit", COMMIT]
        verify: list[str | Path] = [tools.mlprov, "verify", ws.model]
        verify += ["--evidence", evidence, "--key", pub]
        commands += [("mlprov_attest", [attest]), ("mlprov_verify", [verify])]
    ms_key, ms_pub = keys.model_signing
    signature = ws.root / f"model-{rnd}.sig"
    sign: list[str | Path] = [tools.model_signing, "sign", "key", ws.model]
    sign += ["--private_key", ms_key, "--signature", signature]
    check: list[str | Path] = [tools.model_signing, "verify", "key", ws.model]
    check += ["--signature", signature, "--public_key", ms_pub]
    commands += [("ms_sign", [sign]), ("ms_verify", [check])]
    return commands


def prepare_model(ws: Workspace, plan: Sequence[tuple[str, int]], log: Logger) -> bool:
    """Generate the model (untimed) unless a matching one exists; return whether reused."""
    if existing_model_matches(ws.model, plan):
        log(f"reusing model in {ws.model}")
        return True
    if ws.model.exists():
        shutil.rmtree(ws.model)
    total = sum(size for _, size in plan)
    log(f"generating {format_size(total)} model ({len(plan)} files) in {ws.model} ...")
    start = time.perf_counter()
    write_model(ws.model, plan)
    log(f"  generated in {time.perf_counter() - start:.1f} s")
    return False


def run_benchmark(args: argparse.Namespace, tools: Tools, ws: Workspace) -> dict[str, Any]:
    """Generate the model, time every command and return the results document."""
    env = bench_env()
    log = make_logger(quiet=args.json)
    load_before = os.getloadavg()
    plan = plan_model(args.size, args.small_files, args.seed, args.shards)
    files = sorted(ws.model / rel for rel, _ in plan)
    groups = (
        split_files([(ws.model / rel, size) for rel, size in plan], OPENSSL_PROCESSES)
        if args.shards > 1
        else []
    )
    reused = prepare_model(ws, plan, log)

    keys = Keys(
        mlprov=None if tools.mlprov is None else make_mlprov_key(tools.mlprov, ws.root, env),
        model_signing=make_openssl_key(tools.openssl, ws.root, env),
    )
    help_commands: list[tuple[str, Path]] = [("ms_help", tools.model_signing)]
    if tools.mlprov is not None:
        help_commands.insert(0, ("mlprov_help", tools.mlprov))

    # Untimed: one read of the model (every timed run sees a warm page cache), one start-up of
    # each Python CLI and one round of every command (writes .pyc files, loads the tools).
    warm_page_cache(files)
    for _, exe in help_commands:
        run([exe, "--help"], env)
    log("warm-up round (untimed)")
    for _, cmds in round_commands(tools, ws, files, keys, 0, groups):
        measure(cmds, env)

    series: dict[str, Series] = {}
    for rnd in range(1, args.repeat + 1):
        log(f"round {rnd}/{args.repeat}")
        for key, cmds in round_commands(tools, ws, files, keys, rnd, groups):
            s = series.setdefault(key, Series(key, LABELS[key]))
            s.samples.append(measure(cmds, env))
            log(f"  {s.label:<28} wall {s.samples[-1].wall:7.3f} s  cpu {s.samples[-1].cpu:7.3f} s")

    log(f"start-up: {args.startup_repeat} runs each")
    for _ in range(args.startup_repeat):
        for key, exe in help_commands:
            series.setdefault(key, Series(key, LABELS[key])).samples.append(
                measure([[exe, "--help"]], env)
            )

    load = {"before": list(load_before), "after": list(os.getloadavg())}
    return build_report(args, tools, ws, plan, series, reused=reused, load=load,
                        openssl_groups=[[f.relative_to(ws.model).as_posix() for f in g]
                                        for g in groups])


def make_logger(*, quiet: bool) -> Logger:
    """Return a progress logger writing to stderr (silent with ``--json``)."""

    def log(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return log


def _result(value: float | None, limit: float | None) -> str:
    """``PASS``/``MISS`` against ``limit``; ``SKIP`` when not measured; ``-`` with no target."""
    if value is None:
        return "SKIP"
    if limit is None:
        return "-"
    return "PASS" if value <= limit else "MISS"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def evaluate(num: Series | None, den: Series | None, absolute: bool, measure: str,
             limit: float | None) -> dict[str, Any]:
    """One figure in one measure (``wall`` or ``cpu``): headline value, both estimates, result.

    For a ratio the headline ``value`` is the median of the per-round ratios (each round's
    two runs are seconds apart, so slow drift in machine load cancels); the ratio of the
    medians is reported beside it, with its own result. An absolute figure is a median.
    """
    value: float | None = None
    of_medians: float | None = None
    per_round: list[float] | None = None
    if num is not None and absolute:
        value = num.median(measure)
    elif num is not None and den is not None:
        per_round = [
            _ratio(a, b) for a, b in zip(num.values(measure), den.values(measure), strict=True)
        ]
        value = statistics.median(per_round)
        of_medians = _ratio(num.median(measure), den.median(measure))
    return {
        "value": value,
        "median_of_ratios": None if absolute else value,
        "ratio_of_medians": of_medians,
        "per_round": per_round,
        "limit": limit,
        "pass": None if value is None or limit is None else value <= limit,
        "result": _result(value, limit),
        "result_of_medians": None if absolute else _result(of_medians, limit),
    }


def evaluate_targets(series: dict[str, Series], targets: Sequence[Target]
                     ) -> list[dict[str, Any]]:
    """Compute each figure's values and results in wall and CPU time (``None``: skipped)."""
    results: list[dict[str, Any]] = []
    for t in targets:
        num = series.get(t.numerator)
        den = series.get(t.denominator) if t.denominator else None
        absolute = t.denominator is None
        entry: dict[str, Any] = {
            "key": t.key,
            "label": t.label,
            "unit": "s" if absolute else "x",
            "numerator": t.numerator,
            "denominator": t.denominator,
        }
        for measure in MEASURES:
            entry[measure] = evaluate(num, den, absolute, measure, getattr(t.limit, measure))
        results.append(entry)
    return results


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(values),
        "min_s": min(values),
        "max_s": max(values),
        "samples_s": values,
    }


def build_report(
    args: argparse.Namespace,
    tools: Tools,
    ws: Workspace,
    plan: Sequence[tuple[str, int]],
    series: dict[str, Series],
    *,
    reused: bool,
    load: dict[str, list[float]],
    openssl_groups: list[list[str]],
) -> dict[str, Any]:
    """Assemble the JSON-serialisable results document."""
    env = bench_env()
    versions = {
        "python": platform.python_version(),
        "openssl": tool_version([tools.openssl, "version"], env),
        "model_signing": tool_version([tools.model_signing, "--version"], env),
    }
    if tools.mlprov is not None:
        versions["mlprov"] = tool_version([tools.mlprov, "--version"], env)
    large = [size for _, size in plan[args.small_files:]]
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "bytes": args.size,
            "size": format_size(args.size),
            "files": len(plan),
            "small_files": args.small_files,
            "shards": args.shards,
            "large_files_bytes": large,
            "path": str(ws.model) if not ws.owned else None,
            "reused": reused,
        },
        "repeat": args.repeat,
        "startup_repeat": args.startup_repeat,
        "openssl_par_files": openssl_groups,  # the files of each parallel openssl process
        "headline": "median_of_ratios",
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "load_average": load,
        "versions": versions,
        "timings": {
            key: {
                "label": s.label,
                "processes": len(openssl_groups) if key == "openssl_par" else 1,
                "wall": _stats(s.values("wall")),
                "cpu": {
                    **_stats(s.values("cpu")),
                    "user_samples_s": [x.user for x in s.samples],
                    "sys_samples_s": [x.sys for x in s.samples],
                },
            }
            for key, s in series.items()
        },
        "targets": evaluate_targets(series, SHARDED_TARGETS if args.shards > 1 else TARGETS),
    }


def _figure(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.3f}{unit}"


def render_text(report: dict[str, Any]) -> str:
    """Render the results document as human-readable tables."""
    model = report["model"]
    size = model["bytes"]
    load = report["load_average"]
    layout = (
        f"{model['shards']} shards + {model['small_files']} small"
        if model["shards"] > 1
        else f"{model['small_files']} small + 1 large"
    )
    lines = [
        (
            f"mlprov benchmark: {model['size']} model, {model['files']} files ({layout}); "
            f"median of {report['repeat']} paired rounds (start-up: {report['startup_repeat']}), "
            "warm page cache"
        ),
        f"platform: {report['platform']['system']}, {report['platform']['cpus']} CPUs",
        "load average (1/5/15 min): "
        + " ".join(f"{x:.2f}" for x in load["before"])
        + " before, "
        + " ".join(f"{x:.2f}" for x in load["after"])
        + " after",
        "versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
        f"{'command':<30} {'wall s':>7} {'min s':>7} {'max s':>7} {'cpu s':>7} "
        f"{'user s':>7} {'sys s':>7} {'MiB/s':>6}",
        "-" * 86,
    ]
    for key, t in report["timings"].items():
        wall, cpu = t["wall"], t["cpu"]
        rate = "" if key.endswith("_help") else f"{size / MIB / wall['median_s']:6.0f}"
        user = statistics.median(cpu["user_samples_s"])
        system = statistics.median(cpu["sys_samples_s"])
        row = (
            f"{t['label']:<30} {wall['median_s']:7.3f} {wall['min_s']:7.3f} "
            f"{wall['max_s']:7.3f} {cpu['median_s']:7.3f} {user:7.3f} {system:7.3f} {rate:>6}"
        )
        lines.append(row.rstrip())
    lines += [
        "",
        "paired: median of the per-round ratios (the headline, judged); "
        "of medians: ratio of the medians",
        f"{'target':<30} {'time':<4} {'paired':>8} {'of medians':>10} {'limit':>9}  result",
        "-" * 74,
    ]
    for t in report["targets"]:
        unit = t["unit"]
        for measure in MEASURES:
            f = t[measure]
            if f["limit"] is None and measure == "cpu" and unit == "s":
                continue  # start-up CPU: in the table above, no figure of its own
            limit = "-" if f["limit"] is None else f"<= {f['limit']:.2f}{unit}"
            result = f["result"]
            if f["result_of_medians"] not in (None, result):
                result += f" (of medians: {f['result_of_medians']})"
            label = t["label"] if measure == "wall" else ""
            lines.append(
                f"{label:<30} {measure:<4} {_figure(f['value'], unit):>8} "
                f"{_figure(f['ratio_of_medians'], unit) if unit == 'x' else '-':>10} "
                f"{limit:>9}  {result}"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def positive_int(text: str) -> int:
    """Argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def non_negative_int(text: str) -> int:
    """Argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Time mlprov attest/verify against openssl dgst and model_signing.",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("1GiB"),
        help="total model size, e.g. 1GiB, 64MiB, 500MB (default: 1GiB)",
    )
    parser.add_argument(
        "--small-files",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="number of small files (4 KiB..1 MiB) in sub-directories, "
        "besides the large file(s) (default: 20, or 0 with --shards)",
    )
    parser.add_argument(
        "--shards",
        type=positive_int,
        default=1,
        metavar="N",
        help="split the large file into N equal shards and also time the files split between "
        f"{OPENSSL_PROCESSES} openssl processes run at once (default: 1, one large file)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=9,
        help="paired rounds: timed runs per command; medians are reported (default: 9)",
    )
    parser.add_argument(
        "--startup-repeat",
        type=positive_int,
        default=10,
        metavar="N",
        help="timed runs of each '--help' start-up (default: 10)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="work in DIR and keep the model, keys and evidence there; "
        "a matching model from an earlier run is reused",
    )
    parser.add_argument(
        "--tmpdir",
        type=Path,
        metavar="DIR",
        help="parent of the temporary work directory (default: system temp)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for the small-file sizes (default: 0)"
    )
    parser.add_argument(
        "--skip-mlprov",
        action="store_true",
        help="time only the baselines (openssl, model_signing)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table"
    )
    parser.add_argument(
        "--env-check",
        action="store_true",
        help="run the benchmark in two virtualenvs, a plain install and one that also has "
        "jsonschema[format-nongpl], and print both environments' ratios",
    )
    parser.add_argument(
        "--env-dir",
        type=Path,
        metavar="DIR",
        help="where --env-check keeps (and reuses) its virtualenvs (default: KEEP/envs with "
        "--keep, else TMPDIR/mlprov-bench-envs)",
    )
    parser.add_argument(
        "--with-jupyterlab",
        action="store_true",
        help="--env-check: the crowded environment also gets jupyterlab and its dependencies",
    )
    args = parser.parse_args(argv)
    if args.small_files is None:
        args.small_files = 0 if args.shards > 1 else 20
    if args.shards > 1 and args.shards < OPENSSL_PROCESSES:
        parser.error(f"--shards needs at least {OPENSSL_PROCESSES} shards")
    if (args.env_dir is not None or args.with_jupyterlab) and not args.env_check:
        parser.error("--env-dir and --with-jupyterlab need --env-check")
    if args.env_check and args.skip_mlprov:
        parser.error("--env-check measures mlprov; it cannot be combined with --skip-mlprov")
    return args


# --------------------------------------------------------------------------- --env-check

REPO = Path(__file__).resolve().parents[1]
#: What every environment installs besides mlprov itself (the benchmark's baselines).
BASE_REQUIREMENTS = ("model-signing==1.1.1", "pyopenssl")


@dataclass(frozen=True, slots=True)
class BenchEnv:
    """A virtualenv --env-check runs the benchmark in."""

    name: str
    extras: tuple[str, ...]  # installed besides mlprov and BASE_REQUIREMENTS
    description: str


def bench_envs(with_jupyterlab: bool) -> list[BenchEnv]:
    """The plain install and the crowded one (its own jsonschema format checkers...)."""
    crowded = ("jsonschema[format-nongpl]", *(("jupyterlab",) if with_jupyterlab else ()))
    return [
        BenchEnv("plain", (), "pip install -e . " + " ".join(BASE_REQUIREMENTS)),
        BenchEnv("crowded", crowded, "the same plus " + " ".join(crowded)),
    ]


def _stamp(bench: BenchEnv) -> str:
    """What an environment was built from: rebuilt when this (or pyproject.toml) changes."""
    import hashlib

    pyproject = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    return json.dumps({"python": sys.version, "executable": sys.executable,
                       "requirements": [*BASE_REQUIREMENTS, *bench.extras],
                       "pyproject": pyproject}, sort_keys=True)


def _child_env() -> dict[str, str]:
    """The benchmark's environment, without what would point a venv at other code."""
    env = bench_env()
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(name, None)
    return env


def ensure_env(bench: BenchEnv, root: Path, log: Logger) -> Path:
    """Create (or reuse) the virtualenv for ``bench`` under ``root``; return its python."""
    venv = root / bench.name
    python = venv / "bin" / "python"
    stamp = venv / ".mlprov-bench-env"
    if python.exists() and stamp.exists() and stamp.read_text() == _stamp(bench):
        log(f"env {bench.name}: reusing {venv}")
        return python
    if venv.exists():
        shutil.rmtree(venv)
    log(f"env {bench.name}: creating {venv} ({bench.description}) ...")
    start = time.perf_counter()
    env = _child_env()
    run([sys.executable, "-m", "venv", venv], env)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "-e", REPO, *BASE_REQUIREMENTS, *bench.extras], env)
    stamp.write_text(_stamp(bench))
    log(f"  installed in {time.perf_counter() - start:.0f} s")
    return python


def _has_module(python: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    done = subprocess.run([str(python), "-c", code], env=_child_env(), check=False,
                          capture_output=True)
    return done.returncode == 0


def child_argv(args: argparse.Namespace, keep: Path) -> list[str]:
    """The benchmark's own options, for the run inside one environment."""
    return [str(Path(__file__).resolve()), "--json", "--size", str(args.size),
            "--small-files", str(args.small_files), "--repeat", str(args.repeat),
            "--startup-repeat", str(args.startup_repeat), "--seed", str(args.seed),
            "--shards", str(args.shards), "--keep", str(keep)]


def run_env_check(args: argparse.Namespace) -> dict[str, Any]:
    """Build both environments, run the benchmark in each, return both reports."""
    log = make_logger(quiet=args.json)
    base = args.tmpdir or Path(tempfile.gettempdir())
    root = (args.env_dir or (args.keep / "envs" if args.keep else base / "mlprov-bench-envs"))
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    # The model is shared by both runs (generated once, then reused).
    keep = args.keep.resolve() / "model-run" if args.keep else Path(
        tempfile.mkdtemp(prefix="mlprov-bench-", dir=args.tmpdir))
    results: dict[str, Any] = {}
    try:
        for bench in bench_envs(args.with_jupyterlab):
            python = ensure_env(bench, root, log)
            log(f"env {bench.name}: benchmark ...")
            argv = [str(python), *child_argv(args, keep)]
            start = time.perf_counter()
            proc = subprocess.run(argv, env=_child_env(), capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
            log(f"  done in {time.perf_counter() - start:.0f} s")
            results[bench.name] = {
                "description": bench.description,
                "venv": str(python.parent.parent),
                "rfc3987_syntax": _has_module(python, "rfc3987_syntax"),
                "jupyterlab": _has_module(python, "jupyterlab"),
                "report": json.loads(proc.stdout),
            }
    finally:
        if not args.keep:
            shutil.rmtree(keep, ignore_errors=True)
    return {"env_check": results}


def render_env_check(document: dict[str, Any]) -> str:
    """Both environments' headline figures side by side, then each environment's full table."""
    envs = document["env_check"]
    first = next(iter(envs.values()))["report"]
    # The first target is the attest baseline of the model's shape (one file, or shards).
    attest_key = first["targets"][0]["key"]
    columns = [
        (attest_key, "wall", f"{first['targets'][0]['label']} wall"),
        (attest_key, "cpu", "cpu"),
        ("verify_vs_ms_verify", "wall", "verify / model_signing wall"),
        ("startup", "wall", "mlprov --help"),
    ]
    header = f"{'environment':<12} {'rfc3987-syntax':<15} " + " ".join(
        f"{title:<30}" for _, _, title in columns
    ).rstrip()
    lines = [
        (f"environment check: {first['model']['size']} model, {first['model']['files']} "
         f"files; median of {first['repeat']} paired rounds (start-up: "
         f"{first['startup_repeat']}); {first['platform']['cpus']} CPUs"),
        "",
        header,
        "-" * len(header),
    ]
    for name, env in envs.items():
        targets = {t["key"]: t for t in env["report"]["targets"]}
        cells = []
        for key, measure, _ in columns:
            t, f = targets[key], targets[key][measure]
            limit = "" if f["limit"] is None else f" (<={f['limit']}{t['unit']})"
            cells.append(f"{_figure(f['value'], t['unit'])} {f['result']}{limit}")
        present = "installed" if env["rfc3987_syntax"] else "absent"
        lines.append(f"{name:<12} {present:<15} " + " ".join(f"{c:<30}" for c in cells).rstrip())
    lines.append("")
    for name, env in envs.items():
        lines += [f"== {name}: {env['description']} ({env['venv']})", render_text(env["report"]),
                  ""]
    return "\n".join(lines).rstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = parse_args(argv)
    if args.env_check:
        try:
            document = run_env_check(args)
        except SetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            print(f"--- stderr ---\n{exc.stderr.rstrip()}", file=sys.stderr)
            return 3
        print(json.dumps(document, indent=2) if args.json else render_env_check(document))
        return 0
    if importlib.util.find_spec("rfc3987_syntax") is not None:
        print("note: rfc3987-syntax is installed here (jsonschema[format-nongpl], which the "
              "test extra brings); mlprov's runtime does not load it. --env-check measures "
              "a plain install and one with it side by side.", file=sys.stderr)
    ws: Workspace | None = None
    try:
        tools = find_tools(args.skip_mlprov)
        ws = prepare_workspace(args.keep, args.tmpdir)
        report = run_benchmark(args, tools, ws)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.stdout.strip():
            print(f"--- stdout ---\n{exc.stdout.rstrip()}", file=sys.stderr)
        print(f"--- stderr ---\n{exc.stderr.rstrip()}", file=sys.stderr)
        return 3
    finally:
        if ws is not None:
            ws.cleanup()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
