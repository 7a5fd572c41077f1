"""What a running step does with hostile templates and file output paths: a clear, permanent
step error (StepConfigError), inside the step's timeout, with nothing stored half-way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.artifacts import ArtifactsIOManager
from tests.support.compiling import CompiledWorkflow
from tests.support.runs import step_outcomes

Runner = Callable[..., dg.ExecuteInProcessResult]


def _failure(result: dg.ExecuteInProcessResult, step_key: str) -> tuple[str, dict[str, Any]]:
    [event] = [e for e in result.all_events if e.is_step_failure and e.step_key == step_key]
    data = event.step_failure_data.user_failure_data
    return data.description, {k: v.value for k, v in data.metadata.items()}


def _attempts(result: dg.ExecuteInProcessResult, step_key: str) -> int:
    return sum(1 for e in result.all_events if e.is_step_start and e.step_key == step_key)


BOMB_STEP = """
name: bombs
params:
  s: {{type: string, default: ab}}
steps:
  - id: boom
    run: echo
    retry: {{max_attempts: 3}}
    {extra}
    with:
      message: {template}
"""


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('"{{ params.s * 10000000000 }}"', "a repeated value would be 20,000,000,000"),
        ('"{{ params.s.center(10**12) }}"', "center() would be 1,000,000,000,000"),
        ("\"{{ '{:>9999999999}'.format(params.s) }}\"", "a field formatted with '>9999999999'"),
        ('"{{ 7 ** 1000000000 }}"', "has more than 4,096 bits"),
    ],
)
def test_a_template_bomb_fails_the_step_once_with_a_clear_message(
    run_yaml: Runner, template: str, expected: str
) -> None:
    result = run_yaml(BOMB_STEP.format(template=template, extra=""))
    assert step_outcomes(result) == {"boom": "STEP_FAILURE"}
    description, metadata = _failure(result, "boom")
    assert "template error in `with`: template limit:" in description and expected in description
    assert "(at " in description and metadata["retryable"] is False
    assert _attempts(result, "boom") == 1  # a StepConfigError: retrying cannot help


def test_a_slow_template_stops_at_the_step_timeout(run_yaml: Runner) -> None:
    slow = (
        '"{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}'
        '{{ params.s|list|sort|first }}{% endmacro %}{{ f(40) }}"'
    )
    result = run_yaml(BOMB_STEP.format(template=slow, extra="timeout: 1s"))
    description, _ = _failure(result, "boom")
    assert "template limit: rendering took longer than 1s" in description


def test_a_when_bomb_is_a_step_error_too(run_yaml: Runner) -> None:
    result = run_yaml(
        "name: w\nsteps:\n  - id: s\n    run: echo\n    when: \"{{ ('x' * 10**11)|length > 1 }}\"\n"
    )
    description, _ = _failure(result, "s")
    assert "cannot evaluate when: template limit" in description


# ---------------------------------------------------------------- file output paths at run time


FILE_STEP = """
name: paths
params:
  where: {{type: string, default: report.txt}}
steps:
  - id: make
    run: shell
    with:
      command: {command}
      shell: true
      cwd: {cwd}
    outputs:
      - name: report
        path: "{{{{ params.where }}}}"
        {allow}
"""


def _run_files(
    compile_yaml: Callable[..., CompiledWorkflow],
    instance: dg.DagsterInstance,
    store: Path,
    *,
    work: Path,
    command: str,
    where: str,
    allow: str = "",
) -> dg.ExecuteInProcessResult:
    workflow = compile_yaml(FILE_STEP.format(command=json.dumps(command), cwd=work, allow=allow))
    return workflow.job.execute_in_process(
        instance=instance,
        run_config={"params": {"where": where}},
        resources={"io_manager": ArtifactsIOManager(location=str(store))},
        raise_on_error=False,
    )


def _stored_objects(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file()) if store.exists() else []


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("../outside.txt", "path '../outside.txt' goes up out of the step's working folder"),
        ("sub/../../outside.txt", "goes up out of the step's working folder"),
        ("{outside}", "is absolute"),
        ("~/outside.txt", "starts in a home folder"),
    ],
)
def test_a_rendered_path_that_leaves_the_working_folder_fails_the_step(
    compile_yaml: Callable[..., CompiledWorkflow],
    instance: dg.DagsterInstance,
    tmp_path: Path,
    where: str,
    problem: str,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("not the step's to publish")
    store = tmp_path / "store"
    result = _run_files(
        compile_yaml,
        instance,
        store,
        work=work,
        command="echo hi > report.txt",
        where=where.format(outside=outside),
    )
    description, metadata = _failure(result, "make")
    assert "output 'report': path " in description and problem in description, description
    assert "set allow_outside: true" in description and metadata["retryable"] is False
    assert not [p for p in _stored_objects(store) if "/cas/" in str(p)]  # nothing stored


def test_a_symlink_out_of_the_working_folder_is_refused(
    compile_yaml: Callable[..., CompiledWorkflow], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    store = tmp_path / "store"
    result = _run_files(
        compile_yaml,
        instance,
        store,
        work=work,
        command=f"ln -s {secret} report.txt",
        where="report.txt",
    )
    description, _ = _failure(result, "make")
    assert "leads out of the step's working folder" in description
    assert "through a symlink" in description
    assert not any(b"s3cr3t" in p.read_bytes() for p in _stored_objects(store))


def test_a_normalised_path_inside_the_folder_is_stored(
    compile_yaml: Callable[..., CompiledWorkflow], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    result = _run_files(
        compile_yaml,
        instance,
        tmp_path / "store",
        work=work,
        command="echo hi > report.txt",
        where="sub/../report.txt",
    )
    assert result.success
    assert result.output_for_node("make")["report"]["path"] == str(work / "report.txt")


def test_allow_outside_lets_a_step_publish_a_file_elsewhere(
    compile_yaml: Callable[..., CompiledWorkflow], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    elsewhere = tmp_path / "shared" / "report.txt"
    elsewhere.parent.mkdir()
    result = _run_files(
        compile_yaml,
        instance,
        tmp_path / "store",
        work=work,
        command=f"echo hi > {elsewhere}",
        where=str(elsewhere),
        allow="allow_outside: true",
    )
    assert result.success
    assert result.output_for_node("make")["report"]["size"] == 3


def test_a_list_param_may_hold_null_items(run_yaml: Runner) -> None:
    """Found by the fuzzer: Dagster's Array(Any) config refused a default with a null in it
    (a CheckError, not a diagnostic) when the job was built."""
    result = run_yaml(
        "name: nulls\nparams:\n  teams: {type: list, default: [a, null]}\nsteps:\n"
        "  - id: s\n    run: echo\n    with: {teams: '{{ params.teams }}'}\n"
    )
    assert result.success and result.output_for_node("s") == {"teams": ["a", None]}
