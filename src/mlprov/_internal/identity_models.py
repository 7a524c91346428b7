"""The identity inputs' pydantic models (``mlprov.identity.CodeRef``, ``DataRef``, ...).

Apart from :mod:`mlprov.identity` so that importing it (``mlprov attest`` does) does not
import pydantic: the models load when first named there. Their rules are the ones
:mod:`mlprov._internal.inputs` (the pydantic-free twins) applies.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from mlprov._internal.inputs import commit_problem, digest_problem, duplicate_names
from mlprov.statements import MlprovModel

__all__ = ["CodeRef", "DataRef", "IdentityInputs"]


class CodeRef(MlprovModel):
    """The training code: a git commit, where it lives, and whether the tree was dirty."""

    commit: str
    uri: str | None = None
    dirty: bool = False

    @field_validator("commit")
    @classmethod
    def _commit_is_hex(cls, value: str) -> str:
        problem = commit_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class DataRef(MlprovModel):
    """A dataset by name and content digest (``sha256:<hex>``)."""

    name: str = Field(min_length=1)
    digest: str
    uri: str | None = None

    @field_validator("digest")
    @classmethod
    def _digest_form(cls, value: str) -> str:
        problem = digest_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @property
    def sha256(self) -> str:
        """The hex digest."""
        return self.digest.removeprefix("sha256:")


class IdentityInputs(MlprovModel):
    """Everything a version identity is derived from."""

    code: CodeRef
    data: list[DataRef] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    seeds: dict[str, int] = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _sorted_unique(cls, value: list[DataRef]) -> list[DataRef]:
        problem = duplicate_names(d.name for d in value)
        if problem is not None:
            raise ValueError(problem)
        return sorted(value, key=lambda d: d.name)

    def canonical_inputs(self) -> dict[str, Any]:
        """Return the exact document the identity hashes."""
        return {
            "code": self.code.to_json_dict(),
            "data": [{"digest": d.digest, "name": d.name} for d in self.data],
            "config": self.config,
            "seeds": self.seeds,
        }
