"""mlprov behind unchanged MLflow code: a model registry store and a verified-download scheme.

Loaded by MLflow through entry points (``pyproject.toml``), never by ``import mlprov``:

- ``mlflow.model_registry_store``: ``mlprov://PATH`` (a registry directory) and
  ``mlprov+postgresql://...`` / ``mlprov+sqlite:///...`` (a team registry's database)
  select :class:`mlprov._mlflow.store.MlprovRegistryStore`, which maps every method of
  MLflow's registry ``AbstractStore`` onto :class:`mlprov.registry.Registry`;
- ``mlflow.artifact_repository``: ``mlprov-verified://REGISTRY-ID/NAME/VERSION`` (what the
  store gives as a version's ``source`` and download URI) selects
  :class:`mlprov._mlflow.artifacts.VerifiedArtifactRepository`, which hands MLflow's
  loader only bytes the registry verified.

:mod:`.locations` (URIs) imports nothing from MLflow; the other modules import it at the
top and are only imported by MLflow itself (or by code that already has it). See
docs/mlflow.md.
"""

__all__: list[str] = []
