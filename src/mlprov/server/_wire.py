"""The store records on the wire: :mod:`mlprov.registry.interface` records as JSON.

The server sends the registry's rows as they are stored (bytes, such as an
audit entry's hashed body or a signed checkpoint, base64-encoded, so they keep
every byte); the client decodes them field by field against the record's own
type annotations and refuses anything else (a missing field, an extra one, a
string where an integer goes, a bool posing as an integer). Nothing decoded here
is trusted: the registry's verification code checks it like a database row.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin

from mlprov.registry.interface import (
    AliasRecord,
    AuditRecord,
    CheckpointRecord,
    DeliveryRecord,
    DeploymentRecord,
    EventRecord,
    ModelRecord,
    RenameRecord,
    ReviewRecord,
    Stage,
    TagRecord,
    VersionRecord,
)
from mlprov.server._errors import MalformedResponseError

__all__ = ["RECORD_TYPES", "decode_record", "decode_records", "encode_record"]

R = TypeVar("R")

#: The records the store API sends, by the name used in its documents.
RECORD_TYPES: dict[str, type[Any]] = {
    "model": ModelRecord, "version": VersionRecord, "alias": AliasRecord,
    "review": ReviewRecord, "audit": AuditRecord, "checkpoint": CheckpointRecord,
    "event": EventRecord, "delivery": DeliveryRecord, "deployment": DeploymentRecord,
    "tag": TagRecord, "rename": RenameRecord,
}

_MAX_INT = 2**63 - 1


def encode_record(record: Any) -> dict[str, Any]:
    """A record as JSON: bytes base64, stages by value, every other field as it is."""
    out: dict[str, Any] = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        elif isinstance(value, Stage):
            value = value.value
        out[item.name] = value
    return out


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        found = typing.get_type_hints(cls)
        _HINTS[cls] = found
    return found


def _decode_value(value: Any, kind: Any, what: str) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _decode_value(value, inner, what)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool) \
                and -_MAX_INT <= value <= _MAX_INT:
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind is bytes:
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                pass
    elif kind is Stage and isinstance(value, str):
        try:
            return Stage(value)
        except ValueError:
            pass
    raise MalformedResponseError(f"the server sent a malformed {what}")


def decode_record(cls: type[R], document: Any, *, what: str | None = None) -> R:
    """Decode one record of type ``cls``, every field checked against its annotation.

    Raises:
        MalformedResponseError: a field missing, extra or of the wrong type.
    """
    label = what or cls.__name__
    if not isinstance(document, dict):
        raise MalformedResponseError(f"the server sent a malformed {label}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if set(document) != set(names):
        raise MalformedResponseError(f"the server sent a malformed {label} (fields "
                                     f"{sorted(set(document) ^ set(names))[:5]})")
    values = {name: _decode_value(document[name], hints[name], f"{label} field {name!r}")
              for name in names}
    return cls(**values)


def decode_records(cls: type[R], documents: Any, *, what: str | None = None) -> list[R]:
    """Decode a list of records of type ``cls`` (see :func:`decode_record`)."""
    if not isinstance(documents, list):
        raise MalformedResponseError(f"the server sent a malformed list of "
                                     f"{what or cls.__name__}")
    return [decode_record(cls, d, what=what) for d in documents]
