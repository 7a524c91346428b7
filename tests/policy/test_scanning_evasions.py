"""Pickle scan evasions (issue 10, item 3): each built from raw opcodes, none ever loaded."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import pickletools
import zipfile
import zlib
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov._internal.pickleops import walk
from mlprov.scanning import scan_model
from tests.policy.conftest import malicious_pickle, safetensors_file

# GLOBAL os.system; MARK; STRING 'echo pwned'; TUPLE; REDUCE; STOP (protocol 0)
PROTOCOL_0 = b"cos\nsystem\n(S'echo pwned'\ntR."


@pytest.fixture(autouse=True)
def _never_unpickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded or a command run during a scan")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(os, "system", refuse)


def scan_one(tmp_path: Path, name: str, data: bytes, **kwargs):
    (tmp_path / name).write_bytes(data)
    return scan_model(tmp_path / name, **kwargs)


def globals_of(report) -> list[str]:
    return [f.global_name for f in report.findings]


def test_an_int_argument_pickletools_rejects_does_not_end_the_scan(tmp_path: Path):
    # INT "0x1" (the C unpickler parses it with base 0), POP, then the payload.
    data = b"I0x1\n0" + PROTOCOL_0
    with pytest.raises(ValueError):
        list(pickletools.genops(data))  # the stricter disassembler gives up here
    assert globals_of(scan_one(tmp_path, "m.pkl", data)) == ["os.system"]


@pytest.mark.parametrize("first", [b"I 7\n0", b"I\n0", b"I12\x00junk\n0", b"L0x10L\n0",
                                   b"F1e5\x00x\n0", b"I1_000\n0"])
def test_other_arguments_the_c_unpickler_accepts(tmp_path: Path, first: bytes):
    assert globals_of(scan_one(tmp_path, "blob", first + PROTOCOL_0)) == ["os.system"]


def test_a_protocol_0_pickle_named_safetensors_is_found(tmp_path: Path):
    report = scan_one(tmp_path, "c.safetensors", PROTOCOL_0)
    assert sorted(globals_of(report)) == ["<unscannable>", "os.system"]
    error = next(f for f in report.findings if f.severity == "error")
    assert error.detail.startswith("not a valid safetensors file")
    assert error.kind == "unscannable"


@pytest.mark.parametrize(("name", "pack"), [
    ("d.pkl.gz", gzip.compress), ("d.pkl.bz2", bz2.compress), ("d.pkl.xz", lzma.compress),
    ("d.joblib", zlib.compress),
    ("d.joblib", lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE)),
    ("weights", gzip.compress), ("weights", bz2.compress),
    ("two.gz", lambda b: gzip.compress(b"N.") + gzip.compress(b)),
])
def test_compressed_pickles_are_found(tmp_path: Path, name: str, pack):
    report = scan_one(tmp_path, name, pack(malicious_pickle()))
    assert globals_of(report) == ["os.system"]
    assert "pickle" in report.files[0].formats


def test_a_decompression_bomb_is_refused(tmp_path: Path):
    bomb = gzip.compress(bytes(20 << 20))
    report = scan_one(tmp_path, "m.pkl.gz", bomb, max_unpacked_bytes=1 << 20)
    [finding] = report.findings
    assert finding.kind == "unscannable"
    assert "refused" in finding.detail


def test_a_zip_bomb_is_refused(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", bytes(4 << 20))
        archive.writestr("archive/data/0", bytes(4 << 20))  # raw data: only its head is read
    report = scan_one(tmp_path, "m.pt", buffer.getvalue(), max_unpacked_bytes=1 << 20)
    assert [f.kind for f in report.findings] == ["unscannable"]
    assert "refused" in report.findings[0].detail


def test_a_corrupt_gzip_stream_is_unscannable(tmp_path: Path):
    data = gzip.compress(malicious_pickle())[:-12]
    report = scan_one(tmp_path, "m.pkl.gz", data)
    assert "<unscannable>" in globals_of(report)


def npy(descr: str, body: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": (1,)}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body


def test_an_object_npy_array_is_scanned(tmp_path: Path):
    report = scan_one(tmp_path, "arr.npy", npy("|O", malicious_pickle()))
    assert globals_of(report) == ["os.system"]
    assert report.files[0].formats == ("npy", "npy-object", "pickle")
    plain = scan_one(tmp_path, "floats.npy", npy("<f4", b"\x80\x04\x00\x00"))
    assert plain.safe and plain.files[0].formats == ("npy",)


def test_an_object_array_inside_npz_is_scanned(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.npy", npy("<f8", bytes(8)))
        archive.writestr("b.npy", npy("[('x', '|O')]", malicious_pickle()))
    report = scan_one(tmp_path, "arrays.npz", buffer.getvalue())
    assert globals_of(report) == ["os.system"]
    assert report.findings[0].detail == "in b.npy (object array)"


def test_a_pickle_that_does_not_parse_to_the_end_is_unscannable(tmp_path: Path):
    for data in (malicious_pickle()[:-1], b"\x80\x04\xff", b"", b"(lp0\n"):
        report = scan_one(tmp_path, "m.pkl", data)
        assert [f.kind for f in report.findings][-1:] == ["unscannable"], data
        assert report.files[0].status == "error"


def test_imports_before_a_parse_error_still_count(tmp_path: Path):
    # os.system is imported and called before the C unpickler reaches the bad byte.
    report = scan_one(tmp_path, "blob", PROTOCOL_0[:-1] + b"\xff")
    assert globals_of(report) == ["os.system"]


def test_pickles_after_the_first_are_scanned(tmp_path: Path):
    # PyTorch's legacy format: several pickles in a row, then raw data.
    data = b"\x80\x02\x8a\x0a" + bytes(10) + b"." + b"\x80\x02K\x03." + PROTOCOL_0 + b"\x00" * 9
    assert globals_of(scan_one(tmp_path, "legacy.pt", data)) == ["os.system"]


def test_memoised_and_protocol_0_stack_globals_are_followed(tmp_path: Path):
    memo = (b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x8c\x01x\x940"
            b"h\x00h\x01\x93h\x02\x85R.")
    assert globals_of(scan_one(tmp_path, "a.pkl", memo)) == ["os.system"]
    strings = b"S'subprocess'\nS'call'\n\x93(S'id'\ntR."
    assert globals_of(scan_one(tmp_path, "b.pkl", strings)) == ["subprocess.call"]
    inst = b"(S'id'\nios\nsystem\n."
    assert globals_of(scan_one(tmp_path, "c.pkl", inst)) == ["os.system"]
    unknown = b"\x80\x04K\x01\x94\x8c\x02os\x94\x8c\x01x\x94)R\x8c\x01y\x93."
    assert globals_of(scan_one(tmp_path, "d.pkl", unknown)) == ["<unknown>.<unknown>"]


def test_extension_codes_in_a_pickle_are_findings(tmp_path: Path):
    assert globals_of(scan_one(tmp_path, "e.pkl", b"\x80\x02\x82\x07)R.")) == ["<extension>.7"]


def test_a_valid_safetensors_file_is_clean(tmp_path: Path):
    report = scan_one(tmp_path, "w.safetensors", safetensors_file(bytes(range(48))))
    assert report.safe
    assert report.files[0].formats == ("safetensors",)


def header(entries: dict[str, object], payload: bytes, *, length: int | None = None) -> bytes:
    raw = json.dumps(entries).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + payload


@pytest.mark.parametrize("data", [
    b"\x02\x00",  # shorter than its length field
    header({}, b"", length=1 << 40),  # header length past the end
    b"\x04\x00\x00\x00\x00\x00\x00\x00[1,2]",  # not an object
    b"\x05\x00\x00\x00\x00\x00\x00\x00{\"a\":",  # not JSON
    header({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 8]}}, bytes(8)),  # shape
    header({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, bytes(8)),  # trailing
    header({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, bytes(4)),  # outside
    header({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
            "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, bytes(8)),  # overlap
    header({"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)),  # dtype
    header({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "x": 1}}, bytes(1)),
    b"\x0b\x00\x00\x00\x00\x00\x00\x00{\"a\":1,\"a\":2}",  # duplicate keys
])
def test_an_invalid_safetensors_file_is_a_finding(tmp_path: Path, data: bytes):
    report = scan_one(tmp_path, "w.safetensors", data)
    assert [f.kind for f in report.findings] == ["unscannable"]
    assert report.findings[0].detail.startswith("not a valid safetensors file")


@pytest.mark.parametrize("text", [
    "# README\n\nInstall with pip.\n", '{"layers": 2}\n', "1,2,3\n4,5,6\n",
    "import os\nclass A:\n    pass\n", "Version 1.0\nchanges\n", "(c) 2024 Someone\n",
    "I love pickles\ncos\nsystem\n",
])
def test_text_files_are_not_findings(tmp_path: Path, text: str):
    report = scan_one(tmp_path, "notes.txt", text.encode())
    assert report.safe, report.findings
    assert [s.path for s in report.skipped] == ["notes.txt"]


def test_the_report_records_skipped_files_and_matches_the_schema(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "w.safetensors").write_bytes(safetensors_file(bytes(8)))
    (tmp_path / "m.pkl.gz").write_bytes(gzip.compress(malicious_pickle()))
    document = scan_model(tmp_path).to_json_dict()
    assert document["skipped"] == [{"path": "config.json",
                                    "reason": document["skipped"][0]["reason"]}]
    assert [(f["path"], f["formats"]) for f in document["files"]] == [
        ("m.pkl.gz", ["gzip", "pickle"]), ("w.safetensors", ["safetensors"])]
    from tests.policy.test_policy import input_schema
    schema = input_schema()
    jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/scan"}).validate(
        document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300),
       name=st.sampled_from(["m.pkl", "w.bin", "w.safetensors", "a.npy", "d.gz", "blob"]))
def test_arbitrary_bytes_never_crash_the_scanner(tmp_path: Path, data: bytes, name: str):
    report = scan_one(tmp_path, name, data)
    assert len(report.files) + len(report.skipped) == 1
    if report.files and report.files[0].status == "error":
        assert any(f.kind == "unscannable" for f in report.findings)
    walk(data, 0, strict=False)  # never raises


# Benign, well-formed opcodes (each leaves the stack one deeper or as it was).
BENIGN = st.sampled_from([b"I0x1\n", b"I 12\n", b"K\x05", b"N", b"\x88", b"L5L\n", b"F1.5\n",
                          b"S'a'\n", b"V\\u0041\n", b"\x8c\x01a", b"C\x02ab", b"]", b"}",
                          b")", b"G" + bytes(8), b"\x8a\x01\x01", b"X\x01\x00\x00\x00b"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(prefix=st.lists(BENIGN, max_size=12), protocol=st.sampled_from([b"", b"\x80\x02",
                                                                      b"\x80\x05"]))
def test_a_global_after_any_benign_prefix_is_found(tmp_path: Path, prefix: list[bytes],
                                                   protocol: bytes):
    data = protocol + b"".join(item + b"0" for item in prefix) + PROTOCOL_0
    for name in ("m.pkl", "blob", "w.safetensors"):
        assert "os.system" in globals_of(scan_one(tmp_path, name, data))


def test_python_2_names_are_judged_as_the_unpickler_maps_them(tmp_path: Path):
    data = b"c__builtin__\nset\n(]tR."  # protocol 0: fix_imports maps it to builtins.set
    assert scan_one(tmp_path, "s.pkl", data).safe
    assert globals_of(scan_one(tmp_path, "e.pkl", b"c__builtin__\neval\n(S'1'\ntR.")) == [
        "__builtin__.eval"]
