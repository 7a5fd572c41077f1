"""The compute functions of a workflow's ops: a plain step, and for_each's three parts.

Skips travel as data: a skipped step still emits `result` (a skip marker), so later stages
run. A failed step emits nothing, and Dagster skips everything downstream of it. A step that
`on_failure: stop` keeps from starting fails too (error kind `not_started`, never retried): it
did not do its work, so it must not be recorded as succeeded, and re-execution from failure
runs it.

No `from __future__ import annotations` here: Dagster reads the compute functions'
`context` annotation at definition time and needs the real class, not a string.
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg

from resources.sentinels import SENTINEL_KEY, is_skipped, skip_marker
from yaml_compiler.backend.runtime.execute import (
    PARAMS_METADATA,
    StepResult,
    execute_step,
    params_metadata,
    step_failure,
)
from yaml_compiler.backend.runtime.redaction import Redactor, redact_value
from yaml_compiler.backend.runtime.scope import condition_holds, for_each_items, template_context
from yaml_compiler.backend.runtime.spans import traced
from yaml_compiler.backend.runtime.step import StepRuntime

EMPTY = {SENTINEL_KEY: "empty"}  # a for_each over an empty list: still collects, to []
NOT_STARTED = "not_started"
"""The error kind of a step that `on_failure: stop` did not start (failure metadata)."""

OpBody = Callable[[dg.OpExecutionContext, Mapping[str, Any]], Iterator[Any]]


def run_has_failed(context: dg.OpExecutionContext) -> bool:
    """True once any step of this run has failed for good (retries exhausted)."""
    records = context.instance.get_records_for_run(
        run_id=context.run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1
    ).records
    return bool(records)


def _stop_if_failed(
    context: dg.OpExecutionContext, runtime: StepRuntime, *, has_peers: bool | None = None
) -> None:
    """`on_failure: stop`: a step that another may run beside does not start after a failure
    (for the others every earlier failure is upstream, and Dagster already skips them). It
    fails, without retries, as `not_started`: a success would hide that it never ran, and
    Dagster's re-execution from failure would then leave it out."""
    peers = runtime.step.has_independent_peers if has_peers is None else has_peers
    if runtime.workflow.on_failure == "stop" and peers and run_has_failed(context):
        step_id = runtime.step.id
        message = f"not starting step {step_id!r}: an earlier step failed (on_failure: stop)"
        context.log.info(message)
        raise dg.Failure(
            description=message,
            metadata={"error_kind": NOT_STARTED, "step_id": runtime.step.id, "retryable": False},
            allow_retries=False,
        )


def _upstream(runtime: StepRuntime, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs the templates read; a skipped upstream reads as None (with on_upstream_skip)."""
    return {
        step_id: None if is_skipped(inputs[name]) else inputs[name]
        for name, step_id in runtime.data_inputs.items()
    }


def _skipped_upstream(runtime: StepRuntime, inputs: Mapping[str, Any]) -> str | None:
    """The first upstream that was skipped, when this step must be skipped with it."""
    if runtime.step.on_upstream_skip == "run":
        return None
    for name, step_id in (*runtime.gate_inputs.items(), *runtime.data_inputs.items()):
        if is_skipped(inputs[name]):
            return step_id
    return None


def _skipped(context: dg.OpExecutionContext, runtime: StepRuntime, reason: str) -> dg.Output:
    context.log.info(f"skipping step {runtime.step.id!r}: {reason}")
    return dg.Output(skip_marker(reason), "result", metadata={"skipped": reason})


def _output_metadata(
    runtime: StepRuntime, context: dg.OpExecutionContext, result: StepResult
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        **result.metadata,
        "step_id": runtime.step.id,
        "plugin": runtime.plugin.name,
        "attempt": context.retry_number + 1,
    }
    if result.cost_usd:
        metadata["cost_usd"] = result.cost_usd
    if result.params is not None and runtime.step.compensation is not None:
        redact = Redactor(tuple(runtime.workflow.secrets))
        metadata[PARAMS_METADATA] = params_metadata(result.params, redact)
    if result.policy_decision_id:
        metadata["policy_decision_id"] = result.policy_decision_id
        metadata["policy_version"] = result.policy_version
    return metadata


def step_body(runtime: StepRuntime) -> OpBody:
    """The compute function of a plain step op."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        _stop_if_failed(context, runtime)
        skipped_by = _skipped_upstream(runtime, inputs)
        if skipped_by is not None:
            yield _skipped(context, runtime, f"upstream step {skipped_by!r} was skipped")
            return
        result = execute_step(context, runtime, _upstream(runtime, inputs))
        if result.ran:
            yield dg.Output(
                result.value, "result", metadata=_output_metadata(runtime, context, result)
            )
        else:
            yield _skipped(context, runtime, "when is false")

    return traced(runtime, compute)


def fanout_body(runtime: StepRuntime) -> OpBody:
    """for_each, part 1: evaluate `when` and the list, emit one dynamic output per item."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        _stop_if_failed(context, runtime)
        skipped_by = _skipped_upstream(runtime, inputs)
        reason = f"upstream step {skipped_by!r} was skipped" if skipped_by else None
        redact = Redactor(tuple(runtime.workflow.secrets))
        try:
            scope = template_context(context, runtime, _upstream(runtime, inputs))
            if reason is None and not condition_holds(runtime, scope):
                reason = "when is false"
            items = for_each_items(runtime, scope) if reason is None else []
        except Exception as exc:
            raise step_failure(runtime, exc, redact) from None
        if reason is not None:
            context.log.info(f"skipping step {runtime.step.id!r}: {reason}")
            yield dg.DynamicOutput(skip_marker(reason), mapping_key="skipped", output_name="items")
            return
        items, leaked = redact_value(items, redact)
        if leaked:
            context.log.warning(
                f"step {runtime.step.id!r}: its for_each items held a declared secret's value, "
                "stored as *** (read the secret with secrets.<NAME> in the step instead)"
            )
        context.log.info(f"step {runtime.step.id!r}: {len(items)} item(s)")
        if not items:
            yield dg.DynamicOutput(EMPTY, mapping_key="empty", output_name="items")
        for index, value in enumerate(items):
            yield dg.DynamicOutput(
                {"index": index, "value": value}, mapping_key=str(index), output_name="items"
            )

    return traced(runtime, compute, part="items")


def mapped_body(runtime: StepRuntime) -> OpBody:
    """for_each, part 2: run the plugin for one item."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        item = inputs["item"]
        if SENTINEL_KEY in item:
            yield dg.Output(item, "result")
            return
        _stop_if_failed(context, runtime, has_peers=True)  # the other items are its peers
        result = execute_step(
            context, runtime, _upstream(runtime, inputs), item=item, check_when=False
        )
        yield dg.Output(
            {"index": item["index"], "value": result.value},
            "result",
            metadata=_output_metadata(runtime, context, result),
        )

    return traced(runtime, compute)


def collect_body(runtime: StepRuntime) -> OpBody:
    """for_each, part 3: the per-item outputs, in item order, as the step's output."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        results = inputs["results"]
        skipped = next((r for r in results if is_skipped(r)), None)
        if skipped is not None:
            yield dg.Output(skipped, "result", metadata={"skipped": skipped["reason"]})
            return
        ordered = sorted((r for r in results if SENTINEL_KEY not in r), key=lambda r: r["index"])
        yield dg.Output(
            [r["value"] for r in ordered],
            "result",
            metadata={"step_id": runtime.step.id, "items": len(ordered)},
        )

    return traced(runtime, compute, part="collect")
