"""How a forked hashing child hands its outcome to the parent: marshal for plain data
(nothing to import on either side), pickle only for errors; never anything else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import mlprov.hashing as hashing
from mlprov.errors import InputError

_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner),
    max_leaves=20)


@given(ok=st.booleans(), value=_plain)
def test_plain_data_goes_through_marshal_and_back(ok: bool, value: object):
    data = hashing._encode_outcome((ok, value))
    assert data[:1] == b"m"
    assert hashing._decode_outcome(data) == (ok, value)


def test_a_packed_manifest_goes_through_marshal(tmp_path: Path):
    (tmp_path / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "b.txt").write_text("y")
    manifest = hashing.hash_path(tmp_path)
    data = hashing._encode_outcome((True, hashing._pack(manifest)))
    assert data[:1] == b"m"
    ok, packed = hashing._decode_outcome(data)
    assert ok and hashing._unpack(packed) == manifest


def test_errors_go_through_pickle():
    error = InputError("model/x: not a regular file", hint="remove it")
    data = hashing._encode_outcome((False, error))
    assert data[:1] == b"p"
    ok, value = hashing._decode_outcome(data)
    assert ok is False and type(value) is InputError and str(value) == str(error)
    # A worker's partial result holds its files' errors: pickle as a whole.
    data = hashing._encode_outcome((True, ([(0, "ab" * 32, 1)], {1: error}, [])))
    assert data[:1] == b"p"
    assert hashing._decode_outcome(data)[1][1][1].args == error.args


class Name(str):
    """A str subclass: marshal would refuse it."""


def test_a_str_subclass_is_not_flattened():
    data = hashing._encode_outcome((True, (Name("a"),)))
    assert data[:1] == b"p"  # marshal refuses it; pickle keeps the type
    assert type(hashing._decode_outcome(data)[1][0]) is Name


def test_nothing_or_an_unknown_tag_is_a_dead_child():
    assert hashing._decode_outcome(None) == (False, None)
    assert hashing._decode_outcome(b"") == (False, None)
    assert hashing._decode_outcome(b"x\x00") == (False, None)


_JOB = """
import sys
import mlprov.hashing as hashing
from mlprov.errors import InputError
manifest = hashing.HashJob(sys.argv[1]).result()
assert [f.path for f in manifest.files] == ["w.bin"], manifest
assert "pickle" not in sys.modules, "a successful job imports no pickle"
try:
    hashing.HashJob(sys.argv[1] + "/missing").result()
except InputError as exc:
    print(type(exc).__name__)
"""


def test_a_hash_job_imports_pickle_only_for_an_error(tmp_path: Path):
    (tmp_path / "w.bin").write_bytes(b"w" * (2 << 20))  # large: mapped in the child
    done = subprocess.run([sys.executable, "-c", _JOB, str(tmp_path)], capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "InputError\n"), done.stderr
