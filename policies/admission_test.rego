# Unit tests of admission.rego: the gate a requested transition gets.
# Run: mlprov policy test policies/
package mlprov.admission_test

import rego.v1

import data.mlprov.fixtures as f

# A model ready for Staging but without a review: Production must refuse it.
unreviewed := f.with_key("reviews", [])

needs_review := "needs 1 approval(s) by a reviewer who is not the builder; found 0"

moving(i, transition) := f.set_key(i, "transition", transition)

test_production_gets_the_production_gate if {
	deny := f.admission_deny(moving(unreviewed, {"from": "Staging", "to": "Production"}))
	deny == {needs_review}
	count(f.admission_deny(f.good)) == 0
}

test_stage_names_are_case_insensitive if {
	deny := f.admission_deny(moving(unreviewed, {"to": "production"}))
	deny == {needs_review}
}

test_staging_gets_the_staging_gate if {
	count(f.admission_deny(moving(unreviewed, {"from": "None", "to": "Staging"}))) == 0
}

test_staging_still_checks_evidence if {
	no_eval := f.with_key("statements", f.replace_statement("https://mlprov.dev/predicates/eval/v1", null))
	deny := f.admission_deny(moving(no_eval, {"to": "Staging"}))
	deny == {"no eval results (https://mlprov.dev/predicates/eval/v1) signed by a signer with the evaluator role"}
}

test_archiving_is_not_gated if {
	no_eval := f.with_key("statements", [])
	count(f.admission_deny(moving(no_eval, {"from": "Production", "to": "Archived"}))) == 0
}

test_production_alias_gets_the_production_gate if {
	deny := f.admission_deny(moving(unreviewed, {"alias": "champion"}))
	deny == {needs_review}
}

test_stricter_gate_wins if {
	deny := f.admission_deny(moving(unreviewed, {"to": "Staging", "alias": "production"}))
	deny == {needs_review}
}

test_unknown_stage_is_denied if {
	deny := f.admission_deny(moving(f.good, {"to": "Prod"}))
	deny == {"unknown target stage Prod (Staging, Production, Archived, None)"}
}

test_unknown_alias_is_denied if {
	deny := f.admission_deny(moving(f.good, {"alias": "canary"}))
	deny == {"no gate configured for alias canary (data.mlprov_config.alias_gates)"}
}

test_alias_gates_come_from_data if {
	settings1 := f.set_key(f.settings, "alias_gates", {"canary": "production"})
	deny := f.admission_deny_with(settings1, moving(unreviewed, {"alias": "canary"}))
	deny == {needs_review}
}

test_no_target_is_denied if {
	deny := f.admission_deny(moving(f.good, {"actor": "bob"}))
	deny == {"the request names no target stage or alias (transition.to, transition.alias)"}
}
