"""A team's registry behind one `mlprov server`, offline: who may do what, and what clients check.

Run from the repository root (needs the server extra: pip install -e '.[server]'):

    python examples/team_server_demo.py [--workdir DIR]

The story, every step through the real `mlprov` command line, each actor with
its own API token (`MLPROV_TOKEN`) and nothing but the server's URL
(`MLPROV_REGISTRY=http://127.0.0.1:PORT`):

1. the registry's host: create the registry, write `server.toml` (the release
   manager may move `@production`, a protected alias, by name), issue a token
   per principal, start `mlprov server`;
2. CI trains and attests a small model, registers it through the server; it may
   not promote it (403, exit 1, the permission named);
3. the release manager promotes it to Staging; Production is denied by the policy
   (no review yet); the reviewer attaches a signed review; the release manager
   promotes it and points `@production` at it;
4. a serving host pulls `models:/credit-risk@production`, verified on the
   client with the registry key it pinned, and loads it from Python;
5. the audit log names the authenticated principals (a claimed `--actor` is not
   recorded), holds the two refusals as signed entries, and verifies on the client;
6. someone edits the server's database (points `@production` elsewhere): the
   serving host refuses the model (exit 1); SIGTERM stops the server cleanly.

Exits non-zero if any step does not behave.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "credit-risk"
SERVER_TOML = """\
[authz]
protected_aliases = ["production", "champion"]
separation_of_duties = true

[groups]
release = ["release-manager"]

[[grants]]
principals = ["group:release"]
aliases = [{ names = ["credit-*"], aliases = ["production"] }]
"""
SERVE = """\
import mlprov
model = mlprov.load("models:/credit-risk@production")   # $MLPROV_REGISTRY, $MLPROV_TOKEN
print(f"serving models:/credit-risk@production -> v{model.version} ({model.digest[:19]}...)")
"""


class Team:
    """Runs commands as a principal (its token), echoing each and checking its exit code."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.tokens: dict[str, str] = {}
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MLPROV_REGISTRY", "MLPROV_TOKEN", "MLPROV_ACTOR",
                                 "MLPROV_KEY_PASSPHRASE", "MLPROV_HOME")}
        self.env["MLPROV_CACHE_HOME"] = str(work / "cache")
        self.env["MLPROV_REGISTRY_FSYNC"] = os.environ.get("MLPROV_REGISTRY_FSYNC", "on")

    def run(self, *args: str | Path, expect: int = 0, who: str | None = None,
            url: str | None = None, quiet: bool = False) -> str:
        argv = [str(a) for a in args]
        shown = " ".join(shlex.quote(a) for a in argv).replace(str(self.work) + "/", "")
        shown = shown.replace(f"{sys.executable} -c 'from mlprov._cli.main import main; main()'",
                              "mlprov").replace(sys.executable, "python")
        print(f"\n[{who or 'registry host'}]$ {shown}", flush=True)
        env = dict(self.env)
        if who is not None:
            env.update(MLPROV_TOKEN=self.tokens[who], MLPROV_REGISTRY=url or "",
                       MLPROV_CACHE_HOME=str(self.work / "cache" / who))
        done = subprocess.run(argv, cwd=self.work, capture_output=True, text=True, env=env,
                              check=False)
        if not quiet:
            sys.stdout.write(done.stdout.replace(str(self.work) + "/", ""))
        sys.stdout.write(done.stderr.replace(str(self.work) + "/", ""))
        if done.returncode != expect:
            sys.exit(f"demo: expected exit {expect}, got {done.returncode}: {shown}")
        return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/ready", timeout=2) as response:
                if json.loads(response.read()).get("status") == "ready":
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            sys.exit("demo: the server did not start")
        time.sleep(0.1)


def main() -> None:
    """Run the story."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the outputs here (default: temp)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-team-demo-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    mlprov = [sys.executable, "-c", "from mlprov._cli.main import main; main()"]
    team = Team(work)
    run = team.run

    print("== 1. The registry's host: the registry, server.toml, a token per principal")
    (work / "keys").mkdir()
    for key, kind in (("ci", "ecdsa-p256"), ("qa", "ed25519"), ("alice", "ed25519")):
        run(*mlprov, "keygen", "--out", work / "keys" / f"{key}.key", "--type", kind)
    (work / "trust.yaml").write_text(
        "version: 1\nkeys:\n"
        "  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}\n"
        "  - {name: qa, public_key: keys/qa.key.pub, roles: [evaluator]}\n"
        "  - {name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}\n")
    registry = work / "srv" / "registry"
    run(*mlprov, "registry", "init", "--registry", registry, "--trust", work / "trust.yaml")
    (work / "server.toml").write_text(SERVER_TOML)
    for principal, role in (("ci", "registrar"), ("release-manager", "promoter"),
                            ("alice", "reviewer"), ("serving", "reader")):
        team.tokens[principal] = run(*mlprov, "server", "token", "create", "--registry",
                                     registry, "--principal", principal, "--role", role,
                                     "--expires", "1d").strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"\n[registry host]$ mlprov server --registry srv/registry --config server.toml "
          f"--port {port} &", flush=True)
    log = open(work / "server.log", "w")  # noqa: SIM115 - closed at the end
    server = subprocess.Popen([*mlprov, "server", "--registry", str(registry), "--config",
                               str(work / "server.toml"), "--port", str(port)],
                              env=team.env, stderr=log, stdout=log, text=True)
    try:
        wait_ready(url, server)
        story(team, work, url, mlprov, registry)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            code = server.wait(60)
            log.close()
            print(f"\n[registry host] SIGTERM: the server stopped, exit {code}")
            print("".join(f"   | {line}" for line in (work / "server.log").open()
                          if "refused" in line or "stopped" in line))
            if code != 0:
                sys.exit(f"demo: the server exited {code}")
    print("\ndemo: all steps behaved as expected")


def story(team: Team, work: Path, url: str, mlprov: list[str], registry: Path) -> None:
    """Steps 2 to 6 (the server is running)."""
    run = team.run
    python = sys.executable

    print("\n== 2. CI trains, attests and registers through the server")
    run(python, HERE / "train_logreg_stdlib.py", "--make-data", work / "loans.csv",
        "--seed", "7", who="ci", url=url)
    run(python, HERE / "train_logreg_stdlib.py", "--data", work / "loans.csv", "--out",
        work / "model", "--metrics", work / "metrics.json", "--epochs", "60", who="ci", url=url)
    run(*mlprov, "attest", work / "model", "--name", NAME, "--out", work / "evidence",
        "--key", work / "keys" / "ci.key", "--eval-key", work / "keys" / "qa.key",
        "--metrics", work / "metrics.json", "--commit", "0123456789abcdef" * 2 + "01234567",
        "--seed", "data=7", who="ci", url=url)
    run(*mlprov, "register", work / "model", "--evidence", work / "evidence", "--reason",
        "nightly training", who="ci", url=url)
    print("\n   ...CI may register, not promote:")
    run(*mlprov, "promote", NAME, "1", "--to", "Staging", "--reason", "ship it", who="ci",
        url=url, expect=1)

    print("\n== 3. Release manager and reviewer: gated, signed, audited changes")
    run(*mlprov, "promote", NAME, "1", "--to", "Staging", "--reason", "eval passed",
        "--actor", "somebody-else", who="release-manager", url=url)
    run(*mlprov, "promote", NAME, "1", "--to", "Production", "--reason", "ship it",
        who="release-manager", url=url, expect=1)
    run(*mlprov, "review", "approve", work / "evidence", "--key", work / "keys" / "alice.key",
        "--trust", work / "trust.yaml", "--comment", "read the card and the eval", "--out",
        work / "alice.review.json", who="alice", url=url)
    run(*mlprov, "review", "add", NAME, "1", work / "alice.review.json", who="alice", url=url)
    run(*mlprov, "promote", NAME, "1", "--to", "Production", "--reason", "approved",
        who="release-manager", url=url)
    run(*mlprov, "alias", "set", NAME, "production", "1", "--reason", "serve v1",
        who="release-manager", url=url)
    print("\n   ...a reader may not move @production:")
    run(*mlprov, "alias", "set", NAME, "production", "1", "--reason", "x", who="serving",
        url=url, expect=1)

    print("\n== 4. A serving host: pull and load, verified on the client")
    run(*mlprov, "pull", f"models:/{NAME}@production", "--out", work / "serving",
        "--head-file", work / "head.json", who="serving", url=url)
    (work / "serve.py").write_text(SERVE)
    run(python, work / "serve.py", who="serving", url=url)

    print("\n== 5. The audit log names who did what, authenticated")
    out = run(*mlprov, "audit", "log", "--json", who="serving", url=url, quiet=True)
    entries = json.loads(out)["entries"]
    actors = [(e["kind"], e["actor"]) for e in entries if e["accepted"]]
    print("   " + ", ".join(f"{kind} by {actor}" for kind, actor in actors[1:]))
    refused = [e for e in entries if e["kind"] == "access.refused"]
    print("   refused, in the signed trail too: " + ", ".join(
        f"{e['actor']} ({e['details']['action']} {e['name']} {e['target']})" for e in refused))
    if [e["actor"] for e in refused] != ["ci", "serving"]:
        sys.exit("demo: the refusals are not in the audit log")
    if ("stage.transition", "somebody-else") in actors:
        sys.exit("demo: a claimed --actor was recorded")
    run(*mlprov, "audit", "verify", who="serving", url=url)

    print("\n== 6. Someone edits the server's database: the serving host refuses")
    with sqlite3.connect(registry / "registry.db") as conn:
        conn.execute("UPDATE aliases SET updated_at = '2000-01-01', "
                     "decision = (SELECT registration FROM versions LIMIT 1) "
                     "WHERE alias = 'production'")
    run(*mlprov, "pull", f"models:/{NAME}@production", "--out", work / "serving2",
        who="serving", url=url, expect=1)


if __name__ == "__main__":
    main()
