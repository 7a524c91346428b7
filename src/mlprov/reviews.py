"""Signed human reviews: an approval or a rejection bound to one model version.

A review is an in-toto Statement v1 in a Sigstore bundle, like the rest of the
evidence. Its subject is the model's root digest; its predicate
(``https://mlprov.dev/predicates/review/v1``) names the model's identity, the
reviewer, the decision, a comment, the time, and the digests of the evidence
files that verified when the review was made::

    {"model": {"name": "credit-risk", "identity": "mlid:sha256:...",
               "rootDigest": "sha256:..."},
     "reviewer": "alice", "decision": "approve", "comment": "metrics and card read",
     "reviewedAt": "2026-01-31T12:00:00Z",
     "evidence": {"provenance.sigstore.json": "sha256:...", ...}}

A review counts only when its signature verifies with a trusted key holding the
``reviewer`` role and it names the model's root digest and identity; anything
else is reported with the reason and never counted. Whether the reviewer is
someone other than the builder is the policy's call (production.rego).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import ConfigDict, Field, ValidationError

from mlprov._internal.arguments import (
    PATH,
    PATHS,
    TEXT,
    TRUST,
    checked,
    either,
    instance,
    lazy_instance,
    optional,
)
from mlprov._signing.interface import BundleSigner
from mlprov.bundles import sign_statement, verify_statement_file
from mlprov.errors import InputError, VerificationError
from mlprov.evidence import PROVENANCE_FILE
from mlprov.statements import MLPROV_PREDICATE_PREFIX, MlprovModel, Statement, sha256_descriptor
from mlprov.trust import Role, Trust, TrustedKey, load_trust

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mlprov.signing import BundleSigner
    from mlprov.verification import Verdict

__all__ = [
    "REVIEW_PREDICATE_TYPE",
    "ReviewDecision",
    "ReviewPredicate",
    "VerifiedReview",
    "evidence_verified",
    "make_review",
    "provenance_digest",
    "signer_id",
    "signer_json",
    "verify_reviews",
]

REVIEW_PREDICATE_TYPE: Final = MLPROV_PREDICATE_PREFIX + "review/v1"
ReviewDecision = Literal["approve", "reject"]
_TIME = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_SHA256 = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
_MAX_COMMENT = 10_000


class ReviewedModel(MlprovModel):
    """The model version a review is about."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    name: str = Field(min_length=1)
    identity: str = Field(min_length=1)
    # pydantic's patterns are Rust regexes: there ``$`` is the end of the text only.
    root_digest: str = Field(alias="rootDigest", pattern=r"^sha256:[0-9a-f]{64}$")


class ReviewPredicate(MlprovModel):
    """The review predicate, version 1 (unknown fields are ignored when reading)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    model: ReviewedModel
    reviewer: str = Field(min_length=1, max_length=200)
    decision: ReviewDecision
    comment: str = Field(max_length=_MAX_COMMENT)
    reviewed_at: str = Field(alias="reviewedAt",
                             pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    evidence: dict[str, str] = Field(default_factory=dict)


def signer_id(signer: TrustedKey) -> str:
    """Who signed, stably: ``key:<keyid>``, or ``sigstore:<issuer> <subject>`` when keyless.

    A keyless signer's key is new for every signature, so its identity, not its
    key, tells two signatures by the same person (or CI job) apart from two people.
    """
    identity = getattr(signer, "identity", None)
    if identity is not None:
        return f"sigstore:{identity.issuer} {identity.subject}"
    return f"key:{signer.key.keyid}"


def signer_json(signer: TrustedKey) -> dict[str, Any]:
    """A trusted signer as policy input: id, name, key id, roles (identity when keyless)."""
    to_json = getattr(signer, "to_json_dict", None)
    if callable(to_json):
        document = dict(to_json())
    else:  # pragma: no cover - older TrustedKey without to_json_dict
        document = {"name": signer.name, "keyid": signer.key.keyid}
    document["id"] = signer_id(signer)
    document["name"] = signer.name
    document["keyid"] = signer.key.keyid
    document["roles"] = sorted(str(role) for role in signer.roles)
    return document


@dataclass(frozen=True)
class VerifiedReview:
    """The outcome of checking one review file.

    ``counted`` is true only for a review that verified, signed by a reviewer,
    about this model; then the other fields hold what it says. Otherwise only
    ``path`` and ``problem`` are set: nothing an unverified file claims is kept.
    """

    path: Path
    counted: bool
    problem: str | None = None
    reviewer: str | None = None
    decision: ReviewDecision | None = None
    comment: str | None = None
    time: str | None = None
    signer: TrustedKey | None = None
    file_sha256: str | None = None
    evidence: dict[str, str] | None = None
    #: The model version the review verified against (set when counted).
    root_digest: str | None = None
    identity: str | None = None
    #: The model's name and the digest of the provenance bundle it was reviewed with.
    name: str | None = None
    provenance: str | None = None

    def to_input(self) -> dict[str, Any]:
        """The review as policy input (only for counted reviews).

        Raises:
            InputError: the review was not counted.
        """
        if not self.counted or self.signer is None:
            raise InputError(f"review {self.path.name} was not counted: {self.problem}")
        return {
            "file": self.path.name,
            "fileDigest": f"sha256:{self.file_sha256}",
            "reviewer": self.reviewer,
            "decision": self.decision,
            "comment": self.comment,
            "time": self.time,
            "signer": signer_json(self.signer),
            "evidence": dict(self.evidence or {}),
        }

    def to_json_dict(self) -> dict[str, Any]:
        """A report line: the file, whether it counted, and why not."""
        document: dict[str, Any] = {"file": str(self.path), "counted": self.counted}
        if self.counted:
            document.update(reviewer=self.reviewer, decision=self.decision,
                            signer=self.signer.name if self.signer else None)
        else:
            document["problem"] = self.problem
        return document


def evidence_verified(verdict: Verdict) -> bool:
    """Whether a verdict vouches for its evidence.

    Every check passed, except ``files`` when only the evidence was verified.
    """
    if not verdict.checks or not (verdict.name and verdict.identity and verdict.root_digest):
        return False
    return all(c.ok is True or (c.ok is None and c.name == "files") for c in verdict.checks)


def provenance_digest(verdict: Verdict) -> str | None:
    """``sha256:<hex>`` of the verified provenance bundle a verdict holds, or None."""
    statement = verdict.statements.get(PROVENANCE_FILE)
    return f"sha256:{statement.file_sha256}" if statement is not None else None


def _verified(evidence: Path | str | Verdict, trust: Trust | Path | str | None,
              key: Path | str | None, model: Path | str | None) -> Verdict:
    from mlprov.verification import Verdict, verify

    if isinstance(evidence, Verdict):
        return evidence
    if trust is None and key is None:
        raise InputError("refusing to review evidence that was not verified",
                         hint="pass trust= (or key=) so the evidence is verified first")
    return verify(model, evidence=evidence, trust=trust, key=key)


@checked(evidence_dir_or_verdict=either(PATH, lazy_instance("mlprov.verification",
         "Verdict")),
         signer=instance(BundleSigner, "a signer (mlprov.signing.load_private_key(path))"),
         reviewer=TEXT, decision=TEXT, comment=TEXT, trust=optional(TRUST), key=optional(PATH),
         model=optional(PATH), now=optional(instance(dt.datetime, "a datetime")))
def make_review(
    evidence_dir_or_verdict: Path | str | Verdict,
    *,
    signer: BundleSigner,
    reviewer: str,
    decision: ReviewDecision,
    comment: str,
    trust: Trust | Path | str | None = None,
    key: Path | str | None = None,
    model: Path | str | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """Sign a review of a verified model version; return the Sigstore bundle bytes.

    Example:
        bundle = make_review("evidence/", signer=load_private_key(Path("alice.key")),
                             reviewer="alice", decision="approve", comment="eval ok",
                             trust="trust.yaml")
        Path("review.sigstore.json").write_bytes(bundle)

    Args:
        evidence_dir_or_verdict: a :class:`~mlprov.verification.Verdict`, or an
            evidence directory, verified here with ``trust`` or ``key`` (and the
            model's files too when ``model`` is given).
        signer: the reviewer's signer (e.g. :func:`mlprov.signing.load_private_key`).
        reviewer: the reviewer's name, as shown to people.
        decision: ``approve`` or ``reject``.
        comment: why.
        trust: trust file or :class:`~mlprov.trust.Trust` verifying the evidence.
        key: a public key trusted for every role, instead of ``trust``.
        model: the model's files, to verify them as well (optional).
        now: the review time (default: now), recorded to the second in UTC.

    Raises:
        InputError: a bad decision, reviewer or comment, or no way to verify.
        VerificationError: the evidence did not verify; nothing is signed.
    """
    if decision not in ("approve", "reject"):
        raise InputError(f"review decision must be approve or reject, not {decision!r}")
    reviewer = reviewer.strip()
    if not reviewer or "\n" in reviewer or len(reviewer) > 200:
        raise InputError(f"invalid reviewer name {reviewer!r}")
    if len(comment) > _MAX_COMMENT:
        raise InputError(f"review comment longer than {_MAX_COMMENT} characters")
    verdict = _verified(evidence_dir_or_verdict, trust, key, model)
    if not evidence_verified(verdict):
        failures = verdict.failures()
        detail = failures[0].detail if failures else "a verification step did not run"
        raise VerificationError(f"refusing to review evidence that did not verify: {detail}")
    assert verdict.name and verdict.identity and verdict.root_digest
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    predicate = ReviewPredicate(
        model=ReviewedModel(name=verdict.name, identity=verdict.identity,
                            root_digest=verdict.root_digest),
        reviewer=reviewer, decision=decision, comment=comment,
        reviewed_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        evidence={name: f"sha256:{s.file_sha256}" for name, s in sorted(
            verdict.statements.items())})
    statement = Statement(
        subject=[sha256_descriptor(verdict.name, verdict.root_digest.removeprefix("sha256:"))],
        predicate_type=REVIEW_PREDICATE_TYPE, predicate=predicate.to_json_dict())
    return sign_statement(statement, signer)


def _normalise_digest(value: str) -> str:
    digest = value if value.startswith("sha256:") else f"sha256:{value}"
    if not _SHA256.match(digest):
        raise InputError(f"not a SHA-256 root digest: {value!r}")
    return digest


def _check_one(path: Path, trust: Trust, root: str, identity: str, name: str | None,
               provenance: str | None) -> VerifiedReview:
    try:
        verified = verify_statement_file(path, trust, Role.REVIEWER,
                                         predicate_type=REVIEW_PREDICATE_TYPE)
    except VerificationError as exc:
        return VerifiedReview(path, False, str(exc))
    try:
        predicate = ReviewPredicate.model_validate(verified.statement.predicate)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "predicate"
        return VerifiedReview(path, False, f"{path.name}: malformed review: {where}: "
                                           f"{first['msg']}")
    subjects = verified.statement.subject_sha256()
    if root.removeprefix("sha256:") not in subjects or predicate.model.root_digest != root:
        return VerifiedReview(path, False, f"{path.name} reviews another model "
                                           f"({predicate.model.root_digest}), not {root}")
    if predicate.model.identity != identity:
        return VerifiedReview(path, False, f"{path.name} reviews another version "
                                           f"({predicate.model.identity}), not {identity}")
    if name is not None and predicate.model.name != name:
        return VerifiedReview(path, False, f"{path.name} reviews another model "
                                           f"({predicate.model.name!r}), not {name!r}")
    reviewed = predicate.evidence.get(PROVENANCE_FILE)
    if provenance is not None and reviewed != provenance:
        why = ("names no provenance it reviewed" if reviewed is None
               else f"reviews other evidence (provenance {reviewed}), not {provenance}")
        return VerifiedReview(path, False, f"{path.name} {why}")
    return VerifiedReview(path, True, None, reviewer=predicate.reviewer,
                          decision=predicate.decision, comment=predicate.comment,
                          time=predicate.reviewed_at, signer=verified.signer,
                          file_sha256=verified.file_sha256, evidence=dict(predicate.evidence),
                          root_digest=root, identity=identity, name=name,
                          provenance=provenance)


@checked(paths=PATHS, trust=TRUST, verdict=optional(lazy_instance("mlprov.verification",
         "Verdict")),
         root_digest=optional(TEXT), identity=optional(TEXT), name=optional(TEXT),
         provenance=optional(TEXT))
def verify_reviews(paths: Iterable[Path | str], trust: Trust | Path | str, *,
                   verdict: Verdict | None = None, root_digest: str | None = None,
                   identity: str | None = None, name: str | None = None,
                   provenance: str | None = None) -> list[VerifiedReview]:
    """Check review files against a model version; one result per path, in order.

    A review counts when it is signed by a trusted key holding the ``reviewer``
    role and names ``root_digest`` (subject and predicate) and ``identity``, and,
    when given, the model ``name`` and the digest of its provenance bundle
    (``provenance``, ``sha256:<hex>``): a review of model A never counts for a
    model B with the same bytes and recipe. The policy input keeps only reviews
    checked against all four (:func:`mlprov.policy.build_input`): pass the
    model's ``verdict`` to take all four from it (see the example).
    Unsigned, forged, wrongly signed, malformed or other-model reviews are
    returned with ``counted=False`` and the reason.

    Example:
        reviews = verify_reviews(["alice.sigstore.json"], "trust.yaml", verdict=verdict)

    Raises:
        TrustError, KeyMaterialError: the trust file is unusable.
        InputError: ``root_digest`` is not a SHA-256 digest.
    """
    if verdict is not None:
        root_digest = root_digest or verdict.root_digest
        identity = identity or verdict.identity
        name = name or verdict.name
        provenance = provenance or provenance_digest(verdict)
    if root_digest is None or identity is None:
        raise InputError("verify_reviews needs the model: verdict= (or root_digest= and "
                         "identity=)")
    resolved = trust if isinstance(trust, Trust) else load_trust(Path(trust))
    root = _normalise_digest(root_digest)
    if provenance is not None and not _SHA256.match(provenance):
        raise InputError(f"not a SHA-256 provenance digest: {provenance!r}")
    return [_check_one(Path(p), resolved, root, identity, name, provenance) for p in paths]
