"""The CycloneDX 1.6 ML-BOM: contents, strict schema validity, environment readers."""

from __future__ import annotations

import email.message
import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from mlprov.card import CardInput
from mlprov.errors import BundleError, InputError
from mlprov.evaluation import EvalPredicate, Evaluator
from mlprov.identity import IdentityInputs, code_from_commit
from mlprov.provenance import build_provenance, read_provenance
from mlprov.sbom import (
    CYCLONEDX_BOM_PREDICATE,
    Package,
    _metadata_licenses,
    _roots,
    bom_statement,
    build_bom,
    installed_packages,
    pin_evidence,
    read_bom,
    read_environment_file,
    validate_bom,
)
from mlprov.statements import ResourceDescriptor
from tests.conftest import COMMIT
from tests.evidence_kit import TRAIN, attest_full

ROOT = "a" * 64


def _strict(document: dict[str, Any]) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    assert error is None, error


@pytest.fixture
def written(make_key, model_dir: Path, tmp_path: Path) -> dict[str, Any]:
    ev = attest_full(tmp_path, model_dir, make_key("ci"), make_key("qa"))
    return dict(json.loads(ev.file("sbom.cdx.json").read_text()))


def test_every_written_bom_is_strictly_valid(written):
    _strict(written)
    assert written["bomFormat"] == "CycloneDX" and written["specVersion"] == "1.6"
    assert written["serialNumber"].startswith("urn:uuid:")


def test_bom_written_from_the_installed_environment_is_strictly_valid(make_key, model_dir,
                                                                      tmp_path):
    import mlprov

    key = make_key()
    mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev", commit=COMMIT)
    bom = json.loads((tmp_path / "ev" / "sbom.cdx.json").read_text())
    _strict(bom)
    purls = {c["purl"] for c in bom["components"] if "purl" in c}
    assert "pkg:pypi/pydantic@" + __import__("pydantic").VERSION in purls
    assert any(p.startswith("pkg:pypi/mlprov@") for p in purls)


def test_model_component_and_model_card(written):
    model = written["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "credit-risk"
    [digest] = model["hashes"]
    assert digest["alg"] == "SHA-256" and len(digest["content"]) == 64
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    card = model["modelCard"]
    params = card["modelParameters"]
    assert params["approach"] == {"type": "supervised"}
    assert params["task"] == "tabular-classification"
    assert params["architectureFamily"] == "logistic-regression"
    assert params["modelArchitecture"] == "4 features -> sigmoid"
    assert params["datasets"] == [{"ref": "data:train"}]
    assert params["inputs"] == [{"format": "tabular"}]
    assert params["outputs"] == [{"format": "probability of default"}]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "auc", "value": "0.91"} in metrics
    assert {"type": "auc", "value": "0.88", "slice": "age<30"} in metrics
    assert all(isinstance(m["value"], str) for m in metrics)  # CycloneDX: strings only
    considerations = card["considerations"]
    assert considerations["useCases"] == ["pre-screening of consumer loan applications"]
    assert considerations["users"] == ["credit analysts"]
    assert considerations["ethicalConsiderations"][0] == {
        "name": "age is a protected attribute", "mitigationStrategy": "per-slice AUC reported"}
    props = {(p["name"], p["value"]) for p in card["properties"]}
    assert ("mlprov:modelcard:outOfScopeUse",
            "final credit decisions without human review") in props


def test_dataset_components_and_dependency_graph(written):
    [data] = [c for c in written["components"] if c["type"] == "data"]
    assert data["bom-ref"] == "data:train"
    assert data["hashes"] == [{"alg": "SHA-256", "content": "2" * 64}]
    assert data["data"] == [{"type": "dataset", "name": "train",
                             "contents": {"url": "hf://datasets/acme/corpus@r1"}}]
    refs = {c["bom-ref"] for c in written["components"]} | {"model"}
    graph = {d["ref"]: d.get("dependsOn", []) for d in written["dependencies"]}
    assert set(graph) == refs  # every component is a node
    assert all(target in refs for targets in graph.values() for target in targets)
    assert "data:train" in graph["model"]


def test_packages_from_a_requirements_file(written):
    packages = {c["name"]: c for c in written["components"] if c["type"] == "library"}
    assert set(packages) == {"click", "numpy", "torch"}
    assert packages["click"]["purl"] == "pkg:pypi/click@8.1.7"
    assert packages["click"]["hashes"][0]["alg"] == "SHA-256"
    assert packages["torch"]["version"] == "2.3.0"


def test_the_gotcha_numeric_metric_values_fail_the_schema():
    """SPECS §5.1: performance metric values are strings; a number fails strict 1.6."""
    prov = _provenance()
    bom = build_bom(provenance=prov, root=ROOT, packages=[], evaluation=_evaluation())
    bom["metadata"]["component"]["modelCard"]["quantitativeAnalysis"][
        "performanceMetrics"][0]["value"] = 0.9
    with pytest.raises(InputError, match="not of type 'string'"):
        validate_bom(bom)


def _provenance(parents: list[ResourceDescriptor] | None = None):
    import datetime as dt

    inputs = IdentityInputs(code=code_from_commit(COMMIT, uri="git+https://example.com/r"),
                            data=[TRAIN])
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    statement = build_provenance(name="m", root=ROOT, inputs=inputs, started_on=moment,
                                 finished_on=moment, parents=parents)
    return read_provenance(statement, what="p")


def _evaluation() -> EvalPredicate:
    return EvalPredicate(evaluator=Evaluator(id="https://e.example"), metrics={"auc": 0.9})


def test_parents_and_code_reference():
    parent = ResourceDescriptor(name="parent:base:acme-base", digest={"sha256": "b" * 64},
                                annotations={"role": "base", "name": "acme-base",
                                             "identity": "mlid:sha256:" + "c" * 64})
    bom = build_bom(provenance=_provenance([parent]), root=ROOT, packages=[])
    _strict(bom)
    [model_parent] = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    assert model_parent["name"] == "acme-base"
    assert model_parent["hashes"][0]["content"] == "b" * 64
    graph = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert model_parent["bom-ref"] in graph["model"]
    [vcs] = bom["metadata"]["component"]["externalReferences"]
    assert vcs == {"type": "vcs", "url": "git+https://example.com/r",
                   "comment": f"training code, commit {COMMIT}"}


def test_pins_and_read_bom():
    bom = pin_evidence(build_bom(provenance=_provenance(), root=ROOT, packages=[]),
                       {"MODEL_CARD.md": ("model-card", "d" * 64)})
    info = read_bom(bom_statement(bom, name="m", root=ROOT), what="sbom")
    assert info.pinned == {"MODEL_CARD.md": "d" * 64}
    assert info.datasets == (("train", "2" * 64),)


def test_read_bom_refuses_other_models_and_invalid_boms():
    bom = build_bom(provenance=_provenance(), root=ROOT, packages=[])
    with pytest.raises(BundleError, match="not the statement's subject"):
        read_bom(bom_statement(bom, name="m", root="f" * 64), what="sbom")
    broken = json.loads(json.dumps(bom))
    broken["components"][0]["type"] = "tensor"
    with pytest.raises(BundleError, match=r"not valid CycloneDX 1\.6"):
        read_bom(bom_statement(broken, name="m", root=ROOT), what="sbom")
    other = bom_statement(bom, name="m", root=ROOT).model_copy(
        update={"predicate_type": "https://spdx.dev/Document/v3"})
    with pytest.raises(BundleError, match="predicate type"):
        read_bom(other, what="sbom")
    not_cdx = json.loads(json.dumps(bom))
    not_cdx["specVersion"] = "1.2"
    with pytest.raises(BundleError, match="not a CycloneDX"):
        read_bom(bom_statement(not_cdx, name="m", root=ROOT), what="sbom")
    assert CYCLONEDX_BOM_PREDICATE == "https://cyclonedx.org/bom"


def test_card_input_round_trips_through_the_bom():
    card = CardInput(description="d", developers=["a", "b"], license="MIT",
                     base_model=["x/y"], task="t", approach="self-supervised",
                     architecture_family="f", model_architecture="m", inputs=["i"],
                     outputs=["o"], intended_use=["u"], intended_users=["p"],
                     out_of_scope_uses=["n"], factors=["g"],
                     ethical_considerations=[{"name": "e", "mitigation": "m"}, {"name": "f"}],
                     caveats_and_recommendations=["c"])
    bom = build_bom(provenance=_provenance(), root=ROOT, packages=[], card=card)
    assert CardInput.from_bom(bom) == card


# --------------------------------------------------------------- environment readers


def _metadata(**fields: Any) -> email.message.Message:
    message = email.message.Message()
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            message[name.replace("_", "-")] = item
    return message


@pytest.mark.parametrize(("fields", "expected"), [
    ({"License_Expression": "Apache-2.0 OR MIT", "License": "BSD"}, ("Apache-2.0 OR MIT",)),
    ({"License_Expression": "mit"}, ("MIT",)),
    ({"License": "MIT", "Classifier": ["License :: OSI Approved :: BSD License"]}, ("MIT",)),
    ({"License": "Apache License, Version 2.0",
      "Classifier": ["License :: OSI Approved :: Apache Software License"]}, ("Apache-2.0",)),
    ({"License": "Copyright 2018 ACME.\nAll rights reserved.",
      "Classifier": ["License :: OSI Approved :: GNU Lesser General Public License v3 or "
                     "later (LGPLv3+)"]}, ("LGPL-3.0-or-later",)),
    ({"License": "Proprietary"}, ("Proprietary",)),
    ({"Classifier": ["License :: OSI Approved :: BSD License"]}, ("BSD License",)),
    ({"License": "UNKNOWN"}, ()),
    ({}, ()),
])
def test_licences_from_metadata(fields, expected):
    assert _metadata_licenses(_metadata(**fields)) == expected


def test_installed_packages_are_unique_and_have_purls():
    packages = installed_packages()
    keys = [p.key for p in packages]
    assert len(keys) == len(set(keys)) and keys == sorted(keys)
    by_key = {p.key: p for p in packages}
    assert by_key["pyyaml"].purl == f"pkg:pypi/pyyaml@{by_key['pyyaml'].version}"
    assert "pydantic-core" in by_key["pydantic"].requires


def test_requirements_file(tmp_path: Path):
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\nFoo_Bar==1.0  # trailing\nbaz[x,y]===2.0 ; python_version>'3'\n"
                    "qux==3.0 \\\n    --hash=sha256:" + "A" * 64 + " \\\n    --hash=sha256:"
                    + "b" * 64 + "\n--extra-index-url https://example.com\n")
    packages = read_environment_file(path)
    assert [(p.name, p.version) for p in packages] == [("baz", "2.0"), ("Foo_Bar", "1.0"),
                                                       ("qux", "3.0")]
    assert packages[1].purl == "pkg:pypi/foo-bar@1.0"
    assert packages[2].sha256 == ("a" * 64, "b" * 64)


@pytest.mark.parametrize(("text", "needle"), [
    ("a==1\nb>=2\n", "line 2: 'b>=2' is not pinned"),
    ("-r base.txt\n", "-r is not supported"),
    ("-e .\n", "-e is not supported"),
    ("pkg @ https://example.com/pkg.whl\n", "not pinned"),
    ("a==1\nA==1\n", "listed twice"),
])
def test_requirements_file_errors(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        read_environment_file(path)


@pytest.mark.parametrize(("name", "text"), [
    ("pylock.toml", 'lock-version = "1.0"\n[[packages]]\nname = "numpy"\nversion = "1.26.4"\n'),
    ("uv.lock", 'version = 1\n[[package]]\nname = "numpy"\nversion = "1.26.4"\n'
                'source = { registry = "https://pypi.org/simple" }\n'),
])
def test_lock_files(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    assert read_environment_file(path) == [Package(name="numpy", version="1.26.4")]


@pytest.mark.parametrize(("text", "needle"), [
    ("[[package]]\nname = 'x'\n", "package 'x' has no version"),
    ("[tool]\n", "lists no packages"),
    ("[[package]\n", "not valid TOML"),
])
def test_lock_file_errors(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "uv.lock"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        read_environment_file(path)


def test_an_installed_package_lends_its_licences(tmp_path: Path):
    import yaml

    path = tmp_path / "requirements.txt"
    path.write_text(f"PyYAML=={yaml.__version__}\nPyYAML-other==0.0.1\n")
    by_name = {p.name: p for p in read_environment_file(path)}
    assert by_name["PyYAML"].licenses == ("MIT",)
    assert by_name["PyYAML-other"].licenses == ()


def test_roots_reach_every_package_even_in_cycles():
    packages = [Package("a", "1", requires=("b",)), Package("b", "1", requires=("a",)),
                Package("c", "1", requires=("a",)), Package("d", "1", requires=("e",)),
                Package("e", "1", requires=("d",))]
    roots = {p.key for p in _roots(packages)}
    assert "c" in roots and roots & {"d", "e"}
    assert not roots & {"a", "b"}
