"""``mlprov attest``."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlprov._cli.options import build_inputs, cache_option, identity_options
from mlprov._cli.output import echo
from mlprov._cli.process import skip_cyclic_gc
from mlprov._cli.progress import byte_progress
from mlprov._cli.signer_options import SignerOptions, signer_options
from mlprov.hashing import HashJob, default_ignore_paths

if TYPE_CHECKING:
    from mlprov.identity import DataRef
    from mlprov.lineage import ParentSpec

ATTEST_SCHEMA = "https://mlprov.dev/schemas/attest-result/v1"

EPILOG = """\b
Examples:
  mlprov attest model/ --name credit-risk --key ci.key --out evidence/ \\
      --repo . --data train=data/train.parquet --seed torch=42 --metrics metrics.json
  mlprov attest model/ --name credit-risk --key ci.key --out evidence/ --commit SHA --json
  mlprov attest model/ --name credit-risk --key ci.key --out evidence/ --commit SHA \\
      --metrics metrics.json --eval-key eval.key --card card.yaml \\
      --environment requirements.lock --card-template TEMPLATE.md
  mlprov attest ft/ --name credit-risk-ft --key ci.key --out ft-evidence/ --commit SHA \\
      --parent fine-tune-of=base-evidence/ --parent-trust trust.yaml
  mlprov attest model/ --name credit-risk --sigstore --out evidence/ --commit SHA
  mlprov attest --mlflow-run RUN_ID --tracking-uri sqlite:///mlflow.db --key ci.key \\
      --out evidence/ --metrics slices.json --json
\b
--sigstore signs keyless: in CI with the job's OIDC identity (GitHub Actions:
permissions: id-token: write), elsewhere with --identity-token or MLPROV_IDENTITY_TOKEN.
An encrypted key is decrypted with MLPROV_KEY_PASSPHRASE, or a prompt on a terminal.
Check the result with `mlprov verify MODEL_PATH --evidence EVIDENCE_DIR --key KEY.pub`.
"""


@click.command(epilog=EPILOG)
@click.argument("model_path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--name", metavar="NAME",
              help="The model's name, e.g. credit-risk-classifier (required, except with "
                   "--mlflow-run: then the logged model's name).")
@signer_options
@click.option("--out", required=True, metavar="EVIDENCE_DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Evidence directory to write (created; may lie inside the model, "
                   "which then leaves it out of the hash).")
@identity_options
@click.option("--metrics", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='Metrics JSON, {"metrics": {...}, "slices": {NAME: {...}}, "datasets": '
                   '[...]}: signed as eval.sigstore.json, recorded in the provenance. With '
                   "--mlflow-run: added to the run's metrics.")
@click.option("--eval-key", metavar="PRIVATE_KEY",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sign the eval statement with this key (its holder needs the evaluator "
                   "role; default: --key).")
@click.option("--eval-data", "eval_data", multiple=True,
              metavar="[NAME=]PATH|URI@sha256:HEX",
              help="An evaluation dataset, recorded in the eval statement; repeatable.")
@click.option("--card", "card", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Model card input (YAML): description, license, task, intended_use, "
                   "out_of_scope_uses, factors, ethical_considerations, "
                   "caveats_and_recommendations...")
@click.option("--card-template", "card_template", metavar="TEMPLATE.md",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Render MODEL_CARD.md from this Jinja2 template (sandboxed), as "
                   "huggingface_hub's ModelCard.from_template does; variables in "
                   "docs/sbom-eval-card.md. The rendered card is the one signed.")
@click.option("--environment", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The training environment for the SBOM: a pinned requirements file or a "
                   "pylock.toml/uv.lock/poetry.lock (default: this interpreter's packages).")
@click.option("--builder-id", help="SLSA builder id (default: the CI workflow, else local).")
@click.option("--invocation-id", help="The training run's id (default: a new UUID).")
@click.option("--started-on", metavar="RFC3339", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%SZ",
                                                           "%Y-%m-%dT%H:%M:%S%z"]),
              help="When training started, e.g. 2026-01-31T12:00:00Z (default: now).")
@click.option("--parent", "parents", multiple=True, metavar="ROLE=SOURCE",
              help="A parent model: ROLE=EVIDENCE_DIR (verified, then recorded), "
                   "ROLE=models:/NAME/N (a version in the registry at $MLPROV_HOME) or "
                   "ROLE=external:NAME@sha256:HEX; ROLE is base, fine-tune-of, teacher, "
                   "merge-of, quantized-from or adapter-of. Repeatable.")
@click.option("--parent-trust", metavar="TRUST_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trust file naming the parents' builders (default: trust --key's own "
                   "public key).")
@click.option("--parent-key", metavar="PUBLIC_KEY",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A public key the parents' evidence must be signed with (instead of "
                   "--parent-trust).")
@click.option("--allow-symlinks", is_flag=True, help="Follow symlinks that stay in the model.")
@click.option("--force", is_flag=True,
              help="Replace an existing evidence directory (only one mlprov wrote).")
@cache_option
@click.option("--mlflow-run", "mlflow_run", metavar="RUN_ID",
              help="Attest the model of this finished MLflow run instead of MODEL_PATH: its "
                   "params, metrics, git commit tag and dataset inputs are the inputs "
                   "(docs/mlflow.md; pip install 'mlprov[mlflow]').")
@click.option("--tracking-uri", metavar="URI",
              help="With --mlflow-run: the MLflow tracking store (default: "
                   "MLFLOW_TRACKING_URI).")
@click.option("--mlflow-model", metavar="NAME|m-ID",
              help="With --mlflow-run: which logged model (default: the run's only one).")
@click.option("--data-root", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="With --mlflow-run: where the run's relative local dataset paths start "
                   "(default: the current directory); sources outside it are refused.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def attest(model_path: Path | None, name: str | None, signer: SignerOptions, out: Path,
           commit: str | None, repo: Path | None, allow_dirty: bool, data: tuple[str, ...],
           configs: tuple[Path, ...], seeds: tuple[str, ...], metrics: Path | None,
           eval_key: Path | None, eval_data: tuple[str, ...], card: Path | None,
           card_template: Path | None, environment: Path | None,
           builder_id: str | None, invocation_id: str | None, started_on: dt.datetime | None,
           parents: tuple[str, ...], parent_trust: Path | None, parent_key: Path | None,
           allow_symlinks: bool, force: bool, cache: Path | None, mlflow_run: str | None,
           tracking_uri: str | None, mlflow_model: str | None, data_root: Path | None,
           as_json: bool) -> None:
    """Hash MODEL_PATH (or an MLflow run's model) once and write signed evidence to --out.

    Writes model.sig (OpenSSF model-signing signature over every file),
    provenance.sigstore.json (SLSA Provenance v1 in a DSSE envelope in a
    Sigstore bundle v0.3, subject = the model's root digest), sbom.cdx.json and
    sbom.sigstore.json (CycloneDX 1.6 ML-BOM), eval.sigstore.json (with
    --metrics), MODEL_CARD.md (its digest signed in the SBOM) and evidence.json.
    """
    skip_cyclic_gc()  # one model, one evidence directory, then the process ends
    if mlflow_run is not None:
        if model_path is not None:
            raise click.UsageError("give MODEL_PATH or --mlflow-run, not both")
        for value, flag in ((invocation_id, "--invocation-id"), (started_on, "--started-on")):
            if value is not None:
                raise click.UsageError(f"{flag} comes from the run with --mlflow-run")
        _attest_mlflow_run(
            mlflow_run, tracking_uri=tracking_uri, mlflow_model=mlflow_model, name=name,
            signer=signer, out=out, commit=commit, repo=repo, allow_dirty=allow_dirty,
            data=data, configs=configs, seeds=seeds, data_root=data_root,
            options=dict(metrics=metrics, eval_key=eval_key, eval_data=eval_data, card=card,
                         card_template=card_template, environment=environment,
                         builder_id=builder_id, parents=parents, parent_trust=parent_trust,
                         parent_key=parent_key, allow_symlinks=allow_symlinks, force=force),
            as_json=as_json)
        return
    for given, flag in ((tracking_uri, "--tracking-uri"), (mlflow_model, "--mlflow-model"),
                        (data_root, "--data-root")):
        if given is not None:
            raise click.UsageError(f"{flag} needs --mlflow-run")
    if model_path is None:
        raise click.UsageError("Missing argument 'MODEL_PATH' (or give --mlflow-run RUN_ID).")
    if name is None:
        raise click.UsageError("Missing option '--name'.")
    if started_on is not None and started_on.tzinfo is None:
        started_on = started_on.replace(tzinfo=dt.UTC)
    ignore = default_ignore_paths(model_path, out)
    with byte_progress("hashing") as progress:
        # Hash first: the imports, key and inputs below overlap the disk and hash work.
        job = HashJob(model_path, ignore_paths=ignore, allow_symlinks=allow_symlinks,
                      progress=progress, on_total=progress.total if progress else None,
                      cache=cache)
        try:
            from mlprov._cli.output import emit_json, note
            from mlprov.attestation import attest as run_attest

            inputs = build_inputs(commit, repo, allow_dirty, data, configs, seeds)
            specs = _parse_parents(parents, parent_trust, parent_key)
            eval_datasets = _parse_eval_data(eval_data, metrics, eval_key)
            result = run_attest(model_path, name=name, signer=signer.build(), out=out,
                                inputs=inputs,
                                metrics=metrics, eval_key=eval_key, eval_data=eval_datasets,
                                card=card, card_template=card_template,
                                environment=environment, builder_id=builder_id,
                                invocation_id=invocation_id, started_on=started_on,
                                allow_symlinks=allow_symlinks, overwrite=force,
                                progress=progress, hashing=job, parents=specs,
                                parent_trust=parent_trust, parent_key=parent_key)
        finally:
            job.cancel()  # stops hashing early when attest failed; a no-op when it is done
    if as_json:
        emit_json({"schema": ATTEST_SCHEMA, "name": result.name, "identity": result.identity,
                   "rootDigest": f"sha256:{result.root_digest}",
                   "evidence": str(result.evidence_dir), "files": result.files,
                   "parents": [p.to_json_dict() for p in result.parents]})
        return
    echo(str(result.evidence_dir))
    note(f"attested {result.name}: {result.identity}, root sha256:{result.root_digest} "
         f"({len(result.manifest.files)} files)")
    for parent in result.parents:
        kind = "external, pinned by digest" if parent.external else "evidence verified"
        note(f"  parent {parent.role}: {parent.name} sha256:{parent.root_digest} ({kind})")


def _attest_mlflow_run(run_id: str, *, tracking_uri: str | None, mlflow_model: str | None,
                       name: str | None, signer: SignerOptions, out: Path, commit: str | None,
                       repo: Path | None, allow_dirty: bool, data: tuple[str, ...],
                       configs: tuple[Path, ...], seeds: tuple[str, ...],
                       data_root: Path | None, options: dict[str, Any], as_json: bool) -> None:
    """``attest --mlflow-run``: the run's model, downloaded fresh, attested with its inputs."""
    from mlprov._cli.output import emit_json, note
    from mlprov.identity import load_configs, parse_data_spec, parse_seed
    from mlprov.mlflow import attest_run

    if commit and repo:
        raise click.UsageError("give --commit or --repo, not both")
    seed_map: dict[str, int] = {}
    for spec in seeds:
        seed_name, value = parse_seed(spec)
        if seed_name in seed_map:
            raise click.UsageError(f"seed {seed_name} given twice")
        seed_map[seed_name] = value
    specs = _parse_parents(options["parents"], options["parent_trust"], options["parent_key"])
    eval_datasets = [parse_data_spec(value) for value in options["eval_data"]]
    with _quiet_mlflow(), byte_progress("hashing") as progress:
        evidence = attest_run(
            run_id, tracking_uri=tracking_uri, model=mlflow_model, name=name,
            signer=signer.build(), out=out, commit=commit, repo=repo, allow_dirty=allow_dirty,
            data=[parse_data_spec(value) for value in data], data_root=data_root,
            config=load_configs(list(configs)) or None, seeds=seed_map or None,
            evaluation=options["metrics"], card=options["card"],
            eval_key=options["eval_key"], eval_data=eval_datasets or None,
            card_template=options["card_template"], environment=options["environment"],
            builder_id=options["builder_id"], parents=specs or None,
            parent_trust=options["parent_trust"], parent_key=options["parent_key"],
            allow_symlinks=options["allow_symlinks"], overwrite=options["force"],
            progress=progress)
    result = evidence.result
    if as_json:
        emit_json({"schema": ATTEST_SCHEMA, "name": result.name, "identity": result.identity,
                   "rootDigest": f"sha256:{result.root_digest}",
                   "evidence": str(result.evidence_dir), "files": result.files,
                   "parents": [p.to_json_dict() for p in result.parents],
                   "mlflow": {"runId": evidence.run_id, "modelId": evidence.model_id,
                              "modelUri": evidence.model_uri}})
        return
    echo(str(result.evidence_dir))
    note(f"attested {result.name} from MLflow run {evidence.run_id} ({evidence.model_uri}): "
         f"{result.identity}, root sha256:{result.root_digest} "
         f"({len(result.manifest.files)} files)")


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """No MLflow download progress bars on stderr (notes and errors only, one per line)."""
    variable = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(variable)
    os.environ[variable] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


def _parse_parents(values: tuple[str, ...], parent_trust: Path | None,
                   parent_key: Path | None) -> list[str | ParentSpec]:
    """Check the --parent values (usage errors, exit 2) before any evidence is read."""
    if parent_trust is not None and parent_key is not None:
        raise click.UsageError("give --parent-trust or --parent-key, not both")
    if not values:
        return []  # and no need to import lineage
    from mlprov.errors import InputError
    from mlprov.lineage import parse_parent_spec

    specs: list[str | ParentSpec] = []
    for value in values:
        try:
            spec = parse_parent_spec(value)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="'--parent'") from exc
        if spec.evidence is not None and str(spec.evidence).startswith("models:/"):
            from mlprov._cli.registry_common import model_uri, registry_parent

            model_uri(str(spec.evidence))  # a bad URI is a usage error
            spec = registry_parent(spec)  # its evidence, verified, from the registry
        elif spec.evidence is not None and not spec.evidence.is_dir():
            raise click.BadParameter(f"evidence directory {str(spec.evidence)!r} does not exist",
                                     param_hint="'--parent'")
        specs.append(spec)
    return specs


def _parse_eval_data(values: tuple[str, ...], metrics: Path | None,
                     eval_key: Path | None) -> list[DataRef]:
    """The --eval-data datasets (hashed when paths); they and --eval-key need --metrics."""
    from mlprov.identity import parse_data_spec

    for given, flag in ((values, "--eval-data"), (eval_key, "--eval-key")):
        if given and metrics is None:
            raise click.UsageError(f"{flag} needs --metrics (the results the evaluator signs)")
    return [parse_data_spec(value) for value in values]
