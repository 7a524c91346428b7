"""``mlprov audit log|verify|checkpoint`` and ``mlprov events [deliver]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlprov._cli.output import echo, emit_json, emit_json_stream, note
from mlprov._cli.registry_common import open_registry, registry_option
from mlprov.errors import EXIT_CHECK_FAILED

LOG_SCHEMA = "https://mlprov.dev/schemas/audit-log/v1"
EVENTS_SCHEMA = "https://mlprov.dev/schemas/events/v1"
DELIVERY_SCHEMA = "https://mlprov.dev/schemas/event-delivery/v1"

AUDIT_EPILOG = """\b
Examples:
  mlprov audit log --name credit-risk
  mlprov audit verify                       # exit 0 intact, 1 tampered
  mlprov audit checkpoint --out ci/checkpoint.json
  mlprov audit verify --checkpoint ci/checkpoint.json --deep
"""


@click.group(epilog=AUDIT_EPILOG)
def audit() -> None:
    """Read and verify the registry's hash-chained, signed audit log."""


@audit.command("log")
@registry_option
@click.option("--since", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only entries after this sequence number.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many entries.")
@click.option("--name", help="Only entries about this model.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def log(registry_dir: Path | None, since: int, limit: int | None, name: str | None,
        as_json: bool) -> None:
    """Print the audit log, oldest first (every change, accepted or denied)."""
    # Printed as read from the log: a long log streams in bounded memory.
    with open_registry(registry_dir) as reg:
        entries = reg.iter_audit_log(since=since, limit=limit, name=name)
        if as_json:
            emit_json_stream({"schema": LOG_SCHEMA}, "entries", entries)
            return
        for e in entries:
            _print_entry(e)


def _print_entry(e: dict[str, Any]) -> None:
    outcome = "ok    " if e["accepted"] else "DENIED"
    subject = e["name"] or ""
    if e["version"] is not None:
        subject += f" v{e['version']}"
    details = e["details"]
    change = ""
    if e["kind"] == "stage.transition":
        change = f" {details.get('from')} -> {details.get('to')}"
    elif e["kind"].startswith("alias."):
        change = f" @{details.get('alias')}"
    elif e["kind"] == "access.refused":  # a server refused the actor (no state changed)
        change = f" {details.get('action')}" + (f" {e['target']}" if e["target"] else "")
    elif e["kind"] == "access.refused-summary":
        change = f" {details.get('count')} more refusal(s)"
    echo(f"#{e['seq']:<6} {e['time']}  {outcome} {e['kind']:<19} {subject}{change}  "
         f"by {e['actor']}" + (f": {e['reason']}" if e["reason"] else ""))
    for message in details.get("deny", []):
        echo(f"         denied: {message}")


@audit.command("verify")
@registry_option
@click.option("--deep", is_flag=True,
              help="Verify every entry's signed decision, not only those after the last "
                   "checkpoint (those an earlier --deep run verified: their bytes only).")
@click.option("--full", is_flag=True,
              help="With --deep: verify every signature again, whatever earlier runs did.")
@click.option("--checkpoint", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also check a checkpoint saved earlier outside the registry "
                   "(`mlprov audit checkpoint`): detects a rolled-back registry.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, registry_dir: Path | None, deep: bool, full: bool,
           checkpoint: Path | None, as_json: bool) -> None:
    """Recompute the hash chain, check the signed head, checkpoints and decisions, replay.

    Detects entries modified, deleted or reordered, rows edited directly in the
    database and a truncated log. Read-only: `mlprov audit checkpoint` signs a
    checkpoint.
    """
    if full and not deep:
        raise click.UsageError("--full goes with --deep (mlprov audit verify --deep --full)")
    with open_registry(registry_dir) as reg:
        report = reg.verify_audit(deep=deep, checkpoint=checkpoint, full=full)
    if as_json:
        emit_json(report.to_json_dict())
    for warning in report.warnings:
        note(f"warning: {warning}")
    if not report.ok:
        more = f"; {len(report.problems) - 1} more problem(s)" if len(report.problems) > 1 \
            else ""
        note(f"error: audit log does not verify: {report.problems[0]} (hint: do not trust "
             f"this registry's state; restore it from a backup{more}"
             f"{'' if as_json else '; --json lists every problem'})")
        ctx.exit(EXIT_CHECK_FAILED)
    if not as_json:
        echo(f"audit log verified: {report.entries} entries, head {report.head_hash}")
        earlier = (f" ({report.decisions_known} verified by an earlier --deep run: bytes "
                   "checked)" if report.decisions_known else "")
        note(f"  {report.checkpoints} signed checkpoint(s) and {report.decisions} signed "
             f"decision(s) checked{earlier}; state replayed from the log matches"
             + (f"; new checkpoint at entry {report.new_checkpoint}"
                if report.new_checkpoint else ""))


CHECKPOINT_EPILOG = """\b
Examples:
  mlprov audit checkpoint
  mlprov audit checkpoint --out ci/registry-checkpoint.json
"""


@audit.command("checkpoint", epilog=CHECKPOINT_EPILOG)
@registry_option
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save the checkpoint here, to check the registry against later "
                   "(`audit verify --checkpoint FILE`).")
@click.option("--deep", is_flag=True, help="Verify every entry's signed decision first.")
def checkpoint(registry_dir: Path | None, out: Path | None, deep: bool) -> None:
    """Verify the audit log, then sign a checkpoint of its head (stored, and in head.json)."""
    with open_registry(registry_dir) as reg:
        report, data = reg.checkpoint(deep=deep)
    if out is not None:
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
        click.echo(str(out))
    note(f"signed a checkpoint of audit entry {report.head_seq} ({report.head_hash})")


EVENTS_EPILOG = """\b
Examples:
  mlprov events --since 40 --json        # poll: events after id 40
  mlprov events deliver                  # retry due hook deliveries now
"""


@click.group(invoke_without_command=True, epilog=EVENTS_EPILOG)
@registry_option
@click.option("--since", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only events after this event id.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@click.pass_context
def events(ctx: click.Context, registry_dir: Path | None, since: int, limit: int | None,
           as_json: bool) -> None:
    """List the registry's events (one per change, accepted or denied), oldest first."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = registry_dir
        return
    with open_registry(registry_dir) as reg:
        found = reg.events(since=since, limit=limit)
    if as_json:
        emit_json({"schema": EVENTS_SCHEMA, "events": found})
        return
    for event in found:
        deliveries = ", ".join(f"{d['hook']}:{d['state']}" for d in event["deliveries"])
        subject = event["name"] or ""
        if event["version"] is not None:
            subject += f" v{event['version']}"
        echo(f"{event['id']:<6} {event['time']}  {event['kind']:<19} {subject}"
                   + (f"  [{deliveries}]" if deliveries else ""))


@events.command("deliver")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def deliver(ctx: click.Context, registry_dir: Path | None, as_json: bool) -> None:
    """Deliver due events to their hooks now (failed ones are retried with backoff)."""
    with open_registry(registry_dir or ctx.obj) as reg:
        report = reg.deliver_events()
    if as_json:
        emit_json({"schema": DELIVERY_SCHEMA, "delivered": report.delivered,
                   "failed": report.failed, "retrying": report.retrying,
                   "errors": list(report.errors)})
    else:
        click.echo(json.dumps({"delivered": report.delivered, "retrying": report.retrying,
                               "failed": report.failed}))
    for error in report.errors:
        note(f"warning: {error}")
