"""`litellm.generate` through the real litellm Router against loopback OpenAI-compatible servers:
routing, fallbacks, cooldowns, cost, budget, cache, JSON output, templates, redaction."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.litellm_resource import LiteLLMConfigError, LiteLLMResource, load_model_list
from resources.plugins import RunInfo, StepContext, StepError
from resources.plugins.litellm_generate import LITELLM_GENERATE, LiteLLMParams
from resources.response_cache import REDIS_PREFIX
from tests.support.compiling import compile_file
from tests.support.llm_servers import (
    IN_PRICE,
    OUT_PRICE,
    Failure,
    OpenAIServer,
    RecordingLog,
    context_too_long,
    deployment,
    priced,
    rate_limited,
    server_error,
    slow,
)
from tests.support.paths import PROJECT_ROOT
from tests.support.runs import failure
from yaml_compiler import WorkflowCompileError


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer("a") as running:
        yield running


@pytest.fixture
def backup() -> Iterator[OpenAIServer]:
    with OpenAIServer("b") as running:
        yield running


def resource(tmp_path: Path, *deployments: dict[str, Any], **settings: Any) -> LiteLLMResource:
    settings = {"num_retries": 0, "cache_dir": str(tmp_path / "llm-cache"), **settings}
    return LiteLLMResource(model_list=list(deployments), **settings)


def step_context(res: LiteLLMResource, budget: float | None = None) -> StepContext:
    return StepContext(
        step_id="ask",
        run=RunInfo("run-1", "wf", "default", "dev", ""),
        log=RecordingLog(),
        resources={"litellm": res},
        budget_remaining_usd=budget,
    )


def generate(res: LiteLLMResource, **params: Any) -> dict[str, Any]:
    assert LITELLM_GENERATE.run is not None
    return LITELLM_GENERATE.run(LiteLLMParams.model_validate(params), step_context(res))


def run_workflow(
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
    res: LiteLLMResource,
    text: str,
) -> dg.ExecuteInProcessResult:
    job = compile_file(write_workflow(text)).job
    return job.execute_in_process(
        instance=instance, resources={"litellm": res}, raise_on_error=False
    )


# ---------------------------------------------------------------- routing, fallbacks, cooldown


def test_routing_spreads_calls_across_two_deployments(
    tmp_path: Path, server: OpenAIServer, backup: OpenAIServer
) -> None:
    res = resource(tmp_path, deployment("gpt", server), deployment("gpt", backup))
    outputs = [generate(res, model="gpt", prompt=f"question {i}") for i in range(24)]
    assert len(server.calls("/v1/chat/completions")) > 0
    assert len(backup.calls("/v1/chat/completions")) > 0
    assert len(server.requests) + len(backup.requests) == 24
    assert {o["model"] for o in outputs} == {"gpt"}
    assert {o["fallback_used"] for o in outputs} == {False}
    assert outputs[0]["provider"] == "openai" and outputs[0]["deployment"] == "openai/gpt"


@pytest.mark.parametrize("failure_", [rate_limited(0), server_error()], ids=["429", "500"])
def test_falls_back_to_the_next_group_after_a_failure(
    tmp_path: Path, server: OpenAIServer, backup: OpenAIServer, failure_: Failure
) -> None:
    res = resource(
        tmp_path,
        deployment("primary", server),
        deployment("backup", backup),
        fallbacks={"primary": ["backup"]},
    )
    server.fail("primary", failure_)
    output = generate(res, model="primary", prompt="hello")
    assert output["model"] == "backup" and output["fallback_used"] is True
    assert output["text"] == "backup says: hello"
    assert len(server.requests) == 1 and len(backup.requests) == 1


def test_step_level_fallbacks(tmp_path: Path, server: OpenAIServer, backup: OpenAIServer) -> None:
    res = resource(tmp_path, deployment("primary", server), deployment("other", backup))
    server.fail("primary", server_error())
    output = generate(res, model="primary", prompt="hi", fallbacks=["other"])
    assert (output["model"], output["fallback_used"]) == ("other", True)


def test_without_fallbacks_a_rate_limit_fails_with_its_kind(
    tmp_path: Path, server: OpenAIServer
) -> None:
    res = resource(tmp_path, deployment("primary", server))
    server.fail("primary", rate_limited(0))
    with pytest.raises(StepError) as caught:
        generate(res, model="primary", prompt="hi")
    assert caught.value.kind == "rate_limit"


def test_a_failing_deployment_cools_down(
    tmp_path: Path, server: OpenAIServer, backup: OpenAIServer
) -> None:
    res = resource(
        tmp_path,
        deployment("gpt", server),
        deployment("gpt", backup),
        num_retries=1,
        allowed_fails=0,
        cooldown_time=60,
    )
    server.fail("gpt", *[server_error()] * 50)
    outputs = [generate(res, model="gpt", prompt=f"q{i}") for i in range(12)]
    assert all(o["text"].startswith("gpt says") for o in outputs)
    # The first failure puts the deployment in cooldown: it gets no further requests.
    assert len(server.requests) <= 1
    assert len(backup.requests) == 12


def test_context_window_error_and_its_fallback(
    tmp_path: Path, server: OpenAIServer, backup: OpenAIServer
) -> None:
    res = resource(tmp_path, deployment("small", server), deployment("large", backup))
    server.fail("small", context_too_long())
    with pytest.raises(StepError) as caught:
        generate(res, model="small", prompt="a very long prompt")
    assert caught.value.kind == "context_window"
    res = resource(
        tmp_path,
        deployment("small", server),
        deployment("large", backup),
        context_window_fallbacks={"small": ["large"]},
    )
    server.fail("small", context_too_long())
    output = generate(res, model="small", prompt="a very long prompt")
    assert (output["model"], output["fallback_used"]) == ("large", True)


def test_a_slow_server_times_out(tmp_path: Path, server: OpenAIServer) -> None:
    res = resource(tmp_path, deployment("gpt", server))
    server.fail("gpt", slow(3))
    with pytest.raises(StepError) as caught:
        generate(res, model="gpt", prompt="hi", timeout="500ms")
    assert caught.value.kind == "timeout"


# ---------------------------------------------------------------- cost, budget, cache


def test_cost_and_tokens_in_the_output_and_the_step_metadata(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
) -> None:
    res = resource(tmp_path, priced("gpt", server))
    result = run_workflow(
        write_workflow,
        instance,
        res,
        """
        name: cost
        steps:
          - id: ask
            run: litellm.generate
            with: {model: gpt, prompt: "one two three"}
        """,
    )
    assert result.success
    output = result.output_for_node("ask")
    usage = output["usage"]
    assert usage == {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}
    expected = 3 * IN_PRICE + 5 * OUT_PRICE  # "gpt says: one two three"
    assert output["cost_usd"] == pytest.approx(expected)
    assert output["priced"] is True and output["latency_ms"] > 0
    (event,) = [
        e for e in result.all_events if e.event_type_value == "STEP_OUTPUT" and e.step_key == "ask"
    ]
    assert event.step_output_data.metadata["cost_usd"].value == pytest.approx(expected)


def test_cost_from_litellms_cost_map_for_a_known_model(
    tmp_path: Path, server: OpenAIServer
) -> None:
    res = resource(tmp_path, deployment("mini", server, model="gpt-4o-mini"))
    output = generate(res, model="mini", prompt="one two three")
    client = res.client()
    price = client.price_for_model("mini")
    assert price.known and price.input > 0
    assert output["cost_usd"] == pytest.approx(3 * price.input + 5 * price.output)
    assert output["cost_usd"] > 0


def test_budget_refusal_makes_no_request(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
) -> None:
    res = resource(tmp_path, priced("gpt", server))
    result = run_workflow(
        write_workflow,
        instance,
        res,
        """
        name: budget
        budget: {max_cost_usd: 0.01}
        steps:
          - id: ask
            run: litellm.generate
            with: {model: gpt, prompt: "hello", max_tokens: 100}
        """,
    )
    assert not result.success
    message, metadata = failure(result, "ask")
    assert metadata["error_kind"] == "budget" and metadata["retryable"] is False
    assert "no call was made" in message
    # 1 prompt token... at $0.001 + 100 output tokens at $0.002 = $0.2 > $0.01
    assert metadata["estimated_cost_usd"] > 0.2
    assert server.requests == []


def test_within_budget_the_call_is_made(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
) -> None:
    res = resource(tmp_path, priced("gpt", server))
    result = run_workflow(
        write_workflow,
        instance,
        res,
        """
        name: budget
        budget: {max_cost_usd: 1}
        steps:
          - id: ask
            run: litellm.generate
            with: {model: gpt, prompt: "hello", max_tokens: 100}
        """,
    )
    assert result.success and len(server.requests) == 1


def test_cache_hit_makes_no_request(tmp_path: Path, server: OpenAIServer) -> None:
    res = resource(tmp_path, priced("gpt", server))
    first = generate(res, model="gpt", prompt="cache me", cache=True)
    second = generate(res, model="gpt", prompt="cache me", cache=True)
    assert len(server.requests) == 1
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["text"] == first["text"] and second["cost_usd"] == 0.0
    assert first["cost_usd"] > 0
    # A different prompt, or a step without `cache`, asks the server again.
    generate(res, model="gpt", prompt="something else", cache=True)
    generate(res, model="gpt", prompt="cache me")
    assert len(server.requests) == 3
    assert LITELLM_GENERATE.estimate_cost is not None
    params = LiteLLMParams(model="gpt", prompt="cache me", cache=True)
    assert LITELLM_GENERATE.estimate_cost(params, step_context(res)) == 0.0


# ---------------------------------------------------------------- JSON output


def test_json_mode_parses_the_answer(tmp_path: Path, server: OpenAIServer) -> None:
    server.reply("gpt", '{"name": "Ada", "age": 36}')
    res = resource(tmp_path, deployment("gpt", server))
    output = generate(res, model="gpt", prompt="who?", response_format="json")
    assert output["json"] == {"name": "Ada", "age": 36}
    assert server.calls("/v1/chat/completions")[0]["response_format"] == {"type": "json_object"}


def test_json_schema_violation_is_an_invalid_output_error(
    tmp_path: Path, server: OpenAIServer
) -> None:
    server.reply("gpt", '{"name": "Ada"}')
    res = resource(tmp_path, deployment("gpt", server))
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    with pytest.raises(StepError) as caught:
        generate(res, model="gpt", prompt="who?", response_format=schema)
    assert caught.value.kind == "invalid_output"
    assert "'age' is a required property" in str(caught.value)
    sent = server.calls("/v1/chat/completions")[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema


def test_non_json_answer_in_json_mode(tmp_path: Path, server: OpenAIServer) -> None:
    server.reply("gpt", "Sure! Here it is: name=Ada")
    res = resource(tmp_path, deployment("gpt", server))
    with pytest.raises(StepError, match="did not answer with JSON") as caught:
        generate(res, model="gpt", prompt="who?", response_format="json")
    assert caught.value.kind == "invalid_output"


def test_tools_are_offered_and_tool_calls_returned(tmp_path: Path, server: OpenAIServer) -> None:
    server.call_tool("gpt", "get_weather", {"city": "Oslo"})
    res = resource(tmp_path, deployment("gpt", server))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    output = generate(res, model="gpt", prompt="weather in Oslo?", tools=tools)
    assert server.calls("/v1/chat/completions")[0]["tools"] == tools
    assert output["finish_reason"] == "tool_calls" and output["text"] == ""
    (call,) = output["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}


def test_the_loopback_server_streams_to_litellms_streaming_client(
    tmp_path: Path, server: OpenAIServer
) -> None:
    """The SSE side of the loopback server, through litellm's real streaming client."""
    litellm = resource(tmp_path, deployment("gpt", server)).client().litellm
    chunks = list(
        litellm.completion(
            model="openai/gpt",
            api_base=server.api_base,
            api_key="sk-test",
            messages=[{"role": "user", "content": "stream this"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "gpt says: stream this" and len(chunks) > 3
    assert server.calls("/v1/chat/completions")[0]["stream"] is True


# ---------------------------------------------------------------- templates


def test_builtin_template_renders_into_the_prompt(tmp_path: Path, server: OpenAIServer) -> None:
    res = resource(tmp_path, deployment("gpt", server))
    generate(
        res,
        model="gpt",
        prompt_template="test_generation",
        template_variables={"code": "def add(a, b): return a + b", "framework": "pytest"},
        system="You write tests.",
    )
    (body,) = server.calls("/v1/chat/completions")
    assert body["messages"][0] == {"role": "system", "content": "You write tests."}
    prompt = body["messages"][1]["content"]
    assert "using pytest" in prompt and "def add(a, b): return a + b" in prompt


def test_user_template_from_the_workflows_prompts_folder(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "greet.j2").write_text(
        "{# Greets someone. optional: mood #}Say hello to {{ who }}{% if mood %}, {{ mood }}"
        "{% endif %}.\n"
    )
    res = resource(tmp_path, deployment("gpt", server))
    result = run_workflow(
        write_workflow,
        instance,
        res,
        """
        name: user-template
        steps:
          - id: name
            run: echo
            with: {message: Grace}
          - id: ask
            run: litellm.generate
            with:
              model: gpt
              prompt_template: greet
              template_variables: {who: "{{ steps.name.output.message }}"}
        """,
    )
    assert result.success, result.all_events
    (body,) = server.calls("/v1/chat/completions")
    assert body["messages"][0]["content"] == "Say hello to Grace.\n"


def test_unknown_template_is_a_compile_error_with_its_line(
    write_workflow: Callable[..., Path],
) -> None:
    path = write_workflow(
        """
        name: bad-template
        steps:
          - id: ask
            run: litellm.generate
            with:
              model: gpt
              prompt_template: code_reveiw
        """
    )
    with pytest.raises(WorkflowCompileError) as caught:
        compile_file(path)
    (diagnostic,) = caught.value.diagnostics
    assert str(diagnostic).startswith(
        f"{path}:7:7: steps[0].with.prompt_template: unknown prompt template 'code_reveiw'; "
        "known templates: code_review, documentation, extract_json, summarize, test_generation"
    )


def test_missing_template_variable_is_a_compile_error_with_its_line(
    write_workflow: Callable[..., Path],
) -> None:
    path = write_workflow(
        """
        name: bad-variables
        steps:
          - id: ask
            run: litellm.generate
            with:
              model: gpt
              prompt_template: summarize
              template_variables: {max_words: 50}
        """
    )
    with pytest.raises(WorkflowCompileError) as caught:
        compile_file(path)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{path}:8:7: steps[0].with.template_variables: prompt template 'summarize' needs "
        "template_variables: text"
    ]


def test_a_prompt_source_is_required_and_unique(write_workflow: Callable[..., Path]) -> None:
    path = write_workflow(
        """
        name: two-prompts
        steps:
          - id: ask
            run: litellm.generate
            with: {model: gpt, prompt: hi, messages: [{role: user, content: hi}]}
        """
    )
    with pytest.raises(WorkflowCompileError) as caught:
        compile_file(path)
    assert "give only one of prompt, prompt_template or messages" in str(caught.value)


# ---------------------------------------------------------------- secrets and logging


class KeyEchoingServer(OpenAIServer):
    """Answers 401 quoting the key it was given, as real providers do."""

    def _route(self, request: Any, method: str, path: str, body: dict[str, Any]) -> None:
        from tests.support.llm_servers import send_json

        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        send_json(
            request,
            401,
            {"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}},
        )


def test_api_keys_are_redacted_from_errors_and_logs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-live-0123456789abcdef"
    monkeypatch.setenv("MAESTRO_TEST_LLM_KEY", secret)
    with KeyEchoingServer() as echoing:
        res = resource(
            tmp_path,
            deployment("gpt", echoing, api_key="os.environ/MAESTRO_TEST_LLM_KEY"),
        )
        with caplog.at_level(logging.DEBUG):
            result = run_workflow(
                write_workflow,
                instance,
                res,
                """
                name: secret
                steps:
                  - id: ask
                    run: litellm.generate
                    with: {model: gpt, prompt: hi}
                """,
            )
        sent = echoing.requests[0]
    assert sent  # the request was made, with the key
    message, metadata = failure(result, "ask")
    assert metadata["error_kind"] == "auth"
    assert "Incorrect API key provided: ***" in message
    assert secret not in message
    events = "\n".join(str(e.event_specific_data) + str(e.message) for e in result.all_events)
    assert secret not in events
    assert secret not in caplog.text
    assert secret not in json.dumps(metadata)


def test_prompts_are_logged_only_with_log_content(tmp_path: Path, server: OpenAIServer) -> None:
    res = resource(tmp_path, deployment("gpt", server))
    quiet = step_context(res)
    assert LITELLM_GENERATE.run is not None
    LITELLM_GENERATE.run(LiteLLMParams(model="gpt", prompt="private words"), quiet)
    assert not any("private words" in line for line in quiet.log.lines)  # type: ignore[attr-defined]
    litellm = res.client().litellm
    assert litellm.turn_off_message_logging is True  # LiteLLM's callbacks and spans too
    loud = step_context(res)
    LITELLM_GENERATE.run(LiteLLMParams(model="gpt", prompt="open words", log_content=True), loud)
    assert any("open words" in line for line in loud.log.lines)  # type: ignore[attr-defined]
    assert litellm.turn_off_message_logging is False


# ---------------------------------------------------------------- configuration


def test_model_list_from_a_yaml_file(tmp_path: Path, server: OpenAIServer) -> None:
    config = tmp_path / "litellm.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            model_list:
              - model_name: gpt
                litellm_params:
                  model: openai/gpt
                  api_base: {server.api_base}
                  api_key: sk-file
            """
        )
    )
    res = LiteLLMResource(model_list_file=str(config), cache_dir=str(tmp_path / "c"))
    assert generate(res, model="gpt", prompt="hi")["text"] == "gpt says: hi"
    assert res.describe()[1] == f"gpt: openai/gpt at {server.api_base}"


def test_bad_model_list_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "litellm.yaml"
    config.write_text("model_list:\n  - model_name: gpt\n    litellm_params: {api_base: x}\n")
    with pytest.raises(LiteLLMConfigError, match=r"litellm.yaml: model_list\[0\] \(gpt\)"):
        load_model_list(config)


def test_litellm_is_pinned_exactly() -> None:
    assert importlib.metadata.version("litellm") == "1.110.2"
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert '"litellm==1.110.2"' in pyproject


@pytest.mark.services
def test_redis_response_cache(tmp_path: Path, server: OpenAIServer) -> None:
    import redis

    url = os.environ.get("MAESTRO_TEST_REDIS", "redis://127.0.0.1:6379/15")
    res = resource(tmp_path, priced("gpt", server), cache_redis_url=url)
    prompt = f"cache me in redis {uuid.uuid4()}"
    first = generate(res, model="gpt", prompt=prompt, cache=True)
    second = generate(res, model="gpt", prompt=prompt, cache=True)
    assert (first["cached"], second["cached"], len(server.requests)) == (False, True, 1)
    keys = redis.Redis.from_url(url).keys(f"{REDIS_PREFIX}*")
    assert keys
    assert not (tmp_path / "llm-cache").exists()  # nothing went to the disk cache
    redis.Redis.from_url(url).delete(*keys)


def test_unpriced_model_says_so(tmp_path: Path, server: OpenAIServer) -> None:
    res = resource(tmp_path, deployment("house-model", server, model="house-model-7b"))
    ctx = step_context(res)
    assert LITELLM_GENERATE.run is not None
    output = LITELLM_GENERATE.run(LiteLLMParams(model="house-model", prompt="hi"), ctx)
    assert (output["cost_usd"], output["priced"]) == (0.0, False)
    assert any("no price known for house-model" in line for line in ctx.log.lines)  # type: ignore[attr-defined]


def test_the_estimate_bounds_the_actual_cost(tmp_path: Path, server: OpenAIServer) -> None:
    res = resource(tmp_path, priced("gpt", server))
    params = LiteLLMParams(model="gpt", prompt="count these five words please", max_tokens=20)
    assert LITELLM_GENERATE.estimate_cost is not None and LITELLM_GENERATE.run is not None
    estimate = LITELLM_GENERATE.estimate_cost(params, step_context(res))
    tokens = res.client().litellm.token_counter(
        model="openai/gpt", messages=[{"role": "user", "content": params.prompt}]
    )
    assert estimate == pytest.approx(tokens * IN_PRICE + 20 * OUT_PRICE)
    actual = LITELLM_GENERATE.run(params, step_context(res))["cost_usd"]
    assert 0 < actual <= estimate


def test_a_later_step_is_refused_once_earlier_steps_spent_the_budget(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
) -> None:
    res = resource(tmp_path, priced("gpt", server))
    # Each step may cost 0.012 (8 prompt tokens as LiteLLM counts a chat message, 2 output
    # tokens) and spends 0.005 (1 prompt word, 2 output words): the second no longer fits.
    result = run_workflow(
        write_workflow,
        instance,
        res,
        """
        name: budget-spent
        budget: {max_cost_usd: 0.015}
        steps:
          - id: first
            run: litellm
            with: {model: gpt, prompt: "a", max_tokens: 2}
          - id: second
            run: litellm
            depends_on: [first]
            with: {model: gpt, prompt: "b", max_tokens: 2}
        """,
    )
    assert result.output_for_node("first")["cost_usd"] == pytest.approx(0.005)
    message, metadata = failure(result, "second")
    assert metadata["error_kind"] == "budget"
    assert "the run has $0.010000 left of its $0.015 budget" in message
    assert len(server.requests) == 1


def test_provider_keys_from_the_environment_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment without api_key: LiteLLM reads OPENAI_API_KEY itself; errors still hide it."""
    secret = "sk-env-9876543210fedcba"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with KeyEchoingServer() as echoing:
        res = LiteLLMResource(
            model_list=[
                {
                    "model_name": "gpt",
                    "litellm_params": {"model": "openai/gpt", "api_base": echoing.api_base},
                }
            ],
            num_retries=0,
            cache_dir=str(tmp_path / "c"),
        )
        with pytest.raises(StepError) as caught:
            generate(res, model="gpt", prompt="hi")
    assert caught.value.kind == "auth"
    assert secret not in str(caught.value) and "***" in str(caught.value)
