"""Issue 2 item 12: every bad input gives one clear stderr line, the right exit code, no
traceback, and leaves what was already stored intact."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from mlprov.bundles import sign_statement
from mlprov.hashing import root_digest
from mlprov.oms import OMS_PREDICATE_TYPE
from mlprov.signing import load_private_key
from mlprov.statements import Statement, sha256_descriptor
from tests.cli.conftest import COMMIT, Attested, assert_error, snapshot

# ---------------------------------------------------------------- verify: the model changed


def _verify_fails(verify_cli, attested: Attested, *needles: str) -> str:
    """Verify must fail (exit 1) and must not touch the model or the evidence."""
    before = snapshot(attested.model), snapshot(attested.evidence)
    r = verify_cli(attested.model, attested.evidence, "--key", str(attested.key.public))
    line = assert_error(r, 1, "verification failed", *needles)
    assert r.stdout == ""
    assert (snapshot(attested.model), snapshot(attested.evidence)) == before
    return line


def test_changed_file_is_named(verify_cli, attested: Attested):
    (attested.model / "tokenizer" / "vocab.txt").write_text("a\nb\nX\n")
    _verify_fails(verify_cli, attested, "changed: tokenizer/vocab.txt")


def test_extra_file_is_named(verify_cli, attested: Attested):
    (attested.model / "extra.bin").write_bytes(b"\0")
    _verify_fails(verify_cli, attested, "extra: extra.bin")


def test_missing_file_is_named(verify_cli, attested: Attested):
    (attested.model / "config.json").unlink()
    _verify_fails(verify_cli, attested, "missing: config.json")


def test_changed_extra_and_missing_together(verify_cli, attested: Attested):
    (attested.model / "weights.bin").write_bytes(b"tampered")
    (attested.model / "config.json").unlink()
    (attested.model / "new.txt").write_text("x")
    _verify_fails(verify_cli, attested, "changed: weights.bin", "missing: config.json",
                  "extra: new.txt")


def test_symlink_leaving_the_model_root_fails_verify(verify_cli, attested: Attested,
                                                     tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (attested.model / "escape").symlink_to(outside)
    _verify_fails(verify_cli, attested, "escape")


def test_symlink_swapped_to_leave_the_root_fails_verify(run_cli, verify_cli, make_key,
                                                        model_dir: Path, tmp_path: Path):
    key = make_key()
    (model_dir / "alias.txt").symlink_to("config.json")
    out = tmp_path / "ev"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private), "--out",
                str(out), "--commit", COMMIT, "--allow-symlinks")
    assert r.exit_code == 0, r.stderr
    assert verify_cli(model_dir, out, "--key", str(key.public)).exit_code == 0
    (model_dir / "alias.txt").unlink()
    (model_dir / "alias.txt").symlink_to(tmp_path / "keys" / "ci.key")
    _verify_fails(verify_cli, Attested(model_dir, key, out), "symlink leaves the model root",
                  "alias.txt")


# ---------------------------------------------------------------- verify: who signed


def test_wrong_key(verify_cli, attested: Attested, make_key):
    other = make_key("other")
    r = verify_cli(attested.model, attested.evidence, "--key", str(other.public))
    assert_error(r, 1, "not signed by any key trusted by")


def _trust(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text(f"version: 1\nkeys:\n{entries}")
    return path


def test_key_not_in_trust_file(verify_cli, attested: Attested, make_key, tmp_path: Path):
    make_key("other")
    trust = _trust(tmp_path, "  - {name: other, public_key: keys/other.key.pub, "
                             "roles: [builder]}\n")
    assert_error(verify_cli(attested.model, attested.evidence, "--trust", str(trust)), 1,
                 "not signed by any key trusted by", "trust.yaml")


def test_key_without_the_builder_role(verify_cli, attested: Attested, tmp_path: Path):
    trust = _trust(tmp_path, "  - {name: ci, public_key: keys/ci.key.pub, "
                             "roles: [reviewer, evaluator]}\n")
    assert_error(verify_cli(attested.model, attested.evidence, "--trust", str(trust)), 1,
                 "signed by ci", "lacks the builder role")


# ---------------------------------------------------------------- verify: edited evidence


@pytest.mark.parametrize("field", ["name", "identity"])
def test_edited_evidence_index(verify_cli, attested: Attested, field: str):
    index = attested.evidence / "evidence.json"
    document = json.loads(index.read_text())
    document[field] = "other" if field == "name" else "mlid:sha256:" + "0" * 64
    index.write_text(json.dumps(document))
    _verify_fails(verify_cli, attested, "evidence.json", "edited")


@pytest.mark.parametrize("file_name", ["provenance.sigstore.json", "model.sig"])
def test_edited_byte_inside_signed_payload(verify_cli, attested: Attested, file_name: str):
    path = attested.evidence / file_name
    bundle = json.loads(path.read_text())
    payload = bytearray(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    at = payload.index(b'"sha256":"') + len(b'"sha256":"')
    payload[at] = ord("0") if payload[at] != ord("0") else ord("1")
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
    path.write_text(json.dumps(bundle, indent=2))
    _verify_fails(verify_cli, attested, file_name, "not signed")


def test_truncated_bundle(verify_cli, attested: Attested):
    path = attested.evidence / "provenance.sigstore.json"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    _verify_fails(verify_cli, attested, "provenance.sigstore.json", "not valid JSON")


@pytest.mark.parametrize("content", [b"hello, not json\n", b"", b"[1, 2]"])
def test_non_json_bundle(verify_cli, attested: Attested, content: bytes):
    (attested.evidence / "model.sig").write_bytes(content)
    _verify_fails(verify_cli, attested, "model.sig")


def test_unknown_bundle_media_type(verify_cli, attested: Attested):
    path = attested.evidence / "model.sig"
    bundle = json.loads(path.read_text())
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle.v9+json"
    path.write_text(json.dumps(bundle))
    _verify_fails(verify_cli, attested, "unknown bundle media type",
                  "application/vnd.dev.sigstore.bundle.v9+json")


def test_missing_evidence_file(verify_cli, attested: Attested):
    (attested.evidence / "model.sig").unlink()
    _verify_fails(verify_cli, attested, "model.sig")


@pytest.mark.parametrize("bad_name", ["../x", "/etc/passwd", "a/../../x"])
@pytest.mark.parametrize("as_single_file", [False, True])
def test_unsafe_path_in_signed_manifest(verify_cli, attested: Attested, bad_name: str,
                                        as_single_file: bool):
    """A manifest signed by the trusted key may still not name a path outside the root."""
    digest = "ab" * 32
    statement = Statement(
        subject=[sha256_descriptor("model", root_digest([digest]))],
        predicate_type=OMS_PREDICATE_TYPE,
        predicate={"serialization": {"method": "files", "hash_type": "sha256",
                                     "allow_symlinks": False},
                   "resources": [{"name": bad_name, "algorithm": "sha256", "digest": digest}]})
    signed = sign_statement(statement, load_private_key(attested.key.private))
    (attested.evidence / "model.sig").write_bytes(signed)
    before = snapshot(attested.model)
    evidence = attested.evidence / "model.sig" if as_single_file else attested.evidence
    r = verify_cli(attested.model, evidence, "--key", str(attested.key.public))
    assert_error(r, 1, "unsafe path", repr(bad_name))
    assert snapshot(attested.model) == before


# ---------------------------------------------------------------- attest: refused inputs


def _attest(run_cli, model: Path, key: Path, out: Path, *extra: str, env=None):
    return run_cli("attest", str(model), "--name", "m", "--key", str(key), "--out", str(out),
                   "--commit", COMMIT, *extra, env=env)


@pytest.mark.parametrize("allow", [False, True])
def test_attest_refuses_symlink_leaving_the_root(run_cli, make_key, model_dir: Path,
                                                 tmp_path: Path, allow: bool):
    key = make_key()
    (model_dir / "escape").symlink_to(key.private)
    out = tmp_path / "ev"
    r = _attest(run_cli, model_dir, key.private, out, *(["--allow-symlinks"] if allow else []))
    assert_error(r, 3, "escape")
    assert not os.path.lexists(out)


def test_attest_refuses_empty_model_directory(run_cli, make_key, tmp_path: Path):
    key = make_key()
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "ev"
    assert_error(_attest(run_cli, empty, key.private, out), 3, "no files", "empty")
    assert not os.path.lexists(out)


def test_attest_wrong_passphrase(run_cli, make_key, model_dir: Path, tmp_path: Path):
    key = make_key("enc", passphrase=b"right horse")
    out = tmp_path / "ev"
    r = _attest(run_cli, model_dir, key.private, out,
                env={"MLPROV_KEY_PASSPHRASE": "wrong horse"})
    assert_error(r, 3, "wrong passphrase", "enc.key")
    assert not os.path.lexists(out)
    r = _attest(run_cli, model_dir, key.private, out, env={"MLPROV_KEY_PASSPHRASE": "right horse"})
    assert r.exit_code == 0, r.stderr


def test_attest_encrypted_key_without_passphrase(run_cli, make_key, model_dir: Path,
                                                 tmp_path: Path):
    key = make_key("enc", passphrase=b"pw")
    out = tmp_path / "ev"
    assert_error(_attest(run_cli, model_dir, key.private, out), 3, "MLPROV_KEY_PASSPHRASE")
    assert not os.path.lexists(out)


def test_attest_public_key_as_private_key(run_cli, make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    out = tmp_path / "ev"
    assert_error(_attest(run_cli, model_dir, key.public, out), 3, "ci.key.pub")
    assert not os.path.lexists(out)


def test_failed_attest_keeps_existing_evidence(run_cli, attested: Attested, verify_cli):
    """--force replaces evidence only after the new evidence is complete."""
    before = snapshot(attested.evidence)
    (attested.model / "escape").symlink_to("/etc/passwd")
    r = _attest(run_cli, attested.model, attested.key.private, attested.evidence, "--force")
    assert_error(r, 3, "escape")
    assert snapshot(attested.evidence) == before
    (attested.model / "escape").unlink()
    assert verify_cli(attested.model, attested.evidence, "--key",
                      str(attested.key.public)).exit_code == 0


def test_attest_refuses_non_empty_out_without_force(run_cli, attested: Attested):
    before = snapshot(attested.evidence)
    r = _attest(run_cli, attested.model, attested.key.private, attested.evidence)
    assert_error(r, 3, "not empty", "--force")
    assert snapshot(attested.evidence) == before


def test_force_never_replaces_a_directory_mlprov_did_not_write(run_cli, make_key,
                                                               model_dir: Path, tmp_path: Path):
    key = make_key()
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    before = snapshot(out)
    assert_error(_attest(run_cli, model_dir, key.private, out, "--force"), 3, "refusing")
    assert snapshot(out) == before


@pytest.mark.parametrize("where", ["model", "parent"])
def test_out_holding_the_model_is_refused(run_cli, make_key, model_dir: Path, where: str):
    key = make_key()
    out = model_dir if where == "model" else model_dir.parent
    before = snapshot(model_dir)
    assert_error(_attest(run_cli, model_dir, key.private, out, "--force"), 3,
                 "would hold the model")
    assert snapshot(model_dir) == before


def test_out_is_a_file(run_cli, make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    out = tmp_path / "file"
    out.write_text("x")
    assert_error(_attest(run_cli, model_dir, key.private, out, "--force"), 2)
    assert out.read_text() == "x"


def _git(repo: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True)


@pytest.fixture
def dirty_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "code"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('train')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "init")
    (repo / "train.py").write_text("print('changed')\n")
    return repo


def test_dirty_repo_is_refused(run_cli, make_key, model_dir: Path, tmp_path: Path,
                               dirty_repo: Path):
    key = make_key()
    out = tmp_path / "ev"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--repo", str(dirty_repo))
    assert_error(r, 3, "uncommitted changes", "--allow-dirty")
    assert not os.path.lexists(out)


def test_dirty_repo_allowed_is_recorded(run_cli, verify_cli, make_key, model_dir: Path,
                                        tmp_path: Path, dirty_repo: Path):
    from tests.cli.conftest import read_payload

    key = make_key()
    out = tmp_path / "ev"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private),
                "--out", str(out), "--repo", str(dirty_repo), "--allow-dirty")
    assert r.exit_code == 0, r.stderr
    predicate = read_payload(out / "provenance.sigstore.json")["predicate"]
    code = predicate["buildDefinition"]["externalParameters"]["code"]
    assert code["dirty"] is True and len(code["commit"]) == 40
    deps = predicate["buildDefinition"]["resolvedDependencies"]
    assert deps[0]["annotations"] == {"dirty": True}
    assert verify_cli(model_dir, out, "--key", str(key.public)).exit_code == 0


# ---------------------------------------------------------------- usage and trust material


def test_verify_needs_key_or_trust(verify_cli, attested: Attested):
    assert_error(verify_cli(attested.model, attested.evidence), 2, "--trust", "--key",
                 "mlprov verify --help")


def test_verify_refuses_key_and_trust(verify_cli, attested: Attested, tmp_path: Path):
    trust = _trust(tmp_path, "  - {name: ci, public_key: keys/ci.key.pub, roles: [builder]}\n")
    r = verify_cli(attested.model, attested.evidence, "--trust", str(trust), "--key",
                   str(attested.key.public))
    assert_error(r, 2, "exactly one")


def test_nonexistent_model_is_a_usage_error(run_cli, verify_cli, attested: Attested,
                                            tmp_path: Path):
    """A path typed on the command line that does not exist is exit 2, for every command."""
    missing = tmp_path / "no-such-model"
    assert_error(verify_cli(missing, attested.evidence, "--key", str(attested.key.public)), 2,
                 "no-such-model")
    out = tmp_path / "ev2"
    assert_error(_attest(run_cli, missing, attested.key.private, out), 2, "no-such-model")
    assert not os.path.lexists(out)


@pytest.mark.parametrize("flag", ["--evidence", "--key", "--trust"])
def test_nonexistent_verify_paths_are_usage_errors(run_cli, attested: Attested,
                                                   tmp_path: Path, flag: str):
    args = {"--evidence": str(attested.evidence), "--key": str(attested.key.public)}
    if flag == "--trust":
        del args["--key"]
    args[flag] = str(tmp_path / "nope")
    r = run_cli("verify", str(attested.model), *[x for kv in args.items() for x in kv])
    assert_error(r, 2, flag, "nope")


def test_missing_attest_key_is_a_usage_error(run_cli, model_dir: Path, tmp_path: Path):
    out = tmp_path / "ev"
    assert_error(_attest(run_cli, model_dir, tmp_path / "nope.key", out), 2, "--key")
    assert not os.path.lexists(out)


@pytest.mark.parametrize(("content", "needle"), [
    ("keys: [\n", "not valid YAML"),
    ("keys: 5\n", "keys"),
    ("version: 1\nkeys: []\n", "trusts no signer"),
    ("keys:\n  - {name: ci, public_key: keys/ci.key.pub, roles: [wizard]}\n", "roles"),
    ("keys:\n  - {name: ci, public_key: keys/ci.key.pub, roles: [builder], extra: 1}\n",
     "extra"),
    ("keys:\n  - {name: ci, public_key: keys/absent.pub, roles: [builder]}\n", "absent.pub"),
    ("keys:\n  - {name: ci, public_key: keys/ci.key, roles: [builder]}\n", "ci.key"),
])
def test_malformed_trust_file(verify_cli, attested: Attested, tmp_path: Path, content: str,
                              needle: str):
    trust = tmp_path / "trust.yaml"
    trust.write_text(content)
    assert_error(verify_cli(attested.model, attested.evidence, "--trust", str(trust)), 3,
                 needle)


def test_private_key_given_as_verify_key(verify_cli, attested: Attested):
    assert_error(verify_cli(attested.model, attested.evidence, "--key",
                            str(attested.key.private)), 3, "private key")
