"""``mlprov identity``."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.options import build_inputs, identity_options
from mlprov._cli.output import echo, emit_json
from mlprov._internal.inputs import compute_identity

IDENTITY_SCHEMA = "https://mlprov.dev/schemas/identity/v1"


@click.command()
@identity_options
@click.option("--json", "as_json", is_flag=True, help="Also print the canonical inputs.")
def identity(commit: str | None, repo: Path | None, allow_dirty: bool, data: tuple[str, ...],
             configs: tuple[Path, ...], seeds: tuple[str, ...], as_json: bool) -> None:
    """Print a version identity, mlid:sha256:<hex>, derived from its inputs.

    The identity is SHA-256 over the RFC 8785 canonical JSON of the code commit,
    dataset digests, merged config and seeds: any machine gets the same value.
    """
    inputs = build_inputs(commit, repo, allow_dirty, data, configs, seeds)
    value = compute_identity(inputs)
    if as_json:
        emit_json({"schema": IDENTITY_SCHEMA, "identity": value,
                   "inputs": inputs.canonical_inputs()})
    else:
        echo(value)
