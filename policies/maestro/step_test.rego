# Unit tests of maestro.step: the allowed case and every deny reason, on the tenants in
# policies/data/tenants.json. Run them with `maestro policies test` (regopy); they are OPA v1
# tests too. Each test reads the decision under one named input (`with input as <rule>`).
package maestro.step_test

import data.maestro.step
import rego.v1

# A step of tenant acme that every rule allows; each test below changes one thing.
allowed_input := {
	"tenant": "acme",
	"run_tenant": "acme",
	"environment": "prod",
	"workflow": "site-digest",
	"run_id": "r1",
	"step": {
		"id": "summarise",
		"plugin": "litellm.generate",
		"models": ["openai/gpt-4o-mini"],
		"hosts": [{"url": "https://www.acme.example/news", "host": "www.acme.example", "address": "public"}],
		"secrets": ["ACME_OPENAI_KEY"],
		"estimated_cost_usd": 0.25,
	},
	"run": {"spend_usd": 0.5, "budget_usd": 2.0},
	"tenant_spend_usd": 10.0,
}

# object.union is shallow in rego-cpp (deep in OPA): merge the step object explicitly.
with_step(changes) := object.union(allowed_input, {"step": object.union(allowed_input.step, changes)})

test_allowed_step if {
	decision := step.decision with input as allowed_input
	decision.allow
	decision.deny == set()
	decision.policy_version != "unversioned"
}

unknown_tenant_input := object.union(allowed_input, {"tenant": "nobody", "run_tenant": "nobody"})

test_unknown_tenant if {
	decision := step.decision with input as unknown_tenant_input
	not decision.allow
	"unknown_tenant: tenant 'nobody' is not in the policy data" in decision.deny
}

tenant_mismatch_input := object.union(allowed_input, {"run_tenant": "globex"})

test_tenant_mismatch if {
	decision := step.decision with input as tenant_mismatch_input
	not decision.allow
	decision.deny == {"tenant_mismatch: the run is tagged tenant 'globex' but workflow 'site-digest' belongs to tenant 'acme'"}
}

environment_input := object.union(allowed_input, {"environment": "test"})

test_environment_not_allowed if {
	decision := step.decision with input as environment_input
	decision.deny == {"environment_not_allowed: tenant 'acme' may not run in environment 'test'"}
}

plugin_input := with_step({"plugin": "shell"})

test_plugin_not_allowed if {
	decision := step.decision with input as plugin_input
	decision.deny == {"plugin_not_allowed: tenant 'acme' may not use plugin 'shell' (step 'summarise')"}
}

model_input := with_step({"models": ["openai/gpt-4o-mini", "openai/gpt-4o"]})

test_model_not_allowed if {
	decision := step.decision with input as model_input
	decision.deny == {"model_not_allowed: tenant 'acme' may not use model 'openai/gpt-4o' (step 'summarise')"}
}

model_glob_input := with_step({"models": ["ollama_chat/llama3"]})

test_model_allowed_by_glob if {
	decision := step.decision with input as model_glob_input
	decision.allow
}

domain_input := with_step({"hosts": [{"url": "https://evil.example/x", "host": "evil.example", "address": "public"}]})

test_domain_not_allowed if {
	decision := step.decision with input as domain_input
	decision.deny == {"domain_not_allowed: tenant 'acme' may not reach 'evil.example' (url 'https://evil.example/x', step 'summarise')"}
}

address_input := with_step({"hosts": [{"url": "http://127.0.0.1:8080/", "host": "127.0.0.1", "address": "loopback"}]})

test_address_not_allowed if {
	decision := step.decision with input as address_input
	decision.deny == {"address_not_allowed: '127.0.0.1' is a loopback address that tenant 'acme' does not allow-list (url 'http://127.0.0.1:8080/', step 'summarise')"}
}

secret_input := with_step({"secrets": ["ACME_OPENAI_KEY", "GLOBEX_TOKEN"]})

test_secret_not_allowed if {
	decision := step.decision with input as secret_input
	decision.deny == {"secret_not_allowed: tenant 'acme' may not read secret 'GLOBEX_TOKEN' (step 'summarise')"}
}

run_budget_input := object.union(allowed_input, {"run": {"spend_usd": 1.9, "budget_usd": 2.0}})

test_run_budget_exceeded if {
	decision := step.decision with input as run_budget_input
	decision.deny == {"run_budget_exceeded: step 'summarise' may cost $0.25, the run has spent $1.9 of its $2 budget (budget.max_cost_usd)"}
}

no_run_budget_input := object.union(allowed_input, {"run": {"spend_usd": 1000, "budget_usd": null}})

test_no_run_budget_means_no_run_limit if {
	decision := step.decision with input as no_run_budget_input
	decision.allow
}

tenant_budget_input := object.union(allowed_input, {"tenant_spend_usd": 199.9})

test_tenant_budget_exceeded if {
	decision := step.decision with input as tenant_budget_input
	decision.deny == {"tenant_budget_exceeded: step 'summarise' may cost $0.25, tenant 'acme' has spent $199.9 of its $200 budget this month"}
}

# A web_scraper crawl: its hosts are the start URLs' and the domains it may follow links into
# (`allowed_domains`, where "*" is any domain), all checked before any request is made.
crawl_step := {
	"id": "crawl",
	"plugin": "web_scraper",
	"models": [],
	"hosts": [
		{"url": "https://www.acme.example/", "host": "www.acme.example", "address": "public"},
		{"url": "shop.acme.example", "host": "shop.acme.example", "address": "public"},
	],
	"secrets": [],
	"estimated_cost_usd": 0,
}

crawl_input := with_step(crawl_step)

test_crawl_of_the_tenants_domains_allowed if {
	decision := step.decision with input as crawl_input
	decision.allow
}

crawl_anywhere_input := with_step(object.union(crawl_step, {"hosts": [
	{"url": "https://www.acme.example/", "host": "www.acme.example", "address": "public"},
	{"url": "*", "host": "*", "address": "public"},
]}))

test_crawl_into_any_domain_not_allowed if {
	decision := step.decision with input as crawl_anywhere_input
	decision.deny == {"domain_not_allowed: tenant 'acme' may not reach '*' (url '*', step 'crawl')"}
}

local_crawl_input := {
	"tenant": "default",
	"run_tenant": "default",
	"environment": "dev",
	"workflow": "scrape-site",
	"run_id": "r2",
	"step": object.union(crawl_step, {"hosts": [{"url": "http://127.0.0.1:8000/", "host": "127.0.0.1", "address": "loopback"}]}),
	"run": {"spend_usd": 0, "budget_usd": null},
	"tenant_spend_usd": 0,
}

test_default_tenant_may_crawl_loopback if {
	decision := step.decision with input as local_crawl_input
	decision.allow
}
