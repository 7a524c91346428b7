"""mlprov.scanning: pickle imports found statically, never by loading a pickle."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest

import mlprov
from mlprov.errors import InputError
from mlprov.scanning import (
    DEFAULT_ALLOWED_IMPORTS,
    is_pickle_candidate,
    scan_model,
    scan_verified_model,
)
from tests.policy.conftest import malicious_pickle


@pytest.fixture(autouse=True)
def _never_unpickle(monkeypatch):
    """Any attempt to load a pickle (or run a command) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded or a command run during a scan")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(os, "system", refuse)


def torch_zip(pickle_bytes: bytes) -> bytes:
    """A file in PyTorch's zip layout (archive/data.pkl + version), built by hand."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", bytes(16))
    return buffer.getvalue()


def state_dict_pickle() -> bytes:
    """What torch.save of a state dict pickles: OrderedDict and a tensor rebuilder."""
    def text(value: bytes) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value

    return (b"\x80\x02" + text(b"collections") + text(b"OrderedDict") + b"\x93" + b")R"
            + text(b"torch._utils") + text(b"_rebuild_tensor_v2") + b"\x93" + b")R" + b"0.")


def test_a_malicious_pickle_is_found_without_being_loaded(tmp_path: Path):
    (tmp_path / "model.pkl").write_bytes(malicious_pickle())
    report = scan_model(tmp_path)
    [finding] = report.findings
    assert (finding.file, finding.module, finding.name, finding.severity) == (
        "model.pkl", "os", "system", "dangerous")
    assert finding.global_name == "os.system"
    assert not report.safe
    assert report.files[0].status == "unsafe"
    document = report.to_json_dict()
    assert document["findings"][0]["global"] == "os.system"
    assert document["scanner"]["name"] == "mlprov"
    assert document["findings"][0]["kind"] == "import"


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin", "model.pth", "model.ckpt",
                                  "weights.joblib", "model.pickle", "archive.zip"])
def test_every_pickle_format_is_scanned(tmp_path: Path, name: str):
    data = torch_zip(malicious_pickle()) if name.endswith((".pt", ".pth", ".zip")) \
        else malicious_pickle()
    (tmp_path / name).write_bytes(data)
    assert [f.global_name for f in scan_model(tmp_path).findings] == ["os.system"]


def test_a_pickle_under_another_name_is_found_by_its_magic(tmp_path: Path):
    (tmp_path / "weights.safetensors").write_bytes(torch_zip(malicious_pickle()))
    (tmp_path / "blob").write_bytes(malicious_pickle())
    assert is_pickle_candidate(tmp_path / "blob")
    findings = scan_model(tmp_path).findings
    assert sorted((f.file, f.global_name) for f in findings) == [
        ("blob", "os.system"), ("weights.safetensors", "<unscannable>"),
        ("weights.safetensors", "os.system")]


def test_protocol_0_pickles_are_found(tmp_path: Path):
    (tmp_path / "old.pkl").write_bytes(b"cposix\nsystem\n(S'echo pwned'\ntR.")
    assert [f.global_name for f in scan_model(tmp_path).findings] == ["posix.system"]


def test_allowed_imports_are_not_findings(tmp_path: Path):
    (tmp_path / "model.pt").write_bytes(torch_zip(state_dict_pickle()))
    (tmp_path / "plain.pkl").write_bytes(b"\x80\x04K\x01.")
    report = scan_model(tmp_path)
    assert report.safe
    imports = {f.path: f.imports for f in report.files}
    assert imports["model.pt"] == ("collections.OrderedDict", "torch._utils._rebuild_tensor_v2")
    assert imports["plain.pkl"] == ()
    assert "collections.OrderedDict" in DEFAULT_ALLOWED_IMPORTS


def test_unknown_imports_are_suspicious(tmp_path: Path):
    def text(value: bytes) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value

    (tmp_path / "m.joblib").write_bytes(b"\x80\x04" + text(b"sklearn.linear_model")
                                        + text(b"LogisticRegression") + b"\x93)R.")
    [finding] = scan_model(tmp_path).findings
    assert (finding.global_name, finding.severity) == (
        "sklearn.linear_model.LogisticRegression", "suspicious")
    assert scan_model(tmp_path, allowed={"sklearn.linear_model.LogisticRegression"}).safe


def test_an_unscannable_file_is_a_finding(tmp_path: Path):
    good_zip = io.BytesIO()
    with zipfile.ZipFile(good_zip, "w") as archive:
        archive.writestr("archive/data.pkl", malicious_pickle())
    broken = bytearray(good_zip.getvalue())
    broken[-10:] = b"\xff" * 10  # the central directory is gone
    (tmp_path / "model.pt").write_bytes(bytes(broken))
    report = scan_model(tmp_path)
    [finding] = report.findings
    assert (finding.file, finding.severity, finding.global_name) == ("model.pt", "error",
                                                                      "<unscannable>")
    assert finding.detail.startswith("could not be scanned (BadZipFile")
    assert report.files[0].status == "error"


def test_non_pickle_files_are_ignored_or_clean(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "weights.bin").write_bytes(bytes(range(1, 256)) * 16)  # raw data, not a pickle
    report = scan_model(tmp_path)
    assert report.safe
    assert report.files == ()
    assert {f.path: f.reason.split(" (")[0] for f in report.skipped} == {
        "config.json": "not a pickle", "weights.bin": "not a pickle"}


def test_symlinks_and_ignored_paths_are_not_followed(tmp_path: Path):
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(malicious_pickle())
    model = tmp_path / "model"
    (model / ".git").mkdir(parents=True)
    (model / ".git" / "objects.pkl").write_bytes(malicious_pickle())
    (model / "link.pkl").symlink_to(outside)
    (model / "ok.json").write_text("{}")
    assert scan_model(model).files == ()


def test_a_single_file_model(tmp_path: Path):
    (tmp_path / "m.pkl").write_bytes(malicious_pickle())
    report = scan_model(tmp_path / "m.pkl")
    assert [f.file for f in report.findings] == ["m.pkl"]


def test_listed_paths_must_stay_inside(tmp_path: Path):
    with pytest.raises(InputError):
        scan_model(tmp_path, files=["../etc/passwd"])
    with pytest.raises(InputError, match="model not found"):
        scan_model(tmp_path / "missing")


def test_only_verified_files_are_scanned(lab, tmp_path: Path):
    from tests.policy.conftest import attest_model

    attested = attest_model(lab, tmp_path, extra={"sub/model.pkl": malicious_pickle()})
    (attested.model / "unsigned.pkl").write_bytes(malicious_pickle())
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    assert not verdict.verified  # an extra file
    with pytest.raises(InputError, match="not verified"):
        scan_verified_model(attested.model, verdict)
    (attested.model / "unsigned.pkl").unlink()
    verdict = mlprov.verify(attested.model, evidence=attested.evidence, trust=lab.trust)
    report = scan_verified_model(attested.model, verdict)
    assert [f.file for f in report.findings] == ["sub/model.pkl"]
    assert report.root_digest == verdict.root_digest
