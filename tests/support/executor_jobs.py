"""Plain Dagster jobs on the threads executor, reconstructable (`dg.reconstructable`), for the
executor's own tests: no workflow, no compiler, only Dagster ops."""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from resources.executor import current_step, threads_executor

MARKERS = os.environ.get("MAESTRO_TEST_MARKERS", "/tmp/maestro-executor-markers")
THREADS = threads_executor()
IO_DIR = os.path.join(tempfile.gettempdir(), "maestro-executor-test-io")
"""Where the isolated job's outputs go: the same path in the run's process and the step's."""


def _sleepers(count: int, prefix: str, seconds: float = 1.0) -> list[dg.OpDefinition]:
    def make(index: int) -> dg.OpDefinition:
        @dg.op(name=f"{prefix}_{index}")
        def sleeper() -> None:
            time.sleep(seconds)

        return sleeper

    return [make(i) for i in range(count)]


_FOUR = _sleepers(4, "sleep")


@dg.job(executor_def=THREADS)
def four_sleeps() -> None:
    for op in _FOUR:
        op()


@dg.job(executor_def=dg.in_process_executor)
def four_sleeps_in_process() -> None:
    for op in _FOUR:
        op()


# ---- pools: the instance limit of "ollama" is set by the test


def _pooled(name: str, pool: str | None, seconds: float) -> dg.OpDefinition:
    @dg.op(name=name, pool=pool)
    def pooled() -> None:
        time.sleep(seconds)

    return pooled


_LLM = [_pooled(f"llm_{i}", "ollama", 1.0) for i in range(2)]
_PLAIN = [_pooled(f"plain_{i}", None, 1.0) for i in range(2)]


@dg.job(executor_def=THREADS)
def pooled_steps() -> None:
    for op in (*_LLM, *_PLAIN):
        op()


_LONG_LLM = [_pooled(f"long_llm_{i}", "ollama", 2.5) for i in range(2)]


@dg.job(executor_def=THREADS)
def pool_hand_off() -> None:
    for op in _LONG_LLM:
        op()


# ---- a retry with a 2 s delay beside three 1 s siblings, on two workers


@dg.op(retry_policy=dg.RetryPolicy(max_retries=1, delay=2))
def flaky(context: dg.OpExecutionContext) -> None:
    if context.retry_number == 0:
        raise RuntimeError("the first attempt fails")


_SIBLINGS = _sleepers(3, "sibling")


@dg.graph
def _retry_graph() -> None:
    flaky()
    for op in _SIBLINGS:
        op()


retry_beside_siblings = _retry_graph.to_job(
    name="retry_beside_siblings", executor_def=threads_executor(max_concurrent=2)
)
retry_beside_siblings_in_process = _retry_graph.to_job(
    name="retry_beside_siblings_in_process", executor_def=dg.in_process_executor
)


# ---- dynamic fan-out


@dg.op(out=dg.DynamicOut(int))
def fan_out():  # type: ignore[no-untyped-def]
    for index in range(6):
        yield dg.DynamicOutput(index, mapping_key=f"item_{index}")


@dg.op
def work(value: int) -> int:
    time.sleep(1)
    return value * 2


@dg.op
def gather(values: list[int]) -> int:
    return sum(values)


@dg.graph
def _dynamic_graph() -> None:
    gather(fan_out().map(work).collect())


dynamic_fan_out = _dynamic_graph.to_job(name="dynamic_fan_out", executor_def=THREADS)
dynamic_fan_out_in_process = _dynamic_graph.to_job(
    name="dynamic_fan_out_in_process", executor_def=dg.in_process_executor
)


# ---- a failure: downstream never runs; re-execution from failure


@dg.op
def upstream() -> int:
    return 1


@dg.op
def fails_without_marker(value: int) -> int:
    if not Path(MARKERS, "allow").exists():
        raise RuntimeError("the marker file is missing")
    return value + 1


@dg.op
def downstream(value: int) -> int:
    return value + 1


@dg.op
def independent() -> None:
    time.sleep(0.3)


@dg.graph
def _failing_graph() -> None:
    downstream(fails_without_marker(upstream()))
    independent()


failing = _failing_graph.to_job(name="failing", executor_def=THREADS)
failing_in_process = _failing_graph.to_job(
    name="failing_in_process", executor_def=dg.in_process_executor
)


# ---- compute logs of steps running at once


def _printer(name: str) -> dg.OpDefinition:
    @dg.op(name=name)
    def printer(context: dg.OpExecutionContext) -> None:
        for index in range(5):
            print(f"{name} out {index}", flush=True)
            print(f"{name} err {index}", file=sys.stderr, flush=True)
            time.sleep(0.1)
        context.log.info(f"{name} logs through context.log")

    return printer


@dg.op
def child_process() -> None:
    """A child that inherits file objects of the step's stream: its own lines, its own log."""
    subprocess.run(
        ["sh", "-c", "echo child-out; echo child-err >&2"],
        stdout=sys.stdout,
        stderr=sys.stderr,
        check=True,
    )


@dg.job(executor_def=THREADS)
def printers() -> None:
    _printer("printer_a")()
    _printer("printer_b")()
    child_process()


# ---- termination


@dg.op
def cooperative() -> int:
    """Stops when the executor says so (Maestro's ops do through StepContext.cancelled)."""
    step = current_step()
    assert step is not None
    for _ in range(600):
        if step.cancel.wait(0.1):
            raise dg.DagsterExecutionInterruptedError("cancelled")
    return 1


@dg.op
def stubborn() -> int:
    """Ignores the cancel signal: stopped by the interrupt raised inside it after the grace."""
    for _ in range(600):
        time.sleep(0.1)
    return 1


@dg.op
def after(first: int, second: int) -> None:
    Path(MARKERS, "after-ran").write_text("yes")


@dg.job(executor_def=threads_executor().configured({"cancel_grace_seconds": 1.0}))
def terminated() -> None:
    after(cooperative(), stubborn())


# ---- async ops side by side (a loop per worker thread)


@dg.op
async def async_a() -> None:
    await asyncio.sleep(1)


@dg.op
async def async_b() -> None:
    await asyncio.sleep(1)


@dg.job(executor_def=THREADS)
def async_steps() -> None:
    async_a()
    async_b()


# ---- a step in a process of its own


@dg.op(tags={"maestro/isolation": "process"})
def isolated_pid() -> int:
    print("in the isolated process")
    return os.getpid()


@dg.op
def threaded_pid() -> int:
    return os.getpid()


@dg.job(
    executor_def=threads_executor(isolated_steps=True),
    resource_defs={"io_manager": dg.FilesystemIOManager(base_dir=IO_DIR)},
)
def isolation() -> None:
    isolated_pid()
    threaded_pid()


# ---- liveness: a run worker killed while its one step sleeps (tests/maestro_cli/test_liveness.py)
_LONG = _sleepers(1, "long_sleep", seconds=120.0)


@dg.job(executor_def=THREADS)
def one_long_sleep() -> None:
    _LONG[0]()


defs = dg.Definitions(
    jobs=[
        four_sleeps,
        four_sleeps_in_process,
        pooled_steps,
        pool_hand_off,
        retry_beside_siblings,
        retry_beside_siblings_in_process,
        dynamic_fan_out,
        dynamic_fan_out_in_process,
        failing,
        failing_in_process,
        printers,
        terminated,
        async_steps,
        isolation,
        one_long_sleep,
    ]
)


def job_named(name: str) -> dg.JobDefinition:
    """For `dg.build_reconstructable_job(__name__, "job_named", {"name": ...})`: the jobs made
    with `GraphDefinition.to_job` cannot go through `dg.reconstructable` directly."""
    return defs.resolve_job_def(name)


def reconstructable(job: dg.JobDefinition) -> "dg.ReconstructableJob":
    return dg.build_reconstructable_job(
        __name__,
        "job_named",
        reconstructable_kwargs={"name": job.name},
        reconstructor_working_directory=str(Path(__file__).resolve().parents[2]),
    )
