"""``mlprov inspect``: the auditor's view of an evidence directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlprov._cli.options import require_one_trust, trust_options
from mlprov._cli.output import emit_json, note, printable
from mlprov._cli.progress import byte_progress
from mlprov._cli.registry_common import (
    evidence_or_uri,
    load_pinned_trust,
    open_registry,
    registry_option,
)
from mlprov.errors import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from mlprov.inspection import Inspection, Section

EPILOG = """\b
Examples:
  mlprov inspect evidence/ --trust trust.yaml
  mlprov inspect evidence/ --trust trust.yaml --model model/ --json
  mlprov inspect models:/credit-risk@production --registry /srv/mlprov
\b
Without --model only the evidence is verified (signatures, roles, subjects,
digests); the model's files are reported as not checked.
A models:/ URI is verified by the registry (--registry, else $MLPROV_REGISTRY):
the decision behind the URI, the stored evidence against the registry's trust
(or --trust, which must give the registry's key the registry role) and the
stored files the signed manifest names.
Exit codes: 0 everything checked verified, 1 a claim failed (shown as FAILED),
2 usage, 3 unusable trust or key material.
"""

_MARK = {"verified": "", "failed": "FAILED", "unverified": "NOT VERIFIED",
         "absent": "absent", "not-checked": "not checked"}


@click.command(epilog=EPILOG)
@click.argument("evidence", metavar="EVIDENCE_DIR|URI", callback=evidence_or_uri)
@trust_options()
@click.option("--model", "model_path", metavar="MODEL_PATH",
              type=click.Path(exists=True, path_type=Path),
              help="Also hash the model and compare it with the signed manifest.")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as one JSON document.")
@click.pass_context
def inspect(ctx: click.Context, evidence: Path | str, trust: Path | None, key: Path | None,
            model_path: Path | None, registry_dir: Path | None, as_json: bool) -> None:
    """Verify EVIDENCE_DIR (or a registered version), then show what it says and who vouches.

    Shows the name, identity and its inputs, root digest, builder, start and
    finish, code commit, datasets, parents, metrics, an SBOM summary (package
    count, licences) and who signed which claim in which role. A claim that
    does not verify is shown as FAILED with the reason, never its content.
    """
    if isinstance(evidence, str):
        if key is not None or model_path is not None:
            raise click.UsageError("--key and --model take an evidence directory; a models:/ "
                                   "URI is verified by the registry (--trust: a pipeline's "
                                   "own trust file)")
        with open_registry(registry_dir) as reg:
            result = reg.inspect(evidence, trust=load_pinned_trust(trust))
        _report(ctx, result, as_json)
        return
    require_one_trust(trust, key)
    from mlprov.inspection import inspect_evidence

    if model_path is None:
        result = inspect_evidence(evidence, trust=trust, key=key)
    else:
        from mlprov.hashing import HashJob, default_ignore_paths

        with byte_progress("verifying") as progress:
            job = HashJob(model_path, ignore_paths=default_ignore_paths(model_path, evidence),
                          progress=progress, on_total=progress.total if progress else None)
            try:
                result = inspect_evidence(evidence, trust=trust, key=key, model=model_path,
                                          progress=progress, hashing=job)
            finally:
                job.cancel()
    _report(ctx, result, as_json)


def _report(ctx: click.Context, result: Inspection, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json_dict())
    else:
        click.echo("\n".join(printable(line) for line in render_text(result)))
    if not result.ok:
        failures = result.failures()
        if failures:
            first = failures[0]
            more = f"; {len(failures) - 1} more check(s) failed" if len(failures) > 1 else ""
            note(f"error: inspection found a failed claim: {first.name}: {first.detail} "
                 f"(hint: do not rely on the claims marked FAILED{more})")
        else:
            note("error: not every check ran (hint: see the claims marked NOT VERIFIED)")
        ctx.exit(EXIT_CHECK_FAILED)


def _row(label: str, value: object) -> str:
    return f"  {label:<14}{value}"


def _failed(section: Section) -> str:
    return f"{_MARK[section.status]}: {section.detail}" if section.detail \
        else _MARK[section.status]


def _numbers(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def _provenance_lines(result: Inspection) -> list[str]:
    section = result.provenance
    if section.status != "verified":
        return [_row("provenance", _failed(section))]
    facts = section.facts
    inputs, code, builder = facts["inputs"], facts["code"], facts["builder"]
    lines = [_row("identity", facts["identity"])]
    code_text = (f"{code['uri']} " if code["uri"] else "") + f"commit {code['commit']}"
    lines.append(_row("  code", code_text + (" (dirty)" if code["dirty"] else "")))
    for dataset in facts["datasets"]:
        where = f"  {dataset['uri']}" if dataset["uri"] else ""
        lines.append(_row("  data", f"{dataset['name']} {dataset['digest']}{where}"))
    if inputs["config"]:
        lines.append(_row("  config", json.dumps(inputs["config"], sort_keys=True)))
    if inputs["seeds"]:
        lines.append(_row("  seeds", _numbers(inputs["seeds"])))
    versions = ", ".join(f"{k} {v}" for k, v in (("mlprov", builder["mlprov"]),
                                                  ("python", builder["python"]),
                                                  ("platform", builder["platform"])) if v)
    lines.append(_row("builder", builder["id"] + (f" ({versions})" if versions else "")))
    for label, key in (("invocation", "invocationId"), ("started", "startedOn"),
                       ("finished", "finishedOn")):
        if facts[key]:
            lines.append(_row(label, facts[key]))
    parents = facts["parents"]
    if not parents:
        lines.append(_row("parents", "none recorded"))
    for parent in parents:
        digest = f" {parent['rootDigest']}" if parent["rootDigest"] else ""
        external = " (external)" if parent["external"] else ""
        lines.append(_row("parent", f"{parent['role']}: {parent['name']}{digest}{external}"))
    return lines


def render_text(result: Inspection) -> list[str]:
    """The human report: verified facts, then every claim with its signer and role."""
    name = result.provenance.facts.get("name") if result.provenance.status == "verified" \
        else None
    if result.verified:
        state = "VERIFIED"
    elif result.ok:
        state = "evidence VERIFIED; model files not checked (pass --model)"
    else:
        state = "NOT VERIFIED"
    lines = [f"{name or '(name not verified)'}: {state}", *_provenance_lines(result)]
    files = result.files
    root = files.facts.get("rootDigest")
    if root:
        suffix = "" if files.status == "verified" else f" ({_MARK[files.status]})"
        lines.append(_row("root digest", f"{root}{suffix}"))
    else:
        lines.append(_row("root digest", _failed(files)))
    if files.status == "failed":
        lines.append(_row("files", _failed(files)))
    lines += _eval_lines(result) + _sbom_lines(result)
    card = result.card
    lines.append(_row("card", f"{card.facts['file']} {card.facts['digest']} (signed in the SBOM)"
                      if card.status == "verified" else _failed(card)))
    if result.lineage.status != "absent":
        lines.append(_row("lineage", result.lineage.detail if result.lineage.status == "verified"
                          else _failed(result.lineage)))
    lines.append("claims:")
    width = max(len(c.file) for c in result.claims)
    for claim in result.claims:
        role = f"needs {claim.required_role}" if claim.required_role else ""
        if claim.status == "verified":
            who = (f"signed by {claim.signer} ({', '.join(claim.signer_roles)})"
                   if claim.signer else claim.detail)
            if claim.signer_identity is not None:  # keyless: say who the certificate names
                identity = claim.signer_identity
                who += f", Sigstore {identity['subject']} via {identity['issuer']}"
            lines.append(f"  {claim.file:<{width}}  {role:<16} ok: {who}")
        else:
            lines.append(f"  {claim.file:<{width}}  {role:<16} {_MARK[claim.status]}: "
                         f"{claim.detail}")
    return lines


def _eval_lines(result: Inspection) -> list[str]:
    section = result.evaluation
    if section.status != "verified":
        return [_row("metrics", "none attested" if section.status == "absent"
                     else _failed(section))]
    facts = section.facts
    lines = [_row("metrics", _numbers(facts["metrics"]) or "(per slice only)")]
    for slice_name, values in sorted(facts["slices"].items()):
        lines.append(_row(f"  [{slice_name}]", _numbers(values)))
    for dataset in facts["datasets"]:
        lines.append(_row("  eval data", f"{dataset['name']} {dataset['digest']}"))
    lines.append(_row("  evaluator", f"{facts['evaluator']['id']} (signed by "
                                     f"{facts['signedBy']})"))
    return lines


def _sbom_lines(result: Inspection) -> list[str]:
    section = result.sbom
    if section.status != "verified":
        return [_row("sbom", _failed(section))]
    facts = section.facts
    licences = ", ".join(f"{name} {count}" for name, count in facts["licenses"].items())
    return [_row("sbom", f"CycloneDX {facts['specVersion']}, {facts['packages']} packages"),
            _row("  licences", licences or "none stated")]
