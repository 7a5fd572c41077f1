"""Load on the real stack, nothing lost: RUNS (default 200) runs of a 10-step workflow through
`maestro deploy local` (webserver + daemon, PostgreSQL), over two tenants with their own run
limits (3 and 2 at once, the queue at 4), all submitted through GraphQL at once; the runs in
progress per tenant are sampled every 0.5 s (tests/support/load.py, which
tests/faults/test_load.py runs with a few runs).

Printed: runs submitted and recorded, statuses, lost (submitted, never recorded), unfinished,
duplicated, step successes, the most runs in progress per tenant against its limit, runs/min.
Target: every run SUCCESS, none lost or duplicated, limits never exceeded.

    .venv/bin/python bench/load.py                      # ~10 min on 2 cores
    BENCH_LOAD_RUNS=40 .venv/bin/python bench/load.py   # a quick look

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, as the tests); creates and drops its database.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import verdict  # noqa: E402
from bench.run_queue import loadavg  # noqa: E402
from maestro_cli.deployment import postgres_env  # noqa: E402
from tests.support.load import LIMITS, QUEUE, STEPS, run_load  # noqa: E402
from tests.support.postgres import fresh_database  # noqa: E402

RUNS = int(os.environ.get("BENCH_LOAD_RUNS", "200"))


def main() -> None:
    print(
        f"bench/load.py: {RUNS} runs of {STEPS} steps, limits {LIMITS}, queue {QUEUE}; "
        f"{os.cpu_count()} cores, load {loadavg()}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="maestro-bench-load-") as tmp,
        fresh_database("maestro_bench") as url,
    ):
        os.environ.update(postgres_env(url))
        report = run_load(Path(tmp), url, RUNS)
    rows = [
        ("runs submitted / recorded", f"{len(report.submitted)} / {report.recorded}"),
        ("statuses", ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items()))),
        (
            "lost / unfinished / duplicated",
            f"{len(report.lost)} / {report.unfinished} / {report.duplicated}",
        ),
        ("step successes", f"{report.step_successes} (expected {STEPS * len(report.submitted)})"),
        *(
            (f"most runs in progress, {tenant}", f"{report.peaks[tenant]} (limit {limit})")
            for tenant, limit in LIMITS.items()
        ),
        ("most runs in progress, all", f"{report.most_in_progress} (queue {QUEUE})"),
        ("runs/min", f"{report.runs_per_minute:.1f}"),
    ]
    print()
    for label, value in rows:
        print(f"  {label:<36} {value}")
    print(
        "\ntarget: every run SUCCESS, none lost or duplicated, limits held: "
        f"{verdict(report.nothing_lost)} (load {loadavg()})"
    )


if __name__ == "__main__":
    main()
