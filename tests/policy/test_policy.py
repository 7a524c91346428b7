"""mlprov.policy: loading, evaluating and failing closed; the input and its schema."""

from __future__ import annotations

import json
import shutil
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import jsonschema
import pytest

import mlprov
from mlprov.canonical import canonical_json
from mlprov.errors import InputError, PolicyError, VerificationError
from mlprov.policy import (
    Decision,
    build_input,
    input_schema,
    load_policy,
    load_policy_data,
    run_policy_tests,
    shipped_policies_dir,
)
from mlprov.reviews import make_review, verify_reviews
from mlprov.scanning import scan_verified_model
from mlprov.signing import load_private_key
from tests.policy.conftest import attest_model, malicious_pickle

REPO = Path(__file__).resolve().parents[2]
SIMPLE = """package demo

import rego.v1

deny contains msg if {
\tinput.x > data.limit
\tmsg := sprintf("x = %v is over %v", [input.x, data.limit])
}

warn contains "x is zero" if input.x == 0
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def validate(document: dict[str, object]) -> None:
    jsonschema.Draft202012Validator(input_schema()).validate(document)


# --- loading and evaluating ------------------------------------------------------------

def test_a_policy_allows_only_when_deny_is_empty(tmp_path: Path):
    write(tmp_path, "demo.rego", SIMPLE)
    write(tmp_path, "data.yaml", "limit: 10\n")
    policy = load_policy(tmp_path / "demo.rego")
    allowed = policy.evaluate({"x": 3})
    assert allowed == Decision(True, (), (), policy.digest, allowed.input_digest,
                               allowed.data_digest, "data.demo")
    denied = policy.evaluate({"x": 11})
    assert not denied.allowed and denied.deny == ("x = 11 is over 10",)
    assert policy.evaluate({"x": 0}).warn == ("x is zero",)


def test_digests_name_the_policy_the_input_and_the_data(tmp_path: Path):
    import hashlib

    write(tmp_path, "demo.rego", SIMPLE)
    policy = load_policy(tmp_path)
    decision = policy.evaluate({"x": 1}, {"limit": 5})
    assert decision.input_digest == "sha256:" + hashlib.sha256(
        canonical_json({"x": 1})).hexdigest()
    assert decision.data_digest == "sha256:" + hashlib.sha256(
        canonical_json({"limit": 5})).hexdigest()
    files = {"demo.rego": "sha256:" + hashlib.sha256(SIMPLE.encode()).hexdigest()}
    assert policy.digest == "sha256:" + hashlib.sha256(
        canonical_json({"entrypoint": "data.demo", "files": files})).hexdigest()
    # Any byte of the policy changes the digest; the same bytes give the same one.
    assert load_policy(tmp_path).digest == policy.digest
    write(tmp_path, "demo.rego", SIMPLE + "\n")
    assert load_policy(tmp_path).digest != policy.digest


def test_explicit_data_replaces_the_policy_data(tmp_path: Path):
    write(tmp_path, "demo.rego", SIMPLE)
    write(tmp_path, "data.yaml", "limit: 10\n")
    policy = load_policy(tmp_path)
    assert policy.evaluate({"x": 7}).allowed
    assert not policy.evaluate({"x": 7}, {"limit": 5}).allowed
    assert policy.evaluate({"x": 7}).allowed  # the compiled default data is untouched


def test_decision_json(tmp_path: Path):
    write(tmp_path, "demo.rego", SIMPLE)
    decision = load_policy(tmp_path).evaluate({"x": 9}, {"limit": 1})
    document = decision.to_json_dict()
    assert document["schema"] == "https://mlprov.dev/schemas/policy-decision/v1"
    assert document["allowed"] is False
    assert document["deny"] == ["x = 9 is over 1"]
    assert document["policyDigest"].startswith("sha256:")
    json.dumps(document)


def test_a_directory_uses_the_admission_package_or_its_only_package(tmp_path: Path):
    write(tmp_path, "a/demo.rego", SIMPLE)
    assert load_policy(tmp_path / "a").entrypoint == "demo"
    write(tmp_path, "a/other.rego", "package other\n\nimport rego.v1\n\ndeny contains 1 if false\n")
    with pytest.raises(PolicyError, match=r"several packages .*none is mlprov\.admission"):
        load_policy(tmp_path / "a")
    shipped = load_policy(shipped_policies_dir())
    assert shipped.entrypoint == "mlprov.admission"
    assert "staging.rego" in shipped.files and "data.yaml" in shipped.files
    assert not any(name.endswith("_test.rego") for name in shipped.files)


def test_a_file_is_evaluated_with_the_modules_beside_it():
    production = load_policy(shipped_policies_dir() / "production.rego")
    assert production.entrypoint == "mlprov.production"
    assert set(production.files) == set(load_policy(shipped_policies_dir()).files)
    assert production.digest != load_policy(shipped_policies_dir() / "staging.rego").digest


def test_compiled_policies_are_cached_by_content(tmp_path: Path, monkeypatch):
    from mlprov import policy as policy_module

    write(tmp_path, "demo.rego", SIMPLE.replace("demo", "cached_demo"))
    load_policy(tmp_path)
    built = []
    original = policy_module.rego.Engine
    monkeypatch.setattr(policy_module.rego, "Engine",
                        lambda *a, **k: built.append(1) or original(*a, **k))
    load_policy(tmp_path).evaluate({"x": 1}, None)
    assert built == []


def test_evaluation_is_thread_safe(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    write(tmp_path, "demo.rego", SIMPLE)
    write(tmp_path, "data.yaml", "limit: 50\n")
    policy = load_policy(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(lambda x: policy.evaluate({"x": x}), range(100)))
    assert [d.allowed for d in decisions] == [x <= 50 for x in range(100)]


# --- fail closed -----------------------------------------------------------------------

def test_a_missing_policy_fails_closed(tmp_path: Path):
    with pytest.raises(PolicyError, match="policy not found"):
        load_policy(tmp_path / "nope.rego")
    with pytest.raises(PolicyError, match="no policy"):
        load_policy(tmp_path)
    assert issubclass(PolicyError, VerificationError) and PolicyError.exit_code == 1


def test_a_syntax_error_fails_closed_with_its_place(tmp_path: Path):
    write(tmp_path, "bad.rego", "package bad\n\nimport rego.v1\n\ndeny contains msg if {\n"
                                "\tmsg := \"x\"\n\tinput.x =\n}\n")
    with pytest.raises(PolicyError, match=r"bad.rego:7:\d+: "):
        load_policy(tmp_path / "bad.rego")


@pytest.mark.parametrize("source", [
    "package v0\n\ndeny[msg] {\n\tinput.x\n\tmsg := \"x\"\n}\n",
    "package v0\n\nimport rego.v1\n\ndeny[msg] {\n\tmsg := \"x\"\n}\n",
    "package v0\n\nallow {\n\tinput.x\n}\n\ndeny contains \"x\" if not allow\n",
    "package v0\n\np = 1 {\n\ttrue\n}\n\ndeny contains \"x\" if p\n",
])
def test_v0_syntax_fails_closed_with_a_hint(tmp_path: Path, source: str):
    write(tmp_path, "old.rego", source)
    with pytest.raises(PolicyError, match=r"Rego v0 rule body .*deny contains msg if"):
        load_policy(tmp_path / "old.rego")


def test_v1_constructs_are_not_mistaken_for_v0(tmp_path: Path):
    write(tmp_path, "v1.rego", """package v1

import rego.v1

default allow := false

limits := {"a": 1, "b": {2, 3}}

allow if {
\tinput.x
} else := true if {
\tinput.y
}

ok if {
\tevery x in input.xs {
\t\tx > 0
\t}
}

f(x) := {"y": x} if {
\tx > 1
}

deny contains msg if {
\tsome k, v in limits
\tmsg := sprintf("%v", [k])
\tfalse
}
""")
    assert load_policy(tmp_path / "v1.rego").evaluate({"xs": [1]}).allowed


def test_a_set_answer_is_required_even_if_the_syntax_passes(tmp_path: Path):
    # `deny[msg] if` is valid Rego v1 but makes an object, never a set of messages.
    write(tmp_path, "obj.rego", "package obj\n\nimport rego.v1\n\n"
                                "deny[msg] := true if {\n\tmsg := \"x\"\n}\n")
    decision = load_policy(tmp_path / "obj.rego").evaluate({})
    assert not decision.allowed
    assert decision.deny == ("policy error: deny is an object, not a set: Rego v0 "
                             "`deny[msg] { ... }`? write `deny contains msg if { ... }`",)


def test_with_input_as_is_refused_before_it_can_crash_the_engine(tmp_path: Path):
    write(tmp_path, "p.rego", "package p\n\nimport rego.v1\n\ndeny contains \"x\" if "
                              "input.x > 1\n")
    write(tmp_path, "p_test.rego", "package p_test\n\nimport rego.v1\n\n"
                                   "test_x if {\n\tdata.p.deny with input as {\"x\": 2}\n}\n")
    with pytest.raises(PolicyError, match=r"with input as .*crashes.*with input\.model as"):
        run_policy_tests(tmp_path)


@pytest.mark.parametrize(("body", "error"), [
    ("x := 1 / input.zero\n\ndeny contains \"d\" if x > 0\n", "divide by zero"),
    ("c := 1 if true\n\nc := 2 if true\n\ndeny contains \"d\" if c\n", "multiple outputs"),
    ("deny contains msg if {\n\tmsg := sprintf(\"%v\", 1)\n}\n", "sprintf"),
    ("deny contains \"d\" if undefined_function(1)\n", "undefined_function"),
    ("deny contains msg if {\n\tmsg := input.a + \"s\"\n}\n", "Not a number"),
])
def test_an_evaluation_error_denies(tmp_path: Path, body: str, error: str):
    write(tmp_path, "e.rego", f"package e\n\nimport rego.v1\n\n{body}")
    decision = load_policy(tmp_path / "e.rego").evaluate({"zero": 0, "a": 1})
    assert not decision.allowed
    assert decision.deny[0].startswith("policy error: ")
    assert error in decision.errors[0] or error in decision.deny[0]


def test_no_deny_rule_fails_closed(tmp_path: Path):
    write(tmp_path, "n.rego", "package n\n\nimport rego.v1\n\nallow := true\n")
    with pytest.raises(PolicyError, match="package n defines no deny rule"):
        load_policy(tmp_path / "n.rego")
    # A deny rule that is undefined for an input (a complete rule) denies too.
    write(tmp_path, "c.rego", "package c\n\nimport rego.v1\n\ndeny := {\"x\"} if input.a\n")
    decision = load_policy(tmp_path / "c.rego").evaluate({})
    assert decision.deny == ("policy error: package c defines no deny rule for this input",)


def test_messages_with_quotes_survive_the_engine(tmp_path: Path):
    # rego-cpp 1.5.2 writes malformed JSON for such strings; the node tree is read instead.
    write(tmp_path, "q.rego", "package q\n\nimport rego.v1\n\n"
                              "deny contains sprintf(\"role %v\", [lower(\"BUILDER\")]) if true\n")
    assert load_policy(tmp_path / "q.rego").evaluate({}).deny == ('role "builder"',)


def test_other_broken_policies(tmp_path: Path):
    write(tmp_path, "t.rego", "package t\n\nimport rego.v1\n\ndeny contains 1 if true\n")
    assert load_policy(tmp_path / "t.rego").evaluate({}).deny == (
        "policy error: deny must be a set of strings (`deny contains msg if { ... }`)",)
    with pytest.raises(PolicyError, match="is a test file"):
        load_policy(write(tmp_path, "x_test.rego", "package x_test\n"))
    with pytest.raises(PolicyError, match=r"not a \.rego file"):
        load_policy(write(tmp_path, "p.txt", "x"))
    write(tmp_path, "np/n.rego", "import rego.v1\n")
    with pytest.raises(PolicyError, match="declares no package"):
        load_policy(tmp_path / "np")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "b.rego").write_bytes(b"package b\n\xff\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(tmp_path / "bin")


def test_bad_policy_data_fails_closed(tmp_path: Path):
    write(tmp_path, "demo.rego", SIMPLE)
    write(tmp_path, "data.yaml", "limit: [1\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path)
    write(tmp_path, "data.yaml", "limit: 1\nlimit: 2\n")
    with pytest.raises(PolicyError, match="duplicate key"):
        load_policy(tmp_path)
    write(tmp_path, "data.yaml", "when: 2026-01-01\n")
    with pytest.raises(PolicyError, match="canonical JSON"):
        load_policy(tmp_path)
    write(tmp_path, "data.yml", "limit: 1\n")
    with pytest.raises(PolicyError, match="several data files"):
        load_policy(tmp_path)


def test_load_policy_data(tmp_path: Path):
    assert load_policy_data(write(tmp_path, "d.json", '{"a": 1}')) == {"a": 1}
    assert load_policy_data(write(tmp_path, "d.yaml", "")) == {}
    with pytest.raises(InputError, match="mapping"):
        load_policy_data(write(tmp_path, "l.yaml", "- 1\n"))
    with pytest.raises(InputError, match="cannot read"):
        load_policy_data(tmp_path / "missing.yaml")
    shipped = load_policy_data(shipped_policies_dir() / "data.yaml")
    assert shipped["mlprov_config"]["production"]["metrics"]["auc"] == {"min": 0.70}


# --- the shipped policies and their Rego tests -----------------------------------------

def test_the_shipped_rego_tests_pass():
    report = run_policy_tests(shipped_policies_dir())
    failed = [(t.file, t.name, t.detail) for t in report.tests if not t.passed]
    assert failed == []
    assert report.ok and report.passed >= 50
    names = {t.name for t in report.tests}
    for expected in ("test_missing_sbom_is_denied",
                     "test_approval_signed_by_the_builder_does_not_count",
                     "test_unsafe_pickle_is_denied", "test_denied_licence_is_denied",
                     "test_metric_below_minimum_is_denied", "test_failed_lineage_is_denied",
                     "test_unknown_stage_is_denied"):
        assert expected in names


def test_rego_tests_can_fail(tmp_path: Path):
    copy = tmp_path / "policies"
    shutil.copytree(shipped_policies_dir(), copy)
    # A team's own thresholds do not break the shipped tests (they carry their settings)...
    data = (copy / "data.yaml").read_text().replace("auc: {min: 0.70}", "auc: {min: 0.95}")
    (copy / "data.yaml").write_text(data)
    assert run_policy_tests(copy).ok
    # ...a broken rule does.
    rego_file = copy / "production.rego"
    rego_file.write_text(rego_file.read_text().replace("value < bound.min", "value < 0", 1))
    report = run_policy_tests(copy)
    assert not report.ok
    assert "test_metric_below_minimum_is_denied" in {t.name for t in report.tests
                                                     if not t.passed}


def test_rego_test_errors_and_absence(tmp_path: Path):
    write(tmp_path, "p.rego", "package p\n\nimport rego.v1\n\ndeny contains \"d\" if false\n")
    with pytest.raises(PolicyError, match="no Rego tests"):
        run_policy_tests(tmp_path)
    write(tmp_path, "p_test.rego", "package p_test\n\nimport rego.v1\n\n"
                                   "test_div if 1 / input.zero\n\ntest_ok if true\n")
    report = run_policy_tests(tmp_path)
    results = {t.name: t for t in report.tests}
    assert results["test_ok"].passed and not results["test_div"].passed
    assert report.to_json_dict()["failed"] == 1


def test_shipped_policies_are_package_data():
    link = REPO / "src" / "mlprov" / "_policies"
    assert link.is_symlink() and link.resolve() == (REPO / "policies").resolve()
    assert shipped_policies_dir().resolve() == (REPO / "policies").resolve()
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["mlprov"]
    for path in (REPO / "policies").iterdir():
        rel = f"_policies/{path.name}"
        assert any(fnmatch(rel, g) for g in globs), rel
    assert any(fnmatch("schemas/policy-input-v1.schema.json", g) for g in globs)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git for a clean source tree")
def test_a_wheel_carries_the_policies(tmp_path: Path):
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "src-tree"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "policies", source / "policies")
    shutil.copytree(REPO / "src", source / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path / "wheels"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [wheel] = (tmp_path / "wheels").glob("mlprov-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for policy in ("staging.rego", "production.rego", "admission.rego", "data.yaml"):
        assert f"mlprov/_policies/{policy}" in names
    assert "mlprov/schemas/policy-input-v1.schema.json" in names


# --- the input -------------------------------------------------------------------------

def test_input_from_a_verified_model_matches_its_schema(good, lab):
    verdict = mlprov.verify(good.model, evidence=good.evidence, trust=lab.trust)
    assert verdict.verified
    review = good.model.parent / "alice.json"
    review.write_bytes(make_review(verdict, signer=load_private_key(lab.key("alice")),
                                   reviewer="alice", decision="approve", comment="ok"))
    reviews = verify_reviews([review], lab.trust, verdict=verdict)
    scan = scan_verified_model(good.model, verdict)
    document = build_input(verdict, reviews=reviews, scan=scan, registry_state={"versions": 3},
                           transition={"from": "Staging", "to": "Production", "alias": None,
                                       "actor": "bob", "reason": "release"})
    validate(document)
    assert document["model"] == {"name": "credit-risk", "identity": verdict.identity,
                                 "rootDigest": verdict.root_digest, "filesVerified": True}
    assert document["verification"]["verified"] is True
    assert document["transition"] == {"from": "Staging", "to": "Production", "actor": "bob",
                                      "reason": "release"}
    by_file = {s["file"]: s for s in document["statements"]}
    assert set(by_file) == {"model.sig", "provenance.sigstore.json", "sbom.sigstore.json",
                            "eval.sigstore.json"}
    assert by_file["eval.sigstore.json"]["signer"]["name"] == "eval-bot"
    assert by_file["eval.sigstore.json"]["signer"]["roles"] == ["evaluator"]
    assert by_file["eval.sigstore.json"]["predicate"]["metrics"] == {"accuracy": 0.81, "auc": 0.87}
    assert by_file["sbom.sigstore.json"]["summary"]["licenses"]["bsd-3-clause"] == [
        "click@8.1.7", "numpy@2.0.0"]
    assert "resources" not in by_file["model.sig"]["predicate"]
    assert by_file["model.sig"]["predicate"]["resourceCount"] == 2
    [counted] = document["reviews"]
    assert counted["signer"]["name"] == "alice" and counted["decision"] == "approve"
    assert document["scan"]["rootDigest"] == verdict.root_digest
    assert document["lineage"]["verified"] is True
    assert document["registry"] == {"versions": 3}
    decision = load_policy(shipped_policies_dir()).evaluate(document)
    assert decision.allowed, decision.deny


def test_unverified_claims_never_reach_the_input(good, lab, copy_of):
    attested = copy_of(good)
    # Re-sign the eval with an untrusted key: its claims must not appear.
    from mlprov.bundles import sign_statement, verify_statement_file
    from mlprov.trust import Role, Trust

    evaluation = attested.evidence / "eval.sigstore.json"
    statement = verify_statement_file(evaluation, Trust.single_key(lab.pub("eval")),
                                      Role.EVALUATOR).statement
    forged = statement.model_copy(update={"predicate": {**statement.predicate,
                                                        "metrics": {"auc": 1.0}}})
    evaluation.write_bytes(sign_statement(forged, load_private_key(lab.key("mallory"))))
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    assert not verdict.verified
    document = build_input(verdict)
    validate(document)
    assert "eval.sigstore.json" not in {s["file"] for s in document["statements"]}
    assert '"auc": 1.0' not in json.dumps(document)
    assert document["verification"]["verified"] is False
    decision = load_policy(shipped_policies_dir() / "staging.rego").evaluate(document)
    assert not decision.allowed
    assert any("did not verify" in m for m in decision.deny)


def test_evidence_only_input(good, lab):
    verdict = mlprov.verify(None, evidence=good.evidence, trust=lab.trust)
    assert not verdict.verified  # the files check did not run ...
    document = build_input(verdict)
    validate(document)
    assert document["verification"]["verified"] is True  # ... the evidence verified
    assert document["model"]["filesVerified"] is False
    assert load_policy(shipped_policies_dir() / "staging.rego").evaluate(document).allowed
    production = load_policy(shipped_policies_dir() / "production.rego").evaluate(document)
    assert "no pickle scan of the model's files in the input (give the model files)" in \
        production.deny


def test_reviews_of_another_model_are_left_out(good, lab, tmp_path: Path):
    other = attest_model(lab, tmp_path / "other", name="other-model",
                         extra={"tokenizer.json": b"{}"})
    other_verdict = mlprov.verify(other.model, evidence=other.evidence, trust=lab.trust)
    review = tmp_path / "r.json"
    review.write_bytes(make_review(other_verdict, signer=load_private_key(lab.key("alice")),
                                   reviewer="alice", decision="approve", comment="ok"))
    counted = verify_reviews([review], lab.trust, root_digest=other_verdict.root_digest,
                             identity=other_verdict.identity)
    assert counted[0].counted
    verdict = mlprov.verify(good.model, evidence=good.evidence, trust=lab.trust)
    assert build_input(verdict, reviews=counted)["reviews"] == []


def test_bad_transitions_are_refused(good, lab):
    verdict = mlprov.verify(None, evidence=good.evidence, trust=lab.trust)
    with pytest.raises(InputError, match="unknown transition field"):
        build_input(verdict, transition={"to": "Production", "stage": "x"})
    with pytest.raises(InputError, match="must be a string"):
        build_input(verdict, transition={"to": 3})


def test_production_denies_a_malicious_pickle(lab, tmp_path: Path):
    attested = attest_model(lab, tmp_path, extra={"model.pkl": malicious_pickle()})
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    assert verdict.verified
    review = tmp_path / "r.json"
    review.write_bytes(make_review(verdict, signer=load_private_key(lab.key("alice")),
                                   reviewer="alice", decision="approve", comment="ok"))
    reviews = verify_reviews([review], lab.trust, verdict=verdict)
    document = build_input(verdict, reviews=reviews, scan=scan_verified_model(attested.model,
                                                                              verdict))
    validate(document)
    decision = load_policy(shipped_policies_dir() / "production.rego").evaluate(document)
    assert decision.deny == ("unsafe pickle: model.pkl imports os.system (dangerous)",)
    # Without the pickle, the same evidence and review would pass.
    document["scan"]["findings"] = []
    assert load_policy(shipped_policies_dir() / "production.rego").evaluate(document).allowed


def test_production_denies_a_denied_licence_in_the_sbom(lab, tmp_path: Path):
    from mlprov.sbom import Package

    env = [Package("click", "8.1.7", licenses=("BSD-3-Clause",)),
           Package("strongcopyleft", "1.0", licenses=("AGPL-3.0-only",))]
    attested = attest_model(lab, tmp_path, environment=env)
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    document = build_input(verdict, scan=scan_verified_model(attested.model, verdict))
    decision = load_policy(shipped_policies_dir() / "production.rego").evaluate(document)
    assert "denied licence agpl-3.0-only in the SBOM (strongcopyleft@1.0)" in decision.deny


def test_production_denies_metrics_below_the_data_thresholds(lab, tmp_path: Path):
    metrics = {"metrics": {"accuracy": 0.9, "auc": 0.62}, "slices": {"old": {"auc": 0.4}}}
    attested = attest_model(lab, tmp_path, metrics=metrics)
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    document = build_input(verdict, scan=scan_verified_model(attested.model, verdict))
    deny = load_policy(shipped_policies_dir() / "production.rego").evaluate(document).deny
    assert "eval metric auc = 0.62 is below the minimum 0.7" in deny
    assert "eval metric auc = 0.4 in slice old is below the minimum 0.6" in deny
    relaxed = {"mlprov_config": {**load_policy_data(shipped_policies_dir() / "data.yaml")[
        "mlprov_config"]}}
    relaxed["mlprov_config"]["production"] = {**relaxed["mlprov_config"]["production"],
                                              "metrics": {"auc": {"min": 0.6}},
                                              "slices": {}}
    deny = load_policy(shipped_policies_dir() / "production.rego").evaluate(document,
                                                                           relaxed).deny
    assert not any(m.startswith("eval metric") for m in deny)
