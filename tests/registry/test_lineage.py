"""Lineage through the registry: a derived model's parents are found among registered versions."""

from __future__ import annotations

import shutil

import pytest

from mlprov.registry import PolicyDeniedError


def test_chain_verified_through_the_registry(registry, make_model):
    base = make_model("credit-risk-base")
    registry.register(base.model, evidence=base.evidence)
    tuned = make_model("credit-risk", parents=[f"fine-tune-of={base.evidence}"])
    student = make_model("credit-risk-small", parents=[f"teacher={tuned.evidence}"])
    # The parents' evidence directories are gone from disk: only the registry has them.
    shutil.rmtree(base.evidence)
    registry.register(tuned.model, evidence=tuned.evidence)
    shutil.rmtree(tuned.evidence)
    registry.register(student.model, evidence=student.evidence)

    facts = registry.verify_version("credit-risk-small", 1)
    lineage = facts.verdict.lineage
    assert lineage is not None and lineage.verified and lineage.status == "verified"
    assert {n.name for n in lineage.nodes} == {"credit-risk-small", "credit-risk",
                                              "credit-risk-base"}
    assert registry.promote("credit-risk-small", 1, to="Staging", reason="chain ok").allowed


def test_unregistered_parent_leaves_the_lineage_unverified(registry, make_model, tmp_path):
    base = make_model("credit-risk-base")
    tuned = make_model("credit-risk", parents=[f"fine-tune-of={base.evidence}"])
    shutil.rmtree(base.evidence)
    registry.register(tuned.model, evidence=tuned.evidence)  # lineage incomplete: allowed
    with pytest.raises(PolicyDeniedError, match="lineage did not verify"):
        registry.promote("credit-risk", 1, to="Staging", reason="parent unknown")
