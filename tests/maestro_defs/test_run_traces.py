"""The `maestro_run_traces` sensor: a run on the multiprocess executor, launched without
`maestro run` (as the UI's launcher and the daemon do), gets its root span once, under which its
step processes' spans already hang; a run whose own process recorded it gets no second one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from maestro_defs.traces import SENSOR_NAME
from maestro_defs.workflows import build_definitions, load_workflows
from resources.observability import tracing
from resources.run_tags import TRACEPARENT_TAG
from tests.support.observed import sqlite_home
from tests.support.otlp_receiver import Received, ReceivedSpan, otlp_receiver
from tests.support.paths import PROJECT_ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))

PROCESSES = """\
    name: traced-processes
    version: 1.4.0
    tenant: acme
    executor: multiprocess
    stages:
      - name: fan
        parallel:
          - id: left
            run: echo
            with: {side: left}
          - id: right
            run: shell
            with: {command: [sh, -c, "exit 3"]}
"""

THREADS = """\
    name: traced-threads
    steps:
      - id: only
        run: echo
        with: {side: only}
"""


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict[str, str], Received]]:
    """A loopback OTLP receiver, and this process (the code server's place) tracing into it."""
    with otlp_receiver() as (endpoint, received):
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "maestro-test",
        }
        for name, value in otel.items():
            monkeypatch.setenv(name, value)
        assert tracing.configure()
        try:
            yield otel, received
        finally:
            tracing.disable()


def _execute(job: str, folder: Path, home: Path, otel: dict[str, str]) -> None:
    """`dagster job execute`: the run's process is Dagster's, no `maestro run` around it."""
    env = {**os.environ, **otel, "DAGSTER_HOME": str(home), "MAESTRO_WORKFLOWS_DIR": str(folder)}
    done = subprocess.run(
        [DAGSTER, "job", "execute", "-m", "maestro_defs.definitions", "-a", "defs", "-j", job],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "RUN_SUCCESS" in done.stderr or "RUN_FAILURE" in done.stderr, done.stderr[-3000:]


def _roots(received: Received, run_id: str) -> list[ReceivedSpan]:
    trace_id = run_id.replace("-", "")
    return [s for s in received.spans if s.trace_id == trace_id and s.name.startswith("workflow")]


def test_a_multiprocess_run_gets_its_root_span_from_the_sensor_once(
    tmp_path: Path, receiver: tuple[dict[str, str], Received]
) -> None:
    otel, received = receiver
    folder, home = tmp_path / "workflows", sqlite_home(tmp_path / "home")
    folder.mkdir()
    (folder / "processes.yaml").write_text(textwrap.dedent(PROCESSES))
    (folder / "threads.yaml").write_text(textwrap.dedent(THREADS))
    _execute("traced_processes", folder, home, otel)
    _execute("traced_threads", folder, home, otel)
    defs = build_definitions(load_workflows([folder]))
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = {run.job_name: run for run in instance.get_runs()}
        processes, threads = runs["traced_processes"], runs["traced_threads"]
        assert processes.status == dg.DagsterRunStatus.FAILURE
        assert not _roots(received, processes.run_id)  # what the sensor is for
        assert TRACEPARENT_TAG not in processes.tags
        assert len(_roots(received, threads.run_id)) == 1  # the threads executor's own
        results = [sensor(dg.build_sensor_context(instance=instance)) for _ in range(3)]
        tagged = instance.get_run_by_id(processes.run_id)
    assert isinstance(results[0], dg.SkipReason)
    assert results[0].skip_message == f"recorded the root span of {processes.run_id}"
    assert all("no ended run" in str(r.skip_message) for r in results[1:])  # type: ignore[union-attr]
    (root,) = _roots(received, processes.run_id)
    assert len(_roots(received, threads.run_id)) == 1  # left alone: it carries the tag
    assert root.name == "workflow traced-processes" and root.parent_span_id == ""
    assert root.status_code == 2  # ERROR: the run failed
    assert root.attributes["maestro.run.status"] == "FAILURE"
    assert root.attributes["maestro.tenant"] == "acme"
    assert root.attributes["maestro.workflow.version"] == "1.4.0"
    assert tagged is not None and tagged.tags[TRACEPARENT_TAG] == (
        f"00-{root.trace_id}-{root.span_id}-01"
    )
    steps = [s for s in received.spans if s.name in ("step left", "step right")]
    assert len(steps) == 2
    assert {s.parent_span_id for s in steps} == {root.span_id}
    assert len({s.resource["process.pid"] for s in steps} | {root.resource["process.pid"]}) == 3


def test_through_the_daemon_a_ui_launched_multiprocess_run_gets_its_root_span(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real stack (`maestro deploy local`, PostgreSQL): a run submitted over GraphQL, as the
    UI's Launchpad does, runs its steps in processes of their own; the daemon's tick of the
    code location's sensor sends its root span. `postgres_url` marks the test `services`."""
    from dagster_graphql import DagsterGraphQLClient

    from maestro_cli.deployment import postgres_env
    from tests.support.postgres import fresh_database
    from tests.support.stack import running_stack, wait_for_run

    with otlp_receiver() as (endpoint, received), fresh_database() as url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)  # the stack's environment
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        for name, value in postgres_env(url).items():
            monkeypatch.setenv(name, value)
        workflows = {"processes.yaml": textwrap.dedent(PROCESSES)}
        with (
            running_stack(tmp_path / "stack", url, workflows) as stack,
            stack.instance() as instance,
        ):
            client = DagsterGraphQLClient("127.0.0.1", port_number=stack.port)
            run_id = client.submit_job_execution("traced_processes", "maestro")
            run = wait_for_run(instance, run_id)
            assert run.status == dg.DagsterRunStatus.FAILURE, stack.log_tail()
            deadline = time.monotonic() + 120
            while not _roots(received, run_id):
                assert time.monotonic() < deadline, stack.log_tail()
                time.sleep(0.5)
            tagged = instance.get_run_by_id(run_id)
    (root,) = _roots(received, run_id)
    assert root.name == "workflow traced-processes" and root.status_code == 2
    steps = [s for s in received.spans if s.name in ("step left", "step right")]
    assert len(steps) == 2 and {s.parent_span_id for s in steps} == {root.span_id}
    assert tagged is not None and tagged.tags[TRACEPARENT_TAG].split("-")[2] == root.span_id
