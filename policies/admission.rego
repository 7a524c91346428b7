# mlprov admission (Rego v1): the entry point when a whole directory is the policy.
#
# Picks the gate from the requested transition (input.transition):
#   - to Production, or an alias gated as production  -> production.rego
#   - to Staging, or an alias gated as staging        -> staging.rego
#   - to Archived or None (taking a model out of use) -> no gate
# When both a stage and an alias are named, the stricter gate applies. Anything
# else is denied: an unknown stage or alias never passes by default.
package mlprov.admission

import rego.v1

import data.mlprov.production
import data.mlprov.staging

default_alias_gates := {
	"production": "production",
	"champion": "production",
	"staging": "staging",
	"challenger": "staging",
}

alias_gates := g if {
	g := staging.setting(staging.cfg, "alias_gates", default_alias_gates)
	is_object(g)
} else := default_alias_gates

stage_gates := {"production": "production", "staging": "staging", "archived": "none", "none": "none"}

requested contains gate if {
	gate := stage_gates[lower(input.transition.to)]
}

requested contains gate if {
	gate := alias_gates[lower(input.transition.alias)]
}

gate := "production" if {
	"production" in requested
} else := "staging" if {
	"staging" in requested
} else := "none" if {
	"none" in requested
}

deny contains msg if {
	gate == "production"
	some msg in production.deny
}

deny contains msg if {
	gate == "staging"
	some msg in staging.deny
}

warn contains msg if {
	gate == "production"
	some msg in production.warn
}

warn contains msg if {
	gate == "staging"
	some msg in staging.warn
}

deny contains msg if {
	not input.transition.to
	not input.transition.alias
	msg := "the request names no target stage or alias (transition.to, transition.alias)"
}

deny contains msg if {
	input.transition.to
	not stage_gates[lower(input.transition.to)]
	msg := sprintf("unknown target stage %v (Staging, Production, Archived, None)", [input.transition.to])
}

deny contains msg if {
	input.transition.alias
	not alias_gates[lower(input.transition.alias)]
	msg := sprintf("no gate configured for alias %v (data.mlprov_config.alias_gates)",
		[input.transition.alias])
}
