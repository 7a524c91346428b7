"""``Registry.record_refusal``: a front end's refusal as a signed, chained, verified entry.

On every backend (SQLite + directory, PostgreSQL + S3): the entry changes no
state, carries a signed decision that ``audit verify --deep`` checks, mixes
with the older kinds of entries, and takes only bounded, printable strings.
"""

from __future__ import annotations

import pytest

from mlprov.errors import ArgumentError, InputError

T0, T1 = "2026-12-06T10:00:00.000000Z", "2026-12-06T10:09:59.999999Z"


def test_refusals_are_chained_signed_and_change_nothing(registry, make_model):
    m = make_model()
    registry.register(m.model, evidence=m.evidence)
    result = registry.record_refusal(
        "reader-user", "promote", name="credit-risk", version=1, target="Production",
        reason="reader-user may not move credit-risk to Production (roles: reader)",
        permission="move credit-risk to Production", via="token:0123456789abcdef",
        endpoint="POST /api/v1/models/{name}/versions/{version}/stage")
    assert not result.allowed and result.kind == "access.refused" and result.decision
    summary = registry.record_refusal_summary("reader-user", count=40, first=T0, last=T1,
                                              actions={"promote": 39, "read": 1})
    assert summary.seq == result.seq + 1
    registry.promote("credit-risk", 1, to="Staging", reason="after the refusals")
    entries = registry.audit_log()
    assert [e["kind"] for e in entries] == ["registry.init", "model.register",
                                            "access.refused", "access.refused-summary",
                                            "stage.transition"]
    refused = entries[2]
    assert (refused["actor"], refused["accepted"], refused["name"], refused["version"],
            refused["target"]) == ("reader-user", False, "credit-risk", 1, "Production")
    assert refused["details"]["permission"] == "move credit-risk to Production"
    assert entries[3]["details"]["count"] == 40
    report = registry.verify_audit(deep=True, full=True)
    assert report.ok, report.problems
    assert report.decisions == report.entries == 5
    assert registry.get_version("credit-risk", 1).stage.value == "Staging"
    events = [e["kind"] for e in registry.events()]
    assert "access.refused" in events and "access.refused-summary" in events


@pytest.mark.parametrize("kwargs", [
    {"reason": "two\nlines"},
    {"reason": "x" * 1001},
    {"reason": ""},
    {"action": "Promote!"},
    {"action": "a" * 40},
    {"name": "../etc"},
    {"name": "credit risk"},
    {"target": "\x1b[31mred"},
    {"target": "t" * 121},
    {"permission": "p" * 301},
    {"via": "token:\u202eevil"},
    {"actor": ""},
])
def test_hostile_strings_are_refused_before_anything_is_written(tmp_path, keys, kwargs):
    from mlprov.registry import Registry

    with Registry.init(tmp_path / "r", trust=keys.trust) as reg:
        args = {"actor": "mallory", "action": "read", "reason": "refused", **kwargs}
        actor, action = args.pop("actor"), args.pop("action")
        with pytest.raises((InputError, ArgumentError)):
            reg.record_refusal(actor, action, **args)
        assert [e["kind"] for e in reg.audit_log()] == ["registry.init"]


def test_a_summary_takes_only_counts_and_times(tmp_path, keys):
    from mlprov.registry import Registry

    with Registry.init(tmp_path / "r", trust=keys.trust) as reg:
        with pytest.raises((InputError, ArgumentError)):
            reg.record_refusal_summary("m", count=0, first=T0, last=T1, actions={})
        with pytest.raises(InputError):
            reg.record_refusal_summary("m", count=1, first="yesterday", last=T1,
                                       actions={"read": 1})
        with pytest.raises(InputError):
            reg.record_refusal_summary("m", count=1, first=T0, last=T1,
                                       actions={"Read\n": 1})
        assert len(reg.audit_log()) == 1
