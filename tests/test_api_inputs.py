"""The Python API as a training script writes it (issue 11 item 8): plain values in,
an MlprovError with a hint out, never a TypeError or a pydantic dump."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlprov
import mlprov.mlflow
from mlprov import (
    canonical,
    card,
    evaluation,
    hashing,
    identity,
    lineage,
    policy,
    reviews,
    signing,
    trust,
)
from mlprov.errors import EXIT_USAGE, ArgumentError, InputError, MlprovError
from mlprov.evaluation import read_eval
from mlprov.evidence import EVAL_FILE, PROVENANCE_FILE
from mlprov.identity import DataRef, IdentityInputs, code_from_commit, compute_identity
from mlprov.provenance import read_provenance
from mlprov.registry import Registry, parse_model_uri, parse_time, sign_webhook, verify_webhook
from mlprov.statements import Statement
from tests.conftest import COMMIT
from tests.evidence_kit import payload
from tests.policy.conftest import safetensors_file


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


# --- every public function: a wrong value is a one-line MlprovError naming it ---------------



@dataclass(frozen=True)
class World:
    """One attested model, its keys and trust, a signed review and a registry holding it."""

    root: Path
    model: Path
    evidence: Path
    trust: Path
    review: Path
    registry: Registry

    def key(self, name: str) -> Path:
        return self.root / f"{name}.key"

    def fresh(self, stem: str) -> Path:
        """A path that does not exist yet (outputs of the calls that write)."""
        return self.root / "out" / f"{stem}-{os.urandom(6).hex()}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("api")
    os.environ["MLPROV_REGISTRY_FSYNC"] = "off"  # a throwaway registry
    for name in ("ci", "eval", "alice"):
        signing.write_key_pair(signing.generate_key(signing.KeyType.ED25519),
                               root / f"{name}.key", None)
    trust_file = root / "trust.yaml"
    trust_file.write_text(
        "version: 1\nkeys:\n"
        "  - {name: ci, public_key: ci.key.pub, roles: [builder]}\n"
        "  - {name: eval, public_key: eval.key.pub, roles: [evaluator]}\n"
        "  - {name: alice, public_key: alice.key.pub, roles: [reviewer]}\n")
    model = root / "model"
    model.mkdir()
    (model / "weights.safetensors").write_bytes(safetensors_file(b"\x01" * 1024))
    environment = root / "requirements.txt"
    environment.write_text("numpy==2.1.0\n")
    evidence = root / "evidence"
    mlprov.attest(model, name="m", key=root / "ci.key", out=evidence, commit=COMMIT,
                  metrics={"metrics": {"auc": 0.91, "accuracy": 0.84}},
                  eval_key=root / "eval.key", environment=environment)
    review = root / "review.sigstore.json"
    review.write_bytes(reviews.make_review(
        evidence, signer=signing.load_private_key(root / "alice.key"), reviewer="alice",
        decision="approve", comment="ok", trust=trust_file))
    (root / "out").mkdir()
    (root / "card.yaml").write_text("description: a test model\n")
    (root / "m.json").write_text('{"auc": 0.9}\n')
    (root / "c.json").write_text('{"lr": 0.1}\n')
    registry = Registry.init(root / "registry", trust=trust_file)
    registry.register(model, evidence=evidence)
    yield World(root, model, evidence, trust_file, review, registry)
    registry.close()
    os.environ.pop("MLPROV_REGISTRY_FSYNC", None)


HEX = "ab" * 32

#: Every public function a script calls, with arguments that work: each case
#: replaces one of them with a wrong value. (name, function, good arguments)
Case = tuple[Callable[..., Any], Callable[[World], dict[str, Any]]]
CASES: dict[str, Case] = {
    "attest": (mlprov.attest, lambda w: dict(
        model=w.model, name="m", out=w.fresh("ev"), key=w.key("ci"), commit=COMMIT,
        config={"a": 1}, params={"lr": 0.1}, seeds={"torch": 1}, metrics={"auc": 0.9},
        data={"train": str(w.model)}, builder_id="https://ci", invocation_id="run-1",
        allow_symlinks=False, overwrite=False, progress=print, evaluator_id="https://qa",
        environment=w.root / "requirements.txt", parent_key=w.root / "ci.key.pub",
        card=w.root / "card.yaml", eval_key=w.key("eval"))),
    "verify": (mlprov.verify, lambda w: dict(
        model=w.model, evidence=w.evidence, trust=w.trust, search=[w.root],
        require_lineage=False, progress=print)),
    "verify(key=)": (mlprov.verify, lambda w: dict(
        model=w.model, evidence=w.evidence, key=w.root / "ci.key.pub")),
    "inspect_evidence": (mlprov.inspect_evidence, lambda w: dict(
        evidence=w.evidence, trust=w.trust, model=w.model, progress=print)),
    "verify_lineage": (mlprov.verify_lineage, lambda w: dict(
        evidence=w.evidence, trust=w.trust, search=[w.root], max_depth=3, deep=False,
        model_search=[w.root])),
    "load": (mlprov.load, lambda w: dict(
        uri="models:/m/1", registry=w.registry.home, trust=w.trust, min_seq=0,
        head_file=w.fresh("head"))),
    "hash_path": (mlprov.hash_path, lambda w: dict(
        path=w.model, ignore_paths=[".git"], allow_symlinks=False, workers=2, progress=print)),
    "hash_file": (hashing.hash_file, lambda w: dict(
        path=w.model / "weights.safetensors", progress=print, follow_symlinks=False)),
    "root_digest": (hashing.root_digest, lambda w: dict(file_digests=[HEX])),
    "default_ignore_paths": (hashing.default_ignore_paths, lambda w: dict(
        model=w.model, evidence=w.evidence)),
    "check_relative_path": (hashing.check_relative_path, lambda w: dict(name="a/b")),
    "code_from_commit": (identity.code_from_commit, lambda w: dict(commit=COMMIT, uri="git+x")),
    "code_from_repo": (identity.code_from_repo, lambda w: dict(repo=w.root, allow_dirty=True)),
    "compute_identity": (identity.compute_identity, lambda w: dict(
        inputs=identity.IdentityInputs(code=identity.code_from_commit(COMMIT)))),
    "load_configs": (identity.load_configs, lambda w: dict(paths=[w.root / "c.json"])),
    "parse_data_spec": (identity.parse_data_spec, lambda w: dict(
        spec=f"train={w.model}", allow_symlinks=False)),
    "parse_seed": (identity.parse_seed, lambda w: dict(spec="torch=1")),
    "generate_key": (signing.generate_key, lambda w: dict(key_type=signing.KeyType.ED25519)),
    "write_key_pair": (signing.write_key_pair, lambda w: dict(
        private_key=signing.generate_key(signing.KeyType.ED25519), out=w.fresh("k"),
        passphrase=None, overwrite=False)),
    "load_private_key": (signing.load_private_key, lambda w: dict(path=w.key("ci"))),
    "load_public_key": (signing.load_public_key, lambda w: dict(path=w.root / "ci.key.pub")),
    "make_signer": (signing.make_signer, lambda w: dict(
        key=w.key("ci"), sigstore=False, staging=False)),
    "load_trust": (trust.load_trust, lambda w: dict(path=w.trust, offline=True)),
    "Trust.single_key": (trust.Trust.single_key, lambda w: dict(path=w.root / "ci.key.pub")),
    "make_review": (reviews.make_review, lambda w: dict(
        evidence_dir_or_verdict=w.evidence, signer=signing.load_private_key(w.key("alice")),
        reviewer="alice", decision="approve", comment="ok", trust=w.trust, model=w.model)),
    "verify_reviews": (reviews.verify_reviews, lambda w: dict(
        paths=[w.review], trust=w.trust, root_digest=HEX, identity="mlid:sha256:" + HEX,
        name="m", provenance="sha256:" + HEX)),
    "load_metrics": (evaluation.load_metrics, lambda w: dict(path=w.root / "m.json")),
    "parse_metrics": (evaluation.parse_metrics, lambda w: dict(
        document={"auc": 0.9}, what="metrics")),
    "load_card_input": (card.load_card_input, lambda w: dict(path=w.root / "card.yaml")),
    "render_verified_card": (card.render_verified_card, lambda w: dict(
        evidence=w.evidence, trust=w.trust)),
    "parse_parent_spec": (lineage.parse_parent_spec, lambda w: dict(spec=f"base={w.evidence}")),
    "verify_evidence": (lineage.verify_evidence, lambda w: dict(
        evidence=w.evidence, trust=trust.load_trust(w.trust))),
    "load_policy": (policy.load_policy, lambda w: dict(path=policy.shipped_policies_dir())),
    "load_policy_data": (policy.load_policy_data, lambda w: dict(
        path=policy.shipped_policies_dir() / "data.yaml")),
    "loads_strict": (canonical.loads_strict, lambda w: dict(data=b"{}", what="x")),
    "parse_model_uri": (parse_model_uri, lambda w: dict(text="models:/m/1")),
    "parse_time": (parse_time, lambda w: dict(text="2026-01-01T00:00:00Z")),
    "sign_webhook": (sign_webhook, lambda w: dict(secret=b"s", body=b"b", timestamp=1)),
    "verify_webhook": (verify_webhook, lambda w: dict(
        secret=b"s", body=b"b", header="t=1,v1=00", tolerance=300.0, now=1.0)),
    "Registry.open": (Registry.open, lambda w: dict(home=w.registry.home)),
    "Registry.init": (Registry.init, lambda w: dict(
        home=w.fresh("reg"), trust=w.trust, key=w.key("ci"), actor="ci", sigstore=False)),
}
#: The registry's methods, on the world's registry: (method name, good arguments).
METHODS: dict[str, Callable[[World], dict[str, Any]]] = {
    "register": lambda w: dict(model=w.model, evidence=w.evidence, actor="ci", reason="r"),
    "resolve": lambda w: dict(uri="models:/m/1", min_seq=0, head_file=w.fresh("head")),
    "get_version": lambda w: dict(name="m", version=1),
    "verify_version": lambda w: dict(name="m", version=1, deep=False),
    "promote": lambda w: dict(name="m", version=1, to="Archived", reason="r", actor="a"),
    "set_alias": lambda w: dict(name="m", alias="champ", version=1, reason="r", actor="a"),
    "delete_alias": lambda w: dict(name="m", alias="champ", reason="r", actor="a"),
    "rollback": lambda w: dict(name="m", alias="champ", to=1, reason="r", actor="a"),
    "add_review": lambda w: dict(name="m", version=1, review=w.review, actor="a", reason="r"),
    "alias_history": lambda w: dict(name="m", alias="champ", at="2026-01-01T00:00:00Z"),
    "show_model": lambda w: dict(name="m", limit=5),
    "audit_log": lambda w: dict(since=0, limit=5, name="m"),
    "events": lambda w: dict(since=0, limit=5),
    "verify_audit": lambda w: dict(deep=False, checkpoint=w.fresh("cp"), sign_checkpoint=False),
    "checkpoint": lambda w: dict(deep=False),
    "deliver_events": lambda w: dict(now=1.0),
    "decision": lambda w: dict(digest="sha256:" + HEX),
    "pull": lambda w: dict(uri="models:/m/1", out=w.fresh("pull"), min_seq=0,
                           head_file=w.fresh("head")),
    "export_evidence": lambda w: dict(uri="models:/m/1", out=w.fresh("export")),
    "load": lambda w: dict(uri="models:/m/1", min_seq=0, head_file=w.fresh("head")),
    "set_trust": lambda w: dict(trust=w.trust, reason="r", actor="a"),
    "set_policies": lambda w: dict(policies=policy.shipped_policies_dir(), reason="r"),
    "set_config": lambda w: dict(config=w.root / "c.json", reason="r", actor="a"),
    "create_deployment": lambda w: dict(name="d", models=["models:/m/1"], reason="r"),
    "promote_deployment": lambda w: dict(name="d", version=1, to="Archived", reason="r"),
    "show_deployment": lambda w: dict(name="d", version=1),
    "head": lambda w: dict(anchor=w.registry.anchor),
    "show_version": lambda w: dict(name="m", version=1, trust=w.registry.trust),
    "verify_uri": lambda w: dict(uri="models:/m/1", trust=w.registry.trust),
    "inspect": lambda w: dict(uri="models:/m/1", trust=w.registry.trust),
    "lineage": lambda w: dict(uri="models:/m/1", trust=w.registry.trust, descendants=True),
    "copy": lambda w: dict(uri="models:/m/1", to=w.registry.home, name="m2", key=w.key("ci"),
                           actor="a", reason="r"),
    "resolve_deployment": lambda w: dict(uri="deployments:/d/1", trust=w.registry.trust,
                                         min_seq=0, head_file=w.fresh("head")),
    "pull_deployment": lambda w: dict(uri="deployments:/d/1", out=w.fresh("pull"), min_seq=0),
    "load_deployment": lambda w: dict(uri="deployments:/d/1", head_file=w.fresh("head")),
    "set_deployment_alias": lambda w: dict(name="d", alias="canary", version=1, reason="r",
                                           actor="a", dry_run=True),
    "delete_deployment_alias": lambda w: dict(name="d", alias="canary", reason="r", actor="a"),
    "pending_approvals": lambda w: dict(stage="Production", name="m"),
    # the catalog (issue 13): descriptions, tags, search, renames, deletions
    "set_description": lambda w: dict(name="m", text="d", version=1, reason="r", actor="a"),
    "set_tag": lambda w: dict(name="m", key="team", value="x", version=1, reason="r",
                              actor="a"),
    "delete_tag": lambda w: dict(name="m", key="team", version=1, reason="r", actor="a"),
    "model_info": lambda w: dict(name="m"),
    "version_info": lambda w: dict(name="m", version=1),
    "search_models": lambda w: dict(filter="name = 'm'", order_by=["name"], limit=5,
                                    page_token="t"),
    "search_versions": lambda w: dict(name="m", filter="version > 0", order_by="version DESC",
                                      limit=5, page_token="t"),
    "rename_model": lambda w: dict(name="m", new_name="m2", reason="r", actor="a"),
    "delete_model": lambda w: dict(name="m", reason="r", actor="a"),
    "delete_version": lambda w: dict(name="m", version=1, reason="r", actor="a"),
    # a registry server's refusals in the audit trail
    "record_refusal": lambda w: dict(actor="a", action="read", reason="r", name="m", version=1,
                                     target="Staging", permission="p", via="v", endpoint="e"),
    "record_refusal_summary": lambda w: dict(actor="a", count=2, first="t", last="t",
                                             actions={"read": 2}),
}


class _Opaque:
    """A value no public function takes."""

    def __repr__(self) -> str:
        return "<opaque>"


#: Wrong for every argument of every public function.
ALWAYS_WRONG = [_Opaque(), math.nan, {1: ["x", None]}]


def _resolve_case(case: str, world: World) -> tuple[Callable[..., Any], dict[str, Any]]:
    if case.startswith("Registry."):
        method = case.removeprefix("Registry.")
        if method in METHODS:
            return getattr(world.registry, method), METHODS[method](world)
    function, arguments = CASES[case]
    return function, arguments(world)


def _one_line_error(error: MlprovError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message
    assert "Traceback" not in message and "validation error" not in message
    assert error.diagnostics() and "\n" not in error.diagnostics()


#: Arguments whose errors name the role the caller gave them (``what=``), not the argument.
_NAMED_BY_ROLE = {("parse_metrics", "document"): "metrics"}

ALL_CASES = sorted(CASES) + [f"Registry.{m}" for m in sorted(METHODS)]


@pytest.mark.parametrize("case", ALL_CASES)
def test_every_argument_of_every_public_function_refuses_a_wrong_value(case, world):
    function, good = _resolve_case(case, world)
    for argument in good:
        for wrong in ALWAYS_WRONG:
            arguments = {**good, argument: wrong}
            with pytest.raises(MlprovError) as caught:
                function(**arguments)
            _one_line_error(caught.value)
            # The message names the argument (a document: the role it was given).
            named = _NAMED_BY_ROLE.get((case, argument), argument)
            assert named in str(caught.value), (case, argument, str(caught.value))


@pytest.mark.parametrize("case", ALL_CASES)
def test_an_unknown_or_missing_argument_is_an_argument_error(case, world):
    function, good = _resolve_case(case, world)
    with pytest.raises(ArgumentError, match="unexpected keyword argument 'colour'") as caught:
        function(**good, colour="blue")
    assert caught.value.exit_code == EXIT_USAGE
    assert "e.g. " in caught.value.diagnostics() or "help()" in caught.value.diagnostics()
    required = [name for name, value in good.items() if value is not None][:1]
    for name in required:
        arguments = {k: v for k, v in good.items() if k != name}
        try:
            function(**arguments)
        except MlprovError as error:
            _one_line_error(error)


@pytest.mark.parametrize(("call", "message"), [
    (lambda w: mlprov.attest(3, name="m", out=w.fresh("o"), key=w.key("ci")),
     r"\Aattest\(\): model must be a path \(str or os\.PathLike\), not int 3\Z"),
    (lambda w: mlprov.verify(w.model, evidence=None, trust=w.trust),
     r"evidence must be a mlprov.evidence.EvidenceSource or a path"),
    (lambda w: mlprov.verify(w.model, evidence=w.evidence, trust=w.trust, search="parents/"),
     r"search must be a list of paths, not str"),
    (lambda w: mlprov.hash_path("x" * 300), r"each name at most 255"),
    (lambda w: mlprov.hash_path("a\0b"), r"without NUL"),
    (lambda w: mlprov.hash_path("a\ud800b"), r"a path the file system can encode"),
    (lambda w: mlprov.hash_path(w.root / "missing"), r"no such file or directory"),
    (lambda w: mlprov.hash_path(w.model, workers=0), r"workers must be an integer from 1"),
    (lambda w: mlprov.load(["models:/m/1"]), r"uri must be a string, not list"),
    (lambda w: mlprov.load("models:/m/1", registry=w.root / "missing"), r"no registry"),
    (lambda w: mlprov.verify_lineage(w.evidence, trust=w.trust, max_depth=-1),
     r"max_depth must be an integer from 0"),
    (lambda w: mlprov.attest(w.model, name="m", out=w.fresh("o"), key=w.key("ci"),
                             commit=COMMIT, config={"lr": math.inf}),
     r"config must be a mapping \(dict\) of JSON-like values \(finite numbers"),
    (lambda w: mlprov.attest(w.model, name="m", out=w.fresh("o"), key=w.key("ci"),
                             commit=COMMIT, seeds={"torch": True}), r"seeds must be"),
    (lambda w: w.registry.promote("m", "1", to="Staging", reason="r"),
     r"promote\(\): version must be an integer from 1, not str '1'"),
    (lambda w: w.registry.get_version("m", 10**30), r"version must be an integer"),
    (lambda w: w.registry.audit_log(limit=-1), r"limit must be an integer from 0"),
    (lambda w: identity.compute_identity({"code": COMMIT}),
     r"inputs must be an IdentityInputs, not dict"),
    (lambda w: reviews.verify_reviews(str(w.review), w.trust, root_digest=HEX, identity="x"),
     r"paths must be a list of paths, not str"),
    (lambda w: signing.load_private_key(w.root), r"directory|not a regular file"),
    (lambda w: mlprov.verify(w.model, evidence=w.model / "weights.safetensors", trust=w.trust,
                             progress="yes"), r"progress must be a callable"),
])
def test_wrong_values_name_the_argument_and_what_to_pass(call, message, world):
    with pytest.raises(MlprovError, match=message) as caught:
        call(world)
    _one_line_error(caught.value)


def test_the_hint_shows_a_call_from_the_docstring(world):
    with pytest.raises(ArgumentError) as caught:
        mlprov.verify(3, evidence=world.evidence)
    assert caught.value.diagnostics().startswith('e.g. verdict = mlprov.verify("model/"')


def test_an_error_message_with_a_line_break_is_folded_onto_one_line(world):
    with pytest.raises(InputError) as caught:
        mlprov.hash_path(world.root / "two\nlines")
    assert "two lines" in str(caught.value) and "\n" not in str(caught.value)
    assert str(MlprovError("a\x1b[2Jb")) == "a\\x1b[2Jb"


PUBLIC_MODULES = [mlprov, hashing, identity, signing, trust, reviews, evaluation, card, lineage,
                  policy, canonical, mlprov.mlflow]


def _public_functions() -> list[tuple[str, Callable[..., Any]]]:
    import inspect

    found = []
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value) and value.__module__.startswith("mlprov"):
                found.append((f"{value.__module__}.{name}", value))
    for name in ("open", "init", *METHODS):
        found.append((f"Registry.{name}", getattr(Registry, name)))
    return found


#: Building blocks in modules' ``__all__`` that check no arguments at their boundary
#: (they take values other mlprov functions made); every other public function does.
UNCHECKED = {
    "mlprov.hashing.manifest_sort_key", "mlprov.signing.b64decode_any",
    "mlprov._signing.interface.pae", "mlprov.signing.passphrase_from_env_or_prompt",
    "mlprov.reviews.evidence_verified", "mlprov.reviews.provenance_digest",
    "mlprov.reviews.signer_id", "mlprov.reviews.signer_json",
    "mlprov.evaluation.build_eval_statement", "mlprov.evaluation.eval_schema",
    "mlprov._internal.cardfields.format_metric",  # mlprov.evaluation's, defined there
    "mlprov.evaluation.read_eval", "mlprov.card.card_facts",
    "mlprov.card.card_from_verdict", "mlprov.card.card_metadata", "mlprov.card.metadata_yaml",
    "mlprov.card.render_card", "mlprov.lineage.read_parents", "mlprov.policy.engine_name",
    "mlprov.policy.input_schema", "mlprov.policy.shipped_policies_dir",
    "mlprov.canonical.canonical_json",
}


def test_the_unchecked_list_is_exactly_the_unchecked_public_functions():
    unchecked = {name for name, f in _public_functions()
                 if getattr(f, "__wrapped__", None) is None}
    assert unchecked == UNCHECKED


@pytest.mark.parametrize(("name", "function"),
                         [(n, f) for n, f in _public_functions() if n not in UNCHECKED],
                         ids=lambda v: str(v))
def test_every_checked_public_function_shows_a_call(name, function):
    import inspect

    doc = inspect.getdoc(function) or ""
    assert getattr(function, "__wrapped__", None) is not None, name
    assert "\nExample:" in doc or "Example::" in doc, name
    assert "(" in doc.split("Example:")[-1], name


# --- hypothesis: arbitrary JSON-ish values at each argument of the main entry points --------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=8)

ENTRY_POINTS = ["attest", "verify", "compute_identity", "code_from_commit", "parse_data_spec",
                "hash_path", "hash_file", "load", "Registry.resolve", "Registry.load",
                "make_review", "verify_reviews", "Registry.add_review", "verify_lineage"]


@pytest.mark.parametrize("case", ENTRY_POINTS)
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrary_values_never_escape_as_anything_but_mlprov_errors(
        case, data, world, tmp_path_factory, monkeypatch):
    function, good = _resolve_case(case, world)
    argument = data.draw(st.sampled_from(sorted(good)), label="argument")
    value = data.draw(JSONISH, label="value")
    # A relative path names something under a scratch directory, never the checkout.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        function(**{**good, argument: value})
    except MlprovError as error:
        _one_line_error(error)
