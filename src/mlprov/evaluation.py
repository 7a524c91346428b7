"""Evaluation results as a signed claim: the mlprov eval predicate, version 1.

``eval.sigstore.json`` holds an in-toto Statement v1 whose subject is the model
(its name and root digest) and whose predicate type is
``https://mlprov.dev/predicates/eval/v1``. The predicate (JSON Schema:
``mlprov/schemas/eval-v1.schema.json``, documented in ``docs/sbom-eval-card.md``)::

    {"evaluator": {"id": "<URI>", "version": {"mlprov": "0.1.0"}},
     "metrics": {"auc": 0.91, "accuracy": 0.87},       # overall
     "slices": {"age<30": {"auc": 0.88}},              # per subgroup
     "datasets": [{"name": "holdout", "uri": "...", "digest": {"sha256": "<hex>"}}]}

It is signed by a key holding the ``evaluator`` role. Metrics come from a metrics
file (:func:`load_metrics`): ``{"metrics": {...}, "slices": {...}, "datasets": [...],
"evaluator": {...}}``, every part optional but at least one metric; a flat
``{"name": number}`` object is read as overall metrics.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final

from pydantic import ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator

from mlprov import __version__
from mlprov._internal.arguments import PATH, TEXT, checked
from mlprov._internal.cardfields import format_metric as format_metric
from mlprov._internal.display import validator_words
from mlprov._internal.documents import EVAL_PREDICATE_TYPE as EVAL_PREDICATE_TYPE
from mlprov._internal.readers import MAX_METRICS_BYTES, read_bytes
from mlprov.canonical import loads_strict
from mlprov.errors import BundleError, InputError
from mlprov.identity import DataRef
from mlprov.statements import MlprovModel, Statement, sha256_descriptor

__all__ = [
    "EVAL_PREDICATE_TYPE",
    "EVAL_SCHEMA_FILE",
    "EvalDataset",
    "EvalPredicate",
    "Evaluator",
    "MetricsFile",
    "build_eval_statement",
    "eval_schema",
    "format_metric",
    "load_metrics",
    "parse_metrics",
    "read_eval",
]

#: The JSON Schema of the predicate, shipped as package data.
EVAL_SCHEMA_FILE: Final = "schemas/eval-v1.schema.json"

Number = StrictInt | StrictFloat
_METRICS_KEYS = frozenset({"metrics", "slices", "datasets", "evaluator"})
# Signed documents are read leniently: a later minor version may add fields,
# which in-toto says consumers MUST ignore.
_READ = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def _check_metrics(value: dict[str, int | float], where: str) -> dict[str, int | float]:
    for name, number in value.items():
        if not name.strip():
            raise ValueError(f"{where}: a metric has an empty name")
        if not math.isfinite(number):
            raise ValueError(f"{where}: metric {name!r} is not a finite number")
    return value


class Evaluator(MlprovModel):
    """Who or what produced the metrics: a URI (a CI job, an eval harness)."""

    model_config = _READ
    id: str = Field(min_length=1)
    version: dict[str, str] | None = None


class EvalDataset(MlprovModel):
    """An evaluation dataset by name and digest (an in-toto ResourceDescriptor subset)."""

    model_config = _READ
    name: str = Field(min_length=1)
    uri: str | None = None
    digest: dict[str, str]

    @field_validator("digest")
    @classmethod
    def _has_sha256(cls, value: dict[str, str]) -> dict[str, str]:
        sha256 = value.get("sha256", "")
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("an eval dataset needs a sha256 digest (64 lower-case hex)")
        return value

    @property
    def sha256(self) -> str:
        """The hex digest."""
        return self.digest["sha256"]


class EvalPredicate(MlprovModel):
    """The predicate of an eval statement (``https://mlprov.dev/predicates/eval/v1``)."""

    model_config = _READ
    evaluator: Evaluator
    metrics: dict[str, Number] = Field(default_factory=dict)
    slices: dict[str, dict[str, Number]] = Field(default_factory=dict)
    datasets: list[EvalDataset] = Field(default_factory=list)

    @field_validator("metrics")
    @classmethod
    def _finite(cls, value: dict[str, int | float]) -> dict[str, int | float]:
        return _check_metrics(value, "metrics")

    @field_validator("slices")
    @classmethod
    def _finite_slices(cls, value: dict[str, dict[str, int | float]]
                       ) -> dict[str, dict[str, int | float]]:
        for name, metrics in value.items():
            if not name.strip():
                raise ValueError("a slice has an empty name")
            if not metrics:
                raise ValueError(f"slice {name!r} has no metrics")
            _check_metrics(metrics, f"slice {name!r}")
        return value

    @field_validator("datasets")
    @classmethod
    def _unique(cls, value: list[EvalDataset]) -> list[EvalDataset]:
        names = [d.name for d in value]
        if len(set(names)) != len(names):
            raise ValueError("two eval datasets share a name")
        return value


class MetricsFile(MlprovModel):
    """A parsed metrics file (the input of the eval statement)."""

    metrics: dict[str, Number] = Field(default_factory=dict)
    slices: dict[str, dict[str, Number]] = Field(default_factory=dict)
    datasets: list[DataRef] = Field(default_factory=list)
    evaluator: Evaluator | None = None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = validator_words(str(first["msg"]))
    return f"{where}: {message}" if where else message


@checked(what=TEXT)
def parse_metrics(document: Any, *, what: str) -> MetricsFile:
    """Read a metrics document (structured or flat); see the module docstring.

    Example:
        metrics = parse_metrics({"val/auc": 0.91}, what="metrics")

    Raises:
        InputError: not an object, unknown keys, non-numeric metrics, no metric at all.
    """
    if not isinstance(document, dict):
        raise InputError(f"{what} is not a JSON object")
    if "metrics" in document or "slices" in document:
        unknown = sorted(set(document) - _METRICS_KEYS)
        if unknown:
            raise InputError(f"{what}: unknown key {unknown[0]!r}",
                             hint='expected {"metrics": {...}, "slices": {...}, "datasets": '
                                  '[...], "evaluator": {"id": ...}}')
        structured = document
    else:
        for name, value in document.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{what}: {name!r} is not a number",
                                 hint='write {"metrics": {"name": number}, "slices": {...}}')
        structured = {"metrics": document}
    groups = [("metrics", structured.get("metrics"))]
    slices = structured.get("slices")
    if isinstance(slices, dict):
        groups += [(f"slices.{name}", values) for name, values in slices.items()]
    for where, values in groups:
        for name, value in (values.items() if isinstance(values, dict) else ()):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{what}: {where}.{name} is not a number")
    try:
        parsed = MetricsFile.model_validate(structured)
        # The same checks the signed predicate gets (finite, named, unique datasets).
        EvalPredicate(evaluator=Evaluator(id="urn:check"), metrics=parsed.metrics,
                      slices=parsed.slices,
                      datasets=[EvalDataset(name=d.name, digest={"sha256": d.sha256})
                                for d in parsed.datasets])
    except ValidationError as exc:
        raise InputError(f"{what}: {_first_error(exc)}") from exc
    if not parsed.metrics and not parsed.slices:
        raise InputError(f"{what} holds no metrics")
    return parsed


@checked(path=PATH)
def load_metrics(path: Path) -> tuple[MetricsFile, bytes]:
    """Read a metrics file; returns it parsed, and its exact bytes.

    Example:
        metrics, exact_bytes = load_metrics(Path("metrics.json"))

    Raises:
        InputError: unreadable, not strict JSON, or not a metrics document.
    """
    try:
        data = read_bytes(path, what="metrics file", limit=MAX_METRICS_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read metrics {path}: {exc.strerror}") from exc
    return parse_metrics(loads_strict(data, what=f"metrics file {path}"),
                         what=f"metrics file {path}"), data


def build_eval_statement(*, name: str, root: str, metrics: MetricsFile,
                         evaluator_id: str, datasets: list[DataRef] | None = None) -> Statement:
    """Build the eval statement for the model ``name`` with root digest ``root``.

    ``metrics.evaluator`` (from the metrics file) wins over ``evaluator_id``;
    ``datasets`` are added to the metrics file's own.

    Raises:
        InputError: two eval datasets share a name.
    """
    evaluator = metrics.evaluator or Evaluator(id=evaluator_id,
                                               version={"mlprov": __version__})
    all_data = [*metrics.datasets, *(datasets or [])]
    try:
        predicate = EvalPredicate(
            evaluator=evaluator, metrics=metrics.metrics, slices=metrics.slices,
            datasets=[EvalDataset(name=d.name, uri=d.uri, digest={"sha256": d.sha256})
                      for d in sorted(all_data, key=lambda d: d.name)])
    except ValidationError as exc:
        raise InputError(f"eval statement: {_first_error(exc)}") from exc
    return Statement(subject=[sha256_descriptor(name, root)], predicate_type=EVAL_PREDICATE_TYPE,
                     predicate=predicate.to_json_dict())


def read_eval(statement: Statement, *, what: str) -> EvalPredicate:
    """Read the eval predicate out of a verified statement.

    Raises:
        BundleError: another predicate type, or a malformed predicate.
    """
    if statement.predicate_type != EVAL_PREDICATE_TYPE:
        raise BundleError(f"{what}: predicate type {statement.predicate_type!r} is not "
                          f"{EVAL_PREDICATE_TYPE!r}")
    try:
        predicate = EvalPredicate.model_validate(statement.predicate)
    except ValidationError as exc:
        raise BundleError(f"{what}: malformed eval predicate: {_first_error(exc)}") from exc
    if not predicate.metrics and not predicate.slices:
        raise BundleError(f"{what}: the eval predicate holds no metrics")
    return predicate


def eval_schema() -> dict[str, Any]:
    """Return the JSON Schema of the eval predicate (package data)."""
    from importlib.resources import files

    document: dict[str, Any] = json.loads(
        files("mlprov").joinpath(EVAL_SCHEMA_FILE).read_text(encoding="utf-8"))
    return document
