"""PostgreSQL (a throwaway cluster of the test's own) stopped and started while a request
waits in the gate and a `maestro run` is in the middle of a step: afterwards the run is
finished or clearly failed (and its re-execution from failure completes), and the gate's
requests and decisions are all there and each becomes one run."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from maestro_defs.gate import SENSOR_NAME
from maestro_defs.workflows import build_definitions, load_workflows
from resources.liveness import DEAD_RUN_GRACE_ENV, HEARTBEAT_INTERVAL_ENV, mark_dead_runs
from resources.policy import store as store_module
from resources.policy.store import ADMITTED, LAUNCHED, store_for
from tests.resources.policy.test_policy_gate import _launch, _run_requests, submit
from tests.support.cli import start_maestro
from tests.support.compiling import bound_resources
from tests.support.observed import empty_postgres_home
from tests.support.paths import PROJECT_ROOT
from tests.support.pg_cluster import ThrowawayPostgres
from tests.support.reexecution import reconstructable_workflow

FAST = {DEAD_RUN_GRACE_ENV: "3", HEARTBEAT_INTERVAL_ENV: "0.5"}


@pytest.fixture
def pg() -> Iterator[ThrowawayPostgres]:
    # Not under pytest's tmp_path: its parents are closed to the `postgres` user.
    folder = Path(tempfile.mkdtemp(prefix="maestro-pg-"))
    cluster = ThrowawayPostgres(folder)
    cluster.start()
    yield cluster
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("outage", [2, 20], ids=["short", "long"])
def test_postgres_restarted_under_a_running_run_and_a_waiting_request_loses_nothing(
    tmp_path: Path, pg: ThrowawayPostgres, outage: float
) -> None:
    """1 fault (PostgreSQL stopped for `outage` seconds, then started), 3 or 4 runs (the
    interrupted one, its re-execution if it failed, two gate requests). Dagster's storage
    retries its connections, which rides out a short outage; a long one fails the run."""
    home = empty_postgres_home(tmp_path / "home", pg.url)
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "hello.yaml").write_text(
        "name: hello\nparams: {who: {type: string, default: world}}\nsteps:\n"
        '  - {id: greet, run: echo, with: {greeting: "hello {{ params.who }}"}}\n'
    )
    started, go, after = tmp_path / "started", tmp_path / "go", tmp_path / "after"
    workflow = tmp_path / "wait.yaml"
    workflow.write_text(
        textwrap.dedent(
            f"""
            name: wait
            steps:
              - id: first
                run: shell
                with:
                  command: "touch {started}; while [ ! -e {go} ]; do sleep 0.05; done"
                  shell: true
              - id: second
                run: shell
                depends_on: [first]
                with: {{command: "touch {after}"}}
            """
        )
    )
    defs = build_definitions(load_workflows([folder]), bound_resources())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        requests = [submit(folder / "hello.yaml", instance, params={"who": w}) for w in "ab"]
        sensor = defs.resolve_sensor_def(SENSOR_NAME)

        def tick() -> list[dg.RunRequest]:
            context = dg.build_sensor_context(
                instance=instance,
                definitions=defs,
                sensor_name=SENSOR_NAME,
                resources={"policy": defs.resources["policy"]},
            )
            return _run_requests(sensor(context))

        assert len(tick()) == 2  # admitted, not launched yet: queued when the database goes
        store = store_for(instance)
        assert [store.request(r).status for r in requests] == [ADMITTED, ADMITTED]  # type: ignore[union-attr]

    process = start_maestro("run", str(workflow), cwd=PROJECT_ROOT, home=home, env=FAST)
    _wait_for(started, process)
    pg.stop()
    go.touch()
    time.sleep(outage)  # the step ends while the database is down
    pg.start()
    output, _ = process.communicate(timeout=240)

    store_module._STORES.clear()  # a restarted daemon: nothing kept in memory
    with dg.DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + 60
        runs = [r for r in instance.get_runs() if r.job_name == "wait"]
        (run,) = runs
        while not instance.get_run_by_id(run.run_id).is_finished:  # type: ignore[union-attr]
            mark_dead_runs(instance, grace=3)
            assert time.monotonic() < deadline, "the interrupted run never ended"
            time.sleep(0.5)
        run = instance.get_run_by_id(run.run_id)
        assert run is not None
        if outage > 10:  # far longer than the storage's connection retries
            assert run.status == dg.DagsterRunStatus.FAILURE, output
            assert "FAILURE" in output and process.returncode != 0, output
        if run.status != dg.DagsterRunStatus.SUCCESS:
            assert run.status == dg.DagsterRunStatus.FAILURE, output
            job = reconstructable_workflow(str(workflow), str(home / "artifacts"))
            options = dg.ReexecutionOptions.from_failure(run.run_id, instance)
            with dg.execute_job(job, instance=instance, reexecution_options=options) as again:
                assert again.success
        assert after.exists()

        again_requests = tick()  # the admitted requests are still there, asked for again
        assert sorted(r.run_key for r in again_requests) == sorted(requests)  # type: ignore[type-var]
        for request in again_requests:
            assert _launch(defs, instance, request).success
        assert tick() == []
        store = store_for(instance)
        assert [store.request(r).status for r in requests] == [LAUNCHED, LAUNCHED]  # type: ignore[union-attr]
        gate_decisions = [d for d in store.decisions() if d.request_id]
        assert sorted(d.request_id for d in gate_decisions) == sorted(requests)  # type: ignore[type-var]
