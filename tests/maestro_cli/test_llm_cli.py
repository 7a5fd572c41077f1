"""`maestro doctor` and `maestro run` with LLM steps, for real in a subprocess, against loopback
OpenAI-compatible and Ollama servers configured through the environment."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import UNSET, run_maestro
from tests.support.llm_servers import MIB, OllamaModel, OllamaServer, OpenAIServer


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def maestro(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_maestro(
        *args, cwd=tmp_path, home=tmp_path / "home", env={"OLLAMA_HOST": UNSET, **env}
    )


def litellm_config(tmp_path: Path, server: OpenAIServer) -> Path:
    config = tmp_path / "litellm.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            model_list:
              - model_name: gpt-4o-mini
                litellm_params:
                  model: openai/gpt-4o-mini
                  api_base: {server.api_base}
                  api_key: os.environ/MAESTRO_TEST_KEY
            """
        )
    )
    return config


def test_doctor_lists_deployments_and_ollama_models(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    config = litellm_config(tmp_path, openai_server)
    with OllamaServer([OllamaModel("small:3b", 2048 * MIB, 2048 * MIB)]) as ollama:
        result = maestro(
            tmp_path,
            "doctor",
            MAESTRO_LITELLM_CONFIG=str(config),
            MAESTRO_TEST_KEY="sk-doctor-secret",
            OLLAMA_HOST=ollama.url,
        )
        assert [p for _, p, _ in ollama.requests] == ["/api/tags", "/api/ps"]
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "litellm: ok" in out and f"config: {config}" in out
    assert f"gpt-4o-mini: openai/gpt-4o-mini at {openai_server.api_base}" in out
    assert "ollama: ok" in out and "small:3b (loaded" in out
    assert "sk-doctor-secret" not in out + result.stderr
    assert openai_server.requests == []  # doctor does not call the models


def test_doctor_fails_on_a_missing_key_and_an_unreachable_host(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    config = litellm_config(tmp_path, openai_server)
    result = maestro(
        tmp_path, "doctor", MAESTRO_LITELLM_CONFIG=str(config), OLLAMA_HOST="http://127.0.0.1:9"
    )
    assert result.returncode == 1
    assert "litellm: FAILED" in result.stdout
    assert "reads the environment variable MAESTRO_TEST_KEY, which is not set" in result.stdout
    assert "ollama: FAILED" in result.stdout


def test_run_prints_the_runs_llm_cost(tmp_path: Path, openai_server: OpenAIServer) -> None:
    config = litellm_config(tmp_path, openai_server)
    (tmp_path / "ask.yaml").write_text(
        textwrap.dedent(
            """
            name: ask
            steps:
              - id: first
                run: litellm
                with: {model: gpt-4o-mini, prompt: "one two"}
              - id: second
                run: litellm
                with: {model: gpt-4o-mini, prompt: "three four"}
            """
        )
    )
    result = maestro(
        tmp_path, "run", "ask.yaml", MAESTRO_LITELLM_CONFIG=str(config), MAESTRO_TEST_KEY="sk-x"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(openai_server.requests) == 2
    cost_lines = [line for line in result.stdout.splitlines() if line.startswith("cost: $")]
    assert len(cost_lines) == 1
    assert float(cost_lines[0].split("$")[1].split()[0]) > 0


def test_the_llm_review_template_runs_end_to_end(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    config = litellm_config(tmp_path, openai_server)
    init = maestro(tmp_path, "init", "--template", "llm-review", ".")
    assert init.returncode == 0, init.stderr
    env = {"MAESTRO_LITELLM_CONFIG": str(config), "MAESTRO_TEST_KEY": "sk-review"}
    result = maestro(
        tmp_path,
        "run",
        "workflows/llm-review.yaml",
        "-p",
        "code=def add(a, b): return a - b",
        **env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (request,) = openai_server.calls("/v1/chat/completions")
    prompt = request["messages"][0]["content"]
    assert "def add(a, b): return a - b" in prompt and "correctness, security" in prompt
    (review,) = (tmp_path / "reviews").glob("*.json")
    saved = json.loads(review.read_text())
    assert saved["text"].startswith("gpt-4o-mini says:") and saved["cost_usd"] > 0
