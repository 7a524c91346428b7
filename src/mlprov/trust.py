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

The data types of a trust (:class:`Role`, :class:`TrustedKey`, :class:`IdentityRule`,
:class:`SigstoreIdentity`) live in the signing backends' base,
``mlprov._signing.interface``, so the backends need not import this module;
they are re-exported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlprov._internal.arguments import BOOL, PATH, checked, optional
from mlprov._internal.display import validator_words
from mlprov._internal.readers import MAX_TRUST_BYTES, load_yaml, read_text
from mlprov._signing.interface import GITHUB_ACTIONS_ISSUER as GITHUB_ACTIONS_ISSUER
from mlprov._signing.interface import (
    IdentityRule,
    Role,
    SigstoreIdentity,
    TrustedKey,
)
from mlprov._signing.trust_file import TrustFileFields, read_trust_file
from mlprov.errors import TrustError
from mlprov.signing import load_public_key

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


def _trust_file_model(document: Any, path: Path) -> TrustFileFields:
    """What the schema (pydantic) makes of a trust file the plain reader left to it."""
    from pydantic import ValidationError

    from mlprov._signing.schemas import TrustFile

    try:
        return TrustFileFields.from_model(TrustFile.model_validate(document))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise TrustError(f"trust file {path}: {where}: {validator_words(str(first['msg']))}"
                         ) from exc


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
    parsed = read_trust_file(document) or _trust_file_model(document, path)
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
        # (Imported here: only a trust file naming a root needs the keyless verifier.)
        from mlprov._signing.verify_keyless import trusted_root_verifier

        trusted_root_verifier(root)
    return Trust(keys=tuple(keys), source=str(path), sigstore=rules, trusted_root=root,
                 offline=offline)
