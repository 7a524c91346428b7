"""The registry store and verified-download repository one method at a time (issue 15 item 1).

Real MLflow clients against :class:`mlprov._mlflow.store.MlprovRegistryStore`: the
entry points pyproject.toml declares, all of MLflow's abstract methods implemented,
every refusal an ``MlflowException`` with its error code and mlprov's one line, hostile
names and values refused before use, a team registry named by its database URL, and
``mlprov-verified://`` downloads (whole, one file, refusing another registry, read-only).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tests.mlflow.conftest import require_mlflow

require_mlflow()

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag  # noqa: E402
from mlflow.store.model_registry.abstract_store import AbstractStore  # noqa: E402

from mlprov._mlflow.artifacts import VerifiedArtifactRepository  # noqa: E402
from mlprov._mlflow.store import MlprovRegistryStore  # noqa: E402
from tests.mlflow.plugin_kit import (  # noqa: E402
    ARTIFACT_GROUP,
    NAME,
    STORE_GROUP,
    attested,
    declared_entry_points,
    error_of,
    load_entry_point,
    register_plugin,
    use_registry_uri,
)
from tests.registry.conftest import postgres_server, postgres_url  # noqa: E402, F401

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_pyproject_declares_the_entry_points_mlflow_loads():
    groups = declared_entry_points()
    assert set(groups[STORE_GROUP]) == {"mlprov", "mlprov+postgresql",
                                        "mlprov+postgresql+psycopg", "mlprov+postgres",
                                        "mlprov+sqlite", "mlprov+https", "mlprov+http"}
    assert {load_entry_point(v) for v in groups[STORE_GROUP].values()} == {MlprovRegistryStore}
    assert groups[ARTIFACT_GROUP] == {
        "mlprov-verified": "mlprov._mlflow.artifacts:VerifiedArtifactRepository"}
    assert load_entry_point(groups[ARTIFACT_GROUP]["mlprov-verified"]) \
        is VerifiedArtifactRepository


def test_every_abstract_method_of_mlflows_store_is_implemented():
    # AbstractStore's @abstractmethods are not enforced (a Python 2 __metaclass__): a
    # missing one would silently return None.
    abstract = {name for name, member in inspect.getmembers(AbstractStore)
                if getattr(member, "__isabstractmethod__", False)}
    assert len(abstract) >= 21
    missing = {name for name in abstract if name not in MlprovRegistryStore.__dict__}
    assert missing == set()
    for name in abstract:  # MLflow calls some by keyword: the parameter names must match
        ours = inspect.signature(getattr(MlprovRegistryStore, name)).parameters
        theirs = inspect.signature(getattr(AbstractStore, name)).parameters
        assert list(ours) == list(theirs), name


def test_refusals_carry_mlflow_error_codes_and_mlprovs_line(tracking, mlprov_registry,
                                                            signers):
    info = attested(tracking, signers)
    mlflow.register_model(info.model_uri, NAME)
    client = MlflowClient()

    def code(call):
        return error_of(call).error_code

    # Unknown things: RESOURCE_DOES_NOT_EXIST, named.
    missing = error_of(lambda: client.get_registered_model("fraud"))
    assert (missing.error_code, missing.message) == (
        "RESOURCE_DOES_NOT_EXIST", "mlprov: no model named 'fraud' in the registry")
    assert code(lambda: client.get_model_version(NAME, "7")) == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: client.get_model_version_by_alias(NAME, "canary")) \
        == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: mlflow.pyfunc.load_model(f"models:/{NAME}@canary")) \
        == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: client.set_registered_model_alias(NAME, "canary", "7")) \
        == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: client.delete_registered_model_alias(NAME, "canary")) \
        == "RESOURCE_DOES_NOT_EXIST"

    # The name exists: mlflow.register_model relies on RESOURCE_ALREADY_EXISTS.
    assert code(lambda: client.create_registered_model(NAME)) == "RESOURCE_ALREADY_EXISTS"
    # A new name stores nothing until its first version.
    assert client.create_registered_model("fraud").name == "fraud"
    assert code(lambda: client.get_registered_model("fraud")) == "RESOURCE_DOES_NOT_EXIST"
    assert code(lambda: client.create_registered_model("fraud", tags={"team": "risk"})) \
        == "INVALID_PARAMETER_VALUE"

    # Hostile names, aliases, versions, stages: refused by mlprov's grammar, never used.
    fullwidth = "\uff43\uff52\uff45\uff44\uff49\uff54"  # "credit" in full-width letters
    for name in ("credit risk", "../credit-risk", "credit-risk\n", fullwidth, "", "a" * 201,
                 "credit-risk\u202e"):
        assert code(lambda n=name: client.get_registered_model(n)) == "INVALID_PARAMETER_VALUE"
        assert code(lambda n=name: client.set_registered_model_alias(n, "canary", "1")) \
            == "INVALID_PARAMETER_VALUE"
    for alias in ("Production", "production\n", "v2", "latest", "can ary", "prod\u200b"):
        assert code(lambda a=alias: client.set_registered_model_alias(NAME, a, "1")) \
            == "INVALID_PARAMETER_VALUE"
    store = MlprovRegistryStore(mlflow.get_registry_uri(), tracking.uri)
    for version in ("01", " 1", "1 ", "-1", "1.0", "٣", True, 1.0, None, 0):
        assert code(lambda v=version: store.get_model_version(NAME, v)) \
            == "INVALID_PARAMETER_VALUE"
    assert store.get_model_version(NAME, 1).version == "1"
    assert code(lambda: client.transition_model_version_stage(NAME, "1", "Prod")) \
        == "INVALID_PARAMETER_VALUE"

    # The registry's facts are read-only tags; filters are parsed by mlprov's own grammar.
    assert code(lambda: store.set_model_version_tag(
        NAME, "1", ModelVersionTag("mlprov.root_digest", "sha256:" + "0" * 64))) \
        == "INVALID_PARAMETER_VALUE"
    assert code(lambda: store.delete_model_version_tag(NAME, "1", "mlprov.identity")) \
        == "INVALID_PARAMETER_VALUE"
    for key, value in (("team\n", "risk"), ("", "x"), ("team", "a\x00b"), ("t" * 300, "x")):
        assert code(lambda k=key, v=value: store.set_registered_model_tag(
            NAME, RegisteredModelTag(k, v))) == "INVALID_PARAMETER_VALUE"
    for query in ("name = 'x' OR 1=1", "name='x'; DROP TABLE versions", "name = x",
                  "tags.`a = 'b'", "name = '" + "a" * 10_000 + "'", "metrics.auc > 'NaN'"):
        error = error_of(lambda q=query: client.search_model_versions(q))
        assert error.error_code == "INVALID_PARAMETER_VALUE", query
        assert error.message.startswith("mlprov: ")
    assert code(lambda: client.search_model_versions(max_results=0)) \
        == "INVALID_PARAMETER_VALUE"
    assert code(lambda: client.search_model_versions(order_by=["version ASC"] * 11)) \
        == "INVALID_PARAMETER_VALUE"  # refused, never cut
    assert code(lambda: client.get_latest_versions(NAME, ["Staging"] * 5)) \
        == "INVALID_PARAMETER_VALUE"
    assert code(lambda: client.search_registered_models(page_token="not-a-token")) \
        == "INVALID_PARAMETER_VALUE"
    assert [v.version for v in client.search_model_versions("name = 'credit-risk'")] == ["1"]
    assert client.search_model_versions("name = 'fraud'") == []
    # Prompts live elsewhere.
    assert code(lambda: mlflow.genai.register_prompt("greeting", "Hello {{name}}")) \
        == "NOT_IMPLEMENTED"
    # Nothing above changed the registry (the registration and its run's tag).
    assert [e["kind"] for e in mlprov_registry.audit_log()
            if e["kind"] != "registry.init"] == ["model.register", "version.tag"]


def test_evidence_made_for_another_name_is_refused_before_anything_is_recorded(
        tracking, mlprov_registry, signers):
    info = attested(tracking, signers)
    error = error_of(lambda: mlflow.register_model(info.model_uri, "fraud"))
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert error.message.startswith(f"mlprov: the evidence at runs:/{info.run_id}/"
                                    "credit-risk.mlprov is for model 'credit-risk', not 'fraud'")
    assert mlprov_registry.list_models() == []
    # The same model again is its existing version, not a new one.
    assert mlflow.register_model(info.model_uri, NAME).version == "1"
    assert mlflow.register_model(f"runs:/{info.run_id}/{NAME}", NAME).version == "1"
    assert MlflowClient().create_model_version(NAME, f"runs:/{info.run_id}/{NAME}",
                                               run_id=info.run_id).version == "1"


def test_a_version_shows_the_run_it_was_registered_from(tracking, mlprov_registry, signers):
    from mlprov._mlflow.store import RUN_TAG

    client = MlflowClient()
    first = attested(tracking, signers)
    assert mlflow.register_model(f"runs:/{first.run_id}/{NAME}", NAME).run_id == first.run_id
    second = attested(tracking, signers, params={"C": 0.5, "max_iter": 50})
    assert second.run_id != first.run_id
    assert client.create_model_version(NAME, second.model_uri).run_id == second.run_id
    # The same model again keeps the run that registered it first.
    assert mlflow.register_model(first.model_uri, NAME).run_id == first.run_id

    client.set_registered_model_alias(NAME, "challenger", "2")
    assert client.get_model_version(NAME, "1").run_id == first.run_id
    assert client.get_model_version_by_alias(NAME, "challenger").run_id == second.run_id
    assert [(v.version, v.run_id) for v in client.search_model_versions(f"name = '{NAME}'")] \
        == [("2", second.run_id), ("1", first.run_id)]
    assert [v.run_id for v in client.get_registered_model(NAME).latest_versions] \
        == [second.run_id]
    assert [v.version for v in client.search_model_versions(
        f"tags.`{RUN_TAG}` = '{first.run_id}'")] == ["1"]
    # Recorded once, as an audited tag MLflow's API cannot set.
    tags = [e for e in mlprov_registry.audit_log(name=NAME) if e["kind"] == "version.tag"]
    assert [(e["version"], e["accepted"], e["reason"]) for e in tags] \
        == [(1, True, "MLflow create_model_version"), (2, True, "MLflow create_model_version")]
    refused = error_of(lambda: client.set_model_version_tag(NAME, "1", RUN_TAG, second.run_id))
    assert refused.error_code == "INVALID_PARAMETER_VALUE"
    # Display data only: a value that is not a run id is shown as no run.
    mlprov_registry.set_tag(NAME, RUN_TAG, "../not a run", version=1, reason="test")
    assert client.get_model_version(NAME, "1").run_id == ""


def test_a_registry_gating_tags_keeps_the_version_without_its_run(tracking, mlprov_registry,
                                                                  signers, tmp_path):
    from mlprov.registry._config import DEFAULT_CONFIG

    config = tmp_path / "mlprov.toml"
    config.write_text(DEFAULT_CONFIG + '\n[gates.changes]\ntags = "production.rego"\n')
    mlprov_registry.set_config(config, reason="gate tags")
    info = attested(tracking, signers)
    mv = mlflow.register_model(info.model_uri, NAME)
    assert (mv.version, mv.run_id) == ("1", "")
    kinds = [(e["kind"], e["accepted"]) for e in mlprov_registry.audit_log(name=NAME)]
    assert kinds == [("model.register", True), ("version.tag", False)]  # the denial audited


def test_sources_mlprov_does_not_register_from_are_refused(tracking, mlprov_registry,
                                                           signers, tmp_path):
    info = attested(tracking, signers)
    client = MlflowClient()
    for source in (str(tmp_path), "s3://bucket/model", "models:/credit-risk/1",
                   f"runs:/{info.run_id}/../x", "file:///etc", 42):
        error = error_of(lambda s=source: client.create_model_version(NAME, s))
        assert error.error_code == "INVALID_PARAMETER_VALUE", source
    assert mlprov_registry.list_models() == []


def test_verified_downloads_whole_in_part_and_only_from_the_named_registry(
        tracking, mlprov_registry, signers, tmp_path):
    info = attested(tracking, signers)
    mv = mlflow.register_model(info.model_uri, NAME)

    whole = Path(mlflow.artifacts.download_artifacts(mv.source, dst_path=str(tmp_path / "a")))
    assert sorted(p.name for p in whole.iterdir()) == sorted(
        p.name for p in tracking.model_files(info.model_id).iterdir())
    one = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/1/MLmodel",
                                                   dst_path=str(tmp_path / "b")))
    assert one.name == "MLmodel" and one.read_bytes() == (whole / "MLmodel").read_bytes()
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["MLmodel"]
    listed = mlflow.artifacts.list_artifacts(mv.source)
    assert "1/MLmodel" in {f.path for f in listed}  # relative to the split-off root, as MLflow

    repo = VerifiedArtifactRepository(mv.source)
    assert error_of(lambda: repo.log_artifact(str(one))).error_code == "PERMISSION_DENIED"
    assert error_of(lambda: repo.download_artifacts("../../etc")).error_code \
        == "INVALID_PARAMETER_VALUE"
    assert error_of(lambda: repo.download_artifacts("nope.pkl")).error_code \
        == "RESOURCE_DOES_NOT_EXIST"
    other = mv.source.replace(mlprov_registry.registry_id,
                              "00000000-0000-4000-8000-000000000000")
    error = error_of(lambda: mlflow.artifacts.download_artifacts(other,
                                                                 dst_path=str(tmp_path / "c")))
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert "is a version of registry 00000000-0000-4000-8000-000000000000" in error.message


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_team_registry_named_by_its_database_url(database, tracking, signers, tmp_path,
                                                   monkeypatch, request):
    from mlprov.registry import Registry
    from mlprov.signing import KeyType, generate_key, write_key_pair

    monkeypatch.setenv("MLPROV_REGISTRY_FSYNC", "off")
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "cache"))
    key = tmp_path / "registry.key"
    write_key_pair(generate_key(KeyType.ECDSA_P256), key, None)
    monkeypatch.setenv("MLPROV_REGISTRY_KEY", str(key))
    # postgresql+psycopg://USER@HOST:PORT/DB (tests/pg.py's throwaway server) or SQLite.
    url = request.getfixturevalue("postgres_url") if database == "postgresql" \
        else f"sqlite:///{tmp_path / 'team.db'}"
    Registry.init(url, trust=signers.trust, blobs=str(tmp_path / "blobs"), key=key).close()
    register_plugin()
    use_registry_uri(monkeypatch, f"mlprov+{url}")

    info = attested(tracking, signers)
    mv = mlflow.register_model(info.model_uri, NAME)
    MlflowClient().set_registered_model_alias(NAME, "canary", mv.version)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@canary")
    assert model.metadata.model_id == info.model_id


def test_an_unknown_registry_fails_closed(tracking, tmp_path, monkeypatch):
    register_plugin()
    use_registry_uri(monkeypatch, f"mlprov://{tmp_path / 'nowhere'}")
    error = error_of(lambda: MlflowClient().get_registered_model(NAME))
    assert error.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert error.message.startswith("mlprov: ") and "nowhere" in error.message


def test_descriptions_tags_search_rename_and_delete_are_audited_changes(
        tracking, mlprov_registry, signers):
    registry = mlprov_registry
    client = MlflowClient()
    first = attested(tracking, signers)
    mv = mlflow.register_model(first.model_uri, NAME, tags={"team": "risk"})
    assert mv.tags["team"] == "risk" and mv.tags["mlprov.identity"].startswith("mlid:")
    second = attested(tracking, signers, params={"C": 0.5, "max_iter": 50})
    client.create_model_version(NAME, second.model_uri, description="retrained",
                                tags={"team": "risk", "data": "2026-12"})

    client.update_registered_model(NAME, "Scores loan applications.")
    client.update_registered_model(NAME, "Scores loan applications.")  # the same: no change
    client.set_registered_model_tag(NAME, "owner", "risk-team")
    client.update_model_version(NAME, "1", "first cut")
    client.set_model_version_tag(NAME, "1", "reviewed", "no")
    client.delete_model_version_tag(NAME, "2", "data")
    client.set_registered_model_alias(NAME, "challenger", "2")

    model = client.get_registered_model(NAME)
    assert model.description == "Scores loan applications."
    assert model.tags == {"owner": "risk-team"} and model.aliases == {"challenger": "2"}
    v1, v2 = client.get_model_version(NAME, "1"), client.get_model_version(NAME, "2")
    assert (v1.description, v1.tags["reviewed"], v1.tags["team"]) == ("first cut", "no", "risk")
    assert v2.description == "retrained" and "data" not in v2.tags and v2.aliases == ["challenger"]

    # Search: MLflow's filter syntax, parsed by mlprov; pages of any size.
    found = client.search_model_versions(f"name = '{NAME}' AND tags.team = 'risk'",
                                         order_by=["version ASC"])
    assert [v.version for v in found] == ["1", "2"]
    assert [v.version for v in client.search_model_versions("tags.reviewed = 'no'")] == ["1"]
    page = client.search_model_versions(f"name = '{NAME}'", max_results=1)
    assert len(page) == 1 and page.token
    rest = client.search_model_versions(f"name = '{NAME}'", max_results=5, page_token=page.token)
    assert [v.version for v in page] + [v.version for v in rest] == ["2", "1"]
    assert [m.name for m in client.search_registered_models("name LIKE 'credit%'")] == [NAME]
    assert [m.name for m in mlflow.search_registered_models(filter_string="tags.owner = 'x'")] \
        == []

    # Rename: versions, aliases and tags follow; the old name is gone, with a hint.
    client.rename_registered_model(NAME, "credit-risk-eu")
    moved = client.get_model_version_by_alias("credit-risk-eu", "challenger")
    assert moved.version == "2" and moved.source.endswith("/credit-risk-eu/2")
    gone = error_of(lambda: client.get_registered_model(NAME))
    assert gone.error_code == "RESOURCE_DOES_NOT_EXIST" and "credit-risk-eu" in gone.message
    assert list(mlflow.pyfunc.load_model("models:/credit-risk-eu@challenger")
                .predict(pd.DataFrame({"x": [0.0, 5.0]}))) == [0, 1]

    # Deletion: refused while an alias points at a version; tombstones after.
    blocked = error_of(lambda: client.delete_model_version("credit-risk-eu", "2"))
    assert blocked.error_code == "INVALID_PARAMETER_VALUE" and "alias" in blocked.message
    client.delete_model_version("credit-risk-eu", "1")
    assert error_of(lambda: client.get_model_version("credit-risk-eu", "1")).error_code \
        == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model_alias("credit-risk-eu", "challenger")
    client.delete_registered_model("credit-risk-eu")
    assert client.search_registered_models() == []

    kinds = [e["kind"] for e in registry.audit_log()]
    for kind in ("model.describe", "version.describe", "model.tag", "version.tag",
                 "model.rename", "version.delete", "model.delete"):
        assert kind in kinds, kind
    assert registry.verify_audit().ok


def test_copies_webhooks_and_prompts_are_refused_with_501_not_500(tracking, mlprov_registry,
                                                                 signers):
    info = attested(tracking, signers)
    mlflow.register_model(info.model_uri, NAME)
    client = MlflowClient()
    store = MlprovRegistryStore(mlflow.get_registry_uri(), tracking.uri)
    copy = error_of(lambda: client.copy_model_version(f"models:/{NAME}/1", "credit-risk-eu"))
    assert copy.error_code == "NOT_IMPLEMENTED" and "mlprov copy" in copy.message
    for call in (lambda: store.create_webhook("w", "https://h/x", []),
                 lambda: store.get_webhook("1"), lambda: store.delete_webhook("1"),
                 lambda: store.update_webhook("1", name="x"), lambda: store.test_webhook("1")):
        assert error_of(call).error_code == "NOT_IMPLEMENTED"
    assert list(store.list_webhooks()) == [] and list(store.list_webhooks_by_event("x")) == []
    prompt = error_of(lambda: mlflow.genai.register_prompt("greeting", "Hello {{name}}"))
    assert prompt.error_code == "NOT_IMPLEMENTED"
    assert error_of(lambda: client.set_registered_model_tag(
        NAME, "mlflow.prompt.is_prompt", "true")).error_code == "INVALID_PARAMETER_VALUE"
    assert [m.name for m in client.search_registered_models()] == [NAME]
