"""``mlprov registry``: create a registry and change what it enforces (audited)."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from mlprov._cli.options import check_threshold_flags, threshold_option
from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import (
    F,
    actor_option,
    emit_change,
    open_registry,
    registry_option,
)
from mlprov._cli.signer_options import sigstore_options

INIT_SCHEMA = "https://mlprov.dev/schemas/registry-info/v1"
UPGRADE_SCHEMA = "https://mlprov.dev/schemas/registry-upgrade/v1"

EPILOG = """\b
Examples:
  mlprov registry init --trust trust.yaml                  # ~/.mlprov, shipped policies
  mlprov registry init --trust trust.yaml --threshold 'test/auc>=0.85' \\
      --threshold 'val/auc>=0.85' --threshold 'slice:auc>=0.6'
  mlprov registry init --db postgresql+psycopg://mlprov@db.internal/mlprov \\
      --blobs s3://models/registry --trust trust.yaml --key registry.key
  mlprov registry init --registry /srv/mlprov --trust trust.yaml --policies policies/ \\
      --key registry.key
  mlprov registry set-trust trust.yaml --reason "add reviewer bob"
  mlprov registry set-policies policies/ --reason "raise the AUC threshold"
  mlprov registry set-config ~/.mlprov/mlprov.toml --reason "webhook for alias changes"
  mlprov registry set-thresholds --threshold 'test/auc>=0.9' --reason "stricter"
  MLPROV_TOKEN=mlpt_... mlprov registry set-trust trust.yaml --reason "add bob" \
      --registry https://mlprov.example.com     # through a server: an admin's token
  mlprov registry upgrade --registry postgresql+psycopg://mlprov@db.internal/mlprov
  mlprov registry gc --dry-run
  mlprov registry migrate --to postgresql+psycopg://mlprov@db.internal/mlprov \
      --blobs s3://models/registry
\b
Thresholds (--threshold, repeatable): NAME>=N or NAME<=N for an overall metric of
the signed eval, slice:NAME>=N for a metric in every slice that reports it. They
replace the shipped thresholds (auc, accuracy; slice auc) of the production gate.
\b
The registry lives in --registry DIR|URL, else $MLPROV_REGISTRY, else $MLPROV_HOME,
else ~/.mlprov. A team registry (a database URL) keeps no key: machines that change
it name it with --key (init) or $MLPROV_REGISTRY_KEY; resolve and pull need none.
"""


@click.group(epilog=EPILOG)
def registry() -> None:
    """Create a model registry and change the trust, policies and config it enforces.

    Every change after `init` is an audited, signed registry change.
    """


@registry.command()
@registry_option
@click.option("--trust", required=True, metavar="TRUST_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The trust file (who may sign what) the registry enforces.")
@click.option("--policies", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Rego policies for the gates (default: the shipped policies).")
@click.option("--key", metavar="PRIVATE_KEY",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The registry's signing key (default: a new ECDSA P-256 key, mode 0600).")
@click.option("--db", "db", metavar="URL",
              help="A team registry's database (postgresql+psycopg://USER@HOST/DB); the same "
                   "as --registry URL.")
@click.option("--blobs", metavar="s3://BUCKET/PREFIX",
              help="A team registry's blob store (or a directory every machine mounts).")
@sigstore_options
@threshold_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(registry_dir: Path | str | None, trust: Path, policies: Path | None,
         key: Path | None, db: str | None, blobs: str | None, sigstore: bool,
         identity_token: str | None, staging: bool, trust_config: Path | None,
         thresholds: tuple[str, ...], actor: str | None, as_json: bool) -> None:
    """Create a registry: database, blob store, signing key, trust, policies, mlprov.toml.

    With --sigstore the registry signs its decisions keyless (no key); the trust
    file must give that identity the registry role in a sigstore rule.
    """
    from mlprov.registry import Registry

    token_flag = (click.get_current_context().get_parameter_source("identity_token")
                  is ParameterSource.COMMANDLINE)
    if key is not None and sigstore:
        raise click.UsageError("give --key PRIVATE_KEY or --sigstore, not both")
    if not sigstore and (staging or trust_config is not None or token_flag):
        raise click.UsageError("--identity-token, --staging and --trust-config need --sigstore")
    if staging and trust_config is not None:
        raise click.UsageError("give --staging or --trust-config, not both")
    if db is not None:
        if registry_dir is not None and str(registry_dir) != db:
            raise click.UsageError("give the database as --db URL or --registry URL, not both")
        registry_dir = db
    with Registry.init(registry_dir, trust=trust, policies=policies, key=key,
                       actor=actor, sigstore=sigstore,
                       identity_token=identity_token if sigstore else None, staging=staging,
                       trust_config=trust_config, thresholds=thresholds,
                       blobs=blobs) as created:
        info = {"schema": INIT_SCHEMA, **created.describe()}
    if as_json:
        emit_json(info)
        return
    echo(str(info["home"]))
    signing = "keyless, Sigstore" if sigstore else f"signing key {info['publicKey']}"
    note(f"created registry {info['id']} ({signing}); gates in {info['home']}/mlprov.toml")


@registry.command()
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def show(registry_dir: Path | None, as_json: bool) -> None:
    """Show where the registry is and what it enforces."""
    with open_registry(registry_dir) as reg:
        info = {"schema": INIT_SCHEMA, **reg.describe()}
    if as_json:
        emit_json(info)
        return
    echo(f"registry {info['id']} at {info['home']}")
    echo(f"  trust     {info['trust']}")
    signers = info["signers"]
    assert isinstance(signers, list)
    for signer in signers:
        echo(f"    {signer['name']}: {', '.join(signer['roles'])}")
    echo(f"  policies  {info['policies']}")
    gates = info["gates"]
    assert isinstance(gates, dict)
    for stage, gate in gates["stages"].items():
        echo(f"    stage {stage}: {gate}")
    for alias, gate in gates["aliases"].items():
        echo(f"    alias {alias}: {gate}")
    for change, gate in gates.get("changes", {}).items():
        echo(f"    change {change}: {gate}")
    echo(f"  config    {info['config']}")
    lines = info["thresholds"]
    assert isinstance(lines, list)
    echo(f"  thresholds {', '.join(lines) if lines else '(the policy data own)'}")
    echo(f"  audit log {info['auditHead']} entries")


def _reason_option(fn: F) -> F:
    return click.option("--reason", required=True, metavar="TEXT",
                        help="Why (recorded in the audit log).")(fn)


@registry.command("set-trust")
@registry_option
@click.argument("trust", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_reason_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def set_trust(registry_dir: Path | None, trust: Path, reason: str, actor: str | None,
              as_json: bool) -> None:
    """Replace the trust file the registry enforces (audited, signed)."""
    with open_registry(registry_dir) as reg:
        result = reg.set_trust(trust, reason=reason, actor=actor)
    emit_change(result, as_json, f"trust set to {result.details.get('to')}")


@registry.command("set-policies")
@registry_option
@click.argument("policies", required=False,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@_reason_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def set_policies(registry_dir: Path | None, policies: Path | None, reason: str,
                 actor: str | None, as_json: bool) -> None:
    """Replace the policies (default: the shipped ones); audited, signed."""
    with open_registry(registry_dir) as reg:
        result = reg.set_policies(policies, reason=reason, actor=actor)
    emit_change(result, as_json, f"policies set to {result.details.get('to')}")


@registry.command("set-config")
@registry_option
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_reason_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def set_config(registry_dir: Path | None, config: Path, reason: str, actor: str | None,
               as_json: bool) -> None:
    """Record a new mlprov.toml (gates, hooks); checked, copied in, audited, signed."""
    with open_registry(registry_dir) as reg:
        result = reg.set_config(config, reason=reason, actor=actor)
    emit_change(result, as_json, f"config set to {result.details.get('to')}")


SET_THRESHOLDS_EPILOG = """\b
Examples:
  mlprov registry set-thresholds --threshold 'test/auc>=0.85' \\
      --threshold 'val/auc>=0.85' --reason "the seed's metrics"
  mlprov registry set-thresholds 'test/auc>=0.9' 'slice:auc>=0.7' --reason stricter
  mlprov registry set-thresholds --clear --reason "back to data.yaml"
\b
The set replaces the whole previous set. The policies' own tests run first.
"""


@registry.command("set-thresholds", epilog=SET_THRESHOLDS_EPILOG)
@registry_option
@click.argument("threshold_args", nargs=-1, metavar="[THRESHOLD]...",
                callback=check_threshold_flags)
@threshold_option
@click.option("--clear", is_flag=True,
              help="Remove the registry's thresholds: the policy data's own apply again.")
@_reason_option
@actor_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def set_thresholds(registry_dir: Path | None, threshold_args: tuple[str, ...],
                   thresholds: tuple[str, ...], clear: bool, reason: str, actor: str | None,
                   as_json: bool) -> None:
    """Replace the metric thresholds of the production gate; audited, signed."""
    given = (*threshold_args, *thresholds)
    if clear == bool(given):
        raise click.UsageError("give thresholds (--threshold NAME>=N, repeatable) or --clear")
    with open_registry(registry_dir) as reg:
        result = reg.set_thresholds(list(given), reason=reason, actor=actor)
    lines = result.details.get("thresholds") or []
    emit_change(result, as_json,
                f"thresholds set to {', '.join(lines) if lines else '(the policy data own)'}")


@registry.command()
@click.option("--registry", "location", metavar="DIR|URL",
              help="The registry directory, or its database URL "
                   "(postgresql+psycopg://USER@HOST/DB); default: $MLPROV_HOME, else ~/.mlprov.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def upgrade(location: str | None, as_json: bool) -> None:
    """Bring the registry's database to this mlprov's schema version.

    Applies the missing migration steps in one transaction (all or none); a
    database already at this version is left alone. Back up the registry first:
    older mlprov releases cannot open an upgraded database.
    """
    from mlprov.registry import upgrade_registry

    done = upgrade_registry(location)
    if as_json:
        emit_json({"schema": UPGRADE_SCHEMA, "fromVersion": done.from_version,
                   "toVersion": done.to_version, "applied": list(done.applied)})
        return
    if not done.changed:
        echo(f"schema version {done.to_version}: up to date")
        return
    echo(f"schema version {done.from_version} -> {done.to_version}")
    for step in done.applied:
        note(f"applied {step}")


GC_SCHEMA = "https://mlprov.dev/schemas/registry-gc/v1"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    """``90``, ``30s``, ``15m``, ``1h`` or ``2d`` as seconds."""
    text = value.strip().lower()
    unit = _DURATION_UNITS.get(text[-1:]) if text else None
    number = text[:-1] if unit is not None else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 0, 30m, 1h, 2d)") from None
    if not 0 <= seconds < float("inf"):
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 0, 30m, 1h, 2d)")
    return seconds


@registry.command(epilog="""\b
Examples:
  mlprov registry gc --dry-run                 # list what would go
  mlprov registry gc                           # delete garbage older than an hour
  mlprov registry gc --grace 0 --json          # a quiet registry: everything unreferenced
""")
@registry_option
@click.option("--grace", default="1h", show_default=True, callback=_duration,
              metavar="DURATION",
              help="Keep unreferenced blobs younger than this (a change may still be "
                   "uploading them): 0, 30m, 1h, 2d.")
@click.option("--dry-run", is_flag=True, help="List the garbage; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc(registry_dir: Path | None, grace: float, dry_run: bool, as_json: bool) -> None:
    """Delete blobs nothing in the registry names (left by killed writers).

    A blob a version, review, deployment, setting or audit entry names is never
    deleted; references are read under the registry's write lock, so no change
    commits while blobs go. Unfinished uploads of dead writers go too. Needs no
    registry key.
    """
    with open_registry(registry_dir) as reg:
        report = reg.collect_garbage(grace=grace, dry_run=dry_run,
                                     progress=None if as_json else note)
    if as_json:
        emit_json({"schema": GC_SCHEMA, **report.to_json_dict()})
        return
    garbage_bytes = sum(b.size for b in report.garbage)
    if dry_run:
        for blob in report.garbage:
            echo(f"{blob.digest}  {blob.size} bytes")
        echo(f"{len(report.garbage)} unreferenced blobs ({garbage_bytes} bytes) would be "
             f"deleted; {report.referenced} referenced, {report.kept_young} younger than the "
             "grace period kept")
        return
    echo(f"deleted {report.deleted} unreferenced blobs ({report.deleted_bytes} bytes); "
         f"{report.referenced} referenced, {report.kept_young} younger than the grace period "
         f"kept; {report.partial_removed} unfinished uploads removed")


MIGRATE_SCHEMA = "https://mlprov.dev/schemas/registry-migrate/v1"


@registry.command(epilog="""\b
Examples:
  # the embedded registry to PostgreSQL + S3, for the team
  mlprov registry migrate --registry ~/.mlprov \\
      --to postgresql+psycopg://mlprov@db.internal/mlprov --blobs s3://models/registry
  # a team registry to a directory (an offline copy for an auditor)
  mlprov registry migrate --to /media/audit/registry --key registry.key
""")
@registry_option
@click.option("--to", "to", required=True, metavar="DIR|URL",
              help="The new registry: a directory that holds no registry, or an empty "
                   "database (postgresql+psycopg://USER@HOST/DB).")
@click.option("--blobs", metavar="s3://BUCKET/PREFIX|DIR",
              help="The team target's blob store (a database URL in --to).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="PRIVATE_KEY",
              help="The registry's key, copied into a directory target (default: an "
                   "embedded source's own). A database target never stores it.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def migrate(registry_dir: Path | None, to: str, blobs: str | None, key: Path | None,
            as_json: bool) -> None:
    """Copy the registry with its whole history to another backend, and verify the copy.

    Every version, blob, decision, review, audit entry, checkpoint and event is
    copied as it is (nothing is re-signed: it is the same registry). Success is
    reported only after the copy's signed head and audit log verify with the
    registry's key and every blob is read back and matches its digest. The
    source is only read; point clients at the new location afterwards.
    """
    from mlprov.registry import migrate_registry

    team = "://" in to
    if team and blobs is None:
        raise click.UsageError("a team target needs a blob store: add --blobs "
                               "s3://BUCKET/PREFIX (or a shared directory)")
    if not team and blobs is not None:
        raise click.UsageError("--blobs is for a team target (--to DATABASE_URL); a directory "
                               "target keeps its blobs inside it")
    with open_registry(registry_dir) as reg:
        report = migrate_registry(reg, to, blobs=blobs, key=key,
                                  progress=None if as_json else note)
    if as_json:
        emit_json({"schema": MIGRATE_SCHEMA, **report.to_json_dict()})
        return
    rows = sum(report.rows.values())
    echo(f"migrated {report.source} -> {report.target}: {report.blobs} blobs "
         f"({report.blob_bytes} bytes), {rows} rows, audit head entry {report.head_seq}; "
         "the copy verifies")
