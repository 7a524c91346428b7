"""MLflow's model registry ``AbstractStore`` on an mlprov registry: every change gated and audited.

``MLFLOW_REGISTRY_URI=mlprov://PATH`` makes MLflow build one :class:`MlprovRegistryStore`
per process (entry point ``mlflow.model_registry_store``), and every registry call of
unchanged MLflow code lands here:

- ``create_model_version`` (``mlflow.register_model``) finds the model MLflow stored and
  the evidence :func:`mlprov.mlflow.log_evidence` logged next to it
  (:mod:`.sources`), downloads both fresh and calls :meth:`Registry.register`, which
  verifies them against the registry's trust; a model without evidence is refused;
- ``set_registered_model_alias`` and ``transition_model_version_stage`` are
  :meth:`Registry.set_alias` and :meth:`Registry.promote`: gated by the registry's
  policies, signed and audited; a denial raises ``PERMISSION_DENIED`` with the policy's
  reasons;
- a version's ``run_id`` is the MLflow run it was registered from, recorded at its
  registration as the tag ``mlprov.mlflow_run_id``: display data, like MLflow's own
  ``run_id`` (nothing mlprov decides reads it; the signed provenance names the run);
- every version's ``source`` and download URI is ``mlprov-verified://...``, so
  ``mlflow.pyfunc.load_model("models:/NAME@ALIAS")`` downloads through
  :class:`~mlprov._mlflow.artifacts.VerifiedArtifactRepository`, which hands out only
  bytes the registry verified; aliases and stages are resolved with
  :meth:`Registry.resolve` (the decision that put the version there must be in the
  signed audit log).

Every name, alias, version, tag and filter MLflow passes is hostile: checked by
mlprov's own grammar before use, never pasted into text that is parsed again. MLflow
calls this from one object per process (and from the server's threads): every call
holds one lock. Errors are mapped by :mod:`.errors`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry.abstract_store import AbstractStore

from mlprov._internal.mlflowrun import check_run_id
from mlprov._internal.names import check_alias, check_name, check_version, parse_version
from mlprov._mlflow import sources
from mlprov._mlflow.errors import already_exists, invalid, mapped, not_supported
from mlprov._mlflow.locations import open_location, parse_store_uri, verified_uri
from mlprov.errors import InputError, VerificationError
from mlprov.registry import ModelInfo, ModelUri, NotFoundError, Registry, Stage, VersionInfo
from mlprov.registry._records import default_actor
from mlprov.registry._uri import parse_stage
from mlprov.registry.interface import VersionRecord

__all__ = ["FACT_TAGS", "RUN_TAG", "SOURCE_TRACKING_ENV", "MlprovRegistryStore"]

#: Tags every version carries, read from the registry's record (read-only: a request
#: setting a tag under ``mlprov.`` is refused).
FACT_TAGS = ("mlprov.identity", "mlprov.root_digest", "mlprov.reproducible")
#: The MLflow run a version was registered from (``runs:/<run>/...``, or the LoggedModel's
#: source run), set by the store once, at the version's first registration, and shown as
#: MLflow's ``ModelVersion.run_id``. Display data: an audited tag like any other, which
#: anyone allowed to tag the version (``mlprov tag``) could change; mlprov never decides
#: anything on it. The run the builder signed for is the provenance's invocation id.
RUN_TAG = "mlprov.mlflow_run_id"
_RESERVED_PREFIX = "mlprov."
_PROMPT_TAG = "mlflow.prompt.is_prompt"
#: What MLflow's client adds to every model search to leave prompts out. An mlprov
#: registry holds no prompts (and refuses the tag), so the clause is true of every model
#: and is dropped when it is exactly MLflow's text, never parsed or rewritten otherwise.
_NO_PROMPTS = "tag.`mlflow.prompt.is_prompt` != 'true'"
#: Where the store reads the models it registers, when not from the tracking URI MLflow
#: gives it: behind ``mlflow server --serve-artifacts`` the server's own URL
#: (``mlflow-artifacts:/`` locations are not readable from a ``sqlite:`` backend URI).
SOURCE_TRACKING_ENV = "MLPROV_MLFLOW_TRACKING_URI"
_MAX_RESULTS = 200_000
_PAGE = 1000  # the registry's largest page: longer MLflow pages are read page by page


def _millis(text: str) -> int:
    """An RFC 3339 time as MLflow's milliseconds since the epoch."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _now_millis() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def _version(value: object) -> int:
    """MLflow's version (``1`` from entities, ``"1"`` from URIs and REST) as mlprov's int."""
    if isinstance(value, str):
        return parse_version(value)
    return check_version(value)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} is not a string: {type(value).__name__}")
    return value


def _max_results(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_RESULTS:
        raise InputError(f"max_results must be an integer from 1 to {_MAX_RESULTS}: {value!r}")
    return value


def _order_by(order_by: Any) -> list[str] | None:
    if not order_by:
        return None
    if isinstance(order_by, str):
        return [order_by]
    items = _bounded(order_by, 10, "order_by clauses")
    return [_text(item, "order_by") for item in items]


def _bounded(values: Any, most: int, what: str) -> list[Any]:
    """At most ``most`` values from a request: more is refused, never cut."""
    items: list[Any] = []
    for item in values:
        if len(items) == most:
            raise InputError(f"more than {most} {what}")
        items.append(item)
    return items


def _run_id(value: str | None) -> str:
    """The run id a version's :data:`RUN_TAG` holds, or "" (none, or not a run id)."""
    try:
        return check_run_id(value) if value is not None else ""
    except InputError:
        return ""


def _token(token: object) -> str | None:
    if token is None or token == "":
        return None
    return _text(token, "page token")


class MlprovRegistryStore(AbstractStore):  # type: ignore[misc]  # MLflow is untyped here
    """MLflow's registry store on :class:`mlprov.registry.Registry` (see the module docstring).

    Built by MLflow from ``MLFLOW_REGISTRY_URI`` (``mlprov://PATH``,
    ``mlprov+postgresql://...``, ``mlprov+sqlite:///...``, ``mlprov+https://HOST``: then
    ``self.registry`` is :class:`mlprov.server.RemoteRegistry`, which offers the same
    methods and verifies every answer with the registry key it pinned).
    """

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None) -> None:
        super().__init__(store_uri, tracking_uri)
        self.store_uri = store_uri
        self.tracking_uri = os.environ.get(SOURCE_TRACKING_ENV) or tracking_uri
        self._lock = threading.RLock()
        with mapped():
            location = parse_store_uri(store_uri or "mlprov://")
            self.location = location
            self.registry = open_location(location)

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _call(self) -> Iterator[None]:
        """One call: the store's lock held, mlprov's errors raised as MLflow's."""
        with self._lock, mapped():
            yield

    def _client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def _reason(self, method: str) -> str:
        return f"MLflow {method}"

    # Reads go through the registry's façade only (model_info, version_info, the
    # searches, resolve, iter_versions), as a registry server's client offers them.

    def _exists(self, name: str) -> bool:
        try:
            self.registry.model_info(name)
        except NotFoundError:
            return False
        return True

    def _in_stage(self, name: str, stage: Stage) -> VersionRecord | None:
        """The newest version in ``stage``: resolved through the signed log, except Archived.

        An Archived version is never resolved (that is refused, or audited as a use):
        it is read from the version listing.
        """
        if stage is Stage.ARCHIVED:
            archived = [r for r in self.registry.iter_versions(name) if r.stage is stage]
            return max(archived, key=lambda r: r.version) if archived else None
        try:
            record: VersionRecord = self.registry.resolve(ModelUri(name=name, stage=stage)).record
        except NotFoundError:
            if not self._exists(name):
                raise
            return None
        return record

    def _entity(self, info: VersionInfo) -> ModelVersion:
        """A version as MLflow shows it: its tags, and the registry's facts as ``mlprov.`` tags."""
        created = _millis(info.created_at)
        facts = {"mlprov.identity": info.identity, "mlprov.root_digest": info.root_digest,
                 "mlprov.reproducible": "true" if info.reproducible else "false"}
        tags = {**dict(info.tags), **facts}
        return ModelVersion(
            name=info.name, version=str(info.version), creation_timestamp=created,
            last_updated_timestamp=created, current_stage=info.stage.value,
            description=info.description,
            source=verified_uri(self.registry.registry_id, info.name, info.version),
            tags=[ModelVersionTag(k, v) for k, v in sorted(tags.items())],
            aliases=sorted(info.aliases), run_id=_run_id(info.tags.get(RUN_TAG)))

    def _version_entity(self, name: str, version: int) -> ModelVersion:
        return self._entity(self.registry.version_info(name, version))

    def _registered_model(self, model: ModelInfo) -> RegisteredModel:
        """The model with its newest version in None, Staging and Production, and aliases."""
        name = model.name
        latest = [self.registry.version_info(name, r.version)
                  for stage in (Stage.NONE, Stage.STAGING, Stage.PRODUCTION)
                  if (r := self._in_stage(name, stage)) is not None]
        created = _millis(model.created_at)
        return RegisteredModel(
            name=name, creation_timestamp=created,
            last_updated_timestamp=max((_millis(v.created_at) for v in latest),
                                       default=created),
            description=model.description,
            latest_versions=[self._entity(v) for v in latest],
            tags=[RegisteredModelTag(k, v) for k, v in model.tags.items()],
            aliases=[RegisteredModelAlias(a, str(v)) for a, v in model.aliases.items()])

    def _model_entity(self, name: str) -> RegisteredModel:
        return self._registered_model(self.registry.model_info(name))

    def _search(self, search: Any, limit: int, page_token: str | None
                ) -> tuple[list[Any], str | None]:
        """Up to ``limit`` results of ``search(limit=, page_token=)``, page by page."""
        items: list[Any] = []
        token = page_token
        while True:
            page = search(min(_PAGE, limit - len(items)), token)
            items += page.items
            token = page.next_page_token
            if token is None or len(items) >= limit:
                return items, token

    def _tag(self, name: str, key: str, value: str, version: int | None, method: str) -> None:
        """Set a tag unless it already has that value (MLflow's set is idempotent)."""
        current = (self.registry.version_info(name, version) if version is not None
                   else self.registry.model_info(name)).tags
        if current.get(key) != value:
            self.registry.set_tag(name, key, value, version=version,
                                  reason=self._reason(method), actor=default_actor())

    def _describe(self, name: str, text: str, version: int | None, method: str) -> None:
        """Set a description unless it is the current one ("" clears it)."""
        current = (self.registry.version_info(name, version) if version is not None
                   else self.registry.model_info(name)).description
        if (current or "") != text:
            self.registry.set_description(name, text, version=version,
                                          reason=self._reason(method), actor=default_actor())

    @staticmethod
    def _check_tags(tags: Any) -> list[tuple[str, str]]:
        pairs = []
        for tag in _bounded(tags or [], 100, "tags"):
            key, value = getattr(tag, "key", None), getattr(tag, "value", None)
            if not isinstance(key, str) or not isinstance(value, str):
                raise InputError("a tag's key and value must be strings")
            MlprovRegistryStore._check_key(key)
            pairs.append((key, value))
        return pairs

    @staticmethod
    def _check_key(key: Any) -> str:
        text = _text(key, "tag key")
        if text.startswith(_RESERVED_PREFIX):
            raise InputError(f"tag {text[:80]!r}: tags under 'mlprov.' are the registry's own "
                             "facts and read-only")
        if text == _PROMPT_TAG:
            raise InputError(f"tag {_PROMPT_TAG!r}: an mlprov registry holds no prompts")
        return text

    # ------------------------------------------------------------------ registered models

    def create_registered_model(self, name: Any, tags: Any = None, description: Any = None,
                                deployment_job_id: Any = None) -> RegisteredModel:
        """A model exists in mlprov from its first version: a new name stores nothing yet.

        An existing name is ``RESOURCE_ALREADY_EXISTS`` (``mlflow.register_model`` then
        goes on to create a version). Tags or a description for a model that has no
        version yet, and prompts, are refused.
        """
        with self._call():
            check_name(_text(name, "model name"))
            if any(getattr(t, "key", None) == _PROMPT_TAG for t in tags or []):
                not_supported("an MLflow prompt", "an mlprov registry holds verified models "
                              "only; keep prompts in another MLflow registry")
            pairs = self._check_tags(tags)
            if self._exists(name):
                already_exists(f"registered model {name!r} already exists")
            if pairs or description:
                invalid(f"model {name!r} has no version yet: an mlprov model exists from its "
                        "first registered version, so its tags and description are set after "
                        "it (mlflow.register_model first)")
            return RegisteredModel(name=name, creation_timestamp=_now_millis(),
                                   last_updated_timestamp=_now_millis())

    def update_registered_model(self, name: Any, description: Any,
                                deployment_job_id: Any = None) -> RegisteredModel:
        """:meth:`Registry.set_description` of the model (signed and audited; ``""`` clears)."""
        with self._call():
            check_name(_text(name, "model name"))
            text = "" if description is None else _text(description, "description")
            self._describe(name, text, None, "update_registered_model")
            return self._model_entity(name)

    def rename_registered_model(self, name: Any, new_name: Any) -> RegisteredModel:
        """:meth:`Registry.rename_model`: versions, stages, aliases and tags follow."""
        with self._call():
            check_name(_text(name, "model name"))
            check_name(_text(new_name, "new model name"))
            self.registry.rename_model(name, new_name, reason=self._reason(
                "rename_registered_model"), actor=default_actor())
            return self._model_entity(new_name)

    def delete_registered_model(self, name: Any) -> None:
        """:meth:`Registry.delete_model`: tombstones; refused with aliases or in Production."""
        with self._call():
            self.registry.delete_model(check_name(_text(name, "model name")),
                                       reason=self._reason("delete_registered_model"),
                                       actor=default_actor())

    def search_registered_models(self, filter_string: Any = None, max_results: Any = None,
                                 order_by: Any = None, page_token: Any = None) -> PagedList:
        """:meth:`Registry.search_models`: MLflow's filter syntax, parsed by mlprov."""
        with self._call():
            limit = _max_results(max_results, 100)
            query = None if filter_string in (None, "") else _text(filter_string, "filter")
            if query == _NO_PROMPTS:
                query = None
            elif query is not None and query.endswith(f" AND {_NO_PROMPTS}"):
                query = query[:-len(f" AND {_NO_PROMPTS}")]
            order = _order_by(order_by)
            models, token = self._search(
                lambda size, token: self.registry.search_models(
                    query, order_by=order, limit=size, page_token=token),
                limit, _token(page_token))
            return PagedList([self._registered_model(m) for m in models], token)

    def get_registered_model(self, name: Any) -> RegisteredModel:
        """The model, its description, tags, aliases and newest version per stage."""
        with self._call():
            return self._model_entity(check_name(_text(name, "model name")))

    def get_latest_versions(self, name: Any, stages: Any = None) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (default: every stage)."""
        with self._call():
            check_name(_text(name, "model name"))
            wanted = list(Stage) if not stages else list(dict.fromkeys(
                parse_stage(_text(s, "stage")) for s in _bounded(stages, 4, "stages")))
            found = [r for stage in wanted if (r := self._in_stage(name, stage)) is not None]
            return [self._version_entity(name, r.version) for r in found]

    def set_registered_model_tag(self, name: Any, tag: Any) -> None:
        """:meth:`Registry.set_tag` of the model (signed and audited)."""
        with self._call():
            check_name(_text(name, "model name"))
            ((key, value),) = self._check_tags([tag])
            self._tag(name, key, value, None, "set_registered_model_tag")

    def delete_registered_model_tag(self, name: Any, key: Any) -> None:
        """:meth:`Registry.delete_tag` of the model (signed and audited)."""
        with self._call():
            check_name(_text(name, "model name"))
            self.registry.delete_tag(name, self._check_key(key),
                                     reason=self._reason("delete_registered_model_tag"),
                                     actor=default_actor())

    # ------------------------------------------------------------------ model versions

    def create_model_version(self, name: Any, source: Any, run_id: Any = None, tags: Any = None,
                             run_link: Any = None, description: Any = None,
                             local_model_path: Any = None,
                             model_id: str | None = None) -> ModelVersion:
        """Register the model MLflow stored, verified with the evidence logged next to it.

        ``local_model_path`` is not used: the artefact store's bytes are registered.
        The evidence must name the model ``name``. The same model again returns its
        existing version. Tags and a description are set after it, each audited.
        """
        with self._call():
            check_name(_text(name, "model name"))
            pairs = self._check_tags(tags)
            text = None if description in (None, "") else _text(description, "description")
            client = self._client()
            found = sources.find_source(client, source, run_id, model_id)
            with tempfile.TemporaryDirectory(prefix="mlprov-mlflow-register-") as tmp:
                model_dir, evidence_dir = sources.download(client, found, self.tracking_uri,
                                                           Path(tmp))
                self._check_evidence_name(name, evidence_dir, found)
                result = self.registry.register(
                    model_dir, evidence=evidence_dir, actor=default_actor(),
                    reason=f"{self._reason('create_model_version')} from {found.uri}")
            if result.name != name:  # a server's registry: checked only once registered
                invalid(f"the evidence at {found.evidence_uri} is for model {result.name!r}, "
                        f"not {name!r}: it was registered as models:/{result.name}/"
                        f"{result.version}; attest it under {name!r} "
                        f"(log_evidence(..., name={name!r})) to register it as {name!r}")
            self._record_run(result.name, result.version, found.run_id)
            for key, value in pairs:
                self._tag(result.name, key, value, result.version, "create_model_version")
            if text is not None:
                self._describe(result.name, text, result.version, "create_model_version")
            return self._version_entity(result.name, result.version)

    def _record_run(self, name: str, version: int, run_id: str) -> None:
        """Tag a new version with the run it came from (:data:`RUN_TAG`), once.

        The same model registered again from another run keeps the first run, as
        MLflow's version keeps the run that created it. A registry whose tag gate or
        server refuses the tag keeps the version without it (its ``run_id`` is empty):
        display data is not worth failing a registration that is already recorded.
        """
        if RUN_TAG in self.registry.version_info(name, version).tags:
            return
        try:
            self.registry.set_tag(name, RUN_TAG, run_id, version=version,
                                  reason=self._reason("create_model_version"),
                                  actor=default_actor())
        except VerificationError:
            return

    def _check_evidence_name(self, name: str, evidence: Path, found: sources.Source) -> None:
        """Refuse evidence made for another model before anything is recorded under it.

        The provenance is verified with the registry's trust first; evidence that does
        not verify is left to :meth:`Registry.register`, which refuses and audits it.
        """
        from mlprov.bundles import verify_statement_in
        from mlprov.evidence import PROVENANCE_FILE, DirectorySource
        from mlprov.provenance import read_provenance
        from mlprov.trust import Role

        if not isinstance(self.registry, Registry):
            return  # a server's client holds no trust to verify with: checked after
        try:
            verified = verify_statement_in(DirectorySource(evidence), PROVENANCE_FILE,
                                           self.registry.trust, Role.BUILDER)
            claimed = read_provenance(verified.statement, what=PROVENANCE_FILE).name
        except VerificationError:
            return
        if claimed != name:
            invalid(f"the evidence at {found.evidence_uri} is for model {claimed!r}, not "
                    f"{name!r}: register it as {claimed!r}, or attest it under {name!r} "
                    f"(log_evidence(..., name={name!r}))")

    def update_model_version(self, name: Any, version: Any, description: Any) -> ModelVersion:
        """:meth:`Registry.set_description` of the version (signed and audited)."""
        with self._call():
            check_name(_text(name, "model name"))
            number = _version(version)
            text = "" if description is None else _text(description, "description")
            self._describe(name, text, number, "update_model_version")
            return self._version_entity(name, number)

    def transition_model_version_stage(self, name: Any, version: Any, stage: Any,
                                       archive_existing_versions: Any = False) -> ModelVersion:
        """:meth:`Registry.promote`, gated by the stage's policy; a denial is ``PERMISSION_DENIED``.

        ``archive_existing_versions`` then moves every other version in that stage to
        Archived, each its own audited change.
        """
        with self._call():
            check_name(_text(name, "model name"))
            number = _version(version)
            target = parse_stage(_text(stage, "stage"))
            if archive_existing_versions and target not in (Stage.STAGING, Stage.PRODUCTION):
                invalid("archive_existing_versions is only for Staging and Production")
            reason = self._reason("transition_model_version_stage")
            self.registry.promote(name, number, to=target, reason=reason,
                                  actor=default_actor())
            if archive_existing_versions is True:
                others = [r.version for r in self.registry.iter_versions(name)
                          if r.stage is target and r.version != number]
                for other in others:
                    self.registry.promote(name, other, to=Stage.ARCHIVED,
                                          reason=f"{reason} (archive_existing_versions: v"
                                                 f"{number} entered {target.value})",
                                          actor=default_actor())
            return self._version_entity(name, number)

    def delete_model_version(self, name: Any, version: Any) -> None:
        """:meth:`Registry.delete_version`: a tombstone; refused while aliased or in Production."""
        with self._call():
            self.registry.delete_version(check_name(_text(name, "model name")),
                                         _version(version),
                                         reason=self._reason("delete_model_version"),
                                         actor=default_actor())

    def get_model_version(self, name: Any, version: Any) -> ModelVersion:
        """One version; its ``source`` is its ``mlprov-verified://`` URI."""
        with self._call():
            return self._version_entity(check_name(_text(name, "model name")),
                                        _version(version))

    def get_model_version_download_uri(self, name: Any, version: Any) -> str:
        """``mlprov-verified://REGISTRY-ID/NAME/VERSION``: MLflow downloads through mlprov."""
        with self._call():
            info = self.registry.version_info(check_name(_text(name, "model name")),
                                              _version(version))
            return verified_uri(self.registry.registry_id, info.name, info.version)

    def search_model_versions(self, filter_string: Any = None, max_results: Any = None,
                              order_by: Any = None, page_token: Any = None) -> PagedList:
        """:meth:`Registry.search_versions`: MLflow's filter syntax, parsed by mlprov."""
        with self._call():
            limit = _max_results(max_results, 10_000)
            query = None if filter_string in (None, "") else _text(filter_string, "filter")
            order = _order_by(order_by)
            versions, token = self._search(
                lambda size, token: self.registry.search_versions(
                    filter=query, order_by=order, limit=size, page_token=token),
                limit, _token(page_token))
            return PagedList([self._entity(v) for v in versions], token)

    def set_model_version_tag(self, name: Any, version: Any, tag: Any) -> None:
        """:meth:`Registry.set_tag` of the version (signed and audited)."""
        with self._call():
            check_name(_text(name, "model name"))
            number = _version(version)
            ((key, value),) = self._check_tags([tag])
            self._tag(name, key, value, number, "set_model_version_tag")

    def delete_model_version_tag(self, name: Any, version: Any, key: Any) -> None:
        """:meth:`Registry.delete_tag` of the version (signed and audited)."""
        with self._call():
            check_name(_text(name, "model name"))
            self.registry.delete_tag(name, self._check_key(key), version=_version(version),
                                     reason=self._reason("delete_model_version_tag"),
                                     actor=default_actor())

    # ------------------------------------------------------------------ aliases

    def set_registered_model_alias(self, name: Any, alias: Any, version: Any) -> None:
        """:meth:`Registry.set_alias`, gated by the alias's policy; audited either way."""
        with self._call():
            self.registry.set_alias(check_name(_text(name, "model name")),
                                    check_alias(_text(alias, "alias")), _version(version),
                                    reason=self._reason("set_registered_model_alias"),
                                    actor=default_actor())

    def delete_registered_model_alias(self, name: Any, alias: Any) -> None:
        """:meth:`Registry.delete_alias`: never gated, always signed and audited."""
        with self._call():
            self.registry.delete_alias(check_name(_text(name, "model name")),
                                       check_alias(_text(alias, "alias")),
                                       reason=self._reason("delete_registered_model_alias"),
                                       actor=default_actor())

    def get_model_version_by_alias(self, name: Any, alias: Any) -> ModelVersion:
        """:meth:`Registry.resolve`: the alias's decision must be in the signed audit log.

        An alias leading to an Archived version is refused (``RESOURCE_CONFLICT``).
        """
        with self._call():
            uri = ModelUri(name=check_name(_text(name, "model name")),
                           alias=check_alias(_text(alias, "alias")))
            record = self.registry.resolve(uri).record
            return self._version_entity(record.name, record.version)

    def copy_model_version(self, src_mv: Any, dst_name: Any) -> ModelVersion:
        """Refused (``NOT_IMPLEMENTED``, not MLflow's wrapped 500): one registry, one name.

        A version's signed registration names its model; :meth:`Registry.copy` (``mlprov
        copy``) registers a version into another registry, under another name if asked.
        """
        with self._call():
            not_supported("copying a version under another name in the same registry",
                          "mlprov copy models:/NAME/N --to OTHER-REGISTRY [--name NEW] "
                          "copies it into another registry")

    # ------------------------------------------------------------------ webhooks

    def list_webhooks_by_event(self, event: Any, max_results: Any = None,
                               page_token: Any = None) -> PagedList:
        """No MLflow webhooks: mlprov's registry has its own signed hooks (``[[hooks]]``).

        ``mlflow server`` asks after every registry event; the answer is none.
        """
        return PagedList([], None)

    def list_webhooks(self, max_results: Any = None, page_token: Any = None) -> PagedList:
        """None: see :meth:`list_webhooks_by_event`."""
        return PagedList([], None)

    def _no_webhooks(self) -> None:
        not_supported("an MLflow webhook", "the registry's own hooks are signed: "
                      "[[hooks]] in mlprov.toml (mlprov registry set-config)")

    def create_webhook(self, name: Any, url: Any, events: Any, description: Any = None,
                       secret: Any = None, status: Any = None) -> Any:
        """Refused (``NOT_IMPLEMENTED``): mlprov's hooks are configured in ``mlprov.toml``."""
        self._no_webhooks()

    def get_webhook(self, webhook_id: Any) -> Any:
        """Refused (``NOT_IMPLEMENTED``): there are no MLflow webhooks."""
        self._no_webhooks()

    def update_webhook(self, webhook_id: Any, name: Any = None, description: Any = None,
                       url: Any = None, events: Any = None, secret: Any = None,
                       status: Any = None) -> Any:
        """Refused (``NOT_IMPLEMENTED``): there are no MLflow webhooks."""
        self._no_webhooks()

    def delete_webhook(self, webhook_id: Any) -> None:
        """Refused (``NOT_IMPLEMENTED``): there are no MLflow webhooks."""
        self._no_webhooks()

    def test_webhook(self, webhook_id: Any, event: Any = None) -> Any:
        """Refused (``NOT_IMPLEMENTED``): there are no MLflow webhooks."""
        self._no_webhooks()
