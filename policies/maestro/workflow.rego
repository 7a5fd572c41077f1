# maestro.workflow: may this workflow run now? Asked by the gate sensor for each submitted
# request, and by the first step of every run (runs launched from the UI, schedules, CLI).
#
# Input: tenant (the requester's tenant), environment, requester, workflow {name, version,
# tenant, plugins, models, secrets, step_count, budget_usd, estimated_cost_usd},
# tenant_spend_usd (this budget period), active_runs (the tenant's runs in flight).
# Output: decision {allow, deny (reasons, each "rule: ..."), retry_later, policy_version}.
package maestro.workflow

import data.maestro.lib
import rego.v1

default allow := false

allow if count(deny) == 0

# Indexed by the input's tenant: never a scan over all tenants' data; undefined when unknown.
tenant := data.tenants[input.tenant]

deny contains msg if {
	not tenant
	msg := sprintf("unknown_tenant: tenant '%v' is not in the policy data", [input.tenant])
}

deny contains msg if {
	input.workflow.tenant != input.tenant
	msg := sprintf(
		"tenant_mismatch: workflow '%v' belongs to tenant '%v', not to the requesting tenant '%v'",
		[input.workflow.name, input.workflow.tenant, input.tenant],
	)
}

deny contains msg if {
	not lib.allowed(tenant.allowed_environments, input.environment)
	msg := sprintf("environment_not_allowed: tenant '%v' may not run in environment '%v'", [input.tenant, input.environment])
}

deny contains msg if {
	some plugin in input.workflow.plugins
	not lib.allowed(tenant.allowed_plugins, plugin)
	msg := sprintf("plugin_not_allowed: tenant '%v' may not use plugin '%v'", [input.tenant, plugin])
}

deny contains msg if {
	some model in input.workflow.models
	not lib.allowed(tenant.allowed_models, model)
	msg := sprintf("model_not_allowed: tenant '%v' may not use model '%v'", [input.tenant, model])
}

deny contains msg if {
	some secret in input.workflow.secrets
	not lib.allowed(tenant.allowed_secrets, secret)
	msg := sprintf("secret_not_allowed: tenant '%v' may not read secret '%v'", [input.tenant, secret])
}

deny contains msg if {
	is_number(input.workflow.budget_usd)
	input.workflow.budget_usd > tenant.max_budget_usd
	msg := sprintf(
		"budget_over_tenant_limit: workflow budget $%v exceeds the period budget of tenant '%v' ($%v)",
		[input.workflow.budget_usd, input.tenant, tenant.max_budget_usd],
	)
}

deny contains msg if {
	input.tenant_spend_usd >= tenant.max_budget_usd
	msg := sprintf(
		"tenant_budget_exhausted: tenant '%v' has spent $%v of its $%v budget this %s",
		[input.tenant, input.tenant_spend_usd, tenant.max_budget_usd, tenant.budget_period],
	)
}

deny contains msg if {
	input.tenant_spend_usd < tenant.max_budget_usd
	input.tenant_spend_usd + input.workflow.estimated_cost_usd > tenant.max_budget_usd
	msg := sprintf(
		"tenant_budget_exceeded: estimated cost $%v on top of $%v spent exceeds the $%v budget of tenant '%v' this %s",
		[input.workflow.estimated_cost_usd, input.tenant_spend_usd, tenant.max_budget_usd, input.tenant, tenant.budget_period],
	)
}

concurrency contains msg if {
	input.active_runs >= tenant.max_concurrent_runs
	msg := sprintf(
		"max_concurrent_runs: tenant '%v' has %v active run(s), its limit is %v",
		[input.tenant, input.active_runs, tenant.max_concurrent_runs],
	)
}

deny contains msg if some msg in concurrency

# Only the concurrency limit stands in the way: the gate keeps the request and asks again.
retry_later if {
	count(deny) > 0
	count(deny) == count(concurrency)
}

default retry_later := false

decision := {
	"allow": allow,
	"deny": deny,
	"retry_later": retry_later,
	"policy_version": lib.policy_version,
}
