"""The OPA server goes away: at the start of a run, or in the middle of one (the stand-in
stopped between two steps). Steps fail closed ("policy engine unavailable", not run), the gate
keeps requests waiting, and once the server is back on its port, re-execution from failure
completes and the waiting requests are admitted, each once."""

from __future__ import annotations

import contextlib
import http.server
import socket
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from maestro_defs.gate import SENSOR_NAME
from maestro_defs.workflows import build_definitions, load_workflows
from resources.policy.engine import OpaServerPolicyEngine, PolicyEngineResource, PolicySet
from resources.policy.store import LAUNCHED, PENDING, store_for
from tests.resources.policy.test_policy_gate import (
    _launch,
    _run_requests,
    submit,
)
from tests.resources.policy.test_policy_gate import gate_instance as gate_instance
from tests.resources.policy.test_policy_gate import workflows_dir as workflows_dir
from tests.support.opa_standin import OpaStandIn, handler_for
from tests.support.ports import free_port
from tests.support.reexecution import reconstructable_workflow


class RestartableOpa:
    """The OPA stand-in on a fixed port, stopped and started again with its policies kept (an
    OPA server that loads its bundle at start-up)."""

    def __init__(self) -> None:
        self.state = OpaStandIn()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    def start(self) -> RestartableOpa:
        owner = self

        class Handler(handler_for(self.state)):  # type: ignore[misc]
            def setup(self) -> None:
                super().setup()
                owner._connections.add(self.connection)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None
        for connection in self._connections:  # a stopped server keeps no keep-alive open
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._connections.clear()


@pytest.fixture
def opa() -> Any:
    server = RestartableOpa().start()
    OpaServerPolicyEngine(server.url).push(PolicySet.load())
    yield server
    server.stop()


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_stopped_opa_server_mid_run_fails_the_next_step_closed_and_a_reexecution_completes(
    tmp_path: Path, opa: RestartableOpa
) -> None:
    """1 fault (the server stopped while step `first` runs), 2 runs (the run, its
    re-execution from failure)."""
    started, go, canary = tmp_path / "started", tmp_path / "go", tmp_path / "canary"
    workflow = tmp_path / "mid.yaml"
    workflow.write_text(
        textwrap.dedent(
            f"""
            name: mid-run
            steps:
              - id: first
                run: shell
                with:
                  command: "sh -c 'touch {started}; while [ ! -e {go} ]; do sleep 0.05; done'"
              - id: second
                run: shell
                depends_on: [first]
                retry: {{max_attempts: 3}}
                with: {{command: "touch {canary}"}}
            """
        )
    )
    job = reconstructable_workflow(str(workflow), str(tmp_path / "artifacts"), opa_url=opa.url)
    with dg.instance_for_test() as instance:
        outcome: dict[str, Any] = {}

        def execute() -> None:
            with dg.execute_job(job, instance=instance, raise_on_error=False) as result:
                outcome["run_id"], outcome["success"] = result.run_id, result.success

        runner = threading.Thread(target=execute)
        runner.start()
        _wait_for(started)  # `first` was admitted and runs: now the policy engine goes away
        opa.stop()
        go.touch()
        runner.join(120)
        assert not runner.is_alive()
        assert outcome["success"] is False
        assert not canary.exists()  # `second` was never run
        failures = [
            e
            for e in instance.all_logs(outcome["run_id"])
            if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_FAILURE"
        ]
        (event,) = failures
        assert event.dagster_event.step_key == "second"
        data = event.dagster_event.step_failure_data.user_failure_data
        assert f"policy engine unavailable: {opa.url}" in data.description
        assert data.metadata["error_kind"].value == "policy"
        restarts = [
            e
            for e in instance.all_logs(outcome["run_id"])
            if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_RESTARTED"
        ]
        assert restarts == []  # refused, not retried against a dead engine
        refused = [
            d for d in store_for(instance).decisions(run_id=outcome["run_id"]) if not d.allow
        ]
        assert [d.step_id for d in refused] == ["second"]  # the refusal is on record

        opa.start()  # back on the same port
        options = dg.ReexecutionOptions.from_failure(outcome["run_id"], instance)
        with dg.execute_job(
            job, instance=instance, reexecution_options=options, raise_on_error=False
        ) as again:
            assert again.success
        assert canary.exists()


def test_the_gate_keeps_requests_waiting_while_opa_is_down_and_admits_them_once_it_is_back(
    gate_instance: dg.DagsterInstance,
    workflows_dir: Path,
    opa: RestartableOpa,
) -> None:
    """3 ticks against a stopped server (3 faults), then 2 requests admitted: 2 runs."""
    resource = PolicyEngineResource(opa_url=opa.url, timeout_s=0.5)
    defs = build_definitions(load_workflows([workflows_dir]), {"policy": resource})
    sensor = defs.resolve_sensor_def(SENSOR_NAME)

    def tick() -> Any:
        context = dg.build_sensor_context(
            instance=gate_instance,
            definitions=defs,
            sensor_name=SENSOR_NAME,
            resources={"policy": resource},
        )
        return sensor(context)

    opa.stop()
    ids = [submit(workflows_dir / "hello.yaml", gate_instance, params={"who": w}) for w in "ab"]
    store = store_for(gate_instance)
    for _ in range(3):
        result = tick()
        assert isinstance(result, dg.SkipReason)
        assert "policy engine unavailable" in (result.skip_message or "")
        assert [store.request(i).status for i in ids] == [PENDING, PENDING]  # type: ignore[union-attr]
    # Each wait is on record as the engine being unavailable, never as a refusal of its own.
    waits = [d for d in store.decisions() if d.request_id]
    assert len(waits) == 6 and not any(d.allow for d in waits)
    assert all("policy engine unavailable" in " ".join(d.reasons) for d in waits)

    opa.start()
    requests = _run_requests(tick())
    assert sorted(r.tags["maestro/request_id"] for r in requests) == sorted(ids)
    for request in requests:
        assert _launch(defs, gate_instance, request).success
    assert _run_requests(tick()) == []  # each request became one run, once
    assert [store.request(i).status for i in ids] == [LAUNCHED, LAUNCHED]  # type: ignore[union-attr]
