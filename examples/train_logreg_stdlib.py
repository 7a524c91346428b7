"""Train a tiny, real credit-risk classifier with nothing but the standard library.

Logistic regression by batch gradient descent on a synthetic (seeded, so
reproducible) loan dataset. Writes:

- ``OUT/model.safetensors``: the weights in the safetensors format (an 8-byte
  little-endian header length, a JSON header, then raw little-endian float32);
- ``OUT/config.json``: the architecture;
- ``--metrics FILE``: accuracy and AUC on a held-out split, overall and per slice.

Usage: python train_logreg_stdlib.py --data loans.csv --out model/ --metrics metrics.json
       python train_logreg_stdlib.py --make-data loans.csv --seed 7
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import struct
from pathlib import Path

FEATURES = ["income_k", "debt_ratio", "age", "late_payments"]


def make_data(path: Path, seed: int, rows: int = 2000) -> None:
    """Write a synthetic loan dataset whose default risk follows a known rule."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*FEATURES, "default"])
        for _ in range(rows):
            income = rng.gauss(55, 18)
            debt = min(max(rng.gauss(0.35, 0.15), 0.0), 1.0)
            age = rng.randint(21, 75)
            late = rng.choice([0, 0, 0, 1, 1, 2, 3])
            logit = -1.2 - 0.03 * (income - 55) + 4.0 * (debt - 0.35) + 0.8 * late \
                - 0.01 * (age - 45)
            default = int(rng.random() < 1 / (1 + math.exp(-logit)))
            writer.writerow([f"{income:.2f}", f"{debt:.3f}", age, late, default])


def load(path: Path) -> tuple[list[list[float]], list[int]]:
    """Read features and labels."""
    xs, ys = [], []
    with path.open() as f:
        for row in csv.DictReader(f):
            xs.append([float(row[name]) for name in FEATURES])
            ys.append(int(row["default"]))
    return xs, ys


def standardise(xs: list[list[float]]) -> tuple[list[float], list[float]]:
    """Column means and standard deviations."""
    n = len(xs)
    means = [sum(col) / n for col in zip(*xs, strict=True)]
    stds = [math.sqrt(sum((v - m) ** 2 for v in col) / n) or 1.0
            for col, m in zip(zip(*xs, strict=True), means, strict=True)]
    return means, stds


def sigmoid(z: float) -> float:
    """The logistic function, overflow-safe."""
    return 1 / (1 + math.exp(-z)) if z > -30 else 0.0


def train(xs: list[list[float]], ys: list[int], epochs: int, lr: float
          ) -> tuple[list[float], float]:
    """Batch gradient descent on the log loss."""
    w, b = [0.0] * len(xs[0]), 0.0
    n = len(xs)
    for _ in range(epochs):
        gw, gb = [0.0] * len(w), 0.0
        for x, y in zip(xs, ys, strict=True):
            err = sigmoid(sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b) - y
            gw = [g + err * xi for g, xi in zip(gw, x, strict=True)]
            gb += err
        w = [wi - lr * g / n for wi, g in zip(w, gw, strict=True)]
        b -= lr * gb / n
    return w, b


def auc(scores: list[float], ys: list[int]) -> float | None:
    """Area under the ROC curve (rank statistic), rounded; None if one class is absent."""
    pos = [s for s, y in zip(scores, ys, strict=True) if y]
    neg = [s for s, y in zip(scores, ys, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return round(wins / (len(pos) * len(neg)), 4)


def write_safetensors(path: Path, tensors: dict[str, list[float]]) -> None:
    """Write float32 vectors in the safetensors layout."""
    header, blobs, offset = {}, [], 0
    for name, values in tensors.items():
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": [len(values)],
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def main() -> None:
    """Parse arguments and train, or make the dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-data", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--metrics", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args()
    if args.make_data:
        make_data(args.make_data, args.seed)
        return
    xs, ys = load(args.data)
    means, stds = standardise(xs)
    xs = [[(v - m) / s for v, m, s in zip(x, means, stds, strict=True)] for x in xs]
    split = int(len(xs) * 0.8)
    w, b = train(xs[:split], ys[:split], args.epochs, args.lr)
    scores = [sigmoid(sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b) for x in xs[split:]]
    held_y = ys[split:]
    accuracy = sum((s > 0.5) == bool(y) for s, y in zip(scores, held_y, strict=True)) / len(held_y)
    ages = [x[2] * stds[2] + means[2] for x in xs[split:]]
    young = [i for i, a in enumerate(ages) if a < 30]
    args.out.mkdir(parents=True, exist_ok=True)
    write_safetensors(args.out / "model.safetensors",
                      {"weight": w, "bias": [b], "mean": means, "std": stds})
    (args.out / "config.json").write_text(json.dumps(
        {"architecture": "logistic-regression", "features": FEATURES,
         "epochs": args.epochs, "lr": args.lr}, indent=2) + "\n")
    metrics = {"metrics": {"accuracy": round(accuracy, 4), "auc": auc(scores, held_y)},
               "slices": {"age<30": {"auc": auc([scores[i] for i in young],
                                                [held_y[i] for i in young])}}}
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"trained: accuracy {metrics['metrics']['accuracy']}, auc {metrics['metrics']['auc']}")


if __name__ == "__main__":
    main()
