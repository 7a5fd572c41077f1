"""Names shared by every workflow of a code location: clashes name both files and lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.compiling import plan_text
from yaml_compiler.workspace import unique_names


def _plan(name: str, text: str):  # type: ignore[no-untyped-def]
    return plan_text(textwrap.dedent(text).lstrip(), name)


def test_a_job_name_two_files_share_is_reported_at_the_second_naming_the_first() -> None:
    first = _plan("a.yaml", "name: report\nsteps: [{id: s, run: echo}]\n")
    second = _plan("b.yaml", "# again\nname: report\nsteps: [{id: t, run: echo}]\n")
    kept, problems = unique_names([first, second])
    assert kept == [first]
    assert [str(p) for p in problems] == [
        "b.yaml:2:1: name: job 'report' is already defined by a.yaml:1 (report)"
    ]


def test_op_definition_names_that_meet_across_workflows_are_found() -> None:
    """`a` with step `b__c` and `a__b` with step `c` both make op `a__b__c`."""
    first = _plan("one.yaml", "name: a\nsteps: [{id: b__c, run: echo}]\n")
    second = _plan("two.yaml", "name: a__b\nsteps:\n  - {id: c, run: echo}\n")
    kept, problems = unique_names([first, second])
    assert kept == [first]
    assert [str(p) for p in problems] == [
        "two.yaml:3:6: steps[0].id: op definition 'a__b__c' is already defined by one.yaml:2 (a)"
    ]


def test_schedules_assets_and_the_gate_sensor_name() -> None:
    first = _plan(
        "first.yaml",
        """
        name: first
        schedule: {name: nightly, cron: "0 1 * * *"}
        steps:
          - id: s
            run: echo
            outputs: [{name: r, asset_key: shared/report}]
        """,
    )
    second = _plan(
        "second.yaml",
        """
        name: second
        schedule:
          - {name: nightly, cron: "0 2 * * *"}
          - {name: maestro_policy_gate, cron: "0 3 * * *"}
        steps:
          - id: t
            run: echo
            outputs: [{name: r, asset_key: shared/report}]
        """,
    )
    kept, problems = unique_names(
        [first, second], reserved={"maestro_policy_gate": "the policy gate sensor"}
    )
    assert kept == [first]
    assert sorted(str(p) for p in problems) == [
        "second.yaml:3:5: schedule[0]: schedule 'nightly' is already defined by first.yaml:2 "
        "(first)",
        "second.yaml:4:5: schedule[1]: schedule 'maestro_policy_gate' is already defined by "
        "the policy gate sensor",
        "second.yaml:8:15: steps[0].outputs[0]: asset 'shared/report' is already defined by "
        "first.yaml:6 (first)",
    ]


def test_the_shipped_examples_load_together(tmp_path: Path) -> None:
    """examples/ (original/ included) as one workflows folder: only the file rejected on
    purpose (original/maestro.yaml, unknown plugins) stays out."""
    from tests.support.paths import PROJECT_ROOT
    from yaml_compiler import workflow_files_in
    from yaml_compiler.backend import compile_workflow_files

    files = workflow_files_in(PROJECT_ROOT / "examples")
    loaded = compile_workflow_files(files)
    assert {d.file for d in loaded.problems} == {
        str(PROJECT_ROOT / "examples/original/maestro.yaml")
    }
    assert len(loaded.workflows) == len(files) - 1
