"""The DSL reference and the examples stay honest.

(a) every YAML example in docs/dsl.md compiles, fails with the error it shows, or (fragments)
parses; (b) every workflow under examples/ compiles, except the original `maestro.yaml`, which
names plugins that do not exist; (c) examples/original/ holds verbatim copies of the shared
reference files; (d) the feature examples run in process and do what their headers say.
"""

from __future__ import annotations

import functools
import http.server
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from tests.support.compiling import CompiledWorkflow, compile_file, compile_text
from tests.support.http_server import serve_http
from tests.support.paths import PROJECT_ROOT
from yaml_compiler import WORKFLOW_SUFFIXES, WorkflowCompileError

ROOT = PROJECT_ROOT
DSL_DOC = ROOT / "docs" / "dsl.md"
EXAMPLES = ROOT / "examples"
ORIGINAL = EXAMPLES / "original"
SHARED_EXAMPLES = ROOT.parent / "shared" / "maestro-examples"
DOC_FILENAME = "workflow.yaml"  # the file name the doc's error messages are written with


# ---------------------------------------------------------------- (a) docs/dsl.md


@dataclass(frozen=True)
class Block:
    info: str
    text: str
    line: int  # 1-based line of the opening fence

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def marker(self) -> str:
        words = self.info.split()
        return words[1] if len(words) > 1 else ""


def fenced_blocks(markdown: str) -> list[Block]:
    """Every ``` fenced block with its info string; an unclosed fence is an error."""
    blocks: list[Block] = []
    opened: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        if opened is None:
            if line.startswith("```"):
                opened, body = (line[3:].strip(), number), []
        elif line.strip() == "```":
            blocks.append(Block(opened[0], "\n".join(body) + "\n", opened[1]))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"docs/dsl.md:{opened[1]}: fenced block is never closed"
    return blocks


def _doc_blocks() -> list[Block]:
    return fenced_blocks(DSL_DOC.read_text(encoding="utf-8"))


def _yaml_cases() -> list[Any]:
    """(block, expected error lines) for each yaml block; invalid blocks take the next block."""
    blocks = _doc_blocks()
    cases = []
    for index, block in enumerate(blocks):
        if block.language != "yaml":
            continue
        expected = None
        if block.marker == "invalid":
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if following is not None and following.language == "text":
                expected = [line.strip() for line in following.text.splitlines() if line.strip()]
        cases.append(pytest.param(block, expected, id=f"dsl.md:{block.line}"))
    return cases


YAML_CASES = _yaml_cases()


def test_the_reference_has_examples_of_every_kind() -> None:
    markers = [case.values[0].marker for case in YAML_CASES]
    assert markers.count("") >= 40, "full workflow examples"
    assert markers.count("invalid") >= 10, "examples of errors"
    assert markers.count("fragment") >= 1


@pytest.mark.parametrize(("block", "expected"), YAML_CASES)
def test_doc_yaml_block(block: Block, expected: list[str] | None) -> None:
    where = f"docs/dsl.md:{block.line}"
    assert block.marker in ("", "fragment", "invalid"), (
        f"{where}: unknown info string {block.info!r}: use yaml, yaml fragment or yaml invalid"
    )
    if block.marker == "fragment":
        assert isinstance(yaml.safe_load(block.text), dict), f"{where}: a fragment is a mapping"
        return
    if block.marker == "":
        compile_text(block.text, DOC_FILENAME)
        return
    assert expected, f"{where}: a yaml invalid block is followed by a text block with the error"
    with pytest.raises(WorkflowCompileError) as caught:
        compile_text(block.text, DOC_FILENAME)
    message = str(caught.value)
    for line in expected:
        assert line in message, f"{where}: expected {line!r} in:\n{message}"
    # The doc shows every problem the compiler reports for the example, not a selection.
    assert len(caught.value.diagnostics) == len(expected), message


def test_fenced_blocks_parser() -> None:
    text = "intro\n```yaml fragment\na: 1\n```\n\n```text\nx\n```\n"
    blocks = fenced_blocks(text)
    assert [(b.language, b.marker, b.text, b.line) for b in blocks] == [
        ("yaml", "fragment", "a: 1\n", 2),
        ("text", "", "x\n", 6),
    ]
    with pytest.raises(AssertionError, match="never closed"):
        fenced_blocks("```yaml\nname: x\n")


# ---------------------------------------------------------------- (b) examples compile

ORIGINAL_UNKNOWN_PLUGINS = (
    "build.typescript",
    "test.unit",
    "test.integration",
    "test.e2e",
    "container.build",
)


def _example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix in WORKFLOW_SUFFIXES)


def _relative(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


def test_examples_hold_only_workflows_and_readmes() -> None:
    others = [
        _relative(p)
        for p in EXAMPLES.rglob("*")
        if p.is_file() and p.suffix not in WORKFLOW_SUFFIXES and p.name != "README.md"
    ]
    assert others == []
    assert (ORIGINAL / "README.md").is_file()


@pytest.mark.parametrize("path", _example_files(), ids=_relative)
def test_example_compiles(path: Path) -> None:
    if path == ORIGINAL / "maestro.yaml":
        with pytest.raises(WorkflowCompileError) as caught:
            compile_file(path)
        errors = [d for d in caught.value.diagnostics if d.message.startswith("unknown plugin")]
        named = {re.match(r"unknown plugin '([^']+)'", d.message).group(1) for d in errors}
        assert named == set(ORIGINAL_UNKNOWN_PLUGINS)
        assert all(d.file == str(path) and d.path.endswith(".run") for d in errors)
        return
    compiled = compile_file(path)
    assert compiled.job.graph.node_defs


def test_feature_example_job_names_are_unique() -> None:
    names = [compile_file(p).job.name for p in sorted(EXAMPLES.glob("*.yaml"))]
    assert len(names) == len(set(names)) >= 9


# ---------------------------------------------------------------- (c) verbatim originals


def _original_workflows() -> list[str]:
    return sorted(p.name for p in ORIGINAL.iterdir() if p.suffix in WORKFLOW_SUFFIXES)


def test_original_examples_are_the_eight_reference_files() -> None:
    assert len(_original_workflows()) == 8
    assert "maestro.yaml" in _original_workflows()


@pytest.mark.skipif(not SHARED_EXAMPLES.is_dir(), reason=f"{SHARED_EXAMPLES} is not available")
def test_original_examples_are_verbatim_copies() -> None:
    shared = sorted(
        p.name for p in SHARED_EXAMPLES.iterdir() if p.is_file() and p.suffix in WORKFLOW_SUFFIXES
    )
    assert _original_workflows() == shared
    for name in shared:
        copy, source = (ORIGINAL / name).read_bytes(), (SHARED_EXAMPLES / name).read_bytes()
        assert copy == source, f"examples/original/{name} differs from {SHARED_EXAMPLES / name}"


# ---------------------------------------------------------------- (d) feature examples run


def _run(
    name: str, instance: dg.DagsterInstance, params: dict[str, Any] | None = None
) -> tuple[CompiledWorkflow, dg.ExecuteInProcessResult]:
    compiled = compile_file(EXAMPLES / name)
    result = compiled.job.execute_in_process(
        instance=instance,
        run_config={"params": params} if params is not None else None,
        raise_on_error=False,
    )
    return compiled, result


def _events(result: dg.ExecuteInProcessResult, kind: str, step_key: str) -> list[Any]:
    return [e for e in result.all_events if e.event_type_value == kind and e.step_key == step_key]


def _output(result: dg.ExecuteInProcessResult, step_key: str) -> Any:
    """The step's `result` output, or None when it did not produce one (skipped, stopped)."""
    if not [
        e
        for e in _events(result, "STEP_OUTPUT", step_key)
        if e.step_output_data.output_name == "result"
    ]:
        return None
    return result.output_for_node(step_key)


def _error_kind(result: dg.ExecuteInProcessResult, step_key: str) -> str:
    (failure,) = _events(result, "STEP_FAILURE", step_key)
    return failure.event_specific_data.user_failure_data.metadata["error_kind"].value


def test_flat_dag_runs(instance: dg.DagsterInstance) -> None:
    compiled, result = _run("flat-dag.yaml", instance)
    assert result.success
    assert compiled.plan.step("package").depends_on == ("lint", "unit_tests")
    assert _output(result, "unit_tests")["stdout"] == "12 passed\n"
    assert _output(result, "package")["stdout"] == "packaged after lint and tests\n"
    assert _output(result, "step_4") == {"message": "all done"}


def test_stages_parallel_runs(instance: dg.DagsterInstance) -> None:
    compiled, result = _run("stages-parallel.yaml", instance)
    assert result.success
    assert [s.id for s in compiled.plan.steps] == [
        "prepare_0",
        "checks_1",
        "checks_2",
        "checks_3",
        "tag",
        "announce",
    ]
    assert compiled.plan.step("tag").after == ("checks_1", "checks_2", "checks_3")
    assert [_output(result, f"checks_{i}")["stdout"] for i in (1, 2, 3)] == [
        "lint ok\n",
        "tests ok\n",
        "types ok\n",
    ]
    assert _output(result, "announce") == {"message": "released"}


def test_data_passing_runs(instance: dg.DagsterInstance) -> None:
    _, result = _run("data-passing.yaml", instance)
    assert result.success
    assert _output(result, "parse") == {"host": "build-1", "sizes": [120, 80, 40]}
    assert _output(result, "summary") == {
        "host": "build-1",
        "total": 240,
        "largest": 120,
        "line": "build-1 holds 3 files",
    }
    assert _output(result, "print")["stdout"] == "build-1 holds 3 files total=240\n"


def test_for_each_runs(instance: dg.DagsterInstance) -> None:
    _, result = _run("for-each.yaml", instance)
    assert result.success
    for index in range(3):
        assert _events(result, "STEP_SUCCESS", f"deploy[{index}]")
    assert _output(result, "report") == {
        "deployed": [
            "deployed to eu-west (#0)",
            "deployed to us-east (#1)",
            "deployed to ap-south (#2)",
        ],
        "checks": ["health", "latency"],
    }
    assert _output(result, "check__collect") == [
        {"check": "health", "after_deploys": 3},
        {"check": "latency", "after_deploys": 3},
    ]
    assert _output(result, "literal__collect") == [{"size": "small"}, {"size": "large"}]

    _, result = _run("for-each.yaml", instance, {"regions": ["moon"]})
    assert result.success
    assert _output(result, "report")["deployed"] == ["deployed to moon (#0)"]


def test_conditions_runs(instance: dg.DagsterInstance) -> None:
    _, result = _run("conditions.yaml", instance)
    assert result.success
    assert _output(result, "smoke_tests")["stdout"] == "smoke tests passed\n"
    assert _output(result, "scale_note") == {"message": "running 2 replicas"}
    assert _output(result, "page_oncall")["reason"] == "when is false"
    assert _output(result, "notify_oncall")["reason"] == "upstream step 'page_oncall' was skipped"
    assert _output(result, "audit") == {"target": "staging"}  # on_upstream_skip: run

    _, result = _run(
        "conditions.yaml", instance, {"target": "production", "smoke_tests": False, "replicas": 1}
    )
    assert result.success
    assert _output(result, "smoke_tests")["reason"] == "when is false"
    assert _output(result, "scale_note")["reason"] == "when is false"
    assert _output(result, "page_oncall")["message"].startswith("production deploy by run ")
    assert _output(result, "notify_oncall") == {"message": "on-call paged"}
    assert _output(result, "audit") == {"target": "production"}


def test_retries_timeouts_fails_as_documented(instance: dg.DagsterInstance) -> None:
    started = time.monotonic()
    _, result = _run("retries-timeouts.yaml", instance)
    assert not result.success
    assert time.monotonic() - started < 8  # `sleep 10` was stopped by the 1s timeout
    assert len(_events(result, "STEP_UP_FOR_RETRY", "flaky")) == 1
    assert _output(result, "flaky")["stdout"] == "attempt 2\n"
    assert _error_kind(result, "slow") == "timeout"
    assert not _events(result, "STEP_UP_FOR_RETRY", "slow")  # retry_on: [exit_code] only
    assert _output(result, "report") == {"flaky_said": "attempt 2"}


def test_on_failure_continue_fails_as_documented(instance: dg.DagsterInstance) -> None:
    _, result = _run("on-failure-continue.yaml", instance)
    assert not result.success
    assert _error_kind(result, "mirror_a") == "exit_code"
    assert not _events(result, "STEP_START", "unpack_a")
    assert _output(result, "mirror_b")["stdout"] == "downloaded b\n"
    assert _output(result, "unpack_b") == {"source": "downloaded b"}


def test_schedules_runs_with_defaults_and_with_each_schedule(
    instance: dg.DagsterInstance,
) -> None:
    compiled, result = _run("schedules.yaml", instance)
    assert result.success
    assert _output(result, "publish") == {
        "title": "Adhoc report",
        "days": 1,
        "text": "adhoc report over 1 day(s)",
    }
    schedules = {s.name: s for s in compiled.schedules}
    assert sorted(schedules) == ["nightly_report", "weekly_report"]
    assert schedules["nightly_report"].execution_timezone == "Europe/Paris"
    weekly = schedules["weekly_report"]
    assert weekly.cron_schedule == "0 6 * * 1"
    run_config = weekly.evaluate_tick(dg.build_schedule_context(instance)).run_requests[0]
    assert run_config.run_config == {"params": {"report": "weekly", "days": 7}}
    result = compiled.job.execute_in_process(
        instance=instance, run_config=run_config.run_config, raise_on_error=False
    )
    assert result.success
    assert _output(result, "publish")["text"] == "weekly report over 7 day(s)"


@pytest.fixture
def local_http_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on a free local port, serving one HTML page."""
    (tmp_path / "index.html").write_text("<html><body>hello</body></html>\n", encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with serve_http(handler) as url:
        yield f"{url}/"


def test_http_request_runs_against_a_local_server(
    instance: dg.DagsterInstance, local_http_server: str
) -> None:
    compiled, result = _run("http-request.yaml", instance, {"base_url": local_http_server})
    assert compiled.plan.spec.params["base_url"].default == "http://127.0.0.1:8000/"
    assert result.success
    report = _output(result, "report")
    assert report["status"] == 200
    assert report["content_type"].startswith("text/html")
    assert report["body"] == "text"


def test_secrets_runs_and_never_shows_the_value(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("MAESTRO_EXAMPLE_TOKEN", token)
    compiled, result = _run("secrets.yaml", instance)
    assert result.success
    assert _output(result, "use_token")["stdout"] == f"token has {len(token)} characters: ***\n"
    assert _events(result, "STEP_SUCCESS", "check")
    captured = capfd.readouterr()
    assert "***" in captured.out
    assert token not in captured.out + captured.err
    assert all(token not in (e.message or "") for e in result.all_events)
    assert token not in repr(compiled.plan.to_dict()) + repr(compiled.job.tags)

    monkeypatch.delenv("MAESTRO_EXAMPLE_TOKEN")
    _, result = _run("secrets.yaml", instance)
    assert not result.success
    failures = [
        e
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
        and e.event_specific_data.user_failure_data.metadata["error_kind"].value != "not_started"
    ]
    assert failures  # the first step to start fails; on_failure: stop keeps the other from running
    for failure in failures:
        assert "secret(s) not set in the environment: MAESTRO_EXAMPLE_TOKEN" in (
            failure.event_specific_data.error.message
        )
        assert not failure.event_specific_data.user_failure_data.metadata["retryable"].value
    assert all(_output(result, step) is None for step in ("use_token", "check"))


RUN_TESTS = {
    "conditions.yaml": test_conditions_runs,
    "data-passing.yaml": test_data_passing_runs,
    "flat-dag.yaml": test_flat_dag_runs,
    "for-each.yaml": test_for_each_runs,
    "http-request.yaml": test_http_request_runs_against_a_local_server,
    "on-failure-continue.yaml": test_on_failure_continue_fails_as_documented,
    "retries-timeouts.yaml": test_retries_timeouts_fails_as_documented,
    "schedules.yaml": test_schedules_runs_with_defaults_and_with_each_schedule,
    "secrets.yaml": test_secrets_runs_and_never_shows_the_value,
    "stages-parallel.yaml": test_stages_parallel_runs,
}


def test_every_feature_example_is_run() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(RUN_TESTS)


def test_feature_examples_say_what_they_show_and_how_to_run_them() -> None:
    for name in RUN_TESTS:
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        header = text.split("\nname:", 1)[0]
        assert header.startswith("# "), name
        for command in ("validate", "plan", "run"):
            assert f"maestro {command} examples/{name}" in header, (name, command)
