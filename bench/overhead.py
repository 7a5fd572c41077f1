"""Run-time overhead per op: 100 chained no-op Maestro echo steps vs 100 chained no-op Dagster ops.

Run: `.venv/bin/python bench/overhead.py`. Both jobs run in process on one shared
`dg.instance_for_test()` (SQLite storage), interleaved; medians are reported with the ratio.
The same Maestro chain also runs through `dg.execute_job` under its executor: the threads
executor (the default) against Dagster's in-process one, interleaved too. Targets are
reported (PASS/MISS), never asserted, and the exit code is 0.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import sys
import time
from collections.abc import Iterator

import dagster as dg
from _common import fmt_row, noise_note, verdict

from resources.policy.engine import PolicyEngineResource
from yaml_compiler.backend import compile_text

STEPS = 100
REPEATS = 7
RATIO_TARGET = 1.2
EXECUTOR_TARGET = 1.1


def maestro_yaml(n: int = STEPS, executor: str | None = None) -> str:
    """One sequential stage of echo steps without templates: a chain of n ops."""
    lines = ["name: bench-overhead", "version: 1.0.0", "stages:", "  - name: chain", "    steps:"]
    if executor is not None:
        lines.insert(2, f"executor: {executor}")
    for i in range(n):
        lines += [f"      - id: n{i:03d}", "        run: echo"]
    return "\n".join(lines) + "\n"


def _noop_op(index: int) -> dg.OpDefinition:
    ins = {"after": dg.In(dg.Nothing)} if index else None

    @dg.op(name=f"n{index:03d}", ins=ins, out=dg.Out(dg.Any))
    def noop() -> dict:
        return {}

    return noop


def direct_job(n: int = STEPS) -> dg.JobDefinition:
    """The same chain by hand: each op waits on the previous op's output as a Nothing input."""
    ops = [_noop_op(i) for i in range(n)]
    deps = {
        ops[i].name: {"after": dg.DependencyDefinition(ops[i - 1].name, "result")}
        for i in range(1, n)
    }
    graph = dg.GraphDefinition(name="direct_overhead", node_defs=ops, dependencies=deps)
    return graph.to_job(name="direct_overhead")


@contextlib.contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """Dagster's default console logger prints every event: keep the cost, drop the text."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def maestro_job(executor: str) -> dg.JobDefinition:
    """The chain on one executor, for `dg.execute_job` (which runs a job's own executor)."""
    return compile_text(
        maestro_yaml(executor=executor),
        "bench-overhead.yaml",
        resources={"policy": PolicyEngineResource()},
    ).job


def run_on_executor(executor: str, instance: dg.DagsterInstance) -> float:
    job = dg.build_reconstructable_job(
        "overhead",
        "maestro_job",
        reconstructable_kwargs={"executor": executor},
        reconstructor_working_directory=os.path.dirname(os.path.abspath(__file__)),
    )
    gc.collect()
    with stderr_to_devnull():
        start = time.perf_counter()
        result = dg.execute_job(job, instance=instance)
        elapsed = time.perf_counter() - start
    assert result.success, executor
    return elapsed


def run_once(job: dg.JobDefinition, instance: dg.DagsterInstance) -> tuple[float, int]:
    """Seconds for one in-process run, and the number of event log records it wrote."""
    gc.collect()
    with stderr_to_devnull():
        start = time.perf_counter()
        result = job.execute_in_process(instance=instance)
        elapsed = time.perf_counter() - start
    assert result.success, job.name
    return elapsed, len(instance.get_records_for_run(result.run_id, limit=100_000).records)


def main() -> int:
    jobs = {
        "maestro": compile_text(
            maestro_yaml(), "bench-overhead.yaml", resources={"policy": PolicyEngineResource()}
        ).job,
        "direct": direct_job(),
    }
    assert len(jobs["maestro"].nodes) == len(jobs["direct"].nodes) == STEPS
    seconds: dict[str, list[float]] = {name: [] for name in jobs}
    events: dict[str, int] = {}
    with dg.instance_for_test() as instance:
        for job in jobs.values():  # warm-up
            run_once(job, instance)
        for _ in range(REPEATS):  # interleaved: maestro, direct, maestro, direct ...
            for name, job in jobs.items():
                elapsed, events[name] = run_once(job, instance)
                seconds[name].append(elapsed)
    med = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = med["maestro"] / med["direct"]
    print(
        f"{STEPS} chained no-op ops, execute_in_process on one dg.instance_for_test() (SQLite),\n"
        "default loggers (console output sent to /dev/null); "
        f"median (best) of {REPEATS} interleaved runs after a warm-up:\n"
    )
    print(fmt_row("variant", "median s", "best s", "ms/op", "events/run"))
    for name, label in (("maestro", "maestro (echo steps)"), ("direct", "direct Dagster @op")):
        print(
            fmt_row(
                label,
                f"{med[name]:.3f}",
                f"{min(seconds[name]):.3f}",
                f"{med[name] / STEPS * 1000:.1f}",
                str(events[name]),
            )
        )
    extra_ms = (med["maestro"] - med["direct"]) / STEPS * 1000
    best_ratio = min(seconds["maestro"]) / min(seconds["direct"])
    print(fmt_row("ratio maestro/direct", f"{ratio:.2f}", f"{best_ratio:.2f}", f"+{extra_ms:.1f}"))
    print(noise_note(seconds))
    print(f"\ntarget: ratio <= {RATIO_TARGET}: {verdict(ratio <= RATIO_TARGET)} ({ratio:.2f})")

    executors = ("threads", "in_process")
    by_executor: dict[str, list[float]] = {name: [] for name in executors}
    with dg.instance_for_test() as instance:
        for name in executors:  # warm-up (and the first build of each job)
            run_on_executor(name, instance)
        for _ in range(REPEATS):
            for name in executors:
                by_executor[name].append(run_on_executor(name, instance))
    on = {name: statistics.median(values) for name, values in by_executor.items()}
    executor_ratio = on["threads"] / on["in_process"]
    print(
        f"\nThe maestro chain through dg.execute_job on its executor, median (best) of "
        f"{REPEATS} interleaved runs:\n"
    )
    print(fmt_row("executor", "median s", "best s", "ms/op"))
    for name in executors:
        print(
            fmt_row(
                name,
                f"{on[name]:.3f}",
                f"{min(by_executor[name]):.3f}",
                f"{on[name] / STEPS * 1000:.1f}",
            )
        )
    best_executor_ratio = min(by_executor["threads"]) / min(by_executor["in_process"])
    print(
        fmt_row("ratio threads/in_process", f"{executor_ratio:.2f}", f"{best_executor_ratio:.2f}")
    )
    print(noise_note(by_executor))
    print(
        f"\ntarget: threads <= {EXECUTOR_TARGET} x in_process: "
        f"{verdict(executor_ratio <= EXECUTOR_TARGET)} ({executor_ratio:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
