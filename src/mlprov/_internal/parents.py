"""Parent models as a (verified) provenance records them, read defensively.

Lineage (``docs/lineage.md``) writes each parent into
``buildDefinition.resolvedDependencies`` as a descriptor whose ``annotations``
carry a ``role`` (``base``, ``fine-tune-of``...). The SBOM, the model card and
``mlprov inspect`` only *show* parents; they read any such entry leniently and
skip what they do not understand. Verifying the lineage is
:mod:`mlprov.lineage`'s job, not this module's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ParentRef", "parents_from_predicate"]

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class ParentRef:
    """One parent: its role, name, root digest (hex) and identity, as recorded."""

    role: str
    name: str
    sha256: str | None = None
    identity: str | None = None
    uri: str | None = None
    external: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form (camelCase, ``sha256:`` prefixed digest)."""
        return {"role": self.role, "name": self.name,
                "rootDigest": f"sha256:{self.sha256}" if self.sha256 else None,
                "identity": self.identity, "uri": self.uri, "external": self.external}


def parents_from_predicate(predicate: dict[str, Any]) -> tuple[ParentRef, ...]:
    """Return the parents recorded in a SLSA provenance predicate (maybe none)."""
    definition = predicate.get("buildDefinition")
    deps = definition.get("resolvedDependencies") if isinstance(definition, dict) else None
    if not isinstance(deps, list):
        return ()
    parents = []
    for dep in deps:
        if not isinstance(dep, dict):
            continue
        annotations = dep.get("annotations")
        if not isinstance(annotations, dict) or not isinstance(annotations.get("role"), str):
            continue
        digest = dep.get("digest")
        sha256 = digest.get("sha256") if isinstance(digest, dict) else None
        name = annotations.get("name")
        if not isinstance(name, str) or not name:
            name = dep.get("name") if isinstance(dep.get("name"), str) else "(unnamed)"
        identity = annotations.get("identity")
        uri = dep.get("uri")
        parents.append(ParentRef(
            role=annotations["role"], name=str(name),
            sha256=sha256 if isinstance(sha256, str) and _HEX64.match(sha256) else None,
            identity=identity if isinstance(identity, str) else None,
            uri=uri if isinstance(uri, str) else None,
            external=annotations.get("external") is True))
    return tuple(parents)
