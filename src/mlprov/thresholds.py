"""Metric thresholds given as flags, not by editing the shipped policy data.

A threshold is one line: ``NAME>=N`` or ``NAME<=N`` for an overall metric of the
signed eval (``test/auc>=0.85``), ``slice:NAME>=N`` for a per-slice metric
(checked in every slice that reports it). Two bounds on one metric combine
(``loss>=0`` and ``loss<=0.4``).

Thresholds given this way *replace* the policy data's own: metric thresholds
replace ``mlprov_config.production.metrics`` (the shipped ``auc`` and
``accuracy``), slice thresholds replace ``mlprov_config.production.slices``;
a kind not given keeps the data's own. The rest of the data is unchanged.

The text is parsed once into numbers and names (never re-assembled and parsed
again); numbers must be finite decimals (``nan``, ``inf``, ``0x1p0`` and ``1_0``
are refused), names printable, without spaces or ``<``, ``>``, ``=``.

Example:
    >>> t = parse_thresholds(["test/auc>=0.85", "val/auc>=0.85", "slice:auc>=0.6"])
    >>> t.metrics["test/auc"]
    {'min': 0.85}
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlprov.canonical import canonical_json
from mlprov.errors import InputError

__all__ = ["MAX_THRESHOLDS", "THRESHOLDS_SCHEMA", "Thresholds", "parse_threshold",
           "parse_thresholds"]

THRESHOLDS_SCHEMA = "https://mlprov.dev/schemas/thresholds/v1"
#: The most thresholds one set may hold.
MAX_THRESHOLDS = 200
_MAX_NAME = 200
SLICE_PREFIX = "slice:"

# ASCII digits only (``\d`` would take other scripts' digits, which float() reads);
# spaces only around the operator (no newline: a flag is one line).
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?"
_LINE = re.compile(rf"\A(?P<name>[^\s<>=]+) *(?P<op>>=|<=) *(?P<value>{_NUMBER})\Z")
_OPS = {">=": "min", "<=": "max"}
_HINT = "write NAME>=N or NAME<=N, e.g. 'test/auc>=0.85'; slice thresholds as 'slice:auc>=0.6'"


@dataclass(frozen=True)
class Threshold:
    """One bound: ``metric`` (a slice metric when ``slice``) ``min`` or ``max`` ``value``."""

    metric: str
    bound: str  # "min" or "max"
    value: float
    slice: bool = False

    def __str__(self) -> str:
        op = ">=" if self.bound == "min" else "<="
        prefix = SLICE_PREFIX if self.slice else ""
        return f"{prefix}{self.metric}{op}{_number_text(self.value)}"


@dataclass(frozen=True)
class Thresholds:
    """A set of thresholds: overall ``metrics`` and ``slices``, each ``name -> {min, max}``."""

    metrics: Mapping[str, dict[str, float]] = field(default_factory=dict)
    slices: Mapping[str, dict[str, float]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.slices)

    def lines(self) -> list[str]:
        """Every bound as the flag that gives it, sorted (``test/auc>=0.85``)."""
        out = []
        for is_slice, group in ((False, self.metrics), (True, self.slices)):
            for name in sorted(group):
                for bound in ("min", "max"):
                    if bound in group[name]:
                        out.append(str(Threshold(name, bound, group[name][bound], is_slice)))
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """The set as stored and signed by a registry (a ``schema``, then the groups)."""
        return {"schema": THRESHOLDS_SCHEMA,
                "metrics": {k: dict(v) for k, v in sorted(self.metrics.items())},
                "slices": {k: dict(v) for k, v in sorted(self.slices.items())}}

    def to_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of :meth:`to_json_dict`."""
        return canonical_json(self.to_json_dict())

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "thresholds") -> Thresholds:
        """Read a set written by :meth:`to_bytes`, checking every name and number.

        Raises:
            InputError: not such a document.
        """
        from mlprov.canonical import loads_strict

        document = loads_strict(data, what=what)
        if not isinstance(document, dict) or document.get("schema") != THRESHOLDS_SCHEMA \
                or set(document) != {"schema", "metrics", "slices"}:
            raise InputError(f"{what} is not a thresholds document ({THRESHOLDS_SCHEMA})")
        items: list[Threshold] = []
        for key, is_slice in (("metrics", False), ("slices", True)):
            group = document[key]
            if not isinstance(group, dict):
                raise InputError(f"{what}: {key} must be an object")
            for name, bounds in group.items():
                if not isinstance(bounds, dict) or not bounds \
                        or not set(bounds) <= {"min", "max"}:
                    raise InputError(f"{what}: {key}.{name} must be {{min, max}}")
                for bound, value in bounds.items():
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise InputError(f"{what}: {key}.{name}.{bound} is not a number")
                    items.append(Threshold(_check_name(name), bound, float(value), is_slice))
        return _combine(items)

    def apply(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Policy data with these thresholds in place of the data's own (a new mapping).

        Metric thresholds replace ``mlprov_config.production.metrics``; slice
        thresholds replace ``mlprov_config.production.slices``; a group with no
        threshold keeps the data's own.
        """
        out: dict[str, Any] = copy.deepcopy(dict(data))
        config = out.get("mlprov_config")
        config = dict(config) if isinstance(config, dict) else {}
        production = config.get("production")
        production = dict(production) if isinstance(production, dict) else {}
        if self.metrics:
            production["metrics"] = {k: dict(v) for k, v in self.metrics.items()}
        if self.slices:
            production["slices"] = {k: dict(v) for k, v in self.slices.items()}
        config["production"] = production
        out["mlprov_config"] = config
        return out


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold flag (``test/auc>=0.85``, ``loss<=0.3``, ``slice:auc>=0.6``).

    Raises:
        InputError: not ``NAME>=N`` / ``NAME<=N`` with a finite decimal number.
    """
    if not isinstance(text, str):
        raise InputError(f"a threshold must be text, not {type(text).__name__}", hint=_HINT)
    match = _LINE.match(text.strip(" "))
    if match is None:
        raise InputError(f"not a threshold: {text!r}", hint=_HINT)
    name = match["name"]
    is_slice = name.startswith(SLICE_PREFIX)
    if is_slice:
        name = name.removeprefix(SLICE_PREFIX)
    value = float(match["value"])
    if not math.isfinite(value):
        raise InputError(f"threshold {text!r}: the bound is not a finite number", hint=_HINT)
    return Threshold(_check_name(name), _OPS[match["op"]], value, is_slice)


def parse_thresholds(texts: Iterable[str]) -> Thresholds:
    """Parse threshold flags into one set (two bounds of one metric combine).

    Example:
        >>> parse_thresholds(["loss>=0", "loss<=0.4"]).metrics["loss"]
        {'min': 0.0, 'max': 0.4}

    Raises:
        InputError: a flag does not parse, or one bound of a metric is given twice.
    """
    if isinstance(texts, str | bytes):
        raise InputError("thresholds must be a list of flags, not one string",
                         hint="pass ['test/auc>=0.85', ...]")
    return _combine([parse_threshold(t) for t in texts])


def _combine(items: list[Threshold]) -> Thresholds:
    if len(items) > MAX_THRESHOLDS:
        raise InputError(f"too many thresholds ({len(items)}; at most {MAX_THRESHOLDS})")
    metrics: dict[str, dict[str, float]] = {}
    slices: dict[str, dict[str, float]] = {}
    for item in items:
        group = slices if item.slice else metrics
        bounds = group.setdefault(item.metric, {})
        if item.bound in bounds:
            raise InputError(f"threshold {item} sets the {item.bound}imum of "
                             f"{'slice ' if item.slice else ''}metric {item.metric!r} twice",
                             hint="give each bound of a metric once")
        bounds[item.bound] = item.value
    for group in (metrics, slices):
        for name, bounds in group.items():
            if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
                raise InputError(f"thresholds of metric {name!r} admit nothing "
                                 f"(min {_number_text(bounds['min'])} > max "
                                 f"{_number_text(bounds['max'])})")
    return Thresholds(metrics=metrics, slices=slices)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME \
            or not name.isprintable() or any(c in name for c in " <>="):
        raise InputError(f"bad metric name in a threshold: {name!r}",
                         hint="a metric name is printable text without spaces, '<', '>' or '='")
    return name


def _number_text(value: float) -> str:
    return repr(value).removesuffix(".0") if value == int(value) and abs(value) < 1e15 \
        else repr(value)
