"""Registry latency at scale: mlprov's registry beside MLflow's, measured in one run.

    pip install -e '.[bench]'            # mlflow-skinny (+ alembic for its SQL store)
    python benchmarks/bench_registry.py [--versions 100000] [--one-name 10000]

Both registries get the same shape: ``--versions`` model versions in all,
``--one-name`` of them under one name (credit-risk), on SQLite. Setup inserts
the filler rows in bulk through each store's own tables (mlprov: its
MetadataStore API, with hash-chained audit entries; MLflow: its SQL tables);
three versions of credit-risk are real (mlprov: attested, registered, reviewed;
MLflow: created with MlflowClient). Then, on those real versions:

- resolve: mlprov ``Registry.resolve("models:/credit-risk@production")`` vs
  MLflow ``MlflowClient.get_model_version_by_alias``;
- alias move: mlprov ``Registry.set_alias`` (re-verifies the version's evidence
  from the blob store, evaluates production.rego, signs a SLSA VSA decision,
  appends the hash-chained audit entry and the event, in one durable
  transaction) vs MLflow ``set_registered_model_alias`` (a plain row update);
- promotion: mlprov ``Registry.promote`` (the same work, staging/production
  gates) vs MLflow ``transition_model_version_stage``.

Targets (issue 6): resolve <= MLflow's get-by-alias; alias move or promotion
<= 20 ms at 10k versions of one name. The first change of each version in a
process verifies its evidence cold (the CycloneDX schema check dominates);
later changes reuse the verdict memoised by the digests of everything verified.
Both are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

NAME = "credit-risk"
REAL = 3
BATCH = 5000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[int], object], samples: int) -> list[float]:
    out = []
    for i in range(samples):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} / {percentile(values, 0.99):8.2f} ms"


def other_names(total: int, one_name: int) -> list[tuple[str, int]]:
    """The filler names and their version counts (100 versions per name)."""
    rest = total - one_name
    names = []
    for i in range((rest + 99) // 100):
        names.append((f"model-{i:05d}", min(100, rest - 100 * i)))
    return names


# --------------------------------------------------------------------------- mlprov


def setup_mlprov(work: Path, total: int, one_name: int) -> object:
    import mlprov
    from mlprov.registry import Registry
    from mlprov.registry._audit import make_entry
    from mlprov.registry.interface import Stage, VersionRecord
    from mlprov.reviews import make_review
    from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair

    keys = work / "keys"
    keys.mkdir()
    for name in ("ci", "eval", "alice"):
        write_key_pair(generate_key(KeyType.ED25519), keys / f"{name}.key", None)
    trust = work / "trust.yaml"
    trust.write_text("version: 1\nkeys:\n"
                     "  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}\n"
                     "  - {name: eval, public_key: keys/eval.key.pub, roles: [evaluator]}\n"
                     "  - {name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}\n")
    (work / "requirements.txt").write_text("numpy==2.1.0\nsafetensors==0.4.5\n")
    (work / "metrics.json").write_text(json.dumps(
        {"metrics": {"auc": 0.91, "accuracy": 0.84}, "slices": {"age<30": {"auc": 0.88}}}))
    registry = Registry.init(work / "registry", trust=trust)
    for n in range(REAL):
        model = work / f"model{n}"
        model.mkdir()
        payload = random.Random(n).randbytes(64 * 1024)
        header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)],
                                   "data_offsets": [0, len(payload)]}}).encode()
        header += b" " * (-len(header) % 8)
        (model / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header
                                                  + payload)
        (model / "config.json").write_text('{"layers": 2}\n')
        evidence = work / f"evidence{n}"
        mlprov.attest(model, name=NAME, key=keys / "ci.key", out=evidence, commit="0" * 40,
                      seeds={"torch": n}, metrics=work / "metrics.json",
                      eval_key=keys / "eval.key", environment=work / "requirements.txt")
        registry.register(model, evidence=evidence)
        review = work / f"review{n}.json"
        review.write_bytes(make_review(evidence, signer=load_private_key(keys / "alice.key"),
                                       reviewer="alice", decision="approve",
                                       comment="benchmark", trust=trust))
        registry.add_review(NAME, n + 1, review)

    # Filler: the rest of the versions, each with a hash-chained audit entry.
    with registry.metadata.read() as tx:
        head = tx.audit_head()
    assert head is not None
    seq, prev = head.seq, head.entry_hash
    plan = [(NAME, range(REAL + 1, one_name + 1))] + [
        (name, range(1, count + 1)) for name, count in other_names(total, one_name)]
    batch_versions: list[VersionRecord] = []
    batch_entries = []
    now = "2026-01-01T00:00:00.000000Z"

    def flush() -> None:
        with registry.metadata.write() as wtx:
            wtx.insert_versions(batch_versions)
            wtx.append_audit_many(batch_entries)
        batch_versions.clear()
        batch_entries.clear()

    for name, numbers in plan:
        with registry.metadata.write() as wtx:
            wtx.ensure_model(name, now)
        for number in numbers:
            seq += 1
            digest = "sha256:" + hashlib.sha256(f"{name}/{number}".encode()).hexdigest()
            identity = "mlid:" + digest
            entry = make_entry(seq=seq, prev=prev, time=now, kind="model.register",
                               accepted=True, actor="bench", reason="bulk load", name=name,
                               version=number, target="version", decision=digest,
                               details={"identity": identity, "rootDigest": digest})
            prev = entry.entry_hash
            batch_entries.append(entry)
            batch_versions.append(VersionRecord(
                name=name, version=number, identity=identity, root_digest=digest,
                files_digest=digest, evidence_digest=digest, registration=digest,
                scan_digest=None, reproducible=True, stage=Stage.ARCHIVED,
                stage_decision=None, created_at=now, created_seq=seq))
            if len(batch_versions) >= BATCH:
                flush()
    flush()
    # The filler bypassed the registry, so sign a head for its last entry (what every
    # change does), with the settings of the head before it; else the registry would
    # rightly refuse a log longer than its signed head.
    from mlprov.registry._head import read_head, sign_head

    with registry.metadata.write() as wtx:
        before = read_head(wtx, registry_id=registry.registry_id, anchor=registry.anchor,
                           anchor_id=id(registry.anchor))
        sign_head(wtx, registry_id=registry.registry_id, seq=seq, entry_hash=prev, time=now,
                  signer=registry.signer, settings=before.settings)
    return registry


def bench_mlprov(registry: object, samples: int) -> dict[str, list[float]]:
    from mlprov.registry import Registry

    assert isinstance(registry, Registry)
    home = registry.home
    registry.close()
    registry = Registry.open(home)  # a fresh instance: nothing verified or memoised yet
    # Cold: the first change of each real version verifies its evidence from scratch.
    cold = timed(lambda i: registry.promote(NAME, i + 1, to="Staging", reason="bench"), REAL)
    # Stages move None -> Staging -> Production, and a production alias points only at
    # a version in Production (staging.rego, production.rego).
    for number in range(1, REAL + 1):
        registry.promote(NAME, number, to="Production", reason="bench")
    registry.set_alias(NAME, "production", 1, reason="bench")
    resolve = timed(lambda _i: registry.resolve(f"models:/{NAME}@production"), samples * 2)
    order = [2, 3, 1]
    move = timed(lambda i: registry.set_alias(NAME, "production", order[i % REAL],
                                              reason="bench"), samples)
    stages = ["Staging", "Production"]  # each real version steps back, then up again
    promote = timed(lambda i: registry.promote(NAME, (i // 2) % REAL + 1, to=stages[i % 2],
                                               reason="bench"), samples)
    registry.close()
    return {"cold": cold, "resolve": resolve, "move": move, "promote": promote}


# --------------------------------------------------------------------------- MLflow


def setup_mlflow(work: Path, total: int, one_name: int) -> object:
    import sqlite3

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    from mlflow import MlflowClient

    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    for n in range(REAL):
        client.create_model_version(NAME, f"file://{work}/model{n}", run_id=None)
    conn = sqlite3.connect(work / "mlflow.db")
    now = int(time.time() * 1000)
    rows = [(NAME, v, now, now, None, None, "Archived", f"file:///m/{v}", None, "READY", None,
             None, f"file:///m/{v}", "default") for v in range(REAL + 1, one_name + 1)]
    models = []
    for name, count in other_names(total, one_name):
        models.append((name, now, now, None, "default"))
        rows.extend((name, v, now, now, None, None, "Archived", f"file:///m/{v}", None,
                     "READY", None, None, f"file:///m/{v}", "default")
                    for v in range(1, count + 1))
    with conn:
        conn.executemany("INSERT INTO registered_models VALUES (?, ?, ?, ?, ?)", models)
        conn.executemany("INSERT INTO model_versions VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    return client


def bench_mlflow(client: object, samples: int) -> dict[str, list[float]]:
    for number in range(1, REAL + 1):  # the same stages as mlprov's versions
        for stage in ("Staging", "Production"):
            client.transition_model_version_stage(  # type: ignore[attr-defined]
                NAME, number, stage)
    client.set_registered_model_alias(NAME, "production", 1)  # type: ignore[attr-defined]
    resolve = timed(lambda _i: client.get_model_version_by_alias(  # type: ignore[attr-defined]
        NAME, "production"), samples * 2)
    order = [2, 3, 1]
    move = timed(lambda i: client.set_registered_model_alias(  # type: ignore[attr-defined]
        NAME, "production", order[i % REAL]), samples)
    stages = ["Staging", "Production"]
    promote = timed(lambda i: client.transition_model_version_stage(  # type: ignore[attr-defined]
        NAME, (i // 2) % REAL + 1, stages[i % 2]), samples)
    return {"resolve": resolve, "move": move, "promote": promote}


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000,
                        help="model versions in all (default 100000)")
    parser.add_argument("--one-name", type=int, default=10_000,
                        help="of which under one name (default 10000)")
    parser.add_argument("--samples", type=int, default=100,
                        help="timed alias moves and promotions (resolves: twice this)")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure mlprov only")
    parser.add_argument("--workdir", type=Path, help="keep the registries here")
    args = parser.parse_args()
    if not REAL < args.one_name <= args.versions:
        parser.error("need 3 < --one-name <= --versions")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-bench-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    print(f"{args.versions} versions, {args.one_name} under {NAME}; SQLite, durable "
          f"commits (fsync); {os.cpu_count()} CPUs; {work}", flush=True)

    started = time.perf_counter()
    registry = setup_mlprov(work / "mlprov", args.versions, args.one_name) \
        if (work / "mlprov").mkdir() is None else None
    print(f"mlprov setup (3 real versions attested, registered, reviewed; "
          f"{args.versions - REAL} bulk): {time.perf_counter() - started:.1f} s", flush=True)
    ours = bench_mlprov(registry, args.samples)
    theirs: dict[str, list[float]] = {}
    if not args.skip_mlflow:
        try:
            started = time.perf_counter()
            (work / "mlflow").mkdir()
            client = setup_mlflow(work / "mlflow", args.versions, args.one_name)
            print(f"MLflow setup: {time.perf_counter() - started:.1f} s", flush=True)
            theirs = bench_mlflow(client, args.samples)
        except ImportError as exc:
            print(f"MLflow not measured ({exc}); pip install -e '.[bench]'")

    import importlib.metadata

    mlflow_version = importlib.metadata.version("mlflow-skinny") if theirs else "-"
    print()
    print(f"{'median / p99':32} {'mlprov':>22} {'MLflow ' + mlflow_version:>22}")
    rows = [("resolve by alias", "resolve"), ("alias move (gated, signed)", "move"),
            ("promotion (gated, signed)", "promote")]
    for label, key in rows:
        other = summary(theirs[key]) if key in theirs else "-"
        print(f"{label:32} {summary(ours[key]):>22} {other:>22}")
    print(f"{'first change of a version (cold)':32} {summary(ours['cold']):>22}")
    print()
    checks = []
    if theirs:
        checks.append(("resolve <= MLflow get_model_version_by_alias",
                       statistics.median(ours["resolve"]) <= statistics.median(
                           theirs["resolve"])))
    checks.append((f"alias move <= 20 ms at {args.one_name} versions of one name",
                   statistics.median(ours["move"]) <= 20.0))
    checks.append((f"promotion <= 20 ms at {args.one_name} versions of one name",
                   statistics.median(ours["promote"]) <= 20.0))
    for label, ok in checks:
        print(f"target {'met    ' if ok else 'MISSED '} {label} (median)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
