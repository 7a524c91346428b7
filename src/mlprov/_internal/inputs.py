"""A model version's identity inputs, without pydantic.

:mod:`mlprov.identity` keeps the public models (``CodeRef``, ``DataRef``,
``IdentityInputs``): they validate what mlprov reads. This module holds their
pydantic-free twins for the write path (``mlprov attest`` need not import pydantic,
issue 16) and the rules both share: the commit, digest and dataset-name forms,
``code_from_commit``, ``code_from_repo`` and ``parse_data_spec`` (identity.py wraps
these in the models), and the identity hash itself.

The twins take *plain* values only: ``str`` for text, ``int`` (not ``bool``) for
seeds, ``bool`` for ``dirty``, a list or tuple of :class:`Dataset`, dicts keyed by
``str``, each of exactly that type. On plain values they accept, refuse and word
refusals exactly as the models do (pydantic's first error, the same text). The
models also take values they coerce in lax mode (``seeds={"a": "5"}``,
``dirty="yes"``, ``b"..."`` for text); the twins refuse those (fail closed) rather
than copy pydantic's coercions, so a caller that may hold such values asks the
model (:mod:`mlprov._internal.provenance_reader` does, for documents it reads).
Everything mlprov itself builds inputs from is plain: a commit string, datasets
from :func:`parse_data_spec`, configs from ``load_configs``, seeds from
``parse_seed``. ``tests/test_inputs.py`` holds twins and models to the same answers
(hypothesis, hostile values included).

The model of a twin is ``IdentityInputs.model_validate(inputs, from_attributes=True)``;
the twin of a model is :meth:`Inputs.from_model`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlprov._internal.display import validator_words
from mlprov.canonical import canonical_json
from mlprov.errors import IdentityError, InputError
from mlprov.hashing import hash_path

__all__ = [
    "COMMIT",
    "DATA_NAME",
    "IDENTITY_PREFIX",
    "SHA256_HEX",
    "Code",
    "Dataset",
    "Inputs",
    "InputsRefused",
    "code_from_commit",
    "code_from_repo",
    "commit_problem",
    "compute_identity",
    "digest_problem",
    "duplicate_names",
    "normalise_remote",
    "parse_data_spec",
]

IDENTITY_PREFIX = "mlid:sha256:"
COMMIT = re.compile(r"\A(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
SHA256_HEX = re.compile(r"\A[0-9a-f]{64}\Z")
DATA_NAME = re.compile(r"\A[A-Za-z0-9_.:-]+\Z")


class InputsRefused(InputError):
    """Identity inputs a twin refuses, worded as ``attestation.make_inputs`` does.

    ``loc`` and ``msg`` are pydantic's first error where the model refuses the
    same values (the location relative to the object being built).
    """

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(f"identity inputs: {validator_words(msg)}")
        self.loc = loc
        self.msg = msg


# -- the rules the models and the twins share -----------------------------------------------

def commit_problem(commit: str) -> str | None:
    """Why ``commit`` is not a full git commit id (the model's validator text), else None."""
    return None if COMMIT.match(commit) else f"not a full git commit id: {commit!r}"


def digest_problem(digest: str) -> str | None:
    """Why ``digest`` is not ``sha256:<64 hex>`` (the model's validator text), else None."""
    if digest.startswith("sha256:") and SHA256_HEX.match(digest[7:]):
        return None
    return f"dataset digest must be sha256:<64 hex>, got {digest!r}"


_DUPLICATE_NAMES = "two datasets share a name"


def duplicate_names(names: Iterable[str]) -> str | None:
    """Why datasets named ``names`` cannot go together (the model's validator text)."""
    listed = list(names)
    return _DUPLICATE_NAMES if len(set(listed)) != len(listed) else None


def _unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate).

    pydantic-core requires it of a constrained string (``Field(min_length=1)``).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain_text(value: object) -> bool:
    return type(value) is str


def _refuse_kind(loc: tuple[str | int, ...], value: object, kind: str) -> InputsRefused:
    return InputsRefused(loc, f"{'.'.join(map(str, loc))} must be {kind} "
                              f"(got {type(value).__name__})")


# -- the twins -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Code:
    """The training code (twin of ``CodeRef``): a git commit, its remote, dirtiness."""

    commit: str
    uri: str | None = None
    dirty: bool = False

    def __post_init__(self) -> None:
        if not _plain_text(self.commit):
            raise _refuse_kind(("commit",), self.commit, "a str")
        if self.uri is not None and not _plain_text(self.uri):
            raise _refuse_kind(("uri",), self.uri, "a str or None")
        if type(self.dirty) is not bool:
            raise _refuse_kind(("dirty",), self.dirty, "a bool")
        problem = commit_problem(self.commit)
        if problem is not None:
            raise InputsRefused(("commit",), f"Value error, {problem}")

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form, as ``CodeRef.to_json_dict`` (no ``uri`` when there is none)."""
        document: dict[str, Any] = {"commit": self.commit}
        if self.uri is not None:
            document["uri"] = self.uri
        document["dirty"] = self.dirty
        return document


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset by name and content digest ``sha256:<hex>`` (twin of ``DataRef``)."""

    name: str
    digest: str
    uri: str | None = None

    def __post_init__(self) -> None:
        if not _plain_text(self.name):
            raise _refuse_kind(("name",), self.name, "a str")
        if not _plain_text(self.digest):
            raise _refuse_kind(("digest",), self.digest, "a str")
        if self.uri is not None and not _plain_text(self.uri):
            raise _refuse_kind(("uri",), self.uri, "a str or None")
        # pydantic's order: the name's own checks, then the digest's validator.
        if not _unicode(self.name):
            raise InputsRefused(("name",), "Input should be a valid string, unable to parse "
                                           "raw data as a unicode string")
        if not self.name:
            raise InputsRefused(("name",), "String should have at least 1 character")
        problem = digest_problem(self.digest)
        if problem is not None:
            raise InputsRefused(("digest",), f"Value error, {problem}")

    @property
    def sha256(self) -> str:
        """The hex digest."""
        return self.digest.removeprefix("sha256:")


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a version identity is derived from (twin of ``IdentityInputs``).

    ``data`` is kept sorted by name (a list is taken too); ``config`` and ``seeds``
    are copied (their values are not: a config value is any JSON value).
    """

    code: Code
    data: tuple[Dataset, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if type(self.code) is not Code:
            raise _refuse_kind(("code",), self.code, "a Code")
        data: Any = self.data
        if type(data) not in (tuple, list) or any(type(d) is not Dataset for d in data):
            raise _refuse_kind(("data",), data, "a list of Dataset")
        for where, mapping in (("config", self.config), ("seeds", self.seeds)):
            if type(mapping) is not dict or not all(_plain_text(k) for k in mapping):
                raise _refuse_kind((where,), mapping, "a dict with str keys")
        if not all(type(v) is int for v in self.seeds.values()):
            raise _refuse_kind(("seeds",), self.seeds, "a dict of int (not bool) values")
        problem = duplicate_names(d.name for d in data)
        if problem is not None:
            raise InputsRefused(("data",), f"Value error, {problem}")
        object.__setattr__(self, "data", tuple(sorted(data, key=lambda d: d.name)))
        object.__setattr__(self, "config", dict(self.config))
        object.__setattr__(self, "seeds", dict(self.seeds))

    def canonical_inputs(self) -> dict[str, Any]:
        """Return the exact document the identity hashes."""
        return {
            "code": self.code.to_json_dict(),
            "data": [{"digest": d.digest, "name": d.name} for d in self.data],
            "config": self.config,
            "seeds": self.seeds,
        }

    @classmethod
    def from_model(cls, model: _InputsLike) -> Inputs:
        """The twin of an ``IdentityInputs`` (read by attribute: no pydantic import).

        Raises:
            InputsRefused: the model holds a value the twins do not take (a ``str``
                subclass, say; a model built by ``model_validate`` holds none).
        """
        code = model.code
        return cls(code=Code(commit=code.commit, uri=code.uri, dirty=code.dirty),
                   data=tuple(Dataset(name=d.name, digest=d.digest, uri=d.uri)
                              for d in model.data),
                   config=model.config, seeds=model.seeds)


class _CodeLike(Protocol):
    @property
    def commit(self) -> str: ...
    @property
    def uri(self) -> str | None: ...
    @property
    def dirty(self) -> bool: ...


class _DatasetLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def uri(self) -> str | None: ...


class _InputsLike(Protocol):
    @property
    def code(self) -> _CodeLike: ...
    @property
    def data(self) -> Iterable[_DatasetLike]: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def seeds(self) -> dict[str, int]: ...


class _Canonical(Protocol):
    def canonical_inputs(self) -> dict[str, Any]: ...


def compute_identity(inputs: _Canonical) -> str:
    """Return ``mlid:sha256:<hex>`` for ``inputs`` (an :class:`Inputs` or ``IdentityInputs``).

    Raises:
        InputError: a config value canonical JSON cannot carry (NaN, a huge integer, ...).
    """
    return IDENTITY_PREFIX + hashlib.sha256(canonical_json(inputs.canonical_inputs())).hexdigest()


# -- where inputs come from ----------------------------------------------------------------

def code_from_commit(commit: str, uri: str | None = None) -> Code:
    """Name the code by an explicit commit id (stripped, lower-cased).

    Raises:
        IdentityError: not a full (40 or 64 hex digit) commit id.
    """
    commit = commit.strip().lower()
    problem = commit_problem(commit)
    if problem is not None:
        raise IdentityError(problem, hint="pass the full 40-hex commit (git rev-parse HEAD)")
    return Code(commit=commit, uri=uri)


def _git(repo: Path, *args: str) -> str:
    import subprocess  # only here: attest --commit never starts git

    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=False, timeout=60)
    except FileNotFoundError as exc:
        raise IdentityError("git is not installed", hint="install git or pass --commit SHA") \
            from exc
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()
        raise IdentityError(f"{repo} is not a git work tree with a commit: "
                            f"{why[-1] if why else f'git {args[0]} failed'}",
                            hint="pass --repo DIR pointing at the training code, or --commit SHA")
    return done.stdout.strip()


def normalise_remote(url: str) -> str:
    """Turn a git remote into a ResourceURI (``git+https://host/path``).

    The scp form (``git@host:org/repo.git``) and ``ssh://`` URLs become
    ``https://`` so one repository has one URI (and one identity) however it
    was cloned; user info (``user:token@``) is never recorded.
    """
    scp = re.match(r"\A(?:[^@/]+@)?([\w.-]+):(.+)\Z", url)
    if scp and "://" not in url:
        url = f"https://{scp.group(1)}/{scp.group(2).lstrip('/')}"
    elif url.startswith("/"):
        url = f"file://{url}"  # a local remote: keep it a URI
    url = re.sub(r"^([a-z][a-z0-9+.-]*://)[^@/]*@", r"\1", url, flags=re.I)
    url = re.sub(r"^(?:git\+)?ssh://([^/:]+)(?::\d+)?/", r"https://\1/", url, flags=re.I)
    return url if url.startswith("git+") else f"git+{url}"


def code_from_repo(repo: Path, *, allow_dirty: bool = False) -> Code:
    """Read the HEAD commit, origin URL and cleanliness of a git work tree.

    Untracked files do not make a tree dirty (outputs usually are untracked);
    changes to tracked files do.

    Raises:
        IdentityError: not a work tree, no commit, or dirty without ``allow_dirty``.
    """
    commit = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(status)
    if dirty and not allow_dirty:
        first = status.splitlines()[0].strip()
        raise IdentityError(f"git tree {repo} has uncommitted changes ({first})")
    try:
        remote: str | None = normalise_remote(_git(repo, "remote", "get-url", "origin"))
    except IdentityError:
        remote = None
    return Code(commit=commit, uri=remote, dirty=dirty)


def _dataset(name: str, digest: str, uri: str | None = None) -> Dataset:
    if not _unicode(name):
        # A URI or file name from undecodable bytes (argv and file names are
        # decoded with surrogateescape): no dataset name can hold it.
        raise InputError(f"dataset name {name!r} is not valid Unicode text",
                         hint="name the dataset: NAME=PATH or NAME=URI@sha256:HEX")
    return Dataset(name=name, digest=digest, uri=uri)


def parse_data_spec(spec: str, *, allow_symlinks: bool = False) -> Dataset:
    """Parse ``[NAME=]PATH`` (hashed here) or ``[NAME=]URI@sha256:HEX`` (pinned).

    The name defaults to the path's last component, or the URI.

    Raises:
        InputError: a malformed digest, a missing path, a path that cannot be hashed,
            or a name that is not valid Unicode.
    """
    name: str | None = None
    head, sep, rest = spec.partition("=")
    if sep and DATA_NAME.match(head):
        name, spec = head, rest
    if "@sha256:" in spec:
        uri, _, hexdigest = spec.rpartition("@sha256:")
        hexdigest = hexdigest.lower()
        if not uri or not SHA256_HEX.match(hexdigest):
            raise InputError(f"dataset must be URI@sha256:<64 hex>, got {spec!r}")
        return _dataset(name or uri, f"sha256:{hexdigest}", uri)
    if not spec:
        # Path("") is the current directory: never hash it by accident.
        raise InputError("dataset path is empty (expected [NAME=]PATH or URI@sha256:HEX)")
    path = Path(spec)
    try:
        found = path.exists()
    except (OSError, ValueError):  # a name too long, or a NUL byte: it names nothing
        found = False
    if not found:
        raise InputError(f"dataset {spec!r} is neither an existing path nor URI@sha256:HEX")
    manifest = hash_path(path, allow_symlinks=allow_symlinks)
    return _dataset(name or path.resolve().name, f"sha256:{manifest.root}")
