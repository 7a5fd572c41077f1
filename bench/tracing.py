"""Tracing overhead: the 100-step echo chain of overhead.py with tracing off, to an in-memory
exporter, and to an OTLP/HTTP exporter pointed at a closed port.

Run: `.venv/bin/python bench/tracing.py`. The chain runs through `dg.execute_job` on the
threads executor (the default) on one shared `dg.instance_for_test()`; the three tracer
providers are built once and switched between runs, which are interleaved (off, memory, otlp,
off, ...). Medians (and bests) are reported with the ratios over off. The target is reported
(PASS/MISS), never asserted, and the exit code is 0.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time

import dagster as dg
from _common import fmt_row, noise_note, verdict
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from overhead import STEPS, run_on_executor

from resources.observability import tracing

REPEATS = int(os.environ.get("BENCH_TRACING_REPEATS", "7"))
TARGET = 1.05


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    memory = InMemorySpanExporter()
    endpoint = f"http://127.0.0.1:{closed_port()}/v1/traces"
    providers = {
        "off": None,
        "memory": tracing.build_provider(memory),
        "otlp-closed": tracing.build_provider(OTLPSpanExporter(endpoint=endpoint, timeout=2)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in providers}
    cpu: dict[str, list[float]] = {name: [] for name in providers}
    spans_per_run = 0
    with dg.instance_for_test() as instance:
        for provider in providers.values():  # warm-up, and the first build of the job
            tracing.install(provider)
            run_on_executor("threads", instance)
        for _ in range(REPEATS):
            for name, provider in providers.items():
                tracing.install(provider)
                memory.clear()
                cpu_start = time.process_time()
                seconds[name].append(run_on_executor("threads", instance))
                cpu[name].append(time.process_time() - cpu_start)
                if name == "memory":
                    assert provider is not None
                    provider.force_flush()
                    spans_per_run = len(memory.get_finished_spans())
    tracing.install(None)
    print(
        f"{STEPS} chained echo steps, dg.execute_job on the threads executor, one "
        f"dg.instance_for_test() (SQLite);\nmedian (best) of {REPEATS} interleaved runs after a "
        f"warm-up; {spans_per_run} spans per traced run. Wall clock, then this process's CPU "
        "time (all threads: what tracing adds, less disturbed by other load on the machine):\n"
    )
    ratios = {}
    for label, samples in (("wall", seconds), ("cpu", cpu)):
        med = {name: statistics.median(values) for name, values in samples.items()}
        print(fmt_row(f"tracing ({label})", "median s", "best s", "ms/step", "ratio", "best ratio"))
        for name in providers:
            print(
                fmt_row(
                    name,
                    f"{med[name]:.3f}",
                    f"{min(samples[name]):.3f}",
                    f"{med[name] / STEPS * 1000:.2f}",
                    f"{med[name] / med['off']:.3f}",
                    f"{min(samples[name]) / min(samples['off']):.3f}",
                )
            )
        print(noise_note(samples) + "\n")
        ratios[label] = max(med["memory"], med["otlp-closed"]) / med["off"]
    for label, worst in ratios.items():
        print(
            f"target ({label}): tracing on <= {TARGET} x off: {verdict(worst <= TARGET)} "
            f"({worst:.3f})"
        )
    for provider in providers.values():
        if provider is not None:
            provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
