"""Compiling is a pure function of the file: same bytes, same plan, same Dagster job snapshot,
in one process and across processes with different hash seeds (set order must never leak)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dagster import serialize_value

from tests.support.compiling import compile_file
from tests.support.paths import PROJECT_ROOT

RICH = """
name: rich-flow
version: 2.1.0
description: Many features at once, to give set and dict ordering every chance to leak.
params:
  regions: {type: list, default: [eu, us, ap]}
  dry_run: false
  owner: {type: string, required: true}
secrets: [API_TOKEN, DEPLOY_KEY]
defaults:
  retry: {max_attempts: 2, backoff: 100ms, retry_on: [timeout, exit_code]}
  timeout: 10s
schedule:
  - cron: "0 3 * * *"
    timezone: Europe/Paris
    params: {owner: ops}
  - cron: "*/30 * * * *"
    params: {owner: bot}
tags: {team: platform, tier: 1}
stages:
  - name: prepare
    parallel:
      - id: zeta
        run: echo
        with: {v: "{{ params.owner }}"}
      - id: alpha
        run: shell
        with:
          command: "echo {{ secrets.API_TOKEN }} {{ secrets.DEPLOY_KEY }}"
      - id: mid.step
        run: http.request
        with: {url: "http://127.0.0.1:1/{{ params.owner }}", method: post}
  - name: work
    steps:
      - id: fan
        run: echo
        for_each: params.regions
        with:
          region: "{{ item }}"
          from_zeta: "{{ steps.zeta.output.v }}"
          from_alpha: "{{ steps.alpha.output.stdout }}"
      - id: gated
        run: echo
        when: "not params.dry_run and steps['mid.step'].output.status == 200"
        depends_on: [zeta, alpha]
        on_upstream_skip: run
      - id: summary
        run: echo
        depends_on: [alpha, zeta, fan]
        with: {all: "{{ steps.fan.output }}", g: "{{ steps.gated.output }}"}
"""


def snapshot(path: Path) -> tuple[str, str, str]:
    compiled = compile_file(path)
    job_snap = compiled.job.get_job_snapshot()
    return (
        serialize_value(job_snap),
        compiled.job.get_job_snapshot_id(),
        json.dumps(compiled.plan.to_dict(), sort_keys=False),
    )


@pytest.mark.parametrize("source", ["rich", "demo"])
def test_compiling_twice_gives_identical_results(
    source: str, write_workflow: Callable[..., Path]
) -> None:
    path = write_workflow(RICH) if source == "rich" else PROJECT_ROOT / "workflows" / "demo.yaml"
    first, second = snapshot(path), snapshot(path)
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert first[2] == second[2]
    assert compile_file(path).plan.to_dict() == compile_file(path).plan.to_dict()


def test_schedules_are_identical_too(
    write_workflow: Callable[..., Path], instance: dg.DagsterInstance
) -> None:
    path = write_workflow(RICH)

    def ticks() -> list[tuple[str, str, str | None, str]]:
        return [
            (
                s.name,
                s.cron_schedule,
                s.execution_timezone,
                serialize_value(
                    s.evaluate_tick(dg.build_schedule_context(instance=instance))
                    .run_requests[0]
                    .run_config
                ),
            )
            for s in compile_file(path).schedules
        ]

    first = ticks()
    assert first == ticks()
    assert [tick[:3] for tick in first] == [
        ("rich_flow_schedule_0", "0 3 * * *", "Europe/Paris"),
        ("rich_flow_schedule_1", "*/30 * * * *", None),
    ]


_CHILD = """
import hashlib, json, sys
from dagster import serialize_value
from tests.support.compiling import compile_file
compiled = compile_file(sys.argv[1])
print(json.dumps({
    "job": hashlib.sha256(serialize_value(compiled.job.get_job_snapshot()).encode()).hexdigest(),
    "snapshot_id": compiled.job.get_job_snapshot_id(),
    "plan": compiled.plan.to_dict(),
}))
"""


def test_identical_across_processes_and_hash_seeds(write_workflow: Callable[..., Path]) -> None:
    path = write_workflow(RICH)
    outputs = []
    for seed in ("1", "2"):
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        outputs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    here = compile_file(path)
    assert outputs[0]["snapshot_id"] == here.job.get_job_snapshot_id()
    assert outputs[0]["plan"] == json.loads(json.dumps(here.plan.to_dict()))


def test_different_content_gives_a_different_snapshot(write_workflow: Callable[..., Path]) -> None:
    """The comparisons above can fail: one changed literal changes the snapshot id."""
    path = write_workflow(RICH)
    base = compile_file(path).job.get_job_snapshot_id()
    assert compile_file(write_workflow(RICH)).job.get_job_snapshot_id() == base
    write_workflow(RICH.replace("timeout: 10s", "timeout: 11s"))
    assert compile_file(path).job.get_job_snapshot_id() != base
