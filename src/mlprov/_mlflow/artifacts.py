"""``mlprov-verified://``: MLflow's loader gets a version's files only through mlprov's checks.

The registry store gives every version this URI as its ``source`` and download URI,
so ``mlflow.pyfunc.load_model("models:/NAME@ALIAS")``, ``mlflow.artifacts.
download_artifacts(...)`` and every other ``models:/NAME/...`` load end in
:meth:`VerifiedArtifactRepository.download_artifacts`, which calls
:meth:`Registry.pull`: the registration decision, the evidence against the registry's
trust and every byte of every file (copied out of the blob store and re-hashed on the
way) are verified before anything is written, into a fresh directory; a tampered
file fails the load with mlprov's message and leaves nothing behind.

Which registry: the URI names one by its id, and this process opens the registry it
is configured for (the ``registry_uri`` MLflow passes, else ``mlflow.get_registry_uri()``
when it is an ``mlprov`` URI, else mlprov's default: ``$MLPROV_REGISTRY``,
``$MLPROV_HOME``, ``~/.mlprov``); a registry with another id is refused.

The repository is read-only: logging or deleting artefacts through it is refused.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, RESOURCE_DOES_NOT_EXIST
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from mlprov._mlflow.errors import PREFIX, mapped
from mlprov._mlflow.locations import (
    StoreKind,
    StoreLocation,
    VersionRef,
    check_verified_root,
    is_store_uri,
    open_location,
    parse_store_uri,
    parse_verified_uri,
)
from mlprov.registry import ModelUri, Registry

__all__ = ["VerifiedArtifactRepository"]


def _place(source: Path, target: Path) -> None:
    """Move the verified file or tree ``source`` (ours, private) to ``target``."""
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for child in source.iterdir():
            _place(child, target / child.name)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(source, target)


class VerifiedArtifactRepository(ArtifactRepository):  # type: ignore[misc]  # MLflow untyped
    """A read-only artefact repository handing out only verified model versions."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None,
                 registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        with mapped():
            # The URI may stop at the name (MLflow splits off the last part): checked
            # in full with the path each call names.
            check_verified_root(artifact_uri)

    # ------------------------------------------------------------------ which registry

    def _location(self) -> StoreLocation:
        import mlflow

        for candidate in (self.registry_uri, mlflow.get_registry_uri()):
            if is_store_uri(candidate):
                return parse_store_uri(str(candidate))
        return StoreLocation(StoreKind.DIRECTORY, None)

    @contextmanager
    def _registry(self, ref: VersionRef) -> Iterator[Registry]:
        registry = open_location(self._location())
        try:
            ref.check_registry(registry.registry_id)
            yield registry
        finally:
            registry.close()

    def _ref(self, artifact_path: str | None) -> VersionRef:
        return parse_verified_uri(self.artifact_uri, artifact_path or None)

    @staticmethod
    def _uri(ref: VersionRef) -> str:
        return str(ModelUri(name=ref.name, version=ref.version))

    @contextmanager
    def _pulled(self, ref: VersionRef, near: Path) -> Iterator[Path]:
        """The version's files, verified, in a new private directory beside ``near``."""
        near.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".mlprov-verified-", dir=near))
        try:
            with self._registry(ref) as registry:
                out = work / "model"
                registry.pull(self._uri(ref), out)
            chosen = out.joinpath(*ref.path)
            if ref.path and not chosen.exists():
                raise MlflowException(f"{PREFIX}{self._uri(ref)} has no file or directory "
                                      f"{ref.subpath!r}", error_code=RESOURCE_DOES_NOT_EXIST)
            yield chosen
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------------ reads

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
        """Pull the version (everything verified), then place ``artifact_path`` in ``dst_path``.

        Returns the local path of ``artifact_path`` under ``dst_path`` (a new
        temporary directory when not given), as MLflow's repositories do.
        """
        with mapped():
            ref = self._ref(artifact_path)
            destination = Path(dst_path) if dst_path else Path(
                tempfile.mkdtemp(prefix="mlprov-download-"))
            target = destination.joinpath(*ref.path)
            with self._pulled(ref, destination) as source:
                _place(source, target)
            return str(target)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        with mapped():
            ref = self._ref(remote_file_path)
            local = Path(local_path)
            with self._pulled(ref, local.parent) as source:
                if not source.is_file():
                    raise MlflowException(f"{PREFIX}{remote_file_path!r} is not a file of "
                                          f"{self._uri(ref)}", error_code=RESOURCE_DOES_NOT_EXIST)
                _place(source, local)

    def list_artifacts(self, path: str | None = None) -> list[Any]:
        """The files directly under ``path`` of the version, from its verified checkout."""
        with mapped():
            ref = self._ref(path)
            with self._registry(ref) as registry:
                root = Path(registry.load(self._uri(ref)))
                base = root.joinpath(*ref.path)
                if not base.exists():
                    return []
                if base.is_file():
                    return []
                prefix = (path or "").strip("/")
                return [FileInfo(posixpath.join(prefix, child.name) if prefix else child.name,
                                 child.is_dir(), None if child.is_dir() else child.stat().st_size)
                        for child in sorted(base.iterdir())]

    # ------------------------------------------------------------------ writes: refused

    def _read_only(self) -> None:
        raise MlflowException(f"{PREFIX}{self.artifact_uri} is a registered version: its files "
                              "are read-only (register a new version instead)",
                              error_code=PERMISSION_DENIED)

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Refused: a registered version's files never change."""
        self._read_only()

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Refused: a registered version's files never change."""
        self._read_only()

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Refused: a registered version's files never change."""
        self._read_only()
