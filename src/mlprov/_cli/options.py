"""Options shared by commands that derive a version identity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mlprov._internal.inputs import Inputs

F = Callable[..., Any]


def identity_options(fn: F) -> F:
    """Add --commit/--repo/--allow-dirty/--data/--config/--seed to a command."""
    options = [
        click.option("--commit", metavar="SHA", help="The training code's full git commit."),
        click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
                     help="Read the commit from this git work tree (default: the current "
                          "directory when --commit is not given)."),
        click.option("--allow-dirty", is_flag=True,
                     help="Accept uncommitted changes to tracked files; recorded as dirty."),
        click.option("--data", "data", multiple=True, metavar="[NAME=]PATH|URI@sha256:HEX",
                     help="A dataset: a local path (hashed) or URI@sha256:HEX; repeatable."),
        click.option("--config", "configs", multiple=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Training config (YAML/JSON/TOML), deep-merged in order; repeatable."),
        click.option("--seed", "seeds", multiple=True, metavar="NAME=VALUE",
                     help="A named integer random seed; repeatable."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_inputs(commit: str | None, repo: Path | None, allow_dirty: bool,
                 data: tuple[str, ...], configs: tuple[Path, ...],
                 seeds: tuple[str, ...]) -> Inputs:
    """Turn the identity options into checked identity inputs.

    Built as the pydantic-free twins of ``IdentityInputs`` (the same rules and
    messages, held to the models by tests/test_inputs.py): a plain ``attest`` or
    ``identity`` does not import pydantic.
    """
    from mlprov._internal.inputs import code_from_commit, code_from_repo, parse_data_spec
    from mlprov.attestation import identity_inputs
    from mlprov.identity import load_configs, parse_seed

    if commit and repo:
        raise click.UsageError("give --commit or --repo, not both")
    code = code_from_commit(commit) if commit else code_from_repo(repo or Path("."),
                                                                  allow_dirty=allow_dirty)
    seed_map: dict[str, int] = {}
    for spec in seeds:
        name, value = parse_seed(spec)
        if name in seed_map:
            raise click.UsageError(f"seed {name} given twice")
        seed_map[name] = value
    return identity_inputs(code, [parse_data_spec(d) for d in data],
                           load_configs(list(configs)), seed_map)


_TRUST_HELP = "Trust file (YAML) naming signers (keys, Sigstore identities) and their roles."


def trust_options(trust_help: str = _TRUST_HELP) -> Callable[[F], F]:
    """Add the --trust TRUST_FILE / --key PUBLIC_KEY pair every verifying command takes."""
    def decorate(fn: F) -> F:
        fn = click.option("--key", metavar="PUBLIC_KEY",
                          type=click.Path(exists=True, dir_okay=False, path_type=Path),
                          help="A PEM public key trusted for every role (instead of --trust).")(fn)
        return click.option("--trust", metavar="TRUST_FILE",
                            type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help=trust_help)(fn)
    return decorate


def require_one_trust(trust: Path | None, key: Path | None) -> None:
    """Refuse (usage error) unless exactly one of --trust and --key was given."""
    if (trust is None) == (key is None):
        raise click.UsageError("give exactly one of --trust TRUST_FILE or --key PUBLIC_KEY")


def cache_option(fn: F) -> F:
    """Add --cache DIR (or MLPROV_CACHE): the opt-in per-file digest cache."""
    return click.option(
        "--cache", metavar="DIR", envvar="MLPROV_CACHE",
        type=click.Path(file_okay=False, path_type=Path),
        help="Remember per-file digests in DIR (created 0700) and skip re-reading files "
             "whose device, inode, size, mtime, ctime and first/last 4 KiB are unchanged "
             "(also MLPROV_CACHE); verify also remembers which signed SBOMs passed the "
             "schema check. Trusts the filesystem's metadata: off by default; see "
             "docs/digest-cache.md.")(fn)


def threshold_option(fn: F) -> F:
    """Add --threshold NAME>=N (repeatable) to a command; the values land in ``thresholds``."""
    return click.option(
        "--threshold", "thresholds", multiple=True, metavar="NAME>=N|NAME<=N",
        callback=check_threshold_flags,
        help="A metric threshold of the production gate, e.g. 'test/auc>=0.85'; "
             "'slice:auc>=0.6' for every slice. Repeatable; replaces the shipped "
             "thresholds (auc, accuracy).")(fn)


def check_threshold_flags(_ctx: click.Context, _param: click.Parameter,
                      values: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a malformed --threshold as a usage error (exit 2) before any work."""
    from mlprov.errors import InputError
    from mlprov.thresholds import parse_thresholds

    try:
        parse_thresholds(values)
    except InputError as exc:
        raise click.BadParameter(f"{exc} ({exc.diagnostics()})") from exc
    return values
