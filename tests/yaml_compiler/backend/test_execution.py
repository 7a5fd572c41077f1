"""DAG semantics on real Dagster executions: order, skipping, data, for_each, retries, timeouts,
failure policies, params and secrets.

Python steps call the helper functions below through the `python` plugin
(`tests.test_execution:<name>`); they leave traces in files so the order is observed, not assumed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster import serialize_value

from tests.support.compiling import compile_text
from tests.support.reserved_plugin import registry_with_reserved
from tests.support.runs import failure, ran, skipped, step_outcomes

Runner = Callable[..., dg.ExecuteInProcessResult]
HERE = "tests.yaml_compiler.backend.test_execution"


# ---------------------------------------------------------------- helpers called by steps


def record(log: str, name: str) -> str:
    """Append this step's name to a log file: the file's line order is the execution order."""
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{name}\n")
    return name


def types_of(**values: Any) -> dict[str, list[Any]]:
    """What a step really received: each value with its Python type name."""
    return {key: [type(value).__name__, value] for key, value in values.items()}


def fail_until(counter: str, failures: int) -> dict[str, int]:
    """Fail the first `failures` calls, counting calls in a file that outlives the attempt."""
    path = Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return {"attempts": attempt}


def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def not_json() -> object:
    return {"a set": {1, 2}}


# ---------------------------------------------------------------- event helpers


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def events_of(result: dg.ExecuteInProcessResult, kind: str, step_key: str) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type_value == kind and e.step_key == step_key]


def log_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


# ---------------------------------------------------------------- order


def test_stages_run_in_order_behind_their_barriers(run_yaml: Runner, tmp_path: Path) -> None:
    """Names run against the alphabet, so only the stage edges can explain the order seen."""
    log = tmp_path / "order.log"
    result = run_yaml(
        f"""
        name: order
        stages:
          - name: first
            steps:
              - id: s_b
                run: python
                with: {{callable: "{HERE}:record", kwargs: {{log: "{log}", name: s_b}}}}
              - id: s_a
                run: python
                with: {{callable: "{HERE}:record", kwargs: {{log: "{log}", name: s_a}}}}
          - name: second
            parallel:
              - id: z1
                run: python
                with: {{callable: "{HERE}:record", kwargs: {{log: "{log}", name: z1}}}}
              - id: z3
                run: python
                with: {{callable: "{HERE}:record", kwargs: {{log: "{log}", name: z3}}}}
              - id: z2
                run: python
                with: {{callable: "{HERE}:record", kwargs: {{log: "{log}", name: z2}}}}
          - name: third
            steps:
              - id: a_last
                run: python
                with: {{callable: "{HERE}:record", kwargs: {{log: "{log}", name: a_last}}}}
        """
    )
    assert result.success
    seen = lines(log)
    assert seen[:2] == ["s_b", "s_a"]
    assert sorted(seen[2:5]) == ["z1", "z2", "z3"]
    assert seen[5:] == ["a_last"]
    assert result.output_for_node("a_last") == "a_last"


def test_flat_steps_are_ordered_only_by_depends_on(run_yaml: Runner, tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    call = f'callable: "{HERE}:record"'
    result = run_yaml(
        f"""
        name: flat
        steps:
          - id: a_needs_c
            run: python
            depends_on: c_first
            with: {{{call}, kwargs: {{log: "{log}", name: a_needs_c}}}}
          - id: b_free
            run: python
            with: {{{call}, kwargs: {{log: "{log}", name: b_free}}}}
          - id: c_first
            run: python
            with: {{{call}, kwargs: {{log: "{log}", name: c_first}}}}
        """
    )
    assert result.success
    seen = lines(log)
    assert sorted(seen) == ["a_needs_c", "b_free", "c_first"]
    assert seen.index("c_first") < seen.index("a_needs_c")
    # Nothing orders b_free: the in-process executor took it before c_first (by key).
    assert seen.index("b_free") < seen.index("c_first")


# ---------------------------------------------------------------- data


def test_outputs_reach_later_steps_with_their_types(run_yaml: Runner) -> None:
    result = run_yaml(
        f"""
        name: data
        steps:
          - id: produce
            run: echo
            with:
              n: 3
              ratio: 0.5
              flag: true
              items: [1, two]
              nested: {{k: v}}
              text: hi
          - id: consume
            run: python
            with:
              callable: "{HERE}:types_of"
              kwargs:
                n: "{{{{ steps.produce.output.n }}}}"
                ratio: "{{{{ steps.produce.output.ratio }}}}"
                flag: "{{{{ steps.produce.output.flag }}}}"
                items: "{{{{ steps.produce.output['items'] }}}}"
                nested: "{{{{ steps.produce.output.nested }}}}"
                first: "{{{{ steps.produce.output['items'][0] }}}}"
                sentence: "n={{{{ steps.produce.output.n }}}}"
        """
    )
    assert result.success
    assert result.output_for_node("consume") == {
        "n": ["int", 3],
        "ratio": ["float", 0.5],
        "flag": ["bool", True],
        "items": ["list", [1, "two"]],
        "nested": ["dict", {"k": "v"}],
        "first": ["int", 1],
        "sentence": ["str", "n=3"],
    }


# ---------------------------------------------------------------- when and skipping


def test_when_false_skips_the_step_and_its_dependents_but_not_the_next_stage(
    run_yaml: Runner, tmp_path: Path
) -> None:
    log = tmp_path / "order.log"
    call = f'callable: "{HERE}:record"'
    result = run_yaml(
        f"""
        name: skipping
        stages:
          - name: one
            steps:
              - id: gate
                run: python
                when: false
                with: {{{call}, kwargs: {{log: "{log}", name: gate}}}}
          - name: two
            parallel:
              - id: dependent
                run: python
                depends_on: gate
                with: {{{call}, kwargs: {{log: "{log}", name: dependent}}}}
              - id: reader
                run: echo
                with: {{seen: "{{{{ steps.gate.output }}}}"}}
              - id: opted_in
                run: python
                depends_on: gate
                on_upstream_skip: run
                with: {{{call}, kwargs: {{log: "{log}", name: opted_in}}}}
              - id: successor
                run: python
                with: {{{call}, kwargs: {{log: "{log}", name: successor}}}}
          - name: three
            steps:
              - id: final
                run: python
                with: {{{call}, kwargs: {{log: "{log}", name: final}}}}
        """
    )
    assert result.success
    outcomes = step_outcomes(result)
    assert outcomes["gate"] == "STEP_SUCCESS" and skipped(result, "gate")
    assert skipped(result, "dependent") and skipped(result, "reader")
    assert [ran(result, s) for s in ("opted_in", "successor", "final")] == [True, True, True]
    assert sorted(lines(log)[:2]) == ["opted_in", "successor"]
    assert lines(log)[2:] == ["final"]


def test_a_skip_spreads_along_every_depends_on(run_yaml: Runner) -> None:
    """Two depends_on, one skipped: the step is skipped (Dagster fan-ins would have run it)."""
    result = run_yaml(
        """
        name: fan_in_skip
        steps:
          - id: a
            run: echo
            when: false
          - id: b
            run: echo
          - id: c
            run: echo
            depends_on: [a, b]
          - id: d
            run: echo
            depends_on: [c]
        """
    )
    assert result.success
    assert ran(result, "b")
    assert skipped(result, "c") and skipped(result, "d")


def test_opting_in_reads_a_skipped_output_as_none(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: opt_in_read
        steps:
          - id: maybe
            run: echo
            when: false
          - id: strict_reader
            run: echo
            with: {got: "{{ steps.maybe.output }}"}
          - id: tolerant_reader
            run: echo
            on_upstream_skip: run
            with: {was_skipped: "{{ steps.maybe.output is none }}"}
        """
    )
    assert result.success
    assert skipped(result, "strict_reader")
    assert result.output_for_node("tolerant_reader") == {"was_skipped": True}


def test_stage_successor_of_a_propagated_skip_still_runs(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: chained_skip
        stages:
          - name: one
            steps:
              - id: gate
                run: echo
                when: false
          - name: two
            steps:
              - id: dependent
                run: echo
                depends_on: gate
              - id: next_in_stage
                run: echo
          - name: three
            steps:
              - id: later_stage
                run: echo
        """
    )
    assert skipped(result, "dependent")
    assert ran(result, "next_in_stage") and ran(result, "later_stage")


WHEN_PARAMS = """
    name: when_params
    params:
      env: dev
      replicas: 1
    steps:
      - id: prod_only
        run: echo
        when: "params.env == 'prod' and params.replicas > 1"
      - id: always
        run: echo
        when: "{{ params.replicas >= 1 }}"
    """


@pytest.mark.parametrize(
    ("params", "prod_ran"),
    [(None, False), ({"env": "prod", "replicas": 2}, True), ({"env": "prod"}, False)],
)
def test_when_over_params(run_yaml: Runner, params: dict[str, Any] | None, prod_ran: bool) -> None:
    result = run_yaml(WHEN_PARAMS, params)
    assert result.success
    assert ran(result, "prod_only") is prod_ran
    assert ran(result, "always")


def test_when_over_upstream_outputs(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: when_outputs
        steps:
          - id: check
            run: echo
            with: {ok: false, count: 2}
          - id: on_ok
            run: echo
            when: "steps.check.output.ok"
          - id: on_not_ok
            run: echo
            when: "not steps.check.output.ok and steps.check.output.count == 2"
        """
    )
    assert result.success
    assert not ran(result, "on_ok")
    assert ran(result, "on_not_ok")


def test_a_when_that_cannot_be_evaluated_fails_without_retry(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: bad_when
        steps:
          - id: check
            run: echo
            with: {ok: true}
          - id: gated
            run: echo
            retry: 3
            when: "steps.check.output.missing.deeper"
        """
    )
    message, metadata = failure(result, "gated")
    assert "cannot evaluate when" in message and "missing" in message
    assert metadata["retryable"] is False
    assert events_of(result, "STEP_UP_FOR_RETRY", "gated") == []


def test_a_missing_output_key_is_a_template_error_without_retry(
    run_yaml: Runner, tmp_path: Path
) -> None:
    result = run_yaml(
        """
        name: bad_key
        steps:
          - id: source
            run: echo
            with: {present: 1}
          - id: reader
            run: echo
            retry: {max_attempts: 3, backoff: 100ms}
            with: {v: "{{ steps.source.output.absent }}"}
        """
    )
    message, metadata = failure(result, "reader")
    assert message == (
        "step 'reader' failed (plugin_error): StepConfigError: template error in `with`: "
        f"'dict object' has no attribute 'absent' (at {tmp_path / 'workflow.yaml'}:6)"
    )
    assert metadata["source"] == f"{tmp_path / 'workflow.yaml'}:6"  # the step's place in the YAML
    assert metadata["retryable"] is False
    assert events_of(result, "STEP_UP_FOR_RETRY", "reader") == []


# ---------------------------------------------------------------- for_each


def test_for_each_over_a_param_list_collects_in_item_order(run_yaml: Runner) -> None:
    """Twelve items: the step keys fe[10], fe[11] sort before fe[2], the output must not."""
    items = [f"item-{n}" for n in range(11, -1, -1)]
    result = run_yaml(
        """
        name: fan
        params:
          things: {type: list, required: true}
        steps:
          - id: fe
            run: echo
            for_each: params.things
            with:
              value: "{{ item }}"
              index: "{{ item_index }}"
              label: "#{{ item_index }} {{ item }}"
          - id: after
            run: echo
            with:
              count: "{{ steps.fe.output | length }}"
              first: "{{ steps.fe.output[0].label }}"
        """,
        {"things": items},
    )
    assert result.success
    assert result.output_for_node("fe__collect") == [
        {"value": item, "index": index, "label": f"#{index} {item}"}
        for index, item in enumerate(items)
    ]
    assert result.output_for_node("after") == {"count": 12, "first": "#0 item-11"}
    assert len([e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]) == 15


def test_for_each_over_an_empty_list(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: fan_empty
        params:
          things: {type: list, default: []}
        stages:
          - name: one
            steps:
              - id: fe
                run: echo
                for_each: "{{ params.things }}"
                with: {value: "{{ item }}"}
          - name: two
            steps:
              - id: after
                run: echo
                with: {got: "{{ steps.fe.output }}"}
        """
    )
    assert result.success
    assert result.output_for_node("fe__collect") == []
    assert result.output_for_node("after") == {"got": []}


def test_for_each_with_when_false(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: fan_skip
        stages:
          - name: one
            steps:
              - id: fe
                run: echo
                when: false
                for_each: [1, 2, 3]
                with: {value: "{{ item }}"}
          - name: two
            parallel:
              - id: reader
                run: echo
                with: {got: "{{ steps.fe.output }}"}
              - id: successor
                run: echo
        """
    )
    assert result.success
    assert skipped(result, "fe__collect")
    assert not any(e.step_key == "fe[1]" for e in result.all_events)
    assert skipped(result, "reader")
    assert ran(result, "successor")


def test_for_each_of_a_non_list_fails(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: fan_bad
        params:
          things: {type: string, default: abc}
        steps:
          - id: fe
            run: echo
            for_each: params.things
        """
    )
    message, metadata = failure(result, "fe__items")
    assert "for_each must give a list, got str" in message
    assert metadata["retryable"] is False


# ---------------------------------------------------------------- retries


def test_retry_until_success(
    run_yaml: Runner, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    counter = tmp_path / "attempts"
    result = run_yaml(
        f"""
        name: flaky
        steps:
          - id: flaky
            run: python
            retry: {{max_attempts: 3, backoff: 100ms}}
            with: {{callable: "{HERE}:fail_until", kwargs: {{counter: "{counter}", failures: 2}}}}
        """
    )
    assert result.success
    assert counter.read_text() == "3"
    assert result.output_for_node("flaky") == {"attempts": 3}
    assert len(events_of(result, "STEP_UP_FOR_RETRY", "flaky")) == 2
    (output,) = events_of(result, "STEP_OUTPUT", "flaky")
    assert output.step_output_data.metadata["attempt"].value == 3
    # The backoff is honoured: each restart comes at least 100 ms after the retry request.
    entries = [
        e
        for e in instance.all_logs(result.run_id)
        if e.dagster_event is not None
        and e.dagster_event.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")
    ]
    kinds = [e.dagster_event.event_type_value for e in entries]
    assert kinds == ["STEP_UP_FOR_RETRY", "STEP_RESTARTED"] * 2
    for asked, restarted in zip(entries[::2], entries[1::2], strict=True):
        assert restarted.timestamp - asked.timestamp >= 0.1


def test_retries_run_out(run_yaml: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    result = run_yaml(
        f"""
        name: hopeless
        steps:
          - id: hopeless
            run: python
            retry: {{max_attempts: 2, backoff: 100ms}}
            with: {{callable: "{HERE}:fail_until", kwargs: {{counter: "{counter}", failures: 5}}}}
        """
    )
    assert not result.success
    assert counter.read_text() == "2"
    message, metadata = failure(result, "hopeless")
    assert message == (
        "step 'hopeless' failed (plugin_error): RuntimeError: attempt 2 fails on purpose "
        f"(at {tmp_path / 'workflow.yaml'}:3)"
    )
    assert (metadata["error_kind"], metadata["retryable"]) == ("plugin_error", True)
    assert len(events_of(result, "STEP_UP_FOR_RETRY", "hopeless")) == 1


def test_retry_on_other_kinds_does_not_retry(run_yaml: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    result = run_yaml(
        f"""
        name: picky
        steps:
          - id: picky
            run: shell
            retry: {{max_attempts: 3, backoff: 100ms, retry_on: [timeout]}}
            with:
              command: ["sh", "-c", "echo x >> {counter}; echo broken >&2; exit 3"]
        """
    )
    assert not result.success
    assert lines(counter) == ["x"]
    assert events_of(result, "STEP_UP_FOR_RETRY", "picky") == []
    message, metadata = failure(result, "picky")
    assert "step 'picky' failed (exit_code): command exited with code 3: broken" in message
    assert metadata == {
        "error_kind": "exit_code",
        "step_id": "picky",
        "plugin": "shell",
        "retryable": False,
        "source": f"{tmp_path / 'workflow.yaml'}:3",
        "exit_code": 3,
    }


def test_retry_on_the_failing_kind_retries(run_yaml: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    result = run_yaml(
        f"""
        name: matching
        steps:
          - id: matching
            run: shell
            retry: {{max_attempts: 2, backoff: 100ms, retry_on: [exit_code]}}
            with:
              command: ["sh", "-c", "echo x >> {counter}; exit 4"]
        """
    )
    assert lines(counter) == ["x", "x"]
    assert len(events_of(result, "STEP_UP_FOR_RETRY", "matching")) == 1


# ---------------------------------------------------------------- timeouts


def test_shell_timeout_kills_the_process(run_yaml: Runner, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    result = run_yaml(
        f"""
        name: slow
        steps:
          - id: slow
            run: shell
            timeout: 500ms
            with:
              command: ["sh", "-c", "echo $$ > {pid_file}; exec sleep 5"]
        """
    )
    elapsed = time.monotonic() - started
    assert not result.success
    assert elapsed < 5, "the step waited for the whole sleep"
    message, metadata = failure(result, "slow")
    assert "step 'slow' failed (timeout): command timed out and was stopped: sh" in message
    assert metadata["error_kind"] == "timeout"
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_python_step_past_its_timeout_fails(run_yaml: Runner) -> None:
    started = time.monotonic()
    result = run_yaml(
        f"""
        name: slow_py
        steps:
          - id: slow_py
            run: python
            timeout: 300ms
            retry: {{max_attempts: 2, retry_on: [exit_code]}}
            with: {{callable: "{HERE}:sleep_for", args: [1.5]}}
        """
    )
    assert not result.success
    message, metadata = failure(result, "slow_py")
    assert "step 'slow_py' failed (timeout): step 'slow_py' did not finish within its timeout" in (
        message
    )
    assert (metadata["error_kind"], metadata["retryable"]) == ("timeout", False)
    assert events_of(result, "STEP_UP_FOR_RETRY", "slow_py") == []
    assert time.monotonic() - started < 1.5 + 3.0  # the sleep plus the grace period at most


def test_workflow_timeout_bounds_every_step(run_yaml: Runner) -> None:
    started = time.monotonic()
    result = run_yaml(
        """
        name: bounded
        timeout: 500ms
        steps:
          - id: slow
            run: shell
            with: {command: "sleep 5"}
        """
    )
    assert time.monotonic() - started < 5
    assert failure(result, "slow")[1]["error_kind"] == "timeout"


def test_budget_max_duration_bounds_the_run_like_timeout(run_yaml: Runner) -> None:
    started = time.monotonic()
    result = run_yaml(
        """
        name: budgeted
        timeout: 1h
        budget: {max_duration: 500ms}
        steps:
          - id: slow
            run: shell
            with: {command: "sleep 5"}
        """
    )
    assert time.monotonic() - started < 5
    assert failure(result, "slow")[1]["error_kind"] == "timeout"
    assert result.dagster_run.tags["dagster/max_runtime"] == "0.5"


# ---------------------------------------------------------------- failure policies


FAILING_DAG = """
    name: failing
    on_failure: {policy}
    steps:
      - id: a_boom
        run: shell
        with: {{command: ["sh", "-c", "exit 1"]}}
      - id: b_independent
        run: python
        with: {{callable: "{here}:record", kwargs: {{log: "{log}", name: b_independent}}}}
      - id: c_child
        run: python
        depends_on: a_boom
        with: {{callable: "{here}:record", kwargs: {{log: "{log}", name: c_child}}}}
      - id: d_grandchild
        run: echo
        with: {{from_child: "{{{{ steps.c_child.output }}}}"}}
    """


def test_on_failure_stop_starts_nothing_after_a_failure(
    run_yaml: Runner, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    log = tmp_path / "order.log"
    result = run_yaml(FAILING_DAG.format(policy="stop", here=HERE, log=log))
    assert not result.success
    # b_independent is started by Dagster but does no work: it fails as not_started, so it is
    # never counted as succeeded and a re-execution from failure runs it.
    assert step_outcomes(result) == {"a_boom": "STEP_FAILURE", "b_independent": "STEP_FAILURE"}
    assert failure(result, "b_independent")[1]["error_kind"] == "not_started"
    assert not ran(result, "b_independent")
    assert lines(log) == []
    assert (
        "not starting step 'b_independent': an earlier step failed (on_failure: stop)"
        in log_messages(instance, result.run_id)
    )


def test_on_failure_continue_runs_independent_branches(run_yaml: Runner, tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    result = run_yaml(FAILING_DAG.format(policy="continue", here=HERE, log=log))
    assert not result.success
    # The failed step's dependents never start (Dagster abandons them without an event).
    assert step_outcomes(result) == {"a_boom": "STEP_FAILURE", "b_independent": "STEP_SUCCESS"}
    assert ran(result, "b_independent")
    assert lines(log) == ["b_independent"]


def test_a_failed_stage_blocks_later_stages_even_with_continue(run_yaml: Runner) -> None:
    result = run_yaml(
        """
        name: staged_failure
        on_failure: continue
        stages:
          - name: one
            parallel:
              - id: boom
                run: shell
                with: {command: "false"}
              - id: fine
                run: echo
          - name: two
            steps:
              - id: later
                run: echo
        """
    )
    assert ran(result, "fine")
    assert not ran(result, "later")


# ---------------------------------------------------------------- params and run config


PARAMS = """
    name: configured
    params:
      region: eu
      replicas: {type: integer, required: true}
      labels: {type: list, default: [a]}
    steps:
      - id: show
        run: echo
        with:
          region: "{{ params.region }}"
          replicas: "{{ params.replicas }}"
          labels: "{{ params.labels }}"
    """


def test_params_come_from_run_config_with_defaults(run_yaml: Runner) -> None:
    result = run_yaml(PARAMS, {"replicas": 2})
    assert result.output_for_node("show") == {"region": "eu", "replicas": 2, "labels": ["a"]}
    result = run_yaml(PARAMS, {"replicas": 5, "region": "us", "labels": []})
    assert result.output_for_node("show") == {"region": "us", "replicas": 5, "labels": []}


def test_optional_params_need_no_run_config(run_yaml: Runner) -> None:
    result = run_yaml(PARAMS.replace("{type: integer, required: true}", "3"))
    assert result.output_for_node("show") == {"region": "eu", "replicas": 3, "labels": ["a"]}


def test_a_schedule_tick_runs_with_its_params(
    compile_yaml: Callable[..., Any], instance: dg.DagsterInstance
) -> None:
    compiled = compile_yaml(
        PARAMS
        + """
    schedule:
      cron: "0 6 * * 1"
      params: {replicas: 4, region: ap}
    """
    )
    (schedule,) = compiled.schedules
    tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    (request,) = tick.run_requests
    result = compiled.job.execute_in_process(run_config=request.run_config, instance=instance)
    assert result.output_for_node("show") == {"region": "ap", "replicas": 4, "labels": ["a"]}


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (None, 'Missing required config entry "params"'),
        ({"region": "us"}, 'Missing required config entry "replicas"'),
        ({"replicas": "two"}, 'Value "two" of type "<class \'str\'>" is not valid'),
        ({"replicas": 1, "zone": "a"}, 'Received unexpected config entry "zone"'),
    ],
)
def test_bad_run_config_is_a_dagster_config_error(
    run_yaml: Runner, params: dict[str, Any] | None, problem: str
) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        run_yaml(PARAMS, params)
    assert any(problem in error.message for error in caught.value.errors)


# ---------------------------------------------------------------- secrets


SECRET = "s3cr3t-Value-9f2"


def test_secrets_reach_the_command_but_never_the_event_log(
    run_yaml: Runner,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKEN", SECRET)
    out = tmp_path / "seen"
    result = run_yaml(
        f"""
        name: secretive
        on_failure: continue
        secrets: [TOKEN]
        steps:
          - id: use
            run: shell
            with:
              command:
                - sh
                - -c
                - 'printf %s "$TOKEN" > {out}; echo token=$TOKEN; echo {{{{ secrets.TOKEN }}}}'
              env: {{TOKEN: "{{{{ secrets.TOKEN }}}}"}}
          - id: leak
            run: shell
            with:
              command: "sh -c 'echo bad $TOKEN >&2; exit 1'"
              env: {{TOKEN: "{{{{ secrets.TOKEN }}}}"}}
          - id: shout
            run: echo
            with: {{said: "token {{{{ secrets.TOKEN }}}}"}}
        """
    )
    assert out.read_text() == SECRET
    assert result.output_for_node("use")["stdout"] == "token=***\n***\n"
    message, _ = failure(result, "leak")
    assert "command exited with code 1: bad ***" in message
    everything = "\n".join(serialize_value(entry) for entry in instance.all_logs(result.run_id))
    assert SECRET not in everything
    assert "***" in everything


def test_a_missing_secret_fails_the_step(run_yaml: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAESTRO_TEST_ABSENT", raising=False)
    result = run_yaml(
        """
        name: no_secret
        secrets: [MAESTRO_TEST_ABSENT]
        steps:
          - id: use
            run: echo
            retry: 2
            with: {v: "{{ secrets.MAESTRO_TEST_ABSENT }}"}
        """
    )
    message, metadata = failure(result, "use")
    assert "secret(s) not set in the environment: MAESTRO_TEST_ABSENT" in message
    assert metadata["retryable"] is False


# ---------------------------------------------------------------- plugin failures


def test_reserved_plugin_fails_as_not_installed_without_retries(
    instance: dg.DagsterInstance,
) -> None:
    job = compile_text(
        """
name: geocoding
steps:
  - id: locate
    run: acme.geocode
    retry: {max_attempts: 3, backoff: 100ms}
    with: {address: 1 Main St}
""",
        registry=registry_with_reserved(),
    ).job
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    message, metadata = failure(result, "locate")
    assert "plugin 'acme.geocode' is not installed yet (the acme geocoding package" in message
    assert (metadata["error_kind"], metadata["retryable"]) == ("plugin_error", False)
    assert events_of(result, "STEP_UP_FOR_RETRY", "locate") == []


def test_python_step_returning_non_json_fails(run_yaml: Runner) -> None:
    result = run_yaml(
        f"""
        name: odd
        steps:
          - id: odd
            run: python
            with: {{callable: "{HERE}:not_json"}}
        """
    )
    message, _ = failure(result, "odd")
    assert (
        "step 'odd' returned a value that is not JSON: Object of type set is not JSON serializable"
        in message
    )
