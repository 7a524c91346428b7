"""``mlprov register``, ``mlprov models``, ``mlprov resolve`` and ``mlprov pull``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlprov._cli.catalog import MODEL_COMMANDS
from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import (
    actor_option,
    open_registry,
    registry_option,
    uri_argument,
)

REGISTER_SCHEMA = "https://mlprov.dev/schemas/registered-version/v1"
MODEL_SCHEMA = "https://mlprov.dev/schemas/registry-model/v1"
RESOLVE_SCHEMA = "https://mlprov.dev/schemas/resolved-version/v1"
PULL_SCHEMA = "https://mlprov.dev/schemas/pulled-version/v1"

REGISTER_EPILOG = """\b
Examples:
  mlprov register model/ --evidence evidence/
  mlprov register model/ --evidence evidence/ --registry /srv/mlprov --json
\b
Exit codes: 0 registered (or already registered), 1 the model or its evidence did
not verify against the registry's trust (the refusal is audited), 2 usage, 3 other.
"""


@click.command(epilog=REGISTER_EPILOG)
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@click.option("--evidence", required=True, metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The evidence directory `mlprov attest` wrote.")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit log).")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def register(model_path: Path, evidence: Path, reason: str | None, registry_dir: Path | None,
             actor: str | None, as_json: bool) -> None:
    """Verify MODEL_PATH against its evidence and the registry's trust, then store it.

    Assigns the next version number for the model's name (from its signed
    provenance). The same identity and files again return the existing version;
    the same identity with different files is registered and flagged
    non-reproducible.
    """
    with open_registry(registry_dir) as reg:
        result = reg.register(model_path, evidence=evidence, actor=actor, reason=reason)
    if as_json:
        emit_json({"schema": REGISTER_SCHEMA, "name": result.name, "version": result.version,
                   "uri": result.uri, "identity": result.identity,
                   "rootDigest": result.root_digest, "created": result.created,
                   "reproducible": result.reproducible,
                   "sameIdentityAs": list(result.same_identity), "decision": result.decision,
                   "auditSeq": result.seq})
    else:
        echo(result.uri)
    if not result.created:
        note(f"already registered as {result.uri} (same identity and files)")
    elif not result.reproducible:
        others = ", ".join(f"v{v}" for v in result.same_identity)
        note(f"warning: non-reproducible: {result.uri} has the same identity as {others} "
             "but different files")
    else:
        note(f"registered {result.uri} ({result.identity}, {result.root_digest})")


@click.group()
def models() -> None:
    """List, show, describe, rename or delete registered models."""


for _command in MODEL_COMMANDS:  # list, describe, rename, delete: mlprov._cli.catalog
    models.add_command(_command)


@models.command("show")
@click.argument("name")
@registry_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Show at most this many versions, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON.")
def show_model(name: str, registry_dir: Path | None, limit: int, as_json: bool) -> None:
    """Show NAME's versions (stage, identity, root digest) and aliases."""
    with open_registry(registry_dir) as reg:
        shown = reg.show_model(name, limit=limit)
    if as_json:
        emit_json({"schema": MODEL_SCHEMA, **shown})
        return
    echo(f"{name}  (latest v{shown['latestVersion']})")
    if shown.get("description"):
        for line in shown["description"].splitlines():
            echo(f"  {line}")
    for key, value in shown.get("tags", {}).items():
        echo(f"  tag {key}={value}")
    for alias, info in sorted(shown["aliases"].items()):
        echo(f"  @{alias} -> v{info['version']}")
    for v in shown["versions"]:
        flags = "" if v["reproducible"] else "  NON-REPRODUCIBLE"
        reviews = f"  {v['reviews']} review(s)" if v["reviews"] else ""
        tags = "".join(f"  {k}={value}" for k, value in v.get("tags", {}).items())
        echo(f"  v{v['version']:<5} {v['stage']:<10} {v['rootDigest'][:19]}  "
                   f"{v['identity'][:24]}{reviews}{flags}{tags}")
        if v.get("description"):
            echo(f"         {v['description'].splitlines()[0]}")


RESOLVE_EPILOG = """\b
Examples:
  mlprov resolve models:/credit-risk@production
  mlprov resolve models:/credit-risk/3 --json
  mlprov resolve models:/credit-risk/Staging
\b
An alias, stage or latest URI that leads to an Archived version is refused
(exit 3) unless --allow-archived, which is recorded in the audit log.
\b
A lookup; `mlprov pull` and mlprov.load() verify what they hand out. It still
refuses a log cut or rolled back (shorter than the registry's signed head).
A deploy pipeline keeps the last head it saw and refuses to go backwards:
  mlprov resolve models:/credit-risk@production --head-file ci/registry-head.json
"""


def _head_options(fn: Any) -> Any:
    fn = click.option("--actor", metavar="NAME",
                      help="Who asks (recorded with --allow-archived; default: "
                           "$MLPROV_ACTOR, else user@host).")(fn)
    fn = click.option("--allow-archived", is_flag=True,
                      help="Hand out an Archived version an alias or stage URI leads to "
                           "(refused otherwise); recorded in the audit log.")(fn)
    fn = click.option("--head-file", metavar="FILE", type=click.Path(dir_okay=False,
                                                                     path_type=Path),
                      help="Keep the registry's signed head here: refuse a head older than "
                           "the one recorded (a rollback), then record this one.")(fn)
    return click.option("--min-seq", type=click.IntRange(min=0), metavar="N",
                        help="Refuse a registry whose signed head is older than audit entry "
                             "N.")(fn)


@click.command(epilog=RESOLVE_EPILOG)
@uri_argument
@registry_option
@click.option("--trust", metavar="TRUST_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify the registry's signed head with this trust file (it must give the "
                   "registry's key the registry role) instead of the registry's own key.")
@_head_options
@click.option("--json", "as_json", is_flag=True, help="Print the resolution as JSON.")
def resolve(uri: str, registry_dir: Path | None, trust: Path | None, min_seq: int | None,
            head_file: Path | None, allow_archived: bool, actor: str | None,
            as_json: bool) -> None:
    """Resolve URI (models:/NAME@ALIAS, models:/NAME/N, models:/NAME/STAGE) to a version."""
    pinned = None
    if trust is not None:
        from mlprov.trust import load_trust

        pinned = load_trust(trust)
    with open_registry(registry_dir) as reg:
        resolved = reg.resolve(uri, trust=pinned, min_seq=min_seq, head_file=head_file,
                               allow_archived=allow_archived, actor=actor)
    if as_json:
        emit_json({"schema": RESOLVE_SCHEMA, **resolved.to_json_dict()})
        return
    record = resolved.record
    echo(f"models:/{record.name}/{record.version}")
    note(f"{uri} -> v{record.version} ({record.stage.value}, {record.root_digest})")


PULL_EPILOG = """\b
Examples:
  mlprov pull models:/credit-risk@production --out serving/model
  mlprov pull models:/credit-risk/3 --out /tmp/m --trust deploy-trust.yaml
  mlprov pull models:/credit-risk@production --out m --head-file ci/registry-head.json
\b
Exit codes: 0 pulled and verified, 1 a check failed (nothing is written),
2 usage, 3 other (unknown model, --out not empty).
"""


@click.command(epilog=PULL_EPILOG)
@uri_argument
@click.option("--out", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) directory to copy the model's files into.")
@click.option("--trust", metavar="TRUST_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify with this trust file instead of the registry's own (it must give "
                   "the registry's key the registry role).")
@registry_option
@_head_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pull(uri: str, out: Path, trust: Path | None, registry_dir: Path | None,
         min_seq: int | None, head_file: Path | None, allow_archived: bool,
         actor: str | None, as_json: bool) -> None:
    """Copy a version's files to --out, verifying every byte, its evidence and decision."""
    from mlprov.trust import load_trust

    pinned = load_trust(trust) if trust is not None else None
    with open_registry(registry_dir) as reg:
        result = reg.pull(uri, out, trust=pinned, min_seq=min_seq, head_file=head_file,
                          allow_archived=allow_archived, actor=actor)
    record = result.resolved.record
    if as_json:
        emit_json({"schema": PULL_SCHEMA, **result.resolved.to_json_dict(),
                   "path": str(result.path), "files": result.files, "bytes": result.bytes})
        return
    echo(str(result.path))
    note(f"pulled models:/{record.name}/{record.version} ({result.files} files, "
         f"{result.bytes} bytes): files, evidence and the decision behind {uri} verified")
