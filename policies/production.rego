# mlprov production gate (Rego v1).
#
# Everything staging.rego requires, and:
#   - the model's files verified (not only its evidence), and scanned for pickles;
#   - every metric threshold in data.mlprov_config.production met by the signed eval
#     (overall metrics, and per-slice metrics in every slice that reports them);
#   - at least min_approvals approvals by reviewers who are not the builder, and no
#     standing rejection (a reviewer's latest review counts);
#   - no pickle import outside the scanner's allow-list and the data's own (exact names,
#     and classes under "package.*" patterns);
#   - no licence from the denied list anywhere in the signed SBOM.
#
# Thresholds and lists live in policies/data.yaml (data.mlprov_config), not here.
package mlprov.production

import rego.v1

import data.mlprov.staging

# --- settings (data.yaml) --------------------------------------------------------------

settings := staging.section(staging.cfg, "production")

thresholds := staging.section(settings, "metrics")

slice_thresholds := staging.section(settings, "slices")

min_approvals := staging.setting(settings, "min_approvals", 1)

allowed_imports := {x | some x in staging.setting(settings, "allowed_pickle_imports", []); is_string(x)}

denied_modules := {x | some x in staging.setting(settings, "denied_pickle_modules", []); is_string(x)}

denied_licenses := {lower(x) | some x in staging.setting(settings, "denied_licenses", []); is_string(x)}

# --- everything staging requires ------------------------------------------------------

deny contains msg if {
	some msg in staging.deny
}

warn contains msg if {
	some msg in staging.warn
}

# --- files -----------------------------------------------------------------------------

deny contains msg if {
	not input.model.filesVerified == true
	msg := "the model's files were not verified against the evidence (give the model files)"
}

# --- metrics ---------------------------------------------------------------------------

evals := [input.statements[v.i] | some v in staging.counting(staging.eval_type, "eval")]

deny contains msg if {
	count(thresholds) == 0
	msg := "no metric thresholds configured (data.mlprov_config.production.metrics)"
}

deny contains msg if {
	some name, _ in thresholds
	some s in evals
	# object.get, not `not is_number(s.predicate.metrics[name])`: under OPA a call with an
	# undefined argument is undefined, so `not` of it would not fire (OPA issue #1877).
	metrics := object.get(s.predicate, "metrics", {})
	not is_number(object.get(metrics, name, null))
	msg := concat("", [
		"eval metric ", name, " is missing or not a number (needed by the production ",
		"thresholds); the eval has ", metric_names(metrics),
		" (set thresholds on them: --threshold 'NAME>=N')",
	])
}

# The eval's overall metric names, sorted, for messages.
metric_names(metrics) := concat("", ["metrics ", concat(", ", sort(object.keys(metrics)))]) if {
	is_object(metrics)
	count(metrics) > 0
} else := "no overall metrics"

deny contains msg if {
	some name, bound in thresholds
	not well_formed(bound)
	msg := sprintf("threshold for metric %s must be {min: N} and/or {max: N}", [name])
}

deny contains msg if {
	some name, bound in slice_thresholds
	not well_formed(bound)
	msg := sprintf("slice threshold for metric %s must be {min: N} and/or {max: N}", [name])
}

deny contains msg if {
	some name, bound in thresholds
	some s in evals
	value := s.predicate.metrics[name]
	some problem in out_of_bounds(value, bound)
	msg := sprintf("eval metric %s = %s is %s", [name, num(value), problem])
}

deny contains msg if {
	some name, bound in slice_thresholds
	some s in evals
	some slice_name, slice in s.predicate.slices
	value := slice[name]
	some problem in out_of_bounds(value, bound)
	msg := sprintf("eval metric %s = %s in slice %s is %s", [name, num(value), slice_name, problem])
}

warn contains msg if {
	count(slice_thresholds) > 0
	some s in evals
	count(object.get(s.predicate, "slices", {})) == 0
	msg := "the eval reports no per-slice metrics; slice thresholds were not checked"
}

well_formed(bound) if {
	is_object(bound)
	count(bound) > 0
	every key, value in bound {
		key in {"min", "max"}
		is_number(value)
	}
}

out_of_bounds(value, bound) := {problem |
	some problem in [below(value, bound), above(value, bound)]
	problem != ""
}

below(value, bound) := sprintf("below the minimum %s", [num(bound.min)]) if {
	is_number(value)
	value < bound.min
} else := ""

above(value, bound) := sprintf("above the maximum %s", [num(bound.max)]) if {
	is_number(value)
	value > bound.max
} else := ""

# A number as both engines print it (messages are signed, and must read the same under
# OPA and regopy): integers in full, other numbers to 10 decimals without trailing zeros
# (0.69, not regopy's %v 0.6899999999999999; 0.6999996, not %g's 0.7). Outside that range
# %v, whose digits may differ between engines (the value does not).
num(x) := sprintf("%d", [round(x)]) if {
	x == round(x)
	abs(x) < 2147483648
} else := trim_right(trim_right(sprintf("%.10f", [x]), "0"), ".") if {
	abs(x) < 1000000000
	abs(x) >= 0.000001
} else := sprintf("%v", [x])

# --- aliases ---------------------------------------------------------------------------

# An alias gated as production (production, champion) points only at a version in
# Production. Checked where the registry's state is in the input (the registry always
# gives it; an offline `policy check --alias` has none).
deny contains msg if {
	input.transition.alias
	not input.transition.to
	is_object(input.registry)
	not object.get(input.registry, "stage", null) == "Production"
	msg := sprintf("alias %s is gated as production: it may point only at a version in Production (this one is in %s; promote it first)",
		[input.transition.alias, registry_stage])
}

registry_stage := s if {
	s := input.registry.stage
	is_string(s)
} else := "unknown"

# --- reviews ---------------------------------------------------------------------------

builder_types := {staging.provenance_type, staging.sbom_type, "https://model_signing/signature/v1.0"}

# Who built the model: the signers of its provenance, SBOM and file signature. A signer
# is known by its id (key id, or Sigstore identity when keyless) and its trust-file name.
builder_ids := {v.signer.id | some v in staging.views; v.type in builder_types}

builder_names := {v.signer.name | some v in staging.views; v.type in builder_types}

is_builder(signer) if signer.id in builder_ids

is_builder(signer) if signer.name in builder_names

# A signer's latest review is the one that stands.
superseded(r) if {
	some other in input.reviews
	other.signer.id == r.signer.id
	other.time > r.time
}

standing := [r | some r in input.reviews; not superseded(r)]

approvers := {r.signer.id |
	some r in standing
	r.decision == "approve"
	"reviewer" in r.signer.roles
	not is_builder(r.signer)
}

builder_approvals := [r |
	some r in standing
	r.decision == "approve"
	is_builder(r.signer)
]

deny contains msg if {
	count(approvers) < min_approvals
	count(builder_approvals) == 0
	msg := sprintf("needs %v approval(s) by a reviewer who is not the builder; found %v",
		[min_approvals, count(approvers)])
}

deny contains msg if {
	count(approvers) < min_approvals
	count(builder_approvals) > 0
	msg := sprintf(
		"needs %v approval(s) by a reviewer who is not the builder; found %v (a review signed by the builder's own key does not count)",
		[min_approvals, count(approvers)],
	)
}

deny contains msg if {
	some r in standing
	r.decision == "reject"
	msg := sprintf("rejected by reviewer %s: %s", [r.reviewer, r.comment])
}

# --- pickles ---------------------------------------------------------------------------

deny contains msg if {
	not input.scan
	msg := "no pickle scan of the model's files in the input (give the model files)"
}

deny contains msg if {
	input.scan.rootDigest
	input.scan.rootDigest != input.model.rootDigest
	msg := sprintf("the pickle scan is of another model (%v)", [input.scan.rootDigest])
}

deny contains msg if {
	some finding in input.scan.findings
	finding.severity != "error"
	not import_allowed(finding)
	msg := sprintf("unsafe pickle: %s imports %s (%s)", [finding.file, finding.global, finding.severity])
}

deny contains msg if {
	some finding in input.scan.findings
	finding.severity == "error"
	msg := sprintf("pickle scan failed: %s %s", [finding.file, object.get(finding, "detail", "")])
}

# "module.name" exactly: that one import, whatever it is (the data's own choice).
import_allowed(finding) if finding.global in allowed_imports

# "package.*": only a class under the package, told by its name without importing
# anything (CapWords: upper-case first, letters and digits only; a function such as
# numpy.load, a dotted attribute path such as ndarray.tofile, a private _name do not
# match), rated suspicious by the scanner (never dangerous), outside denied modules.
import_allowed(finding) if {
	some pattern in allowed_imports
	endswith(pattern, ".*")
	is_string(finding.module)
	is_string(finding.name)
	startswith(concat("", [finding.module, "."]), trim_suffix(pattern, "*"))
	regex.match(`^[A-Z][A-Za-z0-9]*$`, finding.name)
	finding.severity == "suspicious"
	not denied_module(finding.module)
}

denied_module(module) if {
	some prefix in denied_modules
	startswith(concat("", [module, "."]), concat("", [prefix, "."]))
}

# --- licences --------------------------------------------------------------------------

deny contains msg if {
	not is_array(object.get(settings, "denied_licenses", null))
	msg := "no denied-licence list configured (data.mlprov_config.production.denied_licenses)"
}

# Indexes of the SBOM statements that count (reading their licences by path is fast).
sbom_indexes := [v.i | some v in staging.counting(staging.sbom_type, "sbom")]

# The signed SBOM's licences, as mlprov summarises them (see the input schema): every
# lower-case licence id (or name) its components declare, with those components.
deny contains msg if {
	some i in sbom_indexes
	licenses := input.statements[i].summary.licenses
	some id in object.keys(licenses) & denied_licenses
	components := licenses[id]
	msg := concat("", ["denied licence ", id, " in the SBOM (", components_text(components), ")"])
}

components_text(names) := concat(", ", names) if {
	count(names) <= 5
} else := concat("", [concat(", ", array.slice(names, 0, 5)), sprintf(" and %v more", [count(names) - 5])])
