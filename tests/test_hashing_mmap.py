"""Hashing through mmap: the same digests as reading, and a truncated file is a clean error.

Files are mapped only in a HashJob's forked child (a SIGBUS there kills only the
child); the fork tests run in a fresh interpreter, as the CLI does, since other
tests' threads make a job hash in-process. In-process tests here set
``hashing._mapping`` themselves on files nobody truncates (or truncate only
within the last page, which reads as zeros instead of faulting).
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mlprov.hashing as hashing
from mlprov.errors import InputError

W = 4 * mmap.ALLOCATIONGRANULARITY  # a small window: many window boundaries in small files


@contextmanager
def mapping(window: int = W, map_from: int = 0) -> Iterator[list[int]]:
    """Map in-process with ``window``; yields the offsets of the windows mapped."""
    saved = hashing._mapping, hashing._WINDOW, hashing._MAP_FROM, hashing._after_map
    mapped: list[int] = []
    table = hashing._Mapped()
    hashing._mapping, hashing._WINDOW, hashing._MAP_FROM = table, window, map_from
    hashing._after_map = lambda fd, _path: mapped.append(os.lseek(fd, 0, os.SEEK_CUR))
    try:
        yield mapped
    finally:
        hashing._mapping, hashing._WINDOW, hashing._MAP_FROM, hashing._after_map = saved
        table.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from([0, 1, W - 1, W, W + 1, 2 * W - 1, 2 * W, 2 * W + 1, 3 * W + 7])
       | st.integers(0, 4 * W))
@example(size=0)
def test_mapped_digest_equals_the_read_digest(tmp_path: Path, size: int):
    path = tmp_path / "f.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    read = hashing.hash_file(path)
    seen: list[int] = []
    with mapping() as mapped:
        digest, hashed = hashing.hash_file(path, progress=seen.append)
    assert (digest, hashed) == read == (hashlib.sha256(data).hexdigest(), size)
    assert len(mapped) == -(-size // W)  # every byte came through a mapping
    assert sum(seen) == size


def test_a_file_that_grows_while_mapped_is_read_to_its_end(tmp_path: Path):
    path = tmp_path / "f.bin"
    data = os.urandom(2 * W + 5)
    path.write_bytes(data)
    extra = os.urandom(1000)
    calls: list[int] = []

    def hook(_fd: int, p: str) -> None:
        calls.append(1)
        if len(calls) == 1:
            with open(p, "ab") as f:
                f.write(extra)

    with mapping():
        hashing._after_map = hook
        digest, size = hashing.hash_file(path)
    assert len(calls) == 3  # the size fstat gave was mapped; the rest was read
    # As reading to the end of file does: every byte there when it was reached.
    assert (digest, size) == (hashlib.sha256(data + extra).hexdigest(), len(data) + 1000)


def test_a_file_that_shrinks_within_its_last_page_is_an_error(tmp_path: Path):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(2 * W + 1000))
    with mapping():
        # The last window is mapped, then the file loses 500 bytes of its last page: they
        # read as zeros (no SIGBUS), and would be hashed as if they were in the file.
        calls: list[int] = []

        def hook(_fd: int, p: str) -> None:
            calls.append(1)
            if len(calls) == 3:
                os.truncate(p, 2 * W + 500)

        hashing._after_map = hook
        with pytest.raises(InputError, match="changed or could not be read while it was hashed"):
            hashing.hash_file(path)


def test_files_mmap_refuses_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "f.bin"
    data = os.urandom(3 * W + 3)
    path.write_bytes(data)
    real = mmap.mmap
    calls: list[int] = []

    def refuse_second(fd: int, n: int, **kw: int) -> mmap.mmap:
        calls.append(n)
        if len(calls) == 2:  # ENODEV midway: the rest is read from there
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return real(fd, n, **kw)

    with mapping() as mapped:
        monkeypatch.setattr(mmap, "mmap", refuse_second)
        assert hashing.hash_file(path) == (hashlib.sha256(data).hexdigest(), len(data))
    assert len(mapped) == 1


def test_no_free_slot_means_reading(tmp_path: Path):
    path = tmp_path / "f.bin"
    data = os.urandom(2 * W)
    path.write_bytes(data)
    with mapping() as mapped:
        assert hashing._mapping is not None
        for _ in range(hashing._Mapped.SLOTS):
            hashing._mapping.claim("busy")
        assert hashing.hash_file(path) == (hashlib.sha256(data).hexdigest(), len(data))
    assert mapped == []


def test_in_process_hashing_never_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(os.urandom(3 << 20))

    here = os.getpid()

    def fail(_fd: int, _path: str) -> None:
        if os.getpid() == here:
            raise AssertionError("mapped outside a forked child")

    monkeypatch.setattr(hashing, "_after_map", fail)
    assert hashing._mapping is None
    hashing.hash_path(tmp_path / "m")
    job = hashing.HashJob(tmp_path / "m")  # forked or on a thread: the parent never maps
    job.result()
    assert hashing._mapping is None


CHILD = """
import os, signal, sys
import mlprov.hashing as hashing
hashing._WINDOW = 1 << 20
log = sys.argv[2]
def hook(fd, path):
    with open(log, "a") as f:
        f.write(path + "\\n")
    if sys.argv[3] == "truncate":
        os.truncate(path, 0)
    elif sys.argv[3] == "kill":
        os.kill(os.getpid(), signal.SIGTERM)
hashing._after_map = hook
made_here = []  # the parent made the error: the child died (of SIGBUS) without a word
parent, made = os.getpid(), hashing._changed_while_hashed
hashing._changed_while_hashed = lambda paths: (made_here.append(os.getpid() == parent),
                                               made(paths))[1]
seen, totals = [], []
job = hashing.HashJob(sys.argv[1], progress=seen.append, on_total=totals.append)
assert job._pid is not None, "expected a forked child"
try:
    manifest = job.result()
except hashing.InputError as exc:
    print("parent:error" if made_here == [True] else "error", exc, "|", exc.diagnostics())
else:
    print("ok", manifest == hashing.hash_path(sys.argv[1]), sum(seen) == totals[0])
"""


def run_child(model: Path, log: Path, mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHILD, str(model), str(log), mode],
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stderr == ""
    return done.stdout


def test_a_hash_job_child_maps_and_reports_every_byte(tmp_path: Path):
    model = tmp_path / "m"
    (model / "sub").mkdir(parents=True)
    (model / "big.bin").write_bytes(os.urandom((3 << 20) + 17))
    (model / "sub" / "small.txt").write_bytes(b"x" * 100)
    log = tmp_path / "log"
    assert run_child(model, log, "") == "ok True True\n"
    # Four 1 MiB windows of big.bin mapped (in the child); small.txt was read.
    assert log.read_text().splitlines() == [str(model / "big.bin")] * 4


def test_a_file_truncated_while_mapped_is_one_clean_error(tmp_path: Path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "big.bin").write_bytes(os.urandom(3 << 20))
    (model / "small.txt").write_bytes(b"x" * 100)
    out = run_child(model, tmp_path / "log", "truncate")  # SIGBUS in the child, not here
    assert out.count("\n") == 1
    assert out.startswith(f"parent:error {model / 'big.bin'} changed or could not be read while it "
                          "was hashed")
    assert "make sure nothing writes to the model" in out


def test_a_child_killed_otherwise_is_not_blamed_on_the_file(tmp_path: Path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "big.bin").write_bytes(os.urandom(2 << 20))
    out = run_child(model, tmp_path / "log", "kill")
    assert out.startswith("error hashing stopped unexpectedly: killed by SIGTERM |")


def test_the_cli_says_so_in_one_line(tmp_path: Path, make_key):
    key = make_key()
    model = tmp_path / "m"
    model.mkdir()
    (model / "big.bin").write_bytes(os.urandom(2 << 20))
    script = ("import os, sys\nimport mlprov.hashing as hashing\n"
              "hashing._after_map = lambda fd, path: os.truncate(path, 0)\n"
              "from mlprov._cli.main import main\nmain(sys.argv[1:])\n")
    done = subprocess.run([sys.executable, "-c", script, "attest", str(model), "--name", "m",
                           "--key", str(key.private), "--out", str(tmp_path / "ev"),
                           "--commit", "a" * 40],
                          capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: {model / 'big.bin'} changed or could not be read")
    assert not (tmp_path / "ev").exists()
