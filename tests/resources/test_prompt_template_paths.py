"""User prompt templates (`prompts/<name>.j2` beside the workflow) are stored relative to the
workflow file's folder: the compiled params are the same in every checkout, and the template is
found at run time from `maestro run`, `dagster job execute` on the code location, and in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from resources.litellm_resource import LiteLLMResource
from resources.plugins import RunInfo, StepContext, StepError
from resources.plugins.litellm_generate import LiteLLMParams, build_messages
from tests.support.compiling import compile_file
from tests.support.llm_servers import OpenAIServer
from tests.support.paths import PROJECT_ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))

WORKFLOW = """
name: greeter
steps:
  - id: ask
    run: litellm.generate
    with:
      model: gpt-4o-mini
      prompt_template: greet
      template_variables: {who: Ada}
"""


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def checkout(root: Path) -> Path:
    """A workflow folder with its own prompts/greet.j2; returns the workflow file."""
    (root / "prompts").mkdir(parents=True)
    (root / "prompts" / "greet.j2").write_text("Say hello to {{ who }}.\n")
    path = root / "greeter.yaml"
    path.write_text(textwrap.dedent(WORKFLOW).lstrip())
    return path


def litellm_config(tmp_path: Path, server: OpenAIServer) -> Path:
    config = tmp_path / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n"
        f"      model: openai/gpt-4o-mini\n      api_base: {server.api_base}\n"
        "      api_key: sk-test\n"
    )
    return config


def test_the_same_workflow_compiles_to_the_same_params_in_two_checkouts(tmp_path: Path) -> None:
    first = compile_file(checkout(tmp_path / "a"))
    second = compile_file(checkout(tmp_path / "elsewhere" / "deeper" / "b"))
    params = first.plan.step("ask").params
    assert params["prompt_template_file"] == "prompts/greet.j2"
    assert params == second.plan.step("ask").params
    assert first.plan.to_dict()["steps"] == second.plan.to_dict()["steps"]
    assert str(tmp_path) not in json.dumps(first.plan.to_dict()["steps"])


def test_maestro_plan_shows_no_machine_path(tmp_path: Path) -> None:
    path = checkout(tmp_path / "wf")
    done = subprocess.run(
        [sys.executable, "-m", "maestro_cli", "plan", str(path), "--format", "json"],
        cwd=tmp_path,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert '"prompts/greet.j2"' in json.dumps(steps)
    assert str(tmp_path) not in json.dumps(steps)


def test_maestro_run_finds_the_template_from_another_directory(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    path = checkout(tmp_path / "repo" / "workflows")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "maestro_cli", "run", os.path.relpath(path, elsewhere)],
        cwd=elsewhere,
        env={
            **os.environ,
            "DAGSTER_HOME": str(tmp_path / "home"),
            "MAESTRO_LITELLM_CONFIG": str(litellm_config(tmp_path, openai_server)),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (body,) = openai_server.calls("/v1/chat/completions")
    assert body["messages"][-1]["content"] == "Say hello to Ada.\n"


def test_dagster_job_execute_on_the_code_location_finds_the_template(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    path = checkout(tmp_path / "workflows")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    job_name = compile_file(path).plan.job_name
    done = subprocess.run(
        [DAGSTER, "job", "execute", "-m", "maestro_defs.definitions", "-a", "defs", "-j", job_name],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "DAGSTER_HOME": str(home),
            "MAESTRO_WORKFLOWS_DIR": str(path.parent),
            "MAESTRO_LITELLM_CONFIG": str(litellm_config(tmp_path, openai_server)),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (body,) = openai_server.calls("/v1/chat/completions")
    assert body["messages"][-1]["content"] == "Say hello to Ada.\n"


def test_in_process_with_a_relative_workflow_path(
    tmp_path: Path, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout(tmp_path / "wf")
    monkeypatch.chdir(tmp_path)
    job = compile_file(Path("wf/greeter.yaml")).job
    resource = LiteLLMResource(model_list_file=str(litellm_config(tmp_path, openai_server)))
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, resources={"litellm": resource})
    assert result.success
    (body,) = openai_server.calls("/v1/chat/completions")
    assert body["messages"][-1]["content"] == "Say hello to Ada.\n"


def test_a_relative_template_file_without_a_workflow_folder_is_a_clear_error() -> None:
    params = LiteLLMParams.model_validate(
        {"model": "m", "prompt_template": "greet", "prompt_template_file": "prompts/greet.j2"}
    )
    with pytest.raises(StepError, match="relative to the workflow file's folder"):
        build_messages(params, None)
    ctx = StepContext(step_id="ask", run=RunInfo("r", "w", "t", "dev", ""), log=None)  # type: ignore[arg-type]
    assert ctx.workflow_dir is None
