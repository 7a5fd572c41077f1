"""The `maestro_saga` sensor of the code location: one saga run per failed or canceled run,
however often it is evaluated; a run already compensated (by `maestro run`) is left alone."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import dagster as dg

from maestro_defs.saga import SENSOR_NAME
from maestro_defs.workflows import build_definitions, load_workflows
from resources.artifacts import ArtifactsIOManager
from resources.defaults import default_resources
from resources.run_tags import COMPENSATES_TAG
from tests.saga.test_saga import JOB, SAGA, saga_workflow
from tests.support.cli import start_maestro
from tests.support.journal import lines
from tests.support.paths import PROJECT_ROOT
from tests.support.reexecution import reconstructable_saga, reconstructable_workflow


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> object:
    sensor = defs.get_sensor_def(SENSOR_NAME)
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def _undone(journal: Path) -> list[str]:
    return [line.split()[1] for line in lines(journal) if line.startswith("undo")]


def test_the_sensor_requests_one_saga_per_failed_run_and_none_once_it_ran(
    observed_home: Path, tmp_path: Path
) -> None:
    journal, folder = tmp_path / "journal.txt", tmp_path / "workflows"
    folder.mkdir()
    workflow = folder / "saga_demo.yaml"
    workflow.write_text(saga_workflow(journal, tmp_path / "never"), encoding="utf-8")
    artifacts = str(tmp_path / "artifacts")
    resources = {**default_resources(), "io_manager": ArtifactsIOManager(location=artifacts)}
    defs = build_definitions(load_workflows([folder]), resources=resources)
    assert defs.resolve_job_def(SAGA).name == SAGA
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        failed = dg.execute_job(reconstructable_workflow(str(workflow), artifacts), instance)
        assert not failed.success
        assert _evaluate(defs, instance, None) is not None
        results = [_evaluate(defs, instance, None) for _ in range(3)]
        for result in results:  # the same request each time: the daemon keeps one per run_key
            assert isinstance(result, dg.SensorResult)
            [request] = result.run_requests or []
            assert request.run_key == failed.run_id and request.job_name == SAGA
            assert request.tags == {COMPENSATES_TAG: failed.run_id}
        saga = dg.execute_job(
            reconstructable_saga(str(workflow), artifacts), instance, tags=request.tags
        )
        assert saga.success
        later = _evaluate(defs, instance, results[-1].cursor)  # type: ignore[union-attr]
        assert isinstance(later, dg.SkipReason)
        assert isinstance(_evaluate(defs, instance, None), dg.SkipReason)
    undone = _undone(journal)
    assert undone[0] == "d" and sorted(undone[1:3]) == ["b", "c"] and undone[3:] == ["a"]


def test_a_canceled_run_is_compensated(observed_home: Path, tmp_path: Path) -> None:
    """Terminated as the UI does it (CANCELING, then SIGINT to the run's process) while step e
    runs: the completed steps are compensated, e (interrupted) is not."""
    journal, marker = tmp_path / "journal.txt", tmp_path / "never"
    text = saga_workflow(journal, marker).replace(
        f"fail_unless: '{marker}'", f"fail_unless: '{marker}', sleep: 60"
    )
    workflow = tmp_path / "saga_demo.yaml"
    workflow.write_text(text, encoding="utf-8")
    process = start_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=observed_home)
    try:
        deadline = time.monotonic() + 120
        while "run e" not in lines(journal):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        with dg.DagsterInstance.from_config(str(observed_home)) as instance:
            [record] = instance.get_run_records(filters=dg.RunsFilter(job_name=JOB))
            instance.report_run_canceling(record.dagster_run)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        run = instance.get_run_by_id(record.dagster_run.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.CANCELED, output
        sagas = instance.get_run_records(filters=dg.RunsFilter(tags={COMPENSATES_TAG: run.run_id}))
    assert [s.dagster_run.status for s in sagas] == [dg.DagsterRunStatus.SUCCESS], output
    undone = _undone(journal)
    assert undone[0] == "d" and sorted(undone[1:3]) == ["b", "c"] and undone[3:] == ["a"]
    assert "undo d d-id None canceled" in lines(journal)  # no step failed: the run was canceled


def test_a_tick_with_nothing_to_compensate_moves_the_cursor_on(
    observed_home: Path, tmp_path: Path
) -> None:
    """Otherwise every later tick would read every run since the last saga it requested."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "saga_demo.yaml").write_text(
        saga_workflow(tmp_path / "journal.txt", tmp_path / "never"), encoding="utf-8"
    )
    defs = build_definitions(load_workflows([folder]), resources=default_resources())
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        context = dg.build_sensor_context(instance=instance, cursor="1000.0")
        before = time.time()
        assert isinstance(defs.get_sensor_def(SENSOR_NAME)(context), dg.SkipReason)
    assert float(context.cursor or 0) >= before
