# Unit tests of production.rego: each rule allows the good model and denies its own case.
# Run: mlprov policy test policies/
package mlprov.production_test

import rego.v1

import data.mlprov.fixtures as f

eval_type := "https://mlprov.dev/predicates/eval/v1"

sbom_type := "https://cyclonedx.org/bom"

with_metrics(metrics, slices) := f.with_key("statements", f.replace_statement(eval_type,
	f.set_key(f.evaluation, "predicate", f.set_key(f.set_key(f.evaluation.predicate,
		"metrics", metrics), "slices", slices))))

with_reviews(reviews) := f.with_key("reviews", reviews)

with_findings(findings) := f.with_key("scan", f.set_key(f.scan, "findings", findings))

with_licenses(licenses) := f.with_key("statements", f.replace_statement(sbom_type,
	f.set_key(f.sbom, "summary", {"componentCount": 1, "unlicensedCount": 0, "licenses": licenses})))

review(signer, decision, time) := {
	"file": "r.json", "reviewer": signer.name, "decision": decision, "comment": "because",
	"time": time, "signer": signer, "evidence": {},
}

os_system := {"file": "model.pkl", "module": "os", "name": "system", "global": "os.system", "severity": "dangerous"}

# --- the whole gate ---

test_good_model_is_allowed if {
	count(f.production_deny(f.good)) == 0
	count(f.production_warn(f.good)) == 0
}

test_everything_staging_denies_is_denied if {
	deny := f.production_deny(f.with_key("statements", f.replace_statement(sbom_type, null)))
	"no SBOM (https://cyclonedx.org/bom) signed by a signer with the builder role" in deny
}

test_unverified_files_are_denied if {
	deny := f.production_deny(f.with_key("model", f.set_key(f.model, "filesVerified", false)))
	deny == {"the model's files were not verified against the evidence (give the model files)"}
}

# --- metric thresholds (data.yaml: auc >= 0.70, accuracy >= 0.65, slice auc >= 0.60) ---

test_metrics_at_the_thresholds_are_allowed if {
	count(f.production_deny(with_metrics({"auc": 0.70, "accuracy": 0.65}, {"a": {"auc": 0.60}}))) == 0
}

test_metric_below_minimum_is_denied if {
	deny := f.production_deny(with_metrics({"auc": 0.69, "accuracy": 0.9}, {}))
	deny == {"eval metric auc = 0.69 is below the minimum 0.7"}
}

test_missing_metric_is_denied if {
	deny := f.production_deny(with_metrics({"auc": 0.9}, {}))
	deny == {"eval metric accuracy is missing or not a number (needed by the production thresholds); the eval has metrics auc (set thresholds on them: --threshold 'NAME>=N')"}
}

test_non_numeric_metric_is_denied if {
	deny := f.production_deny(with_metrics({"auc": "0.9", "accuracy": 0.9}, {}))
	deny == {"eval metric auc is missing or not a number (needed by the production thresholds); the eval has metrics accuracy, auc (set thresholds on them: --threshold 'NAME>=N')"}
}

test_slice_below_minimum_is_denied if {
	deny := f.production_deny(with_metrics({"auc": 0.9, "accuracy": 0.9}, {"age<30": {"auc": 0.5}, "age>=30": {"auc": 0.9}}))
	deny == {"eval metric auc = 0.5 in slice age<30 is below the minimum 0.6"}
}

test_thresholds_come_from_data if {
	settings1 := f.config("production", "metrics", {"auc": {"min": 0.95}})
	deny := f.production_deny_with(settings1, f.good)
	deny == {"eval metric auc = 0.91 is below the minimum 0.95"}
}

test_maximum_threshold_is_enforced if {
	settings2 := f.config("production", "metrics", {"loss": {"max": 0.2}})
	deny := f.production_deny_with(settings2, f.good)
	deny == {"eval metric loss is missing or not a number (needed by the production thresholds); the eval has metrics accuracy, auc (set thresholds on them: --threshold 'NAME>=N')"}
	settings3 := f.config("production", "metrics", {"loss": {"max": 0.2}})
	deny2 := f.production_deny_with(settings3, with_metrics({"loss": 0.3}, {}))
	deny2 == {"eval metric loss = 0.3 is above the maximum 0.2"}
}

test_no_thresholds_is_denied if {
	settings4 := f.config("production", "metrics", {})
	deny := f.production_deny_with(settings4, f.good)
	deny == {"no metric thresholds configured (data.mlprov_config.production.metrics)"}
}

test_malformed_threshold_is_denied if {
	settings5 := f.config("production", "metrics", {"auc": 0.7})
	deny := f.production_deny_with(settings5, f.good)
	"threshold for metric auc must be {min: N} and/or {max: N}" in deny
}

test_eval_without_slices_warns if {
	warn := f.production_warn(with_metrics({"auc": 0.9, "accuracy": 0.9}, {}))
	warn == {"the eval reports no per-slice metrics; slice thresholds were not checked"}
}

# --- reviews ---

test_no_approval_is_denied if {
	deny := f.production_deny(with_reviews([]))
	deny == {"needs 1 approval(s) by a reviewer who is not the builder; found 0"}
}

test_approval_signed_by_the_builder_does_not_count if {
	deny := f.production_deny(with_reviews([review(f.builder_reviewer, "approve", "2026-01-31T12:00:00Z")]))
	deny == {"needs 1 approval(s) by a reviewer who is not the builder; found 0 (a review signed by the builder's own key does not count)"}
}

test_approval_under_the_builders_name_does_not_count if {
	same_name := {"id": "key:k-other", "name": "ci", "keyid": "k-other", "kind": "key", "roles": ["reviewer"]}
	deny := f.production_deny(with_reviews([review(same_name, "approve", "2026-01-31T12:00:00Z")]))
	count(deny) == 1
}

test_approval_needs_the_reviewer_role if {
	not_reviewer := {"id": "key:k-eve", "name": "eve", "keyid": "k-eve", "kind": "key", "roles": ["evaluator"]}
	deny := f.production_deny(with_reviews([review(not_reviewer, "approve", "2026-01-31T12:00:00Z")]))
	deny == {"needs 1 approval(s) by a reviewer who is not the builder; found 0"}
}

test_min_approvals_comes_from_data if {
	settings6 := f.config("production", "min_approvals", 2)
	deny := f.production_deny_with(settings6, f.good)
	deny == {"needs 2 approval(s) by a reviewer who is not the builder; found 1"}
	two := with_reviews([f.approval, review(f.bob, "approve", "2026-01-31T12:00:00Z")])
	settings7 := f.config("production", "min_approvals", 2)
	count(f.production_deny_with(settings7, two)) == 0
}

test_one_keyless_reviewer_counts_once if {
	# Keyless signatures use a new key each time: the signer id (issuer and subject) counts.
	first := {"id": "sigstore:https://issuer alice@example.com", "name": "alice", "keyid": "k1", "kind": "sigstore", "roles": ["reviewer"]}
	second := f.set_key(first, "keyid", "k2")
	twice := with_reviews([review(first, "approve", "2026-01-31T12:00:00Z"), review(second, "approve", "2026-02-01T12:00:00Z")])
	settings8 := f.config("production", "min_approvals", 2)
	deny := f.production_deny_with(settings8, twice)
	deny == {"needs 2 approval(s) by a reviewer who is not the builder; found 1"}
}

test_two_approvals_by_one_reviewer_count_once if {
	twice := with_reviews([f.approval, review(f.alice, "approve", "2026-02-01T12:00:00Z")])
	settings9 := f.config("production", "min_approvals", 2)
	deny := f.production_deny_with(settings9, twice)
	deny == {"needs 2 approval(s) by a reviewer who is not the builder; found 1"}
}

test_standing_rejection_is_denied if {
	deny := f.production_deny(with_reviews([f.approval, review(f.bob, "reject", "2026-01-31T13:00:00Z")]))
	deny == {"rejected by reviewer bob: because"}
}

test_later_approval_replaces_a_rejection if {
	reviews := [review(f.alice, "reject", "2026-01-30T12:00:00Z"), f.approval]
	count(f.production_deny(with_reviews(reviews))) == 0
}

test_later_rejection_replaces_an_approval if {
	reviews := [f.approval, review(f.alice, "reject", "2026-02-01T12:00:00Z")]
	deny := f.production_deny(with_reviews(reviews))
	"rejected by reviewer alice: because" in deny
	"needs 1 approval(s) by a reviewer who is not the builder; found 0" in deny
}

# --- pickles ---

test_no_scan_is_denied if {
	deny := f.production_deny_no_scan(f.good)
	deny == {"no pickle scan of the model's files in the input (give the model files)"}
}

test_scan_of_another_model_is_denied if {
	# Written out, not f.set_key: a string that passed through object.union/object.remove
	# is printed with quotes by regopy's sprintf (a rego-cpp quirk; docs/policy.md).
	other := {"files": f.scan.files, "findings": f.scan.findings, "scanner": f.scan.scanner,
		"rootDigest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
	deny := f.production_deny(f.with_key("scan", other))
	deny == {"the pickle scan is of another model (sha256:0000000000000000000000000000000000000000000000000000000000000000)"}
}

test_unsafe_pickle_is_denied if {
	deny := f.production_deny(with_findings([os_system]))
	deny == {"unsafe pickle: model.pkl imports os.system (dangerous)"}
}

test_unknown_import_is_denied if {
	odd := {"file": "m.pkl", "module": "mylib", "name": "Model", "global": "mylib.Model", "severity": "suspicious"}
	deny := f.production_deny(with_findings([odd]))
	deny == {"unsafe pickle: m.pkl imports mylib.Model (suspicious)"}
}

finding(module, name, severity) := {"file": "m.pkl", "module": module, "name": name,
	"global": concat(".", [module, name]), "severity": severity}

allowed(findings, settings) if count(f.production_deny_with(settings, with_findings(findings))) == 0

test_imports_allowed_by_data_pass if {
	odd := finding("mylib", "Model", "suspicious")
	count(f.production_deny(with_findings([odd]))) == 1
	allowed([odd], f.config("production", "allowed_pickle_imports", ["mylib.Model"]))
	allowed([odd], f.config("production", "allowed_pickle_imports", ["mylib.*"]))
	not allowed([odd], f.config("production", "allowed_pickle_imports", ["myl.*"]))
	not allowed([odd], f.config("production", "allowed_pickle_imports", ["mylib.Mod*"]))
}

test_shipped_settings_allow_sklearn_classes if {
	allowed([
		finding("sklearn.linear_model._logistic", "LogisticRegression", "suspicious"),
		finding("sklearn.tree._tree", "Tree", "suspicious"),
		finding("sklearn.pipeline", "Pipeline", "suspicious"),
		finding("joblib.numpy_pickle", "NumpyArrayWrapper", "suspicious"),
		finding("numpy", "float64", "suspicious"),
	], f.settings)
}

test_a_pattern_admits_classes_not_functions if {
	numpy_too := f.config("production", "allowed_pickle_imports", ["sklearn.*", "numpy.*", "torch.*"])
	allowed([finding("numpy.random._generator", "Generator", "suspicious")], numpy_too)
	every name in [
		["numpy", "load"], ["numpy.lib.npyio", "load"], ["torch", "load"],
		["sklearn.base", "clone"], ["sklearn.utils._joblib", "load"],
		["sklearn.base", "BaseEstimator.__reduce__"], ["numpy", "ndarray.tofile"],
		["sklearn.ensemble._gb", "_Private"], ["sklearn.x", "Has_underscore"], ["sklearn.x", ""],
		["sklearn._loss._loss", "__pyx_unpickle_CyHalfBinomialLoss"],
	] {
		not allowed([finding(name[0], name[1], "suspicious")], numpy_too)
	}
}

test_a_pattern_never_admits_dangerous_imports if {
	numpy_too := f.config("production", "allowed_pickle_imports", ["sklearn.*", "numpy.*"])
	not allowed([finding("numpy.testing._private.utils", "Popen", "dangerous")], numpy_too)
	not allowed([finding("numpy.f2py", "Crackfortran", "dangerous")], numpy_too)
	# Listed by its exact name, an import is the data's own choice.
	allowed([finding("numpy.f2py", "Crackfortran", "dangerous")],
		f.config("production", "allowed_pickle_imports", ["numpy.f2py.Crackfortran"]))
}

test_a_pattern_never_reaches_denied_modules if {
	every module in ["sklearn.datasets._covtype", "sklearn.datasets", "sklearn.callback._transport",
		"sklearn.utils.parallel"] {
		not allowed([finding(module, "GzipFile", "suspicious")], f.settings)
	}
	allowed([finding("sklearn.datasets_extra", "Model", "suspicious")], f.settings)
	allowed([finding("sklearn.utils.parallelism", "Model", "suspicious")], f.settings)
}

test_unscannable_file_is_denied if {
	broken := {"file": "m.pt", "module": "", "name": "", "global": "<unscannable>", "severity": "error", "detail": "could not be scanned (BadZipFile)"}
	deny := f.production_deny(with_findings([broken]))
	deny == {"pickle scan failed: m.pt could not be scanned (BadZipFile)"}
}

# --- licences (data.yaml: AGPL, SSPL, CC-BY-NC...) ---

test_denied_licence_is_denied if {
	deny := f.production_deny(with_licenses({"mit": ["a@1"], "agpl-3.0-only": ["evil@2", "worse@3"]}))
	deny == {"denied licence agpl-3.0-only in the SBOM (evil@2, worse@3)"}
}

test_many_components_are_summarised if {
	names := ["a@1", "b@1", "c@1", "d@1", "e@1", "f@1", "g@1"]
	deny := f.production_deny(with_licenses({"sspl-1.0": names}))
	deny == {"denied licence sspl-1.0 in the SBOM (a@1, b@1, c@1, d@1, e@1 and 2 more)"}
}

test_denied_list_comes_from_data if {
	count(f.production_deny(f.good)) == 0
	settings13 := f.config("production", "denied_licenses", ["MIT"])
	deny := f.production_deny_with(settings13, f.good)
	deny == {"denied licence mit in the SBOM (click@8.1.7)"}
}

test_missing_denied_list_is_denied if {
	settings14 := f.config_section("production", {"metrics": {"auc": {"min": 0.5}}})
	deny := f.production_deny_with(settings14, f.good)
	deny == {"no denied-licence list configured (data.mlprov_config.production.denied_licenses)"}
}

test_a_denial_names_the_metrics_the_eval_has if {
	deny := f.production_deny(with_metrics({"val/auc": 0.9, "test/auc": 0.91}, {}))
	"eval metric auc is missing or not a number (needed by the production thresholds); the eval has metrics test/auc, val/auc (set thresholds on them: --threshold 'NAME>=N')" in deny
}

test_an_eval_without_metrics_says_so if {
	deny := f.production_deny(with_metrics({}, {}))
	"eval metric auc is missing or not a number (needed by the production thresholds); the eval has no overall metrics (set thresholds on them: --threshold 'NAME>=N')" in deny
}

# --- stage order and aliases (the registry's state in the input) ---------------------

in_registry(i, transition, state) := d if {
	d := f.production_deny(f.set_key(i, "transition", transition)) with input.registry as state
}

test_production_is_entered_from_staging_only if {
	count(in_registry(f.good, {"from": "Staging", "to": "Production"}, {"stage": "Staging"})) == 0
	deny := in_registry(f.good, {"from": "None", "to": "Production"}, {"stage": "None"})
	deny == {"a version enters Production from Staging (or Archived), never straight from None: it is in None (promote it to Staging first)"}
}

test_out_of_archived_is_gated_like_the_target if {
	count(in_registry(f.good, {"from": "Archived", "to": "Production"}, {"stage": "Archived"})) == 0
}

test_a_production_alias_points_only_at_a_version_in_production if {
	count(in_registry(f.good, {"alias": "production"}, {"stage": "Production"})) == 0
	deny := in_registry(f.good, {"alias": "production"}, {"stage": "Staging"})
	deny == {"alias production is gated as production: it may point only at a version in Production (this one is in Staging; promote it first)"}
	deny2 := in_registry(f.good, {"alias": "champion"}, {"stage": "None"})
	deny2 == {"alias champion is gated as production: it may point only at a version in Production (this one is in None; promote it first)"}
}

test_a_registry_state_without_a_stage_denies_an_alias if {
	deny := in_registry(f.good, {"alias": "production"}, {})
	deny == {"alias production is gated as production: it may point only at a version in Production (this one is in unknown; promote it first)"}
}
