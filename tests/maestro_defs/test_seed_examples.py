"""The original system's workflow files: all compile, except maestro.yaml which names plugins that
never existed; two of them really run their npm steps in a throwaway package."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from resources.defaults import step_resources
from resources.litellm_resource import LiteLLMResource
from resources.plugins import default_registry
from tests.support.compiling import compile_file
from tests.support.llm_servers import OpenAIServer
from tests.support.runs import step_outcomes
from yaml_compiler import WorkflowCompileError

EXAMPLES = Path("/work/shared/maestro-examples")
KNOWN_PLUGINS = ", ".join(default_registry().names())
COMPILING = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "maestro.yaml")


def test_the_examples_are_there() -> None:
    assert len(COMPILING) == 7
    assert (EXAMPLES / "maestro.yaml").is_file()


@pytest.mark.parametrize("name", COMPILING)
def test_example_compiles(name: str) -> None:
    compiled = compile_file(EXAMPLES / name)
    plan = compiled.plan
    assert plan.steps, name
    assert {node.name for node in compiled.job.graph.nodes} == {s.node_name for s in plan.steps}
    for step in plan.steps:
        assert step.stage is not None and step.id.startswith(f"{step.stage}_")


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("intelgraph-build.yaml", ["analyze_0", "test_1", "test_2"]),
        ("cli-template-build-basic.yaml", ["install_0", "test_1"]),
        ("cli-dev-generate-build.yaml", ["install_0", "test_1", "build_2"]),
        ("cli-dev-generate-api.yaml", ["fetch_0"]),
    ],
)
def test_example_step_ids(name: str, ids: list[str]) -> None:
    assert [s.id for s in compile_file(EXAMPLES / name).plan.steps] == ids


def test_maestro_yaml_is_rejected_with_line_numbers() -> None:
    path = EXAMPLES / "maestro.yaml"
    with pytest.raises(WorkflowCompileError) as caught:
        compile_file(path)
    unknown_name = "in template: use one of params, run, steps, secrets, item, item_index"
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{path}:15:9: stages[1].steps[0].run: unknown plugin 'build.typescript'; "
        f"known plugins: {KNOWN_PLUGINS}",
        f"{path}:17:11: stages[1].steps[0].with.cache_key: unknown name 'git' {unknown_name}",
        f"{path}:17:11: stages[1].steps[0].with.cache_key: unknown name 'package' {unknown_name}",
        f"{path}:21:9: stages[2].parallel[0].run: unknown plugin 'test.unit'; "
        f"known plugins: {KNOWN_PLUGINS}",
        f"{path}:22:9: stages[2].parallel[1].run: unknown plugin 'test.integration'; "
        f"known plugins: {KNOWN_PLUGINS}",
        f"{path}:23:9: stages[2].parallel[2].run: unknown plugin 'test.e2e'; "
        f"known plugins: {KNOWN_PLUGINS}",
        f"{path}:27:9: stages[3].steps[0].run: unknown plugin 'container.build'; "
        f"known plugins: {KNOWN_PLUGINS}",
    ]
    lines = path.read_text().splitlines()
    for diagnostic in caught.value.diagnostics:  # every position names what it claims to
        field = diagnostic.path.rsplit(".", 1)[1]
        assert lines[diagnostic.line - 1][diagnostic.col - 1 :].startswith(f"{field}:")


# ---------------------------------------------------------------- real npm runs


def _node_script(word: str) -> str:
    return f"node -e \"require('fs').appendFileSync('ran.log', '{word}\\n')\""


@pytest.fixture
def npm_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dependency-free npm package whose scripts only write to ran.log; the cwd of the run."""
    project = tmp_path / "project"
    project.mkdir()
    words = ("test", "typecheck", "build", "ci", "postinstall")
    package = {
        "name": "seed-demo",
        "version": "1.0.0",
        "private": True,
        "scripts": {word: _node_script(word) for word in words},
    }
    (project / "package.json").write_text(json.dumps(package, indent=2))
    lock = {
        "name": "seed-demo",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": "seed-demo", "version": "1.0.0"}},
    }
    (project / "package-lock.json").write_text(json.dumps(lock, indent=2))
    # No network here: keep npm offline and quiet, with its cache inside the test's tmp dir.
    for key, value in {
        "npm_config_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
        "npm_config_cache": str(tmp_path / "npm-cache"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(project)
    return project


def ran_log(project: Path) -> list[str]:
    log = project / "ran.log"
    return log.read_text().splitlines() if log.exists() else []


def test_intelgraph_build_shell_steps_run(npm_project: Path, instance: dg.DagsterInstance) -> None:
    job = compile_file(EXAMPLES / "intelgraph-build.yaml").job
    result = job.execute_in_process(
        instance=instance,
        op_selection=["test_1", "test_2"],
        resources=step_resources(),  # the LLM step's resource must be bound, even unselected
        raise_on_error=False,
    )
    assert result.success
    assert sorted(ran_log(npm_project)) == ["test", "typecheck"]
    assert "> seed-demo@1.0.0 test" in result.output_for_node("test_1")["stdout"]
    assert "> seed-demo@1.0.0 typecheck" in result.output_for_node("test_2")["stdout"]
    assert result.output_for_node("test_2")["exit_code"] == 0


def test_intelgraph_build_runs_end_to_end_against_a_loopback_llm(
    npm_project: Path, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """The seed's `gpt-4o-mini` is mapped to a loopback OpenAI-compatible deployment."""
    with OpenAIServer() as server:
        litellm = LiteLLMResource(
            model_list=[
                {
                    "model_name": "gpt-4o-mini",
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": server.api_base,
                        "api_key": "sk-loopback",
                    },
                }
            ],
            cache_dir=str(tmp_path / "llm-cache"),
        )
        job = compile_file(EXAMPLES / "intelgraph-build.yaml").job
        result = job.execute_in_process(
            instance=instance, resources={"litellm": litellm}, raise_on_error=False
        )
        (request,) = server.calls("/v1/chat/completions")
    assert result.success
    assert step_outcomes(result) == {
        "analyze_0": "STEP_SUCCESS",
        "test_1": "STEP_SUCCESS",
        "test_2": "STEP_SUCCESS",
    }
    assert request["model"] == "gpt-4o-mini"
    assert "careful code review" in request["messages"][0]["content"]
    review = result.output_for_node("analyze_0")
    assert review["text"].startswith("gpt-4o-mini says:")
    assert review["cost_usd"] > 0  # priced from LiteLLM's bundled cost map
    assert sorted(ran_log(npm_project)) == ["test", "typecheck"]


def test_build_basic_runs_npm_ci_then_npm_test(
    npm_project: Path, instance: dg.DagsterInstance
) -> None:
    job = compile_file(EXAMPLES / "cli-template-build-basic.yaml").job
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    # npm ci runs the package's install lifecycle, then the test stage runs `npm test`.
    assert ran_log(npm_project) == ["postinstall", "test"]
    assert result.output_for_node("install_0")["exit_code"] == 0
    assert "> seed-demo@1.0.0 test" in result.output_for_node("test_1")["stdout"]


def test_build_basic_fails_when_npm_test_fails(
    npm_project: Path, instance: dg.DagsterInstance
) -> None:
    package = json.loads((npm_project / "package.json").read_text())
    package["scripts"]["test"] = "node -e \"console.error('2 tests failed'); process.exit(3)\""
    (npm_project / "package.json").write_text(json.dumps(package))
    job = compile_file(EXAMPLES / "cli-template-build-basic.yaml").job
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert step_outcomes(result) == {"install_0": "STEP_SUCCESS", "test_1": "STEP_FAILURE"}
    (failed,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failed.step_failure_data.user_failure_data
    assert data is not None
    assert data.description is not None
    assert data.description.startswith("step 'test_1' failed (exit_code): command exited with code")
    assert "2 tests failed" in data.description
