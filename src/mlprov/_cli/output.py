"""Rendering helpers shared by commands: JSON on stdout, notes on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from mlprov._internal.display import printable, printable_tree

__all__ = ["echo", "emit_json", "emit_json_stream", "note", "printable", "printable_tree"]


def emit_json(document: dict[str, Any]) -> None:
    """Write exactly one JSON document to stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def _dumped(value: Any, indent: int) -> str:
    """``value`` as :func:`emit_json` writes it, nested ``indent`` spaces deep."""
    return json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + " " * indent)


def emit_json_stream(document: Mapping[str, Any], key: str, items: Iterable[Any],
                     later: Mapping[str, Callable[[], Any]] | None = None) -> None:
    """Write ``document`` with the list ``items`` under ``key``, one item at a time.

    The text is exactly what :func:`emit_json` writes for ``{**document, key:
    list(items), **{k: f() for k, f in later.items()}}``, but no more than one item
    is held: a long audit log or alias history streams in bounded memory. The
    values of ``later`` are computed once the items are written (a summary of
    them), so their keys must sort after ``key``. Should reading fail midway, the
    document stays unfinished on stdout and the error goes to stderr as usual.
    """
    later = later or {}
    names = sorted([*document, key, *later])
    if any(name in later and name < key for name in names) or len(set(names)) != len(names):
        raise ValueError("the keys of `later` must sort after the streamed key, and no key "
                         "may be given twice")
    click.echo("{", nl=False)
    for index, name in enumerate(names):
        click.echo(("," if index else "") + "\n  " + json.dumps(name) + ": ", nl=False)
        if name != key:
            value = document[name] if name in document else later[name]()
            click.echo(_dumped(value, 2), nl=False)
            continue
        count = 0
        for item in items:
            click.echo(("," if count else "[") + "\n    " + _dumped(item, 4), nl=False)
            count += 1
        click.echo("\n  ]" if count else "[]", nl=False)
    click.echo("\n}")


def note(message: str) -> None:
    """Write a human note to stderr (one line per note: untrusted text is escaped)."""
    click.echo(printable(message), err=True)


def echo(line: str, *, err: bool = False) -> None:
    """Write one line of a text result (stdout, or stderr); untrusted text in it is escaped."""
    click.echo(printable(line), err=err)
