"""Registry latency at scale: mlprov's registry beside MLflow's, measured in one run.

    pip install -e '.[bench]'            # mlflow-skinny (+ alembic for its SQL store)
    python benchmarks/bench_registry.py [--versions 100000] [--one-name 10000]
    python benchmarks/bench_registry.py --backend postgresql [--postgres-url URL]

Both registries get the same shape: ``--versions`` model versions in all,
``--one-name`` of them under one name (credit-risk). Setup inserts the filler
rows in bulk through each store's own tables (mlprov: its MetadataStore API,
with hash-chained audit entries; MLflow: its SQL tables); three versions of
credit-risk are real (mlprov: attested, registered, reviewed; MLflow: created
with MlflowClient). Then, on those real versions:

- resolve: mlprov ``Registry.resolve("models:/credit-risk@production")`` vs
  MLflow ``MlflowClient.get_model_version_by_alias``;
- alias move: mlprov ``Registry.set_alias`` (re-verifies the version's evidence
  from the blob store, evaluates production.rego, signs a SLSA VSA decision,
  appends the hash-chained audit entry and the event, in one durable
  transaction) vs MLflow ``set_registered_model_alias`` (a plain row update);
- promotion: mlprov ``Registry.promote`` (the same work, staging/production
  gates) vs MLflow ``transition_model_version_stage``.

Backends (``--backend``):

- ``sqlite`` (default): mlprov's embedded registry (a directory: SQLite in WAL
  mode, ``synchronous=FULL``, local blobs) beside MLflow on a SQLite file.
- ``postgresql`` (issue 12): mlprov's team registry (``Registry.init(URL,
  blobs=DIR, key=K)``: metadata in PostgreSQL, blobs in a local directory, the
  registry key outside the database) beside MLflow's SQL store, each in its own
  database on the same server. The server is a throwaway one started by the test
  harness (``tests/pg.py``) with PostgreSQL's durable defaults (``fsync``,
  ``synchronous_commit``, ``full_page_writes`` on; the tests turn them off), or
  the one ``--postgres-url`` names (its settings are printed, not changed; the
  role needs CREATEDB). This backend also times registration: mlprov
  ``Registry.register`` of a fresh attested model (verifies the signed evidence
  against the trust file, scans the weights, hashes and stores every file and
  evidence blob, evaluates the registration rule, signs the decision, appends the
  audit entry, one transaction) vs MLflow ``create_model_version`` (inserts a row
  naming a source URI; it reads no model bytes and checks nothing).

Targets (issue 6 on SQLite; issue 12 on PostgreSQL): resolve <= MLflow's
get-by-alias; alias move (and promotion) <= 20 ms at 10k versions of one name.
Registration has no target. The first change of each version in a process
verifies its evidence cold (the CycloneDX schema check dominates); later changes
reuse the verdict memoised by the digests of everything verified. Both are
printed. The series run interleaved (one mlprov operation, one MLflow operation,
the order flipped every sample), so both see the same load. Every row prints
mlprov's p50/p99, MLflow's, and their ratios (mlprov over MLflow, same run);
nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

NAME = "credit-risk"
#: Timed series by name: an operation on sample ``i``, and how many samples.
Series = dict[str, tuple[Callable[[int], object], int]]
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


def ratios(ours: list[float], theirs: list[float]) -> str:
    """mlprov over MLflow, at the median and at p99."""
    return (f"{statistics.median(ours) / statistics.median(theirs):6.2f}x / "
            f"{percentile(ours, 0.99) / percentile(theirs, 0.99):6.2f}x")


def other_names(total: int, one_name: int) -> list[tuple[str, int]]:
    """The filler names and their version counts (100 versions per name)."""
    rest = total - one_name
    names = []
    for i in range((rest + 99) // 100):
        names.append((f"model-{i:05d}", min(100, rest - 100 * i)))
    return names


# --------------------------------------------------------------------------- mlprov


@dataclass
class Mlprov:
    """mlprov's registry after setup, and what reopens it."""

    registry: Any
    location: Path | str  # the directory, or the database URL
    key: Path | None = None  # a team registry's private key (outside its database)
    to_register: list[tuple[Path, Path]] = field(default_factory=list)  # (model, evidence)


def make_attested(work: Path, n: int) -> tuple[Path, Path]:
    """Attest a small real model (64 KiB safetensors + config) with SBOM, eval and card."""
    import mlprov

    keys = work / "keys"
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
    return model, evidence


def setup_mlprov(work: Path, total: int, one_name: int, *, url: str | None = None,
                 register: int = 0) -> Mlprov:
    """An mlprov registry of the benchmark's shape: embedded in ``work``, or a team one at ``url``.

    ``register`` more models are attested (not registered) for the registration series.
    """
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
    if url is None:
        setup = Mlprov(Registry.init(work / "registry", trust=trust), work / "registry")
    else:
        # A team registry: its key outside the database, blobs in a local directory
        # (the metadata store is what is measured; bench_s3.py measures S3 transfer).
        key = work / "registry.key"
        write_key_pair(generate_key(KeyType.ECDSA_P256), key, None)
        setup = Mlprov(Registry.init(url, trust=trust, blobs=str(work / "blobs"), key=key),
                       url, key)
    registry = setup.registry
    for n in range(REAL):
        model, evidence = make_attested(work, n)
        registry.register(model, evidence=evidence)
        review = work / f"review{n}.json"
        review.write_bytes(make_review(evidence, signer=load_private_key(keys / "alice.key"),
                                       reviewer="alice", decision="approve",
                                       comment="benchmark", trust=trust))
        registry.add_review(NAME, n + 1, review)
    setup.to_register = [make_attested(work, REAL + n) for n in range(register)]

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
    return setup


def prepare_mlprov(setup: Mlprov, samples: int) -> tuple[Any, list[float], Series]:
    """Reopen mlprov's registry, time each real version's cold first change, and
    return the timed series (each an operation on sample ``i`` and a count)."""
    from mlprov.registry import Registry

    setup.registry.close()
    # A fresh instance: nothing verified or memoised yet.
    registry = Registry.open(setup.location, key=setup.key)
    # Cold: the first change of each real version verifies its evidence from scratch.
    cold = timed(lambda i: registry.promote(NAME, i + 1, to="Staging", reason="bench"), REAL)
    # Stages move None -> Staging -> Production, and a production alias points only at
    # a version in Production (staging.rego, production.rego).
    for number in range(1, REAL + 1):
        registry.promote(NAME, number, to="Production", reason="bench")
    registry.set_alias(NAME, "production", 1, reason="bench")
    order = [2, 3, 1]
    stages = ["Staging", "Production"]  # each real version steps back, then up again
    series: Series = {
        "resolve": (lambda _i: registry.resolve(f"models:/{NAME}@production"), samples * 2),
        "move": (lambda i: registry.set_alias(NAME, "production", order[i % REAL],
                                              reason="bench"), samples),
        "promote": (lambda i: registry.promote(NAME, (i // 2) % REAL + 1, to=stages[i % 2],
                                               reason="bench"), samples),
        # `mlprov versions list NAME`: a page of 100 of the name's versions, newest first
        "search": (lambda _i: registry.search_versions(NAME, limit=100), samples),
    }
    if setup.to_register:
        pending = setup.to_register

        def register(i: int) -> None:
            result = registry.register(pending[i][0], evidence=pending[i][1])
            assert result.created, "each timed registration must create a version"

        series["register"] = (register, len(pending))
    return registry, cold, series


# --------------------------------------------------------------------------- MLflow


def setup_mlflow(work: Path, total: int, one_name: int, *, url: str | None = None) -> object:
    """MLflow's registry of the benchmark's shape: a SQLite file in ``work``, or ``url``."""
    warnings.filterwarnings("ignore")
    uri = url or f"sqlite:///{work / 'mlflow.db'}"
    os.environ.setdefault("MLFLOW_TRACKING_URI", uri)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    for n in range(REAL):
        client.create_model_version(NAME, f"file://{work}/model{n}", run_id=None)
    now = int(time.time() * 1000)
    rows = [(NAME, v, now, now, None, None, "Archived", f"file:///m/{v}", None, "READY", None,
             None, f"file:///m/{v}", "default") for v in range(REAL + 1, one_name + 1)]
    models = []
    for name, count in other_names(total, one_name):
        models.append((name, now, now, None, "default"))
        rows.extend((name, v, now, now, None, None, "Archived", f"file:///m/{v}", None,
                     "READY", None, None, f"file:///m/{v}", "default")
                    for v in range(1, count + 1))
    if url is None:
        import sqlite3

        conn = sqlite3.connect(work / "mlflow.db")
        with conn:
            conn.executemany("INSERT INTO registered_models VALUES (?, ?, ?, ?, ?)", models)
            conn.executemany("INSERT INTO model_versions VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.close()
    else:
        import psycopg

        # Columns named: the table's column order is whatever MLflow's migrations left.
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain) as pg, pg.cursor() as cur:
            cur.executemany("INSERT INTO registered_models (name, creation_time, "
                            "last_updated_time, description, workspace) "
                            "VALUES (%s, %s, %s, %s, %s)", models)
            cur.executemany("INSERT INTO model_versions (name, version, creation_time, "
                            "last_updated_time, description, user_id, current_stage, source, "
                            "run_id, status, status_message, run_link, storage_location, "
                            "workspace) VALUES "
                            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    return client


def prepare_mlflow(client: Any, samples: int, register: int = 0) -> Series:
    """Put MLflow's real versions where mlprov's are; its timed series."""
    for number in range(1, REAL + 1):  # the same stages as mlprov's versions
        for stage in ("Staging", "Production"):
            client.transition_model_version_stage(NAME, number, stage)
    client.set_registered_model_alias(NAME, "production", 1)
    order = [2, 3, 1]
    stages = ["Staging", "Production"]
    series: Series = {
        "resolve": (lambda _i: client.get_model_version_by_alias(NAME, "production"),
                    samples * 2),
        "move": (lambda i: client.set_registered_model_alias(NAME, "production",
                                                             order[i % REAL]), samples),
        "promote": (lambda i: client.transition_model_version_stage(
            NAME, (i // 2) % REAL + 1, stages[i % 2]), samples),
        "search": (lambda _i: client.search_model_versions(f"name='{NAME}'", max_results=100),
                   samples),
    }
    if register:
        series["register"] = (lambda i: client.create_model_version(
            NAME, f"file:///bench/model{REAL + i}", run_id=None), register)
    return series


def measure(ours: Series, theirs: Series) -> tuple[dict[str, list[float]],
                                                  dict[str, list[float]]]:
    """Time every series, interleaved: one mlprov operation, then one MLflow operation,
    the order flipped every sample, so both see the same load on a shared machine."""
    mine: dict[str, list[float]] = {}
    other: dict[str, list[float]] = {}
    for key, (operation, count) in ours.items():
        mine[key] = []
        pairs: list[tuple[list[float], Callable[[int], object]]] = [(mine[key], operation)]
        if key in theirs:
            other[key] = []
            pairs.append((other[key], theirs[key][0]))
        for i in range(count):
            for out, fn in (pairs if i % 2 == 0 else pairs[::-1]):
                start = time.perf_counter()
                fn(i)
                out.append((time.perf_counter() - start) * 1000)
    return mine, other


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    """The server both registries use, and one database for each."""

    mlprov_url: str
    mlflow_url: str
    about: str  # server version and durability settings, for the header


def _pg_settings(url: str) -> str:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as pg:
        version = pg.execute("SHOW server_version").fetchone()
        shown = [f"{name}={pg.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
                 for name in ("fsync", "synchronous_commit", "full_page_writes")]
    return f"PostgreSQL {version[0] if version else '?'} ({', '.join(shown)})"


@contextlib.contextmanager
def postgres(given: str | None) -> Iterator[Postgres]:
    """Two fresh databases on ``given`` or on a throwaway server (tests/pg.py); dropped after."""
    sys.path.insert(0, str(ROOT))  # the test suite's PostgreSQL harness
    from tests.pg import PostgresServer, start_server

    # The tests' server skips fsync; the SQLite series commit durably, so this one does too.
    server = PostgresServer(url=given) if given else start_server(durable=True)
    try:
        with server.database() as ours, server.database() as theirs:
            yield Postgres(ours, theirs, _pg_settings(ours))
    finally:
        server.stop()


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000,
                        help="model versions in all (default 100000)")
    parser.add_argument("--one-name", type=int, default=10_000,
                        help="of which under one name (default 10000)")
    parser.add_argument("--samples", type=int, default=100,
                        help="timed alias moves and promotions (resolves: twice this)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="where both registries keep their metadata (default sqlite)")
    parser.add_argument("--postgres-url", metavar="URL",
                        help="with --backend postgresql: an existing server "
                             "(postgresql+psycopg://USER@HOST:PORT/DB, a role with CREATEDB) "
                             "instead of a throwaway one")
    parser.add_argument("--register-samples", type=int, default=30,
                        help="with --backend postgresql: timed registrations (each one a "
                             "model attested during setup; default 30)")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure mlprov only")
    parser.add_argument("--workdir", type=Path, help="keep the registries' files here")
    args = parser.parse_args()
    if not REAL < args.one_name <= args.versions:
        parser.error("need 3 < --one-name <= --versions")
    if args.postgres_url and args.backend != "postgresql":
        parser.error("--postgres-url needs --backend postgresql")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-bench-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        if args.backend == "sqlite":
            run(args, work, None)
        else:
            # A team registry's local cache (pinned key, policies) goes in work, not ~.
            os.environ["MLPROV_CACHE_HOME"] = str(work / "cache")
            with postgres(args.postgres_url) as pg:
                run(args, work, pg)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def run(args: argparse.Namespace, work: Path, pg: Postgres | None) -> None:
    where = ("SQLite, durable commits (fsync)" if pg is None
             else f"{pg.about}, one database each")
    print(f"{args.versions} versions, {args.one_name} under {NAME}; {where}; "
          f"{os.cpu_count()} CPUs; {work}", flush=True)
    register = args.register_samples if pg is not None else 0

    started = time.perf_counter()
    (work / "mlprov").mkdir()
    setup = setup_mlprov(work / "mlprov", args.versions, args.one_name,
                         url=pg.mlprov_url if pg else None, register=register)
    extra = f"; {register} more attested to register" if register else ""
    print(f"mlprov setup (3 real versions attested, registered, reviewed; "
          f"{args.versions - REAL} bulk{extra}): {time.perf_counter() - started:.1f} s",
          flush=True)
    client = None
    if not args.skip_mlflow:
        try:
            started = time.perf_counter()
            (work / "mlflow").mkdir()
            client = setup_mlflow(work / "mlflow", args.versions, args.one_name,
                                  url=pg.mlflow_url if pg else None)
            print(f"MLflow setup: {time.perf_counter() - started:.1f} s", flush=True)
        except ImportError as exc:
            print(f"MLflow not measured ({exc}); pip install -e '.[bench]'")
    registry, cold, series = prepare_mlprov(setup, args.samples)
    try:
        ours, theirs = measure(series, {} if client is None else
                               prepare_mlflow(client, args.samples, register))
    finally:
        registry.close()
    ours["cold"] = cold

    import importlib.metadata

    mlflow_version = importlib.metadata.version("mlflow-skinny") if theirs else "-"
    print()
    print(f"{'median / p99':36} {'mlprov':>22} {'MLflow ' + mlflow_version:>22} "
          f"{'mlprov/MLflow':>20}")
    rows = [("resolve by alias", "resolve"), ("alias move (gated, signed)", "move"),
            ("promotion (gated, signed)", "promote"),
            ("search: a page of 100 versions", "search")]
    if register:
        rows.append(("registration (verified, stored)", "register"))
    for label, key in rows:
        other = summary(theirs[key]) if key in theirs else "-"
        ratio = ratios(ours[key], theirs[key]) if key in theirs else "-"
        print(f"{label:36} {summary(ours[key]):>22} {other:>22} {ratio:>20}")
    print(f"{'first change of a version (cold)':36} {summary(ours['cold']):>22}")
    if register:
        print("registration: mlprov verifies the signed evidence, scans and stores every file "
              "and evidence blob, signs the decision; MLflow inserts a row naming a URI")
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


if __name__ == "__main__":
    sys.exit(main())
