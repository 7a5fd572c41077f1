"""Instances to observe (SQLite or PostgreSQL homes), runs on them, and `maestro metrics serve`
in a subprocess, scraped over HTTP and parsed with the Prometheus client's own parser."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from maestro_cli import runner
from resources.plugins import BUILTIN_PLUGINS, PluginRegistry
from resources.policy import store as store_module
from resources.policy.store import store_for
from tests.support.compiling import compile_text
from tests.support.paid_plugin import paid_plugin
from tests.support.paths import PROJECT_ROOT
from tests.support.ports import free_port

TELEMETRY_OFF = "telemetry:\n  enabled: false\n"


def sqlite_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(TELEMETRY_OFF)
    return home


def empty_postgres_home(home: Path, postgres_url: str) -> Path:
    """A home on the session's database, with every run, event and store row deleted first
    (the database is shared by the session's tests)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {postgres_url}\n{TELEMETRY_OFF}"
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.wipe()
        with store_for(instance).engine.begin() as conn:
            for table in reversed(store_module.metadata.sorted_tables):
                conn.execute(table.delete())
    return home


def run_workflow(
    home: Path,
    text: str,
    tags: Mapping[str, str] | None = None,
    tmp_name: str = "workflow.yaml",
) -> dg.ExecuteInProcessResult:
    """Run a workflow in process on the instance in `home`, with the test `paid` plugin
    installed (it records its price in the cost ledger, like an LLM step)."""
    registry = PluginRegistry([*BUILTIN_PLUGINS, paid_plugin([])])
    compiled = compile_text(
        textwrap.dedent(text), filename=str(home.parent / tmp_name), registry=registry
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return compiled.job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags=dict(tags or {}),
            resources=runner.resources_for(home),
        )


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """(sample name, labels) -> value, for every sample of the exposition text."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample with exactly these labels; 0 when there is none (a counter not yet seen)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


class MetricsServer:
    """`python -m maestro_cli metrics serve` on a free loopback port."""

    def __init__(self, home: Path, extra_args: tuple[str, ...] = ()):
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "maestro_cli",
                "metrics",
                "serve",
                "--port",
                str(self.port),
                *extra_args,
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"metrics server exited: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(self.url, timeout=30)
                return
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError("metrics server did not answer in time")

    def scrape(self) -> str:
        answer = httpx.get(self.url, timeout=60)
        answer.raise_for_status()
        assert answer.headers["content-type"].startswith("text/plain")
        return answer.text

    def stop(self) -> str:
        """SIGTERM; returns what the server printed."""
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out


@contextmanager
def metrics_server(home: Path, *extra_args: str) -> Iterator[MetricsServer]:
    server = MetricsServer(home, extra_args)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def instance_of(home: Path) -> Any:
    return dg.DagsterInstance.from_config(str(home))


DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAGSTER_DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))


def code_location_env(home: Path, workflows: Path) -> dict[str, str]:
    """The environment of a `dagster`/`dagster-daemon` process loading `workflows` only."""
    return {**os.environ, "DAGSTER_HOME": str(home), "MAESTRO_WORKFLOWS_DIR": str(workflows)}


def launch(home: Path, workflows: Path, job: str) -> str:
    """`dagster job launch` through the code location: the run is queued (the instance's run
    coordinator); returns its id."""
    with instance_of(home) as instance:
        before = {r.run_id for r in instance.get_runs()}
    done = subprocess.run(
        [DAGSTER, "job", "launch", "-w", "workspace.yaml", "-j", job],
        cwd=PROJECT_ROOT,
        env=code_location_env(home, workflows),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with instance_of(home) as instance:
        [run_id] = [r.run_id for r in instance.get_runs() if r.run_id not in before]
    return run_id


@contextmanager
def running_daemon(home: Path, workflows: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run`: dequeues queued runs and launches them (a run worker process)."""
    daemon = subprocess.Popen(
        [DAGSTER_DAEMON, "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=code_location_env(home, workflows),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield daemon
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll until `predicate()` returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def run_status(home: Path, run_id: str) -> dg.DagsterRunStatus | None:
    with instance_of(home) as instance:
        run = instance.get_run_by_id(run_id)
    return run.status if run is not None else None
