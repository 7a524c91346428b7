"""Rendering helpers shared by commands: JSON on stdout, notes on stderr."""

from __future__ import annotations

import json
from typing import Any

import click


def emit_json(document: dict[str, Any]) -> None:
    """Write exactly one JSON document to stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=True))


def note(message: str) -> None:
    """Write a human note to stderr."""
    click.echo(message, err=True)
