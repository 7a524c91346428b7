"""Names the signing side shares and the CLI needs at start-up (no heavy imports here).

:class:`Role` lives here (re-exported by ``mlprov._signing.interface`` and
``mlprov.trust``) so the trust-file schemas (:mod:`.schemas`) need not import the base.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["GITHUB_ACTIONS_ISSUER", "IDENTITY_TOKEN_ENV", "Role"]

#: The environment variable holding an OIDC identity token for keyless signing.
IDENTITY_TOKEN_ENV = "MLPROV_IDENTITY_TOKEN"  # noqa: S105 - a variable name, not a secret
#: GitHub Actions' OIDC issuer.
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"


class Role(StrEnum):
    """What a signer is trusted to vouch for."""

    BUILDER = "builder"      # provenance, SBOM, OMS signature
    EVALUATOR = "evaluator"  # eval results
    REVIEWER = "reviewer"    # human approvals
    REGISTRY = "registry"    # registry decisions, log checkpoints
