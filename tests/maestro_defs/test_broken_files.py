"""One broken workflow file stops nothing else: the rest loads, schedules and the gate keep
working, and the problem shows where a Dagster user looks (the load log, the gate sensor)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from maestro_defs.gate import SENSOR_NAME
from maestro_defs.workflows import build_definitions, load_workflows
from resources.policy.gate import enqueue
from resources.policy.store import REFUSED, store_for
from tests.support.cli import run_maestro
from tests.support.compiling import bound_resources
from tests.support.paths import PROJECT_ROOT
from tests.support.ports import free_port

GOOD = "name: good\nschedule: '0 3 * * *'\nsteps:\n  - {id: hello, run: echo, with: {x: 1}}\n"
BROKEN = "name: broken\nstages:\n  - name: s\n    steps:\n      - run: nope\n"
BROKEN_LINE = "broken.yaml:5:9: stages[0].steps[0].run: unknown plugin 'nope'"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "good.yaml").write_text(GOOD)
    (workflows / "broken.yaml").write_text(BROKEN)
    return workflows


def _env(tmp_path: Path, folder: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "DAGSTER_HOME": str(home), "MAESTRO_WORKFLOWS_DIR": str(folder), **extra}


def test_the_good_workflows_load_and_the_gate_sensor_shows_the_broken_file(folder: Path) -> None:
    defs = build_definitions(load_workflows([folder]), bound_resources())
    assert [j.name for j in defs.jobs] == ["good"]
    assert defs.resolve_schedule_def("good_schedule").cron_schedule == "0 3 * * *"
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert "1 workflow file(s) did not load" in (sensor.description or "")
    assert f"{folder / BROKEN_LINE}" in (sensor.description or "")
    with dg.instance_for_test() as instance:
        request = enqueue(
            instance,
            tenant="default",
            workflow="broken",
            job_name="broken",
            source_file=str(folder / "broken.yaml"),
            params={},
        )
        context = dg.build_sensor_context(
            instance=instance,
            sensor_name=SENSOR_NAME,
            resources={"policy": defs.resources["policy"]},
        )
        tick = sensor(context)
        assert isinstance(tick, dg.SkipReason)
        assert f"{folder / BROKEN_LINE}" in (tick.skip_message or "")
        refused = store_for(instance).request(request)
        assert refused is not None and refused.status == REFUSED
        assert refused.reasons[0].startswith(f"broken_workflow: {folder / 'broken.yaml'} does not")
        assert f"{folder / BROKEN_LINE}" in refused.reasons[0]


def test_the_load_warns_and_strict_loading_fails(tmp_path: Path, folder: Path) -> None:
    probe = "from maestro_defs.definitions import defs\nprint([j.name for j in defs().jobs])\n"
    lenient = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path, folder),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lenient.returncode == 0, lenient.stderr
    assert lenient.stdout.strip() == "['good']"
    assert "1 workflow file(s) did not load; every other workflow did" in lenient.stderr
    assert f"{folder / BROKEN_LINE}" in lenient.stderr
    strict = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path, folder, MAESTRO_STRICT_LOAD="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert strict.returncode != 0
    assert f"{folder / BROKEN_LINE}" in strict.stderr


def _graphql(port: int, query: str) -> dict:
    return httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10).json()


def test_under_the_webserver_and_the_daemon(tmp_path: Path, folder: Path) -> None:
    """The UI's code location has the good job, its schedule and the gate; the gate sensor's
    description names the broken file's line; `maestro submit` refuses the broken file at
    once and the daemon's gate runs the good one."""
    env = _env(tmp_path, folder)
    refused = run_maestro(
        "submit", str(folder / "broken.yaml"), cwd=tmp_path, home=tmp_path / "home", env=env
    )
    assert refused.returncode == 1 and BROKEN_LINE in refused.stderr
    submitted = run_maestro(
        "submit", str(folder / "good.yaml"), cwd=tmp_path, home=tmp_path / "home", env=env
    )
    assert submitted.returncode == 0, submitted.stderr
    port = free_port()
    bin_dir = Path(sys.executable).parent
    serve = ["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    webserver = subprocess.Popen(
        [str(bin_dir / "dagster-webserver"), *serve],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    daemon = subprocess.Popen(
        [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = (
        '{ repositoryOrError(repositorySelector: {repositoryName: "__repository__", '
        'repositoryLocationName: "maestro"}) { ... on Repository { jobs { name } '
        "schedules { name } sensors { name description } } } }"
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                repository = _graphql(port, query)["data"]["repositoryOrError"]
                if "jobs" in repository:
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            assert time.monotonic() < deadline, "the webserver did not load the code location"
            time.sleep(1)
        assert [j["name"] for j in repository["jobs"]] == ["good"]
        assert [s["name"] for s in repository["schedules"]] == ["good_schedule"]
        [gate] = [s for s in repository["sensors"] if s["name"] == SENSOR_NAME]
        assert {s["name"] for s in repository["sensors"]} == {
            SENSOR_NAME,
            "maestro_dead_runs",
            "maestro_run_traces",
        }
        assert gate["name"] == SENSOR_NAME and f"{folder / BROKEN_LINE}" in gate["description"]
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                runs = instance.get_runs()
                if runs and runs[0].is_finished:
                    break
                time.sleep(1)
            [run] = instance.get_runs()
            assert run.job_name == "good" and run.status == dg.DagsterRunStatus.SUCCESS
    finally:
        for process in (daemon, webserver):
            process.terminate()
            process.wait(timeout=30)
