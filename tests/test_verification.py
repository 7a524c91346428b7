"""The ``mlprov.verify`` API and its verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlprov
from mlprov.errors import InputError, KeyMaterialError, TrustError, VerificationError
from mlprov.hashing import Manifest, hash_path
from mlprov.trust import Trust, load_trust
from mlprov.verification import VERDICT_SCHEMA, Check, Verdict, compare_files
from tests.conftest import COMMIT


@pytest.fixture
def signed(make_key, model_dir: Path, tmp_path: Path):
    key = make_key()
    out = tmp_path / "ev"
    mlprov.attest(model_dir, name="m", key=key.private, out=out, commit=COMMIT)
    return model_dir, out, key


def test_verify_returns_a_verdict(signed):
    model, out, key = signed
    verdict = mlprov.verify(model, evidence=out, key=key.public)
    assert isinstance(verdict, Verdict)
    assert verdict.verified
    assert verdict.failures() == []
    assert verdict.name == "m"
    assert verdict.root_digest == f"sha256:{hash_path(model).root}"


def test_the_verdicts_provenance_is_the_model_of_the_verified_facts(signed):
    from mlprov.provenance import TrainingProvenance, read_provenance

    model, out, key = signed
    verdict = mlprov.verify(model, evidence=out, key=key.public)
    facts = verdict.provenance_facts
    assert facts is not None and facts.name == "m" and facts.identity == verdict.identity
    statement = verdict.statements["provenance.sigstore.json"].statement
    expected = read_provenance(statement, what="provenance.sigstore.json")
    assert isinstance(verdict.provenance, TrainingProvenance)
    assert verdict.provenance == expected
    assert verdict.provenance is verdict.provenance  # built once
    assert Verdict(model="m", evidence="e").provenance is None


def test_verdict_fails_when_any_check_fails(signed):
    model, out, key = signed
    (model / "config.json").unlink()
    verdict = mlprov.verify(model, evidence=out, key=key.public)
    assert not verdict.verified
    [failure] = verdict.failures()
    assert failure.name == "files"
    assert "missing: config.json" in failure.detail


def test_verify_accepts_a_trust_object(signed, tmp_path: Path):
    model, out, _key = signed
    trust_file = tmp_path / "trust.yaml"
    trust_file.write_text("keys: [{name: ci, public_key: keys/ci.key.pub, roles: [builder]}]\n")
    trust = load_trust(trust_file)
    assert mlprov.verify(model, evidence=out, trust=trust).verified
    assert mlprov.verify(model, evidence=out, trust=trust_file).signers == {
        "model.sig": "ci", "provenance.sigstore.json": "ci", "sbom.sigstore.json": "ci"}


def test_verify_input_errors(signed, tmp_path: Path):
    model, out, key = signed
    with pytest.raises(InputError, match="nothing to trust"):
        mlprov.verify(model, evidence=out)
    with pytest.raises(InputError, match="not both"):
        mlprov.verify(model, evidence=out, trust=tmp_path / "t.yaml", key=key.public)
    with pytest.raises(InputError, match="model not found"):
        mlprov.verify(tmp_path / "nope", evidence=out, key=key.public)
    with pytest.raises(InputError, match="evidence not found"):
        mlprov.verify(model, evidence=tmp_path / "nope", key=key.public)
    with pytest.raises(KeyMaterialError):
        mlprov.verify(model, evidence=out, key=key.private)
    (tmp_path / "t.yaml").write_text("keys: []\n")
    with pytest.raises(TrustError):
        mlprov.verify(model, evidence=out, trust=tmp_path / "t.yaml")


def test_an_empty_verdict_is_not_verified():
    assert not Verdict(model="m", evidence="e").verified


def test_a_skipped_check_is_not_verified():
    verdict = Verdict(model="m", evidence="e",
                      checks=[Check("a", True, "ok"), Check("b", None, "skipped: x")])
    assert not verdict.verified
    assert verdict.failures() == []


def test_verdict_json_is_one_camel_case_document(signed):
    model, out, key = signed
    document = mlprov.verify(model, evidence=out, key=key.public).to_json_dict()
    assert document["schema"] == VERDICT_SCHEMA
    assert set(document) == {"schema", "verified", "model", "evidence", "name", "identity",
                             "rootDigest", "signers", "checks", "lineage"}
    assert json.loads(json.dumps(document)) == document
    assert set(document["checks"][0]) == {"name", "ok", "detail"}


def test_compare_files_names_every_kind_and_caps_the_list():
    actual = Manifest(name="m", files=())
    signed = {f"f{i:02}": "0" * 64 for i in range(12)}
    with pytest.raises(VerificationError) as info:
        compare_files(signed, actual, label="m")
    assert "missing: f00, f01" in str(info.value)
    assert "(+2 more)" in str(info.value)


def test_subject_is_skipped_not_failed_when_files_fail(signed):
    model, out, key = signed
    (model / "weights.bin").write_bytes(b"x")
    checks = {c.name: c for c in mlprov.verify(model, evidence=out, key=key.public).checks}
    assert checks["files"].ok is False
    assert checks["subject"].ok is None
    assert checks["identity"].ok is True


def test_trust_for_a_single_key_covers_every_role(signed):
    _model, _out, key = signed
    trust = Trust.single_key(key.public)
    assert len(trust.keys) == 1 and len(trust.keys[0].roles) == 4


def test_single_provenance_file_inside_the_model_verifies(make_key, model_dir):
    """The evidence dir inside the model is left out when verifying one bundle from it."""
    import mlprov

    key = make_key()
    evidence = model_dir / "evidence"
    mlprov.attest(model_dir, name="m", key=key.private, out=evidence,
                  commit="0123456789abcdef0123456789abcdef01234567")
    verdict = mlprov.verify(model_dir, evidence=evidence / "provenance.sigstore.json",
                            key=key.public)
    assert verdict.verified, verdict.failures()


def test_a_prehashed_job_is_filtered_by_the_signed_ignore_paths(make_key, model_dir, tmp_path):
    """A background hash that ignored fewer paths is narrowed to the signed view."""
    import mlprov
    from mlprov.hashing import DEFAULT_IGNORE_PATHS, HashJob

    key = make_key()
    (model_dir / "notes").mkdir()
    (model_dir / "notes" / "scratch.txt").write_text("left out at signing")
    evidence = tmp_path / "ev"
    from mlprov.attestation import attest
    from mlprov.bundles import sign_statement
    from mlprov.hashing import hash_path
    from mlprov.oms import manifest_statement
    from mlprov.signing import load_private_key

    attest(model_dir, name="m", key=key.private, out=evidence,
           commit="0123456789abcdef0123456789abcdef01234567")
    # Re-sign model.sig over a manifest that ignores notes/, as OMS --ignore-paths would.
    manifest = hash_path(model_dir, ignore_paths=(*DEFAULT_IGNORE_PATHS, "notes"))
    oms = tmp_path / "model.sig"
    oms.write_bytes(sign_statement(manifest_statement(manifest), load_private_key(key.private)))
    job = HashJob(model_dir)
    verdict = mlprov.verify(model_dir, evidence=oms, key=key.public, hashing=job)
    assert verdict.verified, verdict.failures()
    # and a tampered ignored-in-the-job file is still caught
    (model_dir / "weights.bin").write_bytes(b"x")
    verdict = mlprov.verify(model_dir, evidence=oms, key=key.public, hashing=HashJob(model_dir))
    assert not verdict.verified
    assert "changed: weights.bin" in verdict.failures()[0].detail


def _reformat(bundle: Path) -> None:
    """Rewrite a bundle's JSON with other whitespace: same signature, other bytes."""
    bundle.write_text(json.dumps(json.loads(bundle.read_bytes()), indent=4) + "\n")


def test_an_evidence_file_changed_after_indexing_is_refused(make_key, model_dir, tmp_path):
    """Every other check passes (the bundle still verifies); only the index check sees it."""
    key = make_key()
    out = tmp_path / "ev"
    mlprov.attest(model_dir, name="m", key=key.private, out=out, commit=COMMIT)
    assert mlprov.verify(model_dir, evidence=out, key=key.public).verified
    _reformat(out / "sbom.sigstore.json")
    verdict = mlprov.verify(model_dir, evidence=out, key=key.public)
    assert not verdict.verified
    assert any("sbom.sigstore.json changed since it was indexed" in f.detail
               for f in verdict.failures())
