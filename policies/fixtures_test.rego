# Shared fixtures for the policy unit tests: a model that passes every shipped gate.
#
# Test files end in _test.rego, so they are never part of a policy. regopy crashes on
# `with input as {...}`; tests mock one key at a time (`with input.model as ...`), which
# the helpers below do for every key of an input object.
package mlprov.fixtures

import rego.v1

import data.mlprov.admission
import data.mlprov.production
import data.mlprov.staging

root_hex := "4a203b51b592148d1a4f8482fa2b9a9ffbd836f17e94b070c808c4e8bbb991ea"

other_hex := "0000000000000000000000000000000000000000000000000000000000000000"

subject := [{"name": "credit-risk", "digest": {"sha256": root_hex}}]

builder := {"id": "key:k-ci", "name": "ci", "keyid": "k-ci", "kind": "key", "roles": ["builder"]}

evaluator := {"id": "key:k-eval", "name": "eval-bot", "keyid": "k-eval", "kind": "key", "roles": ["evaluator"]}

alice := {"id": "key:k-alice", "name": "alice", "keyid": "k-alice", "kind": "key", "roles": ["reviewer"]}

bob := {"id": "key:k-bob", "name": "bob", "keyid": "k-bob", "kind": "key", "roles": ["reviewer"]}

# The builder's key, also trusted as a reviewer (e.g. `--key K` trusts one key for all roles).
builder_reviewer := {"id": "key:k-ci", "name": "ci", "keyid": "k-ci", "kind": "key", "roles": ["builder", "reviewer"]}

model := {
	"name": "credit-risk",
	"identity": "mlid:sha256:37bea7890f67a915cef60a355f23cc1f75863dff24138441656d55bb05ebfec1",
	"rootDigest": "sha256:4a203b51b592148d1a4f8482fa2b9a9ffbd836f17e94b070c808c4e8bbb991ea",
	"filesVerified": true,
}

verification := {"verified": true, "checks": [
	{"name": "signature:model.sig", "ok": true},
	{"name": "files", "ok": true},
]}

oms := {
	"file": "model.sig", "predicateType": "https://model_signing/signature/v1.0",
	"subject": subject, "signer": builder,
	"predicate": {"serialization": {"method": "files"}, "resourceCount": 2},
}

provenance := {
	"file": "provenance.sigstore.json", "predicateType": "https://slsa.dev/provenance/v1",
	"subject": subject, "signer": builder,
	"predicate": {"runDetails": {"builder": {"id": "https://mlprov.dev/builders/local/v1"}}},
}

sbom := {
	"file": "sbom.sigstore.json", "predicateType": "https://cyclonedx.org/bom",
	"subject": subject, "signer": builder,
	"predicate": {"bomFormat": "CycloneDX", "specVersion": "1.6"},
	"summary": {"componentCount": 3, "unlicensedCount": 0, "licenses": {
		"mit": ["click@8.1.7"],
		"apache-2.0": ["regopy@1.5.2", "sigstore@4.5.1"],
	}},
}

evaluation := {
	"file": "eval.sigstore.json", "predicateType": "https://mlprov.dev/predicates/eval/v1",
	"subject": subject, "signer": evaluator,
	"predicate": {"metrics": {"auc": 0.91, "accuracy": 0.86}, "slices": {"age<30": {"auc": 0.88}}},
}

statements := [oms, provenance, sbom, evaluation]

approval := {
	"file": "alice.json", "reviewer": "alice", "decision": "approve", "comment": "looks good",
	"time": "2026-01-31T12:00:00Z", "signer": alice, "evidence": {},
}

scan := {
	"scanner": {"name": "mlprov", "version": "0.1.0"},
	"rootDigest": "sha256:4a203b51b592148d1a4f8482fa2b9a9ffbd836f17e94b070c808c4e8bbb991ea",
	"files": [{"path": "model.pt", "status": "clean", "imports": ["torch._utils._rebuild_tensor_v2"]}],
	"findings": [],
}

lineage := {"verified": true, "status": "verified", "failures": []}

# A complete input that every gate allows (transition: to Production).
good := {
	"model": model, "verification": verification, "statements": statements,
	"reviews": [approval], "scan": scan, "lineage": lineage,
	"transition": {"from": "Staging", "to": "Production", "actor": "bob"},
}

# What each gate says about input `i` (every key of `good` must be present in `i`).
staging_deny(i) := staging_deny_with(settings, i)

staging_deny_with(settings, i) := d if {
	d := staging.deny with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.scan as i.scan with input.lineage as i.lineage
		with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

staging_warn(i) := staging_warn_with(settings, i)

staging_warn_with(settings, i) := w if {
	w := staging.warn with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.scan as i.scan with input.lineage as i.lineage
		with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

production_deny(i) := production_deny_with(settings, i)

production_deny_with(settings, i) := d if {
	d := production.deny with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.scan as i.scan with input.lineage as i.lineage
		with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

production_warn(i) := production_warn_with(settings, i)

production_warn_with(settings, i) := w if {
	w := production.warn with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.scan as i.scan with input.lineage as i.lineage
		with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

# The same without a lineage chain, or without a scan, in the input.
staging_deny_no_lineage(i) := staging_deny_no_lineage_with(settings, i)

staging_deny_no_lineage_with(settings, i) := d if {
	d := staging.deny with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.scan as i.scan with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

staging_warn_no_lineage(i) := staging_warn_no_lineage_with(settings, i)

staging_warn_no_lineage_with(settings, i) := w if {
	w := staging.warn with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.scan as i.scan with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

production_deny_no_scan(i) := production_deny_no_scan_with(settings, i)

production_deny_no_scan_with(settings, i) := d if {
	d := production.deny with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.lineage as i.lineage with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

admission_deny(i) := admission_deny_with(settings, i)

admission_deny_with(settings, i) := d if {
	d := admission.deny with input.model as i.model with input.verification as i.verification
		with input.statements as i.statements with input.reviews as i.reviews
		with input.scan as i.scan with input.lineage as i.lineage
		with input.transition as i.transition
		with data.mlprov.staging.cfg as settings
}

# The tests' own settings: the shipped defaults of data.yaml, written out, so the tests
# mean the same whatever a team puts in its data file (thresholds, licences, gates).
settings := {
	"signer_roles": {
		"provenance": [
			"builder"
		],
		"sbom": [
			"builder"
		],
		"eval": [
			"evaluator"
		]
	},
	"alias_gates": {
		"production": "production",
		"champion": "production",
		"staging": "staging",
		"challenger": "staging"
	},
	"staging": {
		"require_lineage": false
	},
	"production": {
		"metrics": {
			"auc": {
				"min": 0.7
			},
			"accuracy": {
				"min": 0.65
			}
		},
		"slices": {
			"auc": {
				"min": 0.6
			}
		},
		"min_approvals": 1,
		"allowed_pickle_imports": [
			"sklearn.*",
			"joblib.numpy_pickle.NumpyArrayWrapper",
			"numpy._core.numeric._frombuffer",
			"numpy.core.numeric._frombuffer",
			"numpy.bool",
			"numpy.bool_",
			"numpy.int8",
			"numpy.int16",
			"numpy.int32",
			"numpy.int64",
			"numpy.uint8",
			"numpy.uint16",
			"numpy.uint32",
			"numpy.uint64",
			"numpy.float16",
			"numpy.float32",
			"numpy.float64",
			"numpy.complex64",
			"numpy.complex128",
			"numpy.object_",
			"numpy.str_",
			"numpy.bytes_",
			"numpy.random._pickle.__randomstate_ctor",
			"numpy.random._pickle.__generator_ctor",
			"numpy.random._pickle.__bit_generator_ctor",
			"numpy.random._mt19937.MT19937",
			"numpy.random._pcg64.PCG64",
			"numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
			"scipy.sparse._csr.csr_matrix",
			"scipy.sparse._csc.csc_matrix",
			"scipy.sparse._coo.coo_matrix",
			"scipy.sparse._csr.csr_array",
			"scipy.sparse._csc.csc_array",
			"scipy.sparse._coo.coo_array"
		],
		"denied_pickle_modules": [
			"sklearn.datasets",
			"sklearn.callback",
			"sklearn.externals",
			"sklearn.conftest",
			"sklearn.utils._testing",
			"sklearn.utils._test_common",
			"sklearn.utils.estimator_checks",
			"sklearn.utils.parallel",
			"sklearn.utils._joblib",
			"sklearn.utils._available_if",
			"sklearn.utils.discovery",
			"sklearn.utils._repr_html"
		],
		"denied_licenses": [
			"AGPL-1.0-only",
			"AGPL-1.0-or-later",
			"AGPL-3.0-only",
			"AGPL-3.0-or-later",
			"SSPL-1.0",
			"CC-BY-NC-4.0",
			"CC-BY-NC-ND-4.0",
			"CC-BY-NC-SA-4.0"
		]
	}
}

# `good` with one key replaced.
# `obj` with `key` set to `value`. Not object.union(obj, {key: value}): OPA's
# object.union merges nested objects (regopy's does not), so a test would mean
# something else under each engine. Removing the key first makes them agree.
set_key(obj, key, value) := object.union(object.remove(obj, [key]), {key: value})

with_key(key, value) := set_key(good, key, value)

# The shipped settings (data.mlprov_config) with one setting replaced, for tests to use as
# `with data.mlprov.staging.cfg as f.config(...)`. Mocking data.mlprov_config.a.b itself
# would merge objects under OPA (and replace them under regopy).
config(section, key, value) := set_key(settings, section,
	set_key(object.get(settings, section, {}), key, value))

config_section(section, value) := set_key(settings, section, value)

# The statements with the one of `predicate_type` replaced by `statement` (or dropped: null).
replace_statement(predicate_type, statement) := [s |
	some original in statements
	s := pick(original, predicate_type, statement)
	s != null
]

pick(original, predicate_type, replacement) := replacement if {
	original.predicateType == predicate_type
} else := original
