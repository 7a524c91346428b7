"""The shipped policies mean the same under OPA's own engine as under rego-cpp (issue 10 item 2).

OPA (the reference Rego implementation) runs from ``opa-golib-python-bindings``, which
the README's test command and ``.ci/run`` install. Off CI, a machine without it skips
these tests; in CI (``CI=true``) a missing OPA fails them.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import pytest

from mlprov._internal import opa
from mlprov.policy import (
    load_policy,
    load_policy_data,
    run_policy_tests,
    shipped_policies_dir,
)

POLICIES = shipped_policies_dir()


@pytest.fixture(scope="module", autouse=True)
def _opa() -> None:
    if not opa.available():
        if os.environ.get("CI"):
            pytest.fail(f"OPA's engine is missing in CI: {opa.INSTALL_HINT}")
        pytest.skip(f"OPA's engine is not installed ({opa.INSTALL_HINT})")


def test_the_shipped_policy_tests_pass_under_both_engines():
    ours = run_policy_tests(POLICIES)
    theirs = run_policy_tests(POLICIES, engine="opa")
    assert ours.engine.startswith("regopy") and theirs.engine.startswith("opa")
    assert ours.ok, [t for t in ours.tests if not t.passed]
    assert theirs.ok, [t for t in theirs.tests if not t.passed]
    assert [(t.file, t.name, t.passed) for t in ours.tests] == \
        [(t.file, t.name, t.passed) for t in theirs.tests]
    assert len(ours.tests) >= 61


# --- the decision matrix -------------------------------------------------------------------

@pytest.fixture(scope="module")
def base(allowed_input) -> dict[str, Any]:
    return allowed_input


def _metrics(document: dict[str, Any]) -> dict[str, Any]:
    [metrics] = [s["predicate"]["metrics"] for s in document["statements"]
                 if "metrics" in s.get("predicate", {})]
    return metrics


def _edit(base: dict[str, Any], change) -> dict[str, Any]:
    document = copy.deepcopy(base)
    change(document)
    return document


SHIPPED = load_policy_data(POLICIES / "data.yaml")


def _data(change) -> dict[str, Any]:
    data = copy.deepcopy(SHIPPED)
    change(data["mlprov_config"])
    return data


def _set(path: list[str], value: Any):
    def change(root: dict[str, Any]) -> None:
        for key in path[:-1]:
            root = root[key]
        root[path[-1]] = value
    return change


def _drop(path: list[str]):
    def change(root: dict[str, Any]) -> None:
        for key in path[:-1]:
            root = root[key]
        del root[path[-1]]
    return change


INPUTS = {
    "allowed": lambda d: None,
    "auc 0.6999996": lambda d: _metrics(d).__setitem__("auc", 0.6999996),
    "auc just below 0.7": lambda d: _metrics(d).__setitem__("auc", math.nextafter(0.7, 0)),
    "auc exactly 0.7": lambda d: _metrics(d).__setitem__("auc", 0.7),
    "auc 0.69": lambda d: _metrics(d).__setitem__("auc", 0.69),
    "auc huge": lambda d: _metrics(d).__setitem__("auc", 1e300),
    "auc integer 1": lambda d: _metrics(d).__setitem__("auc", 1),
    "auc negative": lambda d: _metrics(d).__setitem__("auc", -0.5),
    "auc missing": lambda d: _metrics(d).pop("auc"),
    "auc null": lambda d: _metrics(d).__setitem__("auc", None),
    "auc a string": lambda d: _metrics(d).__setitem__("auc", "0.9"),
    "auc a list": lambda d: _metrics(d).__setitem__("auc", [0.9]),
    "unicode metric": lambda d: _metrics(d).__setitem__("äüc\u2603", 0.1),
    "no reviews": lambda d: d.__setitem__("reviews", []),
    "no scan": lambda d: d.pop("scan"),
    "scan null": lambda d: d.__setitem__("scan", None),
    "unicode finding": lambda d: d["scan"].__setitem__("findings", [
        {"file": "mödel\u202e.pkl", "kind": "import", "severity": "dangerous",
         "detail": "os.system", "global": "os.system"}]),
    "quote finding": lambda d: d["scan"].__setitem__("findings", [
        {"file": '","x"],"deny":[],"zz":[".pkl', "kind": "import", "severity": "dangerous",
         "detail": "os.system", "global": "os.system"}]),
    "files not verified": lambda d: d["model"].__setitem__("filesVerified", False),
    "model null": lambda d: d.__setitem__("model", None),
    "unicode model name": lambda d: d["model"].__setitem__("name", "mödel-ü"),
    "no statements": lambda d: d.__setitem__("statements", []),
}

DATA = {
    "shipped": lambda c: None,
    "no denied licences": _drop(["production", "denied_licenses"]),
    "denied licences null": _set(["production", "denied_licenses"], None),
    "metrics null": _set(["production", "metrics"], None),
    "metrics empty": _set(["production", "metrics"], {}),
    "no production section": _drop(["production"]),
    "production null": _set(["production"], None),
    "min approvals 2": _set(["production", "min_approvals"], 2),
    "min approvals null": _set(["production", "min_approvals"], None),
    "threshold malformed": _set(["production", "metrics"], {"auc": 0.7}),
    "max threshold": _set(["production", "metrics"], {"auc": {"max": 0.8}}),
    "no slices": _drop(["production", "slices"]),
    "no alias gates": _drop(["alias_gates"]),
}

TRANSITIONS = {
    "production": {"to": "Production", "from": "Staging", "actor": "ci", "reason": "go"},
    "staging": {"to": "Staging", "actor": "ci"},
    "alias production": {"alias": "production", "actor": "ci"},
    "unknown alias": {"alias": "canary\u00e9", "actor": "ci"},
    "archived": {"to": "Archived", "actor": "ci"},
    "nothing": {"actor": "ci"},
}


def _both(policy_file: str, document: dict[str, Any], data: dict[str, Any]):
    policy = load_policy(POLICIES / policy_file)
    return policy.evaluate(document, data), policy.evaluate(document, data, engine="opa")


def _same(ours, theirs) -> bool:
    """The same decision, messages and warnings; an evaluation error (each engine words
    its own) must be an error in both."""
    if ours.errors or theirs.errors:
        return bool(ours.errors) and bool(theirs.errors) and not ours.allowed \
            and not theirs.allowed
    return (ours.allowed, ours.deny, ours.warn) == (theirs.allowed, theirs.deny, theirs.warn)


@pytest.mark.parametrize("case", sorted(INPUTS))
@pytest.mark.parametrize("policy_file", ["production.rego", "staging.rego"])
def test_every_input_case_decides_the_same(base, case, policy_file):
    document = _edit(base, INPUTS[case])
    ours, theirs = _both(policy_file, document, SHIPPED)
    assert _same(ours, theirs), (case, ours, theirs)


@pytest.mark.parametrize("case", sorted(DATA))
def test_every_data_case_decides_the_same(base, case):
    data = _data(DATA[case])
    for policy_file in ("production.rego", "staging.rego"):
        ours, theirs = _both(policy_file, base, data)
        assert _same(ours, theirs), (case, policy_file, ours, theirs)


@pytest.mark.parametrize("transition", sorted(TRANSITIONS))
@pytest.mark.parametrize("case", ["allowed", "auc 0.6999996", "no reviews", "auc missing"])
def test_the_admission_gate_decides_the_same(base, transition, case):
    document = _edit(base, INPUTS[case])
    document["transition"] = TRANSITIONS[transition]
    ours, theirs = _both("admission.rego", document, SHIPPED)
    assert _same(ours, theirs), (transition, case, ours, theirs)


def test_the_edge_cases_decide_as_documented(base):
    """Not only the same: right. Missing data keys and edge floats deny, in both engines."""
    for case, allowed in [("allowed", True), ("auc 0.6999996", False),
                          ("auc just below 0.7", False), ("auc exactly 0.7", True),
                          ("auc missing", False), ("auc null", False), ("auc a string", False)]:
        ours, theirs = _both("production.rego", _edit(base, INPUTS[case]), SHIPPED)
        assert ours.allowed is theirs.allowed is allowed, (case, ours.deny, theirs.deny)
    for case in ("no denied licences", "denied licences null", "metrics null", "metrics empty",
                 "no production section", "production null", "threshold malformed"):
        ours, theirs = _both("production.rego", base, _data(DATA[case]))
        assert not ours.allowed and not theirs.allowed, (case, ours.deny, theirs.deny)
