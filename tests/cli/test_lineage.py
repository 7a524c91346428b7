"""``mlprov attest --parent``, ``mlprov lineage verify|show`` and lineage in ``verify`` (issue 4).

The models are tiny real ones (tests/lineage_models.py), attested with the CLI.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlprov._cli.lineage import DEFAULT_MAX_DEPTH as CLI_DEFAULT_MAX_DEPTH
from mlprov.lineage import DEFAULT_MAX_DEPTH
from tests import lineage_models as lm
from tests.cli.conftest import COMMIT, assert_error, read_payload
from tests.conftest import _Main

EXTERNAL = "cd" * 32


def invoke(*args: str) -> Result:
    from mlprov._cli.main import main

    return CliRunner().invoke(_Main(main), list(args), catch_exceptions=False)


@dataclass(frozen=True)
class Chain:
    root: Path  # holds keys/, trust.yaml and zoo/

    @property
    def zoo(self) -> Path:
        return self.root / "zoo"

    def model(self, name: str) -> Path:
        return self.zoo / name / "model"

    def evidence(self, name: str) -> Path:
        return self.zoo / name / "evidence"

    @property
    def key(self) -> Path:
        return self.root / "keys" / "ci.key"

    @property
    def pub(self) -> Path:
        return self.root / "keys" / "ci.key.pub"

    @property
    def trust(self) -> Path:
        return self.root / "trust.yaml"

    def attest(self, name: str, *args: str) -> Result:
        return invoke("attest", str(self.model(name)), "--name", name, "--key", str(self.key),
                      "--out", str(self.evidence(name)), "--commit", COMMIT, *args)

    def lineage(self, command: str, name: str, *args: str) -> Result:
        return invoke("lineage", command, str(self.evidence(name)), *args)


@pytest.fixture(scope="module")
def _pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-chain")
    chain = Chain(root)
    (root / "keys").mkdir()
    assert invoke("keygen", "--out", str(chain.key)).exit_code == 0
    chain.trust.write_text(
        "keys: [{name: ci, public_key: keys/ci.key.pub, roles: [builder]}]\n")
    lm.train_base(chain.model("base"))
    assert chain.attest("base").exit_code == 0
    lm.fine_tune(chain.model("base"), chain.model("ft"))
    r = chain.attest("ft", "--parent", f"fine-tune-of={chain.evidence('base')}",
                     "--parent", f"base=external:org/llm@sha256:{EXTERNAL}")
    assert r.exit_code == 0, r.stderr
    lm.distill(chain.model("ft"), chain.model("student"))
    r = chain.attest("student", "--parent", f"teacher={chain.evidence('ft')}",
                     "--parent-trust", str(chain.trust))
    assert r.exit_code == 0, r.stderr
    return root


@pytest.fixture
def chain(_pristine: Path, tmp_path: Path) -> Chain:
    shutil.copytree(_pristine, tmp_path, dirs_exist_ok=True)
    return Chain(tmp_path)


# --- attest --parent -------------------------------------------------------------


def test_attest_records_parents_and_says_so(chain: Chain):
    statement = read_payload(chain.evidence("ft") / "provenance.sigstore.json")
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    parents = {d["name"]: d for d in deps if d["name"].startswith("parent:")}
    assert set(parents) == {"parent:fine-tune-of:base", "parent:base:org/llm"}
    assert parents["parent:base:org/llm"]["annotations"]["external"] is True
    base = parents["parent:fine-tune-of:base"]["annotations"]
    assert set(base) == {"role", "name", "identity", "provenanceBundle", "manifestBundle"}


def test_attest_json_lists_parents(chain: Chain):
    lm.distill(chain.model("ft"), chain.model("s2"), seed=4)
    r = chain.attest("s2", "--parent", f"teacher={chain.evidence('ft')}", "--json")
    assert r.exit_code == 0, r.stderr
    [parent] = json.loads(r.stdout)["parents"]
    assert parent["role"] == "teacher" and parent["name"] == "ft"
    assert parent["external"] is False
    assert parent["provenanceBundle"].startswith("sha256:")


@pytest.mark.parametrize("value, needle", [
    ("cousin=x", "unknown parent role 'cousin'"),
    ("base", "ROLE=EVIDENCE_DIR"),
    ("base=external:llm@sha256:123", "external:NAME@sha256"),
    ("base=/nonexistent/evidence", "does not exist"),
])
def test_attest_bad_parent_is_a_usage_error(chain: Chain, value: str, needle: str):
    lm.distill(chain.model("ft"), chain.model("s2"), seed=4)
    r = chain.attest("s2", "--parent", value)
    assert_error(r, 2, "--parent", needle)
    assert not chain.evidence("s2").exists()


def test_attest_parent_trust_and_key_are_exclusive(chain: Chain):
    lm.distill(chain.model("ft"), chain.model("s2"), seed=4)
    r = chain.attest("s2", "--parent", f"teacher={chain.evidence('ft')}", "--parent-trust",
                     str(chain.trust), "--parent-key", str(chain.pub))
    assert_error(r, 2, "not both")


def test_attest_refuses_an_unverified_parent(chain: Chain):
    other = chain.root / "keys" / "other.key"
    assert invoke("keygen", "--out", str(other)).exit_code == 0
    lm.distill(chain.model("ft"), chain.model("s2"), seed=4)
    r = chain.attest("s2", "--parent", f"teacher={chain.evidence('ft')}",
                     "--parent-key", f"{other}.pub")
    assert_error(r, 1, "parent teacher=", "not signed by any key trusted by", "--parent-trust")
    assert not chain.evidence("s2").exists()


# --- lineage verify ----------------------------------------------------------------


def test_lineage_verify_succeeds(chain: Chain):
    r = chain.lineage("verify", "student", "--trust", str(chain.trust), "--search",
                      str(chain.zoo))
    assert r.exit_code == 0, r.stderr
    [line] = r.stdout.splitlines()
    assert line.startswith("verified lineage student@sha256:")
    assert "4 model(s), 3 link(s), 3 verified" in line and "1 external root(s)" in line
    lines = r.stderr.splitlines()
    assert lines[0].split()[0] == "ok" and lines[0].split()[1].startswith("student@sha256:")
    assert lines[0].endswith("(teacher)")
    assert any(ln.split()[0] == "external" and "org/llm@sha256:" in ln for ln in lines)


def test_lineage_verify_json(chain: Chain):
    r = chain.lineage("verify", "student", "--key", str(chain.pub), "--search", str(chain.zoo),
                      "--json")
    assert r.exit_code == 0, r.stderr
    document = json.loads(r.stdout)
    assert document["schema"] == "https://mlprov.dev/schemas/lineage/v1"
    assert document["verified"] is True and document["status"] == "verified"
    statuses = {n["name"]: n["status"] for n in document["nodes"]}
    assert statuses == {"student": "verified", "ft": "verified", "base": "verified",
                        "org/llm": "external"}
    assert {e["role"] for e in document["edges"]} == {"teacher", "fine-tune-of", "base"}
    assert r.stderr == ""


def test_lineage_verify_names_the_broken_edge(chain: Chain):
    shutil.rmtree(chain.evidence("base"))
    r = chain.lineage("verify", "student", "--trust", str(chain.trust), "--search",
                      str(chain.zoo))
    line = assert_error(r, 1, "lineage not verified", "ft@sha256:", "-> base@sha256:",
                        "(fine-tune-of)", "not found")
    assert r.stdout == ""
    assert "do not use this model" in line
    r = chain.lineage("verify", "student", "--trust", str(chain.trust), "--search",
                      str(chain.zoo), "--json")
    assert_error(r, 1, "(fine-tune-of)")
    assert json.loads(r.stdout)["status"] == "incomplete"


def test_lineage_verify_deep_catches_changed_parent_files(chain: Chain):
    (chain.model("base") / "config.json").write_text("{}\n")
    args = ("--trust", str(chain.trust), "--search", str(chain.zoo))
    assert chain.lineage("verify", "student", *args).exit_code == 0
    r = chain.lineage("verify", "student", *args, "--deep")
    assert_error(r, 1, "ft@sha256:", "-> base@sha256:", "(fine-tune-of)",
                 "changed: config.json")


def test_lineage_verify_deep_with_model_search(chain: Chain, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("base", "ft", "student"):
        shutil.move(chain.model(name), models / name)
    r = chain.lineage("verify", "student", "--trust", str(chain.trust), "--search",
                      str(chain.zoo), "--deep", "--model-search", str(models))
    assert r.exit_code == 0, r.stderr
    assert sum("files " in ln and ": verified:" in ln for ln in r.stderr.splitlines()) == 3


def test_lineage_verify_max_depth(chain: Chain):
    r = chain.lineage("verify", "student", "--trust", str(chain.trust), "--search",
                      str(chain.zoo), "--max-depth", "1")
    assert_error(r, 1, "(fine-tune-of)", "over the bound of 1")
    assert_error(chain.lineage("verify", "student", "--key", str(chain.pub), "--max-depth",
                               "-1"), 2, "--max-depth")


def test_lineage_verify_usage_errors(chain: Chain):
    assert_error(chain.lineage("verify", "student"), 2, "--trust", "--key")
    assert_error(chain.lineage("verify", "student", "--trust", str(chain.trust), "--key",
                               str(chain.pub)), 2, "exactly one")
    assert_error(invoke("lineage", "verify", str(chain.root / "nope"), "--key", str(chain.pub)),
                 2, "nope")
    assert_error(chain.lineage("verify", "student", "--key", str(chain.pub), "--search",
                               str(chain.root / "nope")), 2, "--search")
    assert_error(chain.lineage("verify", "student", "--key", str(chain.key)), 3)


def test_lineage_verify_of_a_non_evidence_directory_fails(chain: Chain):
    r = invoke("lineage", "verify", str(chain.model("base")), "--key", str(chain.pub))
    assert_error(r, 1, "evidence.json")


# --- lineage show --------------------------------------------------------------------


def test_lineage_show_tree_without_trust(chain: Chain):
    r = chain.lineage("show", "student", "--search", str(chain.zoo))
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("student@sha256:") and lines[0].endswith("[unverified]")
    assert lines[1].startswith("`-- teacher: ft@sha256:")
    assert "fine-tune-of: base@sha256:" in lines[2]
    assert "base: org/llm@sha256:" in lines[3] and lines[3].endswith("[external]")
    assert lines[-1] == "lineage: unverified"
    assert "signatures not checked" in r.stderr


@pytest.mark.parametrize("fmt, start", [("json", "{"), ("dot", "digraph lineage {"),
                                        ("mermaid", "flowchart BT"), ("tree", "student@")])
def test_lineage_show_formats(chain: Chain, fmt: str, start: str):
    r = chain.lineage("show", "student", "--search", str(chain.zoo), "--format", fmt,
                      "--trust", str(chain.trust))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(start)
    assert r.stderr == ""
    if fmt == "json":
        assert json.loads(r.stdout)["verified"] is True


def test_lineage_show_marks_failures_and_still_exits_zero(chain: Chain):
    shutil.rmtree(chain.evidence("base"))
    r = chain.lineage("show", "student", "--search", str(chain.zoo), "--key", str(chain.pub))
    assert r.exit_code == 0
    assert "[missing]" in r.stdout
    assert r.stderr.startswith("lineage incomplete: ft@sha256:")


def test_lineage_show_bad_format(chain: Chain):
    assert_error(chain.lineage("show", "student", "--format", "svg"), 2, "--format")


# --- verify of a derived model ----------------------------------------------------------


def test_verify_checks_the_lineage_when_parents_are_found(chain: Chain):
    r = invoke("verify", str(chain.model("student")), "--evidence",
               str(chain.evidence("student")), "--trust", str(chain.trust), "--search",
               str(chain.zoo), "--require-lineage")
    assert r.exit_code == 0, r.stderr
    assert any(ln.split()[:2] == ["ok", "lineage:"] for ln in r.stderr.splitlines())
    assert "warning" not in r.stderr


def test_verify_warns_when_parents_are_not_found(chain: Chain, tmp_path: Path):
    away = tmp_path / "away"
    shutil.move(chain.zoo / "student", away)
    args = ("verify", str(away / "model"), "--evidence", str(away / "evidence"),
            "--trust", str(chain.trust))
    r = invoke(*args)
    assert r.exit_code == 0, r.stderr
    warning = r.stderr.splitlines()[-1]
    assert warning.startswith("warning: lineage not verified: student@sha256:")
    assert "(teacher)" in warning and "--require-lineage" in warning
    r = invoke(*args, "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["lineage"]["status"] == "incomplete"
    assert_error(invoke(*args, "--require-lineage"), 1, "verification failed",
                 "-> ft@sha256:", "(teacher)")
    assert invoke(*args, "--search", str(chain.zoo), "--require-lineage").exit_code == 0


def test_verify_fails_when_a_found_parent_was_replaced(chain: Chain):
    r = chain.attest("base", "--force")  # same model, new evidence: not what ft recorded
    assert r.exit_code == 0, r.stderr
    r = invoke("verify", str(chain.model("student")), "--evidence",
               str(chain.evidence("student")), "--trust", str(chain.trust), "--search",
               str(chain.zoo))
    assert_error(r, 1, "ft@sha256:", "-> base@sha256:", "(fine-tune-of)", "replaced")


def test_help_and_defaults(chain: Chain):
    r = invoke("--help")
    assert "lineage" in r.stdout
    for command in ("verify", "show"):
        r = invoke("lineage", command, "--help")
        assert r.exit_code == 0 and "Examples:" in r.stdout
        assert f"mlprov lineage {command} " in r.stdout
    assert CLI_DEFAULT_MAX_DEPTH == DEFAULT_MAX_DEPTH
