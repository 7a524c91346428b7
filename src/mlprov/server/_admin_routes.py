"""The registry's settings over HTTP (admin): trust, policies, thresholds, ``mlprov.toml``.

Each handler requires ``admin`` (deny by default; a refusal is audited like
any other), then calls the registry's own settings method on a worker thread
with the authenticated principal as the actor: the same checks run as for a
local ``mlprov registry set-*`` (policy tests, gates naming policies the set
holds, a keyless registry still able to verify what it signs), and the change
is recorded as one signed, audited ``registry.*`` change. What the client sends
is data: policy files land in a private temporary directory under checked
relative names (created ``O_EXCL | O_NOFOLLOW``), the config and the trust are
parsed by the registry's own strict readers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mlprov._internal.readers import MAX_CONFIG_BYTES
from mlprov.errors import InputError
from mlprov.server._endpoint import Call, Endpoint, json_body, json_response

if TYPE_CHECKING:
    from starlette.responses import Response

    from mlprov.registry import ChangeResult, Registry

__all__ = ["POLICY_SUFFIXES", "admin_endpoints"]

CHANGE_SCHEMA = "https://mlprov.dev/schemas/registry-change/v1"
#: The files a policies directory may hold (the registry's own rule).
POLICY_SUFFIXES = (".rego", ".yaml", ".yml", ".json")
MAX_POLICY_FILES = 500


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ThresholdsRequest(_Body):
    """Replace the metric thresholds (an empty list: the policy data's own again)."""

    thresholds: list[str] = Field(max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


class ConfigRequest(_Body):
    """Record a new ``mlprov.toml`` (its text)."""

    text: str = Field(min_length=1, max_length=MAX_CONFIG_BYTES)
    reason: str = Field(min_length=1, max_length=2000)


class PoliciesRequest(_Body):
    """Replace the policies: relative path -> text (``.rego``, data files); null: shipped."""

    files: dict[str, str] | None = Field(default=None, max_length=MAX_POLICY_FILES)
    reason: str = Field(min_length=1, max_length=2000)


class TrustRequest(_Body):
    """Replace the trust: a trust snapshot (keys as PEM, Sigstore rules), self-contained."""

    trust: dict[str, Any]
    reason: str = Field(min_length=1, max_length=2000)


def _admin(call: Call, what: str) -> None:
    call.access.require(call.access.admin, f"change the registry's {what}", action="admin",
                        target=what)


def _change(result: ChangeResult) -> Response:
    return json_response({"schema": CHANGE_SCHEMA, **result.to_json_dict()})


async def _on_registry(call: Call, work: Any) -> Any:
    state = call.state
    return await state.run(lambda: work(state.registry()))


def _private_dir(call: Call, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=call.state.tmp))


async def set_thresholds(call: Call) -> Response:
    """Replace the registry's metric thresholds (admin)."""
    _admin(call, "thresholds")
    body: ThresholdsRequest = await json_body(call, ThresholdsRequest)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.set_thresholds(
        list(body.thresholds), reason=body.reason, actor=who)))


async def set_config(call: Call) -> Response:
    """Record a new ``mlprov.toml`` (admin)."""
    _admin(call, "config")
    body: ConfigRequest = await json_body(call, ConfigRequest)
    who = call.principal.name
    directory = _private_dir(call, "config-")

    def work(registry: Registry) -> ChangeResult:
        try:
            path = directory / "mlprov.toml"
            _write_new(path, body.text.encode("utf-8"))
            return registry.set_config(path, reason=body.reason, actor=who)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    return _change(await _on_registry(call, work))


async def set_policies(call: Call) -> Response:
    """Replace the policies (admin); their own tests run first."""
    _admin(call, "policies")
    body: PoliciesRequest = await json_body(call, PoliciesRequest)
    files = body.files
    if files is not None:
        if not any(name.endswith(".rego") for name in files):
            raise InputError("the policies hold no .rego file")
        for name in files:
            check_policy_name(name)
    who = call.principal.name
    directory = _private_dir(call, "policies-")

    def work(registry: Registry) -> ChangeResult:
        try:
            if files is None:
                return registry.set_policies(None, reason=body.reason, actor=who)
            root = directory / "policies"
            root.mkdir(mode=0o700)
            for name, text in sorted(files.items()):
                path = root.joinpath(*name.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _write_new(path, text.encode("utf-8"))
            return registry.set_policies(root, reason=body.reason, actor=who)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    return _change(await _on_registry(call, work))


async def set_trust(call: Call) -> Response:
    """Replace the trust the registry enforces (admin); the registry's key keeps its role."""
    from mlprov.canonical import canonical_json
    from mlprov.registry import trust_from_snapshot

    _admin(call, "trust")
    body: TrustRequest = await json_body(call, TrustRequest)
    source = body.trust.get("source")
    if not isinstance(source, str) or not 0 < len(source) <= 100 or not source.isprintable() \
            or "/" in source or "\\" in source or source in (".", ".."):
        source = "trust.yaml"
    trust = trust_from_snapshot(canonical_json(body.trust), source=source)
    who = call.principal.name
    return _change(await _on_registry(call, lambda r: r.set_trust(
        trust, reason=body.reason, actor=who)))


def check_policy_name(name: str) -> str:
    """A policy file's name: a clean relative POSIX path with a policy suffix.

    Raises:
        InputError: otherwise (absolute, ``..``, hidden parts, another suffix...).
    """
    from mlprov.hashing import check_relative_path

    if len(name) > 200 or not name.isprintable() or "\\" in name:
        raise InputError(f"invalid policy file name {name[:60]!r}")
    check_relative_path(name)
    if any(part.startswith(".") for part in name.split("/")) or \
            not name.endswith(POLICY_SUFFIXES):
        raise InputError(f"invalid policy file name {name[:60]!r}",
                         hint=f"relative paths ending in {', '.join(POLICY_SUFFIXES)}")
    return name


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never through a link, never over a file) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def admin_endpoints() -> list[Endpoint]:
    """The settings endpoints, for the app and its OpenAPI document."""
    denied = {"422": "refused by the registry's checks (a policy test failed...)"}
    return [
        Endpoint("PUT", "/api/v1/registry/trust", set_trust,
                 "Replace the trust (a self-contained trust snapshot; audited)", "admin",
                 body=TrustRequest, responses=denied, tag="admin"),
        Endpoint("PUT", "/api/v1/registry/policies", set_policies,
                 "Replace the policies (files by relative path, or null: the shipped ones; "
                 "their tests run first; audited)", "admin", body=PoliciesRequest,
                 responses=denied, tag="admin"),
        Endpoint("PUT", "/api/v1/registry/thresholds", set_thresholds,
                 "Replace the metric thresholds (audited)", "admin", body=ThresholdsRequest,
                 responses=denied, tag="admin"),
        Endpoint("PUT", "/api/v1/registry/config", set_config,
                 "Record a new mlprov.toml (checked; audited)", "admin", body=ConfigRequest,
                 responses=denied, tag="admin"),
    ]
