"""End to end on the real stack: `maestro deploy local` runs dagster-webserver and dagster-daemon
against a fresh PostgreSQL database; these tests act as clients do, through the webserver's
GraphQL API (dagster_graphql's client) and the `maestro` command, and read the instance.

The stack is shared by the session (tests/support/stack.py lists its workflows).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from resources.defaults import artifacts_io_manager
from resources.run_tags import REQUEST_TAG, TENANT_TAG
from tests.support.cli import run_maestro
from tests.support.stack import (
    BROKEN_WHERE,
    LIMIT,
    LIMITED_TENANT,
    Stack,
    metadata,
    step_events,
    wait_for_run,
)

pytestmark = pytest.mark.timeout(900)
IN_FLIGHT = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@pytest.fixture(scope="module")
def client(e2e_stack: Stack) -> DagsterGraphQLClient:
    return DagsterGraphQLClient("127.0.0.1", port_number=e2e_stack.port)


def test_the_stack_runs_on_postgres_with_the_daemon(e2e_stack: Stack) -> None:
    with e2e_stack.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        deadline = time.monotonic() + 120
        while True:  # the daemon heartbeats once its threads run
            statuses = instance.get_daemon_statuses()
            healthy = {kind for kind, status in statuses.items() if status.healthy}
            if {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= healthy:
                break
            assert time.monotonic() < deadline, statuses
            time.sleep(1)
        pools = {
            name: instance.event_log_storage.get_concurrency_info(name).slot_count
            for name in ("llm", "ollama", "scrape")
        }
    assert pools == {"llm": 8, "ollama": 1, "scrape": 4}  # deploy/pools.yaml, set at start


def test_graphql_lists_the_compiled_jobs_and_the_gate(e2e_stack: Stack) -> None:
    data = e2e_stack.graphql(
        """{ repositoryOrError(repositorySelector: {repositoryName: "__repository__",
             repositoryLocationName: "maestro"}) {
               ... on Repository { jobs { name } schedules { name scheduleState { status } }
                                   sensors { name description } } } }"""
    )["repositoryOrError"]
    assert sorted(j["name"] for j in data["jobs"] if not j["name"].startswith("__")) == [
        "fails",
        "hello",
        "limited",
        "lineage",
        "ticking",
    ]
    assert data["schedules"] == [
        {"name": "ticking_schedule", "scheduleState": {"status": "RUNNING"}}
    ]
    [gate] = [s for s in data["sensors"] if s["name"] == "maestro_policy_gate"]
    assert {s["name"] for s in data["sensors"]} == {
        "maestro_policy_gate",
        "maestro_dead_runs",
        "maestro_run_traces",
    }
    assert str(e2e_stack.workflows / BROKEN_WHERE) in gate["description"]


def test_a_run_with_params_succeeds_with_its_outputs_and_tenant_tag(
    e2e_stack: Stack, client: DagsterGraphQLClient
) -> None:
    run_id = client.submit_job_execution(
        "hello",
        repository_location_name="maestro",
        run_config={"params": {"who": "graphql", "times": 3}},
    )
    with e2e_stack.instance() as instance:
        run = wait_for_run(instance, run_id)
    assert client.get_run_status(run_id) == dg.DagsterRunStatus.SUCCESS, e2e_stack.log_tail()
    assert run.tags[TENANT_TAG] == "default"
    assert run.run_config == {"params": {"who": "graphql", "times": 3}}
    events = step_events(e2e_stack, run_id)
    outputs = {
        e["stepKey"]: metadata(e) for e in events if e["__typename"] == "ExecutionStepOutputEvent"
    }
    assert set(outputs) == {"greet", "shout"}
    assert outputs["greet"]["plugin"] == "echo" and outputs["shout"]["plugin"] == "shell"
    assert outputs["greet"]["policy_decision_id"]
    stored = {
        e["stepKey"]: metadata(e)
        for e in events
        if e["__typename"] == "HandledOutputEvent" and e.get("metadataEntries")
    }
    assert set(stored) >= {"greet"} and stored["greet"]["serializer"] == "json"
    # The value itself, as the IO manager stored it (content-addressed, hash checked on load).
    store = artifacts_io_manager({"DAGSTER_HOME": str(e2e_stack.home)}).open_store()
    [key] = [i.key for i in store.pointers("default") if f"/runs/{run_id}/greet/" in i.key]
    value = store.load(store.read_pointer("default", key))
    assert value == {"greeting": "hello graphql", "times": 3}


def test_a_failing_workflow_ends_failure_with_the_step_error(
    e2e_stack: Stack, client: DagsterGraphQLClient
) -> None:
    run_id = client.submit_job_execution("fails", "maestro")
    with e2e_stack.instance() as instance:
        wait_for_run(instance, run_id)
    assert client.get_run_status(run_id) == dg.DagsterRunStatus.FAILURE
    [failure] = [
        e for e in step_events(e2e_stack, run_id) if e["__typename"] == "ExecutionStepFailureEvent"
    ]
    assert failure["stepKey"] == "boom"
    assert "command exited with code 3" in failure["error"]["message"] + failure["message"]
    assert "fails.yaml:3" in failure["error"]["message"] + failure["message"]


def test_the_gate_sensor_admits_a_submitted_request(e2e_stack: Stack) -> None:
    submitted = run_maestro(
        "submit",
        str(e2e_stack.workflows / "hello.yaml"),
        "--param",
        "who=gate",
        cwd=e2e_stack.home.parent,
        home=e2e_stack.home,
        env=e2e_stack.env,
    )
    assert submitted.returncode == 0, submitted.stderr
    request_id = submitted.stdout.strip()
    with e2e_stack.instance() as instance:
        deadline = time.monotonic() + 180
        while not (runs := instance.get_runs(dg.RunsFilter(tags={REQUEST_TAG: request_id}))):
            assert time.monotonic() < deadline, e2e_stack.log_tail()
            time.sleep(0.5)
        [run] = runs
        finished = wait_for_run(instance, run.run_id)
    assert finished.status == dg.DagsterRunStatus.SUCCESS
    assert finished.run_config == {"params": {"who": "gate", "times": 2}}
    listed = run_maestro(
        "requests", cwd=e2e_stack.home.parent, home=e2e_stack.home, env=e2e_stack.env
    )
    assert f"{request_id}" in listed.stdout and run.run_id in listed.stdout


def test_the_queue_holds_a_tenant_to_its_limit(
    e2e_stack: Stack, client: DagsterGraphQLClient
) -> None:
    """Six runs of a tenant whose limit is 2: never more than two in flight (sampled, and from
    the runs' own start and end times), and all six finish."""
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        with e2e_stack.instance() as instance:
            tenant_runs = dg.RunsFilter(tags={TENANT_TAG: LIMITED_TENANT}, statuses=IN_FLIGHT)
            while not done.is_set():
                samples.append(instance.get_runs_count(tenant_runs))
                time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run_ids = [client.submit_job_execution("limited", "maestro") for _ in range(6)]
        with e2e_stack.instance() as instance:
            finished = [wait_for_run(instance, run_id, timeout=400) for run_id in run_ids]
            records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
    finally:
        done.set()
        sampler.join(timeout=10)
    assert [r.status for r in finished] == [dg.DagsterRunStatus.SUCCESS] * 6
    assert samples and max(samples) <= LIMIT
    # From the recorded times: how many ran at once, at every start.
    spans = [(r.start_time, r.end_time) for r in records]
    assert all(start and end for start, end in spans)
    overlap = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert overlap == LIMIT  # the queue did run two at a time, and never three


def test_a_schedule_with_a_near_future_cron_fires_a_run(e2e_stack: Stack) -> None:
    """The stack's `ticking` workflow is scheduled for a minute ~2.5 minutes after it started."""
    with e2e_stack.instance() as instance:
        deadline = e2e_stack.schedule_at.timestamp() + 240
        runs = dg.RunsFilter(tags={"dagster/schedule_name": "ticking_schedule"})
        while not (fired := instance.get_runs(runs)):
            assert datetime.now(UTC).timestamp() < deadline, e2e_stack.log_tail()
            time.sleep(2)
        [run] = fired
        finished = wait_for_run(instance, run.run_id)
        assert finished.status == dg.DagsterRunStatus.SUCCESS
        assert finished.job_name == "ticking"
        record = instance.get_run_record_by_id(run.run_id)
        assert record is not None and record.create_timestamp.timestamp() >= (
            e2e_stack.schedule_at.timestamp() - 1
        )
