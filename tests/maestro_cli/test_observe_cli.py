"""`maestro runs`, `status`, `logs`, `costs` and `cancel` against real runs on a SQLite or
PostgreSQL instance: workflows run with `maestro run` in a subprocess, or launched through the
code location (`dagster job launch`) and run by the daemon."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from resources.policy.store import store_for
from tests.support.cli import run_maestro, start_maestro
from tests.support.observed import (
    instance_of,
    launch,
    run_status,
    run_workflow,
    running_daemon,
    wait_for,
)
from tests.support.paths import PROJECT_ROOT

MIXED = """\
name: obs-mixed
steps:
  - id: ok
    run: echo
    with: {a: 1}
  - id: boom
    run: shell
    depends_on: ok
    retry: {max_attempts: 2, backoff: 0s}
    with: {command: ["sh", "-c", "echo out-line; echo err-line >&2; exit 7"]}
  - id: after
    run: echo
    depends_on: boom
"""
BOOM_LINE = 6  # where `- id: boom` is in MIXED

FINE = """\
name: obs-fine
steps:
  - {id: hello, run: shell, with: {command: ["echo", "fine-output"]}}
"""

PAID = """
name: obs-costly
steps:
  - {id: think, run: paid, with: {price: 0.125}}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _maestro(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_maestro(*args, cwd=cwd, home=home)


def _run_id_of(out: str) -> str:
    line = next(x for x in out.splitlines() if x.startswith("run "))
    return line.split()[1].rstrip(":")


def test_runs_status_and_logs_of_real_runs(observed_home: Path, tmp_path: Path) -> None:
    home = observed_home
    mixed = _write(tmp_path, "mixed.yaml", MIXED)
    fine = _write(tmp_path, "fine.yaml", FINE)
    failed = _maestro(home, tmp_path, "run", str(mixed))
    assert failed.returncode == 1, failed.stderr
    failed_id = _run_id_of(failed.stdout)
    ok = _maestro(home, tmp_path, "run", str(fine))
    assert ok.returncode == 0, ok.stderr
    ok_id = _run_id_of(ok.stdout)

    listed = _maestro(home, tmp_path, "runs")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["RUN", "ID", "WORKFLOW", "TENANT"]
    assert [r.split()[:4] for r in rows] == [  # newest first
        [ok_id, "obs-fine", "default", "SUCCESS"],
        [failed_id, "obs-mixed", "default", "FAILURE"],
    ]
    only_failed = _maestro(home, tmp_path, "runs", "--status", "FAILURE", "--workflow", "obs-mixed")
    assert [r.split()[0] for r in only_failed.stdout.splitlines()[1:]] == [failed_id]
    assert _maestro(home, tmp_path, "runs", "--tenant", "acme").stdout.strip() == "no runs"

    status = _maestro(home, tmp_path, "status", failed_id)
    assert status.returncode == 1, status.stderr  # the run failed
    lines = status.stdout.splitlines()
    assert lines[0] == f"run {failed_id}: FAILURE"
    steps = {  # the table's rows (the error lines below it are indented)
        line.split()[0]: line.split()[1:]
        for line in lines
        if line.split()[:1] in (["ok"], ["boom"], ["after"]) and not line.startswith(" ")
    }
    assert steps["ok"][:2] == ["succeeded", "1"]
    assert steps["boom"][:2] == ["failed", "2"]  # retried once
    assert steps["after"][:2] == ["not", "run"]
    assert (
        f"  boom [{mixed}:{BOOM_LINE}]: step 'boom' failed (exit_code): command exited with "
        "code 7: err-line" in status.stdout
    )

    latest = _maestro(home, tmp_path, "status", "--workflow", "obs-fine")
    assert latest.returncode == 0 and latest.stdout.startswith(f"run {ok_id}: SUCCESS")
    hello = next(x.split() for x in latest.stdout.splitlines() if x.startswith("hello"))
    assert hello[:3] == ["hello", "succeeded", "1"]
    missing = _maestro(home, tmp_path, "status", "no-such-run")
    assert missing.returncode == 1 and "no run no-such-run" in missing.stderr

    logs = _maestro(home, tmp_path, "logs", failed_id)
    assert logs.returncode == 0, logs.stderr
    events = logs.stdout.split("==> ")[0]
    assert "  boom  STEP_UP_FOR_RETRY  " in events and "  boom  STEP_FAILURE  step 'boom'" in events
    assert "RUN_FAILURE" in events or "PIPELINE_FAILURE" in events
    assert "==> stdout of steps" in logs.stdout and "==> stderr of steps" in logs.stdout
    # Each attempt of `boom` has its own step log (the threads executor); both attempts' lines
    # are there, once each, in the steps' stdout and stderr sections.
    sections = logs.stdout.split("==> ")[1:]
    step_out = "".join(x for x in sections if x.startswith("stdout of steps boom"))
    step_err = "".join(x for x in sections if x.startswith("stderr of steps boom"))
    assert step_out.count("out-line") == 2 and step_err.count("err-line") == 2
    only_ok = _maestro(home, tmp_path, "logs", failed_id, "--step", "ok")
    assert "  ok  STEP_SUCCESS  " in only_ok.stdout
    assert "  boom  " not in only_ok.stdout.split("==> ")[0]


def test_logs_follow_a_live_run_until_it_ends(observed_home: Path, tmp_path: Path) -> None:
    home = observed_home
    ticking = _write(
        tmp_path,
        "ticking.yaml",
        """\
        name: obs-ticking
        steps:
          - id: tick
            run: shell
            with: {command: ["sh", "-c", "for i in 1 2 3 4; do echo tick-$i; sleep 1; done"]}
        """,
    )
    run = start_maestro("run", str(ticking), cwd=tmp_path, home=home, stderr=subprocess.PIPE)
    try:

        def started_run() -> str | None:
            with instance_of(home) as instance:
                records = instance.get_run_records(limit=1)
                if records and records[0].dagster_run.status == dg.DagsterRunStatus.STARTED:
                    return str(records[0].dagster_run.run_id)
            return None

        run_id = wait_for(started_run, 120, "the run to start")
        follow = run_maestro("logs", run_id, "--follow", cwd=tmp_path, home=home, timeout=180)
        ran, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, ran
    assert follow.returncode == 0, follow.stderr
    # It printed events and output that came after it started, and stopped when the run ended.
    for i in range(1, 5):
        assert f"tick-{i}" in follow.stdout
    assert "  tick  STEP_SUCCESS  " in follow.stdout
    assert "RUN_SUCCESS" in follow.stdout or "PIPELINE_SUCCESS" in follow.stdout
    assert follow.stdout.count("  tick  STEP_START  ") == 1  # each event once


def test_costs_per_tenant_and_period_as_table_csv_and_json(
    observed_home: Path, tmp_path: Path
) -> None:
    home = observed_home
    results = [run_workflow(home, PAID) for _ in range(2)]
    assert all(r.success for r in results)
    now = time.time()
    with instance_of(home) as instance:
        store = store_for(instance)
        for days_ago, cost in ((3, 1.0), (2, 2.0), (1, 3.0)):  # acme: an earlier, rising spend
            store.record_cost(
                run_id=f"old-{days_ago}",
                tenant="acme",
                workflow="summaries",
                step_id="summarize",
                plugin="litellm.generate",
                cost_usd=cost,
                recorded_at=now - days_ago * 86400 - 60,
            )

    as_json = _maestro(
        home, tmp_path, "costs", "--since", "7d", "--by", "plugin", "--format", "json"
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["totals"] == pytest.approx({"acme": 6.0, "default": 0.25})
    paid = [r for r in report["rows"] if r["tenant"] == "default"]
    assert [(r["key"], r["runs"], r["charges"]) for r in paid] == [("paid", 2, 2)]
    assert paid[0]["cost_usd"] == pytest.approx(0.25)
    acme = {f["tenant"]: f for f in report["forecast"]}["acme"]
    assert acme["trend_per_day"] > 0 and acme["next_period_usd"] > 0

    as_csv = _maestro(home, tmp_path, "costs", "--since", "7d", "--by", "step", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {(r["tenant"], r["step"]) for r in table} == {
        ("acme", "summaries/summarize"),
        ("default", "obs-costly/think"),
    }
    assert sum(float(r["cost_usd"]) for r in table) == pytest.approx(6.25)

    one_day = _maestro(home, tmp_path, "costs", "--since", "1d", "--tenant", "default")
    assert one_day.returncode == 0, one_day.stderr
    assert "  default: $0.250000" in one_day.stdout and "acme" not in one_day.stdout
    assert "forecast, next day" in one_day.stdout

    run_id = results[0].run_id
    status = _maestro(home, tmp_path, "status", run_id)
    think = next(line.split() for line in status.stdout.splitlines() if line.startswith("think"))
    assert think[1:3] == ["succeeded", "1"] and think[-1] == "$0.125000"
    runs = _maestro(home, tmp_path, "runs", "--workflow", "obs-costly")
    assert all(line.split()[-1] == "$0.125000" for line in runs.stdout.splitlines()[1:])


def test_cancel_a_queued_run_and_a_running_one(observed_home: Path, tmp_path: Path) -> None:
    home = observed_home
    pid_file = tmp_path / "nap.pid"
    workflows = tmp_path / "workflows"
    _write(
        workflows,
        "nap.yaml",
        f"""\
        name: obs-nap
        steps:
          - id: nap
            run: shell
            with: {{command: ["sh", "-c", "echo napping; echo $$ > {pid_file}; exec sleep 600"]}}
        """,
    )
    queued = launch(home, workflows, "obs_nap")
    assert run_status(home, queued) == dg.DagsterRunStatus.QUEUED
    canceled = _maestro(home, tmp_path, "cancel", queued)
    assert canceled.returncode == 0, canceled.stderr
    assert "removed from the queue, CANCELED" in canceled.stdout
    assert run_status(home, queued) == dg.DagsterRunStatus.CANCELED
    again = _maestro(home, tmp_path, "cancel", queued)
    assert again.returncode == 1 and "has already ended: CANCELED" in again.stderr

    running = launch(home, workflows, "obs_nap")
    with running_daemon(home, workflows):
        wait_for(pid_file.exists, 180, "the shell step to start its command")
        sleeper = int(pid_file.read_text())
        assert run_status(home, running) == dg.DagsterRunStatus.STARTED
        stopped = _maestro(home, tmp_path, "cancel", running)
        assert stopped.returncode == 0, stopped.stderr
        assert "termination requested" in stopped.stdout
        wait_for(
            lambda: run_status(home, running) == dg.DagsterRunStatus.CANCELED,
            120,
            "the run to end CANCELED",
        )
    wait_for(lambda: not _alive(sleeper), 30, "the step's command to be stopped")
    status = _maestro(home, tmp_path, "status", running)
    assert status.stdout.startswith(f"run {running}: CANCELED")
    assert next(x for x in status.stdout.splitlines() if x.startswith("nap")).split()[1] == "failed"
    # The daemon's run ran the step in its own process (multiprocess executor): its capture.
    logs = _maestro(home, tmp_path, "logs", running, "--step", "nap")
    assert "==> stdout of steps nap <==\nnapping" in logs.stdout, logs.stdout[-2000:]
    assert "  nap  STEP_FAILURE  " in logs.stdout  # interrupted


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return ""


assert PROJECT_ROOT.exists()


def test_status_of_a_for_each_step_shows_each_item_and_the_steps_cost(tmp_path: Path) -> None:
    from maestro_cli.run_views import run_status, status_lines
    from resources.observability.metrics import MetricsState, update
    from tests.support.observed import sqlite_home

    home = sqlite_home(tmp_path / "home")
    result = run_workflow(
        home,
        """
        name: obs-fanout
        steps:
          - id: ask
            run: paid
            for_each: [0.5, 0.25]
            with: {price: "{{ item }}"}
        """,
    )
    assert result.success
    with instance_of(home) as instance:
        lines = status_lines(run_status(instance, result.run_id))
        state = update(MetricsState(), instance, store_for(instance), time.time())
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("ask")}
    assert rows["ask[0]"][:2] == ["succeeded", "1"] and rows["ask[0]"][-1] == "-"
    assert rows["ask[1]"][:2] == ["succeeded", "1"]
    collect = next(line for line in lines if line.startswith("ask (collect)"))
    assert collect.split()[-1] == "$0.750000"  # the row that ends the step: its whole cost
    items = next(line for line in lines if line.startswith("ask (items)"))
    assert items.split()[-1] == "-"
    # The metrics count the items (the plugin ran twice), not the fan-out and collect ops.
    [(labels, histogram)] = state.step_durations.items()
    assert labels == ("obs-fanout", "paid") and histogram.count == 2
