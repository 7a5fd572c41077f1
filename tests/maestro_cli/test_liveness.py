"""Liveness with real processes: a `maestro run` killed with SIGKILL has its run marked FAILURE
(once, however many detectors look) and its tenant's slot freed; Ctrl-C and SIGTERM end the run
and every process its shell steps started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from maestro_defs.liveness import dead_runs_sensor
from resources.liveness import (
    DEAD_MESSAGE_PREFIX,
    DEAD_RUN_GRACE_ENV,
    HEARTBEAT_INTERVAL_ENV,
    dead_run_grace,
    heartbeat_of,
    mark_dead_runs,
)
from resources.policy.enforce import active_runs
from tests.support.cli import run_maestro, start_maestro
from tests.support.paths import PROJECT_ROOT
from tests.support.real_runs import process_alive

GRACE_S = 4.0
BEAT_S = 0.3
FAST = {DEAD_RUN_GRACE_ENV: str(GRACE_S), HEARTBEAT_INTERVAL_ENV: str(BEAT_S)}


def _four_steps(folder: Path, name: str = "four") -> Path:
    """Four steps in a row for tenant globex (one run at a time); step 3 writes its shell's pid
    and sleeps."""
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            tenant: globex
            steps:
              - id: s1
                run: shell
                with: {{ command: "true" }}
              - id: s2
                run: shell
                depends_on: [s1]
                with: {{ command: "true" }}
              - id: s3
                run: shell
                depends_on: [s2]
                with:
                  command: "echo $$ > {folder}/s3.pid; exec sleep 300"
                  shell: true
              - id: s4
                run: shell
                depends_on: [s3]
                with: {{ command: "true" }}
            """
        ),
        encoding="utf-8",
    )
    return path


def _quick(folder: Path) -> Path:
    path = folder / "quick.yaml"
    path.write_text(
        "name: quick\ntenant: globex\nsteps:\n"
        '  - id: only\n    run: echo\n    with: { message: "hi" }\n',
        encoding="utf-8",
    )
    return path


def _start(workflow: Path, home: Path, **popen: object) -> subprocess.Popen[str]:
    return start_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=home, env=FAST, **popen)


def _wait_for_pid(path: Path, process: subprocess.Popen[str], timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.1)
    raise AssertionError(f"{path} was not written within {timeout}s")


def _only_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    [run] = instance.get_runs()
    return run


def _failure_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return [r.event_log_entry.message or "" for r in records.records]


def _alive_soon(pid: int, timeout: float = 10) -> bool:
    """Whether `pid` is still alive after up to `timeout` seconds (it is not our child)."""
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return process_alive(pid)


def _kill_group(pid: int) -> None:
    """Whatever a test leaves of a killed run's shell step."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _sigkill_in_step_3(tmp_path: Path, home: Path) -> tuple[str, int, float]:
    """`maestro run` of the four steps, SIGKILLed while step 3 runs: (run id, the step's pid,
    when it was killed)."""
    process = _start(_four_steps(tmp_path), home)
    step_pid = _wait_for_pid(tmp_path / "s3.pid", process)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + 30
        while f"[{step_pid}," not in str(heartbeat_of(instance, _only_run(instance).run_id)):
            assert time.monotonic() < deadline, "step 3's process group was never recorded"
            time.sleep(0.05)
    process.kill()
    killed = time.time()
    process.communicate(timeout=30)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = _only_run(instance)
    return run.run_id, step_pid, killed


def test_a_killed_run_is_marked_failed_once_by_the_sensor_and_frees_its_slot(
    tmp_path: Path, observed_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    run_id, step_pid, killed = _sigkill_in_step_3(tmp_path, observed_home)
    sensor = dead_runs_sensor()
    try:
        with dg.DagsterInstance.from_config(str(observed_home)) as instance:
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status == dg.DagsterRunStatus.STARTED
            beat = heartbeat_of(instance, run_id)
            assert beat is not None and beat["tenant"] == "globex" and beat["dead_at"] is None
            assert time.time() - float(beat["beat_at"]) < GRACE_S  # type: ignore[arg-type]
            assert mark_dead_runs(instance) == []  # within the grace: not dead yet
            assert active_runs(instance, "globex") == 1

            deadline = time.monotonic() + 60
            while instance.get_run_by_id(run_id).status != dg.DagsterRunStatus.FAILURE:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the sensor never marked the run"
                sensor(dg.build_sensor_context(instance=instance))
                time.sleep(0.2)
            latency = time.time() - killed
            # More ticks, and detectors racing in threads: nothing is marked again.
            for _ in range(3):
                sensor(dg.build_sensor_context(instance=instance))
            racing: list[list[object]] = []
            threads = [
                threading.Thread(target=lambda: racing.append(list(mark_dead_runs(instance))))
                for _ in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert racing == [[], [], [], []]

            [message] = _failure_messages(instance, run_id)
            assert message.startswith(DEAD_MESSAGE_PREFIX), message
            # Step 3's command outlived the SIGKILL; the detector (on this host) stopped it.
            assert "1 process group(s) its steps had started were killed" in message
            assert not _alive_soon(step_pid)
            assert "pid " in message and DEAD_RUN_GRACE_ENV in message
            assert active_runs(instance, "globex") == 0
            kinds: dict[str, set[str]] = {}
            for entry in instance.all_logs(run_id):
                if entry.step_key and entry.dagster_event:
                    kinds.setdefault(entry.step_key, set()).add(
                        entry.dagster_event.event_type_value
                    )
            assert "STEP_SUCCESS" in kinds["s1"] and "STEP_SUCCESS" in kinds["s2"]
            assert "STEP_START" in kinds["s3"]
            assert not kinds["s3"] & {"STEP_SUCCESS", "STEP_FAILURE"} and "s4" not in kinds
        print(f"detection latency with the sensor (grace {GRACE_S:g}s): {latency:.2f}s")
        assert latency >= GRACE_S
        # The tenant (one run at a time) can run again.
        again = run_maestro("run", str(_quick(tmp_path)), cwd=PROJECT_ROOT, home=observed_home)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        _kill_group(step_pid)


def test_a_killed_run_holds_no_slot_for_the_next_maestro_run_nor_in_maestro_status(
    tmp_path: Path, observed_home: Path
) -> None:
    """No sensor, no daemon: the next run's admission (the tenant's active runs) and `maestro
    status` mark the dead run failed themselves."""
    run_id, step_pid, _ = _sigkill_in_step_3(tmp_path, observed_home)
    try:
        time.sleep(GRACE_S + 0.5)
        again = run_maestro(
            "run", str(_quick(tmp_path)), cwd=PROJECT_ROOT, home=observed_home, env=FAST
        )
        assert again.returncode == 0, again.stdout + again.stderr
        status = run_maestro("status", run_id, cwd=PROJECT_ROOT, home=observed_home, env=FAST)
        assert status.returncode == 1
        assert f"run {run_id}: FAILURE" in status.stdout
        assert f"run error: {DEAD_MESSAGE_PREFIX}" in status.stdout
        rows = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()[4:9]}
        assert rows == {
            "STEP": "STATUS",
            "s1": "succeeded",
            "s2": "succeeded",
            "s3": "interrupted",
            "s4": "not",  # "not run"
        }, status.stdout
        with dg.DagsterInstance.from_config(str(observed_home)) as instance:
            assert len(_failure_messages(instance, run_id)) == 1
    finally:
        _kill_group(step_pid)


def test_a_live_run_slower_than_the_grace_is_never_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its heartbeats keep it alive, whatever its steps take; a detector checking all along
    marks nothing, and the run succeeds."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    workflow = tmp_path / "slow.yaml"
    workflow.write_text(
        "name: slow\nsteps:\n  - id: nap\n    run: shell\n    with: { command: 'sleep 5' }\n"
    )
    monkeypatch.setenv(DEAD_RUN_GRACE_ENV, "1")
    process = _start(workflow, home)
    marked = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while process.poll() is None:
            marked += mark_dead_runs(instance)
            time.sleep(0.2)
        output = process.communicate()[0]
        run = _only_run(instance)
        assert process.returncode == 0, output
        assert run.status == dg.DagsterRunStatus.SUCCESS and marked == []


def test_a_stale_heartbeat_of_a_process_alive_on_this_host_is_not_death(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Late beats (a stalled machine, a database that was away) with the process still there:
    not dead. The same beats from another host: dead."""
    from dagster._core.test_utils import create_run_for_test

    from resources.liveness import run_heartbeat
    from resources.policy.store import run_heartbeats, store_for

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED)
        with run_heartbeat(instance, run, interval=3600):
            with store_for(instance).engine.begin() as conn:
                conn.execute(run_heartbeats.update().values(beat_at=time.time() - 600))
            assert mark_dead_runs(instance, grace=5) == []
            with store_for(instance).engine.begin() as conn:
                conn.execute(run_heartbeats.update().values(host="another-host"))
            [dead] = mark_dead_runs(instance, grace=5)
            assert dead.run_id == run.run_id and "on another-host" in dead.message
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
        assert mark_dead_runs(instance, grace=5) == []


def test_grace_and_interval_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dead_run_grace({}) == 30.0
    assert dead_run_grace({DEAD_RUN_GRACE_ENV: "2.5"}) == 2.5
    for bad in ("0", "-1", "soon", "1e99"):
        with pytest.raises(ValueError, match=DEAD_RUN_GRACE_ENV):
            dead_run_grace({DEAD_RUN_GRACE_ENV: bad})


# ---------------------------------------------------------------- Ctrl-C and SIGTERM


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "terminal Ctrl-C"])
def test_an_interrupted_maestro_run_ends_its_run_and_the_commands_children(
    tmp_path: Path, how: str
) -> None:
    """The shell step starts a child in the background and waits: after the signal the child is
    gone, the process has exited and the run is finished. "terminal Ctrl-C": SIGINT to the
    whole process group, as a terminal sends it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    child_file = tmp_path / "child.pid"
    workflow = tmp_path / "sleepy.yaml"
    workflow.write_text(
        "name: sleepy\nsteps:\n  - id: one\n    run: shell\n    with:\n"
        f'      command: "sleep 300 & echo $! > {child_file}; wait"\n      shell: true\n'
    )
    process = _start(workflow, home, start_new_session=True)
    child = _wait_for_pid(child_file, process)
    try:
        assert process_alive(child)
        if how == "terminal Ctrl-C":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(getattr(signal, how))
        output = process.communicate(timeout=60)[0]
        deadline = time.monotonic() + 10
        while process_alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(child), f"the step's child {child} survived {how}"
        assert process.returncode != 0
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run = _only_run(instance)
        assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED), output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        if process.poll() is None:
            process.kill()


def test_a_killed_run_worker_of_the_threads_executor_is_marked_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run worker a run launcher starts (`dagster api execute_run`; `dagster job execute`
    here, the same executor) beats from the threads executor: killed, its run is marked."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), **FAST}
    dagster = str(Path(sys.executable).with_name("dagster"))
    jobs = str(PROJECT_ROOT / "tests" / "support" / "executor_jobs.py")
    process = subprocess.Popen(
        [dagster, "job", "execute", "-f", jobs, "-j", "one_long_sleep"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 120
            run_id = None
            while run_id is None or heartbeat_of(instance, run_id) is None:
                assert time.monotonic() < deadline and process.poll() is None
                runs = instance.get_runs(limit=1)
                run_id = runs[0].run_id if runs else None
                time.sleep(0.1)
            process.kill()
            process.wait(timeout=30)
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]
            time.sleep(GRACE_S + 0.5)
            [dead] = mark_dead_runs(instance, grace=GRACE_S)
            assert dead.run_id == run_id
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()


def test_the_daemon_marks_a_killed_run_failed_with_the_code_locations_sensor(
    tmp_path: Path,
) -> None:
    """The real daemon, the code location's `maestro_dead_runs` sensor on by default: a
    `maestro run` killed in step 3 ends FAILURE with one failure event, its command stopped."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    workflow = _four_steps(folder)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        **FAST,
        "DAGSTER_HOME": str(home),
        "MAESTRO_WORKFLOWS_DIR": str(folder),
        "MAESTRO_DEAD_RUN_CHECK_INTERVAL_S": "1",
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs()  # the databases exist before two processes open them at once
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    step_pid = 0
    try:
        run_id, step_pid, killed = _sigkill_in_step_3(folder, home)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 180
            while instance.get_run_by_id(run_id).status != dg.DagsterRunStatus.FAILURE:  # type: ignore[union-attr]
                assert daemon.poll() is None, "the daemon exited"
                assert time.monotonic() < deadline, "the daemon never marked the run"
                time.sleep(0.2)
            latency = time.time() - killed
            time.sleep(4)  # a few more sensor ticks
            [message] = _failure_messages(instance, run_id)
        assert message.startswith(DEAD_MESSAGE_PREFIX)
        assert not _alive_soon(step_pid)
        print(f"detection latency with the daemon (grace {GRACE_S:g}s, sensor 1s): {latency:.2f}s")
        assert latency >= GRACE_S
        assert workflow.exists()
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        if step_pid:
            _kill_group(step_pid)
