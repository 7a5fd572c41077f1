"""Compute logs that do not mix between steps running at once in one process.

Dagster captures compute logs per process: `capture_logs` points file descriptors 1 and 2 at
one file, so under threads every step would share it. Here `sys.stdout` and `sys.stderr` are
replaced, for the run, by streams that send what a step writes to that step's own pair of
files (found through the step the writing thread runs, running.py) as well as to the process's
streams. The files come from the instance's compute log manager when the step first writes,
with their own LOGS_CAPTURED event (how the UI finds a step's log); a step that prints nothing
gets none, and the UI shows the run's log for it.

The run-level capture stays what it is under in_process, the process's whole console: every
step's lines, interleaved, Dagster's own log lines, and what is not routed. It is announced
with no step keys, so selecting a step in the UI opens that step's own file.

Not in a step's file: lines written by `logging` handlers (Dagster's console log, which the
event log already holds, or a `logging.StreamHandler` of the user's), writes straight to file
descriptor 1 or 2 (C extensions, `os.write`, children that inherit the descriptors), and output
of threads that op code starts without passing its context on.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
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
from resources.executor.running import RunningStep, StepLog, current_step

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


_LOGGING_WRITE = logging.StreamHandler.emit.__code__
"""The frame that writes a log record to a stream (every logging.StreamHandler's)."""


class StepRoutedStream(io.TextIOBase):
    """A `sys.stdout`/`sys.stderr` stand-in: what a step writes goes to its own file and to the
    original stream (the process's console and the run-level capture, as under in_process, so
    `maestro run` and `dagster job execute` still show it); anything else to the original."""

    def __init__(self, fallback: IO[str], which: int) -> None:
        self._fallback = fallback
        self._which = which

    def write(self, text: str) -> int:
        step = current_step()
        if step is not None and sys._getframe(1).f_code is not _LOGGING_WRITE:
            target = step.log.stream(self._which)
            if target is not None:
                with contextlib.suppress(ValueError):  # closed under a thread it started
                    target.write(text)
                    if "\n" in text:
                        target.flush()  # the UI tails the file while the step runs
        return self._fallback.write(text)

    def flush(self) -> None:
        step = current_step()
        if step is not None and step.log.opened:
            target = step.log.stream(self._which)
            if target is not None:
                with contextlib.suppress(ValueError):
                    target.flush()
        self._fallback.flush()

    def fileno(self) -> int:
        step = current_step()
        target = step.log.stream(self._which) if step is not None else None
        return (target or self._fallback).fileno()

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
    sys.stdout = StepRoutedStream(original[0], 0)
    sys.stderr = StepRoutedStream(original[1], 1)
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
    job_context: PlanExecutionContext, step: RunningStep, report: Callable[[Any], None]
) -> Iterator[None]:
    """Give the step a log whose files open at its first write, reporting the LOGS_CAPTURED
    event that names them; close and publish them when the step ends. Nothing when the
    instance's compute log manager keeps no files (the run-level capture then has it all).

    A cloud manager (S3, ...) is written through its local staging manager and uploaded once
    both files are closed: its own `open_log_stream` uploads and deletes the pair each time one
    of the two streams closes.
    """
    manager = job_context.instance.compute_log_manager
    local = _local_manager(manager)
    if local is None:
        yield
        return
    file_key = f"{_UNSAFE.sub('_', step.step_key)[:120]}-{create_compute_log_file_key()}"
    log_key = manager.build_log_key_for_run(job_context.run_id, file_key)
    files = ExitStack()

    def open_files() -> tuple[IO[str], IO[str]]:
        out = files.enter_context(local.open_log_stream(log_key, ComputeIOType.STDOUT))
        err = files.enter_context(local.open_log_stream(log_key, ComputeIOType.STDERR))
        assert out is not None and err is not None
        report(
            dg.DagsterEvent.capture_logs(
                job_context, [step.step_key], log_key, CapturedLogContext(log_key)
            )
        )
        return out, err

    step.log = StepLog(open_files)
    try:
        yield
    finally:
        opened = step.log.close() is not None
        files.close()
        if opened:
            _publish(manager, local, log_key)


def _publish(manager: Any, local: LocalComputeLogManager, log_key: Sequence[str]) -> None:
    if local is manager:
        _touch(local.complete_artifact_path(log_key))  # as capture_logs does: UI stops tailing
        return
    for io_type in (ComputeIOType.STDOUT, ComputeIOType.STDERR):
        manager.upload_to_cloud_storage(log_key, io_type)
    local.delete_logs(log_key=log_key)


def _touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a"):
        pass
