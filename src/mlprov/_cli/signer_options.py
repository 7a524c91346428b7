"""The signer options of every command that signs: ``--key`` or ``--sigstore``.

Usage in a command module::

    @click.command()
    @signer_options
    def review(..., signer: SignerOptions) -> None:
        bundle_signer = signer.build()   # a mlprov.signing.BundleSigner
        data = sign_statement(statement, bundle_signer)

``build()`` loads the key, or checks the identity token and the Sigstore
instance, so call it when the command is ready to sign (it imports sigstore
only for keyless signing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from mlprov._signing.constants import IDENTITY_TOKEN_ENV

if TYPE_CHECKING:
    from mlprov.signing import BundleSigner

F = Callable[..., Any]


@dataclass(frozen=True)
class SignerOptions:
    """What the user asked to sign with; :meth:`build` makes the signer."""

    key: Path | None = None
    sigstore: bool = False
    identity_token: str | None = None
    staging: bool = False
    trust_config: Path | None = None

    def build(self) -> BundleSigner:
        """Load the key, or open a Sigstore keyless session (token checked now)."""
        from mlprov.signing import make_signer

        return make_signer(key=self.key, sigstore=self.sigstore,
                           identity_token=self.identity_token, staging=self.staging,
                           trust_config=self.trust_config)


def signer_options(fn: F) -> F:
    """Add --key/--sigstore/--identity-token/--staging/--trust-config to a command.

    The command receives them as one ``signer: SignerOptions`` argument,
    already checked: exactly one of --key and --sigstore; the keyless options
    only with --sigstore (an identity token in the environment is ignored
    when a key signs).
    """
    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        key: Path | None = kwargs.pop("key")
        sigstore: bool = kwargs.pop("sigstore")
        identity_token: str | None = kwargs.pop("identity_token")
        staging: bool = kwargs.pop("staging")
        trust_config: Path | None = kwargs.pop("trust_config")
        token_flag = (click.get_current_context().get_parameter_source("identity_token")
                      is ParameterSource.COMMANDLINE)
        if key is not None and sigstore:
            raise click.UsageError("give --key PRIVATE_KEY or --sigstore, not both")
        if key is None and not sigstore:
            raise click.UsageError("give --key PRIVATE_KEY, or --sigstore to sign keyless")
        if not sigstore and (staging or trust_config is not None or token_flag):
            raise click.UsageError("--identity-token, --staging and --trust-config need "
                                   "--sigstore")
        if staging and trust_config is not None:
            raise click.UsageError("give --staging or --trust-config, not both")
        kwargs["signer"] = SignerOptions(
            key=key, sigstore=sigstore, identity_token=identity_token if sigstore else None,
            staging=staging, trust_config=trust_config)
        return fn(*args, **kwargs)

    options = _option_decorators()
    wrapped: F = command
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def _option_decorators() -> list[Callable[[F], F]]:
    """The click options of :func:`signer_options`, --key first."""
    return [
        click.option("--key", metavar="PRIVATE_KEY",
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Sign with this PEM private key (see `mlprov keygen`)."),
        click.option("--sigstore", is_flag=True,
                     help="Sign keyless with Sigstore: the CI job's OIDC identity (or "
                          "--identity-token) gets a short-lived Fulcio certificate and "
                          "every signature is logged in Rekor."),
        click.option("--identity-token", metavar="TOKEN", envvar=IDENTITY_TOKEN_ENV,
                     show_envvar=True,
                     help="OIDC identity token for --sigstore (default: the CI job's "
                          "ambient credential, e.g. GitHub Actions with id-token: write)."),
        click.option("--staging", is_flag=True,
                     help="With --sigstore: use the Sigstore staging instance."),
        click.option("--trust-config", metavar="FILE",
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="With --sigstore: a ClientTrustConfig JSON naming a private "
                          "Sigstore instance (Fulcio, Rekor, trusted root)."),
    ]


def sigstore_options(fn: F) -> F:
    """Add --sigstore/--identity-token/--staging/--trust-config only, unchecked.

    For a command whose key is optional (``registry init``): it receives them
    as keyword arguments and checks them itself.
    """
    for option in reversed(_option_decorators()[1:]):
        fn = option(fn)
    return fn
