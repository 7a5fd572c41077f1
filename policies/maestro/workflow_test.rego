# Unit tests of maestro.workflow: the allowed case and every deny reason, on the tenants in
# policies/data/tenants.json. Run them with `maestro policies test` (regopy); they are OPA v1
# tests too. Each test reads the decision under one named input (`with input as <rule>`).
package maestro.workflow_test

import data.maestro.workflow
import rego.v1

# A request of tenant acme that every rule allows; each test below changes one thing.
allowed_input := {
	"tenant": "acme",
	"environment": "prod",
	"requester": "alice",
	"workflow": {
		"name": "site-digest",
		"version": "1.0.0",
		"tenant": "acme",
		"plugins": ["http.request", "litellm.generate"],
		"models": ["openai/gpt-4o-mini"],
		"secrets": ["ACME_OPENAI_KEY"],
		"step_count": 3,
		"budget_usd": 5.0,
		"estimated_cost_usd": 0.5,
	},
	"tenant_spend_usd": 10.0,
	"active_runs": 0,
}

# object.union is shallow in rego-cpp (deep in OPA): merge the workflow object explicitly.
with_workflow(changes) := object.union(
	allowed_input,
	{"workflow": object.union(allowed_input.workflow, changes)},
)

test_allowed_workflow if {
	decision := workflow.decision with input as allowed_input
	decision.allow
	decision.deny == set()
	decision.retry_later == false
}

unknown_tenant_input := object.union(allowed_input, {"tenant": "nobody"})

test_unknown_tenant if {
	decision := workflow.decision with input as unknown_tenant_input
	not decision.allow
	"unknown_tenant: tenant 'nobody' is not in the policy data" in decision.deny
}

tenant_mismatch_input := with_workflow({"tenant": "globex"})

test_tenant_mismatch if {
	decision := workflow.decision with input as tenant_mismatch_input
	decision.deny == {"tenant_mismatch: workflow 'site-digest' belongs to tenant 'globex', not to the requesting tenant 'acme'"}
}

environment_input := object.union(allowed_input, {"environment": "test"})

test_environment_not_allowed if {
	decision := workflow.decision with input as environment_input
	decision.deny == {"environment_not_allowed: tenant 'acme' may not run in environment 'test'"}
}

plugin_input := with_workflow({"plugins": ["http.request", "shell"]})

test_plugin_not_allowed if {
	decision := workflow.decision with input as plugin_input
	decision.deny == {"plugin_not_allowed: tenant 'acme' may not use plugin 'shell'"}
}

model_input := with_workflow({"models": ["anthropic/claude-3"]})

test_model_not_allowed if {
	decision := workflow.decision with input as model_input
	decision.deny == {"model_not_allowed: tenant 'acme' may not use model 'anthropic/claude-3'"}
}

secret_input := with_workflow({"secrets": ["AWS_SECRET"]})

test_secret_not_allowed if {
	decision := workflow.decision with input as secret_input
	decision.deny == {"secret_not_allowed: tenant 'acme' may not read secret 'AWS_SECRET'"}
}

budget_over_limit_input := with_workflow({"budget_usd": 500})

test_budget_over_tenant_limit if {
	decision := workflow.decision with input as budget_over_limit_input
	decision.deny == {"budget_over_tenant_limit: workflow budget $500 exceeds the period budget of tenant 'acme' ($200)"}
}

exhausted_input := object.union(allowed_input, {"tenant_spend_usd": 200})

test_tenant_budget_exhausted if {
	decision := workflow.decision with input as exhausted_input
	decision.deny == {"tenant_budget_exhausted: tenant 'acme' has spent $200 of its $200 budget this month"}
}

exceeded_input := object.union(allowed_input, {"tenant_spend_usd": 199.8})

test_tenant_budget_exceeded if {
	decision := workflow.decision with input as exceeded_input
	decision.deny == {"tenant_budget_exceeded: estimated cost $0.5 on top of $199.8 spent exceeds the $200 budget of tenant 'acme' this month"}
}

busy_input := object.union(allowed_input, {"active_runs": 3})

test_max_concurrent_runs_retries_later if {
	decision := workflow.decision with input as busy_input
	decision.deny == {"max_concurrent_runs: tenant 'acme' has 3 active run(s), its limit is 3"}
	decision.retry_later
}

busy_and_denied_input := object.union(busy_input, {"environment": "test"})

test_concurrency_with_another_denial_does_not_retry if {
	decision := workflow.decision with input as busy_and_denied_input
	count(decision.deny) == 2
	not decision.retry_later
}
