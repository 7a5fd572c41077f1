"""The Dagster code location: what the UI, `dagster` CLI and daemon load."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import httpx
import yaml

from maestro_defs.workflows import build_definitions, load_workflows
from tests.support.paths import PROJECT_ROOT
from tests.support.ports import free_port
from tests.support.real_runs import process_alive

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "DAGSTER_HOME": str(home), **extra}


def test_workspace_validates(tmp_path: Path) -> None:
    done = subprocess.run(
        [DAGSTER, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "passed validation" in done.stderr + done.stdout


def test_a_broken_workflow_fails_validation_with_file_line_and_message(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "good.yaml").write_text("name: good\nsteps:\n  - run: echo\n")
    (folder / "broken.yaml").write_text(
        "name: broken\nstages:\n  - name: s\n    steps:\n      - run: nope\n"
    )
    done = subprocess.run(
        [DAGSTER, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path, MAESTRO_WORKFLOWS_DIR=str(folder)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"{folder / 'broken.yaml'}:5:9: stages[0].steps[0].run: unknown plugin 'nope'" in (
        done.stderr + done.stdout
    )


def test_loading_the_code_location_imports_neither_litellm_nor_scrapy() -> None:
    probe = (
        "import sys\n"
        "from maestro_defs.definitions import defs\n"
        "loaded = defs()\n"
        "heavy = sorted(m for m in ('litellm', 'scrapy', 'twisted') if m in sys.modules)\n"
        "print(len(loaded.jobs), heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    count, heavy = done.stdout.strip().split(" ", 1)
    assert int(count) >= 1
    assert heavy == "[]"


def test_llm_workflows_load_without_importing_llm_clients(tmp_path: Path) -> None:
    """Compiling LLM steps (templates, response formats) must not import litellm or ollama:
    their import happens inside a running step."""
    (tmp_path / "llm.yaml").write_text(
        "name: llm\nsteps:\n"
        "  - run: litellm.generate\n"
        "    with: {model: gpt-4o-mini, prompt_template: code_review, cache: true,\n"
        "           response_format: {type: object, properties: {a: {type: string}}}}\n"
        "  - run: ollama.chat\n"
        "    with: {model: 'llama3.2:3b', prompt: hi, format: {type: object}}\n"
    )
    probe = (
        "import sys\n"
        "from maestro_defs.definitions import defs\n"
        "loaded = defs()\n"
        "names = ('litellm', 'ollama', 'openai', 'diskcache', 'redis')\n"
        "print(len(loaded.jobs), sorted(m for m in names if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MAESTRO_WORKFLOWS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "1 []"


def test_every_problem_in_every_file_is_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nsteps:\n  - run: echo\n")
    (tmp_path / "a2.yaml").write_text("name: a2\nsteps:\n  - run: nope\n")
    (tmp_path / "b.yaml").write_text("name: b\nsteps:\n  - run: echo\n    depends_on: [ghost]\n")
    (tmp_path / "c.yaml").write_text("name: a\nsteps:\n  - run: echo\n")
    loaded = load_workflows([tmp_path])
    messages = [str(d) for d in loaded.problems]
    assert any(
        m.startswith(f"{tmp_path / 'a2.yaml'}:3:5: steps[0].run: unknown plugin") for m in messages
    )
    assert any(
        m.startswith(f"{tmp_path / 'b.yaml'}:4:18: steps[0].depends_on[0]") for m in messages
    )
    duplicate = f"{tmp_path / 'c.yaml'}:1:1: name: job 'a' is already defined by"
    assert f"{duplicate} {tmp_path / 'a.yaml'}:1 (a)" in messages
    assert [w.plan.spec.name for w in loaded.workflows] == ["a"]


def test_definitions_carry_jobs_schedules_tags_retries_and_launchpad_params(tmp_path: Path) -> None:
    (tmp_path / "nightly.yaml").write_text(
        textwrap.dedent(
            """
            name: nightly-report
            version: 2.1.0
            tenant: acme
            timeout: 1h
            params:
              region: {type: string, default: eu}
              limit: {type: integer, required: true}
            schedule:
              - {cron: "0 2 * * *", params: {limit: 10}, timezone: Europe/Paris}
            stages:
              - name: fetch
                steps:
                  - id: pull
                    run: echo
                    retry: {max_attempts: 4, backoff: 2s, exponential: true}
                    resources: {cpu: "2", memory: 4Gi}
                    pool: reports
                    with: {region: "{{ params.region }}", limit: "{{ params.limit }}"}
            """
        )
    )
    defs = build_definitions(load_workflows([tmp_path]))
    job = defs.resolve_job_def("nightly_report")
    assert job.tags["maestro/workflow"] == "nightly-report"
    assert job.metadata["maestro/version"].value == "2.1.0"
    assert job.tags["maestro/tenant"] == "acme"
    assert job.tags["dagster/max_runtime"] == "3600"
    op = job.graph.node_named("pull").definition
    assert op.tags["maestro/stage"] == "fetch"
    assert op.tags["maestro/plugin"] == "echo"
    assert op.tags["maestro/cpu"] == "2"
    assert op.pool == "reports"
    assert op.retry_policy == dg.RetryPolicy(
        max_retries=3, delay=2.0, backoff=dg.Backoff.EXPONENTIAL
    )
    params = job.run_config_schema.config_type.fields["params"]
    assert params.is_required
    assert set(params.config_type.fields) == {"region", "limit"}
    assert params.config_type.fields["region"].default_value == "eu"
    schedule = defs.resolve_schedule_def("nightly_report_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Paris"
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, run_config={"params": {"limit": 10}})
    assert result.output_for_node("pull") == {"region": "eu", "limit": 10}


def test_dagster_job_execute_runs_a_workflow_with_the_multiprocess_executor(
    tmp_path: Path,
) -> None:
    """The `dagster` CLI path, on the executor MAESTRO_EXECUTOR names for workflows that name
    none: a subprocess per step, parallel stage included."""
    env = _env(tmp_path, MAESTRO_EXECUTOR="multiprocess")
    done = subprocess.run(
        [
            DAGSTER,
            "job",
            "execute",
            "-m",
            "maestro_defs.definitions",
            "-a",
            "defs",
            "-j",
            "maestro_demo",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        [run] = instance.get_runs()
        assert run.job_name == "maestro_demo"
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["maestro/workflow"] == "maestro-demo"
        started = {
            r.event_log_entry.step_key
            for r in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
        }
        engine = [e.message or "" for e in instance.all_logs(run.run_id)]
    assert {"python_version", "workdir", "summary", "greet_teams[2]"} <= started
    assert any("multiprocess executor: parent process" in m for m in engine), engine
    assert 'Launching subprocess for "summary".' in engine


def test_a_launched_run_is_queued_then_run_by_the_daemon(tmp_path: Path) -> None:
    """The UI's path: `dagster job launch` queues the run; the daemon dequeues and runs it, on
    the threads executor (every step in the run's process; the parallel stage at once)."""
    env = _env(tmp_path)
    launch = subprocess.run(
        [DAGSTER, "job", "launch", "-w", "workspace.yaml", "-j", "maestro_demo"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert launch.returncode == 0, launch.stderr[-3000:]
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            [run] = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.QUEUED or run.status.value.startswith("START")
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                run = instance.get_run_by_id(run.run_id)
                if run is not None and run.is_finished:
                    break
                time.sleep(1)
            assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
            engine = [e.message or "" for e in instance.all_logs(run.run_id)]
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert any(m.startswith("Executing steps with the threads executor") for m in engine), engine
    assert not any("Launching subprocess" in m for m in engine)


def test_the_web_ui_serves_the_job_and_its_launchpad_params(tmp_path: Path) -> None:
    """Ask the real webserver's GraphQL API what the UI shows: the job, its ops, its params."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-webserver")),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    selector = (
        '{pipelineName: "maestro_demo", repositoryName: "__repository__", '
        'repositoryLocationName: "maestro"}'
    )
    query = (
        f"{{ pipelineOrError(params: {selector}) {{ ... on Pipeline {{ solids {{ name }} }} }} "
        f"runConfigSchemaOrError(selector: {selector}) "
        "{ ... on RunConfigSchema { rootDefaultYaml } } }"
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10
                ).json()["data"]
                if answer["pipelineOrError"].get("solids"):
                    break
            except (httpx.HTTPError, KeyError, TypeError):
                pass
            assert time.monotonic() < deadline, "the webserver did not serve the job in time"
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ops = {solid["name"] for solid in answer["pipelineOrError"]["solids"]}
    assert {"python_version", "workdir", "greet_teams__items", "greet_teams", "summary"} <= ops
    assert yaml.safe_load(answer["runConfigSchemaOrError"]["rootDefaultYaml"]) == {
        "params": {"shout": False, "teams": ["platform", "data", "ml"]}
    }


def test_terminating_a_daemon_launched_run_stops_its_shell_steps_and_cancels_it(
    tmp_path: Path,
) -> None:
    """The UI's Terminate: `run_launcher.terminate(run_id)` (what the GraphQL mutation calls)
    on a run the daemon launched; the run worker turns it into an interrupt the threads
    executor acts on."""
    pids, folder = tmp_path / "pids", tmp_path / "workflows"
    pids.mkdir()
    folder.mkdir()
    marker = tmp_path / "after-ran"
    (folder / "long.yaml").write_text(
        textwrap.dedent(
            f"""
            name: long-run
            stages:
              - name: work
                parallel:
                  - id: one
                    run: shell
                    with: {{command: ["sh", "-c", "echo $$ > {pids}/one; exec sleep 120"]}}
                  - id: two
                    run: shell
                    with: {{command: ["sh", "-c", "echo $$ > {pids}/two; exec sleep 120"]}}
              - name: then
                steps:
                  - {{id: after, run: shell, with: {{command: ["touch", "{marker}"]}}}}
            """
        )
    )
    env = _env(tmp_path, MAESTRO_WORKFLOWS_DIR=str(folder))
    launch = subprocess.run(
        [DAGSTER, "job", "launch", "-w", "workspace.yaml", "-j", "long_run"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert launch.returncode == 0, launch.stderr[-3000:]
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not ((pids / "one").exists() and (pids / "two").exists()):
            assert time.monotonic() < deadline, "the shell steps never started"
            time.sleep(0.5)
        time.sleep(0.5)  # the pid files are written before exec: let sleep replace sh
        children = [int((pids / name).read_text()) for name in ("one", "two")]
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            [run] = instance.get_runs()
            assert instance.run_launcher.terminate(run.run_id)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                run = instance.get_run_by_id(run.run_id)  # type: ignore[assignment]
                if run is not None and run.is_finished:
                    break
                time.sleep(0.5)
            assert run is not None and run.status == dg.DagsterRunStatus.CANCELED
            found = [e for e in instance.all_logs(run.run_id) if e.dagster_event is not None]
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert not any(process_alive(child) for child in children), "a shell command outlived it"
    types = {(e.step_key, e.dagster_event.event_type_value) for e in found}  # type: ignore[union-attr]
    assert {("one", "STEP_FAILURE"), ("two", "STEP_FAILURE")} <= types
    assert ("after", "STEP_START") not in types
    assert not marker.exists()
