"""The seed's workflow on mlprov: a scikit-learn credit-risk model, the shipped gates, CLI flags.

Run from the repository root (needs scikit-learn: ``pip install scikit-learn``):

    python examples/train_credit_risk.py [--workdir DIR]

What a team does on day one, with no policy file edited:

1. keys for the CI builder, the evaluator and a reviewer, and a trust file;
2. train a scikit-learn pipeline (StandardScaler + LogisticRegression) on a seeded
   loan book split into train/val/test, saved with ``joblib.dump``; metrics
   ``val/auc`` and ``test/auc``, and ``auc`` per age slice;
3. ``mlprov attest`` (data, config, seed, metrics signed by the evaluator);
4. ``mlprov registry init --threshold 'test/auc>=0.85' --threshold 'val/auc>=0.85'``:
   the shipped gates with the seed's own metric names;
5. register -> Staging -> (dry run: Production needs a review) -> review ->
   Production -> ``alias set production``; serve ``models:/credit-risk@production``
   with ``mlprov.load`` (every byte verified before ``joblib.load``);
6. ship v2 the same way, then ``mlprov rollback`` (a dry run first) re-points the alias.

The joblib pickle passes the production gate's pickle scan: scikit-learn's classes
and numpy's array rebuilders are on the shipped allow-list (policies/data.yaml).
Exits non-zero if any step does not behave.

The training step alone: ``python train_credit_risk.py train --seed 1 --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
NAME = "credit-risk"
FEATURES = ["income_k", "debt_ratio", "age", "late_payments"]
THRESHOLDS = ["--threshold", "test/auc>=0.85", "--threshold", "val/auc>=0.85",
              "--threshold", "slice:auc>=0.6"]
CONFIG = "model: logistic_regression\nC: 1.0\nmax_iter: 200\nsplit: {val: 0.2, test: 0.2}\n"
SERVE = '''\
"""Serve by name: mlprov verifies the decision, evidence and every byte, then joblib loads."""
import joblib
import mlprov

model = mlprov.load("models:/credit-risk@production")
pipeline = joblib.load(model / "model.joblib")
applicant = [[38.0, 0.62, 27, 2]]
print(f"serving {model.uri} -> v{model.version} ({model.digest[:19]})")
print(f"  default risk for {applicant[0]}: {pipeline.predict_proba(applicant)[0][1]:.3f}")
'''


# --- training (the job a CI runner runs) ------------------------------------------------

def make_data(directory: Path, seed: int, rows: int = 3000) -> None:
    """Write a seeded loan book, split into train/val/test CSV files."""
    import numpy as np

    rng = np.random.default_rng(seed)
    income = rng.normal(55, 18, rows)
    debt = np.clip(rng.normal(0.35, 0.15, rows), 0, 1)
    age = rng.integers(21, 76, rows)
    late = rng.choice([0, 0, 0, 1, 1, 2, 3], rows)
    logit = -1.0 - 0.06 * (income - 55) + 8.0 * (debt - 0.35) + 1.4 * late - 0.01 * (age - 45)
    default = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    table = np.column_stack([income.round(2), debt.round(3), age, late, default])
    directory.mkdir(parents=True, exist_ok=True)
    cut = [int(rows * 0.6), int(rows * 0.8)]
    for part, chunk in zip(("train", "val", "test"), np.split(table, cut), strict=True):
        header = ",".join([*FEATURES, "default"])
        np.savetxt(directory / f"{part}.csv", chunk, delimiter=",", header=header,
                   comments="", fmt=["%.2f", "%.3f", "%d", "%d", "%d"])


def train(data: Path, out: Path, seed: int, c: float) -> None:
    """Fit the pipeline on train.csv; write model/ (joblib) and metrics.json."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def load(part: str) -> tuple[np.ndarray, np.ndarray]:
        table = np.loadtxt(data / f"{part}.csv", delimiter=",", skiprows=1)
        return table[:, :-1], table[:, -1].astype(int)

    x_train, y_train = load("train")
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=c, max_iter=200, random_state=seed))])
    pipeline.fit(x_train, y_train)
    model = out / "model"
    model.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, model / "model.joblib")
    (model / "config.json").write_text(json.dumps({"features": FEATURES, "C": c}) + "\n")
    metrics: dict[str, float] = {}
    slices: dict[str, dict[str, float]] = {}
    for part in ("val", "test"):
        x, y = load(part)
        metrics[f"{part}/auc"] = round(float(roc_auc_score(y, pipeline.predict_proba(x)[:, 1])),
                                       4)
    x, y = load("test")
    for label, mask in (("age<40", x[:, 2] < 40), ("age>=40", x[:, 2] >= 40)):
        slices[label] = {"auc": round(float(roc_auc_score(
            y[mask], pipeline.predict_proba(x[mask])[:, 1])), 4)}
    (out / "metrics.json").write_text(json.dumps({"metrics": metrics, "slices": slices},
                                                 indent=2) + "\n")


# --- the story, through the mlprov command line -----------------------------------------

class Story:
    """Runs commands in the work directory, echoing each and checking its exit code."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = dict(os.environ, MLPROV_HOME=str(work / "registry"))
        self.env.pop("MLPROV_KEY_PASSPHRASE", None)

    def run(self, *args: str | Path, expect: int = 0, actor: str = "ci") -> str:
        argv = [str(a) for a in args]
        shown = " ".join(shlex.quote(Path(a).name if i == 0 else a)
                         for i, a in enumerate(argv)).replace(str(self.work) + "/", "")
        print(f"\n$ {shown}", flush=True)
        done = subprocess.run(argv, cwd=self.work, capture_output=True, text=True,
                              env=dict(self.env, MLPROV_ACTOR=actor), check=False)
        sys.stdout.write(done.stdout.replace(str(self.work) + "/", ""))
        sys.stdout.write(done.stderr.replace(str(self.work) + "/", ""))
        if done.returncode != expect:
            sys.exit(f"train_credit_risk: expected exit {expect}, got {done.returncode}: "
                     f"{shown}")
        return done.stdout


def git(*args: str, cwd: Path) -> None:
    """Run git quietly with a fixed identity."""
    subprocess.run(["git", "-c", "user.name=mlprov example", "-c",
                    "user.email=example@example.invalid", "-c", "init.defaultBranch=main",
                    *args], cwd=cwd, check=True, capture_output=True)


def ship(story: Story, version: int, seed: int, c: float) -> None:
    """Train, attest, register, gate and alias one version."""
    mlprov, python, work = BIN / "mlprov", sys.executable, story.work
    run = story.run
    out = work / f"v{version}"
    print(f"\n== Train and attest v{version} (seed {seed}, C={c})")
    run(python, "train_credit_risk.py", "train", "--data", "data", "--out", out,
        "--seed", str(seed), "--c", str(c))
    run(mlprov, "attest", out / "model", "--name", NAME, "--key", "keys/ci.key",
        "--out", out / "evidence", "--repo", ".", "--data", "train=data/train.csv",
        "--data", "val=data/val.csv", "--data", "test=data/test.csv", "--config",
        "train.yaml", "--seed", f"sklearn={seed}", "--metrics", out / "metrics.json",
        "--eval-key", "keys/eval.key")
    run(mlprov, "register", out / "model", "--evidence", out / "evidence")
    run(mlprov, "promote", NAME, str(version), "--to", "Staging", "--reason", "eval passed")
    print("\n   The production gate, asked first (a dry run records nothing):")
    run(mlprov, "promote", NAME, str(version), "--to", "Production", "--reason", "ship",
        "--dry-run", expect=1)
    run(mlprov, "review", "approve", out / "evidence", "--key", "keys/alice.key",
        "--trust", "trust.yaml", "--comment", "metrics and card read", "--out",
        out / "alice.json", actor="alice")
    run(mlprov, "review", "add", NAME, str(version), out / "alice.json", actor="alice")
    run(mlprov, "promote", NAME, str(version), "--to", "Production", "--reason",
        "approved by alice", actor="release-manager")
    run(mlprov, "alias", "set", NAME, "production", str(version), "--reason",
        f"release v{version}", actor="release-manager")
    run(python, "serve.py", actor="server")


def story(work: Path) -> None:
    """Run the whole workflow in ``work``."""
    mlprov = BIN / "mlprov"
    s = Story(work)
    run = s.run
    print("== Keys and trust: who may sign what")
    (work / "keys").mkdir()
    for who in ("ci", "eval", "alice"):
        run(mlprov, "keygen", "--out", f"keys/{who}.key", "--type", "ecdsa-p256")
    (work / "trust.yaml").write_text(
        "version: 1\nkeys:\n"
        "  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}\n"
        "  - {name: eval, public_key: keys/eval.key.pub, roles: [evaluator]}\n"
        "  - {name: alice, public_key: keys/alice.key.pub, roles: [reviewer]}\n")
    print("\n== The training code, config and data live in git")
    shutil.copy(Path(__file__), work / "train_credit_risk.py")
    (work / "train.yaml").write_text(CONFIG)
    (work / "serve.py").write_text(SERVE)
    make_data(work / "data", seed=7)
    (work / ".gitignore").write_text("keys/\nregistry/\nv*/\n")
    git("init", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-m", "credit-risk training", cwd=work)

    print("\n== A registry with the shipped gates, thresholds on the seed's metrics")
    run(mlprov, "registry", "init", "--trust", "trust.yaml", *THRESHOLDS)
    ship(s, 1, seed=1, c=1.0)
    ship(s, 2, seed=2, c=0.5)

    print("\n== v2 misbehaves: roll back by re-pointing the alias (dry run first)")
    run(mlprov, "rollback", NAME, "--alias", "production", "--dry-run")
    run(mlprov, "rollback", NAME, "--alias", "production", "--reason", "v2 drifted",
        actor="release-manager")
    run(sys.executable, "serve.py", actor="server")
    run(mlprov, "alias", "history", NAME, "production")
    run(mlprov, "audit", "verify")
    print("\nall steps behaved as expected")


def main() -> None:
    """``train`` (the training job) or, by default, the whole story."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train one model")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, help="keep the outputs here (default: temp)")
    args = parser.parse_args()
    if args.command == "train":
        train(args.data, args.out, args.seed, args.c)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-credit-risk-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    story(work)


if __name__ == "__main__":
    main()
