"""MLflow's registry API on a registry behind ``mlprov server`` (``mlprov+https://HOST``).

The same MLflow calls as ``test_registry_workflow.py``, with
``MLFLOW_REGISTRY_URI=mlprov+http://127.0.0.1:PORT`` (plain HTTP only on loopback) and an
API token in ``$MLPROV_TOKEN``: the store and the verified downloads go through
:class:`mlprov.server.RemoteRegistry`, which verifies every answer with the registry key
it pinned. A real server (uvicorn, the fixture of ``tests/server``) on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mlflow.conftest import require_mlflow

require_mlflow()

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.mlflow.plugin_kit import (  # noqa: E402
    NAME,
    attested,
    error_of,
    register_plugin,
    use_registry_uri,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture
def mlprov_server(tmp_path: Path, signers, tracking, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[str]:
    """``mlprov server`` over a fresh registry; MLflow's registry URI names it."""
    from mlprov.registry import Registry
    from mlprov.server import ServerConfig, token_store
    from tests.server.conftest import start_server, stop_server

    monkeypatch.setenv("MLPROV_REGISTRY_FSYNC", "off")
    monkeypatch.setenv("MLPROV_CACHE_HOME", str(tmp_path / "client-cache"))
    registry = tmp_path / "registry"
    Registry.init(registry, trust=signers.trust).close()
    with Registry.open(registry) as opened:
        tokens = token_store(opened)
        secret, _ = tokens.issue(principal="ml-engineer", roles=["admin"], created_by="test",
                                 expires_at=None)
        tokens.close()
    server, thread, url = start_server(str(registry), ServerConfig())
    monkeypatch.setenv("MLPROV_TOKEN", secret)
    register_plugin()
    use_registry_uri(monkeypatch, f"mlprov+{url}")
    try:
        yield url
    finally:
        stop_server(server, thread)


def test_mlflow_through_mlprov_server(mlprov_server, tracking, signers):
    info = attested(tracking, signers)
    mv = mlflow.register_model(info.model_uri, NAME, tags={"team": "risk"})
    assert mv.version == "1" and mv.source.startswith("mlprov-verified://")
    assert mv.tags["team"] == "risk" and mv.run_id == info.run_id
    client = MlflowClient()
    client.transition_model_version_stage(NAME, "1", "Staging")
    denied = error_of(lambda: client.set_registered_model_alias(NAME, "production", "1"))
    assert denied.error_code == "PERMISSION_DENIED"
    assert denied.message.startswith("mlprov: denied by production.rego: pointing "
                                     "credit-risk@production at v1")
    client.set_registered_model_alias(NAME, "challenger", "1")
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@challenger")
    assert list(model.predict(pd.DataFrame({"x": [0.0, 5.0]}))) == [0, 1]
    assert [(v.version, v.run_id) for v in client.search_model_versions(f"name = '{NAME}'")] \
        == [("1", info.run_id)]
    assert client.get_registered_model(NAME).aliases == {"challenger": "1"}

    other = error_of(lambda: mlflow.register_model(info.model_uri, "fraud"))
    assert other.error_code == "INVALID_PARAMETER_VALUE"
    assert "is for model 'credit-risk', not 'fraud'" in other.message


def test_a_refused_token_is_unauthenticated(mlprov_server, monkeypatch):
    from mlprov._mlflow.store import MlprovRegistryStore

    monkeypatch.setenv("MLPROV_TOKEN", "mlpt_not-a-token")

    def call():
        MlprovRegistryStore(f"mlprov+{mlprov_server}").get_registered_model(NAME)

    error = error_of(call)
    assert error.error_code == "UNAUTHENTICATED" and error.message.startswith("mlprov: ")
