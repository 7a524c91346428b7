#!/usr/bin/env python3
"""Benchmark the policy gate: cold and warm decision time of the shipped production policy.

The script builds a realistic decision in a temporary directory, with mlprov itself:

* a small real model (config, safetensors weights and a PyTorch-style zip checkpoint whose
  pickle imports only tensor rebuilders), attested with provenance, an ML-BOM of the
  running interpreter's installed packages (about a hundred, with licences) and a signed
  eval, under a trust file naming a builder, an evaluator and a reviewer;
* a signed approval by the reviewer, the pickle scan of the verified files, and the input
  for a Staging -> Production transition (``mlprov.policy.build_input``).

It then times ``Policy.evaluate`` of ``policies/production.rego`` (the shipped one):

* **warm**: the policy compiled, each run one decision over the same input (canonical
  input digest, handing the input to the engine, evaluating deny and warn);
* **cold (in process)**: the compiled-policy cache cleared, then ``load_policy`` (read,
  lint, parse, compile) and the first decision;
* **cold (new process)**: a fresh interpreter imports ``mlprov.policy`` (and the Rego
  engine), loads the policy and decides once; timed inside that process, so interpreter
  start-up is not counted, imports are.

Target: warm <= 5 ms (median). Exit status: 0 whether or not the target is met (this is a
benchmark), 2 on bad arguments, 3 when building the decision fails (the error is printed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
WARM_TARGET_S = 0.005
TRUST = """version: 1
keys:
  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}
  - {name: eval-bot, public_key: keys/eval.key.pub, roles: [evaluator]}
  - {name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}
"""
COLD_SNIPPET = """
import json, sys, time
start = time.perf_counter()
from mlprov.policy import load_policy
policy = load_policy(sys.argv[1])
decision = policy.evaluate(json.load(open(sys.argv[2])))
print(json.dumps({"seconds": time.perf_counter() - start, "allowed": decision.allowed}))
"""


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def checkpoint_zip() -> bytes:
    """A PyTorch-style zip checkpoint whose pickle imports only tensor rebuilders."""
    def text(value: bytes) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value

    pickle_bytes = (b"\x80\x02" + text(b"collections") + text(b"OrderedDict") + b"\x93)R"
                    + text(b"torch._utils") + text(b"_rebuild_tensor_v2") + b"\x93)R0.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", bytes(4096))
    return buffer.getvalue()


def build_decision_input(work: Path) -> tuple[dict[str, Any], Path]:
    """Attest, review, verify and scan a small real model; return the policy input."""
    import mlprov
    from mlprov.policy import build_input
    from mlprov.reviews import make_review, verify_reviews
    from mlprov.scanning import scan_verified_model
    from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair

    keys = work / "keys"
    keys.mkdir()
    for name in ("ci", "eval", "alice"):
        write_key_pair(generate_key(KeyType.ECDSA_P256), keys / f"{name}.key", None)
    trust = work / "trust.yaml"
    trust.write_text(TRUST)
    model = work / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architecture": "logistic-regression"}\n')
    payload = os.urandom(64 * 1024)
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)],
                               "data_offsets": [0, len(payload)]}}).encode()
    header += b" " * (-len(header) % 8)
    (model / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header
                                              + payload)
    (model / "checkpoint.pt").write_bytes(checkpoint_zip())
    metrics = work / "metrics.json"
    metrics.write_text(json.dumps({"metrics": {"accuracy": 0.81, "auc": 0.87},
                                   "slices": {"age<30": {"auc": 0.79},
                                              "age>=30": {"auc": 0.88}}}))
    evidence = work / "evidence"
    mlprov.attest(model, name="credit-risk", key=keys / "ci.key", eval_key=keys / "eval.key",
                  out=evidence, commit=COMMIT, metrics=metrics)
    verdict = mlprov.verify(model, evidence=evidence, trust=trust)
    if not verdict.verified:
        raise RuntimeError(f"the benchmark model did not verify: {verdict.failures()}")
    review = work / "alice.review.json"
    review.write_bytes(make_review(verdict, signer=load_private_key(keys / "alice.key"),
                                   reviewer="alice", decision="approve", comment="read it"))
    reviews = verify_reviews([review], trust, verdict=verdict)
    document = build_input(verdict, reviews=reviews, scan=scan_verified_model(model, verdict),
                           transition={"from": "Staging", "to": "Production",
                                       "actor": "bench"})
    path = work / "input.json"
    path.write_text(json.dumps(document))
    return document, path


def series(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {"median_s": statistics.median(ordered), "min_s": ordered[0],
            "p95_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "max_s": ordered[-1], "runs": len(ordered)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mlprov import policy as policy_module
    from mlprov.policy import load_policy, shipped_policies_dir

    production = shipped_policies_dir() / "production.rego"
    with tempfile.TemporaryDirectory(prefix="mlprov-bench-policy-") as tmp:
        note("building a decision: attest, review, verify, scan ...")
        document, input_path = build_decision_input(Path(tmp))
        size = len(json.dumps(document))
        note(f"input: {size} bytes, {len(document['statements'])} statements; timing ...")
        cold_in: list[float] = []
        for _ in range(args.cold_repeat):
            policy_module._ENGINES.clear()
            start = time.perf_counter()
            decision = load_policy(production).evaluate(document)
            cold_in.append(time.perf_counter() - start)
        if not decision.allowed:
            raise RuntimeError(f"the benchmark decision was denied: {decision.deny}")
        policy = load_policy(production)
        for _ in range(args.warmup):
            policy.evaluate(document)
        warm: list[float] = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            policy.evaluate(document)
            warm.append(time.perf_counter() - start)
        cold_process: list[float] = []
        for _ in range(args.process_repeat):
            done = subprocess.run([sys.executable, "-c", COLD_SNIPPET, str(production),
                                   str(input_path)], capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"cold process failed: {done.stderr.strip()[-500:]}")
            cold_process.append(json.loads(done.stdout)["seconds"])
    import regopy  # type: ignore[import-untyped]

    from mlprov import __version__

    warm_series = series(warm)
    return {
        "policy": str(production), "policyDigest": decision.policy_digest,
        "input": {"bytes": size, "statements": len(document["statements"]),
                  "sbomComponents": next((s["summary"]["componentCount"]
                                          for s in document["statements"] if "summary" in s), 0)},
        "platform": platform.platform(), "cpus": os.cpu_count(),
        "versions": {"python": platform.python_version(), "mlprov": __version__,
                     "regopy": getattr(regopy, "__version__", "1.5.x")},
        "timings": {"warm": warm_series, "cold_in_process": series(cold_in),
                    "cold_new_process": series(cold_process)},
        "target": {"key": "warm_median", "limit_s": WARM_TARGET_S,
                   "value_s": warm_series["median_s"],
                   "pass": warm_series["median_s"] <= WARM_TARGET_S},
    }


def render(result: dict[str, Any]) -> str:
    lines = [f"mlprov policy benchmark: {result['policy']}",
             f"input: {result['input']['bytes']} bytes, {result['input']['statements']} "
             f"statements, SBOM of {result['input']['sbomComponents']} components",
             f"platform: {result['platform']}, {result['cpus']} CPUs; python "
             f"{result['versions']['python']}, mlprov {result['versions']['mlprov']}", "",
             f"{'decision':28s} {'median ms':>10s} {'min ms':>8s} {'p95 ms':>8s} {'runs':>6s}",
             "-" * 64]
    labels = {"warm": "warm (compiled)", "cold_in_process": "cold (load+compile+decide)",
              "cold_new_process": "cold (new process, imports)"}
    for key, label in labels.items():
        s = result["timings"][key]
        lines.append(f"{label:28s} {s['median_s'] * 1000:10.2f} {s['min_s'] * 1000:8.2f} "
                     f"{s['p95_s'] * 1000:8.2f} {s['runs']:6d}")
    target = result["target"]
    lines += ["", f"target: warm median {target['value_s'] * 1000:.2f} ms <= "
                  f"{target['limit_s'] * 1000:.0f} ms  {'PASS' if target['pass'] else 'MISS'}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=500, help="warm decisions timed")
    parser.add_argument("--warmup", type=int, default=20, help="untimed warm decisions")
    parser.add_argument("--cold-repeat", type=int, default=10,
                        help="in-process cold decisions timed")
    parser.add_argument("--process-repeat", type=int, default=3,
                        help="new-process cold decisions timed")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    if min(args.repeat, args.cold_repeat, args.process_repeat) < 1 or args.warmup < 0:
        print("error: repeats must be at least 1", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except Exception as exc:  # a benchmark reports any failure in one line
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
