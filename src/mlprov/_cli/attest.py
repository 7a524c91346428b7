"""``mlprov attest``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from mlprov._cli.options import build_inputs, identity_options
from mlprov._cli.output import emit_json, note
from mlprov._cli.progress import byte_progress, tree_size
from mlprov.hashing import HashJob, default_ignore_paths

ATTEST_SCHEMA = "https://mlprov.dev/schemas/attest-result/v1"

EPILOG = """\b
Examples:
  mlprov attest model/ --name credit-risk --key ci.key --out evidence/ \\
      --repo . --data train=data/train.parquet --seed torch=42 --metrics metrics.json
  mlprov attest model/ --name credit-risk --key ci.key --out evidence/ --commit SHA --json
\b
An encrypted key is decrypted with MLPROV_KEY_PASSPHRASE, or a prompt on a terminal.
Check the result with `mlprov verify MODEL_PATH --evidence EVIDENCE_DIR --key KEY.pub`.
"""


@click.command(epilog=EPILOG)
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, metavar="NAME",
              help="The model's name, e.g. credit-risk-classifier.")
@click.option("--key", required=True, metavar="PRIVATE_KEY",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM private key (see `mlprov keygen`).")
@click.option("--out", required=True, metavar="EVIDENCE_DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Evidence directory to write (created; may lie inside the model, "
                   "which then leaves it out of the hash).")
@identity_options
@click.option("--metrics", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Metrics JSON, recorded in the provenance with its digest.")
@click.option("--builder-id", help="SLSA builder id (default: the CI workflow, else local).")
@click.option("--invocation-id", help="The training run's id (default: a new UUID).")
@click.option("--started-on", metavar="RFC3339", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%SZ",
                                                           "%Y-%m-%dT%H:%M:%S%z"]),
              help="When training started, e.g. 2026-01-31T12:00:00Z (default: now).")
@click.option("--allow-symlinks", is_flag=True, help="Follow symlinks that stay in the model.")
@click.option("--force", is_flag=True,
              help="Replace an existing evidence directory (only one mlprov wrote).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def attest(model_path: Path, name: str, key: Path, out: Path, commit: str | None,
           repo: Path | None, allow_dirty: bool, data: tuple[str, ...],
           configs: tuple[Path, ...], seeds: tuple[str, ...], metrics: Path | None,
           builder_id: str | None, invocation_id: str | None, started_on: dt.datetime | None,
           allow_symlinks: bool, force: bool, as_json: bool) -> None:
    """Hash MODEL_PATH once and write signed evidence to --out.

    Writes model.sig (OpenSSF model-signing signature over every file),
    provenance.sigstore.json (SLSA Provenance v1 in a DSSE envelope in a
    Sigstore bundle v0.3, subject = the model's root digest) and evidence.json.
    """
    if started_on is not None and started_on.tzinfo is None:
        started_on = started_on.replace(tzinfo=dt.UTC)
    ignore = default_ignore_paths(model_path, out)
    with byte_progress("hashing", tree_size(str(model_path))) as progress:
        # Hash first: the imports, key and inputs below overlap the disk and hash work.
        job = HashJob(model_path, ignore_paths=ignore, allow_symlinks=allow_symlinks,
                      progress=progress)
        try:
            from mlprov.attestation import attest as run_attest

            inputs = build_inputs(commit, repo, allow_dirty, data, configs, seeds)
            result = run_attest(model_path, name=name, key=key, out=out, inputs=inputs,
                                metrics=metrics, builder_id=builder_id,
                                invocation_id=invocation_id, started_on=started_on,
                                allow_symlinks=allow_symlinks, overwrite=force,
                                progress=progress, hashing=job)
        finally:
            job.cancel()  # stops hashing early when attest failed; a no-op when it is done
    if as_json:
        emit_json({"schema": ATTEST_SCHEMA, "name": result.name, "identity": result.identity,
                   "rootDigest": f"sha256:{result.root_digest}",
                   "evidence": str(result.evidence_dir), "files": result.files})
        return
    click.echo(str(result.evidence_dir))
    note(f"attested {result.name}: {result.identity}, root sha256:{result.root_digest} "
         f"({len(result.manifest.files)} files)")
