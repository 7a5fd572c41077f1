"""`maestro logs RUN_ID`: a run's event log and its steps' captured stdout/stderr.

The event log comes from the instance's event storage; stdout and stderr from its compute log
manager, through the keys the run's `LOGS_CAPTURED` events name (one per step process with the
multiprocess executor, one for the whole run in process). `--follow` polls both with cursors
until the run has ended and every capture is complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import dagster as dg

from maestro_cli.progress import error_text, failure_message, step_part
from maestro_cli.run_views import RunNotFoundError, step_nodes
from resources.dagster_private import compute_log_key

POLL_SECONDS = 0.5
SETTLE_POLLS = 20
"""After the run ends, how many polls to wait for its captures to be marked complete."""


@dataclass
class Capture:
    """One captured log (a process's or a step's stdout and stderr) and how far it was read."""

    log_key: list[str]
    step_keys: list[str]
    cursor: str | None = None
    complete: bool = False

    @property
    def title(self) -> str:
        return f"steps {', '.join(self.step_keys)}" if self.step_keys else "run"


@dataclass
class LogReader:
    """Reads a run's events and captured output from where it stopped last time."""

    instance: dg.DagsterInstance
    run_id: str
    step: str | None
    out: TextIO
    event_cursor: str | None = None
    captures: dict[str, Capture] = field(default_factory=dict)
    _last_stream: str | None = None

    def __post_init__(self) -> None:
        run = self.instance.get_run_by_id(self.run_id)
        if run is None:
            raise RunNotFoundError(f"no run {self.run_id} in this instance")
        self._op_steps, _ = step_nodes(self.instance, run)

    def _wanted(self, step_key: str | None) -> bool:
        if self.step is None:
            return True
        if step_key is None:
            return False
        return step_key == self.step or step_part(step_key, self._op_steps).step_id == self.step

    def read_events(self) -> int:
        """Print the events stored since the last call; note new captures. Returns how many."""
        printed = 0
        while True:
            page = self.instance.get_records_for_run(
                self.run_id, cursor=self.event_cursor, limit=1000
            )
            for record in page.records:
                entry = record.event_log_entry
                self._note_capture(entry)
                if self._wanted(entry.step_key):
                    self.out.write(event_line(entry) + "\n")
                    printed += 1
            self.event_cursor = page.cursor
            if not page.has_more:
                self.out.flush()
                return printed

    def _note_capture(self, entry: Any) -> None:
        event = entry.dagster_event
        if event is None or event.event_type != dg.DagsterEventType.LOGS_CAPTURED:
            return
        data = event.event_specific_data
        step_keys = list(getattr(data, "step_keys", None) or [])
        if self.step is not None and step_keys and not any(self._wanted(k) for k in step_keys):
            return
        key = list(compute_log_key(self.instance, self.run_id, data.file_key))
        self.captures.setdefault("/".join(key), Capture(key, step_keys))

    def read_output(self, headers: bool = True) -> int:
        """Print the captured output added since the last call. Returns the bytes printed."""
        manager = self.instance.compute_log_manager
        printed = 0
        for capture in self.captures.values():
            if capture.complete and capture.cursor is not None:
                continue
            complete = manager.is_capture_complete(capture.log_key)
            data = manager.get_log_data(capture.log_key, cursor=capture.cursor)
            capture.cursor = data.cursor
            capture.complete = complete
            for stream, chunk in (("stdout", data.stdout), ("stderr", data.stderr)):
                if not chunk:
                    continue
                name = f"{stream} of {capture.title}"
                if headers and name != self._last_stream:
                    self.out.write(f"==> {name} <==\n")
                    self._last_stream = name
                text = chunk.decode("utf-8", errors="replace")
                self.out.write(text if text.endswith("\n") else text + "\n")
                printed += len(chunk)
        self.out.flush()
        return printed

    def run_finished(self) -> bool:
        run = self.instance.get_run_by_id(self.run_id)
        return run is None or run.is_finished

    def all_complete(self) -> bool:
        return all(c.complete for c in self.captures.values())


def event_line(entry: Any) -> str:
    """`time  step  EVENT_TYPE  message`, one line per event (user log lines show their level)."""
    stamp = datetime.fromtimestamp(entry.timestamp, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
    event = entry.dagster_event
    if event is None:
        kind = logging.getLevelName(entry.level)
        message = entry.user_message
    else:
        kind = event.event_type_value
        message = _event_message(event) or entry.message
    step = entry.step_key or "-"
    first, *rest = (message or "").splitlines() or [""]
    return "  ".join((stamp, step, kind, first)) + "".join(f"\n    {line}" for line in rest)


def _event_message(event: dg.DagsterEvent) -> str | None:
    kind = event.event_type_value
    if kind == "STEP_FAILURE":
        return failure_message(event)
    if kind in ("STEP_UP_FOR_RETRY", "RUN_FAILURE"):
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return f"{event.message}: {error_text(error)}"
    return None


def show_logs(
    instance: dg.DagsterInstance,
    run_id: str,
    out: TextIO,
    step: str | None = None,
    follow: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Print the run's events, then its captured output; with `follow`, keep printing both
    as they grow until the run has ended and its captures are complete."""
    reader = LogReader(instance, run_id, step, out)
    if not follow:
        reader.read_events()
        if reader.captures:
            reader.read_output()
        return
    settling = 0
    while True:
        finished = reader.run_finished()  # asked first: what is read below is then all of it
        reader.read_events()
        reader.read_output()
        if finished and reader.all_complete():
            return
        if finished:  # the processes mark their captures complete as they exit
            settling += 1
            if settling > SETTLE_POLLS:
                out.write("(a captured output was never marked complete: its process died)\n")
                return
        sleep(POLL_SECONDS)
