"""A run whose process is SIGKILLed in the middle of a step: once the run is marked failed (by
run monitoring or dead-run detection; here the instance is told directly, as they do), the
sensor compensates the steps that completed, exactly once, and `maestro resume` re-runs only
what did not complete, reading the completed steps' outputs from the artifact store."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import dagster as dg

from maestro_defs.saga import saga_requests
from resources.run_tags import COMPENSATES_TAG
from tests.saga.test_resume import stop_workflow
from tests.saga.test_saga import JOB, SAGA, saga_workflow
from tests.support.cli import run_maestro, start_maestro
from tests.support.journal import lines
from tests.support.paths import PROJECT_ROOT
from tests.support.reexecution import reconstructable_saga


def _run_and_kill(home: Path, workflow: Path, journal: Path, line: str) -> str:
    """`maestro run` until `line` is in the journal, then SIGKILL; the run marked FAILURE."""
    process = start_maestro(
        "run",
        str(workflow),
        cwd=PROJECT_ROOT,
        home=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while line not in lines(journal):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.get_run_records()
        run = record.dagster_run
        assert run.status == dg.DagsterRunStatus.STARTED  # nobody is left to say it ended
        instance.report_run_failed(run, "the run's process was killed (SIGKILL)")
        return run.run_id


def test_a_killed_run_is_compensated_once_by_the_sensor(
    observed_home: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    text = saga_workflow(journal, tmp_path / "never").replace("name: d}}", "name: d, sleep: 60}}")
    assert "name: d, sleep: 60" in text
    workflow = tmp_path / "saga_demo.yaml"
    workflow.write_text(text, encoding="utf-8")
    run_id = _run_and_kill(observed_home, workflow, journal, "run d")
    artifacts = str(observed_home / "artifacts")
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        for _ in range(3):  # ticks before the daemon launched it: the same run_key each time
            requests, _ = saga_requests(instance, {JOB: SAGA}, 0.0)
            assert [(r.run_key, r.tags) for r in requests] == [(run_id, {COMPENSATES_TAG: run_id})]
        saga = dg.execute_job(
            reconstructable_saga(str(workflow), artifacts), instance, tags=requests[0].tags
        )
        assert saga.success
        for _ in range(3):
            assert saga_requests(instance, {JOB: SAGA}, 0.0)[0] == []
    undone = [line for line in lines(journal) if line.startswith("undo")]
    # d was killed mid-step (never completed): b and c are undone together, then a.
    assert sorted(undone[:2]) == ["undo b b-id None run_failure", "undo c c-id None run_failure"]
    assert undone[2:] == ["undo a a-id None run_failure"]


def test_resume_after_the_process_died_reruns_only_what_did_not_complete(
    observed_home: Path, tmp_path: Path
) -> None:
    journal, marker = tmp_path / "journal.txt", tmp_path / "fixed"
    text = stop_workflow(journal, marker).replace(
        "name: d, upstream", "name: d, sleep: 60, upstream"
    )
    assert "sleep: 60" in text
    workflow = tmp_path / "resumable.yaml"
    workflow.write_text(text, encoding="utf-8")
    run_id = _run_and_kill(observed_home, workflow, journal, "run d")
    before = lines(journal)
    assert before == ["run a", "run b", "run c", "run d"]
    marker.write_text("fixed")
    fast = workflow.read_text().replace(", sleep: 60", "")
    workflow.write_text(fast, encoding="utf-8")  # the fix: d no longer hangs
    resumed = run_maestro("resume", run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert sorted(lines(journal)[4:]) == ["run d", "run e", "run f", "run late"]
