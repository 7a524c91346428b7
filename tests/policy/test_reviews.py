"""mlprov.reviews: signed approvals and rejections, and which of them count."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest

import mlprov
from mlprov.bundles import sign_statement
from mlprov.errors import InputError, VerificationError
from mlprov.policy import build_input, load_policy, shipped_policies_dir
from mlprov.reviews import REVIEW_PREDICATE_TYPE, evidence_verified, make_review, verify_reviews
from mlprov.scanning import scan_verified_model
from mlprov.signing import load_private_key
from mlprov.statements import Statement, sha256_descriptor
from mlprov.trust import Trust
from tests.policy.conftest import attest_model

PRODUCTION = shipped_policies_dir() / "production.rego"


@pytest.fixture(scope="module")
def verdict(good, lab):
    return mlprov.verify(good.model, evidence=good.evidence, trust=lab.trust)


def sign(verdict, lab, who: str, tmp_path: Path, decision: str = "approve",
         name: str | None = None, **kwargs) -> Path:
    out = tmp_path / f"{name or who}.{decision}.json"
    out.write_bytes(make_review(verdict, signer=load_private_key(lab.key(who)), reviewer=who,
                                decision=decision, comment=f"{who} says {decision}",  # type: ignore[arg-type]
                                **kwargs))
    return out


def check(paths, lab, verdict):
    return verify_reviews(paths, lab.trust, verdict=verdict)


def production_decision(verdict, good, reviews):
    document = build_input(verdict, reviews=reviews, scan=scan_verified_model(good.model, verdict))
    return load_policy(PRODUCTION).evaluate(document)


def test_a_review_binds_the_model_reviewer_time_and_decision(verdict, lab, tmp_path: Path):
    moment = dt.datetime(2026, 1, 31, 12, 30, 5, 999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    path = sign(verdict, lab, "alice", tmp_path, now=moment)
    payload = json.loads(base64.b64decode(json.loads(path.read_bytes())["dsseEnvelope"]["payload"]))
    assert payload["predicateType"] == REVIEW_PREDICATE_TYPE == \
        "https://mlprov.dev/predicates/review/v1"
    assert payload["subject"] == [{"name": "credit-risk", "digest": {
        "sha256": verdict.root_digest.removeprefix("sha256:")}}]
    predicate = payload["predicate"]
    assert predicate["model"] == {"name": "credit-risk", "identity": verdict.identity,
                                  "rootDigest": verdict.root_digest}
    assert predicate["reviewer"] == "alice" and predicate["decision"] == "approve"
    assert predicate["reviewedAt"] == "2026-01-31T10:30:05Z"
    assert set(predicate["evidence"]) == set(verdict.statements)
    [review] = check([path], lab, verdict)
    assert review.counted and review.problem is None
    assert (review.reviewer, review.decision, review.time) == ("alice", "approve",
                                                               "2026-01-31T10:30:05Z")
    assert review.signer is not None and review.signer.name == "alice"


def test_an_independent_approval_lets_production_through(verdict, good, lab, tmp_path: Path):
    assert not production_decision(verdict, good, []).allowed
    reviews = check([sign(verdict, lab, "alice", tmp_path)], lab, verdict)
    decision = production_decision(verdict, good, reviews)
    assert decision.allowed, decision.deny


def test_a_review_signed_by_the_builders_own_key_does_not_count(verdict, good, lab,
                                                                 tmp_path: Path):
    # With the trust file, the builder's key lacks the reviewer role: not counted at all.
    path = sign(verdict, lab, "ci", tmp_path)
    [review] = check([path], lab, verdict)
    assert not review.counted
    assert review.problem == f"{path.name} is signed by ci, which lacks the reviewer role"
    # Even where the builder's key is a reviewer too (one key trusted for every role),
    # production refuses an approval by the builder.
    everything = Trust.single_key(lab.pub("ci"))
    builder_verdict = mlprov.verify(good.model, evidence=good.evidence, trust=lab.trust)
    [as_reviewer] = verify_reviews([path], everything, verdict=verdict)
    assert as_reviewer.counted
    decision = production_decision(builder_verdict, good, [as_reviewer])
    assert decision.deny == ("needs 1 approval(s) by a reviewer who is not the builder; "
                             "found 0 (a review signed by the builder's own key does not count)",)


def test_a_review_of_another_models_digest_does_not_count(verdict, lab, tmp_path: Path):
    other = attest_model(lab, tmp_path / "other", extra={"extra.bin": b"different bytes"})
    other_verdict = mlprov.verify(other.model, evidence=other.evidence, trust=lab.trust)
    assert other_verdict.root_digest != verdict.root_digest
    path = sign(other_verdict, lab, "alice", tmp_path)
    [review] = check([path], lab, verdict)
    assert not review.counted
    assert review.problem == (f"{path.name} reviews another model "
                              f"({other_verdict.root_digest}), not {verdict.root_digest}")
    assert review.reviewer is None and review.decision is None  # nothing of it is kept


def test_a_review_of_another_identity_does_not_count(verdict, lab, tmp_path: Path):
    statement = Statement(
        subject=[sha256_descriptor("credit-risk", verdict.root_digest.removeprefix("sha256:"))],
        predicate_type=REVIEW_PREDICATE_TYPE,
        predicate={"model": {"name": "credit-risk", "identity": "mlid:sha256:" + "1" * 64,
                             "rootDigest": verdict.root_digest},
                   "reviewer": "alice", "decision": "approve", "comment": "",
                   "reviewedAt": "2026-01-31T12:00:00Z"})
    path = tmp_path / "r.json"
    path.write_bytes(sign_statement(statement, load_private_key(lab.key("alice"))))
    [review] = check([path], lab, verdict)
    assert not review.counted and "reviews another version" in (review.problem or "")


def test_forged_reviews_are_rejected(verdict, lab, tmp_path: Path):
    genuine = sign(verdict, lab, "alice", tmp_path)
    document = json.loads(genuine.read_bytes())
    # 1. The payload edited after signing (approve -> a comment changed).
    payload = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    payload["predicate"]["comment"] = "edited"
    edited = dict(document, dsseEnvelope=dict(document["dsseEnvelope"], payload=base64.b64encode(
        json.dumps(payload).encode()).decode()))
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    # 2. No valid signature at all.
    unsigned = dict(document, dsseEnvelope=dict(document["dsseEnvelope"], signatures=[
        {"sig": base64.b64encode(b"\x00" * 64).decode(), "keyid": ""}]))
    (tmp_path / "unsigned.json").write_text(json.dumps(unsigned))
    # 3. Signed by a key nobody trusts, claiming to be alice.
    mallory = sign(verdict, lab, "mallory", tmp_path, name="mallory-as-alice")
    # 4. Not a review at all (the model's provenance).
    provenance = Path(str(verdict.statements["provenance.sigstore.json"].path))
    # 5. Not even JSON.
    (tmp_path / "junk.json").write_text("not json")
    paths = [tmp_path / "edited.json", tmp_path / "unsigned.json", mallory, provenance,
             tmp_path / "junk.json", tmp_path / "missing.json"]
    results = check(paths, lab, verdict)
    assert [r.counted for r in results] == [False] * 6
    problems = [r.problem or "" for r in results]
    assert "not signed by any key trusted" in problems[0]
    assert "not signed by any key trusted" in problems[1]
    assert "not signed by any key trusted" in problems[2]
    assert "lacks the reviewer role" in problems[3] or "predicate type" in problems[3]
    assert problems[4] and problems[5]
    assert build_input(verdict, reviews=results)["reviews"] == []


def test_a_review_is_signed_only_after_the_evidence_verified(good, lab, copy_of):
    signer = load_private_key(lab.key("alice"))
    with pytest.raises(InputError, match="not verified"):
        make_review(good.evidence, signer=signer, reviewer="alice", decision="approve",
                    comment="")
    attested = copy_of(good)
    (attested.evidence / "eval.sigstore.json").write_text("{}")
    with pytest.raises(VerificationError, match="refusing to review evidence that did not "
                                                "verify"):
        make_review(attested.evidence, signer=signer, reviewer="alice", decision="approve",
                    comment="", trust=lab.trust)
    # Evidence alone is enough when it verifies (the files check is then skipped).
    bundle = make_review(good.evidence, signer=signer, reviewer="alice", decision="reject",
                         comment="no", trust=lab.trust)
    assert b"dsseEnvelope" in bundle


def test_review_arguments_are_checked(verdict, lab):
    signer = load_private_key(lab.key("alice"))
    with pytest.raises(InputError, match="approve or reject"):
        make_review(verdict, signer=signer, reviewer="a", decision="maybe",  # type: ignore[arg-type]
                    comment="")
    with pytest.raises(InputError, match="invalid reviewer"):
        make_review(verdict, signer=signer, reviewer=" ", decision="approve", comment="")
    with pytest.raises(InputError, match="longer than"):
        make_review(verdict, signer=signer, reviewer="a", decision="approve",
                    comment="x" * 10_001)
    with pytest.raises(InputError, match="SHA-256"):
        verify_reviews([], lab.trust, root_digest="abc", identity="x")


def test_evidence_verified(verdict):
    assert evidence_verified(verdict)
    assert not evidence_verified(mlprov.Verdict(model="m", evidence="e"))


def test_a_review_of_one_model_never_counts_for_another_with_the_same_bytes(lab, tmp_path):
    """Same files, same recipe (commit, seeds, data), another name: identity and root digest
    are equal, so only the name and the provenance bundle tell the two apart (issue 10 item 8).
    """
    a = attest_model(lab, tmp_path / "a", name="model-a")
    b_evidence = tmp_path / "b-evidence"
    mlprov.attest(a.model, name="model-b", key=lab.key("ci"), out=b_evidence,
                  commit="0123456789abcdef0123456789abcdef01234567")
    verdict_a = mlprov.verify(a.model, evidence=a.evidence, trust=lab.trust)
    verdict_b = mlprov.verify(a.model, evidence=b_evidence, trust=lab.trust)
    assert (verdict_a.identity, verdict_a.root_digest) == (verdict_b.identity,
                                                           verdict_b.root_digest)
    review = sign(verdict_a, lab, "alice", tmp_path)
    [for_a] = verify_reviews([review], lab.trust, verdict=verdict_a)
    [for_b] = verify_reviews([review], lab.trust, verdict=verdict_b)
    assert for_a.counted and not for_b.counted
    assert "reviews another model ('model-a'), not 'model-b'" in (for_b.problem or "")
    # Checked without name and provenance, a review passes the signature checks but the
    # policy input leaves it out: only a review bound to all four facts counts.
    [loose] = verify_reviews([review], lab.trust, root_digest=verdict_b.root_digest or "",
                             identity=verdict_b.identity or "")
    assert loose.counted
    assert build_input(verdict_b, reviews=[loose])["reviews"] == []
    assert len(build_input(verdict_a, reviews=[for_a])["reviews"]) == 1


def test_a_review_names_the_provenance_it_was_made_with(verdict, lab, tmp_path):
    review = sign(verdict, lab, "alice", tmp_path)
    [other] = verify_reviews([review], lab.trust, verdict=verdict,
                             provenance="sha256:" + "0" * 64)
    assert not other.counted and "reviews other evidence" in (other.problem or "")
    with pytest.raises(InputError, match="needs the model"):
        verify_reviews([review], lab.trust)
