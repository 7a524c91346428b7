"""mlprov end to end, offline: train, attest, verify, then catch a tampered file.

Run from the repository root (the README's first command does):

    python examples/demo.py [--workdir DIR]

Each step runs the real `mlprov` command line, as a training job and a deploy
pipeline would, and prints it. Exits non-zero if any step does not behave.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def run(*args: str | Path, cwd: Path, expect: int = 0, env: dict[str, str] | None = None) -> str:
    """Run a command, echo it, and check its exit code."""
    argv = [str(a) for a in args]
    shown = " ".join(shlex.quote(Path(a).name if a == argv[0] else a) for a in argv)
    print(f"\n$ {shown}", flush=True)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    sys.stdout.write(done.stdout)
    sys.stdout.write(done.stderr)
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
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlprov-demo-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    mlprov, python = BIN / "mlprov", sys.executable

    print("== 1. The training code lives in git; its commit becomes part of the identity")
    repo = work / "training-repo"
    repo.mkdir()
    shutil.copy(HERE / "train_credit_risk.py", repo / "train.py")
    (repo / "train.yaml").write_text("model: logistic-regression\nepochs: 60\nlr: 0.5\n")
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "credit-risk training code", cwd=repo)

    print("\n== 2. Train a small real model (logistic regression, safetensors weights)")
    run(python, "train.py", "--make-data", work / "loans.csv", "--seed", "7", cwd=repo)
    run(python, "train.py", "--data", work / "loans.csv", "--out", work / "model",
        "--metrics", work / "metrics.json", "--epochs", "60", cwd=repo)

    print("\n== 3. Keys for the CI builder and the evaluator, and a trust file naming roles")
    (work / "keys").mkdir()
    run(mlprov, "keygen", "--out", work / "keys" / "ci.key", "--type", "ecdsa-p256", cwd=work)
    run(mlprov, "keygen", "--out", work / "keys" / "qa.key", "--type", "ed25519", cwd=work)
    (work / "trust.yaml").write_text(
        "version: 1\nkeys:\n  - name: ci\n    public_key: keys/ci.key.pub\n"
        "    roles: [builder]\n  - name: qa\n    public_key: keys/qa.key.pub\n"
        "    roles: [evaluator]\n")
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

    print("\n== 4. Attest: hash the model once, derive its identity, sign the evidence")
    print("   (provenance, SBOM and card by the builder; the metrics by the evaluator)")
    run(mlprov, "attest", work / "model", "--name", "credit-risk-classifier",
        "--key", work / "keys" / "ci.key", "--out", work / "evidence",
        "--repo", repo, "--data", f"train={work / 'loans.csv'}",
        "--config", repo / "train.yaml", "--seed", "data=7",
        "--metrics", work / "metrics.json", "--eval-key", work / "keys" / "qa.key",
        "--card", work / "card.yaml", cwd=work)

    print("\n== 5. Verify, as a deploy pipeline would (offline: files + evidence + trust)")
    run(mlprov, "verify", work / "model", "--evidence", work / "evidence",
        "--trust", work / "trust.yaml", cwd=work)

    print("\n== 5b. Inspect, as an auditor would: what went in, how good, who vouches")
    run(mlprov, "inspect", work / "evidence", "--trust", work / "trust.yaml",
        "--model", work / "model", cwd=work)

    print("\n== 6. Someone swaps the weights: verification names the file and fails")
    weights = work / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    run(mlprov, "verify", work / "model", "--evidence", work / "evidence",
        "--trust", work / "trust.yaml", cwd=work, expect=1)

    print(f"\ndemo: all steps behaved as expected; outputs in {work}")


if __name__ == "__main__":
    main()
