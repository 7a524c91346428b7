"""``mlprov lineage verify|show``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import (
    evidence_or_uri,
    load_pinned_trust,
    open_registry,
    registry_option,
)
from mlprov.errors import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from mlprov.lineage import Lineage
    from mlprov.registry import RegistryLineage
    from mlprov.trust import Trust

#: Kept equal to mlprov.lineage.DEFAULT_MAX_DEPTH (a test checks), so that
#: `--help` does not import the library.
DEFAULT_MAX_DEPTH = 64
FORMATS = ("tree", "json", "dot", "mermaid")

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

VERIFY_EPILOG = """\b
Examples:
  mlprov lineage verify student/evidence --trust trust.yaml --search models/
  mlprov lineage verify evidence/ --key ci.key.pub --search a/ --search b/ --deep --json
  mlprov lineage verify models:/credit-risk/3 --descendants --registry /srv/mlprov
\b
Parents' evidence is found by digest under the directory holding EVIDENCE_DIR
and every --search directory (up to 3 levels down), never by name. For a
models:/ URI the registry walks its own copies of the parents' evidence, with
its trust (or --trust); --descendants also verifies every registered version
descending from it.
Exit codes: 0 verified to every root, 1 not verified (the message names the
broken link: child -> parent (role)), 2 usage, 3 unusable trust or key material.
"""

SHOW_EPILOG = """\b
Examples:
  mlprov lineage show student/evidence --search models/
  mlprov lineage show student/evidence --search models/ --format mermaid --key ci.key.pub
  mlprov lineage show models:/credit-risk/3 --descendants --registry /srv/mlprov
\b
Without --trust/--key nothing is verified: nodes are marked unverified (digests
of each link are still compared). Exit 0 whenever the graph was printed; use
`mlprov lineage verify` to gate on it.
"""


def _trust(trust: Path | None, key: Path | None, offline: bool) -> Trust | None:
    from mlprov.trust import Trust, load_trust

    if trust is not None and key is not None:
        raise click.UsageError("give --trust TRUST_FILE or --key PUBLIC_KEY, not both")
    if trust is not None:
        return load_trust(trust, offline=True if offline else None)
    if key is not None:
        return Trust.single_key(key)
    return None


def _search_options(fn: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option("--search", "search", multiple=True, metavar="DIR", type=_DIR,
                     help="Also look for parents' evidence here (by digest); repeatable."),
        click.option("--max-depth", type=click.IntRange(min=0), default=DEFAULT_MAX_DEPTH,
                     show_default=True, help="Follow at most this many links from the model."),
        click.option("--trust", metavar="TRUST_FILE", type=_FILE,
                     help="Trust file; every model's evidence must be signed by a builder."),
        click.option("--key", metavar="PUBLIC_KEY", type=_FILE,
                     help="A PEM public key trusted for every role (instead of --trust)."),
        click.option("--offline", is_flag=True,
                     help="Use no network for keyless (Sigstore) bundles (as "
                          "MLPROV_OFFLINE=1; see `mlprov verify --help`)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group()
def lineage() -> None:
    """Verify or show a model's lineage: its parents, back to every root."""


def _registry_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--descendants", is_flag=True,
                        help="With a models:/ URI: also the registered versions descending "
                             "from it, each verified.")(registry_option(fn))


#: Options that name files on disk: meaningless for a registered version.
_DIRECTORY_ONLY = ("search", "key", "offline", "deep", "model_search", "max_depth")


def _registered(ctx: click.Context, uri: str, trust: Path | None, registry_dir: Path | None,
                descendants: bool) -> RegistryLineage:
    """The lineage of a registered version, walked by the registry."""
    given = [name for name in _DIRECTORY_ONLY if name in ctx.params and
             ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(f"{flags}: for an evidence directory; the registry walks a "
                               "models:/ URI's lineage through its own copies")
    with open_registry(registry_dir) as reg:
        return reg.lineage(uri, trust=load_pinned_trust(trust), descendants=descendants)


def _no_descendants(descendants: bool) -> None:
    if descendants:
        raise click.UsageError("--descendants needs a models:/ URI: descendants are the "
                               "registered versions derived from it")


@lineage.command("verify", epilog=VERIFY_EPILOG)
@click.argument("evidence_dir", metavar="EVIDENCE_DIR|URI", callback=evidence_or_uri)
@_search_options
@click.option("--deep", is_flag=True,
              help="Also re-hash every model's files where a copy is found (under "
                   "--model-search, default the search directories).")
@click.option("--model-search", "model_search", multiple=True, metavar="DIR", type=_DIR,
              help="With --deep: where to look for models' files; repeatable.")
@_registry_options
@click.option("--json", "as_json", is_flag=True, help="Print the graph as one JSON document.")
@click.pass_context
def verify(ctx: click.Context, evidence_dir: Path | str, search: tuple[Path, ...],
           max_depth: int, trust: Path | None, key: Path | None, offline: bool, deep: bool,
           model_search: tuple[Path, ...], registry_dir: Path | None, descendants: bool,
           as_json: bool) -> None:
    """Verify the lineage of EVIDENCE_DIR's model (or of a registered version).

    Walks from the model to every root: each model's signatures must come from
    a trusted builder, and each link's root digest and evidence digests must be
    what the child recorded. Cycles, missing parents, links beyond --max-depth
    and untrusted signers fail. External roots are reported, never verified.
    """
    if isinstance(evidence_dir, str):
        _verify_registered(ctx, _registered(ctx, evidence_dir, trust, registry_dir,
                                            descendants), as_json)
        return
    _no_descendants(descendants)
    if (trust is None) == (key is None):
        raise click.UsageError("give exactly one of --trust TRUST_FILE or --key PUBLIC_KEY")
    from mlprov.lineage import verify_lineage

    resolved = _trust(trust, key, offline)
    assert resolved is not None
    result = verify_lineage(evidence_dir, trust=resolved, search=search, max_depth=max_depth,
                            deep=deep, model_search=model_search or None)
    if as_json:
        emit_json(result.to_json_dict())
    if not result.verified:
        first = result.failures[0] if result.failures else "nothing verified"
        more = len(result.failures) - 1
        hint = "do not use this model" + (f"; {more} more failure(s)" if more > 0 else "")
        hint += "" if as_json else "; --json lists every node and link"
        note(f"error: lineage not verified: {first} (hint: {hint})")
        ctx.exit(EXIT_CHECK_FAILED)
    if not as_json:
        echo(f"verified lineage {result.summary()}")
        _print_links(result)


def _verify_registered(ctx: click.Context, graph: RegistryLineage, as_json: bool) -> None:
    result = graph.lineage
    if as_json:
        emit_json(graph.to_json_dict())
    broken = [d for d in graph.descendants or () if not d.verified]
    if not graph.verified:
        if not result.verified:
            first = result.failures[0] if result.failures else f"lineage {result.status}"
        else:
            first = f"descendant {broken[0].uri} does not verify: {broken[0].problem}"
        more = "" if as_json else "; --json lists every node and link"
        note(f"error: lineage of {graph.uri} not verified: {first} (hint: do not use this "
             f"model{more})")
        ctx.exit(EXIT_CHECK_FAILED)
    if not as_json:
        echo(f"verified lineage {result.summary()}")
        _print_links(result)
        for d in graph.descendants or ():
            note(f"  ok       {d.uri} -> {d.parent} ({d.role})")


def _print_links(result: Lineage) -> None:
    for edge in result.edges:
        child, parent = result.node(edge.child), result.node(edge.parent)
        status = "external" if parent.status.value == "external" else "ok"
        note(f"  {status:<8} {child.label} -> {parent.label} ({edge.role.value})")
    for node in result.nodes:
        if node.files is not None:
            note(f"  files    {node.label}: {node.files.status}: {node.files.detail}")


@lineage.command("show", epilog=SHOW_EPILOG)
@click.argument("evidence_dir", metavar="EVIDENCE_DIR|URI", callback=evidence_or_uri)
@_search_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="tree", show_default=True,
              help="tree, json, Graphviz dot, or Mermaid.")
@_registry_options
@click.pass_context
def show(ctx: click.Context, evidence_dir: Path | str, search: tuple[Path, ...],
         max_depth: int, trust: Path | None, key: Path | None, offline: bool, fmt: str,
         registry_dir: Path | None, descendants: bool) -> None:
    """Print the lineage graph of EVIDENCE_DIR's model (or of a registered version).

    Each model is marked verified, failed, missing, external or (without a
    trust anchor) unverified.
    """
    from mlprov.lineage import LineageFormat, render, walk_lineage

    if isinstance(evidence_dir, str):
        if descendants and fmt not in ("tree", "json"):
            raise click.UsageError("--descendants prints as --format tree or json")
        graph = _registered(ctx, evidence_dir, trust, registry_dir, descendants)
        if fmt == "json":
            emit_json(graph.to_json_dict())
        else:
            click.echo(render(graph.lineage, LineageFormat(fmt)))
            if graph.descendants is not None:
                echo("descendants:" + ("" if graph.descendants else " none registered"))
                for d in graph.descendants:
                    state = "verified" if d.verified else f"NOT VERIFIED: {d.problem}"
                    echo(f"{'  ' * d.depth}{d.uri} <- {d.parent} ({d.role}): {state}")
        _show_status(graph.lineage)
        return
    _no_descendants(descendants)
    result = walk_lineage(evidence_dir, trust=_trust(trust, key, offline), search=search,
                          max_depth=max_depth)
    click.echo(render(result, LineageFormat(fmt)))
    _show_status(result)


def _show_status(result: Lineage) -> None:
    if result.failures:
        more = f" (+{len(result.failures) - 1} more)" if len(result.failures) > 1 else ""
        note(f"lineage {result.status}: {result.failures[0]}{more}")
    elif not result.trusted:
        note("lineage unverified: no --trust or --key given, signatures not checked")
