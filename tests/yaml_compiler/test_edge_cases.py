"""Edge cases found in review: each test failed before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.support.compiling import compile_text, plan_text
from tests.support.runs import ran, skipped
from yaml_compiler import WorkflowCompileError, workflow_files_in
from yaml_compiler.backend import compile_workflow_files


def _errors(text: str) -> list[str]:
    with pytest.raises(WorkflowCompileError) as caught:
        compile_text(textwrap.dedent(text).lstrip(), "wf.yaml")
    return [str(d) for d in caught.value.diagnostics]


def _run(text: str, instance: dg.DagsterInstance, **kwargs: object) -> dg.ExecuteInProcessResult:
    job = compile_text(textwrap.dedent(text).lstrip(), "wf.yaml").job
    return job.execute_in_process(instance=instance, raise_on_error=False, **kwargs)


def _failure_text(result: dg.ExecuteInProcessResult, step_key: str) -> str:
    [event] = [e for e in result.all_events if e.is_step_failure and e.step_key == step_key]
    return event.step_failure_data.user_failure_data.description


def _event_log_text(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> str:
    return "\n".join(
        repr(r.event_log_entry) for r in instance.get_records_for_run(result.run_id).records
    )


# ---------------------------------------------------------------- shell quoting


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("echo hi # {{ params.who }}", "cannot be used in a # comment"),
        ("echo `echo {{ params.who }}`", "cannot be used inside backticks"),
        ("echo $(( {{ params.who }} + 1 ))", "cannot be used inside $(( ))"),
        ("echo '{{ params.who }}", "the script has an unclosed ' quote"),
    ],
)
def test_shell_true_refuses_templates_where_no_value_is_safe(command: str, reason: str) -> None:
    text = (
        "name: x\nparams: {who: a}\nsteps:\n  - run: shell\n    with:\n      shell: true\n"
        f"      command: {json.dumps(command)}\n"
    )
    with pytest.raises(WorkflowCompileError) as caught:
        compile_text(text, "wf.yaml")
    [message] = [str(d) for d in caught.value.diagnostics]
    assert message.startswith("wf.yaml:7:7: steps[0].with.command: with shell: true, ")
    assert reason in message


def test_shell_true_keeps_a_hostile_value_literal(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = f"a'; touch {marker}; echo \"$(touch {marker})"
    result = _run(
        """
        name: x
        params: {who: placeholder}
        steps:
          - id: s
            run: shell
            with: {command: "printf '%s\\n' {{ params.who }} | tr a-z A-Z", shell: true}
        """,
        instance,
        run_config={"params": {"who": hostile}},
    )
    assert result.success
    assert result.output_for_node("s")["stdout"] == hostile.upper() + "\n"
    assert not marker.exists()


def test_shell_must_be_a_literal_boolean() -> None:
    assert _errors(
        """
        name: x
        params: {use: true}
        steps:
          - run: shell
            with: {command: "echo hi", shell: "{{ params.use }}"}
        """
    ) == ["wf.yaml:5:32: steps[0].with.shell: must be true or false, written out (not a template)"]


def test_block_tags_cannot_be_split_into_arguments() -> None:
    [message] = _errors(
        """
        name: x
        params: {v: true}
        steps:
          - run: shell
            with: {command: "ls {% if params.v %}-a{% endif %} /tmp"}
        """
    )
    assert message.startswith("wf.yaml:5:12: steps[0].with.command: {% %} blocks cannot be split")


def test_numbers_in_an_argv_list_are_arguments(instance: dg.DagsterInstance) -> None:
    result = _run(
        """
        name: x
        steps:
          - id: s
            run: shell
            with: {command: [printf, "%s-%s", 7, true]}
        """,
        instance,
    )
    assert result.output_for_node("s")["stdout"] == "7-true"


def test_tail_lines_zero_keeps_no_output(instance: dg.DagsterInstance) -> None:
    result = _run(
        """
        name: x
        steps:
          - id: s
            run: shell
            with: {command: "seq 1 1000", tail_lines: 0}
        """,
        instance,
    )
    assert result.output_for_node("s")["stdout"] == ""


def test_a_timeout_kills_group_members_that_ignore_sigterm(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    result = _run(
        f"""
        name: x
        steps:
          - id: s
            run: shell
            timeout: 500ms
            with:
              command: "(trap '' TERM; exec sleep 30) & echo $! > {pid_file}; wait"
              shell: true
        """,
        instance,
    )
    assert not result.success
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # a killed child lingers as a zombie until init reaps it
        if Path(f"/proc/{pid}/stat").exists() and " Z " in Path(f"/proc/{pid}/stat").read_text():
            break
    alive = (
        Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()
    )
    if alive:
        os.kill(pid, 9)
    assert not alive


# ---------------------------------------------------------------- secrets


def test_multi_line_secrets_and_quoted_secrets_are_redacted(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = "-----BEGIN KEY-----\nAAAAsecretline1\nBBBBsecretline2\n-----END KEY-----"
    monkeypatch.setenv("PEM", pem)
    monkeypatch.setenv("PW", "p@ss'word")
    result = _run(
        """
        name: x
        secrets: [PEM, PW]
        steps:
          - id: quoted
            run: shell
            with: {command: ["true", "--password={{ secrets.PW }}"]}
          - id: multi
            run: shell
            with:
              command: ["sh", "-c", "printf '%s\\n' \\"$K\\"; exit 3"]
              env: {K: "{{ secrets.PEM }}"}
        """,
        instance,
    )
    text = _event_log_text(result, instance)
    for fragment in ("AAAAsecretline1", "BBBBsecretline2", "p@ss", "word"):
        assert fragment not in text
    assert "***" in _failure_text(result, "multi")


def test_reading_secrets_or_steps_whole_is_an_error() -> None:
    assert _errors(
        """
        name: x
        secrets: [TOKEN]
        steps:
          - id: a
            run: echo
          - run: echo
            with: {all: "{{ secrets }}", outs: "{{ steps }}"}
        """
    ) == [
        "wf.yaml:7:12: steps[1].with.all: read a secret by name, e.g. secrets.API_TOKEN",
        "wf.yaml:7:34: steps[1].with.outs: read a step's output by id, e.g. steps.fetch.output",
    ]


# ---------------------------------------------------------------- run-time semantics


def test_on_failure_stop_also_stops_for_each_items(instance: dg.DagsterInstance) -> None:
    result = _run(
        """
        name: x
        steps:
          - {id: a_fe, run: echo, for_each: [1, 2, 3], with: {n: "{{ item }}"}}
          - {id: b_bad, run: shell, with: {command: "false"}}
        """,
        instance,
    )
    assert not any(ran(result, f"a_fe[{i}]") for i in range(3))
    assert not ran(result, "a_fe__collect") and not skipped(result, "a_fe__collect")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('with: {x: "{{ 10 / params.n }}"}', "template error in `with`: ZeroDivisionError"),
        ('when: "10 / params.n"', "cannot evaluate when: ZeroDivisionError"),
        ("with: {x: \"{{ 'a' + params.n }}\"}", "template error in `with`: TypeError"),
    ],
)
def test_python_errors_in_templates_are_config_errors_without_retry(
    instance: dg.DagsterInstance, field: str, expected: str
) -> None:
    result = _run(
        f"""
        name: x
        params: {{n: 0}}
        steps:
          - id: s
            run: echo
            retry: {{max_attempts: 3}}
            {field}
        """,
        instance,
    )
    assert expected in _failure_text(result, "s")
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_whole_params_render_as_the_params(instance: dg.DagsterInstance) -> None:
    result = _run(
        """
        name: x
        params: {region: eu, limit: 5}
        steps:
          - id: dump
            run: echo
            with: {all: "{{ params }}", json: "{{ params | tojson }}"}
        """,
        instance,
    )
    output = result.output_for_node("dump")
    assert output["all"] == {"region": "eu", "limit": 5}
    assert type(output["json"]) is str and output["json"] == '{"limit": 5, "region": "eu"}'


def test_tojson_output_is_plain_text(instance: dg.DagsterInstance) -> None:
    result = _run(
        """
        name: x
        params: {tags: [a, b]}
        steps:
          - id: j
            run: echo
            with: {json: "{{ params.tags | tojson }}"}
          - id: use
            run: echo
            with: {plus: "{{ steps.j.output.json + ' && <done>' }}"}
        """,
        instance,
    )
    assert result.output_for_node("use") == {"plus": '["a", "b"] && <done>'}


# ---------------------------------------------------------------- names and values


def test_python_keywords_make_valid_dagster_names(instance: dg.DagsterInstance) -> None:
    compiled = compile_text(
        "name: import\nsteps:\n  - {id: import, run: echo}\n"
        "  - {id: pass, run: echo, depends_on: import}\n"
    )
    assert compiled.job.name == "import_job"
    assert [s.node_name for s in compiled.plan.steps] == ["import_step", "pass_step"]
    assert compiled.job.execute_in_process(instance=instance).success


def test_duplicate_schedule_names_are_refused_in_a_file_and_across_files(tmp_path: Path) -> None:
    assert _errors(
        """
        name: a
        schedule:
          - {name: nightly, cron: "0 1 * * *"}
          - {name: nightly, cron: "0 2 * * *"}
        steps: [{run: echo}]
        """
    ) == ["wf.yaml:4:6: schedule[1].name: duplicate schedule name 'nightly'"]
    (tmp_path / "a.yaml").write_text(
        "name: a\nschedule: {name: nightly, cron: '0 1 * * *'}\nsteps: [{run: echo}]\n"
    )
    (tmp_path / "b.yaml").write_text(
        "name: b\nschedule: {name: nightly, cron: '0 1 * * *'}\nsteps: [{run: echo}]\n"
    )
    loaded = compile_workflow_files(workflow_files_in(tmp_path))
    assert [str(d) for d in loaded.problems] == [
        f"{tmp_path / 'b.yaml'}:2:1: schedule: schedule 'nightly' is already defined by "
        f"{tmp_path / 'a.yaml'}:2 (a)"
    ]
    assert [w.plan.spec.name for w in loaded.workflows] == ["a"]


@pytest.mark.parametrize("value", [".inf", ".nan", "-1"])
def test_durations_must_be_finite_and_not_negative(value: str) -> None:
    assert _errors(f"name: x\ntimeout: {value}\nsteps: [{{run: echo}}]\n") == [
        "wf.yaml:2:1: timeout: a duration is a finite number of seconds, zero or more"
    ]


def test_blank_collections_read_as_empty() -> None:
    plan = plan_text("name: x\nparams:\nsecrets:\ntags:\nsteps:\n  - run: echo\n    depends_on:\n")
    assert (plan.spec.params, plan.spec.secrets, plan.steps[0].depends_on) == ({}, [], ())


def test_an_optional_param_may_be_left_empty_in_a_schedule() -> None:
    plan = plan_text(
        "name: x\nparams:\n  note: {type: string}\n"
        "schedule: [{cron: '0 1 * * *', params: {note: null}}]\nsteps: [{run: echo}]\n"
    )
    assert plan.spec.schedule[0].params == {"note": None}


def test_validate_refuses_an_empty_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "maestro_cli", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"{tmp_path}:1:1: <root>: no workflow files (*.yaml, *.yml) in this folder" in (
        done.stderr + done.stdout
    )


def test_numeric_keys_are_text_and_paths_name_them_as_keys() -> None:
    assert plan_text("name: x\nsteps: [{run: echo, with: {200: ok}}]\n").steps[0].params == {
        "200": "ok"
    }
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text("name: x\nparams: {1: x}\nsteps: [{run: echo}]\n", "wf.yaml")
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.path) == (2, "params.1")
