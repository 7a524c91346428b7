"""``mlprov verify``."""

from __future__ import annotations

from pathlib import Path

import click

from mlprov._cli.options import cache_option, require_one_trust, trust_options
from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.progress import byte_progress
from mlprov.errors import EXIT_CHECK_FAILED
from mlprov.hashing import HashJob, default_ignore_paths

EPILOG = """\b
Examples:
  mlprov verify model/ --evidence evidence/ --key ci.key.pub
  mlprov verify model/ --evidence evidence/ --trust trust.yaml --json
  mlprov verify model/ --evidence model.sig --key signer.pub   # a model_signing signature
  mlprov verify model/ --evidence evidence/ --trust trust.yaml --offline   # keyless too
  mlprov verify ft/ --evidence ft-evidence/ --trust trust.yaml --search models/ \\
      --require-lineage
\b
A derived model's parents are looked up by digest next to the evidence directory
and under --search; their lineage is verified when found, a warning is printed
when not (--require-lineage makes that a failure).
Exit codes: 0 verified, 1 a check failed (do not use the model),
2 usage (bad flags, a path that does not exist), 3 unusable trust or key material.
"""


@click.command(epilog=EPILOG)
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@click.option("--evidence", required=True, metavar="DIR|FILE",
              type=click.Path(exists=True, path_type=Path),
              help="Evidence directory from `mlprov attest`, or one signature file "
                   "(e.g. a model.sig from model_signing).")
@trust_options("Trust file (YAML) naming signers (keys, Sigstore identities) and their "
               "roles; signatures must come from a signer with the builder role (the "
               "eval statement: evaluator).")
@click.option("--offline", is_flag=True,
              help="Use no network: keyless (Sigstore) bundles are checked against the "
                   "trust file's trusted_root, or the public-good root sigstore-python "
                   "ships (same as MLPROV_OFFLINE=1).")
@click.option("--search", "search", multiple=True, metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also look for parents' evidence here (by digest); repeatable.")
@click.option("--require-lineage", is_flag=True,
              help="Fail unless the model's lineage verifies to every root (parents found).")
@cache_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the verdict with every check as one JSON document.")
@click.pass_context
def verify(ctx: click.Context, model_path: Path, evidence: Path, trust: Path | None,
           key: Path | None, offline: bool, search: tuple[Path, ...], require_lineage: bool,
           cache: Path | None, as_json: bool) -> None:
    """Verify MODEL_PATH against its signed evidence.

    Checks every signature against the trust file and its roles, the payload
    and predicate types, that the subject is the model's root digest, every
    file (missing, extra and changed files are named), and that the identity
    recomputed from the recorded inputs matches. The SBOM (builder), the eval
    statement (evaluator) and the model card (its digest is in the SBOM) are
    checked too, and every file evidence.json lists.
    """
    require_one_trust(trust, key)
    evidence_dir = evidence if evidence.is_dir() else evidence.parent
    with byte_progress("verifying") as progress:
        # Hash first, trusting nothing yet: the digests are only compared with the
        # signed manifest once its signature verified; imports overlap the disk work.
        job = HashJob(model_path, ignore_paths=default_ignore_paths(model_path, evidence_dir),
                      progress=progress, on_total=progress.total if progress else None,
                      cache=cache)
        try:
            from mlprov.trust import Trust, load_trust
            from mlprov.verification import verify as run_verify

            trusted: Trust | Path | None = (load_trust(trust, offline=True)
                                            if trust is not None and offline else trust)
            verdict = run_verify(model_path, evidence=evidence, trust=trusted, key=key,
                                 progress=progress, hashing=job, search=search,
                                 require_lineage=require_lineage, cache=cache)
        finally:
            job.cancel()
    if as_json:
        emit_json(verdict.to_json_dict())
    if not verdict.verified:
        failures = verdict.failures()
        detail = failures[0].detail if failures else "no check ran"
        more = (f"; {len(failures) - 1} more check(s) failed" if len(failures) > 1 else "")
        where = "" if as_json else "; --json lists every check"
        note(f"error: verification failed: {detail} (hint: do not use this model{more}{where})")
        ctx.exit(EXIT_CHECK_FAILED)
    if not as_json:
        echo(f"verified {verdict.name or Path(model_path).name}"
                   + (f" {verdict.identity}" if verdict.identity else "")
                   + (f" {verdict.root_digest}" if verdict.root_digest else ""))
        for check in verdict.checks:
            note(f"  ok  {check.name}: {check.detail}")
    lineage = verdict.lineage
    if lineage is not None and lineage.status == "incomplete":
        more = f" (+{len(lineage.missing) - 1} more)" if len(lineage.missing) > 1 else ""
        note(f"warning: lineage not verified: {lineage.missing[0]}{more} (hint: pass --search "
             "DIR where the parents' evidence lives; --require-lineage makes this an error)")
