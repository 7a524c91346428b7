"""SBOM, eval and model card through the CLI: attest, verify, inspect, card (issue 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import assert_error
from tests.conftest import COMMIT
from tests.evidence_kit import (
    METRICS,
    Evidence,
    attest_full,
    payload,
    reindex,
    resign,
    sha256_file,
    write_inputs,
    write_trust,
)

SBOM, SBOM_BUNDLE, EVAL, CARD = ("sbom.cdx.json", "sbom.sigstore.json", "eval.sigstore.json",
                                 "MODEL_CARD.md")


@pytest.fixture
def ev(make_key, model_dir: Path, tmp_path: Path) -> Evidence:
    return attest_full(tmp_path, model_dir, make_key("ci"), make_key("qa"))


def _verify(run_cli, ev: Evidence, *extra: str):
    return run_cli("verify", str(ev.model), "--evidence", str(ev.evidence),
                   "--trust", str(ev.trust), *extra)


def _checks(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


# ------------------------------------------------------------------ attest writes it all


def test_attest_cli_writes_sbom_eval_and_card(run_cli, make_key, model_dir, tmp_path):
    ci, qa = make_key("ci"), make_key("qa")
    metrics, card, env = write_inputs(tmp_path / "in")
    out = tmp_path / "ev"
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(ci.private), "--out",
                str(out), "--commit", COMMIT, "--metrics", str(metrics), "--eval-key",
                str(qa.private), "--eval-data", f"extra=hf://d/x@sha256:{'3' * 64}",
                "--card", str(card), "--environment", str(env), "--json")
    assert r.exit_code == 0, r.stderr
    document = json.loads(r.stdout)
    assert set(document["files"]) == {"model.sig", "provenance.sigstore.json", SBOM,
                                      SBOM_BUNDLE, EVAL, CARD}
    statement = payload(out / SBOM_BUNDLE)
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["subject"][0]["digest"]["sha256"] == document["rootDigest"][7:]
    assert statement["predicate"] == json.loads((out / SBOM).read_text())
    evaluation = payload(out / EVAL)
    assert evaluation["predicateType"] == "https://mlprov.dev/predicates/eval/v1"
    assert evaluation["subject"] == statement["subject"]
    assert [d["name"] for d in evaluation["predicate"]["datasets"]] == ["extra", "holdout"]
    refs = {r["url"]: r for r in statement["predicate"]["metadata"]["component"][
        "externalReferences"] if "hashes" in r}
    assert refs[CARD]["type"] == "model-card"
    assert refs[CARD]["hashes"] == [{"alg": "SHA-256", "content": sha256_file(out / CARD)}]
    assert refs[EVAL]["hashes"][0]["content"] == sha256_file(out / EVAL)
    trust = write_trust(tmp_path / "trust.yaml", [("ci", ci.public, ["builder"]),
                                                  ("qa", qa.public, ["evaluator"])])
    r = run_cli("verify", str(model_dir), "--evidence", str(out), "--trust", str(trust), "--json")
    assert r.exit_code == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["signers"][EVAL] == "qa"
    assert verdict["signers"][SBOM_BUNDLE] == "ci"


def test_provenance_records_the_run(ev: Evidence):
    """Issue 3 item 6: builder, invocation, times, platform, Python, mlprov; code and data."""
    predicate = payload(ev.file("provenance.sigstore.json"))["predicate"]
    run, definition = predicate["runDetails"], predicate["buildDefinition"]
    assert run["builder"]["id"] == "https://ci.example/train"
    assert run["builder"]["version"]["mlprov"] == "0.1.0"
    assert run["metadata"]["invocationId"] == "run-42"
    assert run["metadata"]["startedOn"].endswith("Z")
    assert run["metadata"]["finishedOn"] >= run["metadata"]["startedOn"]
    internal = definition["internalParameters"]
    assert internal["python"].count(".") == 2 and "-" in internal["platform"]
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["code"]["digest"] == {"gitCommit": COMMIT}
    assert deps["dataset:train"]["digest"] == {"sha256": "2" * 64}
    assert deps["dataset:train"]["uri"] == "hf://datasets/acme/corpus@r1"


@pytest.mark.parametrize("flag", [["--eval-key", "KEY"], ["--eval-data", "x@sha256:" + "1" * 64]])
def test_eval_options_need_metrics(run_cli, make_key, model_dir, tmp_path, flag):
    key = make_key()
    flag = [str(key.private) if f == "KEY" else f for f in flag]
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private), "--out",
                str(tmp_path / "ev"), "--commit", COMMIT, *flag)
    assert_error(r, 2, flag[0], "--metrics")
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize(("option", "content", "needle"), [
    ("--card", "licence: mit\n", "licence"),
    ("--card", "approach: clustering\n", "approach"),
    ("--card", "- a list\n", "not a mapping"),
    ("--environment", "numpy>=1.0\n", "not pinned"),
    ("--environment", "-r other.txt\n", "-r is not supported"),
    ("--metrics", '{"metrics": {"auc": "high"}}', "metrics.auc is not a number"),
])
def test_bad_claim_inputs_are_one_line_errors(run_cli, make_key, model_dir, tmp_path,
                                              option, content, needle):
    key = make_key()
    path = tmp_path / "input.txt"
    path.write_text(content)
    r = run_cli("attest", str(model_dir), "--name", "m", "--key", str(key.private), "--out",
                str(tmp_path / "ev"), "--commit", COMMIT, option, str(path))
    assert_error(r, 3, needle)
    assert not (tmp_path / "ev").exists()


# ------------------------------------------------------- verify names what is wrong


def test_verify_covers_sbom_eval_and_card(run_cli, ev: Evidence):
    r = _verify(run_cli, ev, "--json")
    assert r.exit_code == 0, r.stderr
    checks = _checks(r)
    for name in (f"signature:{SBOM_BUNDLE}", "sbom", f"signature:{EVAL}", "eval", "card"):
        assert checks[name]["ok"] is True, checks[name]
    assert "signed by qa (evaluator)" in checks[f"signature:{EVAL}"]["detail"]


@pytest.mark.parametrize("name", [SBOM, SBOM_BUNDLE, EVAL, CARD])
@pytest.mark.parametrize("clean_index", [False, True])
def test_missing_claim_is_named(run_cli, ev: Evidence, name: str, clean_index: bool):
    ev.file(name).unlink()
    if clean_index:  # the attacker also drops it from the unsigned index
        index = json.loads(ev.file("evidence.json").read_text())
        del index["files"][name]
        ev.file("evidence.json").write_text(json.dumps(index))
    assert_error(_verify(run_cli, ev), 1, name)


def _edit_json(path: Path, edit) -> None:
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document, indent=2))


def _bump_first_package(bom: dict) -> None:
    package = next(c for c in bom["components"] if c["type"] == "library")
    package["version"] += ".1"


@pytest.mark.parametrize("clean_index", [False, True])
@pytest.mark.parametrize(("name", "alter", "needle"), [
    (SBOM, lambda p: _edit_json(p, _bump_first_package), "sbom.cdx.json"),
    (CARD, lambda p: p.write_text(p.read_text().replace("0.91", "0.99")), "MODEL_CARD.md"),
    (EVAL, lambda p: _edit_json(p, lambda b: b["dsseEnvelope"].update(
        payload=b["dsseEnvelope"]["payload"][:-8] + "AAAAAAA=")), "eval.sigstore.json"),
    (SBOM_BUNDLE, lambda p: _edit_json(p, lambda b: b["dsseEnvelope"]["signatures"][0].update(
        sig="A" + b["dsseEnvelope"]["signatures"][0]["sig"][1:])), "sbom.sigstore.json"),
])
def test_altered_claim_is_named(run_cli, ev: Evidence, name, alter, needle, clean_index):
    alter(ev.file(name))
    if clean_index:
        reindex(ev.evidence)
    assert_error(_verify(run_cli, ev), 1, needle)


def test_eval_signed_without_the_evaluator_role(run_cli, make_key, model_dir, tmp_path):
    """Without --eval-key the builder signs the eval: a builder-only trust refuses it."""
    ci = make_key("ci")
    ev = attest_full(tmp_path, model_dir, ci, ci, eval_key=False)
    write_trust(ev.trust, [("ci", ci.public, ["builder"])])
    r = _verify(run_cli, ev, "--json")
    assert_error(r, 1, "eval.sigstore.json is signed by ci", "lacks the evaluator role")
    checks = _checks(r)
    assert checks["eval"]["ok"] is None and checks["card"]["ok"] is True
    write_trust(ev.trust, [("ci", ci.public, ["builder", "evaluator"])])
    assert _verify(run_cli, ev).exit_code == 0


def test_evaluator_key_cannot_sign_the_sbom(run_cli, ev: Evidence):
    """Re-signed by a key holding only the evaluator role: the SBOM is refused."""
    resign(ev.file(SBOM_BUNDLE), ev.qa.private)
    reindex(ev.evidence)
    assert_error(_verify(run_cli, ev), 1, "sbom.sigstore.json is signed by qa",
                 "lacks the builder role")


def test_swapped_card_with_a_resigned_sbom_is_refused(run_cli, ev: Evidence, make_key):
    """An attacker rewrites the card and signs a new SBOM recording it with their key."""
    mallory = make_key("mallory")
    write_trust(ev.trust, [("ci", ev.ci.public, ["builder"]), ("qa", ev.qa.public, ["evaluator"]),
                           ("mallory", mallory.public, ["reviewer"])])
    card = ev.file(CARD)
    card.write_text(card.read_text().replace("0.91", "0.99"))

    def repin(statement: dict) -> None:
        for ref in statement["predicate"]["metadata"]["component"]["externalReferences"]:
            if ref["url"] == CARD:
                ref["hashes"][0]["content"] = sha256_file(card)

    resign(ev.file(SBOM_BUNDLE), mallory.private, repin)
    _edit_json(ev.file(SBOM), lambda bom: bom.update(payload(ev.file(SBOM_BUNDLE))["predicate"]))
    reindex(ev.evidence)
    r = _verify(run_cli, ev, "--json")
    assert_error(r, 1, "sbom.sigstore.json is signed by mallory", "lacks the builder role")
    checks = _checks(r)
    assert checks["card"]["ok"] is not True


def test_unrecorded_eval_is_refused(run_cli, make_key, model_dir, tmp_path):
    """An eval statement the signed SBOM does not record (planted later) fails."""
    ci, qa = make_key("ci"), make_key("qa")
    planted = attest_full(tmp_path / "a", model_dir, ci, qa)
    ev = tmp_path / "plain"
    r = run_cli("attest", str(model_dir), "--name", "credit-risk", "--key", str(ci.private),
                "--out", str(ev), "--commit", COMMIT)
    assert r.exit_code == 0, r.stderr
    shutil.copy(planted.file(EVAL), ev / EVAL)
    reindex(ev)
    r = run_cli("verify", str(model_dir), "--evidence", str(ev), "--trust", str(planted.trust))
    assert_error(r, 1, "eval.sigstore.json is not the eval statement the signed SBOM records")


def test_provenance_from_another_run_is_refused(run_cli, make_key, model_dir, tmp_path):
    """Same model, two attest runs: mixing their files breaks the SBOM's pin."""
    ci, qa = make_key("ci"), make_key("qa")
    first = attest_full(tmp_path / "1", model_dir, ci, qa)
    other = tmp_path / "other"
    r = run_cli("attest", str(model_dir), "--name", "credit-risk", "--key", str(ci.private),
                "--out", str(other), "--commit", COMMIT, "--seed", "torch=7",
                "--data", f"train=hf://datasets/acme/corpus@r1@sha256:{'2' * 64}",
                "--builder-id", "https://ci.example/train", "--invocation-id", "run-43")
    assert r.exit_code == 0, r.stderr
    shutil.copy(other / "provenance.sigstore.json", first.file("provenance.sigstore.json"))
    reindex(first.evidence)
    assert_error(_verify(run_cli, first), 1, "provenance.sigstore.json is not the provenance "
                                             "the signed SBOM records")


# ------------------------------------------------------------------------- inspect


def test_inspect_text_without_the_model(run_cli, ev: Evidence):
    r = run_cli("inspect", str(ev.evidence), "--trust", str(ev.trust))
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert out.splitlines()[0] == ("credit-risk: evidence VERIFIED; model files not checked "
                                   "(pass --model)")
    for needle in ("identity      mlid:sha256:", f"commit {COMMIT}",
                   "data        train sha256:" + "2" * 64, "seeds       torch=7",
                   "builder       https://ci.example/train (mlprov 0.1.0", "invocation    run-42",
                   "started       ", "finished      ", "parents       none recorded",
                   "(not checked)", "metrics       accuracy=0.87, auc=0.91",
                   "[age<30]    auc=0.88", "signed by qa",
                   "sbom          CycloneDX 1.6, 3 packages",
                   "MODEL_CARD.md sha256:",
                   "eval.sigstore.json        needs evaluator  ok: signed by qa (evaluator)",
                   "sbom.sigstore.json        needs builder    ok: signed by ci (builder)"):
        assert needle in out, (needle, out)
    assert r.stderr == ""


def test_inspect_json_with_the_model(run_cli, ev: Evidence):
    r = run_cli("inspect", str(ev.evidence), "--trust", str(ev.trust), "--model", str(ev.model),
                "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "https://mlprov.dev/schemas/inspection/v1"
    assert doc["verified"] is True and doc["evidenceVerified"] is True
    assert doc["filesChecked"] is True and doc["files"]["status"] == "verified"
    prov = doc["provenance"]
    assert prov["status"] == "verified" and prov["name"] == "credit-risk"
    assert prov["inputs"]["seeds"] == {"torch": 7}
    assert prov["code"]["commit"] == COMMIT
    assert prov["datasets"] == [{"name": "train", "digest": "sha256:" + "2" * 64,
                                 "uri": "hf://datasets/acme/corpus@r1"}]
    assert prov["parents"] == []
    assert prov["builder"]["id"] == "https://ci.example/train"
    assert prov["rootDigest"] == doc["files"]["rootDigest"]
    assert doc["evaluation"]["metrics"] == METRICS["metrics"]
    assert doc["evaluation"]["slices"] == METRICS["slices"]
    assert doc["evaluation"]["signedBy"] == "qa"
    assert doc["sbom"]["packages"] == 3
    assert set(doc["sbom"]["licenses"])  # counted, 'unknown' when a package states none
    assert doc["card"]["digest"] == "sha256:" + sha256_file(ev.file(CARD))
    claims = {c["file"]: c for c in doc["claims"]}
    assert claims[EVAL]["signer"] == {"name": "qa", "roles": ["evaluator"]}
    assert claims[EVAL]["requiredRole"] == "evaluator"
    assert claims[SBOM_BUNDLE]["signer"] == {"name": "ci", "roles": ["builder"]}
    assert all(c["status"] == "verified" for c in claims.values())


def test_inspect_shows_a_failed_eval_as_failed_never_as_fact(run_cli, ev: Evidence):
    write_trust(ev.trust, [("ci", ev.ci.public, ["builder"]), ("qa", ev.qa.public, ["reviewer"])])
    r = run_cli("inspect", str(ev.evidence), "--trust", str(ev.trust))
    line = assert_error(r, 1, "signature:eval.sigstore.json", "lacks the evaluator role")
    assert "FAILED" in line or "failed claim" in line
    out = r.stdout
    assert "metrics       FAILED: eval.sigstore.json is signed by qa" in out
    assert "0.91" not in out and "0.88" not in out and "age<30" not in out
    assert "eval.sigstore.json        needs evaluator  FAILED:" in out
    assert out.splitlines()[0] == "credit-risk: NOT VERIFIED"
    r = run_cli("inspect", str(ev.evidence), "--trust", str(ev.trust), "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["evidenceVerified"] is False
    assert doc["evaluation"]["status"] == "failed"
    assert set(doc["evaluation"]) == {"status", "detail"}  # no metrics, no datasets
    eval_claim = next(c for c in doc["claims"] if c["file"] == EVAL)
    assert eval_claim["status"] == "failed" and eval_claim["signer"] is None
    assert doc["provenance"]["status"] == "verified"  # other claims still stand


def test_inspect_shows_failed_provenance_and_sbom(run_cli, ev: Evidence, make_key):
    stranger = make_key("stranger")
    resign(ev.file("provenance.sigstore.json"), stranger.private)
    _edit_json(ev.file(SBOM_BUNDLE), lambda b: b["dsseEnvelope"].update(payload="e30="))
    reindex(ev.evidence)
    r = run_cli("inspect", str(ev.evidence), "--trust", str(ev.trust), "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert set(doc["provenance"]) == {"status", "detail"}
    assert doc["provenance"]["status"] == "failed"
    assert "provenance.sigstore.json is not signed" in doc["provenance"]["detail"]
    assert set(doc["sbom"]) == {"status", "detail"} and doc["sbom"]["status"] == "failed"
    assert doc["card"]["status"] in ("failed", "unverified")
    # the eval's signature is fine, but the SBOM binding it to this attestation is not
    assert doc["evaluation"] == {"status": "unverified",
                                 "detail": "skipped: the SBOM that records it did not verify"}
    r = run_cli("inspect", str(ev.evidence), "--trust", str(ev.trust))
    assert r.stdout.splitlines()[0] == "(name not verified): NOT VERIFIED"
    assert "mlid:sha256:" not in r.stdout
    assert "provenance    FAILED: provenance.sigstore.json is not signed" in r.stdout


def test_inspect_with_a_tampered_model(run_cli, ev: Evidence):
    (ev.model / "weights.bin").write_bytes(b"x")
    r = run_cli("inspect", str(ev.evidence), "--trust", str(ev.trust), "--model", str(ev.model),
                "--json")
    assert_error(r, 1, "changed: weights.bin")
    doc = json.loads(r.stdout)
    assert doc["files"]["status"] == "failed" and doc["verified"] is False


@pytest.mark.parametrize("trust", [[], ["--trust", "T", "--key", "K"]])
def test_inspect_needs_exactly_one_trust(run_cli, ev: Evidence, trust):
    args = [str(ev.trust) if a == "T" else str(ev.ci.public) if a == "K" else a for a in trust]
    assert_error(run_cli("inspect", str(ev.evidence), *args), 2, "--trust")


# ---------------------------------------------------------------------------- card


def test_card_rerenders_the_signed_card(run_cli, ev: Evidence, tmp_path):
    r = run_cli("card", str(ev.evidence), "--trust", str(ev.trust))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ev.file(CARD).read_text()
    out = tmp_path / "card.md"
    r = run_cli("card", str(ev.evidence), "--trust", str(ev.trust), "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes() == ev.file(CARD).read_bytes()
    assert r.stdout == ""


def test_card_refuses_unverified_evidence(run_cli, ev: Evidence, tmp_path):
    write_trust(ev.trust, [("ci", ev.ci.public, ["builder"])])  # nobody may sign evals
    out = tmp_path / "card.md"
    r = run_cli("card", str(ev.evidence), "--trust", str(ev.trust), "-o", str(out))
    assert_error(r, 1, "cannot render the card", "eval.sigstore.json is not signed")
    assert not out.exists()
    assert r.stdout == ""
