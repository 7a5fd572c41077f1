"""The real stack for end-to-end tests: `maestro deploy local` (dagster-webserver +
dagster-daemon) on a fresh PostgreSQL database, a temp DAGSTER_HOME and a temp workflows folder.

One stack per test session (starting it costs ~30-60 s on two cores); the workflows below cover
what the end-to-end tests need: params, a failure, declared outputs, a tenant limited to two
runs, a schedule a few minutes ahead, and a broken file the gate sensor reports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx

from maestro_cli.deployment import postgres_env
from resources.policy.engine import PolicySet
from tests.support.paths import PROJECT_ROOT
from tests.support.policy_data import policies_with_tenant
from tests.support.ports import free_port

LIMITED_TENANT = "limited"
LIMIT = 2
WORKFLOWS = {
    "hello.yaml": """\
name: hello
description: Greets someone, then shouts.
params:
  who: { type: string, default: world }
  times: 2
steps:
  - id: greet
    run: echo
    with: { greeting: "hello {{ params.who }}", times: "{{ params.times }}" }
  - id: shout
    run: shell
    depends_on: [greet]
    with: { command: "echo shouting at {{ params.who }}" }
""",
    "fails.yaml": """\
name: fails
steps:
  - id: boom
    run: shell
    with: { command: "sh -c 'echo going down; exit 3'" }
""",
    "lineage.yaml": """\
name: lineage
steps:
  - id: extract
    run: echo
    with: { rows: 3 }
    outputs: [rows]
  - id: report
    run: echo
    with: { total: "{{ steps.extract.result.rows }}" }
    outputs:
      - { name: summary, description: The report built from the extracted rows }
""",
    "limited.yaml": f"""\
name: limited
tenant: {LIMITED_TENANT}
steps:
  - id: nap
    run: shell
    with: {{ command: "sleep 4" }}
""",
}
BROKEN = "broken.yaml"
BROKEN_TEXT = "name: broken\nstages:\n  - name: s\n    steps:\n      - run: nope\n"
BROKEN_WHERE = "broken.yaml:5:9: stages[0].steps[0].run: unknown plugin 'nope'"


def near_future_cron(lead: timedelta = timedelta(seconds=150)) -> tuple[str, datetime]:
    """A daily cron for the first whole minute at least `lead` from now (UTC), and that time."""
    at = (datetime.now(UTC) + lead).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"{at.minute} {at.hour} * * *", at


@dataclass
class Stack:
    url: str
    port: int
    home: Path
    workflows: Path
    policies: Path
    env: dict[str, str]
    log: Path
    schedule_at: datetime
    process: subprocess.Popen[bytes]

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def graphql(self, query: str, variables: dict[str, object] | None = None) -> dict:
        reply = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        reply.raise_for_status()
        body = reply.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _limited_tenant() -> dict[str, object]:
    tenant = dict(PolicySet.load().tenants["default"])
    tenant["description"] = "End-to-end tests: at most two runs at once."
    tenant["max_concurrent_runs"] = LIMIT
    return tenant


@contextmanager
def running_stack(
    root: Path,
    postgres_url: str,
    workflows: Mapping[str, str] | None = None,
    policies: Path | None = None,
) -> Iterator[Stack]:
    """Start `maestro deploy local` and wait until the UI has loaded the code location.

    Without `workflows`, the end-to-end set above (plus a schedule a few minutes ahead and a
    broken file); without `policies`, the shipped ones with the `limited` tenant."""
    folder = root / "workflows"
    folder.mkdir(parents=True)
    cron, at = near_future_cron()
    if workflows is None:
        workflows = {
            **WORKFLOWS,
            "ticking.yaml": f"name: ticking\nschedule: '{cron}'\nsteps:\n"
            "  - {id: tick, run: echo, with: {n: 1}}\n",
            BROKEN: BROKEN_TEXT,
        }
    for name, text in workflows.items():
        (folder / name).write_text(text)
    if policies is None:
        policies = policies_with_tenant(root, LIMITED_TENANT, _limited_tenant())
    home = root / "home"
    port = free_port()
    env = {
        **os.environ,
        **postgres_env(postgres_url),
        "DAGSTER_HOME": str(home),
        "MAESTRO_WORKFLOWS_DIR": str(folder),
        "MAESTRO_POLICY_DIR": str(policies),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("MAESTRO_DEFAULT_SCHEDULE_STATUS", None)  # deploy local turns schedules on
    log = root / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "maestro_cli",
                "deploy",
                "local",
                "--home",
                str(home),
                "--port",
                str(port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack = Stack(f"http://127.0.0.1:{port}", port, home, folder, policies, env, log, at, process)
    try:
        deadline = time.monotonic() + 300
        while "Dagster UI:" not in log.read_text(errors="replace"):
            assert process.poll() is None, f"maestro deploy local exited:\n{stack.log_tail()}"
            assert time.monotonic() < deadline, f"the stack did not start:\n{stack.log_tail()}"
            time.sleep(1)
        yield stack
    finally:
        stopped_cleanly = _stop(process)
    # Ctrl-C / SIGTERM stops `maestro deploy local` with both servers (nothing left listening).
    assert stopped_cleanly and process.returncode == 0, stack.log_tail()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the webserver still listens"


def _stop(process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=90)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False


def wait_for_run(instance: dg.DagsterInstance, run_id: str, timeout: float = 240) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        assert time.monotonic() < deadline, f"run {run_id} did not finish: {run and run.status}"
        time.sleep(0.5)


def step_events(stack: Stack, run_id: str) -> list[dict]:
    """The run's step events as the UI's GraphQL API gives them."""
    query = """
    query Events($runId: ID!) {
      logsForRun(runId: $runId, limit: 5000) {
        ... on EventConnection {
          events {
            __typename
            ... on MessageEvent { stepKey message }
            ... on ExecutionStepOutputEvent { outputName }
            ... on DisplayableEvent {
              metadataEntries {
                label
                ... on JsonMetadataEntry { jsonString }
                ... on TextMetadataEntry { text }
                ... on PathMetadataEntry { path }
                ... on IntMetadataEntry { intValue }
              }
            }
            ... on ExecutionStepFailureEvent { error { message } }
          }
        }
      }
    }"""
    return stack.graphql(query, {"runId": run_id})["logsForRun"]["events"]


def metadata(event: dict) -> dict[str, object]:
    values: dict[str, object] = {}
    for entry in event.get("metadataEntries", []):
        for key in ("jsonString", "text", "path", "intValue"):
            if key in entry:
                value = entry[key]
                values[entry["label"]] = json.loads(value) if key == "jsonString" else value
    return values
