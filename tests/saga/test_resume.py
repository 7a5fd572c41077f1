"""`on_failure: stop` and resume: a step that never started is never counted as succeeded, and
`maestro resume` (Dagster's re-execution from failure) runs exactly the steps that did not
complete, reading the completed ones' outputs from the artifact store. Real `maestro` processes
on a real instance (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from resources.artifacts import ArtifactsIOManager
from resources.artifacts.store import pointer_key
from tests.support.cli import run_maestro
from tests.support.journal import lines
from tests.support.paths import PROJECT_ROOT

J = "tests.support.journal:step"


def _step(name: str, journal: Path, needs: str = "", reads: str = "", extra: str = "") -> str:
    upstream = f', upstream: "{{{{ steps.{reads}.output }}}}"' if reads else ""
    depends = f"\n    depends_on: [{needs}]" if needs else ""
    return (
        f"  - id: {name}\n    run: python{depends}{extra}\n"
        f"    with: {{callable: '{J}', kwargs: {{journal: '{journal}', name: {name}{upstream}}}}}\n"
    )


def stop_workflow(journal: Path, marker: Path) -> str:
    """a -> (b, c) -> d -> e (fails until `marker` exists) -> f, and `late`, independent of
    them all, which runs last (one step at a time, lowest priority): on_failure: stop keeps
    it from starting."""
    fails = (
        f"\n    retry: {{max_attempts: 2}}"
        f"\n    with: {{callable: '{J}', kwargs: {{journal: '{journal}', name: e,"
        f" upstream: '{{{{ steps.d.output.id }}}}', fail_unless: '{marker}'}}}}\n"
    )
    return (
        "name: resumable\nmax_parallel: 1\nsteps:\n"
        + _step("a", journal)
        + _step("b", journal, "a", "a")
        + _step("c", journal, "a", "a")
        + _step("d", journal, "b, c", "b")
        + "  - id: e\n    run: python\n    depends_on: [d]"
        + fails
        + _step("f", journal, "e", "e")
        + _step("late", journal, extra="\n    tags: {dagster/priority: '-5'}")
    )


def test_resume_runs_the_failed_not_started_and_later_steps_once(
    observed_home: Path, tmp_path: Path
) -> None:
    journal, marker = tmp_path / "journal.txt", tmp_path / "fixed"
    workflow = tmp_path / "resumable.yaml"
    workflow.write_text(stop_workflow(journal, marker), encoding="utf-8")

    first = run_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=observed_home)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "not run    late (not started: an earlier step failed)" in first.stdout
    assert lines(journal) == ["run a", "run b", "run c", "run d", "run e", "run e"]
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        [record] = instance.get_run_records()
        run_id = record.dagster_run.run_id
        succeeded = {
            e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        }
    assert succeeded == {"a", "b", "c", "d"}  # `late` did no work: it is not a success

    marker.write_text("fixed")
    again = run_maestro("resume", run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resumed run {run_id} as run " in again.stdout
    resumed = lines(journal)[6:]
    assert sorted(resumed) == ["run e", "run f", "run late"]  # a-d do not run again
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        child = next(r for r in instance.get_run_records() if r.dagster_run.run_id != run_id)
        assert child.dagster_run.parent_run_id == run_id
        assert child.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert child.dagster_run.tags["maestro/resumed_from"] == run_id
        outputs = {
            e.step_key: e.dagster_event.step_output_data  # type: ignore[union-attr]
            for e in instance.all_logs(
                child.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT
            )
        }
    assert set(outputs) == {"e", "f", "late"}
    store = ArtifactsIOManager(location=str(observed_home / "artifacts")).open_store()

    def output(step_key: str) -> object:
        key = pointer_key("default", child.dagster_run.run_id, step_key, "result")
        return store.load(store.read_pointer("default", key))

    # e read d's output (made by the first run) from the store; f read e's.
    assert output("e") == {"id": "e-id", "upstream": "d-id"}
    assert output("f") == {"id": "f-id", "upstream": {"id": "e-id", "upstream": "d-id"}}


def test_resume_refuses_a_run_that_did_not_fail(observed_home: Path, tmp_path: Path) -> None:
    workflow = tmp_path / "fine.yaml"
    workflow.write_text("name: fine\nsteps:\n  - run: echo\n", encoding="utf-8")
    assert run_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=observed_home).returncode == 0
    with dg.DagsterInstance.from_config(str(observed_home)) as instance:
        [record] = instance.get_run_records()
    refused = run_maestro("resume", record.dagster_run.run_id, cwd=PROJECT_ROOT, home=observed_home)
    assert refused.returncode == 1
    assert "is SUCCESS: only a FAILURE or CANCELED run is resumed" in refused.stderr
