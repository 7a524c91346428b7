"""The run -> attest inputs mapping, as properties (no MLflow needed).

Params become the training config as the exact strings MLflow stored; metrics become
the eval document's metrics; the canonical form (RFC 8785) of both depends on the
values only, never on the order a tracking store lists them in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError
from mlprov.identity import compute_identity
from mlprov.mlflow import COMMIT_TAG, RunDataset, RunRecord, eval_document, run_inputs
from tests.conftest import COMMIT

#: Names as MLflow's client allows them (letters, digits, _ - . / : and spaces, any
#: script) plus other punctuation and symbols a store could hold.
NAMES = st.text(st.characters(categories=["L", "N", "P", "S"], include_characters=" "),
                min_size=1, max_size=30)
#: Values: any text but controls (tabs and line breaks allowed) and surrogates.
VALUES = st.text(st.characters(exclude_categories=["Cc", "Cs"], include_characters="\t\n\r"),
                 max_size=60)
PARAMS = st.dictionaries(NAMES, VALUES, max_size=12)
METRICS = st.dictionaries(NAMES, st.floats(allow_nan=False, allow_infinity=False) | st.integers(
    -(2**53) + 1, 2**53 - 1), min_size=1, max_size=12)


def _record(params=None, metrics=None) -> RunRecord:
    return RunRecord(run_id="0" * 32, params=params or {}, metrics=metrics or {},
                     tags={COMMIT_TAG: COMMIT})


@given(PARAMS)
def test_params_are_the_config_as_stored_in_any_order(params):
    inputs = run_inputs(_record(params))
    assert inputs.config == params
    assert all(type(v) is str for v in inputs.config.values())
    reordered = run_inputs(_record(dict(reversed(list(params.items())))))
    assert canonical_json(reordered.canonical_inputs()) == canonical_json(
        inputs.canonical_inputs())
    assert loads_strict(canonical_json(inputs.config), what="config") == params


@given(PARAMS.filter(bool), st.data())
def test_any_changed_param_value_changes_the_identity(params, data):
    name = data.draw(st.sampled_from(sorted(params)))
    changed = {**params, name: params[name] + "x"}
    assert compute_identity(run_inputs(_record(changed))) != compute_identity(
        run_inputs(_record(params)))


@given(METRICS)
def test_metrics_are_the_eval_metrics_in_any_order(metrics):
    document = eval_document(_record(metrics=metrics))
    assert document == {"metrics": metrics}
    reordered = eval_document(_record(metrics=dict(reversed(list(metrics.items())))))
    assert canonical_json(reordered) == canonical_json(document)
    assert loads_strict(canonical_json(document), what="eval") == document


@given(NAMES, st.sampled_from(["\x00", "\x1b", "\n", "\u202e", "\u200b", "\u00a0", "\ue000"]))
def test_a_name_with_an_invisible_character_is_refused(name, bad):
    hostile = name[:1] + bad + name[1:]
    with pytest.raises(InputError, match="holds the character"):
        run_inputs(_record(params={hostile: "1"}))
    with pytest.raises(InputError, match="holds the character"):
        eval_document(_record(metrics={hostile: 1.0}))


@pytest.mark.parametrize(("record", "needle"), [
    (dict(params={"C": "1" * 6001}), "longer than 6000"),
    (dict(params={"C": "1\x00"}), "control character U+0000"),
    (dict(params={"C\u202e": "1"}), "U+202E"),
    (dict(tags={COMMIT_TAG: "HEAD; rm -rf /\n"}), "is not a full git commit id"),
    (dict(tags={COMMIT_TAG: "f" * 10_000}), "longer than 8000"),
    (dict(tags={COMMIT_TAG: "f" * 100}), "f...'"),  # shown cut at 80 characters
    (dict(tags={}), "has no mlflow.source.git.commit tag"),
    (dict(datasets=(RunDataset("train", "local", '{"uri": "/etc/passwd"}'),)), "lies outside"),
    (dict(datasets=(RunDataset("train", "local", '{"uri": "../x"}'),)), "lies outside"),
    (dict(datasets=(RunDataset("train", "local", "not json"),)), "dataset 'train'"),
    (dict(datasets=(RunDataset("train", "local", '{"uri": 7}'),)), "names no path"),
    (dict(datasets=(RunDataset("train", "code", "{}"),)), "cannot hash"),
    (dict(datasets=(RunDataset("train", "s3", '{"uri": "s3://b/k"}'),)), "cannot hash"),
    (dict(datasets=(RunDataset("t", "local", '{"uri": "a"}'),
                    RunDataset("t", "local", '{"uri": "b"}'))), "two different dataset"),
    (dict(datasets=tuple(RunDataset(f"d{i}", "code", "{}") for i in range(101))),
     "more than 100"),
])
def test_hostile_run_values_are_refused_naming_them(record, needle, tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "x").write_text("outside the data root\n")
    fields = {"run_id": "0" * 32, "tags": {COMMIT_TAG: COMMIT}, **record}
    with pytest.raises(InputError) as caught:
        run_inputs(RunRecord(**fields), data_root=tmp_path / "root")
    message = str(caught.value)
    assert needle in message and "\n" not in message and len(message) < 400, message


def test_bounds():
    with pytest.raises(InputError, match="more than 1000"):
        run_inputs(_record(params={str(i): "1" for i in range(1001)}))
    with pytest.raises(InputError, match="longer than 250"):
        run_inputs(_record(params={"p" * 251: "1"}))
    with pytest.raises(InputError, match="not a finite number"):
        eval_document(_record(metrics={"loss": float("nan")}))


def test_a_metric_in_the_run_and_the_eval_has_one_value():
    record = _record(metrics={"auc": 0.9})
    assert eval_document(record, {"metrics": {"auc": 0.9, "f1": 0.5}}) == {
        "metrics": {"auc": 0.9, "f1": 0.5}}
    with pytest.raises(InputError, match=r"'auc' is 0\.9 in MLflow run"):
        eval_document(record, {"metrics": {"auc": 0.8}})


def test_importing_mlprov_does_not_import_mlflow():
    # Nor does the registry plugin's package or its URI parsing (MLflow loads the rest).
    code = ("import sys, mlprov, mlprov.mlflow, mlprov._cli.main, mlprov._mlflow.locations; "
            "assert 'mlflow' not in sys.modules, 'mlflow imported'")
    src = str(Path(__file__).resolve().parents[2] / "src")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": src},
                   timeout=60)
