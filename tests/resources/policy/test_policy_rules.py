"""Every Rego rule, allow and each deny reason, on both engines: embedded (regopy) and an OPA
server (the loopback stand-in in tests/opa_standin.py, loaded with `push`)."""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from typing import Any

import pytest

from resources.policy.engine import (
    EmbeddedPolicyEngine,
    OpaServerPolicyEngine,
    PolicyEngine,
    PolicySet,
)
from resources.policy.inputs import address_class, hosts_in, models_in
from tests.support.http_server import serve_http
from tests.support.opa_standin import OpaStandIn, handler_for
from tests.support.ports import free_port

POLICIES = PolicySet.load()


@pytest.fixture(scope="module")
def opa_url() -> Iterator[str]:
    with serve_http(handler_for(OpaStandIn())) as url:
        OpaServerPolicyEngine(url).push(POLICIES)
        yield url


@pytest.fixture(params=["embedded", "opa"])
def engine(request: pytest.FixtureRequest) -> PolicyEngine:
    if request.param == "embedded":
        return EmbeddedPolicyEngine(POLICIES)
    return OpaServerPolicyEngine(request.getfixturevalue("opa_url"))


def _changed(payload: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`payload` with each change applied; `a__b` names the key `b` inside `a`."""
    for path, value in changes.items():
        node = payload
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return payload


def _step(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "tenant": "acme",
        "run_tenant": "acme",
        "environment": "prod",
        "workflow": "site-digest",
        "run_id": "r1",
        "step": {
            "id": "summarise",
            "plugin": "litellm.generate",
            "models": ["openai/gpt-4o-mini"],
            "hosts": hosts_in({"url": "https://www.acme.example/news"}),
            "secrets": ["ACME_OPENAI_KEY"],
            "estimated_cost_usd": 0.25,
        },
        "run": {"spend_usd": 0.5, "budget_usd": 2.0},
        "tenant_spend_usd": 10.0,
    }
    return _changed(payload, changes)


def _workflow(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
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
            "estimated_cost_usd": 1.0,
        },
        "tenant_spend_usd": 10.0,
        "active_runs": 0,
    }
    return _changed(payload, changes)


STEP_DENIALS = [
    ("unknown_tenant", {"tenant": "initech", "run_tenant": "initech"}, "'initech'"),
    ("tenant_mismatch", {"run_tenant": "globex"}, "tagged tenant 'globex'"),
    (
        "environment_not_allowed",
        {"tenant": "globex", "run_tenant": "globex", "environment": "staging"},
        "'staging'",
    ),
    ("plugin_not_allowed", {"step__plugin": "shell"}, "plugin 'shell'"),
    ("model_not_allowed", {"step__models": ["openai/gpt-4o-mini", "openai/o3"]}, "'openai/o3'"),
    (
        "domain_not_allowed",
        {"step__hosts": hosts_in({"url": "https://evil.example/x"})},
        "'evil.example'",
    ),
    (
        "address_not_allowed",
        {"step__hosts": hosts_in({"url": "http://127.0.0.1:8080/"})},
        "'127.0.0.1' is a loopback address",
    ),
    (
        "address_not_allowed",
        {"step__hosts": hosts_in({"url": "http://169.254.169.254/meta"})},
        "link_local",
    ),
    (
        "address_not_allowed",
        {"step__hosts": hosts_in({"url": "http://10.1.2.3/"})},
        "'10.1.2.3' is a private address",
    ),
    (
        "secret_not_allowed",
        {"step__secrets": ["ACME_OPENAI_KEY", "GLOBEX_TOKEN"]},
        "'GLOBEX_TOKEN'",
    ),
    ("run_budget_exceeded", {"step__estimated_cost_usd": 1.75}, "budget.max_cost_usd"),
    ("tenant_budget_exceeded", {"tenant_spend_usd": 199.9}, "tenant 'acme' has spent $199.9"),
]


def test_a_step_within_every_rule_is_allowed(engine: PolicyEngine) -> None:
    decision = engine.decide("step", _step())
    assert decision.allow and decision.reasons == ()
    assert decision.policy_version in (POLICIES.version, "server")


@pytest.mark.parametrize(("rule", "changes", "detail"), STEP_DENIALS)
def test_each_step_rule_denies_with_a_reason_naming_rule_and_value(
    engine: PolicyEngine, rule: str, changes: dict[str, Any], detail: str
) -> None:
    decision = engine.decide("step", _step(**changes))
    assert not decision.allow
    assert [r for r in decision.reasons if r.startswith(f"{rule}: ") and detail in r], (
        decision.reasons
    )
    assert not decision.retry_later


def test_step_allow_lists_wildcards_and_private_hosts_listed_by_the_tenant(
    engine: PolicyEngine,
) -> None:
    subdomain = _step(step__hosts=hosts_in({"url": "https://api.acme.example/v1"}))
    assert engine.decide("step", subdomain).allow  # "*.acme.example"
    ollama = _step(step__models=["ollama_chat/llama3"])
    assert engine.decide("step", ollama).allow  # "ollama_chat/*"
    globex = _step(
        tenant="globex",
        run_tenant="globex",
        step__plugin="ollama.chat",
        step__models=["ollama_chat/llama3.1"],
        step__secrets=["GLOBEX_TOKEN"],
        step__hosts=hosts_in({"api_base": "http://10.20.0.5:11434"}),
        step__estimated_cost_usd=0.0,
        tenant_spend_usd=0.0,
    )
    assert engine.decide("step", globex).allow  # its private host is listed exactly
    # The default (development) tenant reaches loopback services and has no period budget.
    local = _step(
        tenant="default",
        run_tenant="default",
        environment="dev",
        step__plugin="http.request",
        step__hosts=hosts_in({"url": "http://127.0.0.1:9000/"}),
        tenant_spend_usd=10_000.0,
    )
    assert engine.decide("step", local).allow


def test_a_step_with_no_estimate_is_not_held_by_an_exhausted_tenant_budget(
    engine: PolicyEngine,
) -> None:
    free = _step(step__estimated_cost_usd=0.0, tenant_spend_usd=500.0)
    assert engine.decide("step", free).allow
    paid = _step(step__estimated_cost_usd=0.01, tenant_spend_usd=500.0)
    assert not engine.decide("step", paid).allow


WORKFLOW_DENIALS = [
    ("unknown_tenant", {"tenant": "initech"}, "'initech'"),
    ("tenant_mismatch", {"tenant": "globex"}, "belongs to tenant 'acme'"),
    ("environment_not_allowed", {"environment": "qa"}, "'qa'"),
    ("plugin_not_allowed", {"workflow__plugins": ["echo", "shell"]}, "plugin 'shell'"),
    ("model_not_allowed", {"workflow__models": ["anthropic/claude"]}, "'anthropic/claude'"),
    ("secret_not_allowed", {"workflow__secrets": ["AWS_ROOT_KEY"]}, "'AWS_ROOT_KEY'"),
    ("budget_over_tenant_limit", {"workflow__budget_usd": 500.0}, "$500"),
    ("tenant_budget_exhausted", {"tenant_spend_usd": 200.0}, "spent $200"),
    ("tenant_budget_exceeded", {"tenant_spend_usd": 199.5}, "estimated cost $1"),
]


def test_a_workflow_within_every_rule_is_allowed(engine: PolicyEngine) -> None:
    decision = engine.decide("workflow", _workflow())
    assert decision.allow and decision.reasons == () and not decision.retry_later
    no_budget = _workflow(workflow__budget_usd=None)
    assert engine.decide("workflow", no_budget).allow


@pytest.mark.parametrize(("rule", "changes", "detail"), WORKFLOW_DENIALS)
def test_each_workflow_rule_denies_with_a_reason_naming_rule_and_value(
    engine: PolicyEngine, rule: str, changes: dict[str, Any], detail: str
) -> None:
    decision = engine.decide("workflow", _workflow(**changes))
    assert not decision.allow
    assert [r for r in decision.reasons if r.startswith(f"{rule}: ") and detail in r], (
        decision.reasons
    )
    assert not decision.retry_later


def test_the_concurrency_limit_denies_for_now_only(engine: PolicyEngine) -> None:
    busy = engine.decide("workflow", _workflow(active_runs=3))
    assert not busy.allow and busy.retry_later
    assert busy.reasons == (
        "max_concurrent_runs: tenant 'acme' has 3 active run(s), its limit is 3",
    )
    busy_and_bad = engine.decide("workflow", _workflow(active_runs=3, environment="qa"))
    assert not busy_and_bad.allow and not busy_and_bad.retry_later


def test_both_engines_give_identical_decisions(opa_url: str) -> None:
    embedded, server = EmbeddedPolicyEngine(POLICIES), OpaServerPolicyEngine(opa_url)
    cases = [("step", _step())] + [("step", _step(**c)) for _, c, _ in STEP_DENIALS]
    cases += [("workflow", _workflow())] + [
        ("workflow", _workflow(**c)) for _, c, _ in WORKFLOW_DENIALS
    ]
    for kind, payload in cases:
        a, b = embedded.decide(kind, payload), server.decide(kind, payload)
        assert (a.allow, a.reasons, a.retry_later, a.input_digest) == (
            b.allow,
            b.reasons,
            b.retry_later,
            b.input_digest,
        ), payload
        assert b.policy_version == POLICIES.version  # the pushed data carries the version


def test_fail_closed_when_the_server_is_down_slow_or_empty() -> None:
    down = OpaServerPolicyEngine(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    decision = down.decide("step", _step())
    assert not decision.allow
    assert decision.reasons[0].startswith("policy engine unavailable: http://127.0.0.1:")

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            import time

            time.sleep(1.0)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serve_http(Slow) as url:
        slow = OpaServerPolicyEngine(url, timeout_s=0.2).decide("workflow", _workflow())
    assert not slow.allow and "policy engine unavailable" in slow.reasons[0]
    assert "timed out" in slow.reasons[0].lower()

    with serve_http(handler_for(OpaStandIn())) as url:  # no policy loaded: undefined
        empty = OpaServerPolicyEngine(url).decide("step", _step())
    assert not empty.allow and "is the policy loaded?" in empty.reasons[0]


def test_fail_closed_when_the_embedded_policy_does_not_compile(tmp_path: Any) -> None:
    (tmp_path / "broken.rego").write_text("package maestro.step\n\ndecision := {\n")
    broken = EmbeddedPolicyEngine(PolicySet.load(tmp_path))
    decision = broken.decide("step", _step())
    assert not decision.allow and decision.reasons[0].startswith("policy engine unavailable: ")


def test_a_decision_without_reasons_is_still_a_deny(tmp_path: Any) -> None:
    (tmp_path / "odd.rego").write_text(
        "package maestro.step\n\nimport rego.v1\n\n"
        'decision := {"allow": false, "deny": set(), "policy_version": "x"}\n'
    )
    decision = EmbeddedPolicyEngine(PolicySet.load(tmp_path)).decide("step", _step())
    assert not decision.allow and decision.reasons == (
        "policy: denied without a reason (allow is false)",
    )


def test_policy_version_changes_with_the_policy_files_and_data(tmp_path: Any) -> None:
    import shutil

    copy_dir = tmp_path / "policies"
    shutil.copytree(POLICIES.directory, copy_dir)
    assert PolicySet.load(copy_dir).version == POLICIES.version
    tenants = copy_dir / "data" / "tenants.json"
    tenants.write_text(
        tenants.read_text().replace('"max_concurrent_runs": 3', '"max_concurrent_runs": 4')
    )
    assert PolicySet.load(copy_dir).version != POLICIES.version


def test_address_classes_and_what_the_inputs_collect() -> None:
    assert address_class("127.0.0.1") == "loopback"
    assert address_class("localhost") == "loopback"
    assert address_class("[::1]") == "loopback"
    assert address_class("169.254.169.254") == "link_local"
    assert address_class("192.168.1.10") == "private"
    assert address_class("93.184.216.34") == "public"
    assert address_class("example.com") == "public"
    assert hosts_in({"urls": ["https://a.example/x", "http://[::1]:80/"]}) == [
        {"url": "https://a.example/x", "host": "a.example", "address": "public"},
        {"url": "http://[::1]:80/", "host": "::1", "address": "loopback"},
    ]
    assert models_in({"model": "a", "fallbacks": ["b", "a"]}) == ["a", "b"]


def test_the_fast_input_builder_gives_regopy_the_same_input_as_its_own() -> None:
    import regopy

    from resources.policy.engine import set_input

    payload = {
        "text": "Zürich ✓ text",
        "none": None,
        "flags": [True, False],
        "numbers": (0, -3, 2**40, 1.5, -0.25),
        "nested": {"a": [{"b": {}}, []], "set": {"x"}},
    }
    ours, theirs = regopy.Interpreter(), regopy.Interpreter()
    set_input(ours, payload)
    theirs.set_input(payload)
    assert str(ours.query("x := input")) == str(theirs.query("x := input"))
    assert "Zürich" in str(ours.query("x := input.text"))


def test_an_input_that_cannot_be_converted_is_a_deny() -> None:
    decision = EmbeddedPolicyEngine(POLICIES).decide("step", _step(step__id=object()))
    assert not decision.allow
    assert decision.reasons[0].startswith("policy engine unavailable: ValueError: cannot convert")
