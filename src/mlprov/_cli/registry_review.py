"""``mlprov review add``: attach a signed review to a registered version."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.registry_common import (
    actor_option,
    emit_change,
    open_registry,
    registry_option,
    version_argument,
)

EPILOG = """\b
Examples:
  mlprov review approve evidence/ --key alice.key --comment "checked" --out alice.json
  mlprov review add credit-risk 3 alice.json
\b
The review must verify (a reviewer's signature, about this version's root digest
and identity) when attached, and is verified again at every gated change.
Exit codes: 0 attached, 1 it does not verify, 2 usage, 3 other.
"""


@click.command("add", epilog=EPILOG)
@click.argument("name")
@version_argument
@click.argument("review_file", metavar="FILE",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit log).")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add(name: str, version: int, review_file: Path, reason: str | None,
        registry_dir: Path | None, actor: str | None, as_json: bool) -> None:
    """Attach the signed review FILE to version VERSION of NAME (in the registry)."""
    with open_registry(registry_dir) as reg:
        result = reg.add_review(name, version, review_file, actor=actor, reason=reason)
    who = result.details.get("reviewer") or result.details.get("signer") or "reviewer"
    emit_change(result, as_json, f"{name} v{version}: review by {who} "
                                 f"({result.details.get('decision')}) attached")
