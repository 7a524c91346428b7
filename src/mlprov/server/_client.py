"""A registry behind an mlprov server, with the :class:`~mlprov.registry.Registry` API.

:class:`RemoteRegistry` trusts nothing the server says without checking it:

- **The key.** The registry's public key is pinned on this machine: from the
  caller's trust file (``trust=``, ``--trust``: a key with the ``registry``
  role), else at first use in the local cache (as SSH pins a host key), with the
  registry's id. A server that later names another key or id is refused.
- **Reads** (``resolve``, ``pull``, ``load``, ``export_evidence``, ``audit
  verify``, ``head``) run the registry's own verification code over the
  server's rows and blobs (:mod:`._remote_store`): signed head and log end,
  the decision behind the URI and the audit chain after it, the evidence, every
  byte of every file. A forged decision, a swapped blob or a cut history fails
  exactly as it would against an edited database.
- **Changes** (``register``, ``promote``, ``set_alias``, ``delete_alias``,
  ``rollback``, ``add_review``, deployments) are asked of the server's API; the
  answer's decision is fetched (digest-checked), its signature verified with
  the pinned key, its content compared with what was asked (kind, name,
  version, stage or alias, outcome, the registry's id), it must be newer than
  the signed head seen before asking (no replayed old decision), and the newly
  signed head must cover it, with the audit entry it names holding it.
- **Who.** The server records the authenticated principal as the change's actor;
  an ``actor=`` given here is not sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlprov.errors import InputError, MlprovError
from mlprov.registry import (
    ChangeResult,
    RegisterResult,
    Registry,
    RegistryIntegrityError,
)
from mlprov.server._errors import MalformedResponseError
from mlprov.server._remote_store import RemoteBlobStore, RemoteMetadataStore
from mlprov.server._transport import TOKEN_ENV, Transport, quote_segment
from mlprov.server._url import parse_server_url

if TYPE_CHECKING:
    from mlprov.registry import LoadedDeployment, LoadedModel, PullResult, Resolved
    from mlprov.registry.interface import VersionRecord
    from mlprov.trust import Trust

__all__ = ["CACHE_ENV", "RemoteRegistry", "cache_dir_for"]

T = TypeVar("T")
CACHE_ENV = "MLPROV_CACHE_HOME"
_VSA = "https://slsa.dev/verification_summary/v1"
_CHANGE_FIELD = "https://mlprov.dev/registry/change/v1"
_CONSISTENT_ATTEMPTS = 6


def cache_dir_for(url: str) -> Path:
    """The local cache of a registry server: pins, small blobs, checkouts (0700)."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "mlprov"
    return root / "servers" / hashlib.sha256(url.encode()).hexdigest()[:24]


class RemoteRegistry:
    """A registry behind an mlprov server (see the module docstring).

    Example:
        registry = RemoteRegistry.open("https://mlprov.example.com")   # $MLPROV_TOKEN
        model = registry.load("models:/credit-risk@production")
    """

    def __init__(self, url: str, *, token: str | None = None, trust: Trust | None = None,
                 cache: Path | None = None, transport: Transport | None = None) -> None:
        parsed = parse_server_url(url)
        self.url = str(parsed)
        self.transport = transport or Transport(parsed, token if token is not None
                                                else os.environ.get(TOKEN_ENV))
        self.cache = cache or cache_dir_for(self.url)
        self.cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.pinned_trust = trust
        self.info = self._describe()
        self.first_use = self._pin(self.info, trust)
        self.local = Registry(self.cache, RemoteMetadataStore(self.transport),
                              RemoteBlobStore(self.transport, self.cache / "blobs"))
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, token: str | None = None, trust: Trust | Path | str | None = None
             ) -> RemoteRegistry:
        """Connect to the server at ``url`` (``https://HOST``; ``http://`` on loopback).

        ``token`` defaults to ``$MLPROV_TOKEN``; ``trust`` pins the registry key
        (a trust file giving it the ``registry`` role), else it is pinned at first use.

        Raises:
            InputError: a malformed URL, or plain http:// to another host.
            AuthenticationError, PermissionDeniedError: the server refused the token.
            RegistryIntegrityError: the server's key or id differs from the pinned one.
        """
        from mlprov.trust import Trust as _Trust
        from mlprov.trust import load_trust

        loaded = trust if isinstance(trust, _Trust) or trust is None else load_trust(Path(trust))
        return cls(url, token=token, trust=loaded)

    def close(self) -> None:
        """Close the connection."""
        self.transport.close()

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ pinning

    def _describe(self) -> dict[str, Any]:
        _, document = self.transport.json("GET", "/api/v1/registry")
        if not isinstance(document, dict) or not isinstance(document.get("registryId"), str):
            raise MalformedResponseError("the server's /api/v1/registry answer is malformed")
        return document

    def _pin(self, info: dict[str, Any], trust: Trust | None) -> bool:
        """Pin the registry's key and id; True when they were pinned now (first use)."""
        from mlprov.signing import load_public_key
        from mlprov.trust import Role

        keys = self.cache / "keys"
        keys.mkdir(exist_ok=True, mode=0o700)
        pin = keys / "registry.key.pub"
        id_pin = self.cache / "registry-id"
        pem = info.get("publicKey")
        if not isinstance(pem, str):
            if trust is None:
                raise RegistryIntegrityError(
                    f"the registry behind {self.url} signs keyless: pass a trust file that "
                    "names its Sigstore identity with the registry role (--trust)")
            return False
        server_key = _public_key(pem)
        registry_id = info["registryId"]
        if trust is not None:
            trusted = [k.key for k in trust.keys if Role.REGISTRY in k.roles]
            if server_key.keyid not in {k.keyid for k in trusted}:
                raise RegistryIntegrityError(
                    f"the registry behind {self.url} signs with key {server_key.keyid[:16]}..., "
                    f"which {trust.source} does not give the registry role",
                    hint="the server is not the registry your trust file pins")
        first = not pin.exists()
        if first:
            _write(pin, server_key.pem)
            _write(id_pin, registry_id.encode())
            return True
        pinned = load_public_key(pin)
        if pinned.keyid != server_key.keyid:
            raise RegistryIntegrityError(
                f"the registry behind {self.url} names another public key than the one pinned "
                f"at first use ({pin})",
                hint="if the registry was re-created on purpose, delete the pin; otherwise the "
                     "server is not the registry you used before")
        with contextlib.suppress(OSError):
            if id_pin.read_text().strip() != registry_id:
                raise RegistryIntegrityError(
                    f"the registry behind {self.url} has another id ({registry_id}) than the "
                    f"one pinned at first use ({id_pin})")
        return False

    # ------------------------------------------------------------------ settings

    @property
    def address(self) -> str:
        """The server's URL."""
        return self.url

    @property
    def registry_id(self) -> str:
        """The pinned registry id."""
        with contextlib.suppress(OSError):
            return (self.cache / "registry-id").read_text().strip()
        return str(self.info["registryId"])

    @property
    def principal(self) -> str:
        """Who the server says this client is."""
        who = self.info.get("principal")
        name = who.get("name") if isinstance(who, dict) else None
        return name if isinstance(name, str) else "unknown"

    @property
    def anchor(self) -> Trust:
        """The pinned registry key (who may sign decisions and heads)."""
        return self.pinned_trust or self.local.anchor

    def head(self, *, anchor: Trust | None = None) -> Any:
        """The registry's signed head, verified here with the pinned key."""
        return self._consistent(lambda: self.local.head(anchor=anchor or self.pinned_trust))

    def _consistent(self, fn: Callable[[], T]) -> T:
        """Run a verifying read; retry it when a change on the server raced it.

        The server's answers to separate requests are no snapshot: a change
        committed between them can make a check fail. A failure is retried
        only when the signed head moved meanwhile; one that repeats is real.
        Each attempt is one operation of the store: the signed head is read once
        in it, and read again only after a failure, to see whether it moved.
        """
        import random
        import time

        store = self.local.metadata
        assert isinstance(store, RemoteMetadataStore)
        previous: str | None = None
        for attempt in range(_CONSISTENT_ATTEMPTS):
            with store.operation() as operation:
                try:
                    return fn()
                except RegistryIntegrityError:
                    if attempt + 1 == _CONSISTENT_ATTEMPTS:
                        raise
                    seen = operation.head.get("head") if operation.head is not None \
                        else previous
                    now = store.fresh_head()
                    if seen is not None and now == seen:
                        raise
                    previous = now
            time.sleep(0.05 * (attempt + 1) * random.random())  # noqa: S311 - jitter
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ verified reads

    def resolve(self, uri: str, *, trust: Trust | None = None, min_seq: int | None = None,
                head_file: Path | None = None, allow_archived: bool = False,
                actor: str | None = None) -> Resolved:
        """Resolve a ``models:/`` URI against the signed head (verified here)."""
        del actor
        _no_archived(allow_archived)
        return self._consistent(lambda: self.local.resolve(
            uri, trust=trust or self.pinned_trust, min_seq=min_seq, head_file=head_file))

    def pull(self, uri: str, out: Path | str, *, trust: Trust | None = None,
             min_seq: int | None = None, head_file: Path | str | None = None,
             allow_archived: bool = False, actor: str | None = None) -> PullResult:
        """Copy a version's files to ``out``, verifying every byte and signature here."""
        del actor
        _no_archived(allow_archived)
        return self._consistent(lambda: self.local.pull(
            uri, out, trust=trust or self.pinned_trust, min_seq=min_seq, head_file=head_file))

    def load(self, uri: str, *, trust: Trust | None = None, min_seq: int | None = None,
             head_file: Path | str | None = None, allow_archived: bool = False,
             actor: str | None = None) -> LoadedModel:
        """A verified local copy of ``uri`` (checkouts cached by digest, re-hashed each call)."""
        del actor
        _no_archived(allow_archived)
        return self._consistent(lambda: self.local.load(
            uri, trust=trust or self.pinned_trust, min_seq=min_seq, head_file=head_file))

    def resolve_deployment(self, uri: str, *, trust: Trust | None = None,
                           min_seq: int | None = None, head_file: Path | str | None = None
                           ) -> Any:
        """Resolve a ``deployments:/`` URI, every member verified here."""
        return self._consistent(lambda: self.local.resolve_deployment(
            uri, trust=trust or self.pinned_trust, min_seq=min_seq, head_file=head_file))

    def pull_deployment(self, uri: str, out: Path | str, *, trust: Trust | None = None,
                        min_seq: int | None = None, head_file: Path | str | None = None
                        ) -> Any:
        """Copy every member of a deployment to ``out``, each verified here."""
        return self._consistent(lambda: self.local.pull_deployment(
            uri, out, trust=trust or self.pinned_trust, min_seq=min_seq, head_file=head_file))

    def load_deployment(self, uri: str, *, trust: Trust | None = None,
                        min_seq: int | None = None, head_file: Path | str | None = None
                        ) -> LoadedDeployment:
        """Verified local copies of every member of a deployment (cached checkouts)."""
        return self._consistent(lambda: self.local.load_deployment(
            uri, trust=trust or self.pinned_trust, min_seq=min_seq, head_file=head_file))

    def show_version(self, name: str, version: int, *, trust: Trust | None = None) -> Any:
        """What a version holds, verified here."""
        return self._consistent(lambda: self.local.show_version(
            name, version, trust=trust or self.pinned_trust))

    def verify_uri(self, uri: str, *, trust: Trust | None = None) -> Any:
        """The decision behind ``uri`` and the version's evidence, verified here."""
        return self._consistent(lambda: self.local.verify_uri(
            uri, trust=trust or self.pinned_trust))

    def inspect(self, uri: str, *, trust: Trust | None = None) -> Any:
        """The version's evidence, verified here, as ``mlprov inspect`` shows it."""
        return self._consistent(lambda: self.local.inspect(uri, trust=trust or self.pinned_trust))

    def lineage(self, uri: str, *, trust: Trust | None = None, descendants: bool = False
                ) -> Any:
        """The version's lineage, walked and verified here."""
        return self._consistent(lambda: self.local.lineage(
            uri, trust=trust or self.pinned_trust, descendants=descendants))

    def pending_approvals(self, *, stage: Any = None, name: str | None = None) -> Any:
        """Versions waiting on a review (the gate's dry run, evaluated here)."""
        return self.local.pending_approvals(stage=stage, name=name)

    def export_evidence(self, uri: str, out: Path | str, *, trust: Trust | None = None
                        ) -> Resolved:
        """Write a version's evidence to a new directory, verified here first."""
        return self._consistent(lambda: self.local.export_evidence(
            uri, out, trust=trust or self.pinned_trust))

    def verify_audit(self, *, deep: bool = False, checkpoint: Path | None = None,
                     sign_checkpoint: bool = False, full: bool = False) -> Any:
        """Verify the whole audit log here, from the server's rows (read-only)."""
        if sign_checkpoint:
            raise InputError("a client cannot sign a checkpoint",
                             hint="`mlprov audit checkpoint` against the server (admin)")
        return self.local.verify_audit(deep=deep, checkpoint=checkpoint, full=full)

    def decision(self, digest: str) -> bytes:
        """A signed decision's bytes, checked against its digest."""
        return self.local.decision(digest)

    def get_version(self, name: str, version: int) -> VersionRecord:
        """One version's record (as the server stores it; see :meth:`verify_version`)."""
        return self.local.get_version(name, version)

    def verify_version(self, name: str, version: int, *, deep: bool = False,
                       trust: Trust | None = None) -> Any:
        """Re-verify a stored version here, from the server's blobs."""
        return self.local.verify_version(name, version, deep=deep,
                                         trust=trust or self.pinned_trust)

    def iter_versions(self, name: str) -> Iterator[VersionRecord]:
        """Every version of ``name``."""
        return self.local.iter_versions(name)

    def alias_history(self, name: str, alias: str, *, at: str | None = None) -> Any:
        """Every accepted change of an alias, from the audit log's hashed bodies."""
        return self.local.alias_history(name, alias, at=at)

    def iter_alias_history(self, name: str, alias: str, *, at: str | None = None) -> Any:
        """:meth:`alias_history` as it is read."""
        return self.local.iter_alias_history(name, alias, at=at)

    def list_models(self) -> list[dict[str, Any]]:
        """Models this principal may read."""
        return self.local.list_models()

    def show_model(self, name: str, *, limit: int | None = None) -> dict[str, Any]:
        """A model's versions and aliases."""
        return self.local.show_model(name, limit=limit)

    def audit_log(self, *, since: int = 0, limit: int | None = None,
                  name: str | None = None) -> list[dict[str, Any]]:
        """Audit entries (parsed from the hashed bodies)."""
        return self.local.audit_log(since=since, limit=limit, name=name)

    def iter_audit_log(self, *, since: int = 0, limit: int | None = None,
                       name: str | None = None) -> Iterator[dict[str, Any]]:
        """:meth:`audit_log` as it is read."""
        return self.local.iter_audit_log(since=since, limit=limit, name=name)

    def events(self, *, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Events after id ``since`` (the server's view, with deliveries)."""
        _, document = self.transport.json("GET", "/api/v1/events", query={"since": since})
        events = document.get("events") if isinstance(document, dict) else None
        if not isinstance(events, list):
            raise MalformedResponseError("the server's events answer is malformed")
        return events[:limit] if limit is not None else events

    def list_deployments(self) -> list[dict[str, Any]]:
        """Deployment versions (not verified; :meth:`show_deployment` verifies)."""
        return self.local.list_deployments()

    def show_deployment(self, name: str, version: int | None = None) -> list[Any]:
        """Deployment versions, each with its signed spec verified here."""
        return self.local.show_deployment(name, version)

    def latest_checkpoint(self) -> bytes | None:
        """The latest signed checkpoint bundle."""
        return self.local.latest_checkpoint()

    def describe(self) -> dict[str, Any]:
        """The server, the registry's pinned id and key, and who this client is."""
        return {"home": self.url, "id": self.registry_id,
                "publicKey": self.info.get("publicKeyId"), "signing": self.info.get("signing"),
                "principal": self.info.get("principal"), "server": True}

    # ------------------------------------------------------------------ changes

    def register(self, model: Path | str, *, evidence: Path | str, actor: str | None = None,
                 reason: str | None = None) -> RegisterResult:
        """Upload a model and its evidence; the server verifies and registers it.

        The answer's registration decision must be signed by the pinned key and
        bind exactly the root digest hashed here.
        """
        from mlprov.hashing import hash_path

        del actor
        model_path, evidence_path = Path(model), Path(evidence)
        if not model_path.exists():
            raise InputError(f"model not found: {model_path}")
        if not evidence_path.is_dir():
            raise InputError(f"evidence directory not found: {evidence_path}")
        manifest = hash_path(model_path)
        before = self._head_seq()
        body = _TarStream(model_path, manifest, evidence_path)
        query: dict[str, Any] = {"reason": reason}
        if manifest.is_file:
            query["model_file"] = model_path.name
        try:
            _, document = self.transport.json(
                "POST", "/api/v1/models/register", query=query, body=body,
                headers={"Content-Type": "application/x-tar"})
        finally:
            body.close()  # a server that answered early: the writer thread stops too
        result = _register_result(document)
        if result.decision is None:
            raise MalformedResponseError("the server's registration names no decision")
        decision = self._verified_decision(result.decision, kinds={"model.register"},
                                           name=result.name, version=result.version,
                                           seq=result.seq, after=before if result.created
                                           else None, allowed=True)
        subject = decision.statement.subject_sha256()
        if subject != {manifest.root}:
            raise RegistryIntegrityError(
                f"the server registered {result.uri} with another root digest than "
                f"{model_path} has here (sha256:{manifest.root})")
        if result.root_digest != f"sha256:{manifest.root}":
            raise MalformedResponseError("the server's answer names another root digest than "
                                         "its signed decision")
        return result

    def promote(self, name: str, version: int, *, to: Any, reason: str,
                actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Ask the server to move a version to a stage; verify its signed decision."""
        del actor
        stage = str(getattr(to, "value", to))
        return self._change("POST", f"/api/v1/models/{quote_segment(name)}/versions/"
                                    f"{int(version)}/stage",
                            {"to": stage, "reason": reason, "dryRun": dry_run},
                            kinds={"stage.transition"}, name=name, version=version,
                            check=lambda c: _transition(c).get("to") == stage)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str,
                  actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Ask the server to point an alias at a version; verify its signed decision."""
        del actor
        return self._change("PUT", f"/api/v1/models/{quote_segment(name)}/aliases/"
                                   f"{quote_segment(alias)}",
                            {"version": version, "reason": reason, "dryRun": dry_run},
                            kinds={"alias.set"}, name=name, version=version,
                            check=lambda c: _transition(c).get("alias") == alias)

    def delete_alias(self, name: str, alias: str, *, reason: str, actor: str | None = None
                     ) -> ChangeResult:
        """Ask the server to remove an alias; verify its signed decision."""
        del actor
        return self._change("DELETE", f"/api/v1/models/{quote_segment(name)}/aliases/"
                                      f"{quote_segment(alias)}", {"reason": reason},
                            kinds={"alias.delete"}, name=name, version=None,
                            check=lambda c: _transition(c).get("alias") == alias)

    def rollback(self, name: str, alias: str, *, to: int | None = None, reason: str,
                 actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Ask the server to roll an alias back; verify its signed decision."""
        del actor
        return self._change("POST", f"/api/v1/models/{quote_segment(name)}/aliases/"
                                    f"{quote_segment(alias)}/rollback",
                            {"to": to, "reason": reason, "dryRun": dry_run},
                            kinds={"alias.rollback"}, name=name, version=to,
                            check=lambda c: _transition(c).get("alias") == alias)

    def add_review(self, name: str, version: int, review: Path | str, *,
                   actor: str | None = None, reason: str | None = None) -> ChangeResult:
        """Send a signed review to the server; verify its signed decision."""
        from mlprov._internal.readers import read_bytes

        del actor
        data = read_bytes(Path(review), what="review", limit=16 * 1024 * 1024)
        return self._change("POST", f"/api/v1/models/{quote_segment(name)}/versions/"
                                    f"{int(version)}/reviews", None,
                            kinds={"review.add"}, name=name, version=version, raw=data,
                            query={"reason": reason})

    # ------------------------------------------------------------------ settings (admin)

    def set_thresholds(self, thresholds: Any, *, reason: str, actor: str | None = None
                       ) -> ChangeResult:
        """Ask the server (admin) to replace the thresholds; verify the signed change.

        The decision must record exactly this set (its digest, computed here).
        """
        from mlprov.thresholds import Thresholds, parse_thresholds

        del actor
        wanted = thresholds if isinstance(thresholds, Thresholds) \
            else parse_thresholds(list(thresholds))
        expected = _digest(wanted.to_bytes())
        return self._setting("thresholds", {"thresholds": wanted.lines(), "reason": reason},
                             expected)

    def set_config(self, config: Path | str, *, reason: str, actor: str | None = None
                   ) -> ChangeResult:
        """Send a new ``mlprov.toml`` to the server (admin); verify the signed change."""
        from mlprov._internal.readers import MAX_CONFIG_BYTES, read_bytes

        del actor
        data = read_bytes(Path(config), what="registry config", limit=MAX_CONFIG_BYTES)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{config} is not UTF-8 text") from exc
        return self._setting("config", {"text": text, "reason": reason}, _digest(data))

    def set_policies(self, policies: Path | str | None, *, reason: str,
                     actor: str | None = None) -> ChangeResult:
        """Send a policies directory (None: the shipped ones) to the server (admin).

        The signed change must name a policies snapshot holding exactly the
        files sent (each file's digest checked against the snapshot's blob).
        """
        del actor
        if policies is None:
            return self._setting("policies", {"files": None, "reason": reason}, None)
        files = _policy_files(Path(policies))
        result = self._setting("policies", {"files": files, "reason": reason}, None)
        self._check_policies(str(result.details.get("to")), files)
        return result

    def set_trust(self, trust: Trust | Path | str, *, reason: str, actor: str | None = None
                  ) -> ChangeResult:
        """Send a trust (file, loaded here with its keys) to the server (admin).

        The decision must record exactly this trust plus the registry's own key
        (its digest, computed here with the pinned key).
        """
        import json

        from mlprov.registry import trust_snapshot
        from mlprov.trust import Trust as _Trust
        from mlprov.trust import load_trust

        del actor
        loaded = trust if isinstance(trust, _Trust) else load_trust(Path(trust))
        pem = self.info.get("publicKey")
        key = _public_key(pem) if self.info.get("signing") == "key" and \
            isinstance(pem, str) else None
        expected = _digest(trust_snapshot(loaded, registry_key=key))
        document = json.loads(trust_snapshot(loaded))  # our own canonical JSON
        return self._setting("trust", {"trust": document, "reason": reason}, expected)

    def _setting(self, key: str, document: dict[str, Any], expected: str | None
                 ) -> ChangeResult:
        def check(change: dict[str, Any]) -> bool:
            return expected is None or change.get("to") == expected

        return self._change("PUT", f"/api/v1/registry/{key}", document,
                            kinds={f"registry.{key}"}, name="", version=None, check=check)

    def _check_policies(self, digest: str, files: dict[str, str]) -> None:
        """The snapshot the signed change names holds exactly ``files``."""
        from mlprov.canonical import loads_strict

        try:
            snapshot = loads_strict(self.local.blobs.get_bytes(digest),
                                    what="the policies snapshot")
            stored = snapshot["files"]
        except (MlprovError, KeyError, TypeError) as exc:
            raise RegistryIntegrityError(f"the server's policies snapshot {digest} is "
                                         f"unusable: {exc}") from exc
        sent = {name: _digest(text.encode("utf-8")) for name, text in files.items()}
        if stored != sent:
            raise RegistryIntegrityError("the server's signed policies are not the files "
                                         "sent")

    def create_deployment(self, name: str, models: list[str], *, reason: str,
                          actor: str | None = None) -> ChangeResult:
        """Ask the server to create a deployment version; verify its signed decision."""
        del actor
        return self._change("POST", f"/api/v1/deployments/{quote_segment(name)}",
                            {"models": list(models), "reason": reason},
                            kinds={"deployment.create"}, name=name, version=None)

    def promote_deployment(self, name: str, version: int, *, to: Any, reason: str,
                           actor: str | None = None) -> ChangeResult:
        """Ask the server to move a deployment version; verify its signed decision."""
        del actor
        stage = str(getattr(to, "value", to))
        return self._change("POST", f"/api/v1/deployments/{quote_segment(name)}/"
                                    f"{int(version)}/stage", {"to": stage, "reason": reason},
                            kinds={"deployment.transition"}, name=name, version=version)

    def set_deployment_alias(self, name: str, alias: str, version: int, *, reason: str,
                             actor: str | None = None, dry_run: bool = False) -> ChangeResult:
        """Ask the server to point a deployment alias; verify its signed decision."""
        del actor
        return self._change("PUT", f"/api/v1/deployments/{quote_segment(name)}/aliases/"
                                   f"{quote_segment(alias)}",
                            {"version": version, "reason": reason, "dryRun": dry_run},
                            kinds={"deployment.alias.set"}, name=name, version=version,
                            check=lambda c: _transition(c).get("alias") == alias)

    def delete_deployment_alias(self, name: str, alias: str, *, reason: str,
                                actor: str | None = None) -> ChangeResult:
        """Ask the server to remove a deployment alias; verify its signed decision."""
        del actor
        return self._change("DELETE", f"/api/v1/deployments/{quote_segment(name)}/aliases/"
                                      f"{quote_segment(alias)}", {"reason": reason},
                            kinds={"deployment.alias.delete"}, name=name, version=None,
                            check=lambda c: _transition(c).get("alias") == alias)

    # ------------------------------------------------------------------ the catalog

    def _catalog(self, method: str, path: str, document: dict[str, Any], kind: str,
                 name: str, version: int | None) -> ChangeResult:
        return self._change(method, f"/api/v1/models/{quote_segment(name)}{path}", document,
                            kinds={kind}, name=name, version=version)

    def set_description(self, name: str, text: str, *, version: int | None = None,
                        reason: str | None = None, actor: str | None = None) -> ChangeResult:
        """Ask the server to set a description; verify its signed decision."""
        del actor
        return self._catalog("PUT", "/description", {"text": text, "version": version,
                                                     "reason": reason},
                             "model.describe" if version is None else "version.describe",
                             name, version)

    def set_tag(self, name: str, key: str, value: str = "", *, version: int | None = None,
                reason: str | None = None, actor: str | None = None) -> ChangeResult:
        """Ask the server to set a tag; verify its signed decision."""
        del actor
        return self._catalog("POST", "/tags", {"key": key, "value": value,
                                               "version": version, "reason": reason},
                             "model.tag" if version is None else "version.tag", name,
                             version)

    def delete_tag(self, name: str, key: str, *, version: int | None = None,
                   reason: str | None = None, actor: str | None = None) -> ChangeResult:
        """Ask the server to remove a tag; verify its signed decision."""
        del actor
        return self._catalog("DELETE", "/tags", {"key": key, "version": version,
                                                 "reason": reason},
                             "model.tag" if version is None else "version.tag", name,
                             version)

    def rename_model(self, name: str, new_name: str, *, reason: str | None = None,
                     actor: str | None = None) -> ChangeResult:
        """Ask the server to rename a model; verify its signed decision (about the new name)."""
        del actor
        return self._change("POST", f"/api/v1/models/{quote_segment(name)}/rename",
                            {"newName": new_name, "reason": reason}, kinds={"model.rename"},
                            name=new_name, version=None,
                            check=lambda c: c.get("from") == name and c.get("to") == new_name)

    def delete_model(self, name: str, *, reason: str | None = None,
                     actor: str | None = None) -> ChangeResult:
        """Ask the server to delete a model (a tombstone); verify its signed decision."""
        del actor
        return self._change("DELETE", f"/api/v1/models/{quote_segment(name)}",
                            {"reason": reason}, kinds={"model.delete"}, name=name,
                            version=None)

    def delete_version(self, name: str, version: int, *, reason: str,
                       actor: str | None = None) -> ChangeResult:
        """Ask the server to delete a version (a tombstone); verify its signed decision."""
        del actor
        return self._change("DELETE", f"/api/v1/models/{quote_segment(name)}/versions/"
                                      f"{int(version)}", {"reason": reason},
                            kinds={"version.delete"}, name=name, version=version)

    def model_info(self, name: str) -> Any:
        """A model's description, tags and aliases (rows the audit log vouches for)."""
        return self.local.model_info(name)

    def version_info(self, name: str, version: int) -> Any:
        """A version's description, tags, aliases and indexed metrics."""
        return self.local.version_info(name, version)

    def search_models(self, filter: str | None = None, *,
                      order_by: str | list[str] | None = None, limit: int = 100,
                      page_token: str | None = None) -> Any:
        """One page of the server's search (its word: pull what you use)."""
        from mlprov.registry import ModelInfo, Page

        document = self._search("/api/v1/search/models", filter, order_by, limit,
                                page_token, None)
        items = tuple(_model_info(d, ModelInfo) for d in _list(document, "models"))
        return Page(items=items, next_page_token=_token(document))

    def search_versions(self, name: str | None = None, *, filter: str | None = None,
                        order_by: str | list[str] | None = None, limit: int = 100,
                        page_token: str | None = None) -> Any:
        """One page of the server's version search (its word: pull what you use)."""
        from mlprov.registry import Page, VersionInfo

        document = self._search("/api/v1/search/versions", filter, order_by, limit,
                                page_token, name)
        items = tuple(_version_info(d, VersionInfo) for d in _list(document, "versions"))
        return Page(items=items, next_page_token=_token(document))

    def _search(self, path: str, filter_text: str | None, order_by: str | list[str] | None,
                limit: int, page_token: str | None, name: str | None) -> Any:
        order = [order_by] if isinstance(order_by, str) else list(order_by or [])
        target = self.transport.target(path, {"filter": filter_text, "limit": limit,
                                              "page_token": page_token, "name": name})
        from urllib.parse import urlencode

        if order:
            target += ("&" if "?" in target else "?") + urlencode([("order_by", o)
                                                                   for o in order])
        prefix = self.transport.url.prefix
        _, document = self.transport.json("GET", target[len(prefix):])
        return document

    def checkpoint(self, *, deep: bool = False) -> tuple[Any, bytes]:
        """Ask the server (admin) to sign a checkpoint; verify it with the pinned key."""
        import base64

        from mlprov.bundles import verify_statement_bytes
        from mlprov.trust import Role

        del deep
        _, document = self.transport.json("POST", "/api/v1/audit/checkpoint", document={})
        try:
            bundle = base64.b64decode(document["checkpoint"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise MalformedResponseError("the server's checkpoint answer is malformed") from None
        verify_statement_bytes(bundle, self.anchor, Role.REGISTRY, what="the checkpoint")
        report = self.verify_audit()
        return report, bundle

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not hasattr(Registry, name):
            raise AttributeError(name)
        raise InputError(f"{name} is not offered by a registry server",
                         hint="run it on the server's host against the registry itself")

    # ------------------------------------------------------------------ checking answers

    def _head_seq(self) -> int:
        return int(self.head().seq)

    def _change(self, method: str, path: str, document: dict[str, Any] | None, *,
                kinds: set[str], name: str, version: int | None,
                check: Callable[[dict[str, Any]], bool] | None = None, raw: bytes | None = None,
                query: dict[str, Any] | None = None) -> ChangeResult:
        before = self._head_seq()
        if raw is not None:
            status, answer = self.transport.json(method, path, body=raw, query=query,
                                                 headers={"Content-Type": "application/json"},
                                                 allow=(422,))
        else:
            status, answer = self.transport.json(method, path, document=document, query=query,
                                                 allow=(422,))
        if status == 422:
            result_doc = answer.get("result") if isinstance(answer, dict) else None
            if result_doc is None:
                from mlprov.server._http_errors import error_from_answer

                raise error_from_answer(status, answer, what=f"{method} {path}")
            result = self._checked_result(result_doc, kinds, name, version, check, before,
                                          allowed=False)
            from mlprov.server._http_errors import denial_from_answer

            error = answer["error"]
            raise denial_from_answer(str(error.get("message")), error.get("hint"), result)
        return self._checked_result(answer, kinds, name, version, check, before,
                                    allowed=None)

    def _checked_result(self, document: Any, kinds: set[str], name: str, version: int | None,
                        check: Callable[[dict[str, Any]], bool] | None, before: int,
                        allowed: bool | None) -> ChangeResult:
        result = _change_result(document)
        if result.dry_run:
            # Nothing was signed: a dry run's answer is the server's word (docs/server.md).
            return result
        if result.name != name or (version is not None and result.version != version):
            raise RegistryIntegrityError(f"the server answered about {result.name} "
                                         f"v{result.version}, not what was asked")
        if allowed is not None and result.allowed != allowed:
            raise MalformedResponseError("the server's answer contradicts its status")
        decision = self._verified_decision(result.decision, kinds=kinds, name=name,
                                           version=result.version, seq=result.seq,
                                           after=before, allowed=result.allowed)
        change = decision.statement.predicate.get(_CHANGE_FIELD)
        assert isinstance(change, dict)
        if check is not None and not check(change):
            raise RegistryIntegrityError("the server's signed decision is about another "
                                         "stage or alias than the one asked")
        return result

    def _verified_decision(self, digest: str, *, kinds: set[str], name: str,
                           version: int | None, seq: int | None, after: int | None,
                           allowed: bool) -> Any:
        """Verify the decision ``digest`` names (see the module docstring, Changes)."""
        from mlprov.bundles import verify_statement_bytes
        from mlprov.trust import Role

        data = self.local.decision(digest)  # fetched and checked against its digest
        try:
            decision = verify_statement_bytes(data, self.anchor, Role.REGISTRY,
                                              what="the server's decision",
                                              predicate_type=_VSA)
        except MlprovError as exc:
            raise RegistryIntegrityError(f"the server's decision does not verify with the "
                                         f"pinned registry key: {exc}") from exc
        predicate = decision.statement.predicate
        change = predicate.get(_CHANGE_FIELD)
        problems = []
        if not isinstance(change, dict):
            raise RegistryIntegrityError("the server's decision records no change")
        if change.get("kind") not in kinds:
            problems.append(f"it records a {change.get('kind')} change")
        if change.get("name") != (name or None):  # "": a change of the registry's settings
            problems.append(f"it is about {change.get('name')!r}")
        if version is not None and change.get("version") != version:
            problems.append(f"it is about version {change.get('version')}")
        if change.get("registry") != self.registry_id:
            problems.append("it was made by another registry")
        if (predicate.get("verificationResult") == "PASSED") != allowed:
            problems.append("its outcome is not the one the server reported")
        audit_seq = change.get("auditSeq")
        if not isinstance(audit_seq, int) or (seq is not None and audit_seq != seq):
            problems.append("it names another audit entry")
        elif after is not None and audit_seq <= after:
            problems.append(f"it is older than the registry's head before the request "
                            f"(entry {audit_seq} <= {after}): a replayed decision")
        if problems:
            raise RegistryIntegrityError(f"the server's decision does not match the request: "
                                         f"{'; '.join(problems)}")
        assert isinstance(audit_seq, int)
        self._check_in_log(digest, audit_seq)
        return decision

    def _check_in_log(self, digest: str, seq: int) -> None:
        """The signed head covers entry ``seq``, and that entry holds the decision."""
        def check() -> None:
            head = self.local.head(anchor=self.pinned_trust)
            if head.seq < seq:
                raise RegistryIntegrityError(f"the registry's signed head (entry {head.seq}) "
                                             f"does not cover the decision's entry {seq}")
            with self.local.metadata.read() as tx:
                entry = tx.audit_entry(seq)
            if entry is None or entry.decision != digest:
                raise RegistryIntegrityError(f"audit entry {seq} does not hold the server's "
                                             "decision")
            body_hash = "sha256:" + hashlib.sha256(entry.body).hexdigest()
            if body_hash != entry.entry_hash:
                raise RegistryIntegrityError(f"audit entry {seq} does not hash to its hash")

        self._consistent(check)


def _public_key(pem: str) -> Any:
    """The server's registry public key (PEM), parsed in memory.

    Raises:
        MalformedResponseError: not a supported PEM public key.
    """
    from cryptography.hazmat.primitives import serialization

    from mlprov.signing import PublicKey

    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
        return PublicKey.from_key(key)
    except (ValueError, TypeError, UnicodeError, MlprovError) as exc:
        raise MalformedResponseError("the server's registry public key is unusable") from exc


def _list(document: Any, key: str) -> list[Any]:
    found = document.get(key) if isinstance(document, dict) else None
    if not isinstance(found, list) or not all(isinstance(d, dict) for d in found):
        raise MalformedResponseError(f"the server's search answer has malformed {key}")
    return found


def _token(document: Any) -> str | None:
    token = document.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise MalformedResponseError("the server's search answer has a malformed page token")
    return token


def _model_info(d: dict[str, Any], cls: Any) -> Any:
    tags, aliases = _field(d, "tags", dict), _field(d, "aliases", dict)
    return cls(name=_field(d, "name", str), created_at=_field(d, "createdAt", str),
               latest_version=_field(d, "latestVersion", int),
               description=_field(d, "description", str, optional=True),
               tags={str(k): str(v) for k, v in tags.items()},
               aliases={str(k): int(v) for k, v in aliases.items()})


def _version_info(d: dict[str, Any], cls: Any) -> Any:
    from mlprov.registry import Stage

    try:
        stage = Stage(_field(d, "stage", str))
    except ValueError:
        raise MalformedResponseError("the server's search answer has an unknown stage") \
            from None
    tags, metrics = _field(d, "tags", dict), _field(d, "metrics", dict)
    return cls(name=_field(d, "name", str), version=_field(d, "version", int), stage=stage,
               identity=_field(d, "identity", str), root_digest=_field(d, "rootDigest", str),
               reproducible=_field(d, "reproducible", bool),
               created_at=_field(d, "createdAt", str),
               registration=_field(d, "registration", str),
               stage_decision=_field(d, "stageDecision", str, optional=True),
               description=_field(d, "description", str, optional=True),
               tags={str(k): str(v) for k, v in tags.items()},
               aliases=tuple(str(a) for a in _field(d, "aliases", list)),
               metrics={str(k): float(v) for k, v in metrics.items()})


def _no_archived(allow_archived: bool) -> None:
    if allow_archived:
        raise InputError("--allow-archived is not offered by a registry server",
                         hint="name the version itself (models:/NAME/N), which is never "
                              "refused for being Archived")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


#: What a policies directory may hold (the registry's own rule: mlprov.registry._home).
_POLICY_SUFFIXES = (".rego", ".yaml", ".yml", ".json")
_MAX_POLICY_FILE = 4 * 1024 * 1024


def _policy_files(directory: Path) -> dict[str, str]:
    """A policies directory's files (relative POSIX path -> text), as the registry takes them.

    Raises:
        InputError: not a directory, a symlink in it, a file too large or not UTF-8.
    """
    from mlprov._internal.readers import read_bytes

    if not directory.is_dir():
        raise InputError(f"policies directory not found: {directory}")
    files: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        if path.is_symlink():
            raise InputError(f"policies directory holds a symlink: {rel}")
        if path.is_file() and path.suffix in _POLICY_SUFFIXES:
            data = read_bytes(path, what="policy file", limit=_MAX_POLICY_FILE)
            try:
                files[rel] = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"policy file {path} is not UTF-8 text") from exc
    return files


def _transition(change: dict[str, Any]) -> dict[str, Any]:
    transition = change.get("transition")
    return transition if isinstance(transition, dict) else {}


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a private temporary sibling, renamed)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _field(document: dict[str, Any], key: str, kind: Any, *, optional: bool = False) -> Any:
    value = document.get(key)
    if value is None and optional:
        return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise MalformedResponseError(f"the server's answer has a malformed {key!r}")
    return value


def _register_result(document: Any) -> RegisterResult:
    if not isinstance(document, dict):
        raise MalformedResponseError("the server's registration answer is malformed")
    same = _field(document, "sameIdentityAs", list)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in same):
        raise MalformedResponseError("the server's answer has a malformed 'sameIdentityAs'")
    return RegisterResult(
        name=_field(document, "name", str), version=_field(document, "version", int),
        identity=_field(document, "identity", str),
        root_digest=_field(document, "rootDigest", str),
        created=_field(document, "created", bool),
        reproducible=_field(document, "reproducible", bool), same_identity=tuple(same),
        decision=_field(document, "decision", str, optional=True),
        seq=_field(document, "auditSeq", int, optional=True))


def _change_result(document: Any) -> ChangeResult:
    if not isinstance(document, dict):
        raise MalformedResponseError("the server's answer is malformed")
    policy = _field(document, "policy", dict)
    deny = _field(document, "deny", list)
    warn = _field(document, "warn", list)
    if not all(isinstance(m, str) for m in [*deny, *warn]):
        raise MalformedResponseError("the server's answer has malformed messages")
    dry_run = _field(document, "dryRun", bool)
    return ChangeResult(
        kind=_field(document, "kind", str), name=_field(document, "name", str),
        version=_field(document, "version", int, optional=True),
        target=_field(document, "target", str, optional=True),
        allowed=_field(document, "allowed", bool), deny=tuple(deny), warn=tuple(warn),
        policy_uri=_field(policy, "uri", str), policy_digest=_field(policy, "digest", str),
        decision=_field(document, "decision", str, optional=dry_run) or "",
        seq=_field(document, "auditSeq", int, optional=dry_run) or 0,
        previous=document.get("previous"),
        details=_field(document, "details", dict), dry_run=dry_run)


class _TarStream(io.RawIOBase):
    """An uncompressed tar of the model's files and the evidence, made as it is read.

    Written by a thread into a pipe, so a model of any size is sent without
    a temporary copy: only the files the model's manifest names (what the
    registry will hash), and every regular file of the evidence directory.
    """

    def __init__(self, model: Path, manifest: Any, evidence: Path) -> None:
        super().__init__()
        read_fd, write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "rb")
        self.error: BaseException | None = None
        entries: list[tuple[str, Path]] = []
        if manifest.is_file:
            entries.append((f"model/{model.name}", model))
        else:
            entries += [(f"model/{f.path}", model / f.path) for f in manifest.files]
        for path in sorted(evidence.rglob("*")):
            if path.is_symlink():
                raise InputError(f"evidence file {path} is a symlink",
                                 hint="evidence directories hold regular files only")
            if path.is_file():
                entries.append((f"evidence/{path.relative_to(evidence).as_posix()}", path))

        def write() -> None:
            try:
                with os.fdopen(write_fd, "wb") as out, \
                        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for name, path in entries:
                        info = tar.gettarinfo(str(path), arcname=name)
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        info.mode = 0o644
                        with open(path, "rb") as handle:
                            tar.addfile(info, handle)
            except BaseException as exc:  # the reader sees a short stream; say why
                self.error = exc

        self._thread = threading.Thread(target=write, daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._reader.read(size if size and size > 0 else 1024 * 1024)
        if not data:
            self._thread.join()
            if self.error is not None:
                raise InputError(f"cannot read the model to upload: {self.error}")
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._reader.close()
        super().close()
