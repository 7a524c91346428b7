"""Evidence read straight from the blob store: the seam for re-verification without copies.

A :class:`BlobEvidenceSource` is an :class:`~mlprov.evidence.EvidenceSource`
over a stored evidence map (file name -> blob digest): ``verify(model,
evidence=BlobEvidenceSource(blobs, files))`` reads each evidence file from the
store once, digest-checked and bounded, and never writes it to a temporary
directory. (Re-verification in ``_facts.py`` still materialises evidence; it
moves to this source with the registry's redesign.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlprov.errors import MlprovError
from mlprov.evidence import EvidenceNotFoundError, EvidenceSource, check_evidence_name
from mlprov.registry.interface import BlobNotFoundError

if TYPE_CHECKING:
    from mlprov.registry.interface import BlobStore

__all__ = ["BlobEvidenceSource"]


class BlobEvidenceSource(EvidenceSource):
    """Evidence files as blobs of a :class:`~mlprov.registry.interface.BlobStore`.

    Raises:
        BundleError: the map names an unsafe file name (at construction).
    """

    def __init__(self, blobs: BlobStore, files: Mapping[str, str], *,
                 label: str = "stored evidence") -> None:
        self._files = {check_evidence_name(name): digest for name, digest in files.items()}
        self._blobs = blobs
        self.label = label

    def names(self) -> frozenset[str]:
        """The names of the evidence map."""
        return frozenset(self._files)

    def exists(self, name: str) -> bool:
        """Whether the evidence map names ``name`` (the blob itself is checked when read)."""
        check_evidence_name(name)
        return name in self._files

    def _read(self, name: str, *, what: str, limit: int, error: type[MlprovError]) -> bytes:
        digest = self._files.get(name)
        if digest is None:
            raise EvidenceNotFoundError(f"{self.describe(name)} not found")
        size = self._blobs.stat(digest)
        if size is None:
            raise EvidenceNotFoundError(f"{self.describe(name)}: blob {digest} is not stored")
        if size > limit:
            raise error(f"{what} {self.describe(name)} is too large ({size} bytes, the limit "
                        f"is {limit})")
        try:
            # The store checks the digest and bounds the read again (BlobCorruptError,
            # a VerificationError); store outages stay StoreErrors.
            return self._blobs.get_bytes(digest, max_size=limit)
        except BlobNotFoundError as exc:
            raise EvidenceNotFoundError(f"{self.describe(name)}: {exc}") from exc

    def describe(self, name: str | None = None) -> str:
        """``label`` or ``label/name``."""
        return f"{self.label}/{name}" if name is not None else self.label
