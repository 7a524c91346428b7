"""Names the signing side shares and the CLI needs at start-up (no heavy imports here)."""

from __future__ import annotations

__all__ = ["GITHUB_ACTIONS_ISSUER", "IDENTITY_TOKEN_ENV"]

#: The environment variable holding an OIDC identity token for keyless signing.
IDENTITY_TOKEN_ENV = "MLPROV_IDENTITY_TOKEN"  # noqa: S105 - a variable name, not a secret
#: GitHub Actions' OIDC issuer.
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
