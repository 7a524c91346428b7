"""``mlprov models show NAME --version N``: what a registered version holds, re-verified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mlprov._cli.output import echo, emit_json, note
from mlprov._cli.registry_common import open_registry

if TYPE_CHECKING:
    from mlprov.registry import VersionDetails

VERSION_SCHEMA = "https://mlprov.dev/schemas/registry-version/v1"


def show_version(name: str, version: int, registry_dir: Path | None, as_json: bool) -> None:
    """Re-verify the version, then print it (text, or one JSON document)."""
    with open_registry(registry_dir) as reg:
        details = reg.show_version(name, version)
    if as_json:
        emit_json({"schema": VERSION_SCHEMA, **details.to_json_dict()})
    else:
        for line in render_text(details):
            echo(line)
    note(f"{details.uri}: evidence, files, decisions and reviews verified")


def _row(label: str, value: object) -> str:
    return f"  {label:<14}{value}"


def _numbers(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(values.items()))


def render_text(d: VersionDetails) -> list[str]:
    """The human form: one fact per line (the caller escapes each line)."""
    lines = [f"{d.name} v{d.version}  ({d.uri})"]
    if d.description:
        lines += [_row("description" if i == 0 else "", line)
                  for i, line in enumerate(d.description.splitlines())]
    for key, value in d.tags.items():
        lines.append(_row("tag", f"{key}={value}"))
    stage = d.stage.value + (f" (decision {d.stage_decision})" if d.stage_decision else "")
    lines.append(_row("stage", stage))
    for alias in d.aliases:
        lines.append(_row("alias", f"@{alias.alias} (audit entry {alias.seq})"))
    lines += [_row("identity", d.identity), _row("root digest", d.root_digest)]
    if d.evidence_name != d.name:
        lines.append(_row("evidence name", d.evidence_name))
    lines += [_row("registered", f"{d.created_at} (decision {d.registration})"),
              _row("files", f"{d.files} ({d.bytes} bytes)")]
    if not d.reproducible:
        lines.append(_row("reproducible", "no: another version has the same identity"))
    inputs = d.inputs
    lines.append(_row("builder", d.builder))
    code = (f"{inputs.code_uri} " if inputs.code_uri else "") + f"commit {inputs.commit}"
    lines.append(_row("code", code + (" (dirty)" if inputs.dirty else "")))
    for dataset in inputs.datasets:
        where = f"  {dataset.uri}" if dataset.uri else ""
        lines.append(_row("data", f"{dataset.name} {dataset.digest}{where}"))
    if inputs.config:
        lines.append(_row("config", json.dumps(dict(inputs.config), sort_keys=True)))
    if inputs.seeds:
        lines.append(_row("seeds", ", ".join(f"{k}={v}" for k, v in sorted(inputs.seeds.items()))))
    lines += _evaluation_lines(d)
    if d.sbom is not None:
        licences = ", ".join(f"{k} {v}" for k, v in d.sbom.licenses.items())
        lines += [_row("sbom", f"CycloneDX {d.sbom.spec_version}, {d.sbom.components} "
                               f"components, {d.sbom.packages} packages"),
                  _row("  licences", licences or "none stated")]
        for component in d.sbom.key_components:
            version = f" {component.version}" if component.version else ""
            lines.append(_row("  needs", f"{component.name}{version} ({component.kind})"))
    lines.append(_row("lineage", d.lineage))
    for parent in d.parents:
        digest = f" {parent.root_digest}" if parent.root_digest else ""
        where = (" (external)" if parent.external else
                 f" -> {', '.join(parent.registered)}" if parent.registered
                 else " (not in this registry)")
        lines.append(_row("parent", f"{parent.role}: {parent.name}{digest}{where}"))
    for child in d.children:
        state = "verified" if child.verified else f"NOT VERIFIED: {child.problem}"
        lines.append(_row("child", f"{child.uri} ({child.role}) {state}"))
    for review in d.reviews:
        if review.counted:
            lines.append(_row("review", f"{review.reviewer}: {review.decision} at {review.time} "
                                        f"(signed by {review.signer}): {review.comment}"))
        else:
            lines.append(_row("review", f"{review.digest} DOES NOT COUNT: {review.problem}"))
    lines.append("history:")
    for entry in d.history:
        outcome = "" if entry.accepted else " DENIED"
        reason = f": {entry.reason}" if entry.reason else ""
        lines.append(f"  {entry.seq:>5} {entry.time} {entry.kind}{outcome} by "
                     f"{entry.actor}{reason}")
    return lines


def _evaluation_lines(d: VersionDetails) -> list[str]:
    evaluation = d.evaluation
    if evaluation is None:
        return [_row("metrics", "none attested")]
    lines = [_row("metrics", _numbers(dict(evaluation.metrics)) or "(per slice only)")]
    for slice_name, values in sorted(evaluation.slices.items()):
        lines.append(_row(f"  [{slice_name}]", _numbers(dict(values))))
    for dataset in evaluation.datasets:
        lines.append(_row("  eval data", f"{dataset.name} {dataset.digest}"))
    signed = f" (signed by {evaluation.signed_by})" if evaluation.signed_by else ""
    lines.append(_row("  evaluator", evaluation.evaluator + signed))
    return lines
