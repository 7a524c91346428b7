"""Tests for the opt-in digest cache: what it keys on, when it refuses, how it is stored."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

import mlprov._internal.digest_cache as digest_cache
from mlprov._internal.digest_cache import DigestCache
from mlprov.errors import InputError
from mlprov.hashing import hash_path


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test are seconds old at most: record them anyway."""
    monkeypatch.setattr(digest_cache, "RACY_NS", -10**12)


def _model(root: Path) -> Path:
    root.mkdir()
    (root / "weights.bin").write_bytes(os.urandom(300_000))
    (root / "config.json").write_text('{"a": 1}')
    return root


def _hits(cache_dir: Path, model: Path) -> DigestCache:
    """Hash ``model`` through the cache; return the cache as this run left it."""
    hash_path(model, cache=cache_dir)
    return DigestCache.open(cache_dir, model)


def _hash_counting(cache_dir: Path, model: Path) -> tuple[str, int]:
    """The root digest and how many files were served from the cache."""
    seen: list[int] = []
    original = DigestCache.lookup

    def lookup(self: DigestCache, fd: int, st: os.stat_result
               ) -> tuple[str, digest_cache.Entry] | None:
        found = original(self, fd, st)
        seen.append(found is not None)
        return found

    DigestCache.lookup = lookup  # type: ignore[method-assign]
    try:
        root = hash_path(model, cache=cache_dir).root
    finally:
        DigestCache.lookup = original  # type: ignore[method-assign]
    return root, sum(seen)


def test_an_unchanged_model_is_served_from_the_cache(tmp_path: Path):
    model = _model(tmp_path / "m")
    cold = hash_path(model)
    assert _hash_counting(tmp_path / "c", model) == (cold.root, 0)
    assert _hash_counting(tmp_path / "c", model) == (cold.root, 2)
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    (cache_file,) = (tmp_path / "c").iterdir()
    doc = json.loads(cache_file.read_text())
    assert doc["schema"] == digest_cache.SCHEMA and len(doc["entries"]) == 2


@pytest.mark.parametrize("field", ["size", "mtime_ns", "ctime_ns", "ino", "dev", "guard"])
def test_every_key_field_and_the_guard_must_match(tmp_path: Path, field: str):
    model = _model(tmp_path / "m")
    _hits(tmp_path / "c", model)
    (cache_file,) = (tmp_path / "c").iterdir()
    doc = json.loads(cache_file.read_text())
    st = os.stat(model / "weights.bin")
    key = f"{st.st_dev}:{st.st_ino}"
    entry = doc["entries"].pop(key)
    if field == "ino":
        key = f"{st.st_dev}:{st.st_ino + 10**12}"
    elif field == "dev":
        key = f"{st.st_dev + 10**12}:{st.st_ino}"
    else:
        index = ["size", "mtime_ns", "ctime_ns", "guard"].index(field)
        entry[index] = "0" * 64 if field == "guard" else entry[index] + 1
    doc["entries"][key] = entry
    cache_file.write_text(json.dumps(doc))
    assert _hash_counting(tmp_path / "c", model)[1] == 1  # only config.json


def test_truncation_is_noticed(tmp_path: Path):
    model = _model(tmp_path / "m")
    _hits(tmp_path / "c", model)
    st = os.stat(model / "weights.bin")
    os.truncate(model / "weights.bin", 1000)
    os.utime(model / "weights.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    root, hits = _hash_counting(tmp_path / "c", model)
    assert (root, hits) == (hash_path(model).root, 1)


def test_a_same_size_rewrite_with_the_mtime_restored_is_noticed(tmp_path: Path):
    model = _model(tmp_path / "m")
    _hits(tmp_path / "c", model)
    path = model / "weights.bin"
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[150_000] ^= 0xFF  # the middle: outside the guard, so the ctime must catch it
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    root, hits = _hash_counting(tmp_path / "c", model)
    assert root == hash_path(model).root
    assert hits == 1
    assert hashlib.sha256(data).hexdigest() == hash_path(model).by_path()["weights.bin"]


def test_a_file_swapped_in_by_rename_is_hashed_again(tmp_path: Path):
    model = _model(tmp_path / "m")
    _hits(tmp_path / "c", model)
    st = os.stat(model / "weights.bin")
    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(st.st_size))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, model / "weights.bin")
    root, hits = _hash_counting(tmp_path / "c", model)
    assert (root, hits) == (hash_path(model).root, 1)


def test_files_changed_too_recently_are_not_recorded(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(digest_cache, "RACY_NS", 60 * 10**9)
    model = _model(tmp_path / "m")
    hash_path(model, cache=tmp_path / "c")
    assert _hash_counting(tmp_path / "c", model)[1] == 0


def test_a_file_changing_while_hashed_is_not_recorded(tmp_path: Path):
    model = _model(tmp_path / "m")
    path = model / "weights.bin"
    st = os.stat(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.truncate(path, 10)  # after the first fstat, before the second
        assert DigestCache.entry(fd, st, st.st_size, "0" * 64, 2**62) is None
    finally:
        os.close(fd)


def test_hits_in_forked_workers_are_kept_in_the_saved_cache(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    import mlprov.hashing as hashing

    monkeypatch.setattr(hashing, "POOL_MIN_FILES", 8)
    monkeypatch.setattr(hashing, "_cpus", lambda: 3)
    model = tmp_path / "m"
    model.mkdir()
    for i in range(40):
        (model / f"f{i:02d}").write_bytes(os.urandom(100 + i))
    hash_path(model, cache=tmp_path / "c")
    hash_path(model, cache=tmp_path / "c")  # hits, mostly in the workers
    (cache_file,) = (tmp_path / "c").iterdir()
    assert len(json.loads(cache_file.read_text())["entries"]) == 40


def test_a_single_file_model_uses_the_cache(tmp_path: Path):
    (tmp_path / "w.bin").write_bytes(os.urandom(10_000))
    assert _hash_counting(tmp_path / "c", tmp_path / "w.bin")[1] == 0
    assert _hash_counting(tmp_path / "c", tmp_path / "w.bin")[1] == 1


def test_a_shared_cache_directory_is_refused(tmp_path: Path):
    (tmp_path / "c").mkdir(mode=0o777)
    os.chmod(tmp_path / "c", 0o777)
    with pytest.raises(InputError, match="mode 0700"):
        hash_path(_model(tmp_path / "m"), cache=tmp_path / "c")


@pytest.mark.parametrize("content", [b"not json", b'{"schema": "other", "entries": {}}',
                                     b'{"schema": "%s", "entries": {"1:2": [1, 2]}}'])
def test_a_broken_or_foreign_cache_file_is_ignored(tmp_path: Path, content: bytes):
    model = _model(tmp_path / "m")
    _hits(tmp_path / "c", model)
    (cache_file,) = (tmp_path / "c").iterdir()
    cache_file.write_bytes(content.replace(b"%s", digest_cache.SCHEMA.encode()))
    assert _hash_counting(tmp_path / "c", model) == (hash_path(model).root, 0)


def test_an_oversized_cache_file_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model = _model(tmp_path / "m")
    _hits(tmp_path / "c", model)
    monkeypatch.setattr(digest_cache, "MAX_CACHE_BYTES", 10)
    assert _hash_counting(tmp_path / "c", model)[1] == 0


def test_the_cli_takes_cache_from_the_environment(run_cli, tmp_path: Path, monkeypatch):
    model = _model(tmp_path / "m")
    monkeypatch.setenv("MLPROV_CACHE", str(tmp_path / "c"))
    result = run_cli("keygen", "--out", str(tmp_path / "k"), "--type", "ecdsa-p256")
    assert result.exit_code == 0, result.output
    result = run_cli("attest", str(model), "--name", "m", "--key", str(tmp_path / "k"),
                     "--out", str(tmp_path / "ev"), "--commit", "0" * 40)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "c").iterdir())) == 1
    result = run_cli("verify", str(model), "--evidence", str(tmp_path / "ev"),
                     "--key", str(tmp_path / "k.pub"))
    assert result.exit_code == 0, result.output


def test_registry_code_never_passes_a_cache():
    """pull/load hash blobs someone else wrote: the cache must never serve them."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "mlprov" / "registry"
    call = re.compile(r"(hash_path|HashJob|verify)\([^)]*cache", re.S)
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert not call.search(text), path
        assert "digest_cache" not in text and "schema_verdicts" not in text, path
