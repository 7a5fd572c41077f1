"""The `step <id>` span around an op's compute function, and the trace ids in its log lines.

Thin glue over resources.observability.tracing: the span's ids are derived from the run id,
the step key and the attempt, so a step in any process joins its run's trace.

No `from __future__ import annotations`: Dagster reads the compute function's `context`
annotation at definition time.
"""

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from resources.observability import tracing
from resources.run_tags import TRACEPARENT_TAG, WORKFLOW_TAG
from yaml_compiler.backend.runtime.step import StepRuntime

OpBody = Any


class _TraceIds(logging.Filter):
    """Appends the step span's ids to every log line the step writes (not to Dagster's own
    events: their run id is the trace id)."""

    def __init__(self, suffix: str) -> None:
        super().__init__()
        self._suffix = suffix

    def filter(self, record: logging.LogRecord) -> bool:
        if "dagster_event" not in record.__dict__:
            record.msg = f"{record.getMessage()}{self._suffix}"
            record.args = ()
        return True


def _step_attributes(
    context: dg.OpExecutionContext, runtime: StepRuntime, step_key: str, part: str | None
) -> dict[str, Any]:
    return {
        "maestro.run_id": context.run_id,
        "maestro.workflow.name": context.run.tags.get(WORKFLOW_TAG, runtime.workflow.name),
        "maestro.step.id": step_key if "[" in step_key else runtime.step.id,
        "maestro.step.plugin": runtime.plugin.name,
        "maestro.step.attempt": context.retry_number + 1,
        "maestro.stage": runtime.step.stage,
        "maestro.step.source": runtime.where,
        **({"maestro.step.part": part} if part else {}),
    }


def _note_output(span: Any, item: Any) -> None:
    """What the step's output says about it: skipped, cost, stored files' hashes."""
    if not isinstance(item, dg.Output):
        return
    metadata: Mapping[str, Any] = item.metadata or {}

    def value(key: str) -> Any:
        entry = metadata.get(key)
        return getattr(entry, "value", entry)

    if "skipped" in metadata:
        span.set_attribute("maestro.step.status", "skipped")
    cost = value("cost_usd")
    if cost:
        span.set_attribute("maestro.step.cost_usd", float(cost))


def traced(runtime: StepRuntime, body: OpBody, part: str | None = None) -> OpBody:
    """The op's compute function inside its attempt's span (a no-op when tracing is off).
    `part`: `items` or `collect`, the fan-out and collect ops of a `for_each` step, whose
    spans are `step <id> (items)` and `step <id> (collect)` beside the items' `step <id>[i]`."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        if not tracing.enabled():
            yield from body(context, inputs)
            return
        step_key = context.get_step_execution_context().step.key
        with tracing.step_span(
            context.run_id,
            step_key,
            context.retry_number,
            context.run.tags.get(TRACEPARENT_TAG),
            _step_attributes(context, runtime, step_key, part),
        ) as span:
            ids = tracing.current_ids()
            log_filter = _TraceIds(f" [trace_id={ids[0]} span_id={ids[1]}]" if ids else "")
            context.log.addFilter(log_filter)
            try:
                for item in body(context, inputs):
                    if span is not None:
                        _note_output(span, item)
                    yield item
            except dg.Failure as failure:
                cost = failure.metadata.get("cost_usd") if failure.metadata else None
                if span is not None and cost is not None:
                    span.set_attribute("maestro.step.cost_usd", float(getattr(cost, "value", 0)))
                raise
            finally:
                context.log.removeFilter(log_filter)

    return compute
