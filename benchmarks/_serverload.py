"""`bench_server.py --load`: many clients at once against `mlprov server`, and against MLflow's.

    python benchmarks/bench_server.py --load [--duration 60] [--versions 10000]
        [--resolvers 50] [--promoters 4] [--mlflow-python /path/to/python]

Issue 14, item 8. One registry of ``--versions`` versions (``--one-name`` of
them under credit-risk), served by a real ``mlprov server`` (a subprocess:
uvicorn on a loopback port, plain HTTP), then, for ``--duration`` seconds per
phase, ``--resolvers`` clients resolving ``models:/credit-risk@production``
while ``--promoters`` clients make gated changes (each in turn: point the
protected alias ``production`` at one of three versions in Production; move
its own version between Production and Staging). Every client is a thread
with its own connection; they are spread over ``--client-procs`` processes
(the promoters in one more), so the client side's GIL is not the bottleneck.
Every operation's latency is recorded; each phase prints p50/p99/max per
operation, throughput, errors (the target is 0), the load average and the CPU
the server and the clients used.

Phases (``--phases``):

- ``mlprov-client``: resolvers use the real client, ``RemoteRegistry`` (what
  ``mlprov.load`` and the CLI run on a serving host): it fetches the signed
  head, the log's end and the decision behind the alias and verifies them with
  the pinned registry key: five requests per resolve (the head once, the model,
  the alias, the version, the audit entry that holds the decision; the decision
  itself, content-addressed, only the first time the client sees its digest).
- ``mlprov-http``: resolvers send one plain request, ``GET /api/v1/resolve``
  (the server resolves against its signed head and answers the version; the
  client checks the status and the JSON only): the same shape as MLflow's call.
- ``mlflow``: the same resolvers against ``mlflow server`` on the same data:
  ``GET /api/2.0/mlflow/registered-models/alias``; its promoters set the alias
  and transition the stage through MLflow's REST API, in the same rhythm.

Promoters use ``RemoteRegistry`` in both mlprov phases (the server gates,
signs and records; the client verifies the signed decision and the new head).
After the mlprov phases the server is stopped and ``mlprov audit verify
--deep`` runs on the registry: the chain must verify, and it must have grown
by one entry per change the promoters made.

Building: three real versions for the alias and one per promoter are attested,
registered, reviewed and promoted to Production; the rest are registered in
bulk through the registry's own change recorder (each with its signed decision,
hash-chained audit entry and signed head, so ``audit verify --deep`` checks
them like any other), naming the first version's stored content. That takes
about 25 s for 10k versions, so the built registry is kept under ``--cache``,
keyed by the parameters and the registry's source, and copied for each run.
MLflow's registry gets the same names and version numbers: its real versions
through ``MlflowClient``, the rest by one SQL bulk insert into the tables
MLflow created (copying the columns of a row it wrote itself): 10k calls of
its API would take minutes and measure nothing the benchmark reports.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
NAME = "credit-risk"
ALIAS_VERSIONS = 3  # versions 1..3: the aliases move between them
RECIPE = 1  # bump when what build() makes changes (the cache key)
PHASES = ("mlprov-client", "mlprov-http", "mlflow")
READER, PROMOTER = "bench-reader", "bench-promoter"
MLFLOW_HINT = ("python -m venv /tmp/mlflowvenv && /tmp/mlflowvenv/bin/pip install mlflow, "
               "then --mlflow-python /tmp/mlflowvenv/bin/python")


def _bench_registry() -> Any:
    sys.path.insert(0, str(HERE))
    import bench_registry

    return bench_registry


# --------------------------------------------------------------------------- building


def real_versions(promoters: int) -> int:
    """How many versions are really attested: three for the aliases, one per promoter."""
    return ALIAS_VERSIONS + promoters


def aliases(promoters: int) -> list[str]:
    """The aliases: one per promoter (each moved by one client only), at least one."""
    return [f"production-{k}" for k in range(max(1, promoters))]


def build(home: Path, versions: int, one_name: int, promoters: int) -> None:
    """Make the benchmark's registry in ``home`` (see the module docstring)."""
    from mlprov.registry import Registry
    from mlprov.reviews import make_review
    from mlprov.signing import KeyType, generate_key, load_private_key, write_key_pair

    br = _bench_registry()
    keys = home / "keys"
    keys.mkdir(parents=True)
    for name in ("ci", "eval", "alice"):
        write_key_pair(generate_key(KeyType.ED25519), keys / f"{name}.key", None)
    trust = home / "trust.yaml"
    trust.write_text("version: 1\nkeys:\n"
                     "  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}\n"
                     "  - {name: eval, public_key: keys/eval.key.pub, roles: [evaluator]}\n"
                     "  - {name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}\n")
    (home / "requirements.txt").write_text("numpy==2.1.0\nsafetensors==0.4.5\n")
    (home / "metrics.json").write_text(json.dumps(
        {"metrics": {"auc": 0.91, "accuracy": 0.84}, "slices": {"age<30": {"auc": 0.88}}}))
    registry = Registry.init(home / "registry", trust=trust)
    try:
        real = real_versions(promoters)
        for n in range(real):
            model, evidence = br.make_attested(home, n)
            registry.register(model, evidence=evidence, actor="bench-ci")
            review = home / f"review{n}.json"
            review.write_bytes(make_review(evidence, signer=load_private_key(keys / "alice.key"),
                                           reviewer="alice", decision="approve",
                                           comment="benchmark", trust=trust))
            registry.add_review(NAME, n + 1, review, actor="alice")
            shutil.rmtree(model)
            shutil.rmtree(evidence)
        for number in range(1, real + 1):
            for stage in ("Staging", "Production"):
                registry.promote(NAME, number, to=stage, reason="bench setup", actor="bench")
        # Each alias gated as `production` is (production.rego), and protected on the server.
        from mlprov.registry._config import DEFAULT_CONFIG

        gates = "".join(f'{alias} = "production.rego"\n' for alias in aliases(promoters))
        assert "[gates.aliases]\n" in DEFAULT_CONFIG
        (home / "registry.toml").write_text(DEFAULT_CONFIG.replace(
            "[gates.aliases]\n", "[gates.aliases]\n" + gates, 1))
        registry.set_config(home / "registry.toml", reason="bench setup", actor="bench")
        for alias in aliases(promoters):
            registry.set_alias(NAME, alias, 1, reason="bench setup", actor="bench")
        plan = [(NAME, range(real + 1, one_name + 1))] + [
            (name, range(1, count + 1)) for name, count in br.other_names(versions, one_name)]
        fill(registry, [(name, number) for name, numbers in plan for number in numbers])
    finally:
        registry.close()


def fill(registry: Any, versions: list[tuple[str, int]], batch: int = 500) -> None:
    """Register ``versions`` (name, number) in bulk, each naming version 1's stored content.

    Each goes through the registry's change recorder as a registration does
    (signed decision, audit entry, event, signed head; a checkpoint every 100
    entries), many to a transaction; only the model's verification is skipped
    (version 1's was done when it was registered).
    """
    from mlprov.registry._facts import EVIDENCE_INPUT, FILES_INPUT
    from mlprov.registry._gate import rule_outcome
    from mlprov.registry._recorder import record_change, write_head
    from mlprov.registry._records import PendingChange
    from mlprov.registry._uri import utc_now, version_uri
    from mlprov.registry.interface import Stage

    with registry.metadata.read() as tx:
        template = tx.get_version(NAME, 1)
    assert template is not None
    for start in range(0, len(versions), batch):
        with registry.metadata.write() as tx:
            for name, number in versions[start:start + batch]:
                now = utc_now()
                tx.ensure_model(name, now)
                details: dict[str, Any] = {
                    "identity": template.identity, "rootDigest": template.root_digest,
                    "reproducible": False, "sameIdentityAs": [], "files": 2, "bytes": 0}
                if name != NAME:
                    details["evidenceName"] = NAME
                uri = version_uri(name, number)
                pending = PendingChange(
                    kind="model.register", name=name, version=number, target="version",
                    actor="bench-fill", reason="bulk load", outcome=rule_outcome("registration"),
                    subject_name=uri, subject_digest=template.root_digest, resource_uri=uri,
                    inputs={FILES_INPUT: template.files_digest,
                            EVIDENCE_INPUT: template.evidence_digest},
                    change={"name": name, "version": number, **details}, details=details)
                record = dataclasses.replace(template, name=name, version=number,
                                             stage=Stage.NONE, stage_decision=None,
                                             created_at=now, reproducible=False)

                def apply(decision: str, seq: int, _time: str, record: Any = record,
                          tx: Any = tx) -> None:
                    tx.insert_version(dataclasses.replace(record, registration=decision,
                                                          created_seq=seq))

                record_change(registry, tx, pending, apply)
    with registry.metadata.read() as tx:
        checkpoints = tx.checkpoints()
    if checkpoints:  # head.json mirrors the latest checkpoint, as after any change
        write_head(registry, checkpoints[-1].bundle, checkpoints[-1].seq)


def cached_build(cache: Path, versions: int, one_name: int, promoters: int, *,
                 rebuild: bool = False) -> Path:
    """The built registry for these parameters under ``cache`` (built first if missing)."""
    import mlprov

    digest = hashlib.sha256(json.dumps([RECIPE, versions, one_name, promoters,
                                        mlprov.__version__]).encode())
    import inspect

    for fn in (build, fill, aliases):  # the recipe, and the registry code it runs
        digest.update(inspect.getsource(fn).encode())
    for source in sorted((Path(mlprov.__file__).parent / "registry").glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    where = cache / f"v{versions}-n{one_name}-p{promoters}-{digest.hexdigest()[:16]}"
    if where.is_dir() and not rebuild:
        print(f"registry: reusing {where}", file=sys.stderr)
        return where
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    began = time.perf_counter()
    print(f"registry: building {versions} versions ({one_name} under {NAME}, "
          f"{real_versions(promoters)} attested) in {where} ...", file=sys.stderr)
    saved = os.environ.get("MLPROV_REGISTRY_FSYNC")
    os.environ["MLPROV_REGISTRY_FSYNC"] = "off"  # a throwaway build; the server runs durable
    try:
        build(building, versions, one_name, promoters)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    finally:
        if saved is None:
            os.environ.pop("MLPROV_REGISTRY_FSYNC", None)
        else:
            os.environ["MLPROV_REGISTRY_FSYNC"] = saved
    if where.exists():
        shutil.rmtree(where)
    building.rename(where)
    print(f"registry: built in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return where


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(port: int, path: str, proc: subprocess.Popen[Any], timeout: float,
              what: str) -> None:
    """Wait until ``GET path`` answers 200 (or fail when ``proc`` exits or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before it was "
                               "ready (its log is printed above)")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready after {timeout:.0f} s")


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> int:
    """SIGTERM the process group we started (graceful), SIGKILL it after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "pid (comm)": state ppid ... utime(11) stime(12) cutime(13) cstime(14)
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / ticks)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += stats[current][1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == current)
    return total


def mlprov_command() -> list[str]:
    script = Path(sys.executable).parent / "mlprov"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from mlprov._cli.main import console_main; console_main()"]


# --------------------------------------------------------------------------- servers


@dataclasses.dataclass
class Server:
    proc: subprocess.Popen[Any]
    port: int
    about: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def server_toml(promoters: int) -> str:
    """The server's configuration: limits lifted, the aliases protected and granted by name."""
    names = json.dumps(aliases(promoters))
    return f"""\
# bench_server.py --load: the limits are lifted so the benchmark measures the server,
# not the rate limiter (defaults: 600 changes and 60000 store reads a minute per principal,
# and every resolving client here shares one reader token).
[server]
rate_limit = 100000000
rate_burst = 100000000
read_rate_limit = 100000000
read_burst = 100000000

[authz]
protected_aliases = {names}

[[grants]]
principals = ["{PROMOTER}"]
aliases = [{{ names = ["{NAME}"], aliases = {names} }}]
"""


def make_tokens(registry: Path) -> dict[str, str]:
    """API tokens for the reader and the promoter (what `mlprov server token create` does)."""
    from mlprov.registry import Registry
    from mlprov.server import token_store

    tokens = {}
    with Registry.open(registry) as opened:
        store = token_store(opened)
        try:
            for kind, principal in (("reader", READER), ("promoter", PROMOTER)):
                tokens[kind], _ = store.issue(principal=principal, roles=[kind],
                                              created_by="bench", expires_at=None)
        finally:
            store.close()
    return tokens


def start_mlprov(registry: Path, work: Path, promoters: int, log: TextIO) -> Server:
    config = work / "server.toml"
    config.write_text(server_toml(promoters))
    port = free_port()
    env = {**os.environ, "MLPROV_REGISTRY_FSYNC": "on"}
    proc = subprocess.Popen([*mlprov_command(), "server", "--registry", str(registry),
                             "--host", "127.0.0.1", "--port", str(port), "--config",
                             str(config)], stdout=log, stderr=log, env=env,
                            start_new_session=True)
    try:
        wait_http(port, "/api/v1/ready", proc, 120, "mlprov server")
    except BaseException:
        stop(proc)
        raise
    return Server(proc, port, "mlprov server (one uvicorn process, 4 worker threads for "
                              "registry work: its defaults; durable commits)")


MLFLOW_SETUP = r"""
import json, sqlite3, sys, warnings
warnings.filterwarnings("ignore")
db = sys.argv[1]
spec = json.loads(sys.stdin.read())
uri = "sqlite:///" + db
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
name, real = spec["name"], spec["real"]
client.create_registered_model(name)
for n in range(real):
    client.create_model_version(name, "file:///bench/model%d" % n, run_id=None)
for n in range(1, real + 1):
    for stage in ("Staging", "Production"):
        client.transition_model_version_stage(name, str(n), stage,
                                              archive_existing_versions=False)
for alias in spec["aliases"]:
    client.set_registered_model_alias(name, alias, "1")
conn = sqlite3.connect(db)
conn.row_factory = sqlite3.Row
model = dict(conn.execute("SELECT * FROM registered_models WHERE name = ?", (name,)).fetchone())
version = dict(conn.execute("SELECT * FROM model_versions WHERE name = ? AND version = 1",
                            (name,)).fetchone())
models, rows = [], []
def row(template, **values):
    out = dict(template)
    out.update(values)
    return out
for model_name, first, last in spec["plan"]:
    if model_name != name:
        models.append(row(model, name=model_name, description=None))
    for number in range(first, last + 1):
        source = "file:///bench/%s/%d" % (model_name, number)
        rows.append(row(version, name=model_name, version=number, current_stage="None",
                        source=source, storage_location=source, description=None))
def insert(table, items):
    if not items:
        return
    columns = list(items[0])
    conn.executemany("INSERT INTO %s (%s) VALUES (%s)" % (
        table, ", ".join(columns), ", ".join("?" * len(columns))),
        [tuple(item[c] for c in columns) for item in items])
with conn:
    insert("registered_models", models)
    insert("model_versions", rows)
conn.close()
import mlflow
print(mlflow.__version__)
"""


def find_mlflow_python(given: str | None) -> tuple[str | None, str]:
    """A Python with the full MLflow (``mlflow server``), or None and why not."""
    if given:
        python = given
    else:
        script = shutil.which("mlflow")
        if script is None:
            return None, "no mlflow executable on PATH"
        with open(script, "rb") as handle:
            first = handle.readline().decode(errors="replace").strip()
        python = first[2:].strip() if first.startswith("#!") else ""
        if not python or not Path(python.split()[0]).is_file():
            python = str(Path(script).parent / "python")
        python = python.split()[0]
    check = subprocess.run([python, "-c", "import mlflow, mlflow.server, sqlalchemy, alembic; "
                            "print(mlflow.__version__)"], capture_output=True, text=True)
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["failed"])[-1]
        return None, f"{python} cannot run mlflow server ({last})"
    return python, check.stdout.strip()


def start_mlflow(python: str, work: Path, versions: int, one_name: int, promoters: int,
                 workers: int | None, log: TextIO) -> Server:
    br = _bench_registry()
    db = work / "mlflow.db"
    real = real_versions(promoters)
    plan = [(NAME, real + 1, one_name)] + [
        (name, 1, count) for name, count in br.other_names(versions, one_name)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    began = time.perf_counter()
    done = subprocess.run([python, "-c", MLFLOW_SETUP, str(db)], check=True, text=True,
                          input=json.dumps({"name": NAME, "real": real,
                                            "aliases": aliases(promoters),
                                            "plan": plan}),
                          capture_output=True, env=env)
    version = done.stdout.strip().splitlines()[-1]
    print(f"MLflow {version}: registry loaded in {time.perf_counter() - began:.1f} s",
          file=sys.stderr)
    port = free_port()
    command = [python, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
               "--default-artifact-root", (work / "mlartifacts").as_uri(),
               "--no-serve-artifacts", "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=work,
                            start_new_session=True)
    try:
        wait_http(port, "/health", proc, 180, "mlflow server")
    except BaseException:
        stop(proc)
        raise
    shown = "its default, 4" if workers is None else str(workers)
    return Server(proc, port, f"mlflow server {version} (uvicorn, {shown} worker processes; "
                              "SQLite)")


# --------------------------------------------------------------------------- clients


class HttpClient:
    """One kept-alive connection; reconnects after a failure."""

    def __init__(self, port: int, token: str | None) -> None:
        self.port = port
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            answer = self.conn.getresponse()
            payload = answer.read()
        except BaseException:
            self.conn.close()
            self.conn = None
            raise
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {payload[:200]!r}")
        return json.loads(payload)


def check_version(version: Any, uri: str) -> None:
    if str(version) not in {str(n) for n in range(1, ALIAS_VERSIONS + 1)}:
        raise RuntimeError(f"{uri} resolved to version {version!r}")


Operation = Callable[[int], str]


def make_client(spec: dict[str, Any], index: int) -> tuple[Operation, Callable[[], None]]:
    """One client of the kind ``spec`` names: (operation on call ``i`` -> its name, warm-up).

    Resolver ``n`` resolves alias ``n mod len(aliases)``; promoter ``k`` moves alias
    ``k`` (no other client moves it) and its own version ``ALIAS_VERSIONS + 1 + k``.
    """
    system, role = spec["system"], spec["role"]
    number = spec["first"] + index  # the client's number among its kind
    names = spec["aliases"]
    alias = names[number % len(names)]
    uri = f"models:/{NAME}@{alias}"
    own = ALIAS_VERSIONS + 1 + number
    state = {"alias": 1, "stage": "Production"}
    if system == "mlprov" and (role == "promote" or spec["mode"] == "client"):
        from mlprov.server import RemoteRegistry

        remote = RemoteRegistry(spec["url"], token=spec["token"],
                                cache=Path(spec["cache"]) / f"{role}-{number}")

        def resolve(_i: int) -> str:
            check_version(remote.resolve(uri).version, uri)
            return "resolve"

        if role == "resolve":
            return resolve, lambda: resolve(0)

        def warm() -> None:  # where an earlier phase left the alias and the version
            state["alias"] = remote.resolve(uri).version
            state["stage"] = remote.resolve(f"models:/{NAME}/{own}").record.stage.value

        def promote(i: int) -> str:
            if i % 2 == 0:
                target = state["alias"] % ALIAS_VERSIONS + 1
                result = remote.set_alias(NAME, alias, target, reason="bench load")
                state["alias"], name = target, "alias move"
            else:
                to = "Staging" if state["stage"] == "Production" else "Production"
                result = remote.promote(NAME, own, to=to, reason="bench load")
                state["stage"], name = to, "stage move"
            if not result.allowed:
                raise RuntimeError(f"{name} denied: {'; '.join(result.deny)}")
            return name

        return promote, warm
    http = HttpClient(spec["port"], spec.get("token"))
    if system == "mlprov":
        path = "/api/v1/resolve?" + urlencode({"uri": uri})

        def resolve_http(_i: int) -> str:
            check_version(http.call("GET", path)["version"], uri)
            return "resolve"

        return resolve_http, lambda: resolve_http(0)
    alias_path = "/api/2.0/mlflow/registered-models/alias"
    query = alias_path + "?" + urlencode({"name": NAME, "alias": alias})

    def resolve_mlflow(_i: int) -> str:
        check_version(http.call("GET", query)["model_version"]["version"], uri)
        return "resolve"

    if role == "resolve":
        return resolve_mlflow, lambda: resolve_mlflow(0)

    def warm_mlflow() -> None:
        state["alias"] = int(http.call("GET", query)["model_version"]["version"])
        shown = http.call("GET", "/api/2.0/mlflow/model-versions/get?"
                          + urlencode({"name": NAME, "version": str(own)}))
        state["stage"] = shown["model_version"]["current_stage"]

    def promote_mlflow(i: int) -> str:
        if i % 2 == 0:
            target = state["alias"] % ALIAS_VERSIONS + 1
            http.call("POST", alias_path, {"name": NAME, "alias": alias,
                                           "version": str(target)})
            state["alias"] = target
            return "alias move"
        to = "Staging" if state["stage"] == "Production" else "Production"
        http.call("POST", "/api/2.0/mlflow/model-versions/transition-stage",
                  {"name": NAME, "version": str(own), "stage": to,
                   "archive_existing_versions": False})
        state["stage"] = to
        return "stage move"

    return promote_mlflow, warm_mlflow


def worker_main() -> int:
    """A client process: its spec on stdin, ``ready`` on stdout, then ``go SECONDS``."""
    spec = json.loads(sys.stdin.readline())
    clients = [make_client(spec, i) for i in range(spec["threads"])]
    for _, warm in clients:  # connect, pin the key, first verification: not timed
        warm()
    print("ready", flush=True)
    duration = float(sys.stdin.readline().split()[1])
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[str, int]] = {}
    lock = threading.Lock()
    cpu = time.process_time()
    deadline = time.monotonic() + duration

    def loop(operation: Callable[[int], str]) -> None:
        mine: list[tuple[str, float, str | None]] = []
        i = 0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                name = operation(i)
                failure = None
            except Exception as exc:  # every failure is counted, none stops the run
                name = "alias move" if spec["role"] == "promote" and i % 2 == 0 else (
                    "stage move" if spec["role"] == "promote" else "resolve")
                failure = f"{type(exc).__name__}: {str(exc)[:160]}"
            mine.append((name, (time.perf_counter() - began) * 1000, failure))
            i += 1
        with lock:
            for name, ms, failure in mine:
                if failure is None:
                    latencies.setdefault(name, []).append(round(ms, 3))
                else:
                    bucket = errors.setdefault(name, {})
                    bucket[failure] = bucket.get(failure, 0) + 1

    threads = [threading.Thread(target=loop, args=(op,)) for op, _ in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"latencies": latencies, "errors": errors,
                      "cpu": time.process_time() - cpu}), flush=True)
    return 0


# --------------------------------------------------------------------------- phases


def split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_slice(label: str, system: str, mode: str, server: Server, args: argparse.Namespace,
              tokens: dict[str, str], cache: Path, duration: float) -> dict[str, Any]:
    """Start the client processes, let them run ``duration`` seconds, gather what they saw."""
    specs = []
    first = 0
    for threads in split(args.resolvers, args.client_procs) if args.resolvers else []:
        specs.append({"system": system, "role": "resolve", "mode": mode, "threads": threads,
                      "first": first, "token": tokens.get("reader"), "url": server.url,
                      "port": server.port, "cache": str(cache),
                      "aliases": aliases(args.promoters)})
        first += threads
    if args.promoters:
        specs.append({"system": system, "role": "promote", "mode": "client",
                      "threads": args.promoters, "first": 0, "token": tokens.get("promoter"),
                      "url": server.url, "port": server.port, "cache": str(cache),
                      "aliases": aliases(args.promoters)})
    procs = [subprocess.Popen([sys.executable, __file__, "worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in specs]
    try:
        for proc, spec in zip(procs, specs, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(spec) + "\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a {label} client process failed to start "
                                   "(its error is printed above)")
        load_before = os.getloadavg()
        cpu_before = tree_cpu(server.proc.pid)
        began = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"go {duration}\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=duration + 300)[0] for proc in procs]
        wall = time.monotonic() - began
        server_cpu = tree_cpu(server.proc.pid) - cpu_before
        load_after = os.getloadavg()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[str, int]] = {}
    client_cpu = 0.0
    for proc, out in zip(procs, outputs, strict=True):
        if proc.returncode != 0 or not out.strip():
            raise RuntimeError(f"a {label} client process failed (status {proc.returncode})")
        result = json.loads(out.strip().splitlines()[-1])
        client_cpu += result["cpu"]
        for name, values in result["latencies"].items():
            latencies.setdefault(name, []).extend(values)
        for name, found in result["errors"].items():
            for message, count in found.items():
                bucket = errors.setdefault(name, {})
                bucket[message] = bucket.get(message, 0) + count
    return {"latencies": latencies, "errors": errors, "wall": wall, "serverCpu": server_cpu,
            "clientCpu": client_cpu, "load": [load_before[0], load_after[0]],
            "clientProcesses": len(procs)}


def summarise(label: str, server: Server, args: argparse.Namespace,
              slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase's report from its slices: every latency pooled, errors and CPU added."""
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[str, int]] = {}
    for part in slices:
        for name, values in part["latencies"].items():
            latencies.setdefault(name, []).extend(values)
        for name, found in part["errors"].items():
            for message, count in found.items():
                bucket = errors.setdefault(name, {})
                bucket[message] = bucket.get(message, 0) + count
    operations = {}
    for name in sorted(set(latencies) | set(errors)):
        values = latencies.get(name, [])
        operations[name] = {
            "count": len(values), "errors": sum(errors.get(name, {}).values()),
            "throughput": len(values) / args.duration,
            "p50": percentile(values, 0.5) if values else None,
            "p99": percentile(values, 0.99) if values else None,
            "max": max(values) if values else None,
            "errorMessages": errors.get(name, {}),
            "latencies": values}  # every one, in ms (--json keeps them)
    loads = [value for part in slices for value in part["load"]]
    return {"phase": label, "server": server.about, "duration": args.duration,
            "slices": len(slices), "wall": sum(p["wall"] for p in slices),
            "resolvers": args.resolvers, "promoters": args.promoters,
            "clientProcesses": slices[0]["clientProcesses"], "load": [min(loads), max(loads)],
            "serverCpu": sum(p["serverCpu"] for p in slices),
            "clientCpu": sum(p["clientCpu"] for p in slices), "operations": operations,
            "errors": sum(op["errors"] for op in operations.values())}


def print_phase(phase: dict[str, Any]) -> None:
    low, high = phase["load"]
    print(f"\n{phase['phase']}: {phase['resolvers']} resolving + {phase['promoters']} "
          f"promoting clients in {phase['clientProcesses']} processes, {phase['duration']:g} s "
          f"in {phase['slices']} slice(s); {phase['server']}")
    print(f"  load average {low:.2f}-{high:.2f} (1 min, before and after each slice); CPU: "
          f"server {phase['serverCpu']:.1f} s ({100 * phase['serverCpu'] / phase['wall']:.0f}%"
          f" of a core), clients {phase['clientCpu']:.1f} s")
    done = sum(op["count"] for op in phase["operations"].values())
    if done:
        print(f"  server CPU per operation done (all kinds): "
              f"{1000 * phase['serverCpu'] / done:.2f} ms")
    print(f"  {'operation':<12} {'count':>7} {'errors':>7} {'ops/s':>8} {'p50 ms':>9} "
          f"{'p99 ms':>9} {'max ms':>9}")
    for name, op in phase["operations"].items():
        cells = [f"{op[k]:9.2f}" if op[k] is not None else f"{'-':>9}"
                 for k in ("p50", "p99", "max")]
        print(f"  {name:<12} {op['count']:>7} {op['errors']:>7} {op['throughput']:>8.1f} "
              + " ".join(cells))
        for message, count in list(op["errorMessages"].items())[:5]:
            print(f"      {count} x {message}")


def audit_verify(registry: Path) -> dict[str, Any]:
    out = subprocess.run([*mlprov_command(), "audit", "verify", "--deep", "--registry",
                          str(registry), "--json"], capture_output=True, text=True)
    try:
        report: dict[str, Any] = json.loads(out.stdout)
    except ValueError:
        report = {"ok": False, "problems": [out.stderr.strip()[-500:]]}
    report["exitCode"] = out.returncode
    return report


def audit_seq(registry: Path) -> int:
    from mlprov.registry import Registry

    with Registry.open(registry) as opened, opened.metadata.read() as tx:
        head = tx.audit_head()
    return head.seq if head else 0


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    a, b = ours["operations"].get("resolve"), theirs["operations"].get("resolve")
    if not a or not b or not a["count"] or not b["count"]:
        return {"p50": None, "p99": None, "throughput": None}
    return {"p50": a["p50"] / b["p50"], "p99": a["p99"] / b["p99"],
            "throughput": a["throughput"] / b["throughput"]}


# --------------------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench_server.py --load",
        description="Concurrent resolvers and promoters against mlprov server, and against "
                    "mlflow server on the same data (issue 14, item 8).")
    p.add_argument("--duration", type=float, default=60.0,
                   help="seconds of load per phase (default 60)")
    p.add_argument("--versions", type=int, default=10_000,
                   help="versions in the registry (default 10000)")
    p.add_argument("--one-name", type=int, default=5_000,
                   help=f"of which under {NAME}, the name resolved and changed (default 5000)")
    p.add_argument("--resolvers", type=int, default=50, help="resolving clients (default 50)")
    p.add_argument("--promoters", type=int, default=4, help="promoting clients (default 4)")
    p.add_argument("--client-procs", type=int, default=5,
                   help="processes the resolving clients are spread over (default 5; the "
                        "promoters run in one more)")
    p.add_argument("--slices", type=int, default=3,
                   help="each phase's time is cut in this many slices, run round-robin with "
                        "the other phases' (default 3)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"comma-separated, of {', '.join(PHASES)} (default all)")
    p.add_argument("--mlflow-python", metavar="PATH",
                   help="a Python with the full mlflow (default: the interpreter of the "
                        "mlflow executable on PATH)")
    p.add_argument("--mlflow-workers", type=int,
                   help="mlflow server --workers (default: MLflow's own, 4)")
    p.add_argument("--no-mlflow", action="store_true", help="skip the MLflow phase")
    p.add_argument("--cache", type=Path,
                   default=Path(tempfile.gettempdir()) / "mlprov-bench-server-load",
                   help="where built registries are kept, by parameters (default "
                        "$TMPDIR/mlprov-bench-server-load)")
    p.add_argument("--rebuild", action="store_true", help="build the registry again")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    return p


def run(args: argparse.Namespace, phases: list[str], built: Path, work: Path,
        report: dict[str, Any]) -> None:
    """Start the servers, run the phases in slices, stop them, verify the audit log."""
    shutil.copytree(built, work / "home")
    registry = work / "home" / "registry"
    tokens = make_tokens(registry)
    servers: dict[str, Server] = {}
    with open(work / "server.log", "w") as log:
        try:
            if any(p.startswith("mlprov") for p in phases):
                seq_before = audit_seq(registry)
                servers["mlprov"] = start_mlprov(registry, work, args.promoters, log)
            if "mlflow" in phases:
                python, about = find_mlflow_python(args.mlflow_python)
                if python is None:
                    print(f"\nMLflow not compared: {about}. To compare, install the full "
                          f"MLflow: {MLFLOW_HINT}", flush=True)
                    report["mlflow"] = {"skipped": about}
                    phases = [p for p in phases if p != "mlflow"]
                else:
                    servers["mlflow"] = start_mlflow(python, work, args.versions,
                                                     args.one_name, args.promoters,
                                                     args.mlflow_workers, log)
                    report["mlflow"] = {"version": about}
            # Each phase's time in slices, round-robin, the order flipped every round: on a
            # shared machine every phase sees the same changing load.
            slices: dict[str, list[dict[str, Any]]] = {label: [] for label in phases}
            for n in range(args.slices):
                for label in phases if n % 2 == 0 else phases[::-1]:
                    system = "mlflow" if label == "mlflow" else "mlprov"
                    mode = "client" if label == "mlprov-client" else "http"
                    slices[label].append(run_slice(
                        label, system, mode, servers[system], args,
                        tokens if system == "mlprov" else {}, work / "clients",
                        args.duration / args.slices))
        finally:
            status = {name: stop(server.proc) for name, server in servers.items()}
    for label in phases:
        phase = summarise(label, servers["mlflow" if label == "mlflow" else "mlprov"], args,
                          slices[label])
        report["phases"].append(phase)
        print_phase(phase)
    if "mlprov" not in servers:
        return
    changes = sum(op["count"] for phase in report["phases"] if phase["phase"] != "mlflow"
                  for name, op in phase["operations"].items() if name != "resolve")
    audit = audit_verify(registry)
    audit["entriesAdded"] = audit.get("entries", 0) - seq_before
    audit["changesMade"] = changes
    audit["serverExit"] = status["mlprov"]
    report["audit"] = audit
    intact = audit.get("ok") and audit["exitCode"] == 0
    print(f"\naudit verify --deep after the run: {'chain intact' if intact else 'FAILED'}: "
          f"{audit.get('entries')} entries, {audit.get('decisionsVerified')} signed decisions "
          f"verified; {audit['entriesAdded']} entries added during the run for {changes} "
          f"changes the promoters saw accepted; mlprov server exit {status['mlprov']}")
    for problem in audit.get("problems", [])[:5]:
        print(f"  problem: {problem}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    wrong = [p for p in phases if p not in PHASES]
    real = real_versions(args.promoters)
    if wrong or not phases:
        parser().error(f"unknown phase(s) {', '.join(wrong)}; choose from {', '.join(PHASES)}")
    if not real <= args.one_name <= args.versions:
        parser().error(f"need {real} <= --one-name <= --versions")
    if (args.resolvers < 0 or args.promoters < 0 or args.client_procs < 1
            or args.duration <= 0 or args.slices < 1):
        parser().error("--resolvers, --promoters >= 0, --client-procs, --slices >= 1, "
                       "--duration > 0")
    if args.no_mlflow and "mlflow" in phases:
        phases.remove("mlflow")
    report: dict[str, Any] = {
        "schema": "https://mlprov.dev/schemas/bench-server-load/v1",
        "versions": args.versions, "oneName": args.one_name, "cpus": os.cpu_count(),
        "phases": [], "mlflow": None, "audit": None, "ratios": {}}
    print(f"{args.versions} versions ({args.one_name} under {NAME}); {args.resolvers} "
          f"resolvers, {args.promoters} promoters; {args.duration:g} s per phase; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}", flush=True)
    built = cached_build(args.cache, args.versions, args.one_name, args.promoters,
                         rebuild=args.rebuild)
    with tempfile.TemporaryDirectory(prefix="bench-server-load-") as tmp:
        work = Path(tmp)
        try:
            run(args, phases, built, work, report)
        finally:
            with contextlib.suppress(OSError):  # kept: the servers' own words on any error
                shutil.copy(work / "server.log", args.cache / "last-run-servers.log")
    by_label = {phase["phase"]: phase for phase in report["phases"]}
    if "mlflow" in by_label:
        print("\nresolve, mlprov / MLflow (same run):     p50      p99   throughput")
        for label, what in (("mlprov-http", "GET /api/v1/resolve, 1 request"),
                            ("mlprov-client", "verified client, 5 requests")):
            if label in by_label:
                r = ratios(by_label[label], by_label["mlflow"])
                report["ratios"][label] = r
                if r["p50"] is not None:
                    print(f"  {what:<36} {r['p50']:6.2f}x  {r['p99']:6.2f}x  "
                          f"{r['throughput']:6.2f}x")
    report["errors"] = sum(phase["errors"] for phase in report["phases"])
    print(f"\nerrors: {report['errors']} (target 0)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker_main())
    sys.exit(main())
