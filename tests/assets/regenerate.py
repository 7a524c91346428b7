"""Make a committed evidence directory for the current mlprov version (see README.md here).

    .venv/bin/python tests/assets/regenerate.py            # writes tests/assets/mlprov-<version>/

It builds a tiny deterministic model, signs its evidence with throwaway keys
made in a temporary directory (only the public keys are kept), and writes a
trust file. An existing directory is never replaced: old evidence must keep
verifying, so a new format gets a new directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import mlprov
from mlprov.identity import DataRef
from mlprov.signing import KeyType, generate_key, write_key_pair

HERE = Path(__file__).resolve().parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"
METRICS = {"metrics": {"accuracy": 0.875, "auc": 0.9125},
           "slices": {"age<30": {"auc": 0.8875}, "age>=30": {"auc": 0.925}},
           "datasets": [{"name": "holdout", "digest": "sha256:" + "1" * 64,
                         "uri": "hf://datasets/mlprov/fixture-holdout@v1"}]}
CARD = """\
description: A tiny fixture model whose evidence must keep verifying in later versions.
developers: [mlprov maintainers]
license: apache-2.0
task: tabular-classification
approach: supervised
architecture_family: logistic-regression
inputs: [tabular]
outputs: [probability]
intended_use: [testing mlprov]
intended_users: [mlprov developers]
out_of_scope_uses: [anything else]
factors: [applicant age group]
ethical_considerations:
  - name: none; synthetic weights
caveats_and_recommendations: [the weights are random bytes]
"""
REQUIREMENTS = "numpy==1.26.4\nsafetensors==0.4.3\n"


def write_model(root: Path) -> None:
    """A small model tree with fixed bytes."""
    rng = random.Random(20261126)  # fixture bytes, not secrets
    (root / "tokenizer").mkdir(parents=True)
    (root / "weights.bin").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    (root / "config.json").write_text('{"architecture": "logistic-regression", "features": 4}\n')
    (root / "tokenizer" / "vocab.txt").write_text("low\nmedium\nhigh\n")


def main() -> None:
    """Write tests/assets/mlprov-<version>/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / f"mlprov-{mlprov.__version__}")
    args = parser.parse_args()
    out: Path = args.out
    if out.exists():
        sys.exit(f"{out} exists: committed evidence is never regenerated; bump the version "
                 "or choose another --out")
    staging = Path(tempfile.mkdtemp(prefix="mlprov-asset-"))
    try:
        target = staging / out.name
        (target / "keys").mkdir(parents=True)
        (target / "inputs").mkdir()
        write_model(target / "model")
        secrets = staging / "secrets"  # private keys live only here, then are deleted
        secrets.mkdir()
        keys = {}
        for name, key_type in (("builder", KeyType.ECDSA_P256), ("evaluator", KeyType.ED25519)):
            private, public = write_key_pair(generate_key(key_type), secrets / f"{name}.key",
                                             None)
            shutil.copy(public, target / "keys" / f"{name}.pub")
            keys[name] = private
        inputs = target / "inputs"
        (inputs / "metrics.json").write_text(json.dumps(METRICS, indent=2) + "\n")
        (inputs / "card.yaml").write_text(CARD)
        (inputs / "requirements.txt").write_text(REQUIREMENTS)
        mlprov.attest(
            target / "model", name="fixture-classifier", key=keys["builder"],
            out=target / "evidence", commit=COMMIT,
            data=[DataRef(name="train", digest="sha256:" + "2" * 64,
                          uri="hf://datasets/mlprov/fixture-train@v1")],
            config={"epochs": 3, "lr": 0.5}, seeds={"torch": 7},
            metrics=inputs / "metrics.json", eval_key=keys["evaluator"],
            card=inputs / "card.yaml", environment=inputs / "requirements.txt",
            builder_id="https://mlprov.dev/builders/fixture/v1", invocation_id="fixture-1",
            started_on=dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC))
        (target / "trust.yaml").write_text(
            "version: 1\nkeys:\n"
            "  - {name: builder, public_key: keys/builder.pub, roles: [builder]}\n"
            "  - {name: evaluator, public_key: keys/evaluator.pub, roles: [evaluator]}\n")
        verdict = mlprov.verify(target / "model", evidence=target / "evidence",
                                trust=target / "trust.yaml")
        if not verdict.verified:
            sys.exit(f"the new evidence does not verify: {verdict.failures()}")
        shutil.copytree(target, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(out)


if __name__ == "__main__":
    main()
