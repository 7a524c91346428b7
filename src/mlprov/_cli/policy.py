"""``mlprov policy check`` and ``mlprov policy test``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlprov._cli.options import threshold_option, trust_options
from mlprov._cli.output import echo, emit_json, note
from mlprov.errors import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from mlprov.policy import Decision, Engine
    from mlprov.reviews import VerifiedReview

CHECK_SCHEMA = "https://mlprov.dev/schemas/policy-check/v1"

EPILOG_CHECK = """\b
Examples:
  mlprov policy check --policy policies/ --evidence evidence/ --trust trust.yaml \\
      --model model/ --review alice.review.json --to Production
  mlprov policy check --policy policies/staging.rego --evidence evidence/ --key ci.key.pub
  mlprov policy check --policy policies/ --evidence evidence/ --trust trust.yaml \\
      --data strict.yaml --to Staging --json
  mlprov policy check --policy policies/ --evidence evidence/ --trust trust.yaml \\
      --model model/ --to Production --threshold 'test/auc>=0.85' --threshold 'val/auc>=0.85'
  mlprov policy check --registry ~/.mlprov --evidence evidence/ --model model/ --alias canary
\b
--registry uses that registry's gate table (mlprov.toml), policies, data file,
thresholds and (without --trust/--key) trust, so the check picks the gate a move
would get. `mlprov promote|alias set|rollback --dry-run` evaluate a registered
version exactly, with its reviews and the registry's state.
\b
The evidence is verified first; only verified facts reach the policy (see
docs/policy.md). Without --model only the evidence is verified and no pickle scan
is made, so gates that need them (production) deny.
\b
Exit codes: 0 allowed, 1 denied (or the policy is missing or broken),
2 usage, 3 unusable trust, key or data file.
"""

EPILOG_TEST = """\b
Examples:
  mlprov policy test policies/
  mlprov policy test policies/ --json
\b
Runs every rule named test_* in the directory's *_test.rego files, with the
directory's data file. Exit codes: 0 all passed, 1 a test failed (or none found).
"""


@click.group()
def policy() -> None:
    """Check a model against a Rego policy, or run a policy's tests."""


def _load_trust(trust: Path | None, key: Path | None) -> Any:
    from mlprov.trust import Trust, load_trust

    if trust is not None and key is None:
        return load_trust(trust)
    if key is not None and trust is None:
        return Trust.single_key(key)
    raise click.UsageError("give exactly one of --trust TRUST_FILE or --key PUBLIC_KEY")


def _reviews(paths: tuple[Path, ...], trust: Any, verdict: Any) -> list[VerifiedReview]:
    from mlprov.reviews import VerifiedReview, verify_reviews

    if not paths:
        return []
    if not (verdict.root_digest and verdict.identity):
        return [VerifiedReview(p, False, "the model's evidence did not verify") for p in paths]
    return verify_reviews(paths, trust, verdict=verdict)


def _render(decision: Decision, policy_path: Path, model: dict[str, Any],
            reviews: list[VerifiedReview]) -> None:
    verb = "allow" if decision.allowed else "deny"
    facts = " ".join(str(model[k]) for k in ("name", "identity", "rootDigest") if k in model)
    echo(f"{verb} {facts}".rstrip())
    for message in decision.deny:
        echo(f"  deny: {message}")
    for message in decision.warn:
        echo(f"  warn: {message}")
    for review in reviews:
        if review.counted:
            echo(f"  review {review.path.name}: {review.decision} by {review.reviewer} "
                       f"(signer {review.signer.name if review.signer else '?'})")
        else:
            echo(f"  review {review.path.name}: not counted: {review.problem}")
    echo(f"policy {decision.policy_digest} ({policy_path}, {decision.entrypoint})")
    echo(f"input  {decision.input_digest}")
    echo(f"data   {decision.data_digest}")


def _engine_option(fn: Any) -> Any:
    return click.option(
        "--engine", type=click.Choice(["regopy", "opa"]), default="regopy", show_default=True,
        help="The Rego engine: regopy (rego-cpp, what gates use) or opa (OPA's own engine: "
             "pip install --ignore-requires-python opa-golib-python-bindings).")(fn)


def _engine(name: str) -> Engine:
    from mlprov._internal import opa
    from mlprov.errors import InputError

    if name == "opa" and not opa.available():
        raise InputError("OPA's engine is not installed", hint=opa.INSTALL_HINT)
    return "opa" if name == "opa" else "regopy"


@policy.command(epilog=EPILOG_CHECK)
@click.option("--policy", "policy_path", metavar="FILE_OR_DIR",
              type=click.Path(exists=True, path_type=Path),
              help="A .rego file, or a directory of them (entry point mlprov.admission). "
                   "Required unless --registry.")
@click.option("--registry", "registry_dir", metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Use this registry's gate for --to/--alias: its gate table, policies, "
                   "data, thresholds (and trust, without --trust/--key).")
@threshold_option
@click.option("--evidence", required=True, metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The evidence directory `mlprov attest` wrote.")
@trust_options("Trust file naming signers and their roles (reviews need a reviewer).")
@click.option("--model", "model_path", metavar="PATH",
              type=click.Path(exists=True, path_type=Path),
              help="The model's files: verified against the evidence and scanned for pickles.")
@click.option("--data", "data_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Policy data (YAML/JSON) instead of the data file beside the policy.")
@click.option("--review", "review_paths", multiple=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A signed review (`mlprov review approve|reject`); repeatable.")
@click.option("--to", "to_stage", metavar="STAGE", help="Requested stage, e.g. Production.")
@click.option("--from", "from_stage", metavar="STAGE", help="Current stage, e.g. Staging.")
@click.option("--alias", metavar="ALIAS", help="Requested alias, e.g. champion.")
@click.option("--actor", metavar="NAME", help="Who asks (recorded in the input).")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the input).")
@click.option("--search", "search", multiple=True, metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="More directories holding parents' evidence, for the lineage; repeatable.")
@_engine_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as one JSON document.")
@click.pass_context
def check(ctx: click.Context, policy_path: Path | None, registry_dir: Path | None,
          thresholds: tuple[str, ...], evidence: Path, trust: Path | None,
          key: Path | None, model_path: Path | None, data_path: Path | None,
          review_paths: tuple[Path, ...], to_stage: str | None, from_stage: str | None,
          alias: str | None, actor: str | None, reason: str | None, search: tuple[Path, ...],
          engine: str, as_json: bool) -> None:
    """Decide whether a model may move: verify, gather facts, evaluate the policy.

    Prints allow or deny, every deny and warn message, and the digests of the
    policy, the input and the data.
    """
    from mlprov.policy import build_input, engine_name, load_policy, load_policy_data
    from mlprov.scanning import scan_verified_model
    from mlprov.thresholds import parse_thresholds
    from mlprov.verification import verify

    if (policy_path is None) == (registry_dir is None):
        raise click.UsageError("give --policy FILE_OR_DIR or --registry DIR (one of them)")
    if registry_dir is not None and (to_stage is None) == (alias is None):
        raise click.UsageError("with --registry, name a stage or an alias, not both "
                               "(the registry gates each change apart: --to or --alias)")
    threshold_set = parse_thresholds(thresholds)
    if registry_dir is not None:
        gated = _registry_gate(registry_dir, to_stage, alias, trust is None and key is None)
        if gated is None:
            return
        policy_path, registry_data, registry_thresholds, registry_trust = gated
        if data_path is None:
            data_path = registry_data
        if not threshold_set:
            threshold_set = registry_thresholds
        trusted = registry_trust if registry_trust is not None else _load_trust(trust, key)
    else:
        trusted = _load_trust(trust, key)
    assert policy_path is not None
    policy_obj = load_policy(policy_path)
    data = load_policy_data(data_path) if data_path is not None else None
    if threshold_set:
        data = threshold_set.apply(policy_obj.data if data is None else data)
    verdict = verify(model_path, evidence=evidence, trust=trusted, search=search)
    files_ok = any(c.name == "files" and c.ok is True for c in verdict.checks)
    scan = scan_verified_model(model_path, verdict) if model_path is not None and files_ok \
        else None
    reviews = _reviews(review_paths, trusted, verdict)
    transition = {"from": from_stage, "to": to_stage, "alias": alias, "actor": actor,
                  "reason": reason}
    document = build_input(verdict, reviews=reviews, scan=scan,
                           transition=transition if any(transition.values()) else None)
    decision = policy_obj.evaluate(document, data, engine=_engine(engine))
    if as_json:
        result = {**decision.to_json_dict(), "schema": CHECK_SCHEMA, "policy": str(policy_path),
                  "engine": engine_name(_engine(engine)),
                  "model": document["model"], "reviews": [r.to_json_dict() for r in reviews]}
        emit_json(result)
    else:
        _render(decision, policy_path, document["model"], reviews)
    if not decision.allowed:
        first = decision.deny[0] if decision.deny else "no reason given"
        more = len(decision.deny) - 1
        hint = f"{more} more reason(s) on stdout" if more > 0 else "see the decision on stdout"
        note(f"error: policy denied: {first} (hint: {hint})")
        ctx.exit(EXIT_CHECK_FAILED)


def _registry_gate(registry_dir: Path, to_stage: str | None, alias: str | None,
                   with_trust: bool) -> tuple[Path, Path | None, Any, Any] | None:
    """The registry's gate for the move: (policy file, data file, thresholds, trust).

    None when the registry does not gate the move (printed, exit 0); a move with
    no gate at all is denied (exit 1), as the registry would deny it.
    """
    from mlprov.registry import Registry

    ctx = click.get_current_context()
    with Registry.open(registry_dir) as reg:
        gate = reg.gate_policy(stage=to_stage, alias=alias)
        trusted = reg.trust if with_trust else None
    what = f"alias {alias}" if alias is not None else f"stage {to_stage}"
    if gate.gate is None:
        echo(f"deny: no policy gates {what} in the registry's mlprov.toml")
        note(f"error: policy denied: no policy gates {what} (hint: add it to [gates] in the "
             "registry's mlprov.toml)")
        ctx.exit(EXIT_CHECK_FAILED)
    if gate.path is None:
        echo(f"allow: the registry does not gate {what} (gate \"none\")")
        return None
    return gate.path, gate.data, gate.thresholds, trusted


@policy.command("test", epilog=EPILOG_TEST)
@click.argument("directory", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Policy data instead of the directory's data file.")
@_engine_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON document.")
@click.pass_context
def test_cmd(ctx: click.Context, directory: Path, data_path: Path | None, engine: str,
             as_json: bool) -> None:
    """Run the Rego unit tests (rules named test_*) of a policy directory.

    The report names the engine that ran them; `--engine opa` runs them under
    OPA's own Go engine too, to check that the policy means the same there.
    """
    from mlprov.policy import load_policy_data, run_policy_tests

    data = load_policy_data(data_path) if data_path is not None else None
    report = run_policy_tests(directory, data, engine=_engine(engine))
    if as_json:
        emit_json(report.to_json_dict())
    else:
        echo(f"engine: {report.engine}")
        for result in report.tests:
            verdict = "PASS" if result.passed else "FAIL"
            detail = f" ({result.detail})" if result.detail else ""
            echo(f"{verdict} {result.file}: {result.name}{detail}")
        echo(f"{report.passed} passed, {report.failed} failed")
    if not report.ok:
        failed = [t for t in report.tests if not t.passed]
        first = f"{failed[0].file}: {failed[0].name}" if failed else "no test ran"
        note(f"error: {report.failed} of {len(report.tests)} policy test(s) failed, first "
             f"{first} (hint: fix the policy or the test; stdout lists every result)")
        ctx.exit(EXIT_CHECK_FAILED)
