"""``mlprov review add`` (attach a signed review to a registered version), ``review pending``."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.output import echo, emit_json, note
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


PENDING_SCHEMA = "https://mlprov.dev/schemas/pending-approvals/v1"

PENDING_EPILOG = """\b
Examples:
  mlprov review pending
  mlprov review pending --stage Production --json
  mlprov review pending --name credit-risk
\b
Lists the versions whose next stage move (None -> Staging, Staging -> Production)
waits on a review: the registry re-verifies each, evaluates the gate as
`promote --dry-run` would, and again with one to three hypothetical approvals.
The denials those clear are what is missing (the policy's words), the others
block the move whatever the reviews; a standing rejection marks it rejected.
Nothing is recorded. Exit codes: 0 listed (even none), 2 usage, 3 other.
"""


@click.command("pending", epilog=PENDING_EPILOG)
@click.option("--stage", type=click.Choice(("Staging", "Production"), case_sensitive=False),
              help="Only moves to this stage (default: both).")
@click.option("--name", metavar="NAME", help="Only this model's versions.")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def pending(stage: str | None, name: str | None, registry_dir: Path | None,
            as_json: bool) -> None:
    """List versions whose next move waits on a review, with what is missing."""
    with open_registry(registry_dir) as reg:
        found = reg.pending_approvals(stage=stage, name=name)
    if as_json:
        emit_json({"schema": PENDING_SCHEMA, "pending": [p.to_json_dict() for p in found]})
        return
    for p in found:
        need = (f"needs {p.approvals_needed} more approval(s)" if p.approvals_needed
                else "needs the rejecting reviewer's approval")
        echo(f"{p.uri}  {p.stage.value} -> {p.next_stage.value}  {p.status}: {need} "
             f"(standing approvals: {p.approvals}; {p.policy})")
        for message in p.missing:
            echo(f"  missing: {message}")
        for review in p.rejections:
            echo(f"  rejected by {review.reviewer} at {review.time}: {review.comment}")
        for message in p.blocked_by:
            echo(f"  also blocked: {message}")
    note(f"{len(found)} version(s) waiting on a review")
