"""What a plain ``mlprov attest`` loads (issue 16): no pydantic at all (the write path's
pydantic-free twins, held to the models by their own tests), no pydantic plugins, no
cyclic garbage collection. Checked in a fresh interpreter, without clocks."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlprov._internal import plugins
from tests.conftest import COMMIT

# Runs the console script's entry point, then reports (at exit, after attest) which
# mlprov pydantic models built their validators and what was imported.
_PROBE = """
import atexit, gc, json, os, sys

REPORT = sys.argv[1]

def report():
    pydantic = sorted(m for m in sys.modules if m == "pydantic" or m.startswith("pydantic."))
    from pydantic import BaseModel

    def walk(c):
        for s in c.__subclasses__():
            yield s
            yield from walk(s)

    import pydantic.plugin._loader as loader
    with open(REPORT, "w") as f:
        json.dump({"built": sorted(c.__name__ for c in set(walk(BaseModel))
                                   if c.__module__.startswith("mlprov")
                                   and c.__pydantic_complete__),
                   "modules": sorted(m for m in ("yaml", "mlprov._signing.schemas",
                                                 "mlprov.lineage", "jinja2", "subprocess",
                                                 "logging", "mlprov._signing.verify_keyless",
                                                 "pickle", "rfc8785")
                                     if m in sys.modules),
                   "plugins_scanned": loader._plugins is not None,
                   "pydantic": pydantic,
                   "gc": gc.isenabled(),
                   "env": os.environ.get("PYDANTIC_DISABLE_PLUGINS")}, f)

atexit.register(report)
sys.argv = ["mlprov", *sys.argv[2:]]
from mlprov._cli.main import console_main
console_main()
"""


def _probe(tmp_path: Path, *args: str) -> dict[str, object]:
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(report), *args],
                          capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(report.read_text())
    return result


def test_a_plain_attest_imports_no_pydantic(make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    seen = _probe(tmp_path, "attest", str(model_dir), "--name", "m", "--key", str(key.private),
                  "--out", str(tmp_path / "ev"), "--commit", COMMIT)
    # Statements, identity, provenance, BOM, card and index all go through the twins.
    assert seen["pydantic"] == []
    assert seen["built"] == []
    # PyYAML writes the card's header; no subprocess (--commit: no git), no lineage.
    # Nor the keyless verifier (and logging): key-signed evidence never needs it.
    assert seen["modules"] == ["yaml"]
    assert seen["plugins_scanned"] is False
    assert seen["env"] == "__all__"
    assert seen["gc"] is False  # a one-shot command: reference counting frees the rest


def test_identity_inputs_from_the_command_line_need_no_pydantic(make_key, model_dir: Path,
                                                                tmp_path: Path):
    key = make_key()
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    config = tmp_path / "config.json"
    config.write_text('{"lr": 0.01, "layers": [1, 2]}')
    seen = _probe(tmp_path, "attest", str(model_dir), "--name", "m", "--key", str(key.private),
                  "--out", str(tmp_path / "ev"), "--commit", COMMIT,
                  "--data", f"train={tmp_path / 'train.csv'}",
                  "--data", "hf://datasets/acme/x@sha256:" + "ab" * 32,
                  "--seed", "torch=7", "--config", str(config))
    assert seen["pydantic"] == []
    seen = _probe(tmp_path, "identity", "--commit", COMMIT, "--seed", "torch=7", "--json")
    assert seen["pydantic"] == []


def test_attest_in_process_keeps_the_garbage_collector(attested):
    """Only the mlprov process skips cyclic collection; a host running main() keeps it."""
    assert gc.isenabled()


def test_attest_with_a_card_still_validates_it(make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    card = tmp_path / "card.yaml"
    card.write_text("description: Scores loans.\nlicense: apache-2.0\n")
    seen = _probe(tmp_path, "attest", str(model_dir), "--name", "m", "--key", str(key.private),
                  "--out", str(tmp_path / "ev"), "--commit", COMMIT, "--card", str(card))
    assert "CardInput" in seen["built"]  # a card file is read through its model
    assert "yaml" in seen["modules"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("approach: guessing\n")
    done = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / "r2.json"), "attest",
                           str(model_dir), "--name", "m", "--key", str(key.private), "--out",
                           str(tmp_path / "ev2"), "--commit", COMMIT, "--card", str(bad)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert done.stderr.startswith(f"error: card file {bad}: approach: Input should be ")


def test_a_library_caller_keeps_its_pydantic_plugins(tmp_path: Path):
    """Only the ``mlprov`` process disables plugins; importing mlprov changes nothing."""
    code = ("import os, mlprov.attestation, mlprov._cli.main; "
            "print(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)
    assert done.stdout == "None\n"


@pytest.mark.parametrize("before", [None, "", "logfire"])
def test_child_commands_get_the_users_setting_back(monkeypatch, before: str | None):
    monkeypatch.setattr(plugins, "_saved", (False, None))
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "placeholder")  # restored at teardown
    if before is None:
        monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS")
    else:
        monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", before)
    plugins.disable_pydantic_plugins()
    plugins.disable_pydantic_plugins()  # twice: still the user's value is remembered
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    env = plugins.user_environ(MLPROV_EVENT_KIND="x")
    assert env.get("PYDANTIC_DISABLE_PLUGINS") == before
    assert env["MLPROV_EVENT_KIND"] == "x"


_THREADS = """
import sys, threading
from mlprov.evaluation import EvalPredicate
from mlprov.statements import Statement

statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "x",
             "subject": [{"name": "m", "digest": {"sha256": "ab" * 32}}], "predicate": {}}
evaluation = {"evaluator": {"id": "x:y"}, "metrics": {"auc": 0.9}}
start, failures, results = threading.Barrier(16), [], []

def first_use():
    start.wait()
    try:
        results.append((Statement.model_validate(statement).canonical_bytes(),
                        EvalPredicate.model_validate(evaluation).metrics))
    except Exception as exc:
        failures.append(repr(exc))

threads = [threading.Thread(target=first_use) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not failures, failures
assert len(results) == 16 and len(set(repr(r) for r in results)) == 1
"""


def test_threads_first_using_a_model_at_once_all_validate():
    """A deferred build is safe under threads (pydantic's lock): no parent validator used."""
    for _ in range(3):
        subprocess.run([sys.executable, "-c", _THREADS], check=True, timeout=60)


def test_a_plain_verify_imports_no_pydantic(attested, tmp_path: Path):
    """``mlprov verify`` checks on the verifier's fields; the models load only when asked."""
    args = ("verify", str(attested.model), "--evidence", str(attested.evidence),
            "--key", str(attested.key.public))
    seen = _probe(tmp_path, *args)
    assert seen["pydantic"] == [] and seen["built"] == []
    seen = _probe(tmp_path, *args, "--json")
    assert seen["pydantic"] == []
    trust = tmp_path / "trust.yaml"  # a trust file is read by its pydantic-free twin
    trust.write_text(f"keys: [{{name: ci, public_key: {attested.key.public}, "
                     "roles: [builder]}]\n")
    seen = _probe(tmp_path, "verify", str(attested.model), "--evidence", str(attested.evidence),
                  "--trust", str(trust))
    assert seen["pydantic"] == []


def test_verify_of_evidence_with_an_eval_statement_reads_it_through_its_model(
        make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"metrics": {"auc": 0.91}, "evaluator": {"id": "ci:eval"}}\n')
    evidence = tmp_path / "ev"
    _probe(tmp_path, "attest", str(model_dir), "--name", "m", "--key", str(key.private),
           "--out", str(evidence), "--commit", COMMIT, "--metrics", str(metrics))
    seen = _probe(tmp_path, "verify", str(model_dir), "--evidence", str(evidence),
                  "--key", str(key.public))
    assert "EvalPredicate" in seen["built"]
