"""``mlprov card``: re-render MODEL_CARD.md from verified evidence."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from mlprov._cli.options import require_one_trust, trust_options
from mlprov._cli.output import note
from mlprov.errors import InputError

EPILOG = """\b
Examples:
  mlprov card evidence/ --trust trust.yaml                 # to stdout
  mlprov card evidence/ --key ci.key.pub -o MODEL_CARD.md
  mlprov card evidence/ --key ci.key.pub --card-template TEMPLATE.md
\b
The card is rendered only from statements that verified; if any check of the
evidence fails, nothing is written and the exit code is 1.
"""


@click.command(epilog=EPILOG)
@click.argument("evidence", metavar="EVIDENCE_DIR",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@trust_options()
@click.option("-o", "--output", "output", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the card here (atomically) instead of stdout.")
@click.option("--card-template", "card_template", metavar="TEMPLATE.md",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Render with this Jinja2 template (the one given to attest) instead of "
                   "mlprov's layout.")
def card(evidence: Path, trust: Path | None, key: Path | None, output: Path | None,
         card_template: Path | None) -> None:
    """Re-render the model card of EVIDENCE_DIR from its verified statements.

    Verifies the provenance, SBOM and eval signatures and roles first; the
    card (Mitchell et al. sections, Hugging Face YAML header) is rebuilt from
    them, so it matches the MODEL_CARD.md that attest wrote (given the same
    --card-template, when attest had one).
    """
    require_one_trust(trust, key)
    if card_template is not None:
        from mlprov._internal.card_template import render_verified_card_with

        text = render_verified_card_with(card_template, evidence, trust=trust, key=key)
    else:
        from mlprov.card import render_verified_card

        text = render_verified_card(evidence, trust=trust, key=key)
    if output is None:
        click.echo(text, nl=False)
        return
    _write_atomically(output, text.encode("utf-8"))
    note(f"wrote {output}")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, then rename: never a half-written card."""
    parent = path.resolve().parent
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temp, 0o644)  # a model card is public; mkstemp made it 0600
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc
