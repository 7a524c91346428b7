"""``mlprov deployment create|promote|list|show`` and ``mlprov deployment alias set|delete``."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.output import echo, emit_json
from mlprov._cli.registry_common import (
    VERSION,
    actor_option,
    dry_run_option,
    emit_change,
    emit_dry_run,
    model_uri,
    open_registry,
    registry_option,
    stage_change_options,
    version_argument,
)

DEPLOYMENTS_SCHEMA = "https://mlprov.dev/schemas/deployments/v1"

EPILOG = """\b
Examples:
  mlprov deployment create fraud-stack --model credit-risk@production \\
      --model models:/fraud-rules/3 --reason "Q3 release"
  mlprov deployment promote fraud-stack 1 --to Production --reason "go live"
  mlprov deployment alias set fraud-stack production 1 --reason "serve it"
  mlprov deployment show fraud-stack
  mlprov pull deployments:/fraud-stack@production --out serving/
"""


@click.group(epilog=EPILOG)
def deployment() -> None:
    """Pin several model versions as one versioned, signed unit, and promote it."""


def _uris(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
          ) -> list[str]:
    out = []
    for value in values:
        uri = value if value.startswith("models:/") else f"models:/{value}"
        out.append(model_uri(uri))
    return out


@deployment.command("create")
@click.argument("name")
@click.option("--model", "models", required=True, multiple=True, callback=_uris,
              metavar="NAME@ALIAS|NAME/N|NAME/STAGE",
              help="A model version to pin (a models:/ URI, the prefix optional); repeatable. "
                   "Aliases and stages are resolved now.")
@click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the audit log).")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def create(name: str, models: list[str], reason: str, registry_dir: Path | None,
           actor: str | None, as_json: bool) -> None:
    """Create the next version of deployment NAME from the given model versions."""
    with open_registry(registry_dir) as reg:
        result = reg.create_deployment(name, models, reason=reason, actor=actor)
    pinned = ", ".join(result.details.get("models", []))
    emit_change(result, as_json, f"deployments:/{name}/{result.version}: {pinned}")


@deployment.command("promote")
@click.argument("name")
@version_argument
@stage_change_options("deployment")
def promote(name: str, version: int, stage: str, reason: str, registry_dir: Path | None,
            actor: str | None, as_json: bool) -> None:
    """Move deployment NAME version VERSION to a stage (its gate must allow every member)."""
    with open_registry(registry_dir) as reg:
        result = reg.promote_deployment(name, version, to=stage, reason=reason, actor=actor)
    emit_change(result, as_json, f"deployments:/{name}/{version}: {result.details.get('from')} "
                                 f"-> {result.details.get('to')}")


@deployment.command("list")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the deployments as JSON.")
def list_cmd(registry_dir: Path | None, as_json: bool) -> None:
    """List every deployment version."""
    with open_registry(registry_dir) as reg:
        found = reg.list_deployments()
    if as_json:
        emit_json({"schema": DEPLOYMENTS_SCHEMA, "deployments": found})
        return
    for d in found:
        echo(f"{d['uri']}  {d['stage']}")


@deployment.command("show")
@click.argument("name")
@click.argument("version", required=False, type=VERSION)
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
def show(name: str, version: int | None, registry_dir: Path | None, as_json: bool) -> None:
    """Show deployment NAME (or one VERSION): members with verified digests and stages.

    The signed spec, every member (its evidence, and its stage as its signed
    decision puts it) and every deployment alias's decision are verified first.
    """
    with open_registry(registry_dir) as reg:
        views = reg.show_deployment(name, version)
    if as_json:
        emit_json({"schema": DEPLOYMENTS_SCHEMA,
                   "deployments": [v.to_json_dict() for v in views]})
        return
    for view in views:
        record = view.record
        aliases = "".join(f"  @{alias}" for alias in view.aliases)
        echo(f"deployments:/{record.name}/{record.version}  {record.stage.value}{aliases}  "
             f"(signed by {view.signer})")
        for member in view.members:
            echo(f"  {member.uri}  {member.stage.value:<10} {member.root_digest}  "
                 f"(from {member.requested})")


ALIAS_EPILOG = """\b
Examples:
  mlprov deployment alias set fraud-stack production 2 --reason "go live"
  mlprov deployment alias set fraud-stack production 2 --reason "?" --dry-run
  mlprov deployment alias delete fraud-stack canary --reason "experiment over"
\b
Gated like a model alias: the alias's gate in the registry's mlprov.toml (with its
thresholds) must allow every member, over its own facts and stage (an alias gated
as production takes only Production members). Signed and audited; `delete` is
never gated. Exit codes: 0 done, 1 denied (audited), 2 usage, 3 other.
"""


@deployment.group("alias", epilog=ALIAS_EPILOG)
def alias() -> None:
    """Point a deployment alias (deployments:/NAME@ALIAS) at a version, or delete it."""


@alias.command("set", epilog=ALIAS_EPILOG)
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@version_argument
@click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the audit log).")
@dry_run_option
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def alias_set(name: str, alias_name: str, version: int, reason: str, dry_run: bool,
              registry_dir: Path | None, actor: str | None, as_json: bool) -> None:
    """Point deployments:/NAME@ALIAS at VERSION, if the alias's gate allows every member."""
    with open_registry(registry_dir) as reg:
        result = reg.set_deployment_alias(name, alias_name, version, reason=reason,
                                          actor=actor, dry_run=dry_run)
    what = f"deployments:/{name}@{alias_name} -> v{version}"
    if dry_run:
        emit_dry_run(result, as_json, what)
        return
    before = result.details.get("from")
    emit_change(result, as_json, f"deployments:/{name}@{alias_name}: "
                                 f"{'unset' if before is None else f'v{before}'} -> v{version}")


@alias.command("delete", epilog=ALIAS_EPILOG)
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the audit log).")
@registry_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def alias_delete(name: str, alias_name: str, reason: str, registry_dir: Path | None,
                 actor: str | None, as_json: bool) -> None:
    """Remove deployments:/NAME@ALIAS (never gated; signed and audited)."""
    with open_registry(registry_dir) as reg:
        result = reg.delete_deployment_alias(name, alias_name, reason=reason, actor=actor)
    emit_change(result, as_json, f"deployments:/{name}@{alias_name}: "
                                 f"v{result.details.get('from')} -> unset")
