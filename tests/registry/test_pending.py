"""Pending approvals (issue 13 item 7): which versions' next move waits on a review, and
what is missing, from the registry's own gates; nothing recorded. Both backends."""

from __future__ import annotations

import json

import pytest

from mlprov.errors import InputError
from mlprov.registry import NotFoundError, Stage
from tests.cli.conftest import assert_error
from tests.registry.stored import cli_for

LOW = {"metrics": {"auc": 0.5, "accuracy": 0.84}, "slices": {}}


@pytest.fixture
def waiting(registry, make_model, approve):
    """credit-risk v1 Staging, no review; v2 None; v3 Staging, approved; v4 Staging,
    rejected by alice; v5 Staging, metrics below the thresholds, no review."""
    models = [make_model(metrics=LOW if n == 5 else None) for n in range(1, 6)]
    for m in models:
        registry.register(m.model, evidence=m.evidence)
    for version in (1, 3, 4, 5):
        registry.promote("credit-risk", version, to="Staging", reason="eval")
    registry.add_review("credit-risk", 3, approve(models[2]))
    registry.add_review("credit-risk", 4, approve(models[3], decision="reject"))
    return registry


def test_pending_lists_what_each_move_waits_on(waiting):
    before = len(waiting.audit_log())
    found = {p.version: p for p in waiting.pending_approvals()}
    assert sorted(found) == [1, 4, 5]  # v2 (to Staging) needs no review; v3 is approved

    one = found[1]
    assert (one.uri, one.stage, one.next_stage, one.status) == (
        "models:/credit-risk/1", Stage.STAGING, Stage.PRODUCTION, "pending")
    assert (one.approvals, one.approvals_needed, one.policy) == (0, 1, "production.rego")
    assert one.missing == ("needs 1 approval(s) by a reviewer who is not the builder; "
                           "found 0",)
    assert one.blocked_by == () and one.rejections == ()

    four = found[4]
    assert four.status == "rejected" and four.approvals == 0
    [rejection] = four.rejections
    assert (rejection.reviewer, rejection.decision, rejection.comment) == (
        "alice", "reject", "looks good")
    assert four.blocked_by == ("rejected by reviewer alice: looks good",)

    five = found[5]
    assert five.status == "pending" and five.approvals_needed == 1
    assert any("eval metric auc = 0.5 is below the minimum" in m for m in five.blocked_by)
    # A question, not a change: nothing signed, recorded or announced.
    assert len(waiting.audit_log()) == before


def test_pending_filters_and_bad_inputs(waiting):
    assert waiting.pending_approvals(stage="Staging") == []
    assert [p.version for p in waiting.pending_approvals(stage=Stage.PRODUCTION,
                                                         name="credit-risk")] == [1, 4, 5]
    with pytest.raises(InputError, match="no move to Archived waits on a review"):
        waiting.pending_approvals(stage="Archived")
    with pytest.raises(InputError, match="unknown stage"):
        waiting.pending_approvals(stage="Prod")
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        waiting.pending_approvals(name="nope")


def test_an_approval_clears_it(waiting, make_model, approve):
    m = make_model(seed=4242)
    waiting.register(m.model, evidence=m.evidence)
    waiting.promote("credit-risk", 6, to="Staging", reason="eval")
    assert 6 in {p.version for p in waiting.pending_approvals()}
    waiting.add_review("credit-risk", 6, approve(m))
    assert 6 not in {p.version for p in waiting.pending_approvals()}
    waiting.promote("credit-risk", 6, to="Production", reason="approved")


def test_review_pending_cli(waiting, run_cli):
    cli = cli_for(run_cli, waiting)
    r = cli("review", "pending", "--stage", "Production", "--json")
    assert r.exit_code == 0, r.stderr
    listed = json.loads(r.stdout)
    assert listed["schema"] == "https://mlprov.dev/schemas/pending-approvals/v1"
    assert [(p["uri"], p["status"], p["approvalsNeeded"]) for p in listed["pending"]] == [
        ("models:/credit-risk/1", "pending", 1), ("models:/credit-risk/4", "rejected", 1),
        ("models:/credit-risk/5", "pending", 1)]
    r = cli("review", "pending")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("models:/credit-risk/1  Staging -> Production  pending: needs 1 more "
                        "approval(s) (standing approvals: 0; production.rego)")
    assert "  missing: needs 1 approval(s) by a reviewer who is not the builder; found 0" \
        in lines
    assert "  rejected by alice at" in r.stdout
    assert "3 version(s) waiting on a review" in r.stderr
    r = cli("review", "pending", "--stage", "staging")
    assert r.exit_code == 0 and r.stdout == ""
    assert_error(cli("review", "pending", "--stage", "Archived"), 2, "--stage")
    assert_error(cli("review", "pending", "--name", "nope"), 3, "no model named 'nope'")
    assert_error(cli("review", "pending", "--name", "bad name"), 3, "invalid model name")
