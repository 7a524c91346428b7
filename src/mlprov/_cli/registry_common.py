"""What the registry commands share: ``--registry``, opening it, URIs, result output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlprov._cli.output import echo, emit_json, note
from mlprov.errors import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from mlprov.lineage import ParentSpec
    from mlprov.registry import ChangeResult, Registry

F = Callable[..., Any]

CHANGE_SCHEMA = "https://mlprov.dev/schemas/registry-change/v1"

REGISTRY_ENV = "MLPROV_REGISTRY"
REGISTRY_HELP = ("The registry: its directory, its database URL "
                 "(postgresql+psycopg://USER@HOST/DB), or its server (https://HOST, token in "
                 "$MLPROV_TOKEN). Default: $MLPROV_REGISTRY, else $MLPROV_HOME, else "
                 "~/.mlprov.")


def registry_option(fn: F) -> F:
    """Add ``--registry DIR|URL`` (also ``$MLPROV_REGISTRY``)."""
    return click.option("--registry", "registry_dir", metavar="DIR|URL", envvar=REGISTRY_ENV,
                        callback=registry_location, help=REGISTRY_HELP)(fn)


def registry_location(_ctx: click.Context, _param: click.Parameter,
                       value: str | None) -> Path | str | None:
    """A directory as a Path (``~`` expanded), a ``scheme://`` URL as given."""
    if value is None or value == "":
        return None
    if "://" in value:
        return value
    return Path(value).expanduser()


def actor_option(fn: F) -> F:
    """Add ``--actor NAME`` (who makes the change; recorded, not authenticated)."""
    return click.option("--actor", metavar="NAME",
                        help="Who is making the change (default: $MLPROV_ACTOR, else "
                             "user@host). Recorded in the audit log; the registry key "
                             "holder is the authority.")(fn)


STAGES = ("None", "Staging", "Production", "Archived")


def stage_change_options(what: str) -> Callable[[F], F]:
    """Add what every stage move takes: --to STAGE, --reason, --registry, --actor, --json."""
    def decorate(fn: F) -> F:
        fn = click.option("--json", "as_json", is_flag=True,
                          help="Print the decision as JSON.")(fn)
        fn = actor_option(registry_option(fn))
        fn = click.option("--reason", required=True, metavar="TEXT",
                          help="Why (recorded in the audit log).")(fn)
        return click.option("--to", "stage", required=True,
                            type=click.Choice(STAGES, case_sensitive=False),
                            help=f"The stage to move the {what} to.")(fn)
    return decorate


def open_registry(registry_dir: Path | str | None) -> Registry:
    """Open the registry (imports SQLAlchemy only now, not at CLI start-up).

    An ``https://`` URL (``http://`` on loopback), given or in ``$MLPROV_REGISTRY``,
    opens a registry server's client (:class:`mlprov.server.RemoteRegistry`, token
    from ``$MLPROV_TOKEN``), which offers the same methods and verifies every
    answer with the registry key it pinned.
    """
    import os

    location = registry_dir if registry_dir is not None else os.environ.get(REGISTRY_ENV)
    # Only a URL can name a server: a directory never imports the server's client.
    if isinstance(location, str) and "://" in location:
        from mlprov.server._url import is_server_url

        if is_server_url(location):
            from typing import cast

            from mlprov.server import RemoteRegistry

            return cast("Registry", RemoteRegistry.open(str(location)))
    from mlprov.registry import Registry

    return Registry.open(registry_dir)


def model_uri(value: str) -> str:
    """Check a ``models:/`` URI as a usage error (exit 2) before anything is opened."""
    from mlprov.errors import InputError
    from mlprov.registry import parse_model_uri

    try:
        parse_model_uri(value)
    except InputError as exc:
        raise click.BadParameter(f"{exc} ({exc.diagnostics()})") from exc
    return value


def evidence_or_uri(ctx: click.Context, param: click.Parameter, value: str) -> Path | str:
    """An evidence directory (which must exist, as ``click.Path`` checks) or a ``models:/`` URI.

    A URI comes back as the checked string, a directory as a :class:`Path`.
    """
    if value.startswith("models:/"):
        return model_uri(value)
    checked: Path = click.Path(exists=True, file_okay=False, path_type=Path).convert(
        value, param, ctx)
    return checked


def load_pinned_trust(trust: Path | None) -> Any:
    """A pipeline's own trust file (``--trust`` with a URI), or None for the registry's own."""
    if trust is None:
        return None
    from mlprov.trust import load_trust

    return load_trust(trust)


def model_or_deployment_uri(value: str) -> str:
    """Check a ``models:/`` or ``deployments:/`` URI as a usage error (exit 2)."""
    if not value.startswith("deployments:/"):
        return model_uri(value)
    from mlprov.errors import InputError
    from mlprov.registry import parse_deployment_uri

    try:
        parse_deployment_uri(value)
    except InputError as exc:
        raise click.BadParameter(f"{exc} ({exc.diagnostics()})") from exc
    return value


def served_uri_argument(fn: F) -> F:
    """A ``URI`` argument: a ``models:/`` or a ``deployments:/`` URI."""
    return click.argument("uri", metavar="URI",
                          callback=lambda _ctx, _param, value: model_or_deployment_uri(value))(fn)


def uri_argument(fn: F) -> F:
    """A ``URI`` argument checked as a ``models:/`` URI."""
    return click.argument("uri", metavar="URI",
                          callback=lambda _ctx, _param, value: model_uri(value))(fn)


class VersionType(click.ParamType[int]):
    """A version number in ASCII digits, checked as a whole string.

    Not ``" 2"``, ``"02"``, ``"1_0"``, an Arabic-Indic digit or a trailing
    newline, all of which ``int()`` would take.
    """

    name = "version"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        from mlprov._internal.names import parse_version
        from mlprov.errors import InputError

        try:
            return parse_version(value)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


VERSION = VersionType()


def version_argument(fn: F) -> F:
    """A positive ``VERSION`` argument."""
    return click.argument("version", type=VERSION)(fn)


def dry_run_option(fn: F) -> F:
    """Add ``--dry-run``: evaluate the registry's own gate, print it, record nothing."""
    return click.option("--dry-run", is_flag=True,
                        help="Evaluate exactly the gate the registry would (its config, "
                             "policies, thresholds, the version's facts, its state), print "
                             "the decision and exit 0/1 as the move would; write nothing, "
                             "not even an audit entry.")(fn)


def emit_dry_run(result: ChangeResult, as_json: bool, what: str) -> None:
    """Print a dry run's decision with every message; exit 1 when it would be denied."""
    if as_json:
        emit_json({"schema": CHANGE_SCHEMA, **result.to_json_dict()})
    else:
        verdict = "allow" if result.allowed else "deny"
        policy = result.policy_uri.rsplit("/", 1)[-1]
        echo(f"dry run: {verdict} {what}")
        for message in result.deny:
            echo(f"  deny: {message}")
        for message in result.warn:
            echo(f"  warn: {message}")
        echo(f"policy {result.policy_digest} ({policy})")
        chosen = result.details.get("chosen")
        if chosen:
            echo(f"target v{result.version}: {chosen}")
    note("dry run: nothing was signed or recorded")
    if not result.allowed:
        first = result.deny[0] if result.deny else "no reason given"
        note(f"error: the gate would deny it: {first}")
        click.get_current_context().exit(EXIT_CHECK_FAILED)


def emit_change(result: ChangeResult, as_json: bool, done: str) -> None:
    """Print an accepted change: JSON, or one line on stdout and the policy's warnings."""
    if as_json:
        emit_json({"schema": CHANGE_SCHEMA, **result.to_json_dict()})
    else:
        echo(done)
    for warning in result.warn:
        note(f"warning: {warning}")
    note(f"decision {result.decision} signed; audit entry {result.seq}")


def registry_parent(spec: ParentSpec) -> ParentSpec:
    """``--parent ROLE=models:/NAME/N``: the version's evidence, verified, from the registry.

    The registry is $MLPROV_HOME (else ~/.mlprov). The evidence is written to a
    temporary directory removed when the command ends.
    """
    import shutil
    import tempfile

    from mlprov.lineage import ParentSpec

    directory = Path(tempfile.mkdtemp(prefix="mlprov-parent-"))
    click.get_current_context().call_on_close(
        lambda: shutil.rmtree(directory, ignore_errors=True))
    with open_registry(None) as reg:
        reg.export_evidence(str(spec.evidence), directory / "evidence")
    return ParentSpec(role=spec.role, evidence=directory / "evidence")
