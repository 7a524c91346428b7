"""Entry point: the command group, lazy sub-commands and the one error-to-exit-code map."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from mlprov import __version__
from mlprov.errors import EXIT_ERROR, EXIT_INTERNAL, EXIT_USAGE, MlprovError

# command name -> (module, attribute, one-line help). Modules load only when run,
# so `mlprov --help` imports neither pydantic nor cryptography.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "keygen": ("mlprov._cli.keys", "keygen", "Make a signing key pair."),
    "hash": ("mlprov._cli.hashing", "hash_cmd", "Print a model's manifest and root digest."),
    "identity": ("mlprov._cli.identity", "identity", "Derive a version identity from its inputs."),
    "attest": ("mlprov._cli.attest", "attest", "Hash a model and write signed evidence."),
    "verify": ("mlprov._cli.verify", "verify", "Verify a model against its evidence."),
    "inspect": ("mlprov._cli.inspect", "inspect",
                "Verify evidence, then show what it claims and who signed it."),
    "card": ("mlprov._cli.card", "card", "Re-render MODEL_CARD.md from verified evidence."),
    "lineage": ("mlprov._cli.lineage", "lineage",
                "Verify or show a model's lineage back to its roots."),
    "policy": ("mlprov._cli.policy", "policy",
               "Check a model against a Rego policy (allow/deny); run policy tests."),
    "review": ("mlprov._cli.review", "review",
               "Sign a review (approve or reject) of a model's verified evidence."),
    # The registry (docs/registry.md): --registry DIR, else $MLPROV_HOME, else ~/.mlprov.
    "registry": ("mlprov._cli.registry", "registry",
                 "Create a registry; change its trust, policies and config (audited)."),
    "register": ("mlprov._cli.models", "register",
                 "Verify a model and its evidence, then store it as the next version."),
    "models": ("mlprov._cli.models", "models",
               "List, show, describe, rename or delete registered models."),
    "versions": ("mlprov._cli.catalog", "versions",
                 "Search versions (filters, order, pages); delete one."),
    "tag": ("mlprov._cli.catalog", "tag", "Set or delete tags of models and versions."),
    "promote": ("mlprov._cli.stages", "promote", "Move a version to a stage, if its gate allows."),
    "alias": ("mlprov._cli.stages", "alias", "Set, delete or show the history of an alias."),
    "rollback": ("mlprov._cli.stages", "rollback", "Re-point an alias to an earlier version."),
    "resolve": ("mlprov._cli.models", "resolve", "Resolve a models:/ URI to a version."),
    "pull": ("mlprov._cli.models", "pull", "Copy a version's files out, verifying everything."),
    "evidence": ("mlprov._cli.evidence", "evidence",
                 "Export a registered version's evidence directory, verified."),
    "copy": ("mlprov._cli.copy", "copy",
             "Copy a version into another registry, which verifies it again."),
    "deployment": ("mlprov._cli.deployments", "deployment",
                   "Pin several versions as one signed, promotable deployment."),
    "audit": ("mlprov._cli.audit", "audit", "Show or verify the registry's audit log."),
    "events": ("mlprov._cli.audit", "events", "List registry events; deliver them to hooks."),
    "server": ("mlprov._cli.server", "server",
               "Serve a registry to authenticated clients; manage its API tokens."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute, _ = entry
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry[2]) for name, entry in _COMMANDS.items()])


EPILOG = """\b
Exit codes: 0 ok, 1 a check failed (not verified, policy denied), 2 usage error
(bad flags, a named path that does not exist), 3 other error (bad input, key, file,
unknown model), 4 internal error.
Environment: MLPROV_KEY_PASSPHRASE (private key passphrase), MLPROV_IDENTITY_TOKEN
(OIDC token for --sigstore), MLPROV_OFFLINE=1 (no network when verifying),
MLPROV_HOME (registry directory, default ~/.mlprov), MLPROV_ACTOR, MLPROV_DEBUG=1.
"""


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlprov")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def cli(debug: bool) -> None:
    """mlprov: prove where a model came from.

    Hash a model, derive its version identity, write signed evidence (OMS
    signature and SLSA provenance in Sigstore bundles), and verify it offline.
    """


# click >= 8.2 raises this for a bare `mlprov`; older click prints the help itself.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line(text: str) -> str:
    """Fold a message onto one line: stderr carries exactly one line per error."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _fail(message: str, code: int) -> int:
    from mlprov._internal.display import printable

    click.echo(printable(_one_line(message)), err=True)
    return code


def _usage_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "mlprov"
    return f"run '{command} --help'"


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI and map every outcome to a documented exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("MLPROV_DEBUG") == "1"
    try:
        code = cli.main(args=args, prog_name="mlprov", standalone_mode=False)
    except click.exceptions.Abort:
        code = _fail("error: aborted", EXIT_ERROR)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()  # `mlprov` alone: the help text, as every click tool does
        code = EXIT_USAGE
    except click.ClickException as exc:
        # One line, not click's usage block: scripts read the first stderr line.
        code = _fail(f"error: {exc.format_message()} (hint: {_usage_hint(exc)})", EXIT_USAGE)
    except MlprovError as exc:
        code = _fail(f"error: {exc} (hint: {exc.diagnostics()})", exc.exit_code)
    except KeyboardInterrupt:
        code = _fail("error: interrupted", 130)
    except BrokenPipeError:
        code = 0
    except Exception as exc:
        if debug:
            raise
        code = _fail(f"internal error: {type(exc).__name__}: {exc} "
                     "(a bug in mlprov: rerun with --debug and report it)", EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)


def console_main() -> Any:
    """The ``mlprov`` console script: :func:`main`, with a faster process exit.

    Imports and evidence leave some 60,000 objects the collector tracks; at
    exit CPython runs full collections over all of them (about 50 ms) only for
    the OS to free the memory a moment later. Freezing them from an ``atexit``
    hook keeps them out of those passes. Only in the ``mlprov`` process itself:
    a host process running :func:`main` in-process (tests) keeps normal
    finalisation. Likewise only here, pydantic loads no third-party plugins
    (:mod:`mlprov._internal.plugins`): none observes what mlprov validates.
    """
    import atexit
    import gc

    from mlprov._cli.process import mark_console_process
    from mlprov._internal.plugins import disable_pydantic_plugins

    disable_pydantic_plugins()
    mark_console_process()
    atexit.register(gc.freeze)
    return main()
