"""Behind ``mlflow server --registry-store-uri mlprov://...``: a denial is HTTP 403 (issue 15).

``mlflow server`` needs the full ``mlflow`` package (flask, flask-cors, graphene,
aiohttp, huey), not mlflow-skinny; the test extra installs it. Without it this module
is skipped, except on CI (``CI=true``), where it fails: .ci/run runs it on the newest
MLflow the test extra resolves to and on the oldest supported. The server is a real
subprocess on 127.0.0.1 whose plugin comes from entry points (a dist-info written from
``pyproject.toml``'s declarations, put on its path), with ``--serve-artifacts``: the
store reads the models it registers through the server itself
(``MLPROV_MLFLOW_TRACKING_URI``). The client loads through ``mlprov-verified://`` with
``MLPROV_REGISTRY`` naming the same registry (a shared disk).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mlflow.conftest import COMMIT, require_mlflow

require_mlflow()

try:
    import mlflow.server  # the full mlflow package
except ImportError:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail("CI needs `mlflow server`: the full mlflow package (pip install -e "
                    "'.[test]' installs it)", pytrace=False)
    pytest.skip("mlflow server needs the full mlflow package (flask, ...), not mlflow-skinny",
                allow_module_level=True)

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.mlflow.plugin_kit import (  # noqa: E402
    NAME,
    ROOT,
    declared_entry_points,
    error_of,
    register_plugin,
    use_registry_uri,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _entry_points(into: Path) -> Path:
    """A dist-info declaring the plugin's entry points, as an install of mlprov writes them."""
    info = into / "mlprov_mlflow_plugin_test-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlprov-mlflow-plugin-test\n"
                                   "Version: 0\n")
    lines = []
    for group, points in declared_entry_points().items():
        if group.startswith("mlflow."):
            lines.append(f"[{group}]")
            lines += [f"{name} = {value}" for name, value in points.items()]
            lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    return into


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path, signers, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from mlprov.registry import Registry

    monkeypatch.setenv("MLPROV_REGISTRY_FSYNC", "off")
    registry = tmp_path / "registry"
    Registry.init(registry, trust=signers.trust).close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    path = os.pathsep.join([str(_entry_points(tmp_path / "plugin")), str(ROOT / "src"),
                            str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "MLPROV_MLFLOW_TRACKING_URI": url,
           "MLPROV_ACTOR": "mlflow-server@test", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_REGISTRY_URI", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
         "--registry-store-uri", f"mlprov://{registry}",
         "--artifacts-destination", (tmp_path / "artifacts").as_uri()],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        start_new_session=True)  # its own group: `mlflow server` starts uvicorn and a job runner
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start:\n"
                                + (tmp_path / "server.log").read_text()[-3000:])
                time.sleep(0.25)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLPROV_REGISTRY", str(registry))  # the client's loads
        register_plugin()  # the client's mlprov-verified repository
        mlflow.set_tracking_uri(url)
        use_registry_uri(monkeypatch, url)
        yield url
    finally:
        _stop_group(process)
        log.close()
        mlflow.set_tracking_uri(None)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (uvicorn, MLflow's job runner).

    Terminating only ``mlflow server`` left its children running after the tests.
    """
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break  # the whole group is gone
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; its children may still be shutting down.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def test_behind_mlflow_server_a_denial_is_http_403(server, signers, tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    import mlprov.mlflow

    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": [0, 0, 0, 1, 1, 1]})
    with mlflow.start_run():
        mlflow.set_tag("mlflow.source.git.commit", COMMIT)
        mlflow.log_params({"C": 1.0})
        mlflow.log_metrics({"accuracy": 1.0, "auc": 0.97})
        model = LogisticRegression(C=1.0).fit(frame[["x"]], frame["y"])
        info = mlflow.sklearn.log_model(model, name=NAME, serialization_format="cloudpickle",
                                        pip_requirements=["scikit-learn"])
        mlprov.mlflow.log_evidence(NAME, key=signers.builder, eval_key=signers.evaluator,
                                   environment=[])

    mv = mlflow.register_model(info.model_uri, NAME)
    assert mv.version == "1" and mv.source.startswith("mlprov-verified://")
    assert mv.run_id == info.run_id  # over REST too
    client = MlflowClient()
    client.transition_model_version_stage(NAME, "1", "Staging")
    denied = error_of(lambda: client.transition_model_version_stage(NAME, "1", "Production"))
    assert denied.error_code == "PERMISSION_DENIED"
    assert "mlprov: denied by production.rego: moving credit-risk v1 to Production: needs 1 " \
        "approval(s)" in denied.message

    # The HTTP answer itself: 403, with mlprov's line.
    request = urllib.request.Request(
        f"{server}/api/2.0/mlflow/registered-models/alias", method="POST",
        data=json.dumps({"name": NAME, "alias": "production", "version": "1"}).encode(),
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 403
    body = json.loads(caught.value.read())
    assert body["error_code"] == "PERMISSION_DENIED"
    assert body["message"].startswith("mlprov: denied by production.rego")

    client.set_registered_model_alias(NAME, "challenger", "1")
    assert client.get_model_version_by_alias(NAME, "challenger").run_id == info.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}@challenger")
    assert list(loaded.predict(frame[["x"]])) == [0, 0, 0, 1, 1, 1]
