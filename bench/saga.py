"""The saga on the real stack: `maestro deploy local` (webserver + daemon) on PostgreSQL.

A 20-step chain with `on_failure: compensate` whose last step fails; 19 compensations (each
appends a line to a journal). The run is launched through the webserver's GraphQL API, and the
`maestro_saga` sensor (evaluated by the daemon) launches `<job>__compensate`. Measured: from
the failing step's STEP_FAILURE to the end of the saga run, and how much of it is the wait
for the sensor (failure to the saga run's creation). Two stacks side by side: the sensor at
Dagster's default interval (30 s, `DEFAULT_SENSOR_DAEMON_INTERVAL`) and at this tree's 1 s
(`MAESTRO_SAGA_INTERVAL_S`). The journal must hold the 19 undos once each, in reverse order,
and a few sensor ticks after the saga no second saga run may appear.

    .venv/bin/python bench/saga.py          # ~6 min on 2 cores (two stacks, BENCH_SAGA_RUNS=2)

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, as the tests); creates and drops its database.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
from dagster_graphql import DagsterGraphQLClient  # noqa: E402

from bench._common import fmt_row, verdict  # noqa: E402
from maestro_cli.deployment import postgres_env  # noqa: E402
from resources.run_tags import COMPENSATES_TAG  # noqa: E402
from tests.support.postgres import fresh_database  # noqa: E402
from tests.support.stack import running_stack  # noqa: E402

STEPS = 20
RUNS = int(os.environ.get("BENCH_SAGA_RUNS", "2"))
INTERVALS = (30, 1)  # Dagster's default sensor interval, this tree's
JOB = "saga_bench"


def workflow(journal: Path) -> str:
    lines = [f"name: {JOB}", "on_failure: compensate", "steps:"]
    for i in range(STEPS):
        last = i == STEPS - 1
        lines += [
            f"  - id: s{i}",
            "    run: shell",
            *([f"    depends_on: [s{i - 1}]"] if i else []),
            "    with: {command: " + ("'exit 1'" if last else f"'echo s{i}'") + "}",
            "    compensation:",
            "      run: shell",
            f"      with: {{command: 'echo undo s{i} >> {journal}', shell: true}}",
        ]
    return "\n".join(lines) + "\n"


def _wait(what: str, check: object, timeout: float = 600) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(what)


def one_saga(stack: object, instance: dg.DagsterInstance, journal: Path) -> tuple[float, float]:
    """(failure -> saga end, failure -> saga run created) for one failed run, checked."""
    journal.unlink(missing_ok=True)
    client = DagsterGraphQLClient("127.0.0.1", port_number=stack.port)  # type: ignore[attr-defined]
    run_id = client.submit_job_execution(JOB, "maestro")

    def saga_done() -> dg.RunRecord | None:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={COMPENSATES_TAG: run_id}))
        if records and records[0].dagster_run.is_finished:
            return records[0]
        return None

    saga = _wait("the saga run", saga_done)
    assert isinstance(saga, dg.RunRecord) and saga.dagster_run.status.value == "SUCCESS"
    [failure] = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    expected = [f"undo s{i}" for i in range(STEPS - 2, -1, -1)]
    assert journal.read_text().splitlines() == expected, journal.read_text()
    time.sleep(8)  # more daemon loops: the sensor must not launch another saga for the run
    count = len(instance.get_run_records(filters=dg.RunsFilter(tags={COMPENSATES_TAG: run_id})))
    assert count == 1, f"{count} saga runs for {run_id}"
    assert saga.end_time is not None
    return saga.end_time - failure.timestamp, saga.create_timestamp.timestamp() - failure.timestamp


def measure(interval: int) -> list[tuple[float, float]]:
    os.environ["MAESTRO_SAGA_INTERVAL_S"] = str(interval)
    with tempfile.TemporaryDirectory() as tmp, fresh_database("maestro_bench") as url:
        root = Path(tmp)
        journal = root / "journal.txt"
        os.environ.update(postgres_env(url))
        workflows = {"saga.yaml": workflow(journal)}
        with (
            running_stack(root, url, workflows=workflows) as stack,
            stack.instance() as instance,
        ):
            time.sleep(5)  # let the daemon settle
            return [one_saga(stack, instance, journal) for _ in range(RUNS)]


def main() -> None:
    results = {interval: measure(interval) for interval in INTERVALS}
    print(f"saga of a {STEPS}-step chain ({STEPS - 1} compensations), daemon + Postgres")
    print(fmt_row("sensor interval", "runs", "end p50 s", "end max s", "wait p50 s"))
    for interval, samples in results.items():
        ends = [end for end, _ in samples]
        waits = [wait for _, wait in samples]
        print(
            fmt_row(
                f"{interval} s" + (" (Dagster default)" if interval == 30 else " (maestro)"),
                str(len(samples)),
                f"{statistics.median(ends):.1f}",
                f"{max(ends):.1f}",
                f"{statistics.median(waits):.1f}",
            )
        )
    fast = statistics.median([end for end, _ in results[1]])
    slow = statistics.median([end for end, _ in results[30]])
    print(
        f"ratio default/1 s: {slow / fast:.2f}x; target: 1 s interval faster {verdict(fast < slow)}"
    )
    print("every saga: 19 undos once each in reverse order, one saga run per failed run")


if __name__ == "__main__":
    main()
