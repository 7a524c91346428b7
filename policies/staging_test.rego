# Unit tests of staging.rego: each rule allows the good model and denies its own case.
# Run: mlprov policy test policies/
package mlprov.staging_test

import rego.v1

import data.mlprov.fixtures as f

test_good_model_is_allowed if {
	count(f.staging_deny(f.good)) == 0
}

test_failed_verification_is_denied if {
	failed := {"verified": false, "checks": [
		{"name": "files", "ok": false, "detail": "changed: model.pt"},
		{"name": "identity", "ok": true},
	]}
	deny := f.staging_deny(f.with_key("verification", failed))
	deny == {"the evidence did not verify: files: changed: model.pt"}
}

test_incomplete_verification_is_denied if {
	skipped := {"verified": false, "checks": [{"name": "index", "ok": null, "detail": "skipped"}]}
	deny := f.staging_deny(f.with_key("verification", skipped))
	"the evidence was not fully verified (a verification step did not run)" in deny
}

test_missing_provenance_is_denied if {
	deny := f.staging_deny(f.with_key("statements", f.replace_statement(f.provenance.predicateType, null)))
	"no provenance (https://slsa.dev/provenance/v1) signed by a signer with the builder role" in deny
}

test_provenance_signed_without_builder_role_is_denied if {
	by_reviewer := f.set_key(f.provenance, "signer", f.alice)
	deny := f.staging_deny(f.with_key("statements", f.replace_statement(f.provenance.predicateType, by_reviewer)))
	"no provenance (https://slsa.dev/provenance/v1) signed by a signer with the builder role" in deny
}

test_missing_sbom_is_denied if {
	deny := f.staging_deny(f.with_key("statements", f.replace_statement(f.sbom.predicateType, null)))
	deny == {"no SBOM (https://cyclonedx.org/bom) signed by a signer with the builder role"}
}

test_sbom_signed_by_evaluator_is_denied if {
	by_evaluator := f.set_key(f.sbom, "signer", f.evaluator)
	deny := f.staging_deny(f.with_key("statements", f.replace_statement(f.sbom.predicateType, by_evaluator)))
	deny == {"no SBOM (https://cyclonedx.org/bom) signed by a signer with the builder role"}
}

test_missing_eval_is_denied if {
	deny := f.staging_deny(f.with_key("statements", f.replace_statement(f.evaluation.predicateType, null)))
	deny == {"no eval results (https://mlprov.dev/predicates/eval/v1) signed by a signer with the evaluator role"}
}

test_eval_signed_by_builder_is_denied if {
	by_builder := f.set_key(f.evaluation, "signer", f.builder)
	deny := f.staging_deny(f.with_key("statements", f.replace_statement(f.evaluation.predicateType, by_builder)))
	deny == {"no eval results (https://mlprov.dev/predicates/eval/v1) signed by a signer with the evaluator role"}
}

test_eval_signer_roles_come_from_data if {
	by_builder := f.set_key(f.evaluation, "signer", f.builder)
	i := f.with_key("statements", f.replace_statement(f.evaluation.predicateType, by_builder))
	settings1 := f.config("signer_roles", "eval", ["evaluator", "builder"])
	deny := f.staging_deny_with(settings1, i)
	count(deny) == 0
}

test_statement_about_another_model_is_denied if {
	other := f.set_key(f.sbom, "subject", [{"name": "x", "digest": {"sha256": f.other_hex}}])
	deny := f.staging_deny(f.with_key("statements", f.replace_statement(f.sbom.predicateType, other)))
	"sbom.sigstore.json is about another model than sha256:4a203b51b592148d1a4f8482fa2b9a9ffbd836f17e94b070c808c4e8bbb991ea" in deny
	"no SBOM (https://cyclonedx.org/bom) signed by a signer with the builder role" in deny
}

test_missing_root_digest_is_denied if {
	deny := f.staging_deny(f.with_key("model", {"name": "credit-risk", "filesVerified": false}))
	"the input names no verified root digest for the model" in deny
}

test_failed_lineage_is_denied if {
	broken := {"verified": false, "status": "failed", "failures": ["student -> teacher (teacher): parent files changed"]}
	deny := f.staging_deny(f.with_key("lineage", broken))
	deny == {"the model's lineage did not verify (failed): student -> teacher (teacher): parent files changed"}
}

test_incomplete_lineage_is_denied if {
	missing := {"verified": false, "status": "incomplete", "failures": []}
	deny := f.staging_deny(f.with_key("lineage", missing))
	deny == {"the model's lineage did not verify (incomplete)"}
}

test_verified_lineage_is_allowed_without_warning if {
	count(f.staging_deny(f.good)) == 0
	count(f.staging_warn(f.good)) == 0
}

test_no_lineage_warns if {
	warn := f.staging_warn_no_lineage(f.good)
	warn == {"no lineage in the input: parents, if any, were not checked"}
	count(f.staging_deny_no_lineage(f.good)) == 0
}

test_no_lineage_is_denied_when_required if {
	# regopy drops `with input.*` mocks when a `with data.*` sits beside them in the
	# same expression (and with a dynamic rule reference): override data outside.
	settings2 := f.config("staging", "require_lineage", true)
	deny := f.staging_deny_no_lineage_with(settings2, f.good)
	deny == {"no verified lineage in the input (data.mlprov_config.staging.require_lineage)"}
}

# --- stage order ---------------------------------------------------------------------

moving_to(transition) := f.staging_deny(f.set_key(f.good, "transition", transition))

test_staging_is_entered_from_none_archived_or_production if {
	count(moving_to({"from": "None", "to": "Staging"})) == 0
	count(moving_to({"from": "Archived", "to": "Staging"})) == 0
	count(moving_to({"from": "Production", "to": "Staging"})) == 0
	count(moving_to({"from": "none", "to": "staging"})) == 0
}

test_the_order_is_checked_only_when_the_source_is_known if {
	count(moving_to({"to": "Production"})) == 0
}

test_production_straight_from_none_is_denied_by_both_gates if {
	msg := "a version enters Production from Staging (or Archived), never straight from None: it is in None (promote it to Staging first)"
	moving_to({"from": "None", "to": "Production"}) == {msg}
	f.production_deny(f.set_key(f.good, "transition", {"from": "None", "to": "Production"})) == {msg}
	f.admission_deny(f.set_key(f.good, "transition", {"from": "None", "to": "Production"})) == {msg}
}
