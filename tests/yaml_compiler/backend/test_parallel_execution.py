"""Compiled workflows on their executor, in real runs: `dg.execute_job` of the job rebuilt from
its file on a real instance, and `dagster job execute` of the code location.

Overlap and order come from the event timestamps the runs recorded (never from wall-clock
thresholds a loaded machine breaks); processes are checked by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.dagster_private import ComputeIOType
from tests.support.paths import PROJECT_ROOT
from tests.support.real_runs import (
    concurrent,
    engine_messages,
    entries,
    event_type,
    instance_home,
    process_alive,
    step_intervals,
)
from tests.support.reexecution import reconstructable_workflow

HERE = "tests.yaml_compiler.backend.test_parallel_execution"
DAGSTER = str(Path(sys.executable).with_name("dagster"))
THREADS = "Executing steps with the threads executor"

Run = Callable[..., dg.JobExecutionResult]


def record(log: str, name: str) -> int:
    """Append this step's name to a log file, and return the pid of the process it ran in."""
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{name}\n")
    return os.getpid()


def record_pid(log: str, name: str) -> None:
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{name} {os.getpid()}\n")


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(instance_home(tmp_path / "home"))) as real:
        yield real


@pytest.fixture
def run(instance: dg.DagsterInstance, tmp_path: Path) -> Run:
    """Write the workflow, then execute the job Dagster rebuilds from it."""
    counter = iter(range(1000))

    def execute(text: str, **kwargs: Any) -> dg.JobExecutionResult:
        path = tmp_path / f"workflow_{next(counter)}.yaml"
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        job = reconstructable_workflow(str(path), str(tmp_path / "artifacts"))
        return dg.execute_job(job, instance=instance, raise_on_error=False, **kwargs)

    return execute


def sleepers(count: int, seconds: float = 1, prefix: str = "s") -> str:
    return "".join(
        f"      - {{id: {prefix}{i}, run: shell, with: {{command: 'sleep {seconds}'}}}}\n"
        for i in range(count)
    )


def test_a_parallel_stage_runs_its_steps_at_once(run: Run, instance: dg.DagsterInstance) -> None:
    result = run("name: par\nstages:\n  - name: all\n    parallel:\n" + sleepers(4))
    assert result.success
    intervals = step_intervals(instance, result.run_id)
    assert concurrent(intervals, [f"s{i}" for i in range(4)]) == 4
    assert any(m.startswith(THREADS) for m in engine_messages(instance, result.run_id))


@pytest.mark.parametrize(
    ("declared", "environment", "expected"),
    [
        ("executor: in_process\n", None, 1),
        ("", "in_process", 1),
        ("executor: threads\n", "in_process", 2),  # the file wins over the environment
    ],
)
def test_the_workflow_or_the_environment_chooses_the_executor(
    run: Run,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    declared: str,
    environment: str | None,
    expected: int,
) -> None:
    if environment:
        monkeypatch.setenv("MAESTRO_EXECUTOR", environment)
    result = run(
        f"name: chosen\n{declared}stages:\n  - name: all\n    parallel:\n" + sleepers(2, 0.5)
    )
    assert result.success
    assert concurrent(step_intervals(instance, result.run_id), ["s0", "s1"]) == expected
    in_process = any(
        m.startswith("Executing steps in process") for m in engine_messages(instance, result.run_id)
    )
    assert in_process == (expected == 1)


def test_max_parallel_limits_a_run_and_run_config_can_change_it(
    run: Run, instance: dg.DagsterInstance
) -> None:
    text = (
        "name: capped\nmax_parallel: 2\nparams: {who: x}\nstages:\n  - name: all\n"
        "    parallel:\n" + sleepers(4, 0.5)
    )
    capped = run(text)
    one = run(text, run_config={"execution": {"config": {"max_concurrent": 1}}})
    assert capped.success and one.success
    keys = [f"s{i}" for i in range(4)]
    assert concurrent(step_intervals(instance, capped.run_id), keys) == 2
    assert concurrent(step_intervals(instance, one.run_id), keys) == 1
    assert any("(2 worker threads" in m for m in engine_messages(instance, capped.run_id))


def test_for_each_max_parallel_holds_while_the_items_run_at_once(
    run: Run, instance: dg.DagsterInstance
) -> None:
    result = run(
        """
        name: fan
        steps:
          - id: each
            run: shell
            for_each: [1, 2, 3, 4, 5, 6]
            max_parallel: 2
            with: {command: "sleep 0.5"}
          - id: other
            run: shell
            with: {command: "sleep 1"}
        """
    )
    assert result.success
    intervals = step_intervals(instance, result.run_id)
    items = [f"each[{i}]" for i in range(6)]
    assert all(key in intervals for key in items)
    assert concurrent(intervals, items) == 2
    assert concurrent(intervals, [*items, "other"]) == 3  # the limit is the for_each's only


def test_a_timed_out_step_frees_its_worker_and_its_process_group_is_killed(
    run: Run, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    result = run(
        f"""
        name: stall
        max_parallel: 2
        on_failure: continue
        steps:
          - id: slow
            run: shell
            timeout: 1s
            tags: {{dagster/priority: "2"}}
            with: {{command: ["sh", "-c", "echo $$ > {pid_file}; exec sleep 60"]}}
          - id: a
            run: shell
            tags: {{dagster/priority: "1"}}
            with: {{command: "sleep 3"}}
          - id: b
            run: shell
            with: {{command: "sleep 1"}}
        """
    )
    assert not result.success
    intervals = step_intervals(instance, result.run_id)
    ((slow_start, slow_end),) = intervals["slow"]
    (a_start, a_end), b_start = intervals["a"][0], intervals["b"][0][0]
    # Two workers, `slow` and `a` first (priority): `b` gets the worker `slow` held once its
    # timeout gave it back, while `a` still runs.
    assert max(slow_start, a_start) < b_start
    assert slow_end <= b_start < a_end
    outcomes = {
        e.step_key: event_type(e)
        for e in entries(instance, result.run_id)
        if event_type(e) in ("STEP_SUCCESS", "STEP_FAILURE")
    }
    assert outcomes == {"slow": "STEP_FAILURE", "a": "STEP_SUCCESS", "b": "STEP_SUCCESS"}
    assert not process_alive(int(pid_file.read_text()))


def test_a_retry_delay_does_not_delay_the_siblings(
    run: Run, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    counter = tmp_path / "attempts"
    result = run(
        f"""
        name: retrying
        max_parallel: 2
        steps:
          - id: flaky
            run: shell
            retry: {{max_attempts: 2, backoff: 2s}}
            with: {{command: ["sh", "-c", "test -e {counter} || (touch {counter}; exit 1)"]}}
{sleepers(3, 1, "sib").replace("      - ", "          - ")}
        """
    )
    assert result.success
    found = entries(instance, result.run_id)
    retried = next(e.timestamp for e in found if event_type(e) == "STEP_UP_FOR_RETRY")
    restarted = next(e.timestamp for e in found if event_type(e) == "STEP_RESTARTED")
    intervals = step_intervals(instance, result.run_id)
    last_sibling = max(intervals[f"sib{i}"][0][0] for i in range(3))
    assert restarted - retried >= 1.9
    assert last_sibling < restarted  # the siblings used the waiting step's worker


def test_on_failure_stop_starts_no_work_after_a_failure_and_lets_running_steps_finish(
    run: Run, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    log = tmp_path / "order.log"

    def step(name: str, extra: str = "") -> str:
        return (
            f"  - id: {name}\n    run: python\n{extra}"
            f"    with: {{callable: '{HERE}:record', kwargs: {{log: '{log}', name: {name}}}}}\n"
        )

    result = run(
        "name: stopping\nmax_parallel: 2\nsteps:\n"
        "  - {id: boom, run: shell, tags: {dagster/priority: '2'},\n"
        "     with: {command: ['sh', '-c', 'sleep 0.3; exit 1']}}\n"
        "  - {id: running, run: shell, tags: {dagster/priority: '1'},\n"
        "     with: {command: 'sleep 1.5'}}\n" + step("later_1") + step("later_2")
    )
    assert not result.success
    outcomes = {
        e.step_key: event_type(e)
        for e in entries(instance, result.run_id)
        if event_type(e) in ("STEP_SUCCESS", "STEP_FAILURE")
    }
    assert outcomes["boom"] == "STEP_FAILURE"
    assert outcomes["running"] == "STEP_SUCCESS"  # the sibling that was running finished
    assert not log.exists()  # neither later step did any work
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    for name in ("later_1", "later_2"):
        assert f"not starting step '{name}': an earlier step failed (on_failure: stop)" in (
            messages
        )


def test_two_concurrent_shell_steps_each_log_only_their_own_lines(
    run: Run, instance: dg.DagsterInstance
) -> None:
    def talker(name: str) -> str:
        script = (
            f"for i in 1 2 3 4 5; do echo {name}-out-$i; echo {name}-err-$i >&2; sleep 0.1; done"
        )
        return f"      - {{id: {name}, run: shell, with: {{command: '{script}', shell: true}}}}\n"

    result = run(
        "name: talkers\nstages:\n  - name: all\n    parallel:\n" + talker("left") + talker("right")
    )
    assert result.success
    assert concurrent(step_intervals(instance, result.run_id), ["left", "right"]) == 2
    manager = instance.compute_log_manager
    logs = {}
    for entry in entries(instance, result.run_id):
        if event_type(entry) == "LOGS_CAPTURED":
            data = entry.dagster_event.logs_captured_data  # type: ignore[union-attr]
            key = manager.build_log_key_for_run(result.run_id, data.file_key)
            logs[tuple(data.step_keys)] = [
                (manager.get_log_data_for_type(key, io, 0, None)[0] or b"").decode()
                for io in (ComputeIOType.STDOUT, ComputeIOType.STDERR)
            ]
    for name, other in (("left", "right"), ("right", "left")):
        out, err = logs[(name,)]
        assert out.splitlines() == [f"{name}-out-{i}" for i in range(1, 6)]
        assert [line for line in err.splitlines() if line.startswith(f"{name}-err-")] == [
            f"{name}-err-{i}" for i in range(1, 6)
        ]
        assert f"{other}-out" not in out + err and f"{other}-err" not in out + err
        assert f" - {name} - $ /bin/sh -c" not in err  # Dagster's log lines: the run's log
        assert f" - {name} - $ /bin/sh -c" in logs[()][1]


def test_a_step_with_isolation_process_runs_in_its_own_process(
    run: Run, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    log = tmp_path / "pids.log"
    call = f'callable: "{HERE}:record_pid", kwargs: {{log: "{log}", name: NAME}}'
    result = run(
        f"""
        name: isolated
        steps:
          - id: apart
            run: python
            isolation: process
            with: {{{call.replace("NAME", "apart")}}}
          - {{id: beside, run: python, with: {{{call.replace("NAME", "beside")}}}}}
        """
    )
    assert result.success
    pids = dict(line.split() for line in log.read_text().splitlines())
    assert int(pids["beside"]) == os.getpid()
    assert int(pids["apart"]) != os.getpid()
    messages = [e.message or "" for e in entries(instance, result.run_id)]
    assert 'Launching subprocess for "apart".' in messages
    assert 'Launching subprocess for "beside".' not in messages


# ---------------------------------------------------------------- through the dagster CLI


def _code_location_env(tmp_path: Path, workflow: str) -> dict[str, str]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "workflow.yaml").write_text(textwrap.dedent(workflow).lstrip(), encoding="utf-8")
    home = instance_home(tmp_path / "cli_home")
    return {**os.environ, "DAGSTER_HOME": str(home), "MAESTRO_WORKFLOWS_DIR": str(folder)}


def test_terminating_a_run_kills_its_shell_steps_starts_nothing_and_cancels_it(
    tmp_path: Path,
) -> None:
    """The UI's termination, as it reaches the run's process: the run is marked CANCELING,
    then the process gets SIGINT (what the run worker's termination thread sends)."""
    pids = tmp_path / "pids"
    pids.mkdir()
    marker = tmp_path / "next-stage-ran"
    env = _code_location_env(
        tmp_path,
        f"""
        name: long-run
        stages:
          - name: work
            parallel:
              - id: one
                run: shell
                with: {{command: ["sh", "-c", "echo $$ > {pids}/one; exec sleep 120"]}}
              - id: two
                run: shell
                with: {{command: ["sh", "-c", "echo $$ > {pids}/two; exec sleep 120"]}}
          - name: then
            steps:
              - {{id: after, run: shell, with: {{command: ["touch", "{marker}"]}}}}
        """,
    )
    process = subprocess.Popen(
        [
            DAGSTER,
            "job",
            "execute",
            "-m",
            "maestro_defs.definitions",
            "-a",
            "defs",
            "-j",
            "long_run",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not ((pids / "one").exists() and (pids / "two").exists()):
            assert time.monotonic() < deadline, "the shell steps never started"
            assert process.poll() is None, "dagster job execute ended early"
            time.sleep(0.2)
        time.sleep(0.3)  # the pid files are written before exec: let sleep replace sh
        children = [int((pids / name).read_text()) for name in ("one", "two")]
        assert all(process_alive(child) for child in children)
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            [dagster_run] = instance.get_runs()
            instance.report_run_canceling(dagster_run)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
            dagster_run = instance.get_run_by_id(dagster_run.run_id)  # type: ignore[assignment]
            found = entries(instance, dagster_run.run_id)
    finally:
        if process.poll() is None:
            process.kill()
    assert dagster_run.status == dg.DagsterRunStatus.CANCELED
    assert not any(process_alive(child) for child in children)
    failed = {e.step_key for e in found if event_type(e) == "STEP_FAILURE"}
    assert failed == {"one", "two"}
    assert not any(e.step_key == "after" and event_type(e) == "STEP_START" for e in found)
    assert not marker.exists()
    assert any("received a termination request" in (e.message or "") for e in found)


def test_dagster_job_execute_runs_parallel_steps_at_once_on_the_threads_executor(
    tmp_path: Path,
) -> None:
    env = _code_location_env(
        tmp_path, "name: cli-par\nstages:\n  - name: all\n    parallel:\n" + sleepers(4)
    )
    done = subprocess.run(
        [
            DAGSTER,
            "job",
            "execute",
            "-m",
            "maestro_defs.definitions",
            "-a",
            "defs",
            "-j",
            "cli_par",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        [dagster_run] = instance.get_runs()
        intervals = step_intervals(instance, dagster_run.run_id)
        messages = engine_messages(instance, dagster_run.run_id)
    assert concurrent(intervals, [f"s{i}" for i in range(4)]) == 4
    assert any(m.startswith(THREADS) for m in messages), messages
