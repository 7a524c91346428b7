"""Statements the registry signs: decisions (SLSA VSA v1), checkpoints, deployments.

A decision is an in-toto Statement v1 with predicate type
``https://slsa.dev/verification_summary/v1``
(https://slsa.dev/spec/v1.1/verification_summary): the subject is the model's
root digest, ``resourceUri`` the version's ``models:/NAME/N``, ``policy`` the
policy that decided (URI and digest), ``inputAttestations`` every evidence file
and review it was evaluated over, and ``verificationResult`` PASSED or FAILED.
What changed (kind, alias or stage, actor, reason, the audit sequence number
and the previous entry's hash) is carried in an extension field named by a URI,
as in-toto allows; consumers that do not know it ignore it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlprov import __version__
from mlprov._internal.intoto import MLPROV_PREDICATE_PREFIX
from mlprov.errors import BundleError, SignatureError
from mlprov.trust import Role, Trust, TrustedKey

if TYPE_CHECKING:
    from mlprov.bundles import VerifiedStatement
    from mlprov.signing import BundleSigner
    from mlprov.statements import Statement

__all__ = [
    "CHANGE_FIELD",
    "CHECKPOINT_PREDICATE",
    "DEPLOYMENT_PREDICATE",
    "VERIFIER_ID",
    "VSA_PREDICATE",
    "SignedByRegistry",
    "build_checkpoint",
    "build_decision",
    "sign",
    "verify_signed",
]

VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"
VERIFIER_ID = "https://mlprov.dev/registry/v1"
CHANGE_FIELD = "https://mlprov.dev/registry/change/v1"
CHECKPOINT_PREDICATE = MLPROV_PREDICATE_PREFIX + "audit-checkpoint/v1"
DEPLOYMENT_PREDICATE = MLPROV_PREDICATE_PREFIX + "deployment/v1"
#: The bound on a registry-signed statement read back from the blob store.
MAX_STATEMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SignedByRegistry:
    """A statement whose signature verified with a signer holding the ``registry`` role.

    ``signer`` is the registry key, or (keyless registries) the Sigstore identity.
    """

    verified: VerifiedStatement

    @property
    def payload(self) -> bytes:
        """The exact signed bytes."""
        return self.verified.payload

    @property
    def signer(self) -> TrustedKey:
        """Who signed it (holding the ``registry`` role)."""
        return self.verified.signer

    @property
    def statement(self) -> Statement:
        """The statement as a pydantic model (built on first use)."""
        return self.verified.statement

    @property
    def predicate(self) -> dict[str, Any]:
        """The statement's predicate (read without pydantic)."""
        return self.verified.parsed.predicate

    def subject_sha256(self) -> set[str]:
        """The SHA-256 digests of the statement's subjects (read without pydantic)."""
        return self.verified.parsed.subject_sha256()


def build_decision(*, subject_name: str, root_digest: str, resource_uri: str,
                   policy_uri: str, policy_digest: str, inputs: dict[str, str],
                   passed: bool, time: str, change: dict[str, Any]) -> Statement:
    """Build a decision: a SLSA VSA v1 statement about one registry change.

    Args:
        subject_name: the subject's name (``models:/NAME/N`` or a deployment).
        root_digest: ``sha256:<hex>`` of the subject.
        resource_uri: what was verified, e.g. ``models:/NAME/3``.
        policy_uri: the policy's URI (a path inside the registry's policies).
        policy_digest: ``sha256:<hex>`` of the policy.
        inputs: every input attestation, URI -> ``sha256:<hex>``.
        passed: the verdict.
        time: when it was decided (RFC 3339).
        change: what changed, recorded under :data:`CHANGE_FIELD`.
    """
    predicate: dict[str, Any] = {
        "verifier": {"id": VERIFIER_ID, "version": {"mlprov": __version__}},
        "timeVerified": time,
        "resourceUri": resource_uri,
        "policy": {"uri": policy_uri, "digest": {"sha256": _hex(policy_digest)}},
        "inputAttestations": [{"uri": uri, "digest": {"sha256": _hex(digest)}}
                              for uri, digest in sorted(inputs.items())],
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": ["MLPROV_REGISTRY_POLICY_PASSED"] if passed else ["FAILED"],
        "slsaVersion": "1.1",
        CHANGE_FIELD: change,
    }
    from mlprov.statements import Statement  # writing only: a read needs no pydantic

    return Statement.model_validate({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject_name, "digest": {"sha256": _hex(root_digest)}}],
        "predicateType": VSA_PREDICATE,
        "predicate": predicate,
    })


def build_checkpoint(*, registry_id: str, seq: int, entry_hash: str, time: str) -> Statement:
    """A signed checkpoint: the audit log's entry ``seq`` has hash ``entry_hash``."""
    from mlprov.statements import Statement

    return Statement.model_validate({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"mlprov-audit-log:{registry_id}",
                     "digest": {"sha256": _hex(entry_hash)}}],
        "predicateType": CHECKPOINT_PREDICATE,
        "predicate": {"registry": registry_id, "seq": seq, "entryHash": entry_hash,
                      "time": time},
    })


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def sign(statement: Statement, signer: BundleSigner) -> bytes:
    """Sign a statement into a Sigstore bundle (key or keyless, as all evidence)."""
    from mlprov.bundles import sign_statement

    return sign_statement(statement, signer)


def verify_signed(data: bytes, trust: Trust, *, what: str,
                  predicate_type: str) -> SignedByRegistry:
    """Verify a registry-signed bundle held in memory (a blob).

    Through the central bundle verification (:func:`mlprov.bundles.verify_statement_bytes`):
    a key bundle by a trusted key, or a keyless (certificate) bundle by a trusted
    Sigstore identity, holding the ``registry`` role; then the payload type and
    the predicate type.

    Raises:
        SignatureError: no trusted signer with the registry role signed it.
        BundleError: malformed, or not the expected predicate type.
    """
    from mlprov.bundles import verify_statement_bytes

    if len(data) > MAX_STATEMENT_BYTES:
        raise BundleError(f"{what} is too large ({len(data)} bytes)")
    try:
        verified = verify_statement_bytes(data, trust, Role.REGISTRY, what=what,
                                          predicate_type=predicate_type)
    except SignatureError as exc:
        if "hint" in vars(exc):  # a specific hint (keyless checks, a missing role): keep it
            raise
        raise SignatureError(str(exc), hint=_TAMPERED_HINT) from exc
    return SignedByRegistry(verified)


_TAMPERED_HINT = ("the registry's records were changed or signed by another registry; run "
                  "`mlprov audit verify`")


def change_of(decision: SignedByRegistry) -> dict[str, Any]:
    """The change a verified decision records (empty if absent)."""
    change = decision.predicate.get(CHANGE_FIELD)
    return change if isinstance(change, dict) else {}


def input_digests(decision: SignedByRegistry) -> dict[str, str]:
    """A verified decision's input attestations, URI -> ``sha256:<hex>``."""
    out: dict[str, str] = {}
    for item in decision.predicate.get("inputAttestations") or []:
        if isinstance(item, dict) and isinstance(item.get("digest"), dict):
            sha = item["digest"].get("sha256")
            if isinstance(item.get("uri"), str) and isinstance(sha, str):
                out[item["uri"]] = f"sha256:{sha}"
    return out


def summary(decision: SignedByRegistry) -> dict[str, Any]:
    """A short JSON view of a verified decision for command output."""
    predicate = decision.predicate
    out: dict[str, Any] = json.loads(json.dumps({
        "resourceUri": predicate.get("resourceUri"),
        "verificationResult": predicate.get("verificationResult"),
        "policy": predicate.get("policy"),
        "timeVerified": predicate.get("timeVerified"),
        "signer": decision.signer.name,
        "change": change_of(decision),
    }))
    return out
