"""``mlprov card``: re-render MODEL_CARD.md from verified evidence."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from mlprov._cli.options import require_one_trust, trust_options
from mlprov._cli.output import note
from mlprov._cli.registry_common import (
    evidence_or_uri,
    load_pinned_trust,
    open_registry,
    registry_option,
)
from mlprov.errors import InputError

EPILOG = """\b
Examples:
  mlprov card evidence/ --trust trust.yaml                 # to stdout
  mlprov card evidence/ --key ci.key.pub -o MODEL_CARD.md
  mlprov card evidence/ --key ci.key.pub --card-template TEMPLATE.md
  mlprov card models:/credit-risk/3 --registry /srv/mlprov -o MODEL_CARD.md
\b
The card is rendered only from statements that verified; if any check of the
evidence fails, nothing is written and the exit code is 1. A models:/ URI is
verified by the registry (--registry, else $MLPROV_REGISTRY), with its trust or
--trust (which must give the registry's key the registry role).
"""


@click.command(epilog=EPILOG)
@click.argument("evidence", metavar="EVIDENCE_DIR|URI", callback=evidence_or_uri)
@trust_options()
@click.option("-o", "--output", "output", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the card here (atomically) instead of stdout.")
@click.option("--card-template", "card_template", metavar="TEMPLATE.md",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Render with this Jinja2 template (the one given to attest) instead of "
                   "mlprov's layout.")
@registry_option
def card(evidence: Path | str, trust: Path | None, key: Path | None, output: Path | None,
         card_template: Path | None, registry_dir: Path | None) -> None:
    """Re-render the model card of EVIDENCE_DIR (or a registered version) from verified statements.

    Verifies the provenance, SBOM and eval signatures and roles first; the
    card (Mitchell et al. sections, Hugging Face YAML header) is rebuilt from
    them, so it matches the MODEL_CARD.md that attest wrote (given the same
    --card-template, when attest had one).
    """
    if isinstance(evidence, str):
        text = _registered_card(evidence, trust, key, card_template, registry_dir)
    else:
        text = _directory_card(evidence, trust, key, card_template)
    if output is None:
        click.echo(text, nl=False)
        return
    _write_atomically(output, text.encode("utf-8"))
    note(f"wrote {output}")


def _registered_card(uri: str, trust: Path | None, key: Path | None,
                     card_template: Path | None, registry_dir: Path | None) -> str:
    from mlprov.card import card_from_verdict

    if key is not None:
        raise click.UsageError("--key takes an evidence directory; a models:/ URI is verified "
                               "by the registry (--trust: a pipeline's own trust file)")
    render = None
    if card_template is not None:  # read and checked before the evidence is
        from mlprov._internal.card_template import load_card_template

        render = load_card_template(card_template).render
    with open_registry(registry_dir) as reg:
        verdict = reg.verify_uri(uri, trust=load_pinned_trust(trust)).verdict
    return card_from_verdict(verdict, render=render)


def _directory_card(evidence: Path, trust: Path | None, key: Path | None,
                    card_template: Path | None) -> str:
    require_one_trust(trust, key)
    if card_template is not None:
        from mlprov._internal.card_template import render_verified_card_with

        text = render_verified_card_with(card_template, evidence, trust=trust, key=key)
    else:
        from mlprov.card import render_verified_card

        text = render_verified_card(evidence, trust=trust, key=key)
    return text


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
