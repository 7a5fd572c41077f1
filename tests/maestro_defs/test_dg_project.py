"""The code location as a dg project: `dg list defs`, `dg check defs` and `dg dev` load the
MaestroWorkflows component declared in maestro_defs/defs/workflows/defs.yaml."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.paths import PROJECT_ROOT
from tests.support.ports import free_port

DG = str(Path(sys.executable).with_name("dg"))


def _env(tmp_path: Path, workflows: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MAESTRO_WORKFLOWS_DIR": str(workflows),
        "VIRTUAL_ENV": str(Path(sys.executable).parents[1]),
    }


def _workflows(tmp_path: Path, broken: bool = False) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "one.yaml").write_text("name: one\nsteps:\n  - {id: summary, run: echo}\n")
    (folder / "two.yaml").write_text("name: two\nsteps:\n  - {id: summary, run: echo}\n")
    if broken:
        (folder / "bad.yaml").write_text("name: bad\nsteps:\n  - {id: a, run: nope}\n")
    return folder


def _dg(tmp_path: Path, workflows: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DG, *args],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path, workflows),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_dg_list_defs_shows_every_workflow_and_the_gate(tmp_path: Path) -> None:
    listed = _dg(tmp_path, _workflows(tmp_path), "list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assert [j["name"] for j in defs["jobs"]] == ["one", "two"]
    assert [s["name"] for s in defs["sensors"]] == [
        "maestro_dead_runs",
        "maestro_policy_gate",
        "maestro_run_traces",
    ]
    assert {r["name"] for r in defs["resources"]} >= {"io_manager", "policy"}


def test_dg_check_defs_passes_and_fails_on_a_broken_file(tmp_path: Path) -> None:
    good = _dg(tmp_path, _workflows(tmp_path), "check", "defs")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _dg(tmp_path, _workflows(tmp_path, broken=True), "check", "defs")
    assert bad.returncode == 1
    assert "bad.yaml:3:13: steps[0].run: unknown plugin 'nope'" in bad.stdout + bad.stderr


@pytest.mark.timeout(420)
def test_dg_dev_serves_the_code_location(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [DG, "dev", "--port", str(port), "--host", "127.0.0.1"],
        cwd=PROJECT_ROOT,
        env=_env(tmp_path, _workflows(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    query = (
        '{ repositoryOrError(repositorySelector: {repositoryName: "__repository__", '
        'repositoryLocationName: "maestro"}) { ... on Repository { jobs { name } } } }'
    )
    try:
        deadline = time.monotonic() + 150
        while True:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10
                ).json()
                jobs = answer["data"]["repositoryOrError"]["jobs"]
                break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                assert time.monotonic() < deadline, "dg dev did not serve the code location"
                time.sleep(1)
    finally:
        # Stopping the webserver, daemon and code server can take a while on a busy machine;
        # this test is about serving, so a slow stop is only cut short, never left running.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    assert sorted(j["name"] for j in jobs) == ["one", "two"]
