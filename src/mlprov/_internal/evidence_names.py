"""The evidence directory's fixed names: its files and the index's schema.

A leaf (no imports from mlprov): :mod:`mlprov.evidence` re-exports these, and the
pydantic-free writers and the index model take them from here.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CARD_FILE", "EVAL_FILE", "EVIDENCE_SCHEMA", "INDEX_FILE", "OMS_FILE",
           "PROVENANCE_FILE", "SBOM_BUNDLE_FILE", "SBOM_FILE", "STANDARD_FILES"]

EVIDENCE_SCHEMA: Final = "https://mlprov.dev/schemas/evidence/v1"
INDEX_FILE: Final = "evidence.json"
OMS_FILE: Final = "model.sig"
PROVENANCE_FILE: Final = "provenance.sigstore.json"
#: The CycloneDX ML-BOM, exactly the predicate signed in ``SBOM_BUNDLE_FILE``.
SBOM_FILE: Final = "sbom.cdx.json"
SBOM_BUNDLE_FILE: Final = "sbom.sigstore.json"
#: The eval statement (mlprov eval predicate), written when metrics are given.
EVAL_FILE: Final = "eval.sigstore.json"
#: The model card; its SHA-256 is recorded in the signed SBOM.
CARD_FILE: Final = "MODEL_CARD.md"
#: Files every evidence directory holds (the eval statement is required when the
#: signed SBOM records one).
STANDARD_FILES: Final = (OMS_FILE, PROVENANCE_FILE, SBOM_FILE, SBOM_BUNDLE_FILE, CARD_FILE)
