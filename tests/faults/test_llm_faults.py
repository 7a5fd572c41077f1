"""LLM and Ollama servers that misbehave (garbage, a hang, a connection dropped mid-answer,
429 for ever), behind real compiled workflow runs: each step fails with an error naming the
cause, within its timeout, and the cost ledger holds only what successful attempts spent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from resources.litellm_resource import LiteLLMResource
from resources.ollama_resource import OllamaResource
from resources.policy.store import store_for
from resources.run_tags import COST_TAG
from tests.support.compiling import compile_file
from tests.support.llm_servers import (
    IN_PRICE,
    MIB,
    OUT_PRICE,
    Failure,
    OllamaModel,
    OllamaServer,
    OpenAIServer,
    dropped,
    garbage,
    hang,
    ollama_dropped,
    ollama_truncated,
    priced,
    rate_limited,
)
from tests.support.runs import failure


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer("a") as running:
        yield running


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer([OllamaModel("small:3b", 2 * 1024 * MIB, size_vram=0)]) as running:
        yield running


def run(
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
    resources: dict[str, object],
    text: str,
) -> dg.ExecuteInProcessResult:
    job = compile_file(write_workflow(text)).job
    return job.execute_in_process(instance=instance, resources=resources, raise_on_error=False)


def litellm(tmp_path: Path, server: OpenAIServer) -> LiteLLMResource:
    return LiteLLMResource(
        model_list=[priced("gpt", server)], num_retries=0, cache_dir=str(tmp_path / "cache")
    )


def ledger(instance: dg.DagsterInstance, run_id: str) -> list[float]:
    return [r.cost_usd for r in store_for(instance).costs(run_id=run_id)]


def run_cost_tag(instance: dg.DagsterInstance, run_id: str) -> float:
    found = instance.get_run_by_id(run_id)
    assert found is not None
    return float(found.tags.get(COST_TAG, 0.0))


ASK = 3 * IN_PRICE + 5 * OUT_PRICE
"""What one successful call with the prompt "one two three" costs (3 in, 5 out words)."""


def workflow(model: str = "gpt", attempts: int = 3, timeout: str = "20s") -> str:
    return f"""
        name: faults
        steps:
          - id: ask
            run: litellm.generate
            timeout: {timeout}
            retry: {{max_attempts: {attempts}}}
            with: {{model: {model}, prompt: "one two three"}}
        """


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (garbage(), "server_error", "the server's answer is not JSON"),
        (dropped(), "connection", "closed the connection before its answer was complete"),
        (rate_limited(0), "rate_limit", "Rate limit reached"),
    ],
    ids=["garbage", "dropped", "429-forever"],
)
def test_a_broken_openai_server_fails_the_step_with_its_cause_and_charges_nothing(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
    fault: Failure,
    kind: str,
    words: str,
) -> None:
    """3 faults (one per attempt), 1 run."""
    server.fail_always("gpt", fault)
    result = run(write_workflow, instance, {"litellm": litellm(tmp_path, server)}, workflow())
    assert not result.success
    message, metadata = failure(result, "ask")
    assert server.attempts("gpt") == 3  # every attempt reached the server
    assert words.lower() in message.lower(), message
    assert metadata["error_kind"] == kind, message
    assert ledger(instance, result.run_id) == []
    assert run_cost_tag(instance, result.run_id) == 0.0


def test_a_hung_openai_server_fails_within_the_step_timeout(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
) -> None:
    """2 faults (two hung attempts), 1 run: each attempt ends at its 1 s timeout, not never."""
    server.fail_always("gpt", hang())
    result = run(
        write_workflow,
        instance,
        {"litellm": litellm(tmp_path, server)},
        workflow(attempts=2, timeout="1s"),
    )
    assert not result.success
    message, metadata = failure(result, "ask")
    assert metadata["error_kind"] == "timeout", message
    assert server.attempts("gpt") == 2
    # The server never answers (until it stops, after the test): only the step's timeout can
    # have ended these attempts.
    assert ledger(instance, result.run_id) == []


@pytest.mark.parametrize(
    "fault",
    [garbage(), dropped(), rate_limited(0), hang()],
    ids=["garbage", "dropped", "429", "hang"],
)
def test_retries_after_a_fault_charge_only_the_successful_attempt(
    tmp_path: Path,
    server: OpenAIServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
    fault: Failure,
) -> None:
    """2 faults then a good answer, 1 run: the ledger and the run tag hold one call's cost.
    (5 s per attempt: a hung attempt ends there, a good one has room on a loaded machine.)"""
    server.fail("gpt", fault, fault)
    result = run(
        write_workflow,
        instance,
        {"litellm": litellm(tmp_path, server)},
        workflow(attempts=3, timeout="5s"),
    )
    assert result.success, failure(result, "ask")
    assert server.attempts("gpt") == 3
    assert result.output_for_node("ask")["cost_usd"] == pytest.approx(ASK)
    assert ledger(instance, result.run_id) == [pytest.approx(ASK)]
    assert run_cost_tag(instance, result.run_id) == pytest.approx(ASK)


# ---------------------------------------------------------------- Ollama

PRICE_PER_GPU_HOUR = 3.6  # the server reports 1.5 s per call: $0.0015 a call
OLLAMA_CALL = PRICE_PER_GPU_HOUR * 1.5 / 3600


def ollama_workflow(attempts: int = 3, timeout: str = "20s", kind: str = "chat") -> str:
    prompt = (
        'messages: [{role: user, content: "tell me"}]' if kind == "chat" else 'prompt: "tell me"'
    )
    return f"""
        name: ollama-faults
        steps:
          - id: local
            run: ollama.{kind}
            timeout: {timeout}
            retry: {{max_attempts: {attempts}}}
            with: {{model: "small:3b", {prompt}}}
        """


def ollama_resource(server: OllamaServer) -> OllamaResource:
    return OllamaResource(host=server.url, price_per_gpu_hour=PRICE_PER_GPU_HOUR)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (garbage(), "the server's answer is not JSON"),
        (ollama_dropped("small:3b"), "closed the connection before its answer was complete"),
        (ollama_truncated("small:3b"), "ended before its final message"),
        (rate_limited(0), "Rate limit"),
    ],
    ids=["garbage", "dropped", "truncated", "429-forever"],
)
@pytest.mark.parametrize("kind", ["chat", "generate"])
def test_a_broken_ollama_server_fails_the_step_with_its_cause_and_charges_nothing(
    ollama: OllamaServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
    fault: Failure,
    words: str,
    kind: str,
) -> None:
    """2 faults (one per attempt), 1 run."""
    ollama.fail_always("small:3b", fault)
    result = run(
        write_workflow,
        instance,
        {"ollama": ollama_resource(ollama)},
        ollama_workflow(attempts=2, kind=kind),
    )
    assert not result.success
    message, _ = failure(result, "local")
    assert words.lower() in message.lower(), message
    assert ollama.attempts("small:3b") == 2
    assert ledger(instance, result.run_id) == []


def test_a_hung_ollama_server_fails_within_the_step_timeout(
    ollama: OllamaServer, write_workflow: Callable[..., Path], instance: dg.DagsterInstance
) -> None:
    """2 faults, 1 run."""
    ollama.fail_always("small:3b", hang())
    result = run(
        write_workflow,
        instance,
        {"ollama": ollama_resource(ollama)},
        ollama_workflow(attempts=2, timeout="1s"),
    )
    assert not result.success
    message, metadata = failure(result, "local")
    assert metadata["error_kind"] == "timeout", message
    assert ollama.attempts("small:3b") == 2
    assert ledger(instance, result.run_id) == []


@pytest.mark.parametrize(
    "fault",
    [garbage(), ollama_dropped("small:3b"), ollama_truncated("small:3b"), hang()],
    ids=["garbage", "dropped", "truncated", "hang"],
)
def test_ollama_retries_after_a_fault_charge_only_the_successful_attempt(
    ollama: OllamaServer,
    write_workflow: Callable[..., Path],
    instance: dg.DagsterInstance,
    fault: Failure,
) -> None:
    """2 faults then a good stream, 1 run."""
    ollama.fail("small:3b", fault, fault)
    result = run(
        write_workflow,
        instance,
        {"ollama": ollama_resource(ollama)},
        ollama_workflow(attempts=3, timeout="5s"),
    )
    assert result.success, failure(result, "local")
    assert result.output_for_node("local")["text"] == "small:3b says: tell me"
    assert ledger(instance, result.run_id) == [pytest.approx(OLLAMA_CALL)]
    assert run_cost_tag(instance, result.run_id) == pytest.approx(OLLAMA_CALL)
