"""``mlprov review approve`` and ``mlprov review reject``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from mlprov._cli.output import emit_json, note
from mlprov._cli.registry_common import (
    evidence_or_uri,
    load_pinned_trust,
    open_registry,
    registry_option,
)
from mlprov._cli.registry_review import add as registry_add
from mlprov._cli.registry_review import pending as registry_pending
from mlprov._cli.signer_options import SignerOptions, signer_options
from mlprov.errors import InputError

REVIEW_RESULT_SCHEMA = "https://mlprov.dev/schemas/review-result/v1"

EPILOG = """\b
Examples:
  mlprov review approve evidence/ --key alice.key --trust trust.yaml \\
      --comment "metrics, card and SBOM read" --out alice.review.json
  mlprov review reject evidence/ --key alice.key --verify-key ci.key.pub \\
      --comment "AUC on age<30 too low" --out alice.review.json --reviewer "Alice Liddell"
  mlprov review approve evidence/ --sigstore --trust trust.yaml --comment "ok" \\
      --out bob.review.json    # keyless: MLPROV_IDENTITY_TOKEN, or the CI job's identity
  mlprov review approve models:/credit-risk/3 --key alice.key --comment "ok" \\
      --out alice.review.json --registry /srv/mlprov
\b
The evidence is verified before anything is signed: with --trust TRUST_FILE (its
signers and roles) or --verify-key PUBLIC_KEY (one key trusted for every role);
--model also checks the model's files. A models:/ URI is verified by the registry
(--registry, else $MLPROV_REGISTRY) with its trust, or --trust (which must give
the registry's key the registry role). The review binds the model's root digest
and identity. It counts in `mlprov policy check --review FILE` only when --key's
public key has the reviewer role in the trust file used there.
\b
Exit codes: 0 written, 1 the evidence did not verify (nothing signed),
2 usage, 3 unusable key, trust file or output path.
"""


@click.group()
def review() -> None:
    """Sign a review (approve or reject) of a model's verified evidence."""


def _write_new(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` via a temporary file; without ``overwrite`` never replace."""
    if path.exists() and not overwrite:
        raise InputError(f"refusing to overwrite {path}", hint="pass --force to replace it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
    except FileExistsError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"refusing to overwrite {path}", hint="pass --force to replace it") \
            from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc


def _reviewer_name(signer: Any, trusted: Any, key: Path | None) -> tuple[str, bool]:
    """The signer's name in the trust file (else the key file's stem), and its role.

    The second value says whether the signer holds the reviewer role there. A
    keyless signer is looked up by its token's identity and issuer.
    """
    from mlprov.trust import Role

    if key is None:  # --sigstore
        identity, issuer = signer.sigstore_identity
        for rule in trusted.sigstore:
            if rule.matches(identity, issuer):
                return rule.label, Role.REVIEWER in rule.roles
        return identity, False
    for entry in trusted.keys:
        if entry.key.keyid == signer.public_key.keyid:
            return entry.name, Role.REVIEWER in entry.roles
    return key.name.removesuffix(".key").removesuffix(".pem") or key.name, False


def _directory_trust(trust: Path | None, verify_key: Path | None) -> Any:
    from mlprov.trust import Trust, load_trust

    if trust is not None and verify_key is None:
        return load_trust(trust)
    if verify_key is not None and trust is None:
        return Trust.single_key(verify_key)
    raise click.UsageError("give exactly one of --trust TRUST_FILE or --verify-key "
                           "PUBLIC_KEY to verify the evidence before reviewing it")


def _review(decision: str, evidence: Path | str, signer_choice: SignerOptions, comment: str,
            out: Path, reviewer: str | None, trust: Path | None, verify_key: Path | None,
            model: Path | None, registry_dir: Path | None, force: bool, as_json: bool) -> None:
    from mlprov.reviews import evidence_verified, make_review

    registered = isinstance(evidence, str)
    if registered and (verify_key is not None or model is not None):
        raise click.UsageError("--verify-key and --model take an evidence directory; a "
                               "models:/ URI is verified by the registry (--trust: a "
                               "pipeline's own trust file)")
    trusted = None if registered else _directory_trust(trust, verify_key)
    if out.exists() and not force:
        raise InputError(f"refusing to overwrite {out}", hint="pass --force to replace it")
    key = signer_choice.key
    signer = signer_choice.build()
    if isinstance(evidence, str):
        with open_registry(registry_dir) as reg:
            pinned = load_pinned_trust(trust)
            verdict = reg.verify_uri(evidence, trust=pinned).verdict
            trusted = pinned or reg.trust
    else:
        from mlprov.verification import verify

        verdict = verify(model, evidence=evidence, trust=trusted)
    name, is_reviewer = _reviewer_name(signer, trusted, key)
    bundle = make_review(verdict, signer=signer, reviewer=reviewer or name,
                         decision="approve" if decision == "approve" else "reject",
                         comment=comment)
    _write_new(out, bundle, overwrite=force)
    if as_json:
        emit_json({"schema": REVIEW_RESULT_SCHEMA, "out": str(out), "decision": decision,
                   "reviewer": reviewer or name, "name": verdict.name,
                   "identity": verdict.identity, "rootDigest": verdict.root_digest,
                   "filesVerified": evidence_verified(verdict) and model is not None})
    else:
        click.echo(str(out))
    note(f"signed {'an approval' if decision == 'approve' else 'a rejection'} of "
         f"{verdict.name} {verdict.identity} {verdict.root_digest} as {reviewer or name}")
    if (trust is not None or registered) and not is_reviewer:
        who, fix = ((key.name, "give its public key the reviewer role") if key is not None
                    else (name, "add this identity under 'sigstore' with the reviewer role"))
        where = trust if trust is not None else "the registry's trust"
        note(f"note: {who} is not a reviewer in {where}; this review will not count "
             f"there ({fix})")


def _command(decision: str) -> click.Command:
    @click.command(decision, epilog=EPILOG)
    @click.argument("evidence", metavar="EVIDENCE_DIR|URI", callback=evidence_or_uri)
    @signer_options  # --key PRIVATE_KEY, or --sigstore (keyless, the reviewer's OIDC identity)
    @click.option("--comment", required=True, metavar="TEXT", help="Why (signed with the review).")
    @click.option("--out", required=True, metavar="FILE",
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write the signed review (a Sigstore bundle).")
    @click.option("--reviewer", metavar="NAME",
                  help="The reviewer's name (default: the key's name in the trust file, "
                       "else the key file's name).")
    @click.option("--trust", metavar="TRUST_FILE",
                  type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Trust file to verify the evidence with.")
    @click.option("--verify-key", metavar="PUBLIC_KEY",
                  type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="A public key trusted for every role to verify the evidence "
                       "(instead of --trust).")
    @click.option("--model", metavar="PATH", type=click.Path(exists=True, path_type=Path),
                  help="The model's files, verified too.")
    @registry_option
    @click.option("--force", is_flag=True, help="Replace an existing --out file.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def command(evidence: Path | str, signer: SignerOptions, comment: str, out: Path,
                reviewer: str | None, trust: Path | None, verify_key: Path | None,
                model: Path | None, registry_dir: Path | None, force: bool,
                as_json: bool) -> None:
        _review(decision, evidence, signer, comment, out, reviewer, trust, verify_key, model,
                registry_dir, force, as_json)

    command.help = (f"{'Approve' if decision == 'approve' else 'Reject'} the model whose "
                    "evidence is in EVIDENCE_DIR (or a registered version, models:/NAME/N): "
                    "verify it, then sign a review bound to its root digest and identity, "
                    "with the reviewer's name and the time.")
    return command


review.add_command(_command("approve"))
review.add_command(_command("reject"))
# `mlprov review add NAME VERSION FILE`: attach a review to a registry version.
review.add_command(registry_add)
# `mlprov review pending`: the registry's versions whose next move waits on a review.
review.add_command(registry_pending)
