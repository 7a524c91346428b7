"""The OpenSSF model-signing (OMS) signature: ``model.sig``.

Predicate ``https://model_signing/signature/v1.0`` as written by the
``model-signing`` package (https://github.com/sigstore/model-transparency):
one subject (the model's name and root digest) and a predicate listing every
file's digest plus how the tree was serialised. ``model_signing verify`` accepts
what mlprov writes, and mlprov verifies what ``model_signing sign`` writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlprov._internal.documents import OMS_PREDICATE_TYPE, manifest_document
from mlprov.errors import BundleError, UnsafePathError
from mlprov.hashing import (  # the unchecked forms: a manifest has 100k names, checked here
    Manifest,
    _root_of,
    _safe_relative_path,
    check_relative_path,
)

if TYPE_CHECKING:
    from mlprov._internal.intoto import StatementLike
    from mlprov.statements import Statement

__all__ = ["OMS_PREDICATE_TYPE", "SignedManifest", "manifest_statement", "read_signed_manifest"]

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class SignedManifest:
    """The file digests an OMS statement vouches for, checked for safety."""

    name: str
    root: str
    files: dict[str, str]
    ignore_paths: tuple[str, ...]
    allow_symlinks: bool


def manifest_statement(manifest: Manifest) -> Statement:
    """Build the OMS statement for ``manifest``.

    The model of :func:`mlprov._internal.documents.manifest_document` (the predicate
    is built there, without pydantic, for ``mlprov attest``).
    """
    from mlprov.statements import Statement

    return Statement.model_validate(manifest_document(manifest))


def read_signed_manifest(statement: StatementLike, *, what: str) -> SignedManifest:
    """Extract and check the manifest of a verified OMS statement.

    Rejects unsafe names (``..``, absolute paths), duplicate names, non-SHA-256
    digests, and a subject digest that does not match the listed resources.

    Raises:
        BundleError: a malformed predicate, or an inconsistent root digest.
        UnsafePathError: a resource or ignore path escapes the model root.
    """
    predicate = statement.predicate
    serialization = predicate.get("serialization")
    resources = predicate.get("resources")
    if not isinstance(serialization, dict) or not isinstance(resources, list):
        raise BundleError(f"{what}: OMS predicate lacks serialization or resources")
    if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
        raise BundleError(f"{what}: unsupported OMS serialization {serialization.get('method')!r}"
                          f"/{serialization.get('hash_type')!r} (mlprov reads files/sha256)")
    if len(statement.subject) != 1:
        raise BundleError(f"{what}: OMS statement must have exactly one subject")
    files: dict[str, str] = {}
    ordered: list[str] = []
    for resource in resources:
        if not isinstance(resource, dict):
            raise BundleError(f"{what}: malformed resource entry")
        name, algorithm, digest = (resource.get("name"), resource.get("algorithm"),
                                   resource.get("digest"))
        if not isinstance(name, str) or algorithm != "sha256" or not isinstance(digest, str) \
                or not _HEX64.match(digest):
            raise BundleError(f"{what}: malformed resource {name!r}")
        _safe_relative_path(name)
        if name in files:
            raise BundleError(f"{what}: file {name!r} listed twice")
        files[name] = digest
        ordered.append(digest)
    if not files:
        raise BundleError(f"{what}: OMS manifest lists no files")
    root = _root_of(ordered)
    subject = statement.subject[0]
    if (subject.digest or {}).get("sha256") != root:
        raise BundleError(f"{what}: subject digest does not match the listed files")
    ignore_paths = serialization.get("ignore_paths", [])
    if not isinstance(ignore_paths, list) or not all(isinstance(p, str) for p in ignore_paths):
        raise BundleError(f"{what}: malformed ignore_paths")
    for p in ignore_paths:
        try:
            check_relative_path(p.rstrip("/"))
        except UnsafePathError as exc:
            raise UnsafePathError(f"{what}: unsafe ignore path {p!r}") from exc
    return SignedManifest(name=subject.name or "", root=root, files=files,
                          ignore_paths=tuple(p.rstrip("/") for p in ignore_paths),
                          allow_symlinks=serialization.get("allow_symlinks") is True)
