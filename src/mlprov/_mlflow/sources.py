"""What ``create_model_version`` registers: the model MLflow stored and its evidence.

``mlflow.register_model`` hands the store a ``source`` and sometimes a ``model_id`` or
``run_id``. Whatever they say, mlprov registers only what it can find again in the
tracking store and verify:

==========================================  ===================================================
source                                      the model, and its evidence
==========================================  ===================================================
``models:/m-<id>`` (or ``model_id``)        the LoggedModel's files (its artefact location);
                                            ``runs:/<source run>/<model name>.mlprov``
``runs:/<run>/<path>``                      the run's LoggedModel named ``path`` as above, else
                                            the run artefacts at ``path`` (MLflow 2) and
                                            ``runs:/<run>/<path>.mlprov``
the run's artefact URI + ``/<path>``         the same, when ``run_id`` is given (MLflow's fluent
(``run_id`` given)                          API resolves ``runs:/`` to it)
anything else                               refused
==========================================  ===================================================

The evidence's place is computed from the checked run id and model name, as
:func:`mlprov.mlflow.log_evidence` logs it; the LoggedModel's ``mlprov.evidence`` tag
is a hint for people and is not followed. The files are downloaded into fresh
directories (MLflow's ``local_model_path`` is not used: what the artefact store holds is
what is registered). Every id and path is checked (:mod:`mlprov._internal.mlflowrun`)
before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from mlprov._internal.mlflowrun import check_artifact_path, check_model_id, check_run_id
from mlprov._mlflow.errors import invalid, refused
from mlprov.errors import InputError
from mlprov.mlflow import EVIDENCE_SUFFIX, MAX_MODELS

__all__ = ["Source", "download", "find_source"]

_SHOWN = 300


@dataclass(frozen=True)
class Source:
    """Where a model to register and its evidence are, as checked values."""

    run_id: str
    #: The model's name in its run: the LoggedModel's name, or the run artefact path.
    name: str
    model_id: str | None
    #: The LoggedModel's artefact location (None: run artefacts at ``name``).
    artifact_uri: str | None

    @property
    def uri(self) -> str:
        """Where MLflow serves the model (``models:/m-<id>`` or ``runs:/<run>/<path>``)."""
        return f"models:/{self.model_id}" if self.model_id else f"runs:/{self.run_id}/{self.name}"

    @property
    def evidence_path(self) -> str:
        """The run artefact path of the evidence: ``<name>.mlprov``."""
        return check_artifact_path(self.name + EVIDENCE_SUFFIX)

    @property
    def evidence_uri(self) -> str:
        """``runs:/<run>/<name>.mlprov``."""
        return f"runs:/{self.run_id}/{self.evidence_path}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "message", exc)).split())
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _logged(client: Any, model_id: str) -> Source:
    try:
        model = client.get_logged_model(model_id)
    except MlflowException as exc:
        invalid(f"MLflow model {model_id} cannot be read from the tracking store: {_short(exc)}")
    try:
        run_id = check_run_id(str(model.source_run_id or ""))
        name = check_artifact_path(str(model.name), what="model name")
    except InputError as exc:
        refused(f"MLflow model {model_id} was not logged in a run mlprov can read ({exc}): "
                "it has no mlprov evidence")
    return Source(run_id=run_id, name=name, model_id=model_id,
                  artifact_uri=str(model.artifact_location))


def _in_run(client: Any, run_id: str, path: str) -> Source:
    """A run's LoggedModel named ``path``, else its artefacts at ``path``."""
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        invalid(f"MLflow run {run_id} cannot be read from the tracking store: {_short(exc)}")
    outputs = list(getattr(run.outputs, "model_outputs", None) or [])
    if len(outputs) > MAX_MODELS:
        invalid(f"MLflow run {run_id} lists {len(outputs)} logged models, more than "
                f"{MAX_MODELS}: register one by its models:/m-<id> URI")
    named: list[str] = []
    for output in outputs:
        try:
            model_id = check_model_id(str(output.model_id))
            model = client.get_logged_model(model_id)
        except (MlflowException, InputError):
            continue  # not one mlprov could register; it is not the one asked for
        if model.name == path and model.source_run_id == run_id and model_id not in named:
            named.append(model_id)
    if len(named) > 1:
        invalid(f"MLflow run {run_id} logged {len(named)} models named {path!r}: register "
                "one by its models:/m-<id> URI")
    if named:
        return _logged(client, named[0])
    return Source(run_id=run_id, name=path, model_id=None, artifact_uri=None)


def find_source(client: Any, source: object, run_id: object, model_id: object) -> Source:
    """Where the model ``create_model_version`` was given is, and its evidence.

    Raises:
        MlflowException: a source mlprov does not register from (``INVALID_PARAMETER_VALUE``).
        InputError: a malformed id or path (named).
    """
    if model_id is not None and model_id != "":
        return _logged(client, check_model_id(str(model_id)))
    if not isinstance(source, str):
        invalid(f"model version source {source!r} is not a URI")
    if source.startswith("models:/m-"):
        return _logged(client, check_model_id(source[len("models:/"):]))
    if source.startswith("models:/"):
        invalid(f"registering {source[:200]!r} again (a registered version as the source) is "
                "not supported: register the logged model (models:/m-<id>)")
    if source.startswith("runs:/"):
        run, _, path = source[len("runs:/"):].partition("/")
        return _in_run(client, check_run_id(run), check_artifact_path(path))
    if isinstance(run_id, str) and run_id:
        checked = check_run_id(run_id)
        try:
            root = str(client.get_run(checked).info.artifact_uri).rstrip("/")
        except MlflowException as exc:
            invalid(f"MLflow run {checked} cannot be read from the tracking store: "
                    f"{_short(exc)}")
        if root and source.startswith(root + "/"):
            return _in_run(client, checked, check_artifact_path(source[len(root) + 1:]))
    invalid(f"model version source {source[:200]!r} is not a model logged to an MLflow run "
            "(models:/m-<id> or runs:/<run>/<path>): mlprov registers only models whose "
            "evidence the run holds")


def download(client: Any, found: Source, tracking_uri: str | None, into: Path) -> tuple[Path, Path]:
    """Download the model and its evidence into new directories under ``into``.

    Raises:
        MlflowException: no evidence next to the model (``PERMISSION_DENIED``: an
            unattested version is never registered), or the store failed.
    """
    from mlflow.artifacts import download_artifacts

    model_dir, evidence_dir = into / "model", into / "evidence"
    model_dir.mkdir()
    evidence_dir.mkdir()
    try:
        listed = client.list_artifacts(found.run_id, found.evidence_path)
    except MlflowException as exc:
        invalid(f"the artefacts of MLflow run {found.run_id} cannot be listed: {_short(exc)}")
    if not listed:
        refused(f"{found.uri} has no mlprov evidence at {found.evidence_uri}: registration "
                "refused, every version of an mlprov registry is verified (log it in the "
                f"training run: mlprov.mlflow.log_evidence({found.name!r}, key=...), or "
                "mlprov.mlflow.autolog())")
    try:
        if found.artifact_uri is not None:
            local = download_artifacts(artifact_uri=found.artifact_uri, dst_path=str(model_dir),
                                       tracking_uri=tracking_uri)
        else:
            local = download_artifacts(run_id=found.run_id, artifact_path=found.name,
                                       dst_path=str(model_dir), tracking_uri=tracking_uri)
        evidence = download_artifacts(run_id=found.run_id, artifact_path=found.evidence_path,
                                      dst_path=str(evidence_dir), tracking_uri=tracking_uri)
    except (MlflowException, OSError) as exc:
        invalid(f"downloading {found.uri} and its evidence failed: {_short(exc)}")
    model_path, evidence_path = Path(local), Path(evidence)
    for path, base in ((model_path, model_dir), (evidence_path, evidence_dir)):
        if not path.resolve().is_relative_to(base.resolve()) or not path.is_dir():
            invalid(f"MLflow returned {found.uri} outside the download directory")
    return model_path, evidence_path
