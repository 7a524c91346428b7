"""``mlprov evidence export``: a registered version's evidence directory, verified."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import (
    load_pinned_trust,
    open_registry,
    registry_option,
    uri_argument,
)

EXPORT_SCHEMA = "https://mlprov.dev/schemas/exported-evidence/v1"

EXPORT_EPILOG = """\b
Examples:
  mlprov evidence export models:/credit-risk/3 --out evidence/
  mlprov evidence export models:/credit-risk@production --out ev --trust deploy-trust.yaml
  mlprov verify model/ --evidence evidence/ --trust trust.yaml     # then, offline
\b
The decision behind the URI and the stored evidence are verified first (an
Archived version's evidence is exported too: auditing, not serving). --out is
written only when everything verified, as attest wrote it: the same files, byte
for byte, which `mlprov verify`, `inspect`, `card` and `lineage` take offline.
Exit codes: 0 written, 1 a stored blob or decision does not verify (nothing is
written), 2 usage, 3 other (unknown model, --out exists).
"""


@click.group()
def evidence() -> None:
    """Work with a registered version's evidence."""


@evidence.command("export", epilog=EXPORT_EPILOG)
@uri_argument
@click.option("--out", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="A new directory to write the evidence to.")
@click.option("--trust", metavar="TRUST_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify with this trust file instead of the registry's own (it must give "
                   "the registry's key the registry role).")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export(uri: str, out: Path, trust: Path | None, registry_dir: Path | None,
           as_json: bool) -> None:
    """Write the evidence of the version URI names to --out, verified first."""
    with open_registry(registry_dir) as reg:
        resolved = reg.export_evidence(uri, out, trust=load_pinned_trust(trust))
    files = sorted(p.name for p in out.iterdir())
    if as_json:
        emit_json({"schema": EXPORT_SCHEMA, **resolved.to_json_dict(), "out": str(out),
                   "files": files})
    else:
        echo(str(out))
    note(f"exported the evidence of models:/{resolved.name}/{resolved.version} "
         f"({len(files)} files): the decision behind {uri} and the evidence verified")
