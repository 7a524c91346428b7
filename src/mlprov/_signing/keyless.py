"""Sigstore keyless signing, through sigstore-python's ``sigstore.sign``.

An OIDC identity token (the CI job's ambient credential, or one given
explicitly) is exchanged at Fulcio for a short-lived certificate binding that
identity to an ephemeral key; each statement is DSSE-signed with the key and
logged in Rekor; sigstore-python returns a bundle v0.3 holding the certificate
and the transparency-log entry (https://docs.sigstore.dev/about/overview/).

A :class:`SigstoreSigner` is one signing session: the token is checked when it
is made (before any hashing), the certificate is requested at the first
signature and reused for every later one, so one run's evidence carries one
certificate. A new session starts only if the certificate expired meanwhile.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from mlprov._internal.readers import MAX_TRUST_BYTES, read_text
from mlprov._signing.common import one_line, quiet_sigstore
from mlprov._signing.interface import IDENTITY_TOKEN_ENV, BundleSigner
from mlprov.errors import InputError, SigningError

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import Signer as SigstoreSessionSigner

    from mlprov.statements import Statement

__all__ = ["SigstoreSigner"]

_TOKEN_HINT = ("in GitHub Actions grant the job 'permissions: id-token: write'; elsewhere pass "
               f"--identity-token TOKEN or set {IDENTITY_TOKEN_ENV}")
# Start a new session this long before the certificate expires, so no signature
# is attempted with a certificate that lapses mid-request.
_EXPIRY_MARGIN = dt.timedelta(seconds=30)


def _load_trust_config(staging: bool, trust_config: Path | None) -> tuple[ClientTrustConfig, str]:
    """The instance to sign with and a label for messages."""
    from sigstore.models import ClientTrustConfig

    if trust_config is not None:
        try:
            text = read_text(trust_config, what="Sigstore trust config",
                             limit=MAX_TRUST_BYTES)
        except OSError as exc:
            raise InputError(f"cannot read Sigstore trust config {trust_config}: "
                             f"{getattr(exc, 'strerror', None) or one_line(exc)}") from exc
        try:
            config = ClientTrustConfig.from_json(text)
            # Both halves are parsed lazily by sigstore; check them now, not mid-signing.
            config.trusted_root  # noqa: B018
            config.signing_config  # noqa: B018
        except Exception as exc:  # sigstore raises its Error, pydantic and ValueError alike
            raise InputError(f"{trust_config} is not a usable Sigstore ClientTrustConfig: "
                             f"{one_line(exc)}",
                             hint="give the JSON of 'application/vnd.dev.sigstore."
                                  "clienttrustconfig.v0.1+json' for your instance") from exc
        return config, str(trust_config)
    label = "the Sigstore staging instance" if staging else "the Sigstore public-good instance"
    try:
        with quiet_sigstore():
            config = (ClientTrustConfig.staging() if staging
                      else ClientTrustConfig.production())
    except Exception as exc:  # TUF refresh: network and metadata errors
        raise SigningError(f"cannot fetch the trust configuration of {label} (TUF): "
                           f"{one_line(exc)}",
                           hint="check the network, or pass --trust-config FILE") from exc
    return config, label


def _fresh_token(explicit: str | None) -> IdentityToken:
    """The explicit token, else the CI job's ambient credential, checked by sigstore-python."""
    from sigstore.oidc import IdentityError, IdentityToken, detect_credential

    if explicit is not None:
        raw, source = explicit, "--identity-token"
    else:
        try:
            detected = detect_credential()
        except IdentityError as exc:
            raise SigningError(f"cannot get the CI job's identity token: {one_line(exc)}",
                               hint=_TOKEN_HINT) from exc
        if detected is None:
            raise SigningError("no identity token: no CI credential was detected and "
                               "none was given", hint=_TOKEN_HINT)
        raw, source = detected, "the CI job's ambient credential"
    try:
        return IdentityToken(raw)
    except IdentityError as exc:
        raise SigningError(f"the identity token from {source} is unusable: {one_line(exc)}",
                           hint="get a fresh token (audience 'sigstore'); tokens are "
                                "short-lived") from exc


class SigstoreSigner(BundleSigner):
    """Signs statements keyless with Sigstore; one instance is one signing session."""

    def __init__(self, config: ClientTrustConfig, instance: str,
                 identity_token: str | None = None) -> None:
        """Prefer :meth:`create`, which also checks the identity token up front."""
        self._config = config
        self._instance = instance
        self._explicit_token = identity_token.strip() if identity_token else None
        self._token: IdentityToken | None = None
        self._session: SigstoreSessionSigner | None = None
        self._expires: dt.datetime | None = None

    @classmethod
    def create(cls, *, identity_token: str | None = None, staging: bool = False,
               trust_config: Path | str | None = None) -> SigstoreSigner:
        """Pick the instance and get the identity token now, so problems surface early.

        Args:
            identity_token: an OIDC token; without one the CI job's ambient
                credential is used (``sigstore.oidc.detect_credential``).
            staging: use the Sigstore staging instance.
            trust_config: a ClientTrustConfig JSON file for a private instance.

        Raises:
            InputError: both ``staging`` and ``trust_config``, or an unusable file.
            SigningError: no identity token, or the instance's configuration
                cannot be fetched.
        """
        if staging and trust_config is not None:
            raise InputError("give --staging or --trust-config, not both")
        explicit = identity_token.strip() if identity_token else None
        token = _fresh_token(explicit)  # before the instance's (networked) configuration
        config, instance = _load_trust_config(
            staging, Path(trust_config) if trust_config is not None else None)
        signer = cls(config, instance, explicit)
        signer._token = token
        return signer

    @property
    def description(self) -> str:
        """The identity the certificate will name, as the token states it."""
        if self._token is None:
            return f"Sigstore keyless ({self._instance})"
        return f"Sigstore keyless: {self._token.identity} ({self._token.issuer})"

    @property
    def sigstore_identity(self) -> tuple[str, str] | None:
        """The token's identity and issuer (checked when the signer was made)."""
        token = self._token
        return (token.identity, token.issuer) if token is not None else None

    def certificate_subjects(self) -> tuple[str, ...]:
        """The SANs Fulcio may issue for the current token, to match against trust rules.

        The token's identity, plus for GitHub Actions the workflow-ref URL Fulcio
        puts in the certificate (``https://github.com/`` + ``job_workflow_ref``).
        """
        token = self._identity_token()
        subjects = [token.identity]
        claims = getattr(token, "_unverified_claims", {})
        workflow_ref = claims.get("job_workflow_ref") if isinstance(claims, dict) else None
        if isinstance(workflow_ref, str) and workflow_ref:
            subjects.append(f"https://github.com/{workflow_ref}")
        return tuple(subjects)

    def _identity_token(self) -> IdentityToken:
        """The session's token while it is valid, else a fresh one."""
        if self._token is None or not self._token.in_validity_period():
            self._token = _fresh_token(self._explicit_token)
        return self._token

    def _signing_session(self) -> SigstoreSessionSigner:
        """The open session, or a new one (a new Fulcio certificate) when it expired."""
        from sigstore.sign import Signer as SigstoreSessionSigner
        from sigstore.sign import SigningContext

        now = dt.datetime.now(dt.UTC)
        if self._session is not None and (self._expires is None
                                          or now < self._expires - _EXPIRY_MARGIN):
            return self._session
        token = self._identity_token()
        try:
            with quiet_sigstore():
                context = SigningContext.from_trust_config(self._config)
                # cache=True: one ephemeral key and one certificate for the whole session.
                self._session = SigstoreSessionSigner(token, context, cache=True)
        except Exception as exc:  # Fulcio: HTTP, protocol and SCT errors alike
            raise SigningError(f"Fulcio of {self._instance} gave no signing certificate: "
                               f"{_describe(exc)}") from exc
        self._expires = None
        return self._session

    def sign_statement(self, statement: Statement) -> bytes:
        """DSSE-sign the canonical statement; log it in Rekor; return the bundle JSON."""
        return self._sign_canonical(statement.canonical_bytes())

    def _sign_canonical(self, payload: bytes) -> bytes:
        """DSSE-sign canonical statement bytes; log them in Rekor; return the bundle JSON."""
        from sigstore.errors import Error as SigstoreError

        from sigstore import dsse

        try:
            to_sign = dsse.Statement(payload)
        except SigstoreError as exc:
            raise SigningError(f"sigstore-python refuses the statement: {one_line(exc)}"
                               ) from exc
        session = self._signing_session()
        try:
            with quiet_sigstore():
                bundle = session.sign_dsse(to_sign)
        except Exception as exc:  # Rekor: HTTP and protocol errors alike
            raise SigningError(f"Sigstore signing with {self._instance} failed: "
                               f"{_describe(exc)}") from exc
        self._expires = bundle.signing_certificate.not_valid_after_utc
        return (bundle.to_json() + "\n").encode("utf-8")


def _describe(exc: BaseException) -> str:
    """One line for a signing failure: the server's own message, or the host it missed."""
    import requests

    if isinstance(exc, requests.ConnectionError):
        url = exc.request.url if exc.request is not None else None
        text = url.decode() if isinstance(url, bytes) else url
        return f"cannot connect to {text or 'the server'}"
    if isinstance(exc, requests.Timeout):
        return "the request timed out"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        response = exc.response
        try:
            message = response.json().get("message")
        except ValueError:
            message = None
        return f"HTTP {response.status_code}: {message or response.reason}"
    if not str(exc).strip() and exc.__cause__ is not None:
        # sigstore's Fulcio client raises an empty error from the HTTP error it caught.
        return _describe(exc.__cause__)
    return one_line(exc)
