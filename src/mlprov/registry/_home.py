"""The registry directory: where it is, what it holds, and the snapshots it keeps.

Layout of a registry (``--registry DIR``, else ``$MLPROV_HOME``, else ``~/.mlprov``)::

    mlprov.toml             gates and hooks (pinned by digest; audited changes)
    registry.db             SQLite metadata (WAL mode)
    keys/registry.key       the registry's signing key (0600) and .pub (none when keyless)
    blobs/sha256/ab/<hex>   content-addressed files, evidence, decisions
    policies/<hex>/         the accepted policies, materialised read-only
    head.json               the last signed checkpoint of the audit log
    checkouts/              verified copies handed out by mlprov.load

The trust file and the policies are stored as snapshots (canonical JSON blobs
naming every key or file by content), so a later change is a new snapshot and
an audit entry, never an edit in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.canonical import canonical_json, loads_strict
from mlprov.errors import InputError
from mlprov.registry.interface import BlobStore, StoreError
from mlprov.registry.interface import NotFoundError as _NotFound

if TYPE_CHECKING:
    from mlprov.signing import PublicKey
    from mlprov.trust import Trust

__all__ = [
    "CONFIG_FILE",
    "DB_FILE",
    "HOME_ENV",
    "KEY_FILE",
    "default_home",
    "load_trust_snapshot",
    "materialize_policies",
    "policies_snapshot",
    "resolve_home",
    "trust_snapshot",
    "trust_snapshot_of",
    "write_file_atomically",
]

HOME_ENV = "MLPROV_HOME"
CONFIG_FILE = "mlprov.toml"
DB_FILE = "registry.db"
KEY_FILE = Path("keys") / "registry.key"
HEAD_FILE = "head.json"
TRUST_SCHEMA = "https://mlprov.dev/schemas/registry-trust/v1"
POLICIES_SCHEMA = "https://mlprov.dev/schemas/registry-policies/v1"
#: The name the registry's own key has in its trust snapshot.
REGISTRY_SIGNER = "registry"
_MAX_POLICY_FILE = 4 * 1024 * 1024
_POLICY_SUFFIXES = (".rego", ".yaml", ".yml", ".json")


def default_home() -> Path:
    """``$MLPROV_HOME`` if set, else ``~/.mlprov``."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".mlprov"


def resolve_home(home: Path | str | None) -> Path:
    """The registry directory for ``--registry`` (None: :func:`default_home`)."""
    return Path(home).expanduser() if home is not None else default_home()


def require_registry(home: Path) -> None:
    """Refuse a directory that holds no registry.

    Raises:
        NotFoundError: with a hint to run ``mlprov registry init``.
    """
    if not (home / DB_FILE).is_file():
        raise _NotFound(f"no registry at {home}",
                        hint="create one with `mlprov registry init --trust TRUST_FILE` "
                             f"(location: --registry DIR, else ${HOME_ENV}, else ~/.mlprov)")


# --------------------------------------------------------------------------- trust


def trust_snapshot(trust_file: Path, registry_key: PublicKey | None) -> bytes:
    """Load and check a trust file; return its snapshot with the registry's key added.

    The registry's own key is trusted with the ``registry`` role (decisions and
    checkpoints), under the name ``registry``, unless the file already gives
    that key the role. A keyless registry (``registry_key`` None) adds nothing:
    its Sigstore identity holds the role through a ``sigstore`` rule of the file.

    Raises:
        TrustError, KeyMaterialError: an unusable trust file.
    """
    from mlprov.trust import load_trust

    return trust_snapshot_of(load_trust(trust_file), trust_file.name, registry_key)


def trust_snapshot_of(trust: Trust, source: str, registry_key: PublicKey | None) -> bytes:
    """The snapshot of a loaded trust (see :func:`trust_snapshot`), named ``source``."""
    from mlprov.trust import Role

    keys = [{"name": k.name, "roles": sorted(r.value for r in k.roles),
             "publicKey": k.key.pem.decode("ascii")} for k in trust.keys]
    if registry_key is not None and not any(
            k.key.keyid == registry_key.keyid and Role.REGISTRY in k.roles for k in trust.keys):
        name = REGISTRY_SIGNER
        while any(k["name"] == name for k in keys):
            name = "_" + name
        keys.append({"name": name, "roles": [Role.REGISTRY.value],
                     "publicKey": registry_key.pem.decode("ascii")})
    document: dict[str, Any] = {"schema": TRUST_SCHEMA, "source": source, "keys": keys}
    if trust.sigstore:  # keyless signers, and the Sigstore root they chain to, self-contained
        document["sigstore"] = [rule.to_json_dict() for rule in trust.sigstore]
        if isinstance(trust.trusted_root, Path):
            document["trustedRoot"] = loads_strict(trust.trusted_root.read_bytes(),
                                                   what=str(trust.trusted_root))
        elif isinstance(trust.trusted_root, bytes):
            document["trustedRoot"] = loads_strict(trust.trusted_root, what="trusted root")
    return canonical_json(document)


def load_trust_snapshot(data: bytes, *, source: str) -> Trust:
    """Rebuild a :class:`Trust` from a snapshot blob.

    Raises:
        StoreError: the snapshot is malformed.
    """
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from mlprov.signing import PublicKey
    from mlprov.trust import IdentityRule, Role, Trust, TrustedKey

    try:
        document = loads_strict(data, what="trust snapshot")
        if not isinstance(document, dict) or document.get("schema") != TRUST_SCHEMA:
            raise InputError("unknown schema")
        keys = []
        for entry in document["keys"]:
            key = PublicKey.from_key(load_pem_public_key(entry["publicKey"].encode("ascii")))
            keys.append(TrustedKey(name=entry["name"], key=key,
                                   roles=frozenset(Role(r) for r in entry["roles"])))
        rules = tuple(IdentityRule.from_json_dict(r) for r in document.get("sigstore", []))
        root = (canonical_json(document["trustedRoot"]) if "trustedRoot" in document
                else None)
    except (InputError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"the registry's trust snapshot is unusable: {exc}") from exc
    return Trust(keys=tuple(keys), source=source, sigstore=rules, trusted_root=root)


# --------------------------------------------------------------------------- policies


def _policy_files(directory: Path) -> Iterator[tuple[str, Path]]:
    from mlprov.hashing import check_relative_path  # not on a read command's path

    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        if path.is_symlink():
            raise InputError(f"policies directory holds a symlink: {rel}")
        if path.is_file() and path.suffix in _POLICY_SUFFIXES:
            yield check_relative_path(rel), path


def policies_snapshot(directory: Path, blobs: BlobStore) -> bytes:
    """Store every policy and data file of ``directory`` as blobs; return the snapshot.

    Raises:
        InputError: no ``.rego`` file, an unreadable or oversized file, a symlink.
    """
    if not directory.is_dir():
        raise InputError(f"policies directory not found: {directory}")
    files: dict[str, str] = {}
    for rel, path in _policy_files(directory):
        if path.stat().st_size > _MAX_POLICY_FILE:
            raise InputError(f"policy file {path} is too large")
        files[rel] = blobs.put_file(path).digest
    if not any(rel.endswith(".rego") for rel in files):
        raise InputError(f"no .rego policy in {directory}",
                         hint="pass --policies DIR holding the Rego policies the gates name")
    return canonical_json({"schema": POLICIES_SCHEMA, "files": files})


def policy_file_digests(snapshot: bytes) -> dict[str, str]:
    """The files of a policies snapshot: relative path -> digest.

    Raises:
        StoreError: malformed snapshot.
    """
    from mlprov.hashing import check_relative_path  # not on a read command's path

    try:
        document = loads_strict(snapshot, what="policies snapshot")
        if not isinstance(document, dict) or document.get("schema") != POLICIES_SCHEMA:
            raise InputError("unknown schema")
        files = document["files"]
        if not isinstance(files, dict):
            raise InputError("files is not an object")
        return {check_relative_path(str(k)): str(v) for k, v in files.items()}
    except (InputError, KeyError) as exc:
        raise StoreError(f"the registry's policies snapshot is unusable: {exc}") from exc


def materialize_policies(home: Path, snapshot_digest: str, snapshot: bytes,
                         blobs: BlobStore) -> Path:
    """The read-only directory holding a policies snapshot, checked file by file.

    A missing or damaged copy is rebuilt from the blobs (whose digests are
    checked on read), so the policies evaluated are exactly the snapshot.
    """
    import hashlib

    files = policy_file_digests(snapshot)
    target = home / "policies" / snapshot_digest.removeprefix("sha256:")
    if target.is_dir():
        try:
            on_disk = {rel: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
                       for rel, p in _policy_files(target)}
        except (OSError, InputError):
            on_disk = {}
        if on_disk == files:
            return target
        _remove_tree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".policies-", dir=target.parent))
    try:
        for rel, digest in files.items():
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            blobs.copy_to(digest, dest)
            os.chmod(dest, 0o444)
        with contextlib.suppress(FileExistsError, OSError):
            os.rename(staging, target)
    finally:
        if staging.exists():
            _remove_tree(staging)
    return target


def _remove_tree(path: Path) -> None:
    def writable(func: Any, p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(p, stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR)
            func(p)

    shutil.rmtree(path, onerror=writable)


def write_file_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all: a fresh temporary file, fsync'd, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a stale one from a crashed run: never reuse its mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
