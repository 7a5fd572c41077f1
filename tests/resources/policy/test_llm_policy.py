"""LLM steps under the policy gate: their cost estimate and real spend meet the tenant's data.

The LLM plugins (estimate_cost, add_cost), the cost ledger and `maestro.step` were built apart;
these tests run them together through the real litellm client and a loopback OpenAI server.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.litellm_resource import LiteLLMResource
from resources.policy.engine import PolicyEngineResource
from resources.policy.store import store_for
from tests.support.compiling import compile_text
from tests.support.llm_servers import OpenAIServer, priced, server_error
from tests.support.policy_data import policy_with_tenant
from tests.support.runs import failure

LLM_TENANT = {
    "description": "Test tenant: one model, a one-dollar daily budget.",
    "allowed_environments": ["dev"],
    "allowed_plugins": ["litellm.generate"],
    "allowed_models": ["gpt", "gpt-ok"],
    "allowed_secrets": [],
    "allowed_domains": [],
    "max_budget_usd": 1.0,
    "budget_period": "day",
    "max_concurrent_runs": 2,
}


@pytest.fixture
def llm_tenant(tmp_path: Path) -> PolicyEngineResource:
    return policy_with_tenant(tmp_path, "llm", LLM_TENANT)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer("a") as running:
        yield running


def _run(
    instance: dg.DagsterInstance, res: LiteLLMResource, step: str, policy: PolicyEngineResource
) -> dg.ExecuteInProcessResult:
    text = f"name: llm-spend\ntenant: llm\nenvironment: dev\nsteps:\n  - {step}\n"
    job = compile_text(textwrap.dedent(text), resources={"policy": policy}).job
    return job.execute_in_process(
        instance=instance, resources={"litellm": res}, raise_on_error=False
    )


def _resource(tmp_path: Path, *deployments: dict[str, Any], **settings: Any) -> LiteLLMResource:
    return LiteLLMResource(
        model_list=list(deployments),
        num_retries=0,
        cache_dir=str(tmp_path / "cache"),
        **settings,
    )


def test_llm_spend_counts_against_the_tenant_budget_and_an_over_budget_call_is_never_made(
    tmp_path: Path,
    server: OpenAIServer,
    instance: dg.DagsterInstance,
    llm_tenant: PolicyEngineResource,
) -> None:
    res = _resource(tmp_path, priced("gpt", server))
    first = _run(
        instance,
        res,
        "{id: ask, run: litellm.generate, with: {model: gpt, prompt: hello, max_tokens: 50}}",
        llm_tenant,
    )
    assert first.success, failure(first, "ask")
    spent = first.output_for_node("ask")["cost_usd"]
    assert spent > 0
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert store_for(instance).tenant_spend("llm", midnight) == pytest.approx(spent)
    run = instance.get_run_by_id(first.run_id)
    assert run is not None and float(run.tags["maestro/cost_usd"]) == pytest.approx(spent)

    requests_before = len(server.requests)
    # 1,000 output tokens at $0.002 may cost $2: more than what is left of the $1 day.
    second = _run(
        instance,
        res,
        "{id: ask, run: litellm.generate, with: {model: gpt, prompt: hello, max_tokens: 1000}}",
        llm_tenant,
    )
    message, metadata = failure(second, "ask")
    assert metadata["error_kind"] == "policy" and metadata["retryable"] is False
    assert "tenant_budget_exceeded" in message and "'llm'" in message
    assert len(server.requests) == requests_before


def test_a_fallback_model_the_tenant_may_not_use_is_refused_before_any_call(
    tmp_path: Path,
    server: OpenAIServer,
    instance: dg.DagsterInstance,
    llm_tenant: PolicyEngineResource,
) -> None:
    res = _resource(tmp_path, priced("gpt", server), priced("gpt-big", server))
    result = _run(
        instance,
        res,
        "{id: ask, run: litellm.generate, with: {model: gpt, "
        "prompt: hello, max_tokens: 5, fallbacks: [gpt-big]}}",
        llm_tenant,
    )
    message, metadata = failure(result, "ask")
    assert metadata["error_kind"] == "policy"
    assert "model_not_allowed: tenant 'llm' may not use model 'gpt-big'" in message
    assert server.requests == []


@pytest.mark.parametrize(
    "settings",
    [
        {"fallbacks": {"gpt": ["gpt-big"]}},
        {"context_window_fallbacks": {"gpt": ["gpt-big"]}},
        {"fallbacks": {"*": ["gpt-big"]}},
        # the Router chains groups: gpt -> gpt-ok (allowed) -> gpt-big (not allowed)
        {"fallbacks": {"gpt": ["gpt-ok"]}, "context_window_fallbacks": {"gpt-ok": ["gpt-big"]}},
    ],
    ids=["fallbacks", "context_window_fallbacks", "star", "chained"],
)
def test_a_router_fallback_the_tenant_may_not_use_is_refused_before_any_call(
    tmp_path: Path,
    server: OpenAIServer,
    instance: dg.DagsterInstance,
    llm_tenant: PolicyEngineResource,
    settings: dict[str, Any],
) -> None:
    res = _resource(
        tmp_path,
        priced("gpt", server),
        priced("gpt-ok", server),
        priced("gpt-big", server),
        **settings,
    )
    result = _run(
        instance,
        res,
        "{id: ask, run: litellm.generate, with: {model: gpt, prompt: hello, max_tokens: 5}}",
        llm_tenant,
    )
    message, metadata = failure(result, "ask")
    assert metadata["error_kind"] == "policy"
    assert message.count("model_not_allowed") == 1, message
    assert "model_not_allowed: tenant 'llm' may not use model 'gpt-big'" in message
    assert server.requests == []
    [row] = [
        d for d in store_for(instance).decisions(tenant="llm") if d.kind == "step" and not d.allow
    ]
    assert row.reasons == (
        "model_not_allowed: tenant 'llm' may not use model 'gpt-big' (step 'ask')",
    )


def test_a_router_fallback_to_an_allowed_model_runs_and_is_used(
    tmp_path: Path,
    server: OpenAIServer,
    instance: dg.DagsterInstance,
    llm_tenant: PolicyEngineResource,
) -> None:
    res = _resource(
        tmp_path, priced("gpt", server), priced("gpt-ok", server), fallbacks={"gpt": ["gpt-ok"]}
    )
    server.fail("gpt", server_error())
    result = _run(
        instance,
        res,
        "{id: ask, run: litellm.generate, with: {model: gpt, prompt: hello, max_tokens: 5}}",
        llm_tenant,
    )
    assert result.success, failure(result, "ask")
    output = result.output_for_node("ask")
    assert (output["model"], output["fallback_used"]) == ("gpt-ok", True)


def test_reachable_models_follow_the_router_chain_without_looping(tmp_path: Path) -> None:
    client = LiteLLMResource(
        model_list=[{"model_name": g, "litellm_params": {"model": f"openai/{g}"}} for g in "abc"],
        fallbacks={"a": ["b"], "b": ["a", "c"], "*": ["z"]},
        context_window_fallbacks={"c": ["d"]},
        cache_dir=str(tmp_path / "cache"),
    ).client()
    assert client.reachable_models("a", ["x"]) == ["a", "x", "b", "z", "c", "d"]
    assert client.reachable_models("x") == ["x"]  # not a router group: called directly
