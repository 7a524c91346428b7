"""Verified lineage, offline: base -> fine-tune -> distilled student, every link checked.

Run from the repository root:

    python examples/lineage_demo.py [--workdir DIR]

1. trains a small real credit-risk model (logistic regression, as in
   ``train_logreg_stdlib.py``) on one loan book;
2. fine-tunes it: continues training from the base's weights on more data;
3. distils a smaller student (three of the four features) from the fine-tuned
   teacher's soft labels alone;
4. attests each with ``mlprov attest --parent ROLE=EVIDENCE_DIR``;
5. verifies the chain (``mlprov lineage verify``), shows it, and verifies the
   student with ``mlprov verify --require-lineage``;
6. changes one byte of the base's weights and shows ``lineage verify --deep``
   fail, naming the link fine-tune -> base.

Every step runs the real ``mlprov`` command line. Exits non-zero if any step
does not behave.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
STUDENT_FEATURES = ["income_k", "debt_ratio", "late_payments"]


def load_trainer() -> ModuleType:
    """Import train_logreg_stdlib.py from beside this file."""
    spec = importlib.util.spec_from_file_location("train_logreg_stdlib",
                                                  HERE / "train_logreg_stdlib.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tcr = load_trainer()


def run(*args: str | Path, cwd: Path, expect: int = 0) -> str:
    """Run a command, echo it, and check its exit code."""
    argv = [str(a) for a in args]
    shown = " ".join(shlex.quote(Path(a).name if a == argv[0] else a) for a in argv)
    print(f"\n$ {shown}", flush=True)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stdout.write(done.stderr)
    if done.returncode != expect:
        sys.exit(f"lineage demo: expected exit {expect}, got {done.returncode}: {shown}")
    return done.stdout


def git(*args: str, cwd: Path) -> None:
    """Run git quietly with a fixed demo identity."""
    subprocess.run(["git", "-c", "user.name=mlprov demo", "-c", "user.email=demo@example.invalid",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True)


def read_safetensors(path: Path) -> dict[str, list[float]]:
    """Read the float32 vectors ``tcr.write_safetensors`` wrote."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    body = data[8 + size:]
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        out[name] = list(struct.unpack(f"<{(end - start) // 4}f", body[start:end]))
    return out


def columns(xs: list[list[float]], names: list[str]) -> list[list[float]]:
    """Keep the named feature columns."""
    index = [tcr.FEATURES.index(n) for n in names]
    return [[x[i] for i in index] for x in xs]


def scaled(xs: list[list[float]], means: list[float], stds: list[float]) -> list[list[float]]:
    return [[(v - m) / s for v, m, s in zip(x, means, stds, strict=True)] for x in xs]


def score(w: list[float], b: float, xs: list[list[float]]) -> list[float]:
    return [tcr.sigmoid(sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b) for x in xs]


def train_from(xs: list[list[float]], targets: list[float], w: list[float], b: float,
               epochs: int, lr: float) -> tuple[list[float], float]:
    """Batch gradient descent on the log loss from given weights (targets may be soft)."""
    n = len(xs)
    for _ in range(epochs):
        errs = [p - t for p, t in zip(score(w, b, xs), targets, strict=True)]
        w = [wi - lr * sum(e * x[i] for e, x in zip(errs, xs, strict=True)) / n
             for i, wi in enumerate(w)]
        b -= lr * sum(errs) / n
    return w, b


def evaluate(scores: list[float], ys: list[int]) -> dict[str, object]:
    accuracy = sum((s > 0.5) == bool(y) for s, y in zip(scores, ys, strict=True)) / len(ys)
    return {"metrics": {"accuracy": round(accuracy, 4), "auc": tcr.auc(scores, ys)}}


def save(out: Path, tensors: dict[str, list[float]], config: dict[str, object],
         metrics: dict[str, object]) -> None:
    out.mkdir(parents=True)
    tcr.write_safetensors(out / "model.safetensors", tensors)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out.parent / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"  {out.parent.name}: {metrics['metrics']}")


def train_all(work: Path) -> None:
    """Base on loan book A, fine-tune on book B, distil a student on unlabelled book C."""
    for name, seed in (("book_a", 7), ("book_b", 8), ("book_c", 9), ("test", 10)):
        tcr.make_data(work / f"{name}.csv", seed)
    test_x, test_y = tcr.load(work / "test.csv")

    xs, ys = tcr.load(work / "book_a.csv")
    means, stds = tcr.standardise(xs)
    w, b = tcr.train(scaled(xs, means, stds), ys, 60, 0.5)
    save(work / "base" / "model", {"weight": w, "bias": [b], "mean": means, "std": stds},
         {"architecture": "logistic-regression", "features": tcr.FEATURES, "epochs": 60},
         evaluate(score(w, b, scaled(test_x, means, stds)), test_y))

    base = read_safetensors(work / "base" / "model" / "model.safetensors")
    xs, ys = tcr.load(work / "book_b.csv")
    w, b = train_from(scaled(xs, base["mean"], base["std"]), [float(y) for y in ys],
                      base["weight"], base["bias"][0], epochs=30, lr=0.3)
    save(work / "ft" / "model", {"weight": w, "bias": [b], "mean": base["mean"],
                                 "std": base["std"]},
         {"architecture": "logistic-regression", "features": tcr.FEATURES,
          "fine_tuned_from": "credit-risk-base", "epochs": 30},
         evaluate(score(w, b, scaled(test_x, base["mean"], base["std"])), test_y))

    teacher = read_safetensors(work / "ft" / "model" / "model.safetensors")
    transfer, _labels_unused = tcr.load(work / "book_c.csv")
    soft = score(teacher["weight"], teacher["bias"][0],
                 scaled(transfer, teacher["mean"], teacher["std"]))
    keep = [tcr.FEATURES.index(n) for n in STUDENT_FEATURES]
    s_means, s_stds = [teacher["mean"][i] for i in keep], [teacher["std"][i] for i in keep]
    s_x = scaled(columns(transfer, STUDENT_FEATURES), s_means, s_stds)
    w, b = train_from(s_x, soft, [0.0] * len(keep), 0.0, epochs=80, lr=0.5)
    save(work / "student" / "model", {"weight": w, "bias": [b], "mean": s_means, "std": s_stds},
         {"architecture": "logistic-regression", "features": STUDENT_FEATURES,
          "distilled_from": "credit-risk-ft", "epochs": 80},
         evaluate(score(w, b, scaled(columns(test_x, STUDENT_FEATURES), s_means, s_stds)),
                  test_y))


def main() -> None:
    """Run the story."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the outputs here (default: temp)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-lineage-demo-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    mlprov = BIN / "mlprov"

    print("== 1. Training code in git (its commit is part of each identity); a CI key")
    repo = work / "training-repo"
    repo.mkdir()
    shutil.copy(HERE / "train_logreg_stdlib.py", repo / "train_logreg_stdlib.py")
    shutil.copy(Path(__file__), repo / "lineage_demo.py")
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "credit-risk training, fine-tuning and distillation", cwd=repo)
    (work / "keys").mkdir()
    run(mlprov, "keygen", "--out", work / "keys" / "ci.key", cwd=work)
    # One CI key builds and evaluates here (examples/demo.py splits the two roles).
    (work / "trust.yaml").write_text(
        "version: 1\nkeys:\n  - name: ci\n    public_key: keys/ci.key.pub\n"
        "    roles: [builder, evaluator]\n")

    print("\n== 2. Train the base, fine-tune it, distil a student from the fine-tune")
    train_all(work)

    print("\n== 3. Attest each model, naming its parent (verified before it is recorded)")
    common = ("--key", work / "keys" / "ci.key", "--repo", repo)
    run(mlprov, "attest", work / "base" / "model", "--name", "credit-risk-base",
        "--out", work / "base" / "evidence", "--data", f"train={work / 'book_a.csv'}",
        "--seed", "data=7", "--metrics", work / "base" / "metrics.json", *common, cwd=work)
    run(mlprov, "attest", work / "ft" / "model", "--name", "credit-risk-ft",
        "--out", work / "ft" / "evidence", "--data", f"train={work / 'book_b.csv'}",
        "--seed", "data=8", "--metrics", work / "ft" / "metrics.json",
        "--parent", f"fine-tune-of={work / 'base' / 'evidence'}", *common, cwd=work)
    run(mlprov, "attest", work / "student" / "model", "--name", "credit-risk-student",
        "--out", work / "student" / "evidence", "--data", f"transfer={work / 'book_c.csv'}",
        "--seed", "data=9", "--metrics", work / "student" / "metrics.json",
        "--parent", f"teacher={work / 'ft' / 'evidence'}", *common, cwd=work)

    print("\n== 4. Verify the chain to its root, as a deploy pipeline would (offline)")
    trust = ("--trust", work / "trust.yaml")
    run(mlprov, "lineage", "verify", work / "student" / "evidence", *trust,
        "--search", work, "--deep", cwd=work)
    run(mlprov, "lineage", "show", work / "student" / "evidence", *trust, "--search", work,
        cwd=work)
    run(mlprov, "lineage", "show", work / "student" / "evidence", *trust, "--search", work,
        "--format", "mermaid", cwd=work)
    run(mlprov, "verify", work / "student" / "model", "--evidence",
        work / "student" / "evidence", *trust, "--search", work, "--require-lineage", cwd=work)

    print("\n== 5. Someone changes the base's weights: the broken link is named")
    weights = work / "base" / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    run(mlprov, "lineage", "verify", work / "student" / "evidence", *trust,
        "--search", work, "--deep", cwd=work, expect=1)

    print(f"\nlineage demo: all steps behaved as expected; outputs in {work}")


if __name__ == "__main__":
    main()
