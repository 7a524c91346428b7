"""``mlprov register``, ``mlprov models``, ``mlprov resolve`` and ``mlprov pull``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlprov._cli.catalog import MODEL_COMMANDS
from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import (
    VERSION,
    actor_option,
    open_registry,
    registry_option,
    served_uri_argument,
)

REGISTER_SCHEMA = "https://mlprov.dev/schemas/registered-version/v1"
MODEL_SCHEMA = "https://mlprov.dev/schemas/registry-model/v1"
RESOLVE_SCHEMA = "https://mlprov.dev/schemas/resolved-version/v1"
PULL_SCHEMA = "https://mlprov.dev/schemas/pulled-version/v1"
RESOLVE_DEPLOYMENT_SCHEMA = "https://mlprov.dev/schemas/resolved-deployment/v1"
PULL_DEPLOYMENT_SCHEMA = "https://mlprov.dev/schemas/pulled-deployment/v1"

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


SHOW_EPILOG = """\b
Examples:
  mlprov models show credit-risk
  mlprov models show credit-risk --version 3
  mlprov models show credit-risk --version 3 --json
\b
With --version, the version is re-verified from the registry's blob store first
and every value shown comes from its verified evidence and signed decisions: the
identity's inputs, metrics, evaluator, SBOM, parents and children, reviews, its
stage and aliases and its decision history.
Exit codes: 0 shown, 1 a stored blob, row or decision does not verify (nothing
is shown), 2 usage, 3 other (unknown model or version).
"""


@models.command("show", epilog=SHOW_EPILOG)
@click.argument("name")
@click.option("--version", "version", type=VERSION, metavar="N",
              help="Show what this version holds, re-verified.")
@registry_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Show at most this many versions, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON.")
def show_model(name: str, version: int | None, registry_dir: Path | None, limit: int,
               as_json: bool) -> None:
    """Show NAME's versions (stage, identity, root digest) and aliases, or one version."""
    if version is not None:
        from mlprov._cli.version_view import show_version

        show_version(name, version, registry_dir, as_json)
        return
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
  mlprov resolve deployments:/credit-stack@production --json
\b
An alias, stage or latest URI that leads to an Archived version is refused
(exit 3) unless --allow-archived, which is recorded in the audit log.
A deployments:/ URI (NAME/N, NAME@ALIAS, NAME/STAGE, NAME/latest) is verified
with every member (decision, signed spec, each member's evidence and stage).
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
@served_uri_argument
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
    if uri.startswith("deployments:/"):
        _no_archived(allow_archived)
        with open_registry(registry_dir) as reg:
            deployment = reg.resolve_deployment(uri, trust=pinned, min_seq=min_seq,
                                                head_file=head_file)
        if as_json:
            emit_json({"schema": RESOLVE_DEPLOYMENT_SCHEMA, **deployment.to_json_dict()})
            return
        echo(deployment.version_uri)
        members = ", ".join(m.uri for m in deployment.members)
        note(f"{uri} -> v{deployment.version} ({deployment.stage.value}, "
             f"{deployment.spec_digest}): {members}, each verified")
        return
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
  mlprov pull deployments:/credit-stack@production --out serving/   # serving/<model>/
\b
Exit codes: 0 pulled and verified, 1 a check failed (nothing is written),
2 usage, 3 other (unknown model, --out not empty).
"""


@click.command(epilog=PULL_EPILOG)
@served_uri_argument
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
    """Copy a version's files to --out, verifying every byte, its evidence and decision.

    A deployments:/ URI writes one directory per member (named after its model).
    """
    from mlprov.trust import load_trust

    pinned = load_trust(trust) if trust is not None else None
    if uri.startswith("deployments:/"):
        _no_archived(allow_archived)
        with open_registry(registry_dir) as reg:
            pulled = reg.pull_deployment(uri, out, trust=pinned, min_seq=min_seq,
                                         head_file=head_file)
        if as_json:
            emit_json({"schema": PULL_DEPLOYMENT_SCHEMA, **pulled.resolved.to_json_dict(),
                       "path": str(pulled.path),
                       "pulled": [m.to_json_dict() for m in pulled.members]})
            return
        echo(str(pulled.path))
        for member in pulled.members:
            note(f"pulled {member.uri} to {member.path} ({member.files} files, "
                 f"{member.bytes} bytes)")
        note(f"every member of {pulled.resolved.version_uri}, its files, evidence and the "
             f"decision behind {uri} verified")
        return
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


def _no_archived(allow_archived: bool) -> None:
    if allow_archived:
        raise click.UsageError("--allow-archived is for models:/ URIs; name the deployment's "
                               "version (deployments:/NAME/N) to read an Archived one")
