#!/usr/bin/env python3
"""Benchmark ``mlprov lineage verify`` on a long chain of generations.

Generates a chain of ``--generations`` models (default 100): generation 0 is a
root, each later one a fine-tune of the one before, recorded with
``--parent fine-tune-of=<previous evidence>``. Every model is a small real file
(a weight vector, continued from its parent's by a few steps of "training" on
fresh random data). Then it times, warm, the median of ``--repeat`` runs of:

* ``verify_lineage`` in-process (index the search directory once, verify each
  bundle once, check each link), without re-hashing ancestors' files;
* the same with ``deep=True`` (every ancestor's files re-hashed);
* the ``mlprov lineage verify`` command, as a subprocess (start-up included).

Target: the in-process walk of 100 generations in at most 1 s.

Evidence is written by ``mlprov.attest`` (with an empty SBOM environment, so
generation does not scan the installed packages 100 times). ``--minimal`` writes
only what lineage reads (the OMS signature, the provenance with its parent
record, the index) with mlprov's own building blocks.

Exit status: 0 whether or not the target is met, 2 on bad arguments, 3 when a
step fails (the chain does not verify, a command fails).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TARGET_S = 1.0
DEEP_TARGET_S = 1.0  # issue 16 item 6: --deep of 1000 generations
MERGE_TARGET_S = 0.5  # issue 16 item 6: a merge of 200 parents (--deep)


def _target(label: str, value: float, limit: float) -> dict[str, Any]:
    return {"label": label, "value_s": round(value, 4), "limit_s": limit,
            "result": "PASS" if value <= limit else "MISS"}


def make_model(out: Path, parent: Path | None, rng: random.Random, size: int) -> None:
    """A weight vector: random for a root, else the parent's nudged by a few SGD-like steps."""
    out.mkdir(parents=True)
    count = size // 4
    if parent is None:
        weights = [rng.gauss(0, 0.1) for _ in range(count)]
    else:
        data = (parent / "weights.bin").read_bytes()
        weights = list(struct.unpack(f"<{count}f", data))
        for _ in range(3):
            weights = [w - 0.01 * (w - rng.gauss(0, 0.1)) for w in weights]
    (out / "weights.bin").write_bytes(struct.pack(f"<{count}f", *weights))
    (out / "config.json").write_text(json.dumps({"features": count}) + "\n")


def write_evidence(model: Path, out: Path, name: str, signer: Any,
                   parent_evidence: Path | list[Path] | None, trust: Any,
                   role: str = "fine-tune-of") -> None:
    """Write model.sig, provenance (with the parent record) and evidence.json."""
    from mlprov import __version__
    from mlprov.attestation import make_inputs
    from mlprov.bundles import sign_statement
    from mlprov.evidence import (
        INDEX_FILE,
        OMS_FILE,
        PROVENANCE_FILE,
        EvidenceIndex,
        write_dir_atomically,
    )
    from mlprov.hashing import hash_path
    from mlprov.identity import code_from_commit, compute_identity
    from mlprov.lineage import ParentRole, ParentSpec, resolve_parent
    from mlprov.oms import manifest_statement
    from mlprov.provenance import build_provenance

    manifest = hash_path(model)
    inputs = make_inputs(code_from_commit(COMMIT), [], {"name": name}, {"torch": 0})
    parents = []
    if parent_evidence is not None:
        for evidence in parent_evidence if isinstance(parent_evidence, list) \
                else [parent_evidence]:
            spec = ParentSpec(role=ParentRole(role), evidence=evidence)
            parents.append(resolve_parent(spec, trust).descriptor())
    now = dt.datetime.now(dt.UTC)
    provenance = build_provenance(name=name, root=manifest.root, inputs=inputs, started_on=now,
                                  finished_on=now, parents=parents)
    files = {OMS_FILE: sign_statement(manifest_statement(manifest), signer),
             PROVENANCE_FILE: sign_statement(provenance, signer)}
    digests = {n: "sha256:" + hashlib.sha256(b).hexdigest() for n, b in files.items()}
    index = EvidenceIndex(name=name, identity=compute_identity(inputs),
                          root_digest=f"sha256:{manifest.root}", files=digests,
                          mlprov_version=__version__)
    files[INDEX_FILE] = index.model_dump_json(by_alias=True, indent=2).encode() + b"\n"
    write_dir_atomically(out, files, overwrite=False)


def generate(work: Path, generations: int, size: int, use_attest: bool) -> Path:
    """Build the chain under ``work/chain``; return the last generation's evidence."""
    import mlprov
    from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair
    from mlprov.trust import Trust

    private, public = write_key_pair(generate_key(KeyType.ECDSA_P256), work / "ci.key", None)
    (work / "trust.yaml").write_text(
        f"keys: [{{name: ci, public_key: {public.name}, roles: [builder]}}]\n")
    signer, trust = load_private_key(private), Trust.single_key(public)
    rng = random.Random(0)
    previous: tuple[Path, Path] | None = None
    for gen in range(generations):
        gen_dir = work / "chain" / f"gen{gen:04d}"
        model, evidence = gen_dir / "model", gen_dir / "evidence"
        make_model(model, previous[0] if previous else None, rng, size)
        name = f"gen{gen:04d}"
        if use_attest:
            parents = [f"fine-tune-of={previous[1]}"] if previous else []
            mlprov.attest(model, name=name, signer=signer, out=evidence, commit=COMMIT,
                          seeds={"torch": 0}, parents=parents, environment=[])
        else:
            write_evidence(model, evidence, name, signer, previous[1] if previous else None,
                           trust)
        previous = (model, evidence)
        if gen % 25 == 24:
            print(f"  generated {gen + 1}/{generations}", file=sys.stderr)
    assert previous is not None
    return previous[1]


def generate_merge(work: Path, parents: int, size: int) -> Path:
    """``parents`` root models and one ``merge-of`` all of them, minimal evidence; return its."""
    from mlprov.signing import load_private_key
    from mlprov.trust import Trust

    signer, trust = load_private_key(work / "ci.key"), Trust.single_key(work / "ci.key.pub")
    rng = random.Random(1)
    evidences = []
    for k in range(parents):
        model, evidence = (work / "merge" / f"p{k:04d}" / d for d in ("model", "evidence"))
        make_model(model, None, rng, size)
        write_evidence(model, evidence, f"p{k:04d}", signer, None, trust)
        evidences.append(evidence)
    model, evidence = work / "merge" / "merged" / "model", work / "merge" / "merged" / "evidence"
    make_model(model, work / "merge" / "p0000" / "model", rng, size)
    write_evidence(model, evidence, "merged", signer, evidences, trust, role="merge-of")
    return evidence


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--size", type=int, default=64 * 1024,
                        help="bytes of weights per model (default 64 KiB)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--minimal", action="store_true",
                        help="write only the lineage evidence, not every attest file")
    parser.add_argument("--merge", type=int, default=0, metavar="N",
                        help="also time a merge of N parents (minimal evidence), shallow and deep")
    parser.add_argument("--keep", type=Path, help="work in this new directory and keep it")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if args.generations < 1 or args.repeat < 1 or args.size < 4:
        parser.error("--generations, --repeat must be >= 1 and --size >= 4")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep} exists")
    work = args.keep or Path(tempfile.mkdtemp(prefix="mlprov-bench-lineage-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        from mlprov.lineage import verify_lineage
        from mlprov.trust import load_trust

        start = time.perf_counter()
        leaf = generate(work, args.generations, args.size, not args.minimal)
        generated_s = time.perf_counter() - start
        trust = load_trust(work / "trust.yaml")
        depth = args.generations  # the root is generations - 1 links away

        def walk(deep: bool = False) -> None:
            lineage = verify_lineage(leaf, trust=trust, search=[work / "chain"],
                                     max_depth=depth, deep=deep)
            if not lineage.verified or len(lineage.nodes) != args.generations:
                raise RuntimeError(f"chain did not verify: {lineage.failures[:1]}")

        walk()  # warm-up: imports, page cache
        shallow = timed(walk, args.repeat)
        deep = timed(lambda: walk(deep=True), args.repeat)
        cli = [str(Path(sys.executable).parent / "mlprov"), "lineage", "verify", str(leaf),
               "--trust", str(work / "trust.yaml"), "--search", str(work / "chain"),
               "--max-depth", str(depth)]

        def run_cli() -> None:
            done = subprocess.run(cli, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"mlprov lineage verify exited {done.returncode}: "
                                   f"{done.stderr.strip()}")

        command = timed(run_cli, args.repeat)
        merge: dict[str, list[float]] = {}
        if args.merge:
            merged = generate_merge(work, args.merge, args.size)

            def walk_merge(deep: bool = False) -> None:
                lineage = verify_lineage(merged, trust=trust, search=[work / "merge"],
                                         deep=deep)
                if not lineage.verified or len(lineage.nodes) != args.merge + 1:
                    raise RuntimeError(f"merge did not verify: {lineage.failures[:1]}")

            walk_merge()
            merge = {f"merge of {args.merge} (in-process)": timed(walk_merge, args.repeat),
                     f"merge of {args.merge} --deep (in-process)":
                         timed(lambda: walk_merge(deep=True), args.repeat)}
    except (RuntimeError, OSError) as exc:
        print(f"bench_lineage: {exc}", file=sys.stderr)
        return 3
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    rows = {"verify_lineage (in-process)": shallow, "verify_lineage --deep (in-process)": deep,
            "mlprov lineage verify (subprocess)": command, **merge}
    median = statistics.median(shallow)
    result = {
        "generations": args.generations, "modelBytes": args.size, "repeat": args.repeat,
        "generatedS": round(generated_s, 3),
        "timings": {k: {"median_s": round(statistics.median(v), 4), "min_s": round(min(v), 4),
                        "max_s": round(max(v), 4)} for k, v in rows.items()},
        "target": {"label": f"{args.generations}-generation walk, no re-hashing",
                   "value_s": round(median, 4), "limit_s": TARGET_S,
                   "result": "PASS" if median <= TARGET_S else "MISS"},
        "targets": [_target(f"{args.generations}-generation walk --deep",
                            statistics.median(deep), DEEP_TARGET_S)]
        + [_target(label, statistics.median(v), MERGE_TARGET_S)
           for label, v in merge.items() if "--deep" in label],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"mlprov lineage benchmark: {args.generations} generations, {args.size} bytes of "
          f"weights each; generated in {generated_s:.1f} s; median of {args.repeat} runs")
    print(f"{'series':<40}{'median s':>10}{'min s':>10}{'max s':>10}")
    for label, samples in rows.items():
        print(f"{label:<40}{statistics.median(samples):>10.3f}{min(samples):>10.3f}"
              f"{max(samples):>10.3f}")
    target = result["target"]
    print(f"target: {target['label']} <= {TARGET_S:.1f} s: {target['value_s']:.3f} s "
          f"{target['result']}")
    for extra in result["targets"]:
        print(f"target: {extra['label']} <= {extra['limit_s']:.1f} s: {extra['value_s']:.3f} s "
              f"{extra['result']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
