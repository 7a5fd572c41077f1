"""`ollama.generate` / `ollama.chat` through the official `ollama` client against a loopback
Ollama server: model choice by VRAM, require_gpu, fallbacks, streaming, cost, and the pool."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.ollama_resource import OllamaResource, ServerModel, ServerState
from resources.plugins import RunInfo, StepContext, StepError
from resources.plugins.ollama import (
    OLLAMA_CHAT,
    OLLAMA_GENERATE,
    OllamaParams,
    choose_models,
)
from tests.support.compiling import compile_file, compile_text
from tests.support.llm_servers import MIB, OllamaModel, OllamaServer, RecordingLog, server_error
from tests.support.paths import PROJECT_ROOT
from yaml_compiler import WorkflowCompileError

GIB = 1024 * MIB


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    models = [
        OllamaModel("big:70b", 40 * GIB),
        OllamaModel("medium:8b", 5 * GIB),
        OllamaModel("small:3b", 2 * GIB),
    ]
    with OllamaServer(models) as server:
        yield server


def context(resource: OllamaResource) -> StepContext:
    return StepContext(
        step_id="local",
        run=RunInfo("run-1", "wf", "default", "dev", ""),
        log=RecordingLog(),
        resources={"ollama": resource},
    )


def call(resource: OllamaResource, chat: bool = False, **params: Any) -> dict[str, Any]:
    plugin = OLLAMA_CHAT if chat else OLLAMA_GENERATE
    assert plugin.run is not None
    return plugin.run(OllamaParams.model_validate(params), context(resource))


def generations(server: OllamaServer) -> list[dict[str, Any]]:
    return server.calls("/api/generate") + server.calls("/api/chat")


# ---------------------------------------------------------------- choosing a model


def test_picks_the_first_model_that_fits_the_gpu_budget(ollama: OllamaServer) -> None:
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=8 * 1024)
    output = call(resource, model="big:70b", fallback_models=["medium:8b", "small:3b"], prompt="hi")
    assert output["model"] == "medium:8b" and output["fallback_used"] is True
    assert output["placement"] == "gpu"
    assert output["size_vram"] == 5 * GIB  # read back from /api/ps after the call
    (request,) = generations(ollama)
    assert request["model"] == "medium:8b"


def test_a_model_loaded_on_the_gpu_needs_no_budget(ollama: OllamaServer) -> None:
    ollama.models["small:3b"].size_vram = 2 * GIB
    resource = OllamaResource(host=ollama.url)  # no gpu_memory_mb: /api/ps is the evidence
    output = call(resource, model="small:3b", prompt="hi", require_gpu=True)
    assert (output["model"], output["placement"]) == ("small:3b", "gpu")


def test_require_gpu_refuses_a_model_that_would_run_on_the_cpu(ollama: OllamaServer) -> None:
    ollama.models["medium:8b"].size_vram = 0  # loaded, but entirely on the CPU
    ollama.models["small:3b"].size_vram = 1 * GIB  # loaded, split between GPU and CPU
    resource = OllamaResource(host=ollama.url)
    with pytest.raises(StepError) as caught:
        call(
            resource,
            model="medium:8b",
            fallback_models=["small:3b"],
            prompt="hi",
            require_gpu=True,
        )
    assert caught.value.kind == "gpu_unavailable"
    assert "medium:8b: would run on cpu" in str(caught.value)
    assert "small:3b: would run on split" in str(caught.value)
    assert generations(ollama) == []


def test_require_gpu_refuses_a_model_larger_than_the_budget(ollama: OllamaServer) -> None:
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=4 * 1024)
    with pytest.raises(StepError, match="big:70b: would run on split"):
        call(resource, model="big:70b", prompt="hi", require_gpu=True)
    assert generations(ollama) == []


def test_without_require_gpu_a_model_that_does_not_fit_still_runs(ollama: OllamaServer) -> None:
    ollama.load_on_gpu = False
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=4 * 1024)
    output = call(resource, model="big:70b", prompt="hi")
    assert output["model"] == "big:70b"
    assert output["placement"] == "cpu"  # what /api/ps reports once it is loaded


def test_falls_back_when_a_model_is_missing(ollama: OllamaServer) -> None:
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=8 * 1024)
    output = call(resource, model="llama9:1t", fallback_models=["small:3b"], prompt="hi")
    assert (output["model"], output["fallback_used"]) == ("small:3b", True)
    with pytest.raises(StepError, match="llama9:1t: not on the server") as caught:
        call(resource, model="llama9:1t", prompt="hi")
    assert caught.value.kind == "model_not_found"


def test_falls_back_when_a_model_fails(ollama: OllamaServer) -> None:
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=8 * 1024)
    ollama.fail("medium:8b", server_error())
    output = call(resource, model="medium:8b", fallback_models=["small:3b"], prompt="hi")
    assert output["model"] == "small:3b"
    assert [r["model"] for r in generations(ollama)] == ["medium:8b", "small:3b"]


def test_choice_order_is_fit_first_then_spill() -> None:
    state = ServerState(
        {
            "a:latest": ServerModel("a:latest", 10 * GIB),
            "b:latest": ServerModel("b:latest", 1 * GIB),
        }
    )
    choices, skipped = choose_models(["a", "b"], state, 2 * 1024, require_gpu=False)
    assert [(c.model, c.placement) for c in choices] == [("b", "gpu"), ("a", "split")]
    assert skipped == []


# ---------------------------------------------------------------- the call


def test_generate_streams_tokens_to_the_compute_log(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama.reply("small:3b", "the quick brown fox jumps")
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=8 * 1024, price_per_gpu_hour=3.6)
    output = call(resource, model="small:3b", prompt="go", system="be brief", options={"seed": 1})
    assert output["text"] == "the quick brown fox jumps"
    assert output["chunks"] == 5  # one NDJSON line per token
    assert "the quick brown fox jumps" in capsys.readouterr().out
    assert output["eval_count"] == 5 and output["prompt_eval_count"] == 1
    assert output["total_duration_ms"] == 1500.0
    assert output["cost_usd"] == pytest.approx(3.6 * 1.5 / 3600)
    (request,) = ollama.calls("/api/generate")
    assert (request["prompt"], request["system"], request["stream"]) == ("go", "be brief", True)
    assert request["options"] == {"seed": 1}


def test_chat_sends_messages(ollama: OllamaServer) -> None:
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=8 * 1024)
    output = call(
        resource,
        chat=True,
        model="small:3b",
        system="terse",
        messages=[{"role": "user", "content": "ping"}],
        stream=False,
    )
    assert output["text"] == "small:3b says: ping"
    (request,) = ollama.calls("/api/chat")
    assert request["messages"] == [
        {"role": "system", "content": "terse"},
        {"role": "user", "content": "ping"},
    ]


def test_json_format_is_parsed_and_checked(ollama: OllamaServer) -> None:
    ollama.reply("small:3b", '{"answer": 42}')
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=8 * 1024)
    output = call(resource, model="small:3b", prompt="?", format="json")
    assert output["json"] == {"answer": 42}
    schema = {"type": "object", "required": ["question"]}
    with pytest.raises(StepError, match="'question' is a required property"):
        call(resource, model="small:3b", prompt="?", format=schema)


def test_an_unreachable_host_is_a_connection_error() -> None:
    resource = OllamaResource(host="http://127.0.0.1:9", timeout=2)
    with pytest.raises(StepError) as caught:
        call(resource, model="small", prompt="hi")
    assert caught.value.kind == "connection"
    assert resource.health()[0] is False


def test_health_lists_models(ollama: OllamaServer) -> None:
    ollama.models["small:3b"].size_vram = 2 * GIB
    reachable, line = OllamaResource(host=ollama.url).health()
    assert reachable
    assert "big:70b" in line and f"small:3b (loaded, {2 * GIB}/{2 * GIB} bytes in VRAM)" in line


def test_generate_with_messages_is_a_compile_error(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: wrong\nsteps:\n  - id: a\n    run: ollama\n    with:\n      model: m\n"
        "      messages: [{role: user, content: hi}]\n"
    )
    with pytest.raises(WorkflowCompileError) as caught:
        compile_file(path)
    assert str(caught.value.diagnostics[0]) == (
        f"{path}:7:7: steps[0].with.messages: ollama.generate takes a prompt; use ollama.chat"
    )


def test_streamed_tokens_reach_the_dagster_compute_log(
    ollama: OllamaServer, instance: dg.DagsterInstance
) -> None:
    ollama.reply("small:3b", "alpha beta gamma delta")
    job = compile_text(
        "name: streamed\nsteps:\n  - id: local\n    run: ollama\n"
        "    with: {model: 'small:3b', prompt: hi}\n",
        "streamed.yaml",
    ).job
    resource = OllamaResource(host=ollama.url, gpu_memory_mb=8 * 1024)
    result = job.execute_in_process(instance=instance, resources={"ollama": resource})
    assert result.output_for_node("local")["chunks"] == 4
    (captured,) = [e for e in result.all_events if e.event_type_value == "LOGS_CAPTURED"]
    file_key = captured.event_specific_data.file_key
    log = instance.compute_log_manager.get_log_data([result.run_id, "compute_logs", file_key])
    assert log.stdout is not None and b"alpha beta gamma delta\n" in log.stdout
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("ollama: small:3b (gpu) answered: 4 tokens" in m for m in messages)


# ---------------------------------------------------------------- the concurrency pool


def test_ollama_steps_use_the_ollama_pool_unless_they_name_one() -> None:
    compiled = compile_text(
        textwrap.dedent(
            """
            name: pools
            steps:
              - id: default
                run: ollama.chat
                with: {model: m, prompt: hi}
              - id: named
                run: ollama
                pool: gpu-box-2
                with: {model: m, prompt: hi}
              - id: other
                run: echo
            """
        ),
        "pools.yaml",
    )
    assert {s.id: s.pool for s in compiled.plan.steps} == {
        "default": "ollama",
        "named": "gpu-box-2",
        "other": None,
    }
    assert {n.name: n.definition.pool for n in compiled.job.graph.nodes} == {
        "default": "ollama",
        "named": "gpu-box-2",
        "other": None,
    }


POOL_WORKFLOW = """
name: pooled
executor: {executor}
steps:
{steps}
"""


def pooled_job(workflow: str, host: str) -> dg.JobDefinition:
    """Rebuilt wherever Dagster needs it (each step process under multiprocess) from its
    arguments, which also keep Dagster's cache of rebuilt jobs apart between tests."""
    return compile_file(workflow, resources={"ollama": OllamaResource(host=host)}).job


@pytest.mark.parametrize("executor", ["threads", "multiprocess"])
def test_the_ollama_pool_limits_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str, limit: int = 1
) -> None:
    """Three ollama steps, an executor that would run all three at once, a pool limit of 1:
    under the threads executor (the default) and the multiprocess one."""
    steps = "\n".join(
        f"  - id: s{i}\n    run: ollama\n    with: {{model: 'small:3b', prompt: p{i}}}"
        for i in range(3)
    )
    workflow = tmp_path / "pooled.yaml"
    workflow.write_text(textwrap.dedent(POOL_WORKFLOW.format(steps=steps, executor=executor)))
    assert {s.pool for s in compile_file(workflow).plan.steps} == {"ollama"}
    with OllamaServer([OllamaModel("small:3b", 2 * GIB, 2 * GIB)]) as server:
        server.delay = 1.5
        home = tmp_path / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            instance.event_log_storage.set_concurrency_slots("ollama", limit)
            started = time.monotonic()
            result = dg.execute_job(
                dg.build_reconstructable_job(
                    __name__,
                    "pooled_job",
                    reconstructable_kwargs={"workflow": str(workflow), "host": server.url},
                    reconstructor_working_directory=str(PROJECT_ROOT),  # step processes
                ),
                instance=instance,
                run_config={"execution": {"config": {"max_concurrent": 3}}},
            )
            elapsed = time.monotonic() - started
            engine = [e.message or "" for e in instance.all_logs(result.run_id)]
        assert result.success
        assert len(server.calls("/api/generate")) == 3
        assert server.max_in_flight == limit
    assert elapsed > 1.5 * 3
    expected = {"threads": "threads executor", "multiprocess": "multiprocess executor"}[executor]
    assert any(expected in message for message in engine), engine
