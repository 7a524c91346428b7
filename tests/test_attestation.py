"""The ``mlprov.attest`` API and the evidence directory it writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mlprov
from mlprov.attestation import AttestResult
from mlprov.errors import IdentityError, InputError, KeyMaterialError, UnsafePathError
from mlprov.evidence import check_out_dir, write_dir_atomically
from mlprov.hashing import hash_path
from mlprov.identity import DataRef, IdentityInputs, code_from_commit, compute_identity
from mlprov.signing import load_private_key
from tests.conftest import COMMIT


def test_attest_returns_a_typed_result(make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    out = tmp_path / "ev"
    result = mlprov.attest(model_dir, name="m", key=key.private, out=out, commit=COMMIT,
                           seeds={"torch": 1})
    assert isinstance(result, AttestResult)
    assert result.name == "m"
    assert result.evidence_dir == out
    assert result.root_digest == hash_path(model_dir).root == result.manifest.root
    expected = compute_identity(IdentityInputs(code=code_from_commit(COMMIT), seeds={"torch": 1}))
    assert result.identity == expected
    assert set(result.files) == {"model.sig", "provenance.sigstore.json", "sbom.cdx.json",
                                 "sbom.sigstore.json", "MODEL_CARD.md"}
    assert mlprov.verify(model_dir, evidence=out, key=key.public).verified


def test_attest_with_a_signer_and_full_inputs(make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    inputs = IdentityInputs(code=code_from_commit(COMMIT),
                            data=[DataRef(name="d", digest="sha256:" + "a" * 64)],
                            config={"lr": 0.1}, seeds={})
    result = mlprov.attest(model_dir, name="m", signer=load_private_key(key.private),
                           out=tmp_path / "ev", inputs=inputs)
    assert result.identity == compute_identity(inputs)


def test_attest_needs_a_key(model_dir: Path, tmp_path: Path):
    with pytest.raises(InputError, match="no signing key"):
        mlprov.attest(model_dir, name="m", out=tmp_path / "ev", commit=COMMIT)
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize("name", ["", "a/b"])
def test_attest_rejects_bad_names(make_key, model_dir: Path, tmp_path: Path, name: str):
    with pytest.raises(InputError, match="invalid model name"):
        mlprov.attest(model_dir, name=name, key=make_key().private, out=tmp_path / "ev",
                      commit=COMMIT)


def test_attest_rejects_a_short_commit(make_key, model_dir: Path, tmp_path: Path):
    with pytest.raises(IdentityError):
        mlprov.attest(model_dir, name="m", key=make_key().private, out=tmp_path / "ev",
                      commit="abc123")


def test_attest_wrong_passphrase_raises_key_error(make_key, model_dir, tmp_path, monkeypatch):
    key = make_key("enc", passphrase=b"one")
    monkeypatch.setenv("MLPROV_KEY_PASSPHRASE", "two")
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "ev", commit=COMMIT)


def test_attest_refuses_out_holding_the_model(make_key, model_dir: Path):
    files = sorted(p.name for p in model_dir.rglob("*"))
    with pytest.raises(InputError, match="would hold the model"):
        mlprov.attest(model_dir / "tokenizer", name="m", key=make_key().private, out=model_dir,
                      commit=COMMIT, overwrite=True)
    assert sorted(p.name for p in model_dir.rglob("*")) == files


def test_out_is_checked_before_hashing(make_key, model_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch):
    """A refused --out fails fast, before a large model is read."""
    out = tmp_path / "ev"
    out.mkdir()
    (out / "other").write_text("x")

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed before checking --out")

    monkeypatch.setattr("mlprov.attestation.hash_path", no_hashing)
    with pytest.raises(InputError, match="not empty"):
        mlprov.attest(model_dir, name="m", key=make_key().private, out=out, commit=COMMIT)


def test_symlink_inside_the_model_needs_allow_symlinks(make_key, model_dir, tmp_path):
    key = make_key()
    (model_dir / "alias").symlink_to("config.json")
    with pytest.raises(UnsafePathError, match="alias"):
        mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "a", commit=COMMIT)
    result = mlprov.attest(model_dir, name="m", key=key.private, out=tmp_path / "b",
                           commit=COMMIT, allow_symlinks=True)
    assert "alias" in result.manifest.by_path()
    assert mlprov.verify(model_dir, evidence=tmp_path / "b", key=key.public).verified


# ------------------------------------------------------------------ write_dir_atomically


def test_write_dir_atomically_replaces_evidence_only(tmp_path: Path):
    out = tmp_path / "ev"
    write_dir_atomically(out, {"model.sig": b"1"}, overwrite=False)
    write_dir_atomically(out, {"model.sig": b"2", "evidence.json": b"{}"}, overwrite=True)
    assert (out / "model.sig").read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]  # no staging left


def test_write_dir_atomically_restores_on_failure(tmp_path: Path, monkeypatch):
    out = tmp_path / "ev"
    write_dir_atomically(out, {"model.sig": b"old"}, overwrite=False)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == out and ".old." not in str(src):  # the new evidence cannot move in
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(InputError, match="cannot write evidence"):
        write_dir_atomically(out, {"model.sig": b"new"}, overwrite=True)
    monkeypatch.undo()
    assert (out / "model.sig").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]


def test_staging_directories_are_private_and_never_taken_over(tmp_path: Path, monkeypatch):
    from mlprov import evidence

    made = evidence._make_sibling(tmp_path, ".ev.")
    assert made.parent == tmp_path and made.name.startswith(".ev.") and len(made.name) == 16
    assert made.stat().st_mode & 0o777 == 0o700 & ~_umask()
    taken = tmp_path / ".ev.000000000000"
    taken.mkdir()
    monkeypatch.setattr(os, "urandom", lambda n: bytes(n))  # every name is taken
    with pytest.raises(FileExistsError):
        evidence._make_sibling(tmp_path, ".ev.")
    with pytest.raises(InputError, match="cannot create"):
        write_dir_atomically(tmp_path / "ev", {"model.sig": b"x"}, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([made.name, taken.name])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("content", [{"notes.txt": "x"}, {"model.sig": "x", "sub/": ""}])
def test_check_out_dir_protects_foreign_directories(tmp_path: Path, content: dict[str, str]):
    out = tmp_path / "ev"
    out.mkdir()
    for name, text in content.items():
        if name.endswith("/"):
            (out / name).mkdir()
        else:
            (out / name).write_text(text)
    with pytest.raises(InputError, match="refusing to replace"):
        check_out_dir(out, overwrite=True)


def test_check_out_dir_accepts_missing_and_empty(tmp_path: Path):
    check_out_dir(tmp_path / "missing", overwrite=False)
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", overwrite=False)
