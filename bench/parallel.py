"""Parallel steps under each executor, through `dagster job execute` as a user runs it.

Run: `.venv/bin/python bench/parallel.py` (~4 min; BENCH_PARALLEL_REPEATS=1 for a quick look,
BENCH_PARALLEL_MULTIPROCESS=0 to leave the slow multiprocess rows out).

Workloads: 4 and 16 independent shell steps that each `sleep 1` (one `parallel` stage), and the
demo workflow (workflows/demo.yaml). Each runs under the threads executor (Maestro's default),
Dagster's in-process executor and Dagster's multiprocess executor (its defaults: as many
processes at once as cores), chosen with MAESTRO_EXECUTOR, by `dagster job execute -m
maestro_defs.definitions` on a fresh SQLite instance. Measured per run: the step span (first
STEP_START to last STEP_SUCCESS, from the event log) and the whole command's wall time; the
bare start-up is `dagster job execute` of a one-step no-op workflow in process. Variants are
interleaved; medians (and best) of the repeats. Targets are printed, never asserted.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from _common import fmt_row, verdict

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
REPEATS = int(os.environ.get("BENCH_PARALLEL_REPEATS", "3"))
WITH_MULTIPROCESS = os.environ.get("BENCH_PARALLEL_MULTIPROCESS", "1") != "0"
EXECUTORS = ("threads", "in_process", *(("multiprocess",) if WITH_MULTIPROCESS else ()))


def sleepers(name: str, count: int) -> str:
    steps = "".join(
        f"      - {{id: s{i}, run: shell, with: {{command: 'sleep 1'}}}}\n" for i in range(count)
    )
    return f"name: {name}\nstages:\n  - name: all\n    parallel:\n{steps}"


WORKLOADS = {
    "par_4": ("4 x sleep 1", sleepers("par-4", 4)),
    "par_16": ("16 x sleep 1", sleepers("par-16", 16)),
    "maestro_demo": ("demo workflow", (ROOT / "workflows" / "demo.yaml").read_text()),
}
NOOP = "name: noop\nexecutor: in_process\nsteps:\n  - {id: nothing, run: echo}\n"


def execute(folder: Path, job: str, executor: str) -> tuple[float, float]:
    """(whole command seconds, step span seconds) of one `dagster job execute`."""
    home = Path(tempfile.mkdtemp(prefix="bench_parallel_home_"))
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MAESTRO_WORKFLOWS_DIR": str(folder),
        "MAESTRO_EXECUTOR": executor,
    }
    command = [DAGSTER, "job", "execute", "-m", "maestro_defs.definitions", "-a", "defs", "-j", job]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{job} under {executor} failed:\n{done.stderr[-3000:]}")
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            [run] = instance.get_runs()
            records = instance.get_records_for_run(run.run_id, limit=100_000).records
            starts = [
                r.event_log_entry.timestamp
                for r in records
                if r.event_log_entry.dagster_event
                and r.event_log_entry.dagster_event.event_type_value == "STEP_START"
            ]
            ends = [
                r.event_log_entry.timestamp
                for r in records
                if r.event_log_entry.dagster_event
                and r.event_log_entry.dagster_event.event_type_value == "STEP_SUCCESS"
            ]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return wall, max(ends) - min(starts)


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench_parallel_workflows_"))
    for job, (_, text) in WORKLOADS.items():
        (folder / f"{job}.yaml").write_text(text)
    (folder / "noop.yaml").write_text(NOOP)
    walls: dict[tuple[str, str], list[float]] = {}
    spans: dict[tuple[str, str], list[float]] = {}
    bare: list[float] = []
    execute(folder, "noop", "in_process")  # warm-up: imports and .pyc files
    for repeat in range(REPEATS):
        bare.append(execute(folder, "noop", "in_process")[0])
        for job in WORKLOADS:
            for executor in EXECUTORS:
                if executor == "multiprocess" and repeat > 0:
                    continue  # 5-12 s per step process here: one run each is enough to compare
                wall, span = execute(folder, job, executor)
                walls.setdefault((job, executor), []).append(wall)
                spans.setdefault((job, executor), []).append(span)
    shutil.rmtree(folder, ignore_errors=True)

    start_up = statistics.median(bare)
    print(
        f"`dagster job execute -m maestro_defs.definitions`, fresh SQLite instance per run; "
        f"median (best) of {REPEATS} interleaved runs, multiprocess 1 run.\n"
        f"bare start-up (one no-op step, in process): {start_up:.2f} s (best {min(bare):.2f})\n"
    )
    print(fmt_row("workload / executor", "span s", "best", "command s", "best", "over bare"))
    med = {key: (statistics.median(spans[key]), statistics.median(walls[key])) for key in spans}
    for job, (label, _) in WORKLOADS.items():
        for executor in EXECUTORS:
            span, wall = med[(job, executor)]
            print(
                fmt_row(
                    f"{label} / {executor}",
                    f"{span:.2f}",
                    f"{min(spans[(job, executor)]):.2f}",
                    f"{wall:.2f}",
                    f"{min(walls[(job, executor)]):.2f}",
                    f"+{wall - start_up:.2f}",
                )
            )
        if "multiprocess" in EXECUTORS:
            print(
                fmt_row(
                    "  multiprocess / threads",
                    f"{med[(job, 'multiprocess')][0] / med[(job, 'threads')][0]:.1f}x",
                    "",
                    f"{med[(job, 'multiprocess')][1] / med[(job, 'threads')][1]:.1f}x",
                )
            )
        print(
            fmt_row(
                "  in_process / threads",
                f"{med[(job, 'in_process')][0] / med[(job, 'threads')][0]:.1f}x",
                "",
                f"{med[(job, 'in_process')][1] / med[(job, 'threads')][1]:.1f}x",
            )
        )

    span4, wall4 = med[("par_4", "threads")]
    span16, _ = med[("par_16", "threads")]
    print("\ntargets (threads executor):")
    print(f"  4 x 1 s step span <= 1.5 s: {verdict(span4 <= 1.5)} ({span4:.2f} s)")
    print(
        f"  4 x 1 s whole command <= bare start-up + 2.5 s: "
        f"{verdict(wall4 - start_up <= 2.5)} (+{wall4 - start_up:.2f} s)"
    )
    print(f"  16 x 1 s step span <= 2 s: {verdict(span16 <= 2.0)} ({span16:.2f} s)")
    if "multiprocess" in EXECUTORS:
        for job in ("par_4", "par_16"):
            ratio_span = med[(job, "multiprocess")][0] / med[(job, "threads")][0]
            ratio_wall = med[(job, "multiprocess")][1] / med[(job, "threads")][1]
            print(
                f"  {WORKLOADS[job][0]}: >= 3x faster than multiprocess: "
                f"{verdict(min(ratio_span, ratio_wall) >= 3)} "
                f"(span {ratio_span:.1f}x, command {ratio_wall:.1f}x)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
