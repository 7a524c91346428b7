"""The trust file: who may sign what.

A trust file (YAML or JSON) names keys and the roles each holds::

    version: 1
    keys:
      - name: ci
        public_key: keys/ci.pub      # relative to the trust file
        roles: [builder]
      - name: alice
        public_key: keys/alice.pub
        roles: [reviewer]
    sigstore:                        # keyless signers, by OIDC identity
      - name: ci-train
        issuer: https://token.actions.githubusercontent.com
        subject: https://github.com/org/repo/.github/workflows/train.yml@refs/heads/main
        # or subject_regex: a Python regex that must match the whole subject
        roles: [builder]
    trusted_root: sigstore-root.json # optional; default: the public-good instance

A signature counts only for the roles its signer holds: a key's roles, or the
roles of the ``sigstore`` rule a keyless signer's certificate matched. ``keyid``
values and bundle hints are used only to find a key faster, never to decide trust.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlprov._internal.arguments import BOOL, PATH, checked, optional
from mlprov._internal.readers import MAX_TRUST_BYTES, load_yaml, read_text
from mlprov.errors import TrustError
from mlprov.signing import PublicKey, load_public_key

__all__ = [
    "OFFLINE_ENV",
    "IdentityRule",
    "Role",
    "SigstoreIdentity",
    "Trust",
    "TrustedKey",
    "load_trust",
]

#: Set to 1 to forbid network use while verifying (like ``--offline``).
OFFLINE_ENV = "MLPROV_OFFLINE"
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"


class Role(StrEnum):
    """What a signer is trusted to vouch for."""

    BUILDER = "builder"      # provenance, SBOM, OMS signature
    EVALUATOR = "evaluator"  # eval results
    REVIEWER = "reviewer"    # human approvals
    REGISTRY = "registry"    # registry decisions, log checkpoints


@dataclass(frozen=True)
class SigstoreIdentity:
    """Who signed a keyless bundle, read from its verified Fulcio certificate.

    ``subject`` is the certificate's SAN (an email, or a URI such as the GitHub
    workflow ``https://github.com/ORG/REPO/.github/workflows/F.yml@REF``) and
    ``issuer`` the OIDC issuer that vouched for it. ``extensions`` holds every
    Fulcio claim the certificate carries, by camelCase name
    (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md), e.g.
    ``githubWorkflowRepository`` or ``runInvocationUri``.
    """

    subject: str
    issuer: str
    extensions: tuple[tuple[str, str], ...] = ()
    log_index: int | None = None
    integrated_time: int | None = None

    @property
    def claims(self) -> dict[str, str]:
        """The Fulcio claims by name."""
        return dict(self.extensions)

    @property
    def github(self) -> dict[str, str] | None:
        """The GitHub Actions workflow claims (repository, ref, sha, workflow, trigger)."""
        claims = self.claims
        repository = claims.get("githubWorkflowRepository")
        source = claims.get("sourceRepositoryUri", "")
        if repository is None and source.startswith("https://github.com/"):
            repository = source.removeprefix("https://github.com/")
        values = {
            "repository": repository,
            "ref": claims.get("githubWorkflowRef") or claims.get("sourceRepositoryRef"),
            "sha": claims.get("githubWorkflowSha") or claims.get("sourceRepositoryDigest"),
            "workflow": claims.get("githubWorkflowName"),
            "trigger": claims.get("githubWorkflowTrigger") or claims.get("buildTrigger"),
            "runUri": claims.get("runInvocationUri"),
        }
        present = {k: v for k, v in values.items() if v is not None}
        if self.issuer != GITHUB_ACTIONS_ISSUER and not any(
                name.startswith("githubWorkflow") for name in claims):
            return None
        return present or None

    def to_json_dict(self) -> dict[str, Any]:
        """The identity as JSON (policy input, ``inspect``)."""
        document: dict[str, Any] = {"subject": self.subject, "issuer": self.issuer}
        if (github := self.github) is not None:
            document["github"] = github
        document["claims"] = self.claims
        if self.log_index is not None or self.integrated_time is not None:
            document["tlog"] = {"logIndex": self.log_index,
                                "integratedTime": self.integrated_time}
        return document


@dataclass(frozen=True)
class IdentityRule:
    """A trusted Sigstore identity: an OIDC issuer and a subject, exact or a pattern.

    ``subject_regex`` must match the whole subject (``re.fullmatch``), so an
    unanchored pattern cannot be satisfied by a longer look-alike.
    """

    issuer: str
    roles: frozenset[Role]
    subject: str | None = None
    subject_regex: str | None = None
    name: str | None = None

    def matches(self, subject: str, issuer: str) -> bool:
        """Whether a certificate naming ``subject`` from ``issuer`` satisfies this rule."""
        if issuer != self.issuer:
            return False
        if self.subject is not None:
            return subject == self.subject
        return self.subject_regex is not None and re.fullmatch(self.subject_regex,
                                                               subject) is not None

    @property
    def label(self) -> str:
        """The rule's name, else its subject or pattern."""
        return self.name or self.subject or f"/{self.subject_regex}/"

    def to_json_dict(self) -> dict[str, Any]:
        """The rule as JSON, e.g. for a registry's trust snapshot (see :meth:`from_json_dict`)."""
        document: dict[str, Any] = {"issuer": self.issuer,
                                    "roles": sorted(role.value for role in self.roles)}
        for key, value in (("name", self.name), ("subject", self.subject),
                           ("subjectRegex", self.subject_regex)):
            if value is not None:
                document[key] = value
        return document

    @classmethod
    def from_json_dict(cls, document: Any) -> IdentityRule:
        """Rebuild a rule from :meth:`to_json_dict`'s form.

        Raises:
            TrustError: not a well-formed rule.
        """
        try:
            entry = _SigstoreEntry(name=document.get("name"), issuer=document["issuer"],
                                   subject=document.get("subject"),
                                   subject_regex=document.get("subjectRegex"),
                                   roles=document["roles"])
        except (AttributeError, KeyError, TypeError, ValidationError) as exc:
            raise TrustError(f"malformed sigstore identity rule: {exc}") from exc
        return cls(issuer=entry.issuer, roles=frozenset(entry.roles), subject=entry.subject,
                   subject_regex=entry.subject_regex, name=entry.name)


@dataclass(frozen=True)
class TrustedKey:
    """A trusted signer: its name, its key and its roles.

    For a keyless (Sigstore) signer, ``key`` is the certificate's ephemeral
    key, ``identity`` what the certificate says about who signed, and
    ``roles`` those of the trust-file rule the identity matched; ``name`` is
    that rule's name, else the certificate's subject.
    """

    name: str
    key: PublicKey
    roles: frozenset[Role]
    identity: SigstoreIdentity | None = None

    def describe(self) -> str:
        """The name, plus the identity for a keyless signer (for messages)."""
        if self.identity is None:
            return self.name
        if self.name == self.identity.subject:
            return f"{self.name} (Sigstore, {self.identity.issuer})"
        return f"{self.name} (Sigstore {self.identity.subject}, {self.identity.issuer})"

    def to_json_dict(self) -> dict[str, Any]:
        """The signer as JSON: name, roles, key id and, when keyless, the identity."""
        document: dict[str, Any] = {
            "name": self.name, "roles": sorted(role.value for role in self.roles),
            "kind": "sigstore" if self.identity is not None else "key",
            "keyid": self.key.keyid}
        if self.identity is not None:
            document["sigstore"] = self.identity.to_json_dict()
        return document


@dataclass(frozen=True)
class Trust:
    """The set of trusted signers for one verification."""

    keys: tuple[TrustedKey, ...]
    source: str
    #: Keyless signers, by identity; empty when only keys are trusted.
    sigstore: tuple[IdentityRule, ...] = ()
    #: The Sigstore trusted root (TrustedRoot or ClientTrustConfig JSON) that
    #: keyless certificates must chain to: a file, or its bytes (a self-contained
    #: snapshot, e.g. a registry's); None means the public-good instance.
    trusted_root: Path | bytes | None = None
    #: Forbid network use; None leaves it to the ``MLPROV_OFFLINE`` variable.
    offline: bool | None = None

    @property
    def is_offline(self) -> bool:
        """Whether verification must not use the network."""
        if self.offline is not None:
            return self.offline
        return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")

    @classmethod
    @checked(path=PATH)
    def single_key(cls, path: Path) -> Trust:
        """Trust one public key for every role (``--key``), like ``cosign verify --key``.

        Example:
            trust = Trust.single_key(Path("ci.key.pub"))
        """
        path = Path(path)  # a str works too
        key = load_public_key(path)
        return cls(keys=(TrustedKey(name=path.name, key=key, roles=frozenset(Role)),),
                   source=str(path))

    def candidates(self, hint: str | None) -> list[TrustedKey]:
        """Return every key, those whose id matches ``hint`` first (a hint only orders)."""
        return sorted(self.keys, key=lambda k: k.key.keyid != hint)


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    public_key: str = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)


class _SigstoreEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1)
    issuer: str = Field(min_length=1)
    subject: str | None = Field(default=None, min_length=1)
    subject_regex: str | None = Field(default=None, min_length=1)
    roles: list[Role] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_subject(self) -> _SigstoreEntry:
        if (self.subject is None) == (self.subject_regex is None):
            raise ValueError("give exactly one of 'subject' or 'subject_regex'")
        if self.subject_regex is not None:
            try:
                re.compile(self.subject_regex)
            except re.error as exc:
                raise ValueError(f"subject_regex is not a valid regular expression: {exc}"
                                 ) from exc
        return self


class _TrustFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    keys: list[_KeyEntry] = Field(default_factory=list)
    sigstore: list[_SigstoreEntry] = Field(default_factory=list)
    trusted_root: str | None = Field(default=None, min_length=1)


@checked(path=PATH, offline=optional(BOOL))
def load_trust(path: Path, *, offline: bool | None = None) -> Trust:
    """Load and check a trust file; key and trusted-root paths are relative to the file.

    Example:
        trust = load_trust(Path("trust.yaml"))

    Args:
        path: the trust file.
        offline: forbid network use when verifying keyless bundles (None:
            the ``MLPROV_OFFLINE`` variable decides). Offline, the public-good
            instance is checked against the trusted root sigstore-python ships
            (or the one its TUF cache holds).

    Raises:
        TrustError: the file is unreadable, malformed, names a signer twice,
            trusts nobody, or names an unusable trusted root.
        KeyMaterialError: a named public key cannot be loaded.
    """
    path = Path(path)  # a str works too
    try:
        text = read_text(path, what="trust file", limit=MAX_TRUST_BYTES, error=TrustError)
    except OSError as exc:
        raise TrustError(f"cannot read trust file {path}: {exc.strerror}") from exc
    document = load_yaml(text, what=f"trust file {path}", error=TrustError)
    try:
        parsed = _TrustFile.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise TrustError(f"trust file {path}: {where}: {first['msg']}") from exc
    if not parsed.keys and not parsed.sigstore:
        raise TrustError(f"trust file {path} trusts no signer",
                         hint="add at least one entry under 'keys' or 'sigstore'")
    if parsed.trusted_root is not None and not parsed.sigstore:
        raise TrustError(f"trust file {path} names a trusted_root but no sigstore identity",
                         hint="list the keyless signers under 'sigstore', or drop trusted_root")
    seen: set[str] = set()
    names = [e.name for e in parsed.keys] + [e.name for e in parsed.sigstore if e.name]
    for name in names:
        if name in seen:
            raise TrustError(f"trust file {path} names signer {name!r} twice",
                             hint="give each key and sigstore entry a unique name")
        seen.add(name)
    keys = []
    for entry in parsed.keys:
        key = load_public_key(path.parent / entry.public_key)
        keys.append(TrustedKey(name=entry.name, key=key, roles=frozenset(entry.roles)))
    rules = tuple(IdentityRule(issuer=e.issuer, roles=frozenset(e.roles), subject=e.subject,
                               subject_regex=e.subject_regex, name=e.name)
                  for e in parsed.sigstore)
    root = path.parent / parsed.trusted_root if parsed.trusted_root is not None else None
    if root is not None:
        # Parse it now: an unusable root is a trust-file error, not a failed signature.
        from mlprov._signing.verify_keyless import trusted_root_verifier

        trusted_root_verifier(root)
    return Trust(keys=tuple(keys), source=str(path), sigstore=rules, trusted_root=root,
                 offline=offline)
