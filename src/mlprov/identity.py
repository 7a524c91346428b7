"""A model version's identity: a hash of what made it.

``mlid:sha256:<hex>`` is SHA-256 over the RFC 8785 canonical JSON of::

    {"code": {"commit": ..., "dirty": false, "uri": ...},
     "data": [{"digest": "sha256:<hex>", "name": ...}, ...],   # sorted by name
     "config": {...},                                         # the merged config files
     "seeds": {"name": int, ...}}

(``uri`` is left out when the code has no known remote.)

Any machine deriving it from the same inputs gets the same value; the inputs are
recorded in the provenance so a verifier can recompute it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal import inputs as _plain
from mlprov._internal.arguments import (
    BOOL,
    PATH,
    PATHS,
    TEXT,
    checked,
    lazy_instance,
    optional,
)
from mlprov._internal.inputs import IDENTITY_PREFIX
from mlprov._internal.readers import MAX_CONFIG_BYTES, load_toml, load_yaml, read_text
from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError

if TYPE_CHECKING:
    from mlprov._internal.identity_models import CodeRef as CodeRef
    from mlprov._internal.identity_models import DataRef as DataRef
    from mlprov._internal.identity_models import IdentityInputs as IdentityInputs

__all__ = [
    "IDENTITY_PREFIX",
    "CodeRef",
    "DataRef",
    "IdentityInputs",
    "code_from_commit",
    "code_from_repo",
    "compute_identity",
    "load_configs",
    "parse_data_spec",
    "parse_seed",
]

_SEED = re.compile(r"\A-?[0-9]+\Z")
_MAX_SAFE_INT = 2**53 - 1


@checked(inputs=lazy_instance("mlprov._internal.identity_models", "IdentityInputs",
                              "an IdentityInputs"))
def compute_identity(inputs: IdentityInputs) -> str:
    """Return ``mlid:sha256:<hex>`` for ``inputs``.

    Example:
        compute_identity(IdentityInputs(code=code_from_commit("0123...cdef"),
                                        config={"lr": 0.01}, seeds={"torch": 7}))
    """
    return _plain.compute_identity(inputs)


@checked(commit=TEXT, uri=optional(TEXT))
def code_from_commit(commit: str, uri: str | None = None) -> CodeRef:
    """Name the code by an explicit commit id.

    Example:
        code = code_from_commit("0123456789abcdef0123456789abcdef01234567")

    Raises:
        IdentityError: not a full (40 or 64 hex digit) commit id.
    """
    code = _plain.code_from_commit(commit, uri)
    from mlprov._internal.identity_models import CodeRef

    return CodeRef(commit=code.commit, uri=code.uri)


@checked(repo=PATH, allow_dirty=BOOL)
def code_from_repo(repo: Path, *, allow_dirty: bool = False) -> CodeRef:
    """Read the HEAD commit, origin URL and cleanliness of a git work tree.

    Untracked files do not make a tree dirty (outputs usually are untracked);
    changes to tracked files do.

    Example:
        code = code_from_repo(Path("."))

    Raises:
        IdentityError: not a work tree, no commit, or dirty without ``allow_dirty``.
    """
    code = _plain.code_from_repo(repo, allow_dirty=allow_dirty)
    from mlprov._internal.identity_models import CodeRef

    return CodeRef(commit=code.commit, uri=code.uri, dirty=code.dirty)


def _jsonable(value: Any, where: str) -> Any:
    """Turn YAML/TOML values into plain JSON (dates become ISO 8601 strings)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"{where}: key {key!r} is not a string")
            out[key] = _jsonable(item, where)
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item, where) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InputError(f"{where}: value {value!r} cannot be represented in JSON")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@checked(paths=PATHS)
def load_configs(paths: list[Path]) -> dict[str, Any]:
    """Load YAML/JSON/TOML config files and deep-merge them, later files winning.

    Example:
        config = load_configs([Path("base.yaml"), Path("experiment.toml")])

    Raises:
        InputError: a file is unreadable, malformed, or not a mapping.
    """
    merged: dict[str, Any] = {}
    for path in map(Path, paths):
        try:
            text = read_text(path, what="config", limit=MAX_CONFIG_BYTES)
        except OSError as exc:
            raise InputError(f"cannot read config {path}: {exc.strerror}") from exc
        suffix = path.suffix.lower()
        document: Any
        if suffix == ".toml":
            document = load_toml(text, what=f"config {path}")
        elif suffix == ".json":
            # strict: a duplicate key would silently pick one of two values
            document = loads_strict(text, what=f"config {path}")
        else:
            # Duplicate keys stay allowed here (the last wins), as they always were.
            document = load_yaml(text, what=f"config {path}", unique_keys=False)
        if not isinstance(document, dict):
            raise InputError(f"config {path} is not a mapping at the top level")
        try:
            merged = _merge(merged, _jsonable(document, f"config {path}"))
        except RecursionError as exc:
            raise InputError(f"config {path} is nested too deeply") from exc
    canonical_json(merged)  # fail early on NaN, infinities and huge integers
    return merged


@checked(spec=TEXT)
def parse_seed(spec: str) -> tuple[str, int]:
    """Parse ``NAME=INT`` (decimal, optionally negative, within JSON's exact integers).

    Example:
        parse_seed("torch=42")   # ("torch", 42)

    Raises:
        InputError: no name, or a value that is not such an integer.
    """
    name, sep, value = spec.partition("=")
    if not sep or not name.strip():
        raise InputError(f"seed must be NAME=INTEGER, got {spec!r}")
    # int() alone would also take " 5", "1_000" and non-ASCII digits.
    if not _SEED.match(value):
        raise InputError(f"seed {name} must be a decimal integer, got {value!r}")
    seed = int(value, 10)
    if abs(seed) > _MAX_SAFE_INT:
        raise InputError(f"seed {name} is out of range (|seed| <= 2**53 - 1): {value}",
                         hint="canonical JSON (RFC 8785) carries integers up to 2**53 - 1")
    return name, seed


@checked(spec=TEXT, allow_symlinks=BOOL)
def parse_data_spec(spec: str, *, allow_symlinks: bool = False) -> DataRef:
    """Parse ``[NAME=]PATH`` (hashed here) or ``[NAME=]URI@sha256:HEX`` (pinned).

    The name defaults to the path's last component, or the URI.

    Example:
        parse_data_spec("train=data/train.csv")
        parse_data_spec("hf://datasets/acme/reviews@sha256:" + "ab" * 32)

    Raises:
        InputError: a malformed digest, a missing path, a path that cannot be hashed,
            or a name that is not valid Unicode (undecodable bytes in a URI or file name).
    """
    found = _plain.parse_data_spec(spec, allow_symlinks=allow_symlinks)
    from mlprov._internal.identity_models import DataRef

    return DataRef(name=found.name, digest=found.digest, uri=found.uri)


def __getattr__(name: str) -> Any:
    """The pydantic models, imported when first named (PEP 562): ``attest`` needs none."""
    if name in ("CodeRef", "DataRef", "IdentityInputs"):
        from mlprov._internal import identity_models

        return getattr(identity_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
