# mlprov staging gate (Rego v1).
#
# Allows a model into Staging when its evidence verified and it carries, each
# signed by a signer holding the right role (trust file) and each about this
# model's root digest:
#   - SLSA provenance           (role: builder)
#   - a CycloneDX ML-BOM         (role: builder)
#   - an mlprov eval statement   (role: evaluator)
# and, when the input carries a lineage chain, that chain verified.
#
# The input is documented by src/mlprov/schemas/policy-input-v1.schema.json;
# settings come from data.mlprov_config (policies/data.yaml), never from here.
package mlprov.staging

import rego.v1

provenance_type := "https://slsa.dev/provenance/v1"

sbom_type := "https://cyclonedx.org/bom"

eval_type := "https://mlprov.dev/predicates/eval/v1"

# --- settings (data.yaml), with the documented defaults -------------------------------

cfg := data.mlprov_config if { is_object(data.mlprov_config) } else := {}

# Settings read so that a missing key and a null one mean the same (the default), and a
# value of the wrong type is never read through (OPA and rego-cpp both agree on these).
section(obj, key) := v if {
	is_object(obj)
	v := object.get(obj, key, {})
	is_object(v)
} else := {}

setting(obj, key, default_value) := v if {
	is_object(obj)
	v := object.get(obj, key, null)
	v != null
} else := default_value

default_roles := {"provenance": ["builder"], "sbom": ["builder"], "eval": ["evaluator"]}

roles_for(kind) := setting(section(cfg, "signer_roles"), kind, default_roles[kind])

require_lineage := setting(section(cfg, "staging"), "require_lineage", false)

# --- helpers ---------------------------------------------------------------------------

kinds := {provenance_type: "provenance", sbom_type: "sbom", eval_type: "eval"}

root_hex := trim_prefix(input.model.rootDigest, "sha256:")

# One pass over the statements, into a light view the rules below loop over: regopy
# copies each element it iterates, and a statement carries its whole predicate.
# `i` indexes input.statements, for the few rules that read a predicate.
views := [view |
	some i
	s := input.statements[i]
	view := {"i": i, "file": s.file, "type": s.predicateType, "signer": s.signer, "about": about(s)}
]

about(s) := true if {
	some subject in s.subject
	subject.digest.sha256 == root_hex
} else := false

# The statements of a type (views) whose signer holds one of the roles that kind needs
# and whose subject is this model's root digest.
counting(predicate_type, kind) := [v |
	some v in views
	v.type == predicate_type
	counts(v, kind)
]

counts(v, kind) if {
	v.about == true
	some role in v.signer.roles
	role in roles_for(kind)
}

# The kinds (provenance, sbom, eval) present in a statement that counts.
counted_kinds contains kind if {
	some v in views
	kind := kinds[v.type]
	counts(v, kind)
}

failed_checks := [sprintf("%s: %s", [c.name, c.detail]) |
	some c in input.verification.checks
	c.ok == false
]

# --- rules -----------------------------------------------------------------------------

deny contains msg if {
	not input.verification.verified
	count(failed_checks) > 0
	msg := concat("", ["the evidence did not verify: ", concat("; ", failed_checks)])
}

deny contains msg if {
	not input.verification.verified
	count(failed_checks) == 0
	msg := "the evidence was not fully verified (a verification step did not run)"
}

deny contains msg if {
	not input.model.rootDigest
	msg := "the input names no verified root digest for the model"
}

deny contains msg if {
	not "provenance" in counted_kinds
	msg := concat("", ["no provenance (", provenance_type, ") signed by a signer with the ",
		concat(" or ", roles_for("provenance")), " role"])
}

deny contains msg if {
	not "sbom" in counted_kinds
	msg := concat("", ["no SBOM (", sbom_type, ") signed by a signer with the ",
		concat(" or ", roles_for("sbom")), " role"])
}

deny contains msg if {
	not "eval" in counted_kinds
	msg := concat("", ["no eval results (", eval_type, ") signed by a signer with the ",
		concat(" or ", roles_for("eval")), " role"])
}

# A signed statement about another model is suspicious wherever it appears.
deny contains msg if {
	some v in views
	v.about == false
	msg := sprintf("%s is about another model than %v", [v.file, input.model.rootDigest])
}

deny contains msg if {
	input.lineage
	not input.lineage.verified == true
	msg := sprintf("the model's lineage did not verify (%s)%s", [input.lineage.status, lineage_detail])
}

lineage_detail := sprintf(": %s", [input.lineage.failures[0]]) if {
	count(input.lineage.failures) > 0
} else := ""

deny contains msg if {
	require_lineage == true
	not input.lineage
	msg := "no verified lineage in the input (data.mlprov_config.staging.require_lineage)"
}

warn contains msg if {
	not require_lineage == true
	not input.lineage
	msg := "no lineage in the input: parents, if any, were not checked"
}

# --- stage order -------------------------------------------------------------------------

# Stages move None -> Staging -> Production. Archived is reached from any stage (no gate),
# and a version leaves Archived through the gate of the stage it goes to. Production may
# step back to Staging. Checked when the request says where the version is
# (input.transition.from: the registry always does).
stage_sources := {
	"staging": {"none", "archived", "production"},
	"production": {"staging", "archived"},
}

stage_order_text := {
	"staging": "a version enters Staging from None, Archived or Production",
	"production": "a version enters Production from Staging (or Archived), never straight from None",
}

deny contains msg if {
	is_string(input.transition.to)
	is_string(input.transition.from)
	target := lower(input.transition.to)
	sources := stage_sources[target]
	not lower(input.transition.from) in sources
	msg := sprintf("%s: it is in %s (promote it to Staging first)", [stage_order_text[target], input.transition.from])
}
