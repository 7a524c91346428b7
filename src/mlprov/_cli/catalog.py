"""The catalog: ``models list|describe|rename|delete``, ``versions``, ``tag set|delete``.

Searches take MLflow's filter syntax and page with opaque tokens; descriptions,
tags, renames and deletions are signed, audited changes (docs/registry.md,
"The catalog").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import (
    VERSION,
    actor_option,
    emit_change,
    open_registry,
    registry_option,
    version_argument,
)

if TYPE_CHECKING:
    from mlprov.registry import Page

MODELS_SCHEMA = "https://mlprov.dev/schemas/registry-models/v1"
VERSIONS_SCHEMA = "https://mlprov.dev/schemas/registry-versions/v1"

F = Callable[..., Any]


def _search_options(scope: str) -> Callable[[F], F]:
    """``--filter``, ``--order-by`` (repeatable), ``--limit``, ``--page-token``, ``--json``."""
    fields = ("name, alias, stage, created_at, description, tags.KEY" if scope == "models"
              else "name, version, stage, alias, identity, root_digest, created_at, "
                   "description, tags.KEY, metrics.KEY")
    orders = "name or created_at" if scope == "models" else \
        "version, created_at, name or metrics.KEY"

    def decorate(fn: F) -> F:
        fn = click.option("--json", "as_json", is_flag=True,
                          help=f"Print the {scope} and the next page token as JSON.")(fn)
        fn = registry_option(fn)
        fn = click.option("--page-token", metavar="TOKEN",
                          help="Continue after the page that printed this token (same "
                               "filter, order and model).")(fn)
        fn = click.option("--limit", type=click.IntRange(1, 1000), default=100,
                          show_default=True, help=f"At most this many {scope} per page.")(fn)
        fn = click.option("--order-by", "order_by", multiple=True, metavar="'FIELD [ASC|DESC]'",
                          help=f"Sort by {orders} (repeatable).")(fn)
        return click.option("--filter", "filter_text", metavar="EXPR",
                            help=f"MLflow's search syntax over {fields}: "
                                 "FIELD OP VALUE joined by AND.")(fn)
    return decorate


def _next_page(page: Page[Any]) -> None:
    if page.next_page_token is not None:
        note(f"more: --page-token {page.next_page_token}")


MODELS_LIST_EPILOG = """\b
Examples:
  mlprov models list
  mlprov models list --filter "name LIKE 'ranker-%' AND tags.team = 'search'"
  mlprov models list --filter "stage = 'Production'" --order-by "created_at DESC" --json
  mlprov models list --limit 50 --page-token TOKEN
\b
Exit codes: 0 listed, 2 a filter, order or page token that does not parse (or is
not this query's), 3 other.
"""


@click.command("list", epilog=MODELS_LIST_EPILOG)
@_search_options("models")
def list_models(filter_text: str | None, order_by: tuple[str, ...], limit: int,
                page_token: str | None, registry_dir: Path | None, as_json: bool) -> None:
    """List the models in use (name, latest version, aliases, tags), filtered and paged."""
    with open_registry(registry_dir) as reg:
        page = reg.search_models(filter_text, order_by=list(order_by) or None, limit=limit,
                                 page_token=page_token)
    if as_json:
        emit_json({"schema": MODELS_SCHEMA, "models": [m.to_json_dict() for m in page.items],
                   "nextPageToken": page.next_page_token})
        return
    for model in page.items:
        aliases = " ".join(f"@{a}=v{v}" for a, v in model.aliases.items())
        tags = " ".join(f"{k}={v}" for k, v in model.tags.items())
        echo(f"{model.name}  latest v{model.latest_version}  {aliases}  {tags}".rstrip())
    _next_page(page)


VERSIONS_EPILOG = """\b
Examples:
  mlprov versions list credit-risk
  mlprov versions list credit-risk --filter "metrics.`test/auc` > 0.85 AND stage = 'Staging'"
  mlprov versions list --filter "root_digest = 'sha256:...'"        # every model
  mlprov versions list credit-risk --order-by "metrics.auc DESC" --limit 10 --json
  mlprov versions delete credit-risk 2 --reason "trained on leaked data"
"""


@click.group(epilog=VERSIONS_EPILOG)
def versions() -> None:
    """Search versions (filters, order, pages); delete one as a tombstone."""


@versions.command("list", epilog=VERSIONS_EPILOG)
@click.argument("name", required=False)
@_search_options("versions")
def list_versions(name: str | None, filter_text: str | None, order_by: tuple[str, ...],
                  limit: int, page_token: str | None, registry_dir: Path | None,
                  as_json: bool) -> None:
    """List the versions in use of NAME (or of every model), filtered and paged.

    Newest first by default. A lookup, like `mlprov resolve`: `mlprov pull`
    verifies what it hands out, `mlprov audit verify` the rows.
    """
    with open_registry(registry_dir) as reg:
        page = reg.search_versions(name, filter=filter_text, order_by=list(order_by) or None,
                                   limit=limit, page_token=page_token)
    if as_json:
        emit_json({"schema": VERSIONS_SCHEMA, "name": name,
                   "versions": [v.to_json_dict() for v in page.items],
                   "nextPageToken": page.next_page_token})
        return
    for v in page.items:
        aliases = " ".join(f"@{a}" for a in v.aliases)
        tags = " ".join(f"{k}={value}" for k, value in v.tags.items())
        echo(f"{v.uri}  {v.stage.value:<10} {v.root_digest[:19]}  {aliases}  {tags}".rstrip())
    _next_page(page)


def _change_options(fn: F) -> F:
    fn = click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")(fn)
    return actor_option(registry_option(fn))


def _reason(required: bool) -> Callable[[F], F]:
    return click.option("--reason", required=required, metavar="TEXT",
                        help="Why (recorded in the audit log).")


def _version_option(fn: F) -> F:
    return click.option("--version", "version", type=VERSION, metavar="N",
                        help="A version of the model instead of the model itself.")(fn)


def _label(name: str, version: int | None) -> str:
    return name if version is None else f"{name} v{version}"


DELETE_VERSION_EPILOG = """\b
Examples:
  mlprov versions delete credit-risk 2 --reason "trained on leaked data"
\b
A tombstone: the version is no longer resolved, pulled or changed; its evidence,
decisions and audit trail stay and still verify. A version with an alias or in
Production is not deleted: move it first (exit 3). Exit codes: 0 deleted, 1 a
policy under [gates.changes] denied it, 2 usage, 3 other.
"""


@versions.command("delete", epilog=DELETE_VERSION_EPILOG)
@click.argument("name")
@version_argument
@_reason(True)
@_change_options
def delete_version(name: str, version: int, reason: str, registry_dir: Path | None,
                   actor: str | None, as_json: bool) -> None:
    """Delete version VERSION of NAME as a tombstone (signed and audited)."""
    with open_registry(registry_dir) as reg:
        result = reg.delete_version(name, version, reason=reason, actor=actor)
    emit_change(result, as_json, f"models:/{name}/{version} deleted")


DESCRIBE_EPILOG = """\b
Examples:
  mlprov models describe credit-risk "Scores loan applications (EU)."
  mlprov models describe credit-risk --version 3 "Retrained on 2026-Q3 data."
  mlprov models describe credit-risk ""          # clear it
"""


@click.command("describe", epilog=DESCRIBE_EPILOG)
@click.argument("name")
@click.argument("text")
@_version_option
@_reason(False)
@_change_options
def describe(name: str, text: str, version: int | None, reason: str | None,
             registry_dir: Path | None, actor: str | None, as_json: bool) -> None:
    """Set the description of NAME (or of one version) to TEXT; signed and audited."""
    with open_registry(registry_dir) as reg:
        result = reg.set_description(name, text, version=version, reason=reason, actor=actor)
    done = "description cleared" if not text else "description set"
    emit_change(result, as_json, f"{_label(name, version)}: {done}")


RENAME_EPILOG = """\b
Examples:
  mlprov models rename credit-risk credit-risk-eu --reason "EU model only"
\b
Versions, stages, aliases, reviews and tags follow the new name; what was signed
before keeps the old one, and models:/OLD/... then fails naming the new name.
Exit codes: 0 renamed, 1 a policy under [gates.changes] denied it, 2 usage,
3 other (unknown model, the new name taken).
"""


@click.command("rename", epilog=RENAME_EPILOG)
@click.argument("old")
@click.argument("new")
@_reason(False)
@_change_options
def rename(old: str, new: str, reason: str | None, registry_dir: Path | None,
           actor: str | None, as_json: bool) -> None:
    """Rename the model OLD to NEW (signed and audited)."""
    with open_registry(registry_dir) as reg:
        result = reg.rename_model(old, new, reason=reason, actor=actor)
    emit_change(result, as_json, f"{old} -> {new}")


DELETE_MODEL_EPILOG = """\b
Examples:
  mlprov models delete credit-risk-old --reason "retired"
\b
Tombstones the model and each version in use (see `mlprov versions delete`); a
model with an alias or a version in Production is not deleted (exit 3).
Registering a new version of it later puts it back in use.
"""


@click.command("delete", epilog=DELETE_MODEL_EPILOG)
@click.argument("name")
@_reason(False)
@_change_options
def delete_model(name: str, reason: str | None, registry_dir: Path | None, actor: str | None,
                 as_json: bool) -> None:
    """Delete the model NAME and its versions as tombstones (signed and audited)."""
    with open_registry(registry_dir) as reg:
        result = reg.delete_model(name, reason=reason, actor=actor)
    versions_deleted = result.details.get("versions") or []
    emit_change(result, as_json, f"{name} deleted ({len(versions_deleted)} version(s))")


#: The catalog's commands of the ``models`` group (:mod:`mlprov._cli.models`).
MODEL_COMMANDS = (list_models, describe, rename, delete_model)


TAG_EPILOG = """\b
Examples:
  mlprov tag set credit-risk team search
  mlprov tag set credit-risk --version 3 dataset 2026-q3 --reason "retrained"
  mlprov tag delete credit-risk --version 3 dataset
\b
Tags are signed, audited changes (the old and new value are recorded); search
them with --filter "tags.team = 'search'".
"""


@click.group(epilog=TAG_EPILOG)
def tag() -> None:
    """Set or delete tags of models and versions (signed and audited)."""


@tag.command("set", epilog=TAG_EPILOG)
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False, default="")
@_version_option
@_reason(False)
@_change_options
def set_tag(name: str, key: str, value: str, version: int | None, reason: str | None,
            registry_dir: Path | None, actor: str | None, as_json: bool) -> None:
    """Set tag KEY of NAME (or of one version) to VALUE (default: empty)."""
    with open_registry(registry_dir) as reg:
        result = reg.set_tag(name, key, value, version=version, reason=reason, actor=actor)
    emit_change(result, as_json, f"{_label(name, version)}: {key}={value}")


@tag.command("delete", epilog=TAG_EPILOG)
@click.argument("name")
@click.argument("key")
@_version_option
@_reason(False)
@_change_options
def delete_tag(name: str, key: str, version: int | None, reason: str | None,
               registry_dir: Path | None, actor: str | None, as_json: bool) -> None:
    """Delete tag KEY of NAME (or of one version)."""
    with open_registry(registry_dir) as reg:
        result = reg.delete_tag(name, key, version=version, reason=reason, actor=actor)
    emit_change(result, as_json, f"{_label(name, version)}: {key} deleted")
