"""The step a thread is running, as op code sees it: its cancel signal and its log streams.

The threads executor sets it (a contextvar) around each step it runs. Code that starts its own
threads passes it on with `contextvars.copy_context().run` (the shell plugin's output pumps
and the backend's timeout watcher do), so their output lands in the same step's log.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO


@dataclass
class RunningStep:
    """One attempt of one step on a worker thread."""

    step_key: str
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set when the run is being terminated: stop, and raise DagsterExecutionInterruptedError."""
    stdout: IO[str] | None = None
    stderr: IO[str] | None = None
    """The step's own compute-log files while it runs (None: no per-step capture)."""


_CURRENT: contextvars.ContextVar[RunningStep | None] = contextvars.ContextVar(
    "maestro_running_step", default=None
)


def current_step() -> RunningStep | None:
    """The step this thread runs for the threads executor; None under any other executor."""
    return _CURRENT.get()


@contextmanager
def running(step: RunningStep) -> Iterator[RunningStep]:
    token = _CURRENT.set(step)
    try:
        yield step
    finally:
        _CURRENT.reset(token)
