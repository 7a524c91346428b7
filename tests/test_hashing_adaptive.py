"""Tests for the adaptive hashing paths: string ignore rules, forked small-file workers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlprov.hashing as hashing
from mlprov.errors import InputError, UnsafePathError
from mlprov.hashing import FileDigest, HashJob, Manifest, hash_path
from tests.test_hashing import fork_path_taken

_PART = st.sampled_from(["a", "b", "ab", "a.b", "-", "x y", "é", ".git", "..a"])
_REL = st.lists(_PART, min_size=1, max_size=4).map("/".join)
# Ignore rules as a caller may write them: normalised or not, absolute, empty, dotted.
_RULE = st.one_of(
    _REL,
    st.lists(st.sampled_from(["a", "b", ".", "", "ab", "..", "a.b"]), max_size=4).map("/".join),
    _REL.map(lambda r: r + "/"),
    _REL.map(lambda r: "./" + r),
    _REL.map(lambda r: "/" + r),
    _REL.map(lambda r: "//" + r),
)


@given(rel=_REL, rules=st.lists(_RULE, max_size=4))
def test_string_ignore_rules_match_the_pathlib_rule(rel: str, rules: list[str]):
    old = hashing._is_ignored(PurePosixPath(rel), [PurePosixPath(r) for r in rules])
    assert hashing._Ignore(rules)(rel) is old


@given(rules=st.lists(_RULE, max_size=3))
def test_manifest_without_keeps_the_pathlib_semantics(rules: list[str]):
    paths = ["a", "a/b", "ab", "ab/c", "b/a", ".git/x", "x y/é"]
    files = tuple(FileDigest(p, "0" * 64, 1) for p in paths)
    manifest = Manifest(name="m", files=files)
    kept = [f.path for f in manifest.without(rules).files]
    pure = [PurePosixPath(r) for r in rules]
    assert kept == [p for p in paths if not hashing._is_ignored(PurePosixPath(p), pure)]


def _tree(root: Path, count: int, big: int = 0) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i in range(count):
        files[f"d{i % 7}/f{i:04d}.bin"] = os.urandom(100 + (i * 37) % 3000)
    for i in range(big):
        files[f"big{i}.bin"] = os.urandom(hashing.SMALL_FILE + 1000 * i)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send small files to forked workers from a few dozen files on, with 3 shares."""
    monkeypatch.setattr(hashing, "POOL_MIN_FILES", 8)
    monkeypatch.setattr(hashing, "_cpus", lambda: 3)


def test_forked_small_file_workers_give_the_same_manifest(tmp_path: Path, pool: None):
    files = _tree(tmp_path / "m", 60, big=3)
    forked = hash_path(tmp_path / "m")
    serial = hash_path(tmp_path / "m", workers=1)
    assert forked == serial
    assert forked.by_path() == {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}


def test_forked_workers_report_every_byte(tmp_path: Path, pool: None):
    files = _tree(tmp_path / "m", 40, big=2)
    seen: list[int] = []
    totals: list[int] = []
    hash_path(tmp_path / "m", progress=seen.append, on_total=totals.append)
    size = sum(len(d) for d in files.values())
    assert totals == [size]
    assert sum(seen) == size


def test_forked_workers_raise_the_first_error_in_order(tmp_path: Path, pool: None,
                                                       monkeypatch: pytest.MonkeyPatch):
    _tree(tmp_path / "m", 40)
    by_size = sorted((tmp_path / "m").rglob("*.bin"), key=lambda p: -p.stat().st_size)
    bad = {by_size[5].name, by_size[21].name}  # a child's share and the caller's
    real = hashing.hash_file

    def flaky(path: Path | str, **kwargs: object) -> tuple[str, int]:
        if Path(path).name in bad:
            raise InputError(f"cannot read {Path(path).name}")
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "hash_file", flaky)
    with pytest.raises(InputError, match=by_size[5].name):
        hash_path(tmp_path / "m")


def test_forked_workers_keep_refusing_swapped_in_symlinks(tmp_path: Path, pool: None,
                                                           monkeypatch: pytest.MonkeyPatch):
    _tree(tmp_path / "m", 30)
    real_walk = hashing._walk

    def walk_then_swap(*args: object, **kwargs: object) -> list[tuple[str, int]]:
        listed = real_walk(*args, **kwargs)  # type: ignore[arg-type]
        target = tmp_path / "m" / listed[-1][0]
        target.unlink()
        target.symlink_to(tmp_path / "m" / listed[0][0])
        return listed

    monkeypatch.setattr(hashing, "_walk", walk_then_swap)
    with pytest.raises(InputError, match="cannot read"):
        hash_path(tmp_path / "m")


def test_hash_job_with_progress_forks_and_reports(tmp_path: Path):
    files = _tree(tmp_path / "m", 5, big=2)
    seen: list[int] = []
    totals: list[int] = []
    # The same path as without a bar: a forked child (in a fresh interpreter, as the CLI).
    assert fork_path_taken(tmp_path / "m", ", progress=lambda n: None") == "True True"
    job = HashJob(tmp_path / "m", progress=seen.append, on_total=totals.append)
    manifest = job.result()
    assert manifest == hash_path(tmp_path / "m")
    assert totals == [sum(len(d) for d in files.values())] == [sum(seen)]


def test_symlink_refusal_is_unchanged_with_the_string_walk(tmp_path: Path):
    _tree(tmp_path / "m", 3)
    (tmp_path / "m" / "link").symlink_to(tmp_path / "m" / "d0")
    with pytest.raises(UnsafePathError, match="symlink in model: link"):
        hash_path(tmp_path / "m")


@given(rel=_REL, rules=st.lists(_REL, max_size=4))
def test_checked_rules_need_no_normalising(rel: str, rules: list[str]):
    """hash_path's rules passed check_relative_path: the fast constructor agrees."""
    assert hashing._Ignore(rules, normalised=True)(rel) is hashing._Ignore(rules)(rel)
