"""``mlprov copy``: register a version into another registry (dev -> staging -> production)."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import (
    actor_option,
    open_registry,
    registry_location,
    registry_option,
    uri_argument,
)

COPY_SCHEMA = "https://mlprov.dev/schemas/registry-copy/v1"

EPILOG = """\b
Examples:
  mlprov copy models:/credit-risk@staging --registry /srv/dev --to /srv/prod
  mlprov copy models:/credit-risk/3 --to postgresql+psycopg://mlprov@db/prod \\
      --to-key prod-registry.key --name credit-risk-eu --json
\b
The source (--registry, else $MLPROV_REGISTRY) verifies the version as `pull`
does. The target re-verifies the files and evidence against its own trust and
registers the next version (refused and audited when they do not verify); its
own gates decide every later move. Its registration entry names the source
registry, version and the decision behind URI (recorded, not trusted). Reviews
that count in the target's trust are attached there too; copy parents first.
Exit codes: 0 copied (or already there), 1 the source or the target's trust
refused it, 2 usage, 3 other (unknown model, --to is the source).
"""


@click.command(epilog=EPILOG)
@uri_argument
@click.option("--to", "to", required=True, metavar="DIR|URL", callback=registry_location,
              help="The target registry: its directory or database URL.")
@click.option("--name", metavar="NAME",
              help="Register it under this name (default: the name in its provenance).")
@click.option("--to-key", "to_key", metavar="KEY",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The target registry's private key (a team registry; default "
                   "$MLPROV_REGISTRY_KEY).")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the target's audit log).")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def copy(uri: str, to: Path | str, name: str | None, to_key: Path | None, reason: str | None,
         registry_dir: Path | None, actor: str | None, as_json: bool) -> None:
    """Copy the version URI names into the registry --to, with its evidence and reviews."""
    with open_registry(registry_dir) as reg:
        result = reg.copy(uri, to, name=name, key=to_key, actor=actor, reason=reason)
    registered = result.registered
    if as_json:
        emit_json({"schema": COPY_SCHEMA, **result.to_json_dict()})
    else:
        echo(registered.uri)
    state = "registered" if registered.created else "already registered"
    note(f"{result.source_version} of registry {result.source_registry} -> {registered.uri} "
         f"({state}; verified again against the target's trust); "
         f"{len(result.reviews_attached)} review(s) attached")
    for skipped in result.reviews_skipped:
        note(f"warning: review {skipped.digest} not attached: {skipped.problem}")
