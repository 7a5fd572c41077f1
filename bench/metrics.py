"""`maestro metrics serve` scrapes: incremental (the saved watermark) vs reading the history.

A SQLite instance in a temp folder gets RUNS runs of a 3-step workflow (one spends, so the
ledger has rows); then, interleaved, a scrape that starts from the saved state (nothing new,
then 5 new runs) and one that starts from an empty state (what an exporter without a cursor
does on every scrape). Prints medians and ratios; the target is reported, not asserted.
BENCH_METRICS_RUNS sets the history (default 100 runs, ~90 s to make on a 2-core machine).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.support.paid_plugin`

import dagster as dg
from _common import fmt_row, noise_note, verdict

from maestro_cli import runner
from resources.observability.metrics import MetricsState, refresh, update
from resources.plugins import BUILTIN_PLUGINS, PluginRegistry
from resources.policy.store import store_for
from tests.support.compiling import compile_text
from tests.support.paid_plugin import paid_plugin

RUNS = int(os.environ.get("BENCH_METRICS_RUNS", "100"))
REPEATS = 5
WORKFLOW = """
name: bench-metrics
steps:
  - {id: a, run: echo, with: {x: 1}}
  - {id: b, run: paid, depends_on: a, with: {price: 0.01}}
  - {id: c, run: echo, depends_on: b, with: {y: 2}}
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        registry = PluginRegistry([*BUILTIN_PLUGINS, paid_plugin([])])
        job = compile_text(WORKFLOW, registry=registry).job
        resources = runner.resources_for(home)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            started = time.perf_counter()
            for _ in range(RUNS):
                job.execute_in_process(instance=instance, resources=resources)
            print(f"{RUNS} runs of 3 steps in {time.perf_counter() - started:.1f}s")
            store = store_for(instance)
            refresh(instance, store, "bench")  # the saved state, caught up
            samples: dict[str, list[float]] = {"incremental": [], "full history": []}
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                refresh(instance, store, "bench")
                samples["incremental"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                full = update(MetricsState(), instance, store, time.time())
                samples["full history"].append(time.perf_counter() - t0)
            counted = sum(v for k, v in full.runs.items())
            assert counted == RUNS, counted
            new_runs: list[float] = []
            for _ in range(REPEATS):
                for _ in range(5):
                    job.execute_in_process(instance=instance, resources=resources)
                t0 = time.perf_counter()
                refresh(instance, store, "bench")
                new_runs.append(time.perf_counter() - t0)
    inc = statistics.median(samples["incremental"])
    whole = statistics.median(samples["full history"])
    five = statistics.median(new_runs)
    print(fmt_row("scrape", "median ms", "best ms"))
    print(
        fmt_row(
            "incremental, nothing new",
            f"{inc * 1e3:.1f}",
            f"{min(samples['incremental']) * 1e3:.1f}",
        )
    )
    print(fmt_row("incremental, 5 new runs", f"{five * 1e3:.1f}", f"{min(new_runs) * 1e3:.1f}"))
    print(
        fmt_row(
            f"full history ({RUNS} runs)",
            f"{whole * 1e3:.1f}",
            f"{min(samples['full history']) * 1e3:.1f}",
        )
    )
    print(
        f"full / incremental (nothing new): {whole / inc:.1f}x; "
        f"full / incremental (5 new): {whole / five:.1f}x"
    )
    print(
        "target: a scrape with nothing new costs < 1/10 of reading the history: "
        f"{verdict(inc * 10 < whole)}"
    )
    per_new = (five - inc) / 5
    print(
        f"per new run: {per_new * 1e3:.1f} ms incremental vs {whole / RUNS * 1e3:.1f} ms "
        "per run in a full read (a scrape's work follows what is new, not the history)"
    )
    print(noise_note({**samples, "5 new runs": new_runs}))


if __name__ == "__main__":
    main()
