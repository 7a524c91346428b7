"""The eval predicate (https://mlprov.dev/predicates/eval/v1), its input and its JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import BundleError, InputError
from mlprov.evaluation import (
    EVAL_PREDICATE_TYPE,
    MetricsFile,
    build_eval_statement,
    eval_schema,
    load_metrics,
    parse_metrics,
    read_eval,
)
from mlprov.identity import DataRef
from mlprov.statements import MLPROV_PREDICATE_PREFIX, parse_statement
from tests.evidence_kit import METRICS, payload

ROOT = "a" * 64
VALIDATOR = jsonschema.Draft202012Validator(eval_schema())


def _predicate(metrics: MetricsFile, **kw: Any) -> dict[str, Any]:
    statement = build_eval_statement(name="m", root=ROOT, metrics=metrics,
                                     evaluator_id="https://ci.example/eval", **kw)
    return statement.predicate


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(eval_schema())
    assert EVAL_PREDICATE_TYPE == MLPROV_PREDICATE_PREFIX + "eval/v1"


def test_the_predicate_written_by_attest_validates(make_key, model_dir, tmp_path):
    from tests.evidence_kit import attest_full

    ev = attest_full(tmp_path, model_dir, make_key("ci"), make_key("qa"))
    statement = payload(ev.file("eval.sigstore.json"))
    assert statement["predicateType"] == EVAL_PREDICATE_TYPE
    VALIDATOR.validate(statement["predicate"])
    assert statement["predicate"] == {
        "evaluator": {"id": "https://ci.example/train", "version": {"mlprov": "0.1.0"}},
        "metrics": METRICS["metrics"], "slices": METRICS["slices"],
        "datasets": [{"name": "holdout", "uri": "hf://datasets/acme/holdout@r1",
                      "digest": {"sha256": "1" * 64}}]}


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                 max_size=12).filter(lambda s: s.strip())
_numbers = st.one_of(st.integers(-(2**53) + 1, 2**53 - 1),
                     st.floats(allow_nan=False, allow_infinity=False))
_metric_maps = st.dictionaries(_names, _numbers, max_size=5)


@settings(max_examples=60, deadline=None)
@given(metrics=_metric_maps, slices=st.dictionaries(_names, _metric_maps.filter(bool),
                                                    max_size=3))
def test_every_predicate_built_validates_against_the_schema(metrics, slices):
    if not metrics and not slices:
        with pytest.raises(InputError, match="holds no metrics"):
            parse_metrics({"metrics": metrics, "slices": slices}, what="m")
        return
    parsed = parse_metrics({"metrics": metrics, "slices": slices}, what="m")
    predicate = _predicate(parsed)
    VALIDATOR.validate(predicate)
    # and it survives the signed round trip (canonical JSON, strict parse) unchanged
    statement = build_eval_statement(name="m", root=ROOT, metrics=parsed, evaluator_id="x:y")
    again = read_eval(parse_statement(statement.canonical_bytes(), what="s"), what="s")
    assert again.metrics == metrics and again.slices == slices


@pytest.mark.parametrize("edit", [
    lambda p: p["metrics"].update(auc="0.9"),
    lambda p: p["metrics"].update(auc=True),
    lambda p: p.pop("evaluator"),
    lambda p: p["evaluator"].pop("id"),
    lambda p: p["slices"].update(empty={}),
    lambda p: p["datasets"].append({"name": "x", "digest": {"sha256": "12"}}),
    lambda p: p["datasets"].append({"name": "x"}),
    lambda p: (p["metrics"].clear(), p["slices"].clear()),
])
def test_the_schema_refuses_malformed_predicates(edit):
    predicate = json.loads(json.dumps(_predicate(parse_metrics(METRICS, what="m"))))
    edit(predicate)
    assert list(VALIDATOR.iter_errors(predicate))


def test_flat_metrics_are_overall_metrics():
    parsed = parse_metrics({"accuracy": 0.91, "epochs": 3}, what="m")
    assert parsed.metrics == {"accuracy": 0.91, "epochs": 3} and parsed.slices == {}


@pytest.mark.parametrize(("document", "needle"), [
    ([], "not a JSON object"),
    ({}, "holds no metrics"),
    ({"metrics": {"a": 1}, "notes": "x"}, "unknown key 'notes'"),
    ({"a": "high"}, "'a' is not a number"),
    ({"metrics": {"a": None}}, "metrics.a is not a number"),
    ({"slices": {"s": {"a": False}}}, "slices.s.a is not a number"),
    ({"slices": {"s": {}}}, "slice 's' has no metrics"),
    ({"metrics": {" ": 1}}, "empty name"),
    ({"metrics": {"a": 1}, "datasets": [{"name": "d", "digest": "md5:00"}]}, "sha256"),
    ({"metrics": {"a": 1}, "datasets": [{"name": "d", "digest": "sha256:" + "1" * 64}] * 2},
     "share a name"),
])
def test_metrics_file_errors(document, needle):
    with pytest.raises(InputError, match=needle):
        parse_metrics(document, what="metrics file m.json")


def test_load_metrics_reads_strict_json(tmp_path: Path):
    path = tmp_path / "m.json"
    path.write_text('{"metrics": {"a": 1, "a": 2}}')
    with pytest.raises(InputError, match="duplicate key"):
        load_metrics(path)
    path.write_text('{"metrics": {"a": NaN}}')
    with pytest.raises(InputError):
        load_metrics(path)
    with pytest.raises(InputError, match="cannot read"):
        load_metrics(tmp_path / "missing.json")


def test_evaluator_and_datasets():
    parsed = parse_metrics({**METRICS, "evaluator": {"id": "https://harness.example/v2"}},
                           what="m")
    extra = DataRef(name="adversarial", digest="sha256:" + "4" * 64)
    predicate = _predicate(parsed, datasets=[extra])
    assert predicate["evaluator"] == {"id": "https://harness.example/v2"}
    assert [d["name"] for d in predicate["datasets"]] == ["adversarial", "holdout"]
    with pytest.raises(InputError, match="share a name"):
        _predicate(parsed, datasets=[DataRef(name="holdout", digest="sha256:" + "4" * 64)])


def test_read_eval_refuses_other_predicates():
    statement = build_eval_statement(name="m", root=ROOT, metrics=parse_metrics(METRICS, what="m"),
                                     evaluator_id="x:y")
    with pytest.raises(BundleError, match="predicate type"):
        read_eval(statement.model_copy(update={"predicate_type": "https://x/v1"}), what="e")
    broken = statement.model_copy(update={"predicate": {"metrics": {"a": 1}}})
    with pytest.raises(BundleError, match="malformed eval predicate: evaluator"):
        read_eval(broken, what="e")
    empty = statement.model_copy(update={"predicate": {"evaluator": {"id": "x"}}})
    with pytest.raises(BundleError, match="holds no metrics"):
        read_eval(empty, what="e")
    # a later minor version may add fields: readers ignore them
    newer = statement.model_copy(update={"predicate": {**statement.predicate, "thresholds": {}}})
    assert read_eval(newer, what="e").metrics == METRICS["metrics"]
