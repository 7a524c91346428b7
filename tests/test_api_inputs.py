"""The Python API as a training script writes it (issue 11 item 8): plain values in,
an MlprovError with a hint out, never a TypeError or a pydantic dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlprov
from mlprov.errors import InputError, MlprovError
from mlprov.evaluation import read_eval
from mlprov.evidence import EVAL_FILE, PROVENANCE_FILE
from mlprov.identity import DataRef, IdentityInputs, code_from_commit, compute_identity
from mlprov.provenance import read_provenance
from mlprov.statements import Statement
from tests.conftest import COMMIT
from tests.evidence_kit import payload


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "train.csv"
    path.parent.mkdir()
    path.write_text("x,y\n1,0\n2,1\n")
    return path


def _identity(data: list[DataRef], config: dict[str, object]) -> str:
    return compute_identity(IdentityInputs(code=code_from_commit(COMMIT), data=data,
                                           config=config))


@pytest.mark.parametrize("form", ["list", "mapping", "pathlike"])
def test_data_as_strings_mappings_or_paths(form, make_key, model_dir, tmp_path, train_csv):
    key = make_key()
    data = {"list": [f"train={train_csv}"], "mapping": {"train": str(train_csv)},
            "pathlike": {"train": train_csv}}[form]
    result = mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / form,
                           commit=COMMIT, data=data)
    expected = mlprov.hash_path(train_csv).root
    assert result.identity == _identity(
        [DataRef(name="train", digest=f"sha256:{expected}")], {})


def test_metrics_as_a_mapping_are_signed_like_a_file(make_key, model_dir, tmp_path):
    key = make_key()
    result = mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev",
                           commit=COMMIT, metrics={"val/auc": 0.91, "test/auc": 0.9},
                           eval_key=key.private)
    statement = Statement.model_validate(payload(result.evidence_dir / EVAL_FILE))
    assert read_eval(statement, what="eval").metrics == {"val/auc": 0.91, "test/auc": 0.9}
    prov = Statement.model_validate(payload(result.evidence_dir / PROVENANCE_FILE))
    assert read_provenance(prov, what="provenance").identity == result.identity
    assert mlprov.verify(model_dir, evidence=result.evidence_dir, key=key.public).verified


def test_params_are_part_of_the_config_and_the_identity(make_key, model_dir, tmp_path):
    key = make_key()
    result = mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev",
                           commit=COMMIT, config={"epochs": 3}, params={"lr": 0.01})
    assert result.identity == _identity([], {"epochs": 3, "lr": 0.01})
    with pytest.raises(InputError, match=r"params\.epochs differs"):
        mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev2",
                      commit=COMMIT, config={"epochs": 3}, params={"epochs": 4})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"data": "train.csv"}, "not one string"),
    ({"data": [3]}, "must be a DataRef"),
    ({"data": {"train": 3}}, "map dataset names to paths"),
    ({"data": 7}, "must be a list or a mapping"),
    ({"metrics": 0.91}, "must be a path or a mapping"),
    ({"metrics": {"auc": "high"}}, "is not a number"),
    ({"metrics": {}}, "holds no metrics"),
    ({"params": ["lr"]}, "params must be a mapping"),
])
def test_bad_python_arguments_are_mlprov_errors_with_hints(kwargs, message, make_key,
                                                           model_dir, tmp_path):
    key = make_key()
    with pytest.raises(MlprovError, match=message) as caught:
        mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev",
                      commit=COMMIT, **kwargs)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "ev").exists()


def test_dir_lists_the_public_api():
    listed = dir(mlprov)
    for name in ("attest", "verify", "load", "hash_path", "verify_lineage", "Verdict"):
        assert name in listed
    assert json.dumps(sorted(mlprov.__all__))  # every name is a string
