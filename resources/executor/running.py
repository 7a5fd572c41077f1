"""The step a thread is running, as op code sees it: its cancel signal and its log.

The threads executor sets it (a contextvar) around each step it runs. Code that starts its own
threads passes it on with `contextvars.copy_context().run` (the shell plugin's output pumps
and the backend's timeout watcher do), so their output lands in the same step's log.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO


class StepLog:
    """A step's own stdout/stderr files, opened by its first write (a step that prints nothing
    costs no files and no LOGS_CAPTURED event)."""

    def __init__(self, open_files: Callable[[], tuple[IO[str], IO[str]]] | None = None) -> None:
        self._open_files = open_files
        self._files: tuple[IO[str], IO[str]] | None = None
        self._lock = threading.RLock()
        self._opening = False
        self._closed = False

    def stream(self, which: int) -> IO[str] | None:
        """The step's stdout (0) or stderr (1) file; None: write to the process's own."""
        if self._files is not None:
            return self._files[which]
        if self._open_files is None or self._closed:
            return None
        with self._lock:
            if self._files is None and not self._opening and not self._closed:
                self._opening = True  # opening logs an event: its lines go to the process
                try:
                    self._files = self._open_files()
                finally:
                    self._opening = False
            return self._files[which] if self._files is not None else None

    @property
    def opened(self) -> bool:
        return self._files is not None

    def close(self) -> tuple[IO[str], IO[str]] | None:
        """Stop routing to the files; the caller closes and publishes what was opened."""
        with self._lock:
            self._closed = True
            files, self._files = self._files, None
            return files


@dataclass
class RunningStep:
    """One attempt of one step on a worker thread."""

    step_key: str
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set when the run is being terminated: stop, and raise DagsterExecutionInterruptedError."""
    log: StepLog = field(default_factory=StepLog)


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
