"""Live progress for `maestro run`: one short line per step event, as the instance stores it.

The instance calls its run listeners right after it writes each event to the event log, in the
thread that executes the step, so a step's "started" line comes before anything the step prints.
Steps run at once under the threads executor, so events arrive from several threads: one lock
keeps the lines and the outcome tables whole.
The same events feed the summary: what is printed is what the Dagster UI shows. `maestro status`
and `maestro logs` feed a stored run's events through the same class (`RunProgress.for_steps`),
which also keeps each step's attempts, duration and error (`steps`).
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


def failure_kind(event: dg.DagsterEvent) -> str | None:
    """The `error_kind` a step's dg.Failure carries (`not_started`, `timeout`...), if any."""
    user = getattr(event.event_specific_data, "user_failure_data", None)
    kind = user.metadata.get("error_kind") if user is not None else None
    return None if kind is None else str(getattr(kind, "value", kind))


NOT_STARTED = "not_started"
"""A step `on_failure: stop` kept from starting: Dagster records a failure; shown as not run."""


def failure_message(event: dg.DagsterEvent) -> str:
    """What went wrong, as the step reported it (a dg.Failure description when there is one)."""
    data = event.event_specific_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return user.description
    return error_text(getattr(data, "error", None))


@dataclass
class StepRecord:
    """One Dagster step of a run (a step, or a for_each item or part), as its events tell it."""

    key: str
    label: str
    step_id: str
    is_exit: bool = True  # decides the step's outcome (a plain step, or for_each's collect)
    status: str = "running"  # running, retrying, succeeded, failed, skipped
    attempts: int = 0
    started_at: float | None = None
    duration_s: float | None = None
    error: str | None = None
    source: str | None = None  # the step's file:line (failure metadata `source`)


@dataclass
class RunProgress:
    """Per-step outcomes of one run, updated from its events; prints a line per change."""

    plan: WorkflowPlan | None
    out: TextIO
    started: float = field(default_factory=time.time)
    outcomes: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    """Every step key seen, in the order they started."""
    op_steps: dict[str, str] = field(default_factory=dict)
    """Node name -> step id; from the plan, or given (`for_steps`) for a stored run."""
    step_order: list[str] = field(default_factory=list)
    _produced: set[str] = field(default_factory=set)
    _skip_reasons: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_steps(
        cls, op_steps: Mapping[str, str], step_order: list[str], out: TextIO, started: float
    ) -> RunProgress:
        """Progress of a run known only from the instance (its job snapshot's step nodes)."""
        return cls(None, out, started, op_steps=dict(op_steps), step_order=step_order)

    def __post_init__(self) -> None:
        if self.plan is not None:
            self.op_steps = {step.node_name: step.id for step in self.plan.steps}
            self.step_order = [step.id for step in self.plan.steps]
        self._op_steps = self.op_steps
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
            part = step_part(event.step_key, self._op_steps)
            self._record(part, event, entry.timestamp)
            line = handler(part, event)
            if line is not None:
                elapsed = max(0.0, entry.timestamp - self.started)
                self.out.write(f"[{elapsed:7.2f}s] {line}\n")
                self.out.flush()

    def _record(self, part: StepPart, event: dg.DagsterEvent, timestamp: float) -> None:
        """Keep the step's attempts, start, duration and error (for `maestro status`)."""
        key = event.step_key or ""
        record = self.steps.get(key)
        if record is None:
            record = self.steps[key] = StepRecord(key, part.label, part.step_id, part.is_exit)
        kind = event.event_type_value
        if kind in ("STEP_START", "STEP_RESTARTED"):
            record.attempts += 1
            record.started_at = timestamp
            record.status = "running"
        elif kind == "STEP_UP_FOR_RETRY":
            record.status = "retrying"
            record.error = error_text(getattr(event.event_specific_data, "error", None))
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            millis = getattr(event.event_specific_data, "duration_ms", None)
            if millis is not None:
                record.duration_s = millis / 1000
            elif record.started_at is not None:
                record.duration_s = max(0.0, timestamp - record.started_at)
        if kind == "STEP_FAILURE":
            user = getattr(event.event_specific_data, "user_failure_data", None)
            source = user.metadata.get("source") if user is not None else None
            record.source = str(getattr(source, "value", source)) if source else None
            record.error = failure_message(event)
            record.status = "not started" if failure_kind(event) == NOT_STARTED else "failed"
        elif kind == "STEP_SKIPPED":
            record.status = "skipped"

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
        record = self.steps.get(key)
        if key in self._skip_reasons or (part.is_exit and key not in self._produced):
            # A skip marker (`when`, skipped upstream), or no result at all (on_failure: stop).
            if record is not None:
                record.status = "skipped"
            if part.is_exit:
                self._settle(part.step_id, "skipped")
            reason = self._skip_reasons.get(key, "not started: an earlier step failed")
            return self._line("skipped", part.label, f" ({reason})")
        if record is not None:
            record.status = "succeeded"
        if part.is_exit:
            self._settle(part.step_id, "succeeded")
        return self._line("succeeded", part.label, self._duration(event))

    def _on_failure(self, part: StepPart, event: dg.DagsterEvent) -> str:
        message = failure_message(event)
        if failure_kind(event) == NOT_STARTED:
            self._settle(part.step_id, "not run")
            return self._line("not run", part.label, " (not started: an earlier step failed)")
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
        for step_id in self.step_order:
            groups[self.outcomes.get(step_id, "not run")].append(step_id)
        return groups
