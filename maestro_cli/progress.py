"""Live progress for `maestro run`: one short line per step event, as the instance stores it.

The instance calls its run listeners right after it writes each event to the event log, in the
thread that executes the step, so a step's "started" line comes before anything the step prints.
Steps run at once under the threads executor, so events arrive from several threads: one lock
keeps the lines and the outcome tables whole.
The same events feed the summary: what is printed is what the Dagster UI shows.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import dagster as dg

from yaml_compiler.plan import WorkflowPlan

_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failure|Failed)\w*: ")
_MAPPED_KEY = re.compile(r"^(?P<op>.+)\[(?P<key>[^\]]+)\]$")


@dataclass(frozen=True)
class StepPart:
    """Which step a Dagster step key belongs to; `part` names a for_each sub-op."""

    step_id: str
    part: str | None = None  # None (the step itself), "items", "item <key>", "collect"
    is_exit: bool = True  # the key whose success or skip decides the step's outcome

    @property
    def label(self) -> str:
        if self.part is None:
            return self.step_id
        if self.part.startswith("item "):
            return f"{self.step_id}[{self.part.removeprefix('item ')}]"
        return f"{self.step_id} ({self.part})"


def step_part(step_key: str, op_steps: Mapping[str, str]) -> StepPart:
    """Map a step key (`fetch`, `greet__items`, `greet[0]`, `greet__collect`) to its step."""
    mapped = _MAPPED_KEY.match(step_key)
    if mapped and mapped.group("op") in op_steps:
        return StepPart(op_steps[mapped.group("op")], f"item {mapped.group('key')}", False)
    if step_key in op_steps:
        return StepPart(op_steps[step_key])
    for suffix, part, is_exit in (("__items", "items", False), ("__collect", "collect", True)):
        base = step_key.removesuffix(suffix)
        if step_key.endswith(suffix) and base in op_steps:
            return StepPart(op_steps[base], part, is_exit)
    return StepPart(step_key)


def error_text(error: Any) -> str:
    """The useful line of a SerializableErrorInfo: the innermost cause, without the class path."""
    while error is not None and error.cause is not None and "Retry" in (error.cls_name or ""):
        error = error.cause
    if error is None:
        return "unknown error"
    return _EXCEPTION_PREFIX.sub("", error.message.strip(), count=1)


def failure_message(event: dg.DagsterEvent) -> str:
    """What went wrong, as the step reported it (a dg.Failure description when there is one)."""
    data = event.event_specific_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return user.description
    return error_text(getattr(data, "error", None))


@dataclass
class RunProgress:
    """Per-step outcomes of one run, updated from its events; prints a line per change."""

    plan: WorkflowPlan
    out: TextIO
    started: float = field(default_factory=time.time)
    outcomes: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    _produced: set[str] = field(default_factory=set)
    _skip_reasons: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._op_steps = {step.node_name: step.id for step in self.plan.steps}
        self._handlers: dict[str, Callable[[StepPart, dg.DagsterEvent], str | None]] = {
            "STEP_START": lambda part, _: self._line("started", part.label),
            "STEP_RESTARTED": lambda part, _: self._line("restarted", part.label),
            "STEP_UP_FOR_RETRY": self._on_retry,
            "STEP_OUTPUT": self._on_output,
            "STEP_SUCCESS": self._on_success,
            "STEP_FAILURE": self._on_failure,
            "STEP_SKIPPED": self._on_skipped,
        }

    def handle(self, entry: Any) -> None:
        """Take one EventLogEntry; print its line, if it has one."""
        event = entry.dagster_event
        if event is None or event.step_key is None:
            return
        handler = self._handlers.get(event.event_type_value)
        if handler is None:
            return
        with self._lock:
            line = handler(step_part(event.step_key, self._op_steps), event)
            if line is not None:
                elapsed = max(0.0, entry.timestamp - self.started)
                self.out.write(f"[{elapsed:7.2f}s] {line}\n")
                self.out.flush()

    @staticmethod
    def _line(verb: str, label: str, detail: str = "") -> str:
        return f"{verb:<10} {label}{detail}"

    def _on_output(self, part: StepPart, event: dg.DagsterEvent) -> None:
        output = event.step_output_data
        if output.output_name == "result":
            self._produced.add(event.step_key or "")
            reason = output.metadata.get("skipped")
            if reason is not None:
                self._skip_reasons[event.step_key or ""] = str(reason.value)

    def _on_retry(self, part: StepPart, event: dg.DagsterEvent) -> str:
        error = getattr(event.event_specific_data, "error", None)
        return self._line("retrying", part.label, f": {error_text(error)}")

    def _on_success(self, part: StepPart, event: dg.DagsterEvent) -> str:
        key = event.step_key or ""
        if key in self._skip_reasons or (part.is_exit and key not in self._produced):
            # A skip marker (`when`, skipped upstream), or no result at all (on_failure: stop).
            if part.is_exit:
                self._settle(part.step_id, "skipped")
            reason = self._skip_reasons.get(key, "not started: an earlier step failed")
            return self._line("skipped", part.label, f" ({reason})")
        if part.is_exit:
            self._settle(part.step_id, "succeeded")
        return self._line("succeeded", part.label, self._duration(event))

    def _on_failure(self, part: StepPart, event: dg.DagsterEvent) -> str:
        message = failure_message(event)
        self.outcomes[part.step_id] = "failed"
        self.failures.setdefault(part.step_id, message)
        return self._line("FAILED", part.label, f": {message}")

    def _on_skipped(self, part: StepPart, event: dg.DagsterEvent) -> str:
        self._settle(part.step_id, "skipped")
        return self._line("skipped", part.label, " (an upstream step gave no output)")

    def _settle(self, step_id: str, outcome: str) -> None:
        if self.outcomes.get(step_id) != "failed":
            self.outcomes[step_id] = outcome

    @staticmethod
    def _duration(event: dg.DagsterEvent) -> str:
        millis = getattr(event.event_specific_data, "duration_ms", None)
        return f" ({millis / 1000:.2f}s)" if millis is not None else ""

    def by_outcome(self) -> dict[str, list[str]]:
        """Step ids per outcome: succeeded, failed, skipped, and not run (never started)."""
        groups: dict[str, list[str]] = {"succeeded": [], "failed": [], "skipped": [], "not run": []}
        for step in self.plan.steps:
            groups[self.outcomes.get(step.id, "not run")].append(step.id)
        return groups
