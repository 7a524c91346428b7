"""A real MLflow tracking store per test: SQLite in tmp_path, artefacts in tmp_path.

MLflow builds a new SQLite store with its alembic migrations (about 2 s), so the
session builds one empty store and every test starts from a copy of its file. Each
test trains a tiny real scikit-learn model in a real run (git commit tag, params, a
CSV dataset input, metrics, ``mlflow.sklearn.log_model``), with the tracking URI and
the working directory set for that test only. Nothing leaves the machine: MLflow's
telemetry is off.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMMIT

NEEDS = ("mlflow", "alembic", "sklearn", "pandas")


def require_mlflow() -> None:
    """Skip a module's tests when the test extra's MLflow parts are missing (fail on CI)."""
    for module in NEEDS:
        try:
            importlib.import_module(module)
        except ImportError:
            if os.environ.get("CI") == "true":
                raise
            pytest.skip(f"{module} is not installed (pip install -e '.[test]')",
                        allow_module_level=True)


def _release(version: str) -> tuple[int, int]:
    """``3.17.2`` -> ``(3, 17)``."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty MLflow SQLite store for the session to copy."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    import mlflow

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@dataclass
class Tracking:
    """A test's tracking store, experiment and data directory."""

    uri: str
    db: Path
    experiment_id: str
    root: Path

    def train(self, *, name: str = "credit-risk", params: dict[str, Any] | None = None,
              metrics: dict[str, float] | None = None, commit: str | None = COMMIT,
              dataset: str | None = "data/train.csv",
              inside: Callable[[Any], Any] | None = None) -> tuple[str, Any, Any]:
        """Train and log a tiny model in a new run; ``inside(info)`` runs before it ends.

        Returns (run id, the ModelInfo, what ``inside`` returned).
        """
        import mlflow
        import mlflow.sklearn
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": [0, 0, 0, 1, 1, 1]})
        with mlflow.start_run(experiment_id=self.experiment_id) as run:
            if commit is not None:
                mlflow.set_tag("mlflow.source.git.commit", commit)
            mlflow.log_params(params if params is not None else {"C": 1.0, "max_iter": 50})
            if dataset is not None:
                path = self.root / dataset
                path.parent.mkdir(parents=True, exist_ok=True)
                frame.to_csv(path, index=False)
                mlflow.log_input(mlflow.data.from_pandas(frame, source=dataset, name="train",
                                                         targets="y"), context="training")
            model = LogisticRegression(C=1.0, max_iter=50).fit(frame[["x"]], frame["y"])
            for key, value in (metrics if metrics is not None
                               else {"accuracy": 1.0, "auc": 0.97}).items():
                mlflow.log_metric(key, value)
            info = mlflow.sklearn.log_model(model, name=name, serialization_format="cloudpickle",
                                            pip_requirements=["scikit-learn"])
            extra = inside(info) if inside is not None else None
        return run.info.run_id, info, extra

    def download(self, uri: str, into: Path) -> Path:
        """Download ``uri`` (models:/..., runs:/...) into the new directory ``into``.

        MLflow before 3.18 writes a ``registered_model_meta`` file (the registered name
        and version) into every model directory it downloads from a ``models:/`` URI, on
        the caller's side: not a file of the model, and so not in its signed manifest.
        It is removed, as docs/mlflow.md tells users to; from 3.18 on there is none.
        """
        import mlflow
        from mlflow.artifacts import download_artifacts

        into.mkdir(parents=True)
        local = Path(download_artifacts(artifact_uri=uri, dst_path=str(into),
                                        tracking_uri=self.uri))
        if uri.startswith("models:/") and _release(mlflow.__version__) < (3, 18):
            (local / "registered_model_meta").unlink(missing_ok=True)
        return local

    def model_files(self, model_id: str) -> Path:
        """Where the artefact store keeps a LoggedModel's files (a local directory here)."""
        import mlflow
        from mlflow.utils.file_utils import local_file_uri_to_path

        location = mlflow.MlflowClient(self.uri).get_logged_model(model_id).artifact_location
        return Path(local_file_uri_to_path(location))


@pytest.fixture
def tracking(_empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[Tracking]:
    """A fresh tracking store (a copy of the session's empty one) used by this test only."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    db = tmp_path / "mlflow.db"
    shutil.copyfile(_empty_store, db)
    uri = f"sqlite:///{db}"
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    with _use_tracking_uri(uri):
        experiment_id = mlflow.create_experiment(
            "train", artifact_location=(tmp_path / "artifacts").as_uri())
        try:
            yield Tracking(uri=uri, db=db, experiment_id=experiment_id, root=root)
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()


# The registry plugin's fixtures (tests/mlflow/plugin_kit.py), for every module here.
from tests.mlflow.plugin_kit import mlprov_registry, signers  # noqa: E402

__all__ = ["COMMIT", "Tracking", "mlprov_registry", "require_mlflow", "signers"]
