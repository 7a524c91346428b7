"""The registry server's cost: the same operations in process and through a server, one run.

    pip install -e '.[server]'
    python benchmarks/bench_server.py [--size-mib 64] [--rounds 30]
    python benchmarks/bench_server.py --load [--duration 60] [--mlflow-python PATH] [--help]

``--load`` runs the load scenario instead (issue 14, item 8; benchmarks/_serverload.py):
50 resolving and 4 promoting clients for 60 s against a real `mlprov server` over a
registry of 10k versions, p50/p99 per operation, errors, `audit verify --deep` after, and
the same resolvers against `mlflow server` on the same data. What follows is the default
scenario.

One embedded registry, one real `mlprov server` (the uvicorn server `mlprov
server` runs, in a thread, on a loopback port, plain HTTP), one client
(`RemoteRegistry`, keep-alive, the registry key pinned). The series run
interleaved (one in-process operation, one remote, the order flipped every
sample) so both see the same load:

- authenticated request: `GET /api/v1/whoami` with an API token (token look-up,
  rate limit, JSON), the floor under every remote call;
- resolve: `Registry.resolve("models:/bench@canary")` in process vs the client's
  (signed head, log end and the row's decision verified on the client);
- gated alias move: `Registry.set_alias` in process vs the client's (the server
  gates, signs and records it; the client verifies the signed decision, that it
  is newer than the head it saw, and the new head);
- pull: `Registry.pull` of a ``--size-mib`` model in process vs the client's
  (every blob downloaded and re-hashed, decision and evidence verified on the
  client), as MiB/s;
- load: `mlprov.load` of the same version again (a cached, re-hashed checkout).

Nothing is asserted; p50 and p99 per series and the remote/local ratios are
printed, then how many HTTP requests one more warm remote call of each makes
(tests/server/test_round_trips.py holds the resolve's count). There is no
target in issue 14; the figures show what the extra hop and the client-side
verification cost.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAME = "bench"


def attested(work: Path, size: int) -> tuple[Path, Path, Path]:
    """Keys, a trust file and one attested model of ``size`` bytes (SBOM, eval, card)."""
    import mlprov
    from mlprov.signing import KeyType, generate_key, write_key_pair

    keys = work / "keys"
    keys.mkdir()
    for name in ("ci", "eval"):
        write_key_pair(generate_key(KeyType.ED25519), keys / f"{name}.key", None)
    trust = work / "trust.yaml"
    trust.write_text("version: 1\nkeys:\n"
                     "  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}\n"
                     "  - {name: eval, public_key: keys/eval.key.pub, roles: [evaluator]}\n")
    (work / "requirements.txt").write_text("numpy==2.1.0\nsafetensors==0.4.5\n")
    (work / "metrics.json").write_text(json.dumps({"metrics": {"auc": 0.91, "accuracy": 0.84}}))
    model = work / "model"
    model.mkdir()
    payload = random.Random(1).randbytes(size)
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)],
                               "data_offsets": [0, len(payload)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(model / "model.safetensors", "wb") as out:
        out.write(len(header).to_bytes(8, "little") + header + payload)
    (model / "config.json").write_text('{"layers": 2}\n')
    evidence = work / "evidence"
    mlprov.attest(model, name=NAME, key=keys / "ci.key", out=evidence, commit="0" * 40,
                  seeds={"torch": 1}, metrics=work / "metrics.json",
                  eval_key=keys / "eval.key", environment=work / "requirements.txt")
    return trust, model, evidence


def start(registry: Path) -> tuple[Any, threading.Thread, str]:
    from mlprov.server import ServerConfig
    from mlprov.server._run import make_server
    from mlprov.server._state import ServerState

    config = ServerConfig({"server": {"rate_limit": 10**6, "rate_burst": 10**6}})
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (else 40 ms per answer)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = make_server(ServerState(str(registry), config), config, host="127.0.0.1",
                         port=port)
    server.config.log_level = "warning"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def series(pairs: list[tuple[str, Callable[[], Any]]], rounds: int) -> dict[str, list[float]]:
    """Time each operation ``rounds`` times, interleaved, the order flipped every round."""
    out: dict[str, list[float]] = {name: [] for name, _ in pairs}
    for n in range(rounds):
        for name, fn in (pairs if n % 2 == 0 else list(reversed(pairs))):
            began = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - began)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(label: str, local: list[float] | None, remote: list[float]) -> None:
    r50, r99 = p(remote, 0.5) * 1000, p(remote, 0.99) * 1000
    if local is None:
        print(f"{label:<28} remote p50 {r50:8.2f} ms  p99 {r99:8.2f} ms")
        return
    l50, l99 = p(local, 0.5) * 1000, p(local, 0.99) * 1000
    print(f"{label:<28} local p50 {l50:8.2f} ms  p99 {l99:8.2f} ms | remote p50 {r50:8.2f} ms"
          f"  p99 {r99:8.2f} ms | remote/local {r50 / l50:5.2f}x")


def requests_of(remote: Any, fn: Callable[[], Any]) -> int:
    """How many HTTP requests the client sends for one more call of ``fn``."""
    transport = remote.transport
    sent = 0
    original = transport.request

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal sent
        sent += 1
        return original(*args, **kwargs)

    transport.request = counting
    try:
        fn()
    finally:
        del transport.request  # the class's method again
    return sent


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--load" in argv:  # the load scenario: benchmarks/_serverload.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import _serverload

        return int(_serverload.main([a for a in argv if a != "--load"]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="--load [--help]: many clients at once, against "
                                            "mlflow server too (benchmarks/_serverload.py)")
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLPROV_REGISTRY_FSYNC", "on")
    from mlprov.registry import Registry
    from mlprov.server import RemoteRegistry, token_store

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        work = Path(tmp)
        os.environ["MLPROV_CACHE_HOME"] = str(work / "cache")
        print(f"attesting a {args.size_mib} MiB model ...", file=sys.stderr)
        trust, model, evidence = attested(work, args.size_mib * 1024 * 1024)
        local = Registry.init(work / "registry", trust=trust)
        local.register(model, evidence=evidence)
        local.promote(NAME, 1, to="Staging", reason="bench")
        store = token_store(local)
        token, _ = store.issue(principal="bench", roles=["admin"], created_by="bench",
                               expires_at=None)
        store.close()
        server, thread, url = start(work / "registry")
        try:
            remote = RemoteRegistry.open(url, token=token)
            local.set_alias(NAME, "canary", 1, reason="bench")
            aliases = iter(range(10**6))

            def move(reg: Any) -> Callable[[], Any]:
                return lambda: reg.set_alias(NAME, f"a{next(aliases)}", 1, reason="bench")

            conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))

            def whoami() -> None:
                conn.request("GET", "/api/v1/whoami", headers={"Authorization":
                                                                f"Bearer {token}"})
                conn.getresponse().read()

            timed = series([("whoami", whoami)], args.rounds * 3)
            report("authenticated request", None, timed["whoami"])
            for warm in (local, remote):  # first verification of the version: cold
                warm.pull(f"models:/{NAME}/1", work / f"warm-{id(warm)}")
            timed = series([("local", lambda: local.resolve(f"models:/{NAME}@canary")),
                            ("remote", lambda: remote.resolve(f"models:/{NAME}@canary"))],
                           args.rounds)
            report("resolve (verified)", timed["local"], timed["remote"])
            timed = series([("local", move(local)), ("remote", move(remote))], args.rounds)
            report("gated alias move", timed["local"], timed["remote"])
            outs = iter(range(10**6))
            pulls = max(3, args.rounds // 10)
            timed = series([("local", lambda: local.pull(f"models:/{NAME}/1",
                                                         work / f"l{next(outs)}")),
                            ("remote", lambda: remote.pull(f"models:/{NAME}/1",
                                                           work / f"r{next(outs)}"))], pulls)
            report(f"pull {args.size_mib} MiB", timed["local"], timed["remote"])
            mib = args.size_mib
            print(f"{'':<28} local {mib / p(timed['local'], 0.5):8.1f} MiB/s"
                  f"{'':<24} remote {mib / p(timed['remote'], 0.5):8.1f} MiB/s")
            remote.load(f"models:/{NAME}/1")
            timed = series([("local", lambda: local.load(f"models:/{NAME}/1")),
                            ("remote", lambda: remote.load(f"models:/{NAME}/1"))], pulls)
            report("load (cached checkout)", timed["local"], timed["remote"])
            counts = {
                "resolve": requests_of(remote, lambda: remote.resolve(f"models:/{NAME}@canary")),
                "gated alias move": requests_of(remote, move(remote)),
                "pull": requests_of(remote, lambda: remote.pull(f"models:/{NAME}/1",
                                                                work / f"r{next(outs)}")),
                "load": requests_of(remote, lambda: remote.load(f"models:/{NAME}/1")),
            }
            print("requests per remote operation (warm): "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()))
            remote.close()
            conn.close()
        finally:
            server.should_exit = True
            thread.join(30)
            local.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
