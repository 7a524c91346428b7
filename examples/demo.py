"""mlprov end to end, offline: train, attest, register, derive, gate, serve, roll back, audit.

Run from the repository root (the README's first command does):

    python examples/demo.py [--workdir DIR]

The story, every step through the real `mlprov` command line (as a training
job, a reviewer, a release manager and a deploy pipeline would run it):

1. train a tiny credit-risk classifier from git-tracked code, attest it
   (provenance, SBOM and card by the CI builder; metrics by the evaluator),
   verify it, and catch a tampered copy;
2. register it, then fine-tune it and distil a smaller student from the
   fine-tune, each attested with its parent named by registry URI
   (`--parent fine-tune-of=models:/credit-risk-classifier/1`), and verify the
   lineage;
3. promote to Staging (allowed), try Production without a review (denied, with
   the policy's reasons), approve, promote, and serve
   `models:/credit-risk-classifier@production` through `mlprov.load`;
4. ship the fine-tune, then roll back by re-pointing the alias (no redeploy);
5. show the audit log and verify it, then catch a row edited in the database.

Exits non-zero if any step does not behave. Needs only Python 3.11+ and git.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
NAME = "credit-risk-classifier"
SERVE = '''\
"""Serve the production model: ask the registry by name, get a verified local path."""
import json, math, struct, sys
import mlprov

uri = "models:/credit-risk-classifier@production"
path = mlprov.load(uri)              # decision, evidence and every byte verified first
version = path.version               # which version it resolved to (no second lookup)
data = (path / "model.safetensors").read_bytes()
(size,) = struct.unpack("<Q", data[:8])
header, body = json.loads(data[8:8 + size]), data[8 + size:]
t = {k: struct.unpack(f"<{(v['data_offsets'][1] - v['data_offsets'][0]) // 4}f",
                      body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
features = json.loads((path / "config.json").read_text())["features"]
applicant = {"income_k": 38.0, "debt_ratio": 0.62, "age": 27, "late_payments": 2}
z = sum(w * (applicant[f] - m) / s for w, f, m, s in zip(t["weight"], features, t["mean"],
                                                          t["std"])) + t["bias"][0]
print(f"serving {uri} -> v{version} from {path}")
print(f"  default risk for {applicant}: {1 / (1 + math.exp(-z)):.3f}")
'''


def load_module(name: str) -> ModuleType:
    """Import an example script from beside this file."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Story:
    """Runs commands in the work directory, echoing each and checking its exit code."""

    def __init__(self, work: Path, registry: str | None = None) -> None:
        self.work = work
        self.env = dict(os.environ, MLPROV_HOME=str(work / "registry"))
        self.env.pop("MLPROV_KEY_PASSPHRASE", None)
        self.env.pop("MLPROV_REGISTRY", None)
        if registry is not None:  # a team registry: every command and mlprov.load find it
            self.env.update(MLPROV_REGISTRY=registry, MLPROV_CACHE_HOME=str(work / "cache"),
                            MLPROV_REGISTRY_KEY=str(work / "keys" / "registry.key"))

    def run(self, *args: str | Path, expect: int = 0, actor: str = "ci") -> str:
        argv = [str(a) for a in args]
        shown = " ".join(shlex.quote(Path(a).name if a == argv[0] else a) for a in argv)
        shown = shown.replace(str(self.work) + "/", "")
        print(f"\n$ {shown}", flush=True)
        env = dict(self.env, MLPROV_ACTOR=actor)
        done = subprocess.run(argv, cwd=self.work, capture_output=True, text=True, env=env,
                              check=False)
        sys.stdout.write(done.stdout.replace(str(self.work) + "/", ""))
        sys.stdout.write(done.stderr.replace(str(self.work) + "/", ""))
        if done.returncode != expect:
            sys.exit(f"demo: expected exit {expect}, got {done.returncode}: {shown}")
        return done.stdout


def git(*args: str, cwd: Path) -> None:
    """Run git quietly with a fixed demo identity."""
    subprocess.run(["git", "-c", "user.name=mlprov demo", "-c", "user.email=demo@example.invalid",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True)


def main() -> None:
    """Run the story."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the outputs here (default: temp)")
    parser.add_argument("--registry", metavar="DATABASE_URL",
                        help="run on a team registry (an empty PostgreSQL database, "
                             "postgresql+psycopg://USER@HOST/DB) instead of the embedded one")
    parser.add_argument("--blobs", metavar="s3://BUCKET/PREFIX",
                        help="the team registry's blob store (with --registry; AWS_* variables "
                             "name the endpoint and credentials)")
    args = parser.parse_args()
    if (args.registry is None) != (args.blobs is None):
        parser.error("--registry and --blobs go together")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-demo-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    started = time.monotonic()
    mlprov, python = BIN / "mlprov", sys.executable
    story = Story(work, args.registry)
    run = story.run
    lineage = load_module("lineage_demo")

    print("== 1. The training code lives in git; its commit becomes part of each identity")
    repo = work / "training-repo"
    repo.mkdir()
    shutil.copy(HERE / "train_logreg_stdlib.py", repo / "train.py")
    shutil.copy(HERE / "lineage_demo.py", repo / "derive.py")
    (repo / "train.yaml").write_text("model: logistic-regression\nepochs: 60\nlr: 0.5\n")
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "credit-risk training code", cwd=repo)

    print("\n== 2. Train a small real model (logistic regression, safetensors weights)")
    run(python, repo / "train.py", "--make-data", work / "loans.csv", "--seed", "7")
    run(python, repo / "train.py", "--data", work / "loans.csv", "--out", work / "model",
        "--metrics", work / "metrics.json", "--epochs", "60")

    print("\n== 3. Keys for the CI builder, the evaluator and a reviewer; a trust file of roles")
    (work / "keys").mkdir()
    signers = [("ci", "ecdsa-p256"), ("qa", "ed25519"), ("alice", "ed25519")]
    if args.registry is not None:  # a team registry's key is kept outside its database
        signers.append(("registry", "ecdsa-p256"))
    for key, kind in signers:
        run(mlprov, "keygen", "--out", work / "keys" / f"{key}.key", "--type", kind)
    (work / "trust.yaml").write_text(
        "version: 1\nkeys:\n"
        "  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}\n"
        "  - {name: qa, public_key: keys/qa.key.pub, roles: [evaluator]}\n"
        "  - {name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}\n")
    (work / "card.yaml").write_text(
        "description: Scores consumer loan applications for default risk.\n"
        "license: apache-2.0\ntask: tabular-classification\napproach: supervised\n"
        "architecture_family: logistic-regression\n"
        "intended_use: [pre-screening of loan applications]\n"
        "out_of_scope_uses: [final credit decisions without human review]\n"
        "factors: [applicant age group]\n"
        "ethical_considerations:\n  - name: age is a protected attribute\n"
        "    mitigation: AUC reported for applicants under 30\n"
        "caveats_and_recommendations: [trained on synthetic data]\n")
    builder = ("--key", work / "keys" / "ci.key", "--eval-key", work / "keys" / "qa.key",
               "--card", work / "card.yaml", "--repo", repo)

    print("\n== 4. Attest: hash the model once, derive its identity, sign the evidence")
    run(mlprov, "attest", work / "model", "--name", NAME, "--out", work / "evidence",
        "--data", f"train={work / 'loans.csv'}", "--config", repo / "train.yaml",
        "--seed", "data=7", "--metrics", work / "metrics.json", *builder)
    trust = ("--trust", work / "trust.yaml")
    run(mlprov, "verify", work / "model", "--evidence", work / "evidence", *trust)
    tampered = work / "tampered"
    shutil.copytree(work / "model", tampered)
    weights = tampered / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    print("\n   ...a copy whose weights someone changed does not verify:")
    run(mlprov, "verify", tampered, "--evidence", work / "evidence", *trust, expect=1)

    if args.registry is None:
        print("\n== 5. A registry (here $MLPROV_HOME): it enforces this trust and the shipped "
              "policies")
        run(mlprov, "registry", "init", *trust)
    else:
        print("\n== 5. A team registry ($MLPROV_REGISTRY: PostgreSQL + S3): it enforces this "
              "trust and the shipped policies")
        run(mlprov, "registry", "init", "--db", args.registry, "--blobs", args.blobs, *trust,
            "--key", work / "keys" / "registry.key")
    run(mlprov, "register", work / "model", "--evidence", work / "evidence")

    print("\n== 6. Fine-tune v1 on a new loan book; distil a smaller student from the "
          "fine-tune. Each names its parent by registry URI (verified before it is recorded)")
    lineage.train_all(work)  # work/base (unused), work/ft, work/student: models + metrics
    run(mlprov, "attest", work / "ft" / "model", "--name", NAME, "--out", work / "ft-evidence",
        "--data", f"train={work / 'book_b.csv'}", "--seed", "data=8",
        "--metrics", work / "ft" / "metrics.json",
        "--parent", f"fine-tune-of=models:/{NAME}/1", "--parent-trust", work / "trust.yaml",
        *builder)
    run(mlprov, "register", work / "ft" / "model", "--evidence", work / "ft-evidence")
    run(mlprov, "attest", work / "student" / "model", "--name", f"{NAME}-small",
        "--out", work / "student-evidence", "--data", f"transfer={work / 'book_c.csv'}",
        "--seed", "data=9", "--metrics", work / "student" / "metrics.json",
        "--parent", f"teacher=models:/{NAME}/2", "--parent-trust", work / "trust.yaml",
        *builder)
    run(mlprov, "register", work / "student" / "model", "--evidence", work / "student-evidence")

    print("\n== 7. Verify the lineage: student -> fine-tune -> base, every link checked")
    run(mlprov, "lineage", "verify", work / "student-evidence", *trust, "--search", ".")
    run(mlprov, "lineage", "show", work / "student-evidence", *trust, "--search", ".")

    print("\n== 8. Gates: Staging is allowed; Production needs a reviewer's approval")
    run(mlprov, "promote", NAME, "1", "--to", "Staging", "--reason", "eval passed")
    run(mlprov, "promote", NAME, "1", "--to", "Production", "--reason", "ship it",
        actor="release-manager", expect=1)

    print("\n== 9. Alice reviews the verified evidence and approves; now it may ship")
    run(mlprov, "review", "approve", work / "evidence", "--key", work / "keys" / "alice.key",
        *trust, "--comment", "metrics, card and SBOM read; fine for pre-screening",
        "--out", work / "alice-v1.json", actor="alice")
    run(mlprov, "review", "add", NAME, "1", work / "alice-v1.json", actor="alice")
    run(mlprov, "promote", NAME, "1", "--to", "Production", "--reason", "approved by alice",
        actor="release-manager")
    run(mlprov, "alias", "set", NAME, "production", "1", "--reason", "first release",
        actor="release-manager")

    print("\n== 10. Serve by name, never by path: mlprov.load verifies, then hands out a path")
    (work / "serve.py").write_text(SERVE)
    run(python, work / "serve.py", actor="server")

    print("\n== 11. Ship the fine-tune (its lineage verified through the registry)")
    run(mlprov, "promote", NAME, "2", "--to", "Staging", "--reason", "eval passed")
    run(mlprov, "review", "approve", work / "ft-evidence", "--key",
        work / "keys" / "alice.key", *trust, "--comment", "fine-tune checked",
        "--out", work / "alice-v2.json", actor="alice")
    run(mlprov, "review", "add", NAME, "2", work / "alice-v2.json", actor="alice")
    # The production alias points only at a version in Production: a dry run says so
    # (and records nothing), then v2 is promoted and the alias moves.
    run(mlprov, "alias", "set", NAME, "production", "2", "--reason", "fine-tune release",
        "--dry-run", actor="release-manager", expect=1)
    run(mlprov, "promote", NAME, "2", "--to", "Production", "--reason", "approved by alice",
        actor="release-manager")
    run(mlprov, "alias", "set", NAME, "production", "2", "--reason", "fine-tune release",
        actor="release-manager")
    run(python, work / "serve.py", actor="server")

    print("\n== 12. v2 misbehaves in production: roll back by re-pointing the alias")
    run(mlprov, "rollback", NAME, "--alias", "production", "--reason",
        "v2 approval rate drifted", actor="release-manager")
    run(python, work / "serve.py", actor="server")
    run(mlprov, "alias", "history", NAME, "production")

    print("\n== 13. The audit log: every change and every denial, hash-chained and signed")
    run(mlprov, "audit", "log")
    run(mlprov, "audit", "verify")

    print("\n== 14. Someone edits the registry's database directly: it is caught")
    forge = "UPDATE aliases SET version = 2 WHERE alias = 'production'"
    if args.registry is None:
        db = sqlite3.connect(work / "registry" / "registry.db", isolation_level=None)
        db.execute(forge)
        db.close()
    else:
        from sqlalchemy import create_engine, text

        engine = create_engine(args.registry)
        with engine.begin() as conn:
            conn.execute(text(forge))
        engine.dispose()
    run(mlprov, "pull", f"models:/{NAME}@production", "--out", work / "pulled", expect=1)
    run(mlprov, "audit", "verify", expect=1)

    print(f"\ndemo: all steps behaved as expected in {time.monotonic() - started:.0f} s; "
          f"outputs in {work}")


if __name__ == "__main__":
    main()
