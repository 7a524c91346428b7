"""Which signed SBOMs passed the strict CycloneDX schema check, beside the digest cache.

``verify --cache DIR`` re-checks an unchanged model without reading its bytes again
(:mod:`mlprov._internal.digest_cache`); what was left of a re-verify was mostly importing
jsonschema to check the same signed SBOM against the same schema once more (about 40 ms
of 0.28 s, issue 16). A verdict is a pure function of the BOM and the validator, so it is
remembered by both: the key is the SHA-256 over

* the validator's identity: mlprov's version, the CycloneDX spec version, the Python
  minor version and the installed versions of jsonschema, referencing,
  jsonschema-specifications, cyclonedx-python-lib and idna (the one format-check backend
  a plain install has: :func:`mlprov.sbom._import_jsonschema_lean` hides the others),
  each read from its ``.dist-info`` directory without importing it;
* the BOM's RFC 8785 canonical JSON.

Only passes are remembered (a failure is reported every time). No key, and so a full
check, when a version cannot be read unambiguously (not exactly one ``.dist-info``) or
jsonschema is already imported in the process (a caller's own import may check more
formats than mlprov's lean one).

Trust: the same as the digest cache's (docs/digest-cache.md). Whoever can write the
cache directory can already make a changed model pass; the directory must be the
caller's own, mode 0700. The file is read with a size bound and parsed strictly; a file
that is not usable is ignored.

Format: ``DIR/schema-verdicts.json``, ``{"schema": SCHEMA, "valid": ["<hex>", ...]}``,
the most recent :data:`MAX_VERDICTS`, written atomically, mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mlprov import __version__
from mlprov._internal.digest_cache import private_directory, read_private, write_private
from mlprov.canonical import canonical_json
from mlprov.errors import InputError

__all__ = ["FILE_NAME", "MAX_VERDICTS", "SCHEMA", "SchemaVerdicts", "validator_identity"]

SCHEMA: Final = "https://mlprov.dev/schemas/schema-verdicts/v1"
FILE_NAME: Final = "schema-verdicts.json"
MAX_VERDICTS: Final = 4096
_MAX_BYTES: Final = MAX_VERDICTS * 80 + 4096
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
#: (importable module, distribution name as its ``.dist-info`` directory spells it,
#: whether the validator works without it).
_VALIDATOR_PARTS: Final = (
    ("jsonschema", "jsonschema", False),
    ("referencing", "referencing", False),
    ("jsonschema_specifications", "jsonschema_specifications", False),
    ("cyclonedx", "cyclonedx_python_lib", False),
    ("idna", "idna", True),
)


def _installed_version(module: str, dist: str) -> str | None:
    """The version of ``dist`` installed beside ``module``; "absent"; None when unclear."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return "absent"
    locations = list(spec.submodule_search_locations or [])
    if len(locations) == 1:
        where = Path(locations[0]).parent
    elif not locations and spec.origin:
        where = Path(spec.origin).parent
    else:
        return None  # a namespace package spread over several directories
    prefix, suffix = f"{dist}-", ".dist-info"
    try:
        names = [n for n in os.listdir(where) if n.startswith(prefix) and n.endswith(suffix)]
    except OSError:
        return None
    versions = [n[len(prefix):-len(suffix)] for n in names]
    if len(versions) != 1 or "-" in versions[0] or not versions[0]:
        return None
    return versions[0]


def validator_identity(spec_version: str) -> str | None:
    """What a schema verdict depends on besides the BOM, or None (then: always check)."""
    if "jsonschema" in sys.modules:
        return None
    parts = [f"mlprov={__version__}", f"cyclonedx-spec={spec_version}",
             f"python={sys.version_info[0]}.{sys.version_info[1]}"]
    for module, dist, optional in _VALIDATOR_PARTS:
        version = _installed_version(module, dist)
        if version is None or (version == "absent" and not optional):
            return None
        parts.append(f"{dist}={version}")
    return "\n".join(parts)


@dataclass
class SchemaVerdicts:
    """The remembered passes, loaded from and saved to ``path``."""

    path: Path
    valid: dict[str, None] = field(default_factory=dict)  # ordered: oldest first
    changed: bool = False

    @classmethod
    def open(cls, directory: Path | str) -> SchemaVerdicts:
        """Load the verdicts kept in the cache ``directory`` (created 0700 if missing).

        Raises:
            InputError: the directory is not a private directory of the current user.
        """
        verdicts = cls(private_directory(directory) / FILE_NAME)
        verdicts.valid = dict.fromkeys(_load(verdicts.path))
        return verdicts

    @staticmethod
    def key(document: dict[str, Any], spec_version: str) -> str | None:
        """The key of ``document``'s verdict under the installed validator, or None."""
        identity = validator_identity(spec_version)
        if identity is None:
            return None
        try:
            body = canonical_json(document)
        except InputError:
            return None
        return hashlib.sha256(identity.encode() + b"\0" + body).hexdigest()

    def passed(self, key: str) -> bool:
        """Whether the BOM of ``key`` passed the check before."""
        return key in self.valid

    def add(self, key: str) -> None:
        """Remember that the BOM of ``key`` passed (saved by :meth:`save`)."""
        self.valid.pop(key, None)
        self.valid[key] = None
        self.changed = True

    def save(self) -> None:
        """Write the most recent :data:`MAX_VERDICTS` passes, atomically."""
        if not self.changed:
            return
        recent = list(self.valid)[-MAX_VERDICTS:]
        write_private(self.path, {"schema": SCHEMA, "valid": recent})
        self.changed = False


def _load(path: Path) -> list[str]:
    data = read_private(path, _MAX_BYTES)
    if data is None:
        return []
    try:
        document = json.loads(data)
    except ValueError:
        return []
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        return []
    valid = document.get("valid")
    if not isinstance(valid, list):
        return []
    return [key for key in valid[-MAX_VERDICTS:] if isinstance(key, str) and _HEX64.match(key)]
