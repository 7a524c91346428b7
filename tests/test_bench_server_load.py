"""benchmarks/bench_server.py --load: a short run of the load scenario, and its report's shape.

A few clients for about two seconds against a real `mlprov server` (a subprocess) over a small
registry: every operation is counted, errors are counted (none expected), and the audit chain
verifies after the run with one entry per accepted change. Nothing is timed against a limit.
MLflow is not needed: without a full MLflow the comparison is skipped with one clear line.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

pytestmark = pytest.mark.multiprocess  # a server and its client processes at once

LOAD = Path(__file__).resolve().parents[1] / "benchmarks" / "_serverload.py"
SMALL = ["--versions", "40", "--one-name", "20", "--resolvers", "3", "--promoters", "2",
         "--client-procs", "1", "--slices", "1"]


@pytest.fixture(scope="module")
def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_serverload", LOAD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_serverload"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("load-cache")


def test_a_short_load_run_counts_every_operation_and_the_audit_chain_holds(
    load: ModuleType, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    assert load.main([*SMALL, "--duration", "1", "--phases", "mlprov-client,mlprov-http",
                      "--cache", str(cache), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [p["phase"] for p in report["phases"]] == ["mlprov-client", "mlprov-http"]
    for phase in report["phases"]:
        operations = phase["operations"]
        assert set(operations) == {"resolve", "alias move", "stage move"}
        for op in operations.values():
            assert op["count"] > 0 and op["errors"] == 0, op["errorMessages"]
            assert op["p50"] <= op["p99"] <= op["max"]
        assert phase["load"][0] <= phase["load"][1] and phase["serverCpu"] > 0
    assert report["errors"] == 0
    audit = report["audit"]
    assert audit["ok"] and audit["exitCode"] == 0 and audit["serverExit"] == 0
    assert audit["decisionsVerified"] == audit["entries"]  # --deep: every signature checked
    assert audit["entriesAdded"] == audit["changesMade"] > 0
    printed = capsys.readouterr().out
    assert "chain intact" in printed and "errors: 0 (target 0)" in printed


def test_without_a_full_mlflow_the_comparison_is_skipped_with_how_to_install_it(
    load: ModuleType, cache: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A Python without MLflow (the test extra brings the full one): this interpreter with
    # no site-packages.
    bare = tmp_path / "python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    bare.chmod(0o755)
    assert load.main([*SMALL, "--duration", "1", "--phases", "mlflow", "--cache", str(cache),
                      "--mlflow-python", str(bare)]) == 0
    printed = capsys.readouterr().out
    assert "MLflow not compared" in printed and "pip install mlflow" in printed
