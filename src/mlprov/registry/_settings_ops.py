"""Changing what a registry enforces: its trust, policies, thresholds and ``mlprov.toml``.

Each change is checked before anything is recorded (a policy set's own Rego tests
run, the gates must name policies the set holds, a keyless registry must still be
able to verify what it signs), stored as a blob, and recorded as one signed,
audited change by the registry owner; then the cached settings are dropped.
The same checks vet a new registry's first settings (:mod:`._setup`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov._internal.readers import MAX_CONFIG_BYTES, read_bytes
from mlprov.errors import InputError
from mlprov.registry._config import RegistryConfig, parse_config
from mlprov.registry._gate import rule_outcome
from mlprov.registry._gatekeeper import check_config_pinned
from mlprov.registry._gc import check_blobs_kept, gc_epoch
from mlprov.registry._home import (
    policies_snapshot,
    policy_file_digests,
    trust_snapshot_of,
    write_file_atomically,
)
from mlprov.registry._recorder import after_commit, record_change, retrying
from mlprov.registry._records import ChangeResult, PendingChange, default_actor
from mlprov.registry._settings import check_registry_identity
from mlprov.trust import Trust, load_trust

if TYPE_CHECKING:
    from mlprov.registry._context import RegistryContext
    from mlprov.thresholds import Thresholds

__all__ = ["check_gates", "check_policy_tests", "config_change", "set_config", "set_policies",
           "set_thresholds", "set_trust", "shipped_policies", "threshold_set"]


def set_trust(registry: RegistryContext, trust: Trust | Path | str, *, reason: str,
              actor: str | None = None) -> ChangeResult:
    """Replace the trust the registry enforces (see :meth:`Registry.set_trust`).

    ``trust``: a trust file, or a loaded :class:`~mlprov.trust.Trust` (e.g. sent
    to the registry server as a snapshot).
    """
    epoch = gc_epoch(registry.metadata)
    settings = registry.settings
    keyless = settings.signing() is not None
    loaded = trust if isinstance(trust, Trust) else load_trust(Path(trust))
    source = Path(trust.source if isinstance(trust, Trust) else trust).name
    if keyless:  # the registry must still be able to verify what it signs
        check_registry_identity(settings.signer, loaded)
    data = trust_snapshot_of(loaded, source, None if keyless else settings.signer.public_key)
    digest = registry.blobs.put_bytes(data).digest
    return _set_setting(registry, "registry.trust", "trust", digest, reason=reason, actor=actor,
                        epoch=epoch)


def set_policies(registry: RegistryContext, policies: Path | str | None, *, reason: str,
                 actor: str | None = None) -> ChangeResult:
    """Replace the policies, their tests passing first (see :meth:`Registry.set_policies`)."""
    directory = Path(policies) if policies is not None else shipped_policies()
    check_policy_tests(directory, registry.settings.thresholds,
                       registry.settings.config.policy_data)
    epoch = gc_epoch(registry.metadata)
    data = policies_snapshot(directory, registry.blobs)
    check_gates(registry.settings.config, data)
    digest = registry.blobs.put_bytes(data).digest
    return _set_setting(registry, "registry.policies", "policies", digest, reason=reason,
                        actor=actor, epoch=epoch,
                        blobs=tuple(policy_file_digests(data).values()))


def set_thresholds(registry: RegistryContext, thresholds: Thresholds | Iterable[str], *,
                   reason: str, actor: str | None = None) -> ChangeResult:
    """Replace the metric thresholds (see :meth:`Registry.set_thresholds`)."""
    new = threshold_set(thresholds)
    check_policy_tests(registry.settings.policies_dir(), new,
                       registry.settings.config.policy_data)
    epoch = gc_epoch(registry.metadata)
    digest = registry.blobs.put_bytes(new.to_bytes()).digest
    return _set_setting(registry, "registry.thresholds", "thresholds", digest, reason=reason,
                        actor=actor, details={"thresholds": new.lines()}, epoch=epoch)


def set_config(registry: RegistryContext, config: Path | str, *, reason: str,
               actor: str | None = None) -> ChangeResult:
    """Record a new ``mlprov.toml`` (see :meth:`Registry.set_config`)."""
    path = Path(config)
    try:
        data = read_bytes(path, what="registry config", limit=MAX_CONFIG_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    parsed = parse_config(data, what=str(path))
    with registry.metadata.read() as tx:
        policies = tx.get_state("policies")
    assert policies is not None
    check_gates(parsed, registry.blobs.get_bytes(policies))
    epoch = gc_epoch(registry.metadata)
    digest = registry.blobs.put_bytes(data).digest
    config_file = registry.location.config_file
    return _set_setting(registry, "registry.config", "config", digest, reason=reason,
                        actor=actor, epoch=epoch, after=None if config_file is None else (
                            lambda: write_file_atomically(config_file, data, 0o644)))


def _set_setting(registry: RegistryContext, kind: str, key: str, digest: str, *, reason: str,
                 actor: str | None, epoch: str, blobs: tuple[str, ...] = (),
                 after: Callable[[], None] | None = None,
                 details: dict[str, Any] | None = None) -> ChangeResult:
    """Record ``key`` := ``digest`` as one signed change, then drop the cached settings.

    ``epoch`` (taken before the blobs were stored) and ``blobs`` (what the setting
    names besides itself) let a garbage collection that raced the change refuse it
    rather than leave it dangling (:mod:`._gc`).
    """
    if key != "config":
        check_config_pinned(registry)

    def run() -> ChangeResult:
        with registry.metadata.write() as tx:
            check_blobs_kept(tx, registry.blobs, epoch, (digest, *blobs))
            old = tx.get_state(key)
            if old == digest:
                raise InputError(f"the registry's {key} is already {digest}")
            result = record_change(registry, tx, config_change(
                registry, kind, actor=actor or default_actor(), reason=reason, subject=digest,
                inputs={f"registry:{key}": digest},
                details={"from": old, "to": digest, **(details or {})}),
                lambda _decision, _seq, _time: tx.set_state(key, digest))
        if after is not None:
            after()
        return result

    result = retrying(run)
    registry.settings.forget()
    return after_commit(registry, result)


def config_change(registry: RegistryContext, kind: str, *, actor: str, reason: str | None,
                  subject: str, inputs: dict[str, str], details: dict[str, Any]
                  ) -> PendingChange:
    """A change of the registry's own settings (``registry.*``), allowed to its owner."""
    registry_id = registry.settings.registry_id
    return PendingChange(kind=kind, name=None, version=None, target=kind.split(".", 1)[1],
                         actor=actor, reason=reason, outcome=rule_outcome("registry-owner"),
                         subject_name=f"mlprov-registry:{registry_id}",
                         subject_digest=subject, resource_uri=f"mlprov-registry:{registry_id}",
                         inputs=inputs, change=dict(details), details=details)


def threshold_set(value: Thresholds | Iterable[str] | None) -> Thresholds:
    """Thresholds as given, or parsed from ``["test/auc>=0.85", ...]`` (None: empty)."""
    from mlprov.thresholds import Thresholds, parse_thresholds

    if value is None:
        return Thresholds()
    if isinstance(value, Thresholds):
        return value
    return parse_thresholds(value)


def shipped_policies() -> Path:
    """The policies mlprov ships (the default set)."""
    try:
        from mlprov.policy import shipped_policies_dir
    except ImportError as exc:  # pragma: no cover - the policy module ships with mlprov
        raise InputError("no policies given and none shipped",
                         hint="pass --policies DIR") from exc
    return shipped_policies_dir()


def check_policy_tests(directory: Path, thresholds: Thresholds | None = None,
                       data_file: str | None = None) -> None:
    """Run a policy set's Rego tests, if it has any; refuse the set if one fails.

    The tests see the data the gates will see: the data file the config names
    (else the set's own), with the registry's ``thresholds`` in place.
    """
    from mlprov.policy import (
        TEST_SUFFIX,
        PolicyError,
        load_policy,
        load_policy_data,
        run_policy_tests,
    )

    if not directory.is_dir() or not any(directory.rglob(f"*{TEST_SUFFIX}")):
        return
    data: dict[str, Any] | None = None
    if data_file is not None and (directory / data_file).is_file():
        data = load_policy_data(directory / data_file)
    if thresholds:
        data = thresholds.apply(load_policy(directory).data if data is None else data)
    report = run_policy_tests(directory, data)
    if not report.ok:
        failed = [t for t in report.tests if not t.passed]
        first = failed[0]
        raise PolicyError(
            f"{report.failed} of {len(report.tests)} policy test(s) of {directory} fail, "
            f"first {first.file}: {first.name}" + (f" ({first.detail})" if first.detail else ""),
            hint=f"run `mlprov policy test {directory}` and fix the policies or their tests")


def check_gates(config: RegistryConfig, policies_snapshot_bytes: bytes) -> None:
    """Refuse a config naming policies the snapshot does not hold (fail at set time)."""
    from mlprov.registry._home import policy_file_digests

    files = policy_file_digests(policies_snapshot_bytes)
    missing = sorted(p for p in config.policy_files() if p not in files)
    if missing:
        raise InputError(f"the gates name policies that are not in the registry's policies: "
                         f"{', '.join(missing)}",
                         hint="add them to the policies directory, or change [gates] in "
                              "mlprov.toml")
    if config.policy_data and config.policy_data not in files:
        raise InputError(f"policy data {config.policy_data} is not in the registry's policies")
