"""Which executor a compiled job gets, with which defaults, and the errors of a bad choice."""

from __future__ import annotations

import pytest

from resources.executor import DEFAULT_MAX_CONCURRENT, ISOLATION_TAG
from tests.support.compiling import compile_text
from yaml_compiler import WorkflowCompileError
from yaml_compiler.backend.job import FOR_EACH_TAG


def _defaults(text: str) -> dict[str, object]:
    job = compile_text(text, "wf.yaml").job
    fields = job.executor_def.config_schema.as_field().config_type.fields  # type: ignore[attr-defined]
    return {name: field.default_value for name, field in fields.items() if field.default_provided}


def test_the_default_is_the_threads_executor_with_its_default_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAESTRO_EXECUTOR", raising=False)
    job = compile_text("name: plain\nsteps:\n  - run: echo\n", "wf.yaml").job
    assert job.executor_def.name == "threads"
    assert _defaults("name: plain\nsteps:\n  - run: echo\n")["max_concurrent"] == (
        DEFAULT_MAX_CONCURRENT
    )


def test_max_parallel_and_for_each_limits_become_the_executors_defaults() -> None:
    text = """
name: limited
max_parallel: 3
steps:
  - {id: each, run: echo, for_each: [1, 2, 3], max_parallel: 2}
  - {id: heavy, run: echo, isolation: process}
"""
    compiled = compile_text(text, "wf.yaml")
    defaults = _defaults(text)
    assert defaults["max_concurrent"] == 3
    assert defaults["tag_concurrency_limits"] == [
        {"key": FOR_EACH_TAG, "value": "each", "limit": 2}
    ]
    ops = {node.name: node.definition for node in compiled.job.nodes}
    assert ops["each"].tags[FOR_EACH_TAG] == "each"  # the mapped op only
    assert FOR_EACH_TAG not in ops["each__items"].tags
    assert ops["heavy"].tags[ISOLATION_TAG] == "process"
    assert ISOLATION_TAG not in ops["each"].tags


@pytest.mark.parametrize(
    ("declared", "environment", "expected"),
    [
        ("", "multiprocess", "multiprocess"),
        ("", "in_process", "in_process"),
        ("executor: threads\n", "multiprocess", "threads"),
        ("executor: multiprocess\nmax_parallel: 2\n", None, "multiprocess"),
    ],
)
def test_the_file_chooses_over_maestro_executor(
    monkeypatch: pytest.MonkeyPatch, declared: str, environment: str | None, expected: str
) -> None:
    if environment:
        monkeypatch.setenv("MAESTRO_EXECUTOR", environment)
    else:
        monkeypatch.delenv("MAESTRO_EXECUTOR", raising=False)
    job = compile_text(f"name: chosen\n{declared}steps:\n  - run: echo\n", "wf.yaml").job
    assert job.executor_def.name == expected


def test_an_unknown_maestro_executor_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAESTRO_EXECUTOR", "celery")
    with pytest.raises(WorkflowCompileError) as caught:
        compile_text("name: bad\nsteps:\n  - run: echo\n", "wf.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [
        "wf.yaml:1:1: executor: MAESTRO_EXECUTOR='celery' is not an executor; use one of "
        "threads, in_process, multiprocess, k8s"
    ]


def test_isolation_under_an_in_process_environment_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAESTRO_EXECUTOR", "in_process")
    with pytest.raises(WorkflowCompileError) as caught:
        compile_text("name: bad\nsteps:\n  - run: echo\n    isolation: process\n", "wf.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [
        "wf.yaml:4:5: steps[0].isolation: isolation: process needs the threads or multiprocess "
        "executor, and MAESTRO_EXECUTOR=in_process runs every step in the run's own process"
    ]
