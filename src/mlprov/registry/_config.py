"""``mlprov.toml`` in the registry directory: which policy gates which change, and hooks.

The file is pinned by digest: the registry records the digest of the version
it accepted (an audited change, ``mlprov registry set-config``) and refuses to
change anything while the file on disk differs, so a gate cannot be loosened
without an audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlprov._internal.readers import load_toml
from mlprov.errors import InputError
from mlprov.registry.interface import Stage

__all__ = ["CHANGE_GATES", "DEFAULT_CONFIG", "UNGATED", "HookConfig", "RegistryConfig",
           "parse_config"]

#: A gate value meaning "no policy": the change is still verified, signed and audited.
UNGATED = "none"
#: The catalog changes ``[gates.changes]`` may gate (by default no policy does).
CHANGE_GATES = ("rename", "delete", "tags", "descriptions")

DEFAULT_CONFIG = """\
# mlprov registry configuration. The registry pins this file by digest: after
# editing it, record the change with `mlprov registry set-config FILE --reason TEXT`.

# Sign a checkpoint of the audit log every N entries (and at each `audit verify`).
checkpoint_every = 100

[policy]
# Each policy reads the data file beside it (data.yaml) for its thresholds and
# lists; name another file inside the registry's policies to use it instead:
# data = "data.yaml"

# Which policy (a file inside the registry's policies) gates a move to a stage.
# "none" means no policy: the change is still verified, signed and audited.
# A stage or alias with no entry here (and no "*") is refused: fail closed.
[gates.stages]
None = "none"
Staging = "staging.rego"
Production = "production.rego"
Archived = "none"

# Which policy gates setting an alias (and rolling it back).
[gates.aliases]
production = "production.rego"
champion = "production.rego"
"*" = "staging.rego"

# Renames, deletions, tags and descriptions are signed and audited changes that
# no policy gates unless named here (a deletion of a version in Production or
# with an alias is refused whatever the gate). A policy named for them is
# evaluated over each version the change touches.
# [gates.changes]
# rename = "production.rego"
# delete = "production.rego"
# tags = "none"
# descriptions = "none"

[events]
# "after-commit": deliver hooks right after each change; "manual": only
# `mlprov events deliver`. Failed deliveries are retried with backoff either way.
deliver = "after-commit"
max_attempts = 8

# Hooks: run a command (the event JSON on stdin) or POST a webhook signed with
# HMAC-SHA256 (secret read from the environment variable named by secret_env).
# [[hooks]]
# name = "notify"
# events = ["alias.set", "stage.transition"]   # or ["*"]
# url = "http://127.0.0.1:9000/mlprov"
# secret_env = "MLPROV_HOOK_SECRET"
# timeout = 5
#
# [[hooks]]
# name = "log"
# events = ["*"]
# command = ["sh", "-c", "cat >> events.jsonl"]
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HookConfig(_Strict):
    """One hook: a command or a webhook, for some event kinds."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    events: list[str] = Field(min_length=1)
    url: str | None = None
    command: list[str] | None = None
    secret_env: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("url must be http:// or https://")
        return value

    def wants(self, kind: str) -> bool:
        """Whether this hook subscribes to events of ``kind``."""
        return "*" in self.events or kind in self.events


class _Policy(_Strict):
    data: str | None = None


class _Gates(_Strict):
    stages: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)
    changes: dict[str, str] = Field(default_factory=dict)


class _Events(_Strict):
    deliver: str = Field(default="after-commit", pattern=r"^(after-commit|manual)$")
    max_attempts: int = Field(default=8, ge=1, le=100)


class _File(_Strict):
    checkpoint_every: int = Field(default=100, ge=1, le=1_000_000)
    policy: _Policy = Field(default_factory=_Policy)
    gates: _Gates = Field(default_factory=_Gates)
    events: _Events = Field(default_factory=_Events)
    hooks: list[HookConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class RegistryConfig:
    """The parsed ``mlprov.toml``."""

    checkpoint_every: int = 100
    policy_data: str | None = None
    stage_gates: dict[Stage, str] = field(default_factory=dict)
    alias_gates: dict[str, str] = field(default_factory=dict)
    deliver_after_commit: bool = True
    max_attempts: int = 8
    hooks: tuple[HookConfig, ...] = ()
    change_gates: dict[str, str] = field(default_factory=dict)

    def gate_for_change(self, change: str) -> str | None:
        """The policy gating a catalog change, ``none``, or None (a built-in rule allows it).

        ``change`` is ``rename``, ``delete``, ``tags`` or ``descriptions``.
        """
        return self.change_gates.get(change)

    def gate_for_stage(self, stage: Stage) -> str | None:
        """The policy gating a move to ``stage`` (``none`` = ungated), or None (refused)."""
        return self.stage_gates.get(stage)

    def gate_for_alias(self, alias: str) -> str | None:
        """The policy gating ``alias`` (exact name first, then ``*``), or None (refused)."""
        return self.alias_gates.get(alias, self.alias_gates.get("*"))

    def policy_files(self) -> set[str]:
        """Every policy file the gates name."""
        return {g for g in (*self.stage_gates.values(), *self.alias_gates.values(),
                            *self.change_gates.values()) if g != UNGATED}


def parse_config(data: bytes, *, what: str = "mlprov.toml") -> RegistryConfig:
    """Parse and check ``mlprov.toml``.

    Raises:
        InputError: not TOML, unknown keys, bad values, an unknown stage.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not valid TOML: {exc}") from exc
    document: dict[str, Any] = load_toml(text, what=what)  # nesting bounded
    try:
        parsed = _File.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise InputError(f"{what}: {where}: {first['msg']}") from exc
    stages: dict[Stage, str] = {}
    for key, value in parsed.gates.stages.items():
        try:
            stage = Stage(key)
        except ValueError as exc:
            raise InputError(f"{what}: gates.stages: unknown stage {key!r}",
                             hint="stages are None, Staging, Production and Archived") from exc
        stages[stage] = value
    unknown = sorted(set(parsed.gates.changes) - set(CHANGE_GATES))
    if unknown:
        raise InputError(f"{what}: gates.changes: unknown change {unknown[0]!r}",
                         hint=f"the changes are {', '.join(CHANGE_GATES)}")
    names = [h.name for h in parsed.hooks]
    if len(set(names)) != len(names):
        raise InputError(f"{what}: two hooks share a name")
    for hook in parsed.hooks:
        if (hook.url is None) == (hook.command is None):
            raise InputError(f"{what}: hook {hook.name!r} needs exactly one of url or command")
        if hook.url is not None and not hook.secret_env:
            raise InputError(f"{what}: webhook {hook.name!r} needs secret_env (the variable "
                             "holding its HMAC-SHA256 secret)")
        if hook.command is not None and not hook.command:
            raise InputError(f"{what}: hook {hook.name!r} has an empty command")
    return RegistryConfig(
        checkpoint_every=parsed.checkpoint_every, policy_data=parsed.policy.data,
        stage_gates=stages, alias_gates=dict(parsed.gates.aliases),
        deliver_after_commit=parsed.events.deliver == "after-commit",
        max_attempts=parsed.events.max_attempts, hooks=tuple(parsed.hooks),
        change_gates=dict(parsed.gates.changes))
