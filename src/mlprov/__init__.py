"""mlprov: prove where a model came from.

The public API, imported lazily so ``mlprov --help`` stays fast::

    import mlprov
    result = mlprov.attest("model/", name="credit-risk", key="ci.key", out="evidence/",
                           commit="0123...")
    verdict = mlprov.verify("model/", evidence="evidence/", key="ci.key.pub")
    assert verdict.verified
    model = mlprov.load("models:/credit-risk@production")  # verified; path-like
    model.version, model.digest                             # which version it is
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AttestResult", "Inspection", "Lineage", "LoadedModel", "Verdict", "__version__",
           "attest", "hash_path", "inspect_evidence", "load", "verify", "verify_lineage"]

if TYPE_CHECKING:
    from mlprov.attestation import AttestResult, attest
    from mlprov.hashing import hash_path
    from mlprov.inspection import Inspection, inspect_evidence
    from mlprov.lineage import Lineage, verify_lineage
    from mlprov.registry import LoadedModel
    from mlprov.server import load
    from mlprov.verification import Verdict, verify

_LAZY = {
    "attest": "mlprov.attestation",
    "AttestResult": "mlprov.attestation",
    "verify": "mlprov.verification",
    "Verdict": "mlprov.verification",
    "hash_path": "mlprov.hashing",
    "inspect_evidence": "mlprov.inspection",
    "Inspection": "mlprov.inspection",
    "verify_lineage": "mlprov.lineage",
    "Lineage": "mlprov.lineage",
    # Local registries and registry servers alike (mlprov.server.load dispatches).
    "load": "mlprov.server",
    "LoadedModel": "mlprov.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlprov' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
