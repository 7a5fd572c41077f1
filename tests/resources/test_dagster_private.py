"""The private Dagster APIs Maestro uses are pinned with the Dagster set."""

from __future__ import annotations

from importlib.metadata import version

from resources import dagster_private


def test_the_installed_dagster_is_the_one_the_private_apis_were_checked_against() -> None:
    """Fails on any Dagster upgrade: re-check every import in dagster_private.py, then move
    PINNED_DAGSTER_VERSION (and the pins in pyproject.toml) together."""
    assert version("dagster") == dagster_private.PINNED_DAGSTER_VERSION


def test_every_private_name_is_there() -> None:
    for name in dagster_private.__all__:
        assert getattr(dagster_private, name) is not None, name


def test_a_stored_runs_snapshot_nodes_and_compute_log_key() -> None:
    """The job snapshot of a stored run gives each node's op and tags; the LOGS_CAPTURED
    event's file key leads to the captured stdout."""
    import dagster as dg

    @dg.op(tags={"maestro/step_id": "hello", "maestro/plugin": "echo"})
    def job__hello() -> None:
        print("captured-line")

    @dg.job
    def job() -> None:
        job__hello.alias("hello")()

    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.job_snapshot_id is not None
        [node] = dagster_private.job_snapshot_nodes(instance, run.job_snapshot_id)
        assert node == (
            "hello",
            "job__hello",
            {"maestro/step_id": "hello", "maestro/plugin": "echo"},
        )
        [captured] = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED
        ).records
        data = captured.event_log_entry.dagster_event.event_specific_data
        key = dagster_private.compute_log_key(instance, result.run_id, data.file_key)
        assert b"captured-line" in instance.compute_log_manager.get_log_data(key).stdout


def test_the_private_attributes_the_executor_reads_are_there() -> None:
    """The helpers in dagster_private.py read or set three private attributes, which each
    class sets in its constructor; a Dagster that renames one fails here, not in a run."""
    for cls, attribute in (
        (dagster_private.InstanceConcurrencyContext, "_pending_timeouts"),
        (dagster_private.ActiveExecution, "_waiting_to_retry"),
        (dagster_private.PlanExecutionContext, "_event_loop"),
    ):
        assert attribute in cls.__init__.__code__.co_names, (cls.__name__, attribute)
