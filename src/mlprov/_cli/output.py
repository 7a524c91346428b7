"""Rendering helpers shared by commands: JSON on stdout, notes on stderr."""

from __future__ import annotations

import json
from typing import Any

import click

from mlprov._internal.display import printable, printable_tree

__all__ = ["echo", "emit_json", "note", "printable", "printable_tree"]


def emit_json(document: dict[str, Any]) -> None:
    """Write exactly one JSON document to stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def note(message: str) -> None:
    """Write a human note to stderr (one line per note: untrusted text is escaped)."""
    click.echo(printable(message), err=True)


def echo(line: str, *, err: bool = False) -> None:
    """Write one line of a text result (stdout, or stderr); untrusted text in it is escaped."""
    click.echo(printable(line), err=err)
