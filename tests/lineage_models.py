"""Tiny real models for lineage tests: a base, its fine-tune, a distilled student, merges.

Logistic regression trained by gradient descent on a seeded synthetic dataset,
with the standard library only. A fine-tune continues training from its base's
weights on new data; a student learns from its teacher's soft labels; a merge
averages its parents' weights. Weights are written as little-endian float32 in
``model.bin`` with the architecture in ``config.json``.
"""

from __future__ import annotations

import json
import math
import random
import struct
from dataclasses import dataclass
from pathlib import Path

FEATURES = 3


@dataclass(frozen=True)
class Weights:
    w: tuple[float, ...]
    b: float

    def predict(self, x: list[float]) -> float:
        z = sum(wi * xi for wi, xi in zip(self.w, x, strict=True)) + self.b
        return 1 / (1 + math.exp(-max(min(z, 30.0), -30.0)))


def make_data(seed: int, rows: int = 120) -> tuple[list[list[float]], list[int]]:
    """A seeded dataset whose label follows a known linear rule plus noise."""
    rng = random.Random(seed)
    xs, ys = [], []
    for _ in range(rows):
        x = [rng.gauss(0, 1) for _ in range(FEATURES)]
        z = 1.5 * x[0] - 2.0 * x[1] + 0.5 * x[2] + rng.gauss(0, 0.5)
        xs.append(x)
        ys.append(int(z > 0))
    return xs, ys


def train(xs: list[list[float]], targets: list[float], *, epochs: int = 25, lr: float = 0.5,
          start: Weights | None = None) -> Weights:
    """Batch gradient descent on the log loss (targets may be soft labels)."""
    w = list(start.w) if start else [0.0] * FEATURES
    b = start.b if start else 0.0
    for _ in range(epochs):
        model = Weights(tuple(w), b)
        errs = [model.predict(x) - t for x, t in zip(xs, targets, strict=True)]
        w = [wi - lr * sum(e * x[i] for e, x in zip(errs, xs, strict=True)) / len(xs)
             for i, wi in enumerate(w)]
        b -= lr * sum(errs) / len(xs)
    return Weights(tuple(w), b)


def save(weights: Weights, out: Path, **meta: object) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    values = [*weights.w, weights.b]
    (out / "model.bin").write_bytes(struct.pack(f"<{len(values)}f", *values))
    (out / "config.json").write_text(json.dumps(
        {"architecture": "logistic-regression", "features": FEATURES, **meta},
        sort_keys=True) + "\n")
    return out


def load(model: Path) -> Weights:
    data = (model / "model.bin").read_bytes()
    values = struct.unpack(f"<{len(data) // 4}f", data)
    return Weights(tuple(values[:-1]), values[-1])


def train_base(out: Path, seed: int = 1) -> Path:
    xs, ys = make_data(seed)
    return save(train(xs, [float(y) for y in ys]), out, stage="base", seed=seed)


def fine_tune(base: Path, out: Path, seed: int = 2) -> Path:
    xs, ys = make_data(seed)
    return save(train(xs, [float(y) for y in ys], epochs=10, start=load(base)), out,
                stage="fine-tune", seed=seed)


def distill(teacher: Path, out: Path, seed: int = 3) -> Path:
    xs, _ = make_data(seed)
    soft = [load(teacher).predict(x) for x in xs]
    return save(train(xs, soft), out, stage="student", seed=seed)


def merge(parents: list[Path], out: Path) -> Path:
    loaded = [load(p) for p in parents]
    w = tuple(sum(m.w[i] for m in loaded) / len(loaded) for i in range(FEATURES))
    return save(Weights(w, sum(m.b for m in loaded) / len(loaded)), out, stage="merge")
