"""The threads executor on real runs of plain Dagster jobs (tests/support/executor_jobs.py):
`dg.execute_job` on a real temp instance, and `dagster job execute` in subprocesses.

Times are read from the events the runs recorded; assertions are on overlap and order, with
margins a loaded two-core machine keeps.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from resources.dagster_private import (
    ComputeIOType,
    InstanceConcurrencyContext,
    next_pool_claim_check,
)
from tests.support import executor_jobs
from tests.support.paths import PROJECT_ROOT
from tests.support.real_runs import (
    concurrent,
    engine_messages,
    entries,
    event_type,
    instance_home,
    step_intervals,
)

DAGSTER = str(Path(sys.executable).with_name("dagster"))
JOBS_FILE = str(PROJECT_ROOT / "tests" / "support" / "executor_jobs.py")
STEP_EVENTS = {
    "STEP_START",
    "STEP_SUCCESS",
    "STEP_FAILURE",
    "STEP_UP_FOR_RETRY",
    "STEP_RESTARTED",
    "STEP_SKIPPED",
    "STEP_OUTPUT",
    "STEP_INPUT",
    "HANDLED_OUTPUT",
    "LOADED_INPUT",
}


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    monkeypatch.setattr(executor_jobs, "MARKERS", str(folder))
    monkeypatch.setenv("MAESTRO_TEST_MARKERS", str(folder))
    return folder


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real instance on SQLite: pools are enforced (an ephemeral instance ignores them)."""
    with dg.DagsterInstance.from_config(str(instance_home(tmp_path / "home"))) as real:
        yield real


def run(
    instance: dg.DagsterInstance, job: dg.JobDefinition, **kwargs: object
) -> dg.JobExecutionResult:
    return dg.execute_job(
        executor_jobs.reconstructable(job),
        instance=instance,
        raise_on_error=False,
        **kwargs,  # type: ignore[arg-type]
    )


def signature(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """Per step, the ordered types of its step events: what the UI shows for it."""
    found: dict[str, list[str]] = collections.defaultdict(list)
    for entry in entries(instance, run_id):
        if entry.step_key and event_type(entry) in STEP_EVENTS:
            found[entry.step_key].append(event_type(entry))
    return dict(found)


def test_independent_steps_run_at_once_in_the_run_process(instance: dg.DagsterInstance) -> None:
    threaded = run(instance, executor_jobs.four_sleeps)
    in_process = run(instance, executor_jobs.four_sleeps_in_process)
    assert threaded.success and in_process.success
    keys = [f"sleep_{i}" for i in range(4)]
    assert concurrent(step_intervals(instance, threaded.run_id), keys) == 4
    assert concurrent(step_intervals(instance, in_process.run_id), keys) == 1
    messages = engine_messages(instance, threaded.run_id)
    assert any(
        m.startswith("Executing steps with the threads executor (32 worker threads, pid: ")
        and m.endswith(f"{os.getpid()})")
        for m in messages
    ), messages


@pytest.mark.parametrize(
    ("threaded", "in_process"),
    [
        (executor_jobs.failing, executor_jobs.failing_in_process),
        (executor_jobs.retry_beside_siblings, executor_jobs.retry_beside_siblings_in_process),
        (executor_jobs.dynamic_fan_out, executor_jobs.dynamic_fan_out_in_process),
    ],
    ids=["failure", "retry", "dynamic"],
)
def test_every_step_gets_the_events_the_in_process_executor_gives_it(
    instance: dg.DagsterInstance,
    markers: Path,
    threaded: dg.JobDefinition,
    in_process: dg.JobDefinition,
) -> None:
    ours, theirs = run(instance, threaded), run(instance, in_process)
    assert ours.success == theirs.success
    assert signature(instance, ours.run_id) == signature(instance, theirs.run_id)
    if threaded is executor_jobs.failing:
        assert "downstream" not in signature(instance, ours.run_id)
        assert instance.get_run_by_id(ours.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]


def test_dynamic_items_run_at_once_and_collect(instance: dg.DagsterInstance) -> None:
    with dg.execute_job(
        executor_jobs.reconstructable(executor_jobs.dynamic_fan_out), instance=instance
    ) as result:
        assert result.output_for_node("gather") == 30
    intervals = step_intervals(instance, result.run_id)
    assert concurrent(intervals, [f"work[item_{i}]" for i in range(6)]) == 6


def test_a_retry_delay_does_not_hold_a_worker(instance: dg.DagsterInstance) -> None:
    """Two workers, `flaky` fails at once and waits 2 s to retry: the three 1 s siblings use
    both workers meanwhile, so the last of them starts about 1 s in, not 2 s."""
    result = run(instance, executor_jobs.retry_beside_siblings)
    assert result.success
    found = entries(instance, result.run_id)
    first_start = min(e.timestamp for e in found if event_type(e) == "STEP_START")
    up_for_retry = next(e.timestamp for e in found if event_type(e) == "STEP_UP_FOR_RETRY")
    restarted = next(e.timestamp for e in found if event_type(e) == "STEP_RESTARTED")
    intervals = step_intervals(instance, result.run_id)
    sibling_starts = sorted(intervals[f"sibling_{i}"][0][0] for i in range(3))
    assert restarted - up_for_retry >= 1.9  # the delay was kept
    assert sibling_starts[-1] < up_for_retry + 1.9  # ... without a sibling waiting for it
    assert sibling_starts[-1] - first_start < restarted - first_start


def test_the_pool_limit_holds_within_a_run(instance: dg.DagsterInstance) -> None:
    instance.event_log_storage.set_concurrency_slots("ollama", 1)
    result = run(instance, executor_jobs.pooled_steps)
    assert result.success
    intervals = step_intervals(instance, result.run_id)
    assert concurrent(intervals, ["llm_0", "llm_1"]) == 1
    assert concurrent(intervals, ["llm_0", "llm_1", "plain_0", "plain_1"]) >= 3
    blocked = [m for m in engine_messages(instance, result.run_id) if "pool ollama" in m]
    assert blocked, "the second ollama step was never reported as waiting for the pool"


def test_a_freed_slot_is_claimed_by_the_waiting_step_at_once(instance: dg.DagsterInstance) -> None:
    """Dagster re-asks for a blocked slot after 1, 1.1, 1.21 ... s; the executor asks again as
    soon as a step of its own run frees one. Each pooled step takes 2.5 s: with the back-off
    alone the second would start about 0.8 s after the first ended."""
    instance.event_log_storage.set_concurrency_slots("ollama", 1)
    result = run(instance, executor_jobs.pool_hand_off)
    assert result.success
    intervals = step_intervals(instance, result.run_id)
    (_, first_end), (second_start, _) = sorted(
        [intervals["long_llm_0"][0], intervals["long_llm_1"][0]]
    )
    assert first_end <= second_start < first_end + 0.5


def test_a_blocked_claim_is_waited_for_not_spun_on(instance: dg.DagsterInstance) -> None:
    """Dagster's own interval to the next claim check is never above 0; the executor's is."""
    instance.event_log_storage.set_concurrency_slots("ollama", 1)
    holder = instance.create_run_for_job(executor_jobs.pooled_steps)
    waiter = instance.create_run_for_job(executor_jobs.pooled_steps)
    with InstanceConcurrencyContext(instance, holder) as held:
        assert held.claim("ollama", "llm_0")
        with InstanceConcurrencyContext(instance, waiter) as waiting:
            assert next_pool_claim_check(waiting) is None
            assert not waiting.claim("ollama", "llm_0")
            assert waiting.interval_to_next_pending_claim_check() <= 0
            due = next_pool_claim_check(waiting)
            assert due is not None and 0.5 < due <= 1.0
        held.free_step("llm_0")


def test_the_pool_limit_holds_across_runs(tmp_path: Path) -> None:
    """Two `dagster job execute` processes at once on one instance: the ollama steps of both
    runs never overlap; the plain ones do."""
    home = instance_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots("ollama", 1)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [DAGSTER, "job", "execute", "-f", JOBS_FILE, "-j", "pooled_steps"]
    processes = [
        subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2
        llm, plain = [], []
        for dagster_run in runs:
            intervals = step_intervals(instance, dagster_run.run_id)
            llm += intervals["llm_0"] + intervals["llm_1"]
            plain += intervals["plain_0"] + intervals["plain_1"]
    assert len(llm) == 4
    assert concurrent({"llm": llm}, ["llm"]) == 1
    assert concurrent({"plain": plain}, ["plain"]) >= 2


def test_each_step_has_its_own_compute_log(instance: dg.DagsterInstance) -> None:
    result = run(instance, executor_jobs.printers)
    assert result.success
    manager = instance.compute_log_manager
    logs: dict[tuple[str, ...], tuple[str, str]] = {}
    for entry in entries(instance, result.run_id):
        if event_type(entry) == "LOGS_CAPTURED":
            data = entry.dagster_event.logs_captured_data  # type: ignore[union-attr]
            key = manager.build_log_key_for_run(result.run_id, data.file_key)
            assert manager.is_capture_complete(key)
            out, err = (
                (manager.get_log_data_for_type(key, io, 0, None)[0] or b"").decode()
                for io in (ComputeIOType.STDOUT, ComputeIOType.STDERR)
            )
            logs[tuple(data.step_keys)] = (out, err)
    assert set(logs) == {(), ("printer_a",), ("printer_b",), ("child_process",)}
    a_out, a_err = logs[("printer_a",)]
    b_out, b_err = logs[("printer_b",)]
    assert a_out.splitlines() == [f"printer_a out {i}" for i in range(5)]
    assert b_out.splitlines() == [f"printer_b out {i}" for i in range(5)]
    assert "printer_a err 4" in a_err and "printer_b" not in a_err
    assert "printer_b err 4" in b_err and "printer_a" not in b_err
    # Dagster's own log lines (in the event log already) are in the run's log, not the step's.
    assert "printer_a logs through context.log" not in a_err
    assert "printer_a logs through context.log" in logs[()][1]
    assert "printer_a out 4" in logs[()][0]  # the run's log is the process's whole console
    assert logs[("child_process",)][0].strip() == "child-out"
    assert "child-err" in logs[("child_process",)][1]


def test_async_steps_run_side_by_side(instance: dg.DagsterInstance) -> None:
    result = run(instance, executor_jobs.async_steps)
    assert result.success
    assert concurrent(step_intervals(instance, result.run_id), ["async_a", "async_b"]) == 2


def test_re_execution_from_failure_runs_only_what_failed(
    instance: dg.DagsterInstance, markers: Path
) -> None:
    first = run(instance, executor_jobs.failing)
    assert not first.success
    (markers / "allow").write_text("yes")
    again = run(
        instance,
        executor_jobs.failing,
        reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance),
    )
    assert again.success
    started = sorted(
        e.step_key or "" for e in entries(instance, again.run_id) if event_type(e) == "STEP_START"
    )
    assert started == ["downstream", "fails_without_marker"]


def test_an_isolated_step_runs_in_a_process_of_its_own(
    instance: dg.DagsterInstance, markers: Path
) -> None:
    with dg.execute_job(
        executor_jobs.reconstructable(executor_jobs.isolation), instance=instance
    ) as result:
        assert result.success
        isolated, threaded = (
            result.output_for_node("isolated_pid"),
            result.output_for_node("threaded_pid"),
        )
    assert threaded == os.getpid()
    assert isolated != os.getpid()
    messages = [e.message or "" for e in entries(instance, result.run_id)]
    assert 'Launching subprocess for "isolated_pid".' in messages


def test_termination_starts_nothing_new_stops_running_steps_and_cancels_the_run(
    tmp_path: Path, markers: Path
) -> None:
    """What a UI termination does to the run's process: the run is marked CANCELING, then the
    process gets SIGINT (the run worker's termination thread sends it)."""
    home = instance_home(tmp_path / "home")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MAESTRO_TEST_MARKERS": str(markers)}
    process = subprocess.Popen(
        [DAGSTER, "job", "execute", "-f", JOBS_FILE, "-j", "terminated"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run_id = _wait_for_starts(instance, 2)
            requested = time.time()
            instance.report_run_canceling(instance.get_run_by_id(run_id))  # type: ignore[arg-type]
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
            dagster_run = instance.get_run_by_id(run_id)
            found = entries(instance, run_id)
    finally:
        if process.poll() is None:
            process.kill()
    assert dagster_run is not None and dagster_run.status == dg.DagsterRunStatus.CANCELED
    failures = {
        e.step_key: (e.timestamp - requested, e.dagster_event.step_failure_data.error_source)  # type: ignore[union-attr]
        for e in found
        if event_type(e) == "STEP_FAILURE"
    }
    assert set(failures) == {"cooperative", "stubborn"}
    assert all(str(source) == "ErrorSource.INTERRUPT" for _, source in failures.values())
    assert failures["cooperative"][0] < failures["stubborn"][0]  # the stubborn one after grace
    assert not any(e.step_key == "after" and event_type(e) == "STEP_START" for e in found)
    assert not (markers / "after-ran").exists()


def _wait_for_starts(instance: dg.DagsterInstance, count: int, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(limit=1)
        if runs:
            starts = [e for e in entries(instance, runs[0].run_id) if event_type(e) == "STEP_START"]
            if len(starts) >= count:
                time.sleep(0.5)
                return runs[0].run_id
        time.sleep(0.2)
    raise AssertionError(f"{count} steps did not start within {timeout}s")
