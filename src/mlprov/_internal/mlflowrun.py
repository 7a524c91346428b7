"""What mlprov takes from an MLflow run, checked: the run's record as plain values.

Everything here is pure (no MLflow import): :mod:`mlprov.mlflow` reads a run through
MLflow's client into a :class:`RunRecord`, and these functions turn the record into
``mlprov.attest``'s inputs. Every string in a record came from a tracking store and
is treated as hostile:

- it is bounded (MLflow's own limits: 250 characters for a key, 6,000 for a param
  value, 8,000 for a tag value; at most :data:`MAX_PARAMS` params and
  :data:`MAX_METRICS` metrics) and refused, not cut, when over;
- a key holding a control, format, private-use or unassigned character, or a
  look-alike space, is refused (a value may hold tabs and line breaks);
- it is only ever carried as a JSON string or compared with constants: no text is
  built from it and parsed back. Params stay the strings MLflow stored (``"0.1"``,
  never the float 0.1), so the identity hashes exactly what the run recorded.

Nothing here is public API; :mod:`mlprov.mlflow` is.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mlprov.canonical import loads_strict
from mlprov.errors import InputError

__all__ = [
    "COMMIT_TAG",
    "MAX_DATASETS",
    "MAX_KEY_CHARS",
    "MAX_METRICS",
    "MAX_PARAMS",
    "MAX_PARAM_VALUE_CHARS",
    "RunDataset",
    "RunRecord",
    "check_artifact_path",
    "check_key",
    "check_model_id",
    "check_run_id",
    "checked_metrics",
    "checked_params",
    "local_source",
    "run_commit",
    "started_on",
]

#: The tag MLflow's git run-context provider sets at ``start_run``.
COMMIT_TAG: Final = "mlflow.source.git.commit"
#: Bounds on what a run may hand over; a record over them is refused.
MAX_PARAMS: Final = 1000
MAX_METRICS: Final = 1000
MAX_DATASETS: Final = 100
MAX_KEY_CHARS: Final = 250  # MLflow's MAX_ENTITY_KEY_LENGTH
MAX_PARAM_VALUE_CHARS: Final = 6000  # MLflow's MAX_PARAM_VAL_LENGTH
MAX_TAG_VALUE_CHARS: Final = 8000  # MLflow's MAX_TAG_VAL_LENGTH
MAX_SOURCE_CHARS: Final = 64 * 1024  # a dataset's source document (JSON text)

#: Unicode categories refused in a key: controls, format characters (bidirectional
#: overrides), surrogates, private use, unassigned, line and paragraph separators,
#: and spaces other than U+0020 (a look-alike space makes two keys look alike).
_UNSAFE_IN_KEYS = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))
_RUN_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,127}\Z")
_MODEL_ID = re.compile(r"\Am-[A-Za-z0-9_-]{1,126}\Z")
_PATH_PART = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,199}\Z")
# MLflow run times are milliseconds since the epoch; 9999-12-31 is the last one a
# datetime (and RFC 3339) can carry.
_MAX_MILLIS = 253_402_300_799_000


@dataclass(frozen=True)
class RunDataset:
    """A dataset input of a run, as the tracking store gave it (nothing checked yet)."""

    name: str
    source_type: str
    #: MLflow's source document, a JSON text (``{"uri": "data.csv"}`` for a local file).
    source: str
    #: The ``mlflow.data.context`` input tag (``training``, ``eval``...), if any.
    context: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """What mlprov reads from an MLflow run: plain values, as the tracking store gave them.

    Build one by hand to map a run without MLflow (tests, other trackers), or read
    one with :func:`mlprov.mlflow.read_run`.
    """

    run_id: str
    params: Mapping[str, str] = field(default_factory=dict)
    #: The latest value of each metric.
    metrics: Mapping[str, float] = field(default_factory=dict)
    #: The run's tags (only :data:`COMMIT_TAG` is read).
    tags: Mapping[str, str] = field(default_factory=dict)
    datasets: tuple[RunDataset, ...] = ()
    #: ``run.info.start_time``: milliseconds since the epoch.
    start_time: int | None = None


def check_key(key: object, what: str) -> str:
    """Return ``key`` if it is a non-empty, bounded string of visible characters.

    Raises:
        InputError: otherwise (``what`` names the kind of key: param, metric, dataset).
    """
    if not isinstance(key, str) or not key:
        raise InputError(f"MLflow run: a {what} name is empty or not a string")
    if len(key) > MAX_KEY_CHARS:
        raise InputError(f"MLflow run: a {what} name is longer than {MAX_KEY_CHARS} "
                         f"characters ({key[:40]!r}...)")
    for char in key:
        if char != " " and unicodedata.category(char) in _UNSAFE_IN_KEYS:
            raise InputError(f"MLflow run: {what} name {key!r} holds the character "
                             f"U+{ord(char):04X}",
                             hint="a name may hold letters, digits, punctuation and plain "
                                  "spaces; rename it in the training code")
    return key


def _check_value(value: object, key: str, limit: int) -> str:
    """A param or tag value: a bounded string; tabs and line breaks, no other control."""
    if not isinstance(value, str):
        raise InputError(f"MLflow run: the value of {key!r} is not a string")
    if len(value) > limit:
        raise InputError(f"MLflow run: the value of {key!r} is longer than {limit} characters")
    for char in value:
        category = unicodedata.category(char)
        if (category == "Cc" and char not in "\t\n\r") or category == "Cs":
            raise InputError(f"MLflow run: the value of {key!r} holds the control character "
                             f"U+{ord(char):04X}")
    return value


def checked_params(params: Mapping[str, str]) -> dict[str, str]:
    """The run's params, checked, as the strings MLflow stored (sorted by name).

    Raises:
        InputError: too many, or a name or value that is not a bounded string of
            allowed characters.
    """
    if len(params) > MAX_PARAMS:
        raise InputError(f"MLflow run: {len(params)} params, more than {MAX_PARAMS}",
                         hint="log fewer params, or attest with mlprov.attest(params=...)")
    return {check_key(key, "param"): _check_value(value, key, MAX_PARAM_VALUE_CHARS)
            for key, value in sorted(params.items())}


def checked_metrics(metrics: Mapping[str, float]) -> dict[str, float | int]:
    """The run's metrics (latest values), checked: finite numbers under bounded names.

    Raises:
        InputError: too many, a bad name, or a value that is not a finite number
            (NaN or infinity cannot be signed as JSON).
    """
    if len(metrics) > MAX_METRICS:
        raise InputError(f"MLflow run: {len(metrics)} metrics, more than {MAX_METRICS}")
    out: dict[str, float | int] = {}
    for key, value in sorted(metrics.items()):
        check_key(key, "metric")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"MLflow run: metric {key!r} is not a number")
        if not math.isfinite(value):
            raise InputError(f"MLflow run: metric {key!r} is {value!r}, not a finite number",
                             hint="log a finite value for it, or delete the metric from the run")
        out[key] = value
    return out


def run_commit(tags: Mapping[str, str]) -> str | None:
    """The value of the run's git commit tag, if it has one (its form is checked later)."""
    value = tags.get(COMMIT_TAG)
    if value is None:
        return None
    return _check_value(value, COMMIT_TAG, MAX_TAG_VALUE_CHARS)


def started_on(record: RunRecord) -> dt.datetime | None:
    """When the run started, from ``start_time`` (milliseconds), or None.

    Raises:
        InputError: not an integer within year 1970 to 9999.
    """
    millis = record.start_time
    if millis is None:
        return None
    if isinstance(millis, bool) or not isinstance(millis, int) or not 0 <= millis <= _MAX_MILLIS:
        raise InputError(f"MLflow run: start time {millis!r} is not a time")
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC)


def local_source(dataset: RunDataset) -> str | None:
    """The path of a dataset whose source is a local file or directory, else None.

    MLflow writes a local source as ``{"uri": PATH}`` (the path as the training code
    gave it, often relative) or ``{"uri": "file:///abs/path"}``.

    Raises:
        InputError: the source document is oversized or not a JSON object with a
            string ``uri``.
    """
    if dataset.source_type != "local":
        return None
    if not isinstance(dataset.source, str) or len(dataset.source) > MAX_SOURCE_CHARS:
        raise InputError(f"MLflow run: the source of dataset {dataset.name!r} is not a "
                         f"string of at most {MAX_SOURCE_CHARS} characters")
    document: Any = loads_strict(dataset.source, what=f"the source of dataset {dataset.name!r}")
    uri = document.get("uri") if isinstance(document, dict) else None
    if not isinstance(uri, str) or not uri or "\x00" in uri:
        raise InputError(f"MLflow run: the source of dataset {dataset.name!r} names no path")
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            return None  # a file on another host: not local to this machine
        return unquote(parts.path)
    if "://" in uri:
        return None
    return uri


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it has the form of an MLflow run id.

    Raises:
        InputError: otherwise.
    """
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InputError(f"not an MLflow run id: {run_id!r}",
                         hint="pass the run's id, e.g. run.info.run_id (32 hex digits)")
    return run_id


def check_model_id(model_id: str) -> str:
    """Return ``model_id`` if it has the form of an MLflow logged-model id (``m-...``).

    Raises:
        InputError: otherwise.
    """
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
        raise InputError(f"not an MLflow logged-model id: {model_id!r}",
                         hint="pass model_info.model_id, e.g. m-0123...")
    return model_id


def check_artifact_path(path: str, *, what: str = "artifact path") -> str:
    """Return ``path`` if it is a relative artifact path of plain names (``model``, ``a/b``).

    Raises:
        InputError: otherwise (empty, absolute, ``..``, or other characters).
    """
    if not isinstance(path, str) or not all(_PATH_PART.match(p) for p in path.split("/")):
        raise InputError(f"invalid MLflow {what} {path!r}",
                         hint="use names of letters, digits and . _ + -, separated by /")
    return path
