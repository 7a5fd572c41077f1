# maestro.step: may this step run now? Asked by every step before its plugin is called.
#
# Input: tenant (the workflow's), run_tenant (the run's `maestro/tenant` tag), environment,
# workflow, step {id, plugin, models (model and fallbacks), hosts [{url, host, address}], secrets,
# estimated_cost_usd}, run {spend_usd, budget_usd}, tenant_spend_usd (this budget period).
# Output: decision {allow, deny (reasons, each "rule: ..."), policy_version}.
package maestro.step

import data.maestro.lib
import rego.v1

default allow := false

allow if count(deny) == 0

# Indexed by the input's tenant: never a scan over all tenants' data; undefined when unknown.
tenant := data.tenants[input.tenant]

step := input.step

deny contains msg if {
	not tenant
	msg := sprintf("unknown_tenant: tenant '%v' is not in the policy data", [input.tenant])
}

deny contains msg if {
	input.run_tenant != input.tenant
	msg := sprintf(
		"tenant_mismatch: the run is tagged tenant '%v' but workflow '%v' belongs to tenant '%v'",
		[input.run_tenant, input.workflow, input.tenant],
	)
}

deny contains msg if {
	not lib.allowed(tenant.allowed_environments, input.environment)
	msg := sprintf("environment_not_allowed: tenant '%v' may not run in environment '%v'", [input.tenant, input.environment])
}

deny contains msg if {
	not lib.allowed(tenant.allowed_plugins, step.plugin)
	msg := sprintf("plugin_not_allowed: tenant '%v' may not use plugin '%v' (step '%v')", [input.tenant, step.plugin, step.id])
}

deny contains msg if {
	some model in step.models
	not lib.allowed(tenant.allowed_models, model)
	msg := sprintf("model_not_allowed: tenant '%v' may not use model '%v' (step '%v')", [input.tenant, model, step.id])
}

deny contains msg if {
	some host in step.hosts
	host.address == "public"
	not lib.host_allowed(tenant.allowed_domains, host)
	msg := sprintf("domain_not_allowed: tenant '%v' may not reach '%v' (url '%v', step '%v')", [input.tenant, host.host, host.url, step.id])
}

deny contains msg if {
	some host in step.hosts
	host.address != "public"
	not lib.host_allowed(tenant.allowed_domains, host)
	msg := sprintf(
		"address_not_allowed: '%v' is a %s address that tenant '%v' does not allow-list (url '%v', step '%v')",
		[host.host, host.address, input.tenant, host.url, step.id],
	)
}

deny contains msg if {
	some secret in step.secrets
	not lib.allowed(tenant.allowed_secrets, secret)
	msg := sprintf("secret_not_allowed: tenant '%v' may not read secret '%v' (step '%v')", [input.tenant, secret, step.id])
}

deny contains msg if {
	is_number(input.run.budget_usd)
	input.run.spend_usd + step.estimated_cost_usd > input.run.budget_usd
	msg := sprintf(
		"run_budget_exceeded: step '%v' may cost $%v, the run has spent $%v of its $%v budget (budget.max_cost_usd)",
		[step.id, step.estimated_cost_usd, input.run.spend_usd, input.run.budget_usd],
	)
}

deny contains msg if {
	step.estimated_cost_usd > 0
	input.tenant_spend_usd + step.estimated_cost_usd > tenant.max_budget_usd
	msg := sprintf(
		"tenant_budget_exceeded: step '%v' may cost $%v, tenant '%v' has spent $%v of its $%v budget this %s",
		[step.id, step.estimated_cost_usd, input.tenant, input.tenant_spend_usd, tenant.max_budget_usd, tenant.budget_period],
	)
}

decision := {
	"allow": allow,
	"deny": deny,
	"retry_later": false,
	"policy_version": lib.policy_version,
}
