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

A signature counts only for the roles its signer holds. ``keyid`` values and
bundle hints are used only to find a key faster, never to decide trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlprov.errors import TrustError
from mlprov.signing import PublicKey, load_public_key

__all__ = ["Role", "Trust", "TrustedKey", "load_trust"]


class Role(StrEnum):
    """What a signer is trusted to vouch for."""

    BUILDER = "builder"      # provenance, SBOM, OMS signature
    EVALUATOR = "evaluator"  # eval results
    REVIEWER = "reviewer"    # human approvals
    REGISTRY = "registry"    # registry decisions, log checkpoints


@dataclass(frozen=True)
class TrustedKey:
    """A public key, its name in the trust file, and its roles."""

    name: str
    key: PublicKey
    roles: frozenset[Role]


@dataclass(frozen=True)
class Trust:
    """The set of trusted signers for one verification."""

    keys: tuple[TrustedKey, ...]
    source: str

    @classmethod
    def single_key(cls, path: Path) -> Trust:
        """Trust one public key for every role (``--key``), like ``cosign verify --key``."""
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


class _TrustFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    keys: list[_KeyEntry] = Field(default_factory=list)


def _yaml_error(exc: Exception) -> str:
    """One line for a YAML error: the problem and where it is."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())


def _parse_yaml(text: str) -> object:
    """``yaml.safe_load``, refusing duplicate mapping keys (PyYAML keeps the last silently)."""
    import yaml

    class _StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep=True)

    _StrictLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def load_trust(path: Path) -> Trust:
    """Load and check a trust file; key paths are relative to the file.

    Raises:
        TrustError: the file is unreadable, malformed, names a key twice, or
            trusts nobody.
        KeyMaterialError: a named public key cannot be loaded.
    """
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustError(f"cannot read trust file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise TrustError(f"trust file {path} is not UTF-8 text") from exc
    try:
        document = _parse_yaml(text)
    except yaml.YAMLError as exc:
        raise TrustError(f"trust file {path} is not valid YAML: {_yaml_error(exc)}") from exc
    try:
        parsed = _TrustFile.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise TrustError(f"trust file {path}: {where}: {first['msg']}") from exc
    if not parsed.keys:
        raise TrustError(f"trust file {path} trusts no signer",
                         hint="add at least one entry under 'keys'")
    seen: set[str] = set()
    for entry in parsed.keys:
        if entry.name in seen:
            raise TrustError(f"trust file {path} names signer {entry.name!r} twice",
                             hint="give each key entry a unique name")
        seen.add(entry.name)
    keys = []
    for entry in parsed.keys:
        key = load_public_key(path.parent / entry.public_key)
        keys.append(TrustedKey(name=entry.name, key=key, roles=frozenset(entry.roles)))
    return Trust(keys=tuple(keys), source=str(path))
