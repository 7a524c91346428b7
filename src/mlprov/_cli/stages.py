"""``mlprov promote``, ``mlprov alias set|delete|history`` and ``mlprov rollback``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlprov._cli.output import echo, emit_json_stream, note
from mlprov._cli.registry_common import (
    VERSION,
    actor_option,
    dry_run_option,
    emit_change,
    emit_dry_run,
    open_registry,
    registry_option,
    stage_change_options,
    version_argument,
)

if TYPE_CHECKING:
    from mlprov.registry import AliasChange, Registry

HISTORY_SCHEMA = "https://mlprov.dev/schemas/alias-history/v1"

PROMOTE_EPILOG = """\b
Examples:
  mlprov promote credit-risk 3 --to Staging --reason "eval passed"
  mlprov promote credit-risk 3 --to Production --reason "approved by risk team"
  mlprov promote credit-risk 3 --to Production --reason "will it pass?" --dry-run
\b
The gate for the stage (mlprov.toml in the registry) is evaluated over the
version's re-verified evidence, reviews and the registry's state. Stages move
None -> Staging -> Production; Archived from any stage (shipped policies).
Exit codes: 0 moved (dry run: would move), 1 the policy denied it (the reasons
are printed; a real denial is audited), 2 usage, 3 other (unknown model or
version, registry busy).
"""


@click.command(epilog=PROMOTE_EPILOG)
@click.argument("name")
@version_argument
@stage_change_options("version")
@dry_run_option
def promote(name: str, version: int, stage: str, reason: str, registry_dir: Path | None,
            actor: str | None, as_json: bool, dry_run: bool) -> None:
    """Move version VERSION of NAME to a stage, if its gate allows it."""
    with open_registry(registry_dir) as reg:
        result = reg.promote(name, version, to=stage, reason=reason, actor=actor,
                             dry_run=dry_run)
    if dry_run:
        emit_dry_run(result, as_json, f"{name} v{version}: {result.details.get('from')} -> "
                                      f"{result.details.get('to')}")
        return
    emit_change(result, as_json, f"{name} v{version}: {result.details.get('from')} -> "
                                 f"{result.details.get('to')}")


ALIAS_EPILOG = """\b
Examples:
  mlprov alias set credit-risk production 3 --reason "promote v3"
  mlprov alias set credit-risk production 3 --reason "check" --dry-run
  mlprov alias delete credit-risk champion --reason "experiment over"
  mlprov alias history credit-risk production --at 2026-01-31T12:00:00Z
"""


@click.group(epilog=ALIAS_EPILOG)
def alias() -> None:
    """Point aliases (production, champion, ...) at versions; show their history."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@version_argument
@click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the audit log).")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@dry_run_option
def set_alias(name: str, alias_name: str, version: int, reason: str,
              registry_dir: Path | None, actor: str | None, as_json: bool,
              dry_run: bool) -> None:
    """Point ALIAS of NAME at VERSION, if the alias's gate allows it (exit 1 if denied).

    Aliases gated as production (production, champion) point only at a version
    in Production (shipped policies).
    """
    with open_registry(registry_dir) as reg:
        result = reg.set_alias(name, alias_name, version, reason=reason, actor=actor,
                               dry_run=dry_run)
    before = result.details.get("from")
    click_from = f"v{before}" if before is not None else "unset"
    if dry_run:
        emit_dry_run(result, as_json, f"{name}@{alias_name}: {click_from} -> v{version}")
        return
    emit_change(result, as_json, f"{name}@{alias_name}: {click_from} -> v{version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the audit log).")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def delete_alias(name: str, alias_name: str, reason: str, registry_dir: Path | None,
                 actor: str | None, as_json: bool) -> None:
    """Remove ALIAS of NAME (never gated; signed and audited)."""
    with open_registry(registry_dir) as reg:
        result = reg.delete_alias(name, alias_name, reason=reason, actor=actor)
    emit_change(result, as_json, f"{name}@{alias_name}: v{result.details.get('from')} -> unset")


@alias.command("history")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--at", "at", metavar="TIME",
              help="Only changes up to this time (RFC 3339, e.g. 2026-01-31T12:00:00Z): "
                   "the last line is what the alias pointed to then.")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON.")
def history(name: str, alias_name: str, at: str | None, registry_dir: Path | None,
            as_json: bool) -> None:
    """Every accepted change of ALIAS, from the audit log (not the alias table)."""
    from mlprov.registry import parse_time

    moment = parse_time(at) if at is not None else None
    last: list[int | None] = [None]  # the version of the last change printed

    def changes(reg: Registry) -> Iterator[AliasChange]:
        # Printed as read from the log: a long history streams in bounded memory.
        for change in reg.iter_alias_history(name, alias_name, at=moment):
            last[0] = change.version
            yield change

    with open_registry(registry_dir) as reg:
        if as_json:
            emit_json_stream({"schema": HISTORY_SCHEMA, "name": name, "alias": alias_name,
                              "at": moment}, "changes",
                             (c.to_json_dict() for c in changes(reg)),
                             later={"version": lambda: last[0]})
            return
        for change in changes(reg):
            target = f"v{change.version}" if change.version is not None else "unset"
            echo(f"{change.time}  #{change.seq:<6} {change.kind:<15} {target:<7} "
                 f"{change.actor}: {change.reason or ''}".rstrip())
    if at is not None:
        shown = f"v{last[0]}" if last[0] is not None else "nothing"
        echo(f"at {moment}: {name}@{alias_name} pointed to {shown}")


ROLLBACK_EPILOG = """\b
Examples:
  mlprov rollback credit-risk --alias production              # to the previous target
  mlprov rollback credit-risk --alias production --to 2 --reason "v3 regressed"
  mlprov rollback credit-risk --alias production --dry-run
\b
Without --to: the most recent earlier target of the alias that it was not
rolled back from (a second rollback goes further back, never flips back), named
in the output. Gated and audited like any alias move; exit 1 if the gate denies it.
"""


@click.command(epilog=ROLLBACK_EPILOG)
@click.argument("name")
@click.option("--alias", "alias_name", required=True, metavar="ALIAS",
              help="The alias to re-point.")
@click.option("--to", "to", type=VERSION, metavar="VERSION",
              help="The version to point it at (default: its previous target, from the "
                   "audit log).")
@click.option("--reason", metavar="TEXT", help="Why (default: 'rollback').")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@dry_run_option
def rollback(name: str, alias_name: str, to: int | None, reason: str | None,
             registry_dir: Path | None, actor: str | None, as_json: bool,
             dry_run: bool) -> None:
    """Re-point ALIAS of NAME to an earlier version, without a redeploy."""
    with open_registry(registry_dir) as reg:
        result = reg.rollback(name, alias_name, to=to, reason=reason or "rollback",
                              actor=actor, dry_run=dry_run)
    what = f"{name}@{alias_name}: v{result.details.get('from')} -> v{result.version} (rollback)"
    if dry_run:
        emit_dry_run(result, as_json, what)
        return
    if result.details.get("chosen") and not as_json:
        note(f"rolling back to v{result.version}: {result.details['chosen']}")
    emit_change(result, as_json, what)
