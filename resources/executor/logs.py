"""Compute logs that do not mix between steps running at once in one process.

Dagster captures compute logs per process: `capture_logs` points file descriptors 1 and 2 at
one file, so under threads every step would share it. Here `sys.stdout` and `sys.stderr` are
replaced, for the run, by streams that write to the file of the step the writing thread runs
(see running.py) and to the run-level capture otherwise. Each step gets its own pair of files
from the instance's compute log manager and its own LOGS_CAPTURED event, which is how the UI
finds a step's logs; the run-level capture is announced with no step keys, so selecting a step
in the UI opens that step's own log. The run-level file stays what it is under in_process, the
process's whole console: every step's lines, interleaved, and everything below.

Not routed: writes straight to file descriptor 1 or 2 (C extensions, `os.write`, children
that inherit the descriptors) and output from threads that op code starts without passing its
context on; those land in the run-level file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import IO, Any

import dagster as dg

from resources.dagster_private import (
    CapturedLogContext,
    ComputeIOType,
    LocalComputeLogManager,
    PlanExecutionContext,
    create_compute_log_file_key,
)
from resources.executor.running import RunningStep, current_step

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class StepRoutedStream(io.TextIOBase):
    """A `sys.stdout`/`sys.stderr` stand-in: what a step writes goes to its own file and to the
    original stream (the process's console and the run-level capture, as under in_process, so
    `maestro run` and `dagster job execute` still show it); anything else to the original."""

    def __init__(self, fallback: IO[str], which: str) -> None:
        self._fallback = fallback
        self._which = which

    def _target(self) -> IO[str]:
        step = current_step()
        target = getattr(step, self._which) if step is not None else None
        return target if target is not None else self._fallback

    def write(self, text: str) -> int:
        target = self._target()
        if target is self._fallback:
            return target.write(text)
        with contextlib.suppress(ValueError):  # closed under a thread the step started
            target.write(text)
            if "\n" in text:
                target.flush()  # the UI tails the file while the step runs
        return self._fallback.write(text)

    def flush(self) -> None:
        target = self._target()
        if target is not self._fallback:
            with contextlib.suppress(ValueError):
                target.flush()
        self._fallback.flush()

    def fileno(self) -> int:
        return self._target().fileno()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._fallback, "encoding", None) or "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


@contextmanager
def std_streams_routed_by_step() -> Iterator[None]:
    original = sys.stdout, sys.stderr
    sys.stdout = StepRoutedStream(original[0], "stdout")
    sys.stderr = StepRoutedStream(original[1], "stderr")
    try:
        yield
    finally:
        sys.stdout, sys.stderr = original


def run_capture_event(
    job_context: PlanExecutionContext, log_key: Sequence[str], log_context: CapturedLogContext
) -> dg.DagsterEvent:
    """The run-level capture, announced with no step keys (see the module docstring)."""
    return dg.DagsterEvent.capture_logs(job_context, [], log_key, log_context)


def _local_manager(manager: Any) -> LocalComputeLogManager | None:
    """Where step files are written: the local manager, or a cloud manager's local staging one."""
    if isinstance(manager, LocalComputeLogManager):
        return manager
    local = getattr(manager, "local_manager", None)
    return local if isinstance(local, LocalComputeLogManager) else None


@contextmanager
def step_log_files(
    job_context: PlanExecutionContext, step: RunningStep
) -> Iterator[dg.DagsterEvent | None]:
    """Open the step's stdout/stderr files and yield the LOGS_CAPTURED event naming them (None
    when the instance's compute log manager keeps no files: the run-level capture then has it).

    A cloud manager (S3, ...) is written through its local staging manager and uploaded once
    both files are closed: its own `open_log_stream` uploads and deletes the pair each time one
    of the two streams closes.
    """
    manager = job_context.instance.compute_log_manager
    local = _local_manager(manager)
    if local is None:
        yield None
        return
    file_key = f"{_UNSAFE.sub('_', step.step_key)[:120]}-{create_compute_log_file_key()}"
    log_key = manager.build_log_key_for_run(job_context.run_id, file_key)
    with ExitStack() as files:
        step.stdout = files.enter_context(local.open_log_stream(log_key, ComputeIOType.STDOUT))
        step.stderr = files.enter_context(local.open_log_stream(log_key, ComputeIOType.STDERR))
        try:
            yield dg.DagsterEvent.capture_logs(
                job_context, [step.step_key], log_key, CapturedLogContext(log_key)
            )
        finally:
            step.stdout = step.stderr = None  # later writes of stray threads: the run's file
    if local is manager:
        _touch(local.complete_artifact_path(log_key))  # as capture_logs does: UI stops tailing
        return
    for io_type in (ComputeIOType.STDOUT, ComputeIOType.STDERR):
        manager.upload_to_cloud_storage(log_key, io_type)  # type: ignore[attr-defined]
    local.delete_logs(log_key=log_key)


def _touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a"):
        pass
