# ruff: noqa: E402  (the import path is fixed before the imports: see below)
"""The run queue on the real stack: `maestro deploy local` (webserver + daemon) on PostgreSQL.

1. Throughput: RUNS (default 200) no-op runs submitted through the webserver's GraphQL API at
   once, max_concurrent_runs 8: runs/minute (first submission to last run finished) and p50/p95
   from submission to start (the run's STARTED time).
2. Latency of the policy gate: `maestro submit` of a one-step workflow, one at a time on an
   otherwise idle stack, from the stored request to the run launched (STARTING) and started;
   measured with this tree's settings (gate sensor interval 1 s, dequeue every 1 s) and, side by
   side in the same run, with the former ones (15 s, Dagster's default 5 s).

    .venv/bin/python bench/run_queue.py            # ~10 min on 2 cores
    BENCH_QUEUE_RUNS=50 BENCH_SUBMITS=8 .venv/bin/python bench/run_queue.py   # a quick look

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, as the tests); creates and drops its database.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

from bench._common import fmt_row, verdict
from maestro_cli.deployment import postgres_env
from resources.policy.engine import PolicySet
from resources.policy.store import store_for
from resources.run_tags import REQUEST_TAG
from tests.support.cli import run_maestro
from tests.support.policy_data import policies_with_tenant
from tests.support.postgres import fresh_database
from tests.support.stack import running_stack

RUNS = int(os.environ.get("BENCH_QUEUE_RUNS", "200"))
SUBMITS = int(os.environ.get("BENCH_SUBMITS", "20"))
BASELINE_SUBMITS = int(os.environ.get("BENCH_BASELINE_SUBMITS", "8"))
MAX_CONCURRENT = 8
NOOP = "name: noop\ntenant: bench\nsteps:\n  - {id: nothing, run: echo, with: {}}\n"
GATED = "name: gated\nsteps:\n  - {id: hello, run: echo, with: {x: 1}}\n"
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def bench_policies(root: Path, dequeue_s: int) -> Path:
    """The shipped policies, a tenant `bench` allowed 8 runs at once, the queue at 8."""
    tenant = dict(PolicySet.load().tenants["default"])
    tenant["max_concurrent_runs"] = MAX_CONCURRENT
    folder = policies_with_tenant(root, "bench", tenant)
    queue_file = folder / "data" / "run_queue.json"
    data = json.loads(queue_file.read_text())
    data["run_queue"]["max_concurrent_runs"] = MAX_CONCURRENT
    data["run_queue"]["dequeue_interval_seconds"] = dequeue_s
    queue_file.write_text(json.dumps(data))
    return folder


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def throughput(stack, instance: dg.DagsterInstance) -> tuple[float, list[float]]:
    client = DagsterGraphQLClient("127.0.0.1", port_number=stack.port)
    submitted: dict[str, float] = {}
    first = time.time()
    for _ in range(RUNS):
        at = time.time()
        submitted[client.submit_job_execution("noop", "maestro", run_config=IN_PROCESS)] = at
    deadline = time.monotonic() + 3600
    while True:
        done = instance.get_runs_count(
            dg.RunsFilter(
                job_name="noop", statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
            )
        )
        if done >= RUNS or time.monotonic() > deadline:
            break
        time.sleep(1)
    records = instance.get_run_records(dg.RunsFilter(run_ids=list(submitted)))
    failed = [r for r in records if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
    if failed:
        print(f"  {len(failed)} runs did not succeed: {failed[0].dagster_run.status}")
    last_end = max(r.end_time or 0 for r in records)
    waits = [r.start_time - submitted[r.dagster_run.run_id] for r in records if r.start_time]
    return RUNS / ((last_end - first) / 60), waits


def gate_latency(stack, instance: dg.DagsterInstance, count: int) -> dict[str, list[float]]:
    """`maestro submit` one at a time; from the stored request to launched and to started."""
    store = store_for(instance)
    found: dict[str, list[float]] = {"launched": [], "started": [], "cli": []}
    for _ in range(count):
        began = time.time()
        done = run_maestro(
            "submit",
            str(stack.workflows / "gated.yaml"),
            cwd=stack.home.parent,
            home=stack.home,
            env=stack.env,
        )
        found["cli"].append(time.time() - began)
        assert done.returncode == 0, done.stderr
        request_id = done.stdout.strip()
        request = store.request(request_id)
        assert request is not None
        deadline = time.monotonic() + 120
        while True:
            runs = instance.get_runs(dg.RunsFilter(tags={REQUEST_TAG: request_id}))
            if runs and runs[0].is_finished:
                break
            assert time.monotonic() < deadline, f"request {request_id} did not run"
            time.sleep(0.2)
        record = instance.get_run_record_by_id(runs[0].run_id)
        assert record is not None and record.start_time is not None
        launched = [
            e.timestamp
            for e in instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.RUN_STARTING)
        ]
        found["launched"].append(min(launched) - request.created_at)
        found["started"].append(record.start_time - request.created_at)
        time.sleep(1)  # idle between submissions: the latency of one request, not a burst
    return found


def stack_run(dequeue_s: int, gate_s: int, with_throughput: bool, submits: int) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="maestro-bench-queue-") as tmp,
        fresh_database("maestro_bench") as url,
    ):
        root = Path(tmp)
        policies = bench_policies(root, dequeue_s)
        os.environ.update(postgres_env(url))
        os.environ["MAESTRO_GATE_INTERVAL_S"] = str(gate_s)
        with (
            running_stack(
                root / "stack",
                url,
                workflows={"noop.yaml": NOOP, "gated.yaml": GATED},
                policies=policies,
            ) as stack,
            stack.instance() as instance,
        ):
            result: dict = {"load_before": loadavg()}
            if with_throughput:
                result["throughput"] = throughput(stack, instance)
                result["load_after_throughput"] = loadavg()
                time.sleep(10)  # let the daemon settle
            result["gate"] = gate_latency(stack, instance, submits)
            result["load_after"] = loadavg()
            return result


def main() -> None:
    print(
        f"bench/run_queue.py: {RUNS} no-op runs, max_concurrent_runs {MAX_CONCURRENT}; "
        f"{SUBMITS} + {BASELINE_SUBMITS} maestro submit; {os.cpu_count()} cores, load {loadavg()}"
    )
    now = stack_run(dequeue_s=1, gate_s=1, with_throughput=True, submits=SUBMITS)
    before = stack_run(dequeue_s=5, gate_s=15, with_throughput=False, submits=BASELINE_SUBMITS)
    per_minute, waits = now["throughput"]
    print()
    print(fmt_row("throughput (daemon, Postgres)", "runs/min", "p50 s", "p95 s"))
    print(
        fmt_row(
            f"{RUNS} no-op runs, queue of {MAX_CONCURRENT}",
            f"{per_minute:.1f}",
            f"{pct(waits, 0.5):.2f}",
            f"{pct(waits, 0.95):.2f}",
        )
    )
    print(
        f"  submission -> run started; load {now['load_before']} -> {now['load_after_throughput']}"
    )
    print()
    print(fmt_row("maestro submit -> run", "p50 s", "p95 s", "max s", width=44))
    for label, result in (
        ("now (gate 1 s, dequeue 1 s)", now),
        ("before (gate 15 s, dequeue 5 s)", before),
    ):
        for what in ("launched", "started"):
            values = result["gate"][what]
            print(
                fmt_row(
                    f"{label}: {what}",
                    f"{pct(values, 0.5):.2f}",
                    f"{pct(values, 0.95):.2f}",
                    f"{max(values):.2f}",
                    width=44,
                )
            )
    started = now["gate"]["started"]
    ratio = statistics.median(before["gate"]["started"]) / statistics.median(started)
    print(f"  median to started: now {ratio:.1f}x faster than before (same run, same machine)")
    print(
        f"  maestro submit command itself: p50 {pct(now['gate']['cli'], 0.5):.2f} s (not counted)"
    )
    print(f"  load during the gate runs: {now['load_before']} -> {now['load_after']}")
    ok = pct(started, 0.5) <= 5 and pct(started, 0.95) <= 10
    print(f"target p50 <= 5 s, p95 <= 10 s (request stored -> run started): {verdict(ok)}")


if __name__ == "__main__":
    main()
