"""Where a lineage walk looks for evidence and model files: the search directories, scanned once.

:class:`SearchTree` scans the search roots once per walk; :class:`SearchIndex`
finds evidence directories in it by provenance-bundle (and root) digest, and
:class:`ModelLocator` finds copies of models' files by their file names, then
hashes them. Nothing found here is trusted: the walk verifies every evidence
directory it is handed, and a copy of a model counts only when its digests are
the signed ones.

Invariants: symlinks below a root are never followed (a directory's real path
is its parent's joined with its name); hidden entries are not descended; every
real path is listed once (the first root reaching it wins); unreadable
directories are left out.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

from mlprov._internal.readers import MAX_EVIDENCE_BYTES, read_bytes
from mlprov.canonical import loads_strict
from mlprov.errors import BundleError, InputError, MlprovError
from mlprov.evidence import INDEX_FILE, PROVENANCE_FILE
from mlprov.hashing import DEFAULT_IGNORE_PATHS, check_relative_path, hash_directory, hash_path
from mlprov.oms import SignedManifest

__all__ = ["SEARCH_DEPTH", "ModelLocator", "SearchIndex", "SearchTree", "read_evidence_file"]

#: Evidence (and, with ``deep``, model) directories are looked for at most this
#: many levels below each search directory (0 = the search directory itself).
SEARCH_DEPTH = 3

_Listing = tuple[str, str, list[os.DirEntry[str]]]  # (directory, its real path, its entries)


def read_evidence_file(path: Path) -> bytes:
    """A bounded read of one evidence file, never through a symlink.

    Raises:
        BundleError: missing, unreadable, a symlink or special file, or too large.
    """
    try:
        return read_bytes(path, what="evidence file", limit=MAX_EVIDENCE_BYTES,
                          follow_symlinks=False, error=BundleError)
    except FileNotFoundError as exc:
        raise BundleError(f"evidence file missing: {path}") from exc
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}") from exc


def _subdirs_real(root: Path, depth: int) -> Iterable[_Listing]:
    """Yield (directory, its real path, its entries) breadth first, ``depth`` levels down.

    Hidden entries (temporary directories of an atomic write among them) and
    symlinks are skipped; unreadable directories are left out. Symlinks are
    never followed below the root, so a directory's real path is its parent's
    joined with its name (one ``realpath``, for the root).
    """
    # Paths stay strings here (pathlib costs more than the scan); callers make Paths of
    # the few directories they keep.
    queue: deque[tuple[str, str, int]] = deque([(str(root), os.path.realpath(root), 0)])
    while queue:
        directory, real, level = queue.popleft()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        yield directory, real, entries
        if level < depth:
            queue.extend((e.path, os.path.join(real, e.name), level + 1) for e in entries
                         if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))


def _tree_files(directory: str, memo: dict[str, list[str]],
                entries: list[os.DirEntry[str]] | None = None) -> list[str]:
    """The relative paths ``os.walk(directory)`` would list as files, each directory scanned once.

    As ``os.walk``: entries that are directories (symlinks to directories too)
    are not files, symlinked directories are not descended, unreadable
    directories are skipped. ``entries``, when given, is the directory's
    listing, already scanned.
    """
    if directory in memo:
        return memo[directory]
    if entries is None:
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            entries = []
    files: list[str] = []
    subdirs: list[str] = []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            files.append(entry.name)
            continue
        try:
            if not entry.is_symlink():
                subdirs.append(entry.name)
        except OSError:
            continue
    for name in sorted(subdirs):
        files.extend(f"{name}/{f}" for f in _tree_files(os.path.join(directory, name), memo))
    memo[directory] = files
    return files


def _is_evidence(entries: list[os.DirEntry[str]]) -> bool:
    return any(e.name == PROVENANCE_FILE and e.is_file(follow_symlinks=False) for e in entries)


class SearchTree:
    """The directories under the search roots, scanned once (on first use) and shared.

    A walk's evidence index and its model locator read the same tree: one
    scan, and each directory's real path known without a ``realpath``.
    """

    def __init__(self, roots: Sequence[Path], depth: int = SEARCH_DEPTH) -> None:
        self.roots = list(dict.fromkeys(roots))
        self.depth = depth
        self._dirs: list[_Listing] | None = None
        self._real: dict[str, str] = {}

    def dirs(self) -> list[_Listing]:
        """Every directory under the roots with its real path and entries, each real path once."""
        if self._dirs is None:
            dirs: list[_Listing] = []
            seen: set[str] = set()
            for root in self.roots:
                for listing in _subdirs_real(root, self.depth):
                    if listing[1] not in seen:
                        seen.add(listing[1])
                        dirs.append(listing)
                        self._real.setdefault(listing[0], listing[1])
            self._dirs = dirs
        return self._dirs

    def real(self, path: Path) -> str:
        """``os.path.realpath(path)``: from the scan for a directory it listed, else asked once."""
        key = str(path)
        found = self._real.get(key)
        if found is None:
            found = self._real[key] = os.path.realpath(path)
        return found


class SearchIndex:
    """Evidence directories under the search roots, by provenance-bundle and root digest.

    Built on first use. The root-digest index reads the unsigned
    ``evidence.json`` (only when asked: a walk that finds every parent by its
    bundle never reads it) and is only a hint: whatever it finds is verified.
    """

    def __init__(self, tree: SearchTree) -> None:
        self.tree = tree
        self._evidence: list[Path] | None = None
        self._by_bundle: dict[str, list[Path]] = {}
        self._by_root: dict[str, list[Path]] | None = None

    @property
    def roots(self) -> list[Path]:
        """The search roots."""
        return self.tree.roots

    def _scan(self) -> list[Path]:
        if self._evidence is None:
            evidence: list[Path] = []
            for name, _real, entries in self.tree.dirs():
                if not _is_evidence(entries):
                    continue
                directory = Path(name)
                try:
                    data = read_evidence_file(directory / PROVENANCE_FILE)
                except BundleError:
                    continue
                evidence.append(directory)
                self._by_bundle.setdefault(hashlib.sha256(data).hexdigest(), []).append(directory)
            self._evidence = evidence
        return self._evidence

    def by_bundle(self, provenance_bundle: str) -> list[Path]:
        """Evidence directories whose provenance bundle has this SHA-256."""
        self._scan()
        return list(self._by_bundle.get(provenance_bundle, []))

    def by_root(self, root_digest: str) -> list[Path]:
        """Evidence directories whose (unsigned) index names this root digest."""
        if self._by_root is None:
            by_root: dict[str, list[Path]] = {}
            for directory in self._scan():
                try:
                    document = loads_strict(read_evidence_file(directory / INDEX_FILE),
                                            what=INDEX_FILE)
                except (BundleError, InputError):
                    continue
                root = document.get("rootDigest") if isinstance(document, dict) else None
                if isinstance(root, str) and root.startswith("sha256:"):
                    by_root.setdefault(root[7:], []).append(directory)
            self._by_root = by_root
        return list(self._by_root.get(root_digest, []))


class ModelLocator:
    """Copies of models' files under the search roots, matched by file names, then hashed."""

    def __init__(self, tree: SearchTree) -> None:
        self.tree = tree
        self._dirs: list[tuple[Path, list[str]]] | None = None
        self._files: dict[str, list[Path]] = {}
        self._hashed: dict[tuple[str, tuple[str, ...], bool], dict[str, str] | None] = {}
        self._by_names: dict[tuple[str, ...], dict[frozenset[str], list[Path]]] = {}
        self._ignores: dict[tuple[str, ...], tuple[str, ...] | None] = {}
        # id(candidates list) -> (the list, kept alive; by real path; by real parent)
        self._index: dict[int, tuple[list[Path], dict[str, list[int]],
                                     dict[str, list[int]]]] = {}

    def real(self, path: Path) -> str:
        """``os.path.realpath``, once per path per walk (none for a directory the scan listed)."""
        return self.tree.real(path)

    def _listing(self) -> list[tuple[Path, list[str]]]:
        if self._dirs is not None:
            return self._dirs
        listed = self.tree.dirs()
        memo: dict[str, list[str]] = {}
        for name, _real, entries in reversed(listed):  # children first: each scanned once
            _tree_files(name, memo, entries)
        dirs: list[tuple[Path, list[str]]] = []
        for name, _real, entries in listed:
            if _is_evidence(entries):
                continue
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    self._files.setdefault(entry.name, []).append(Path(entry.path))
            dirs.append((Path(name), memo[name]))
        self._dirs = dirs
        return dirs

    def candidates(self, signed: SignedManifest) -> list[Path]:
        """Files or directories whose file names are exactly the signed manifest's.

        The list is the locator's own (shared by every model of those names): do not change it.
        """
        listing = self._listing()
        if set(signed.files) == {"."}:
            return self._files.get(signed.name, [])
        ignore = tuple(sorted({*DEFAULT_IGNORE_PATHS, *signed.ignore_paths}))
        by_names = self._by_names.get(ignore)
        if by_names is None:  # once per distinct set of ignore paths, not once per model
            by_names = self._by_names[ignore] = {}
            prefixes = tuple(f"{p}/" for p in ignore)
            for directory, files in listing:
                kept = frozenset(f for f in files
                                 if f not in ignore and not f.startswith(prefixes))
                by_names.setdefault(kept, []).append(directory)
        return by_names.get(frozenset(signed.files), [])

    def index_of(self, candidates: list[Path]) -> dict[str, list[int]]:
        """Positions in ``candidates`` (a list :meth:`candidates` returned) by real path."""
        key = id(candidates)
        if key not in self._index:
            index: dict[str, list[int]] = {}
            for i, c in enumerate(candidates):
                index.setdefault(self.real(c), []).append(i)
            beside: dict[str, list[int]] = {}
            for i, c in enumerate(candidates):
                beside.setdefault(os.path.dirname(self.real(c)), []).append(i)
            self._index[key] = (candidates, index, beside)
        return self._index[key][1]

    def beside_index_of(self, candidates: list[Path]) -> dict[str, list[int]]:
        """Positions in ``candidates`` by the real path of their parent directory."""
        self.index_of(candidates)
        return self._index[id(candidates)][2]

    def _checked_ignores(self, ignore: tuple[str, ...]) -> tuple[str, ...] | None:
        """:func:`hash_path`'s form of these ignore paths (sorted, checked), or None if unsafe."""
        if ignore not in self._ignores:
            try:
                self._ignores[ignore] = tuple(sorted(
                    {check_relative_path(p.rstrip("/")) for p in ignore}))
            except MlprovError:
                self._ignores[ignore] = None
        return self._ignores[ignore]

    def _hash(self, path: Path, real: str, ignore: tuple[str, ...], allow_symlinks: bool
              ) -> dict[str, str] | None:
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)  # a symlink is not: hash_path decides
        except OSError:
            is_dir = False
        if not is_dir:
            return hash_path(path, ignore_paths=ignore, allow_symlinks=allow_symlinks).by_path()
        checked = self._checked_ignores(ignore)
        if checked is None:
            return None
        # A real directory whose real path the scan knows: hashed as hash_path would, without
        # a realpath and argument checks per model (a thousand small models in a deep walk).
        return hash_directory(path, ignores=checked, allow_symlinks=allow_symlinks,
                              root_real=real).by_path()

    def digests(self, path: Path, signed: SignedManifest) -> dict[str, str] | None:
        """The files' digests under the signed settings (cached), or None if unhashable."""
        ignore = tuple(dict.fromkeys((*DEFAULT_IGNORE_PATHS, *signed.ignore_paths)))
        real = self.real(path)
        key = (real, ignore, signed.allow_symlinks)
        if key not in self._hashed:
            try:
                self._hashed[key] = self._hash(path, real, ignore, signed.allow_symlinks)
            except MlprovError:
                self._hashed[key] = None
        return self._hashed[key]
