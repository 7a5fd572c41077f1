"""The saga job `<job>__compensate`: one op per step that has a compensation.

A saga run carries the failed run's id (tag `maestro/compensates`). Each op reads that run's
event log: if its step completed (or failed with `compensate_self`), it waits until the
compensations of every step that started after its step ended have succeeded (yaml_compiler/
saga.py), then renders its `compensation.with` with `step` (id, params, output loaded from the
artifact store), `failure`, `params`, `run` and `secrets`, and calls the plugin under the
compensation's own retry policy. A compensation that fails for good fails the saga run; the
compensations that had to wait for it fail too, without running (they are not undone out of
order).

No `from __future__ import annotations`: Dagster reads the compute function's `context`
annotation at definition time (see runtime/ops.py).
"""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from resources.artifacts.store import pointer_key
from resources.executor import executor_definition
from resources.plugins import Plugin, PluginRegistry, RunInfo, StepContext, default_registry
from resources.run_tags import COMPENSATES_TAG, DEFAULT_TENANT, TENANT_TAG, WORKFLOW_TAG
from yaml_compiler.backend.job import retry_policy
from yaml_compiler.backend.runtime.execute import PARAMS_METADATA, call_plugin
from yaml_compiler.backend.runtime.redaction import RedactingLog, Redactor
from yaml_compiler.backend.runtime.scope import secret_values
from yaml_compiler.names import FOR_EACH_SUFFIXES, op_definition_name
from yaml_compiler.plan import PlannedStep, WorkflowPlan
from yaml_compiler.saga import (
    Completion,
    FailureInfo,
    compensable_steps,
    compensate_after,
    saga_job_name,
)
from yaml_compiler.templating import render_value

_ITEMS, _COLLECT = FOR_EACH_SUFFIXES
_POLL_SECONDS = 0.05
NOT_STARTED = "not_started"
_END_EVENTS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def _meta(value: Any) -> Any:
    return getattr(value, "value", value)


@dataclass(frozen=True)
class StepTrace:
    """One step of the failed run as its events tell it."""

    started: float | None = None
    ended: float | None = None
    completed: bool = False
    failed: bool = False
    params: Any = None


@dataclass(frozen=True)
class FailedRun:
    run: dg.DagsterRun
    steps: Mapping[str, StepTrace]
    failure: FailureInfo

    def completions(self, plan: WorkflowPlan) -> list[Completion]:
        """The steps to compensate: completed, or failed with compensate_self."""
        found = []
        for step in compensable_steps(plan):
            trace = self.steps.get(step.id)
            if trace is None or trace.started is None or trace.ended is None:
                continue
            if trace.completed or (trace.failed and step.compensate_self):
                found.append(Completion(step.id, trace.started, trace.ended, trace.failed))
        return found


def _step_of(key: str, nodes: Mapping[str, PlannedStep]) -> tuple[PlannedStep | None, bool]:
    """(step, is its exit node) for a step key of the workflow's job."""
    if key in nodes:
        step = nodes[key]
        return step, step.for_each is None
    for suffix, is_exit in ((_ITEMS, False), (_COLLECT, True)):
        if key.endswith(suffix) and key.removesuffix(suffix) in nodes:
            return nodes[key.removesuffix(suffix)], is_exit
    base = key.split("[", 1)[0]
    return nodes.get(base), False


def read_failed_run(instance: dg.DagsterInstance, run_id: str, plan: WorkflowPlan) -> FailedRun:
    """What the failed run did, step by step, from its event log."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise dg.Failure(f"the run to compensate, {run_id}, is not in this instance")
    nodes = {step.node_name: step for step in plan.steps}
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    completed: set[str] = set()
    failed: set[str] = set()
    skipped: set[str] = set()
    params: dict[str, Any] = {}
    first_failure: FailureInfo | None = None
    run_message = ""
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.RUN_FAILURE:
            run_message = entry.message or ""
        key = event.step_key
        if key is None:
            continue
        step, is_exit = _step_of(key, nodes)
        if step is None:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            started.setdefault(step.id, entry.timestamp)
        elif kind == dg.DagsterEventType.STEP_OUTPUT and is_exit:
            metadata = event.step_output_data.metadata
            if "skipped" in metadata:
                skipped.add(step.id)
            if PARAMS_METADATA in metadata:
                params[step.id] = _meta(metadata[PARAMS_METADATA])
        elif kind == dg.DagsterEventType.STEP_SUCCESS and is_exit:
            if step.id not in skipped:
                completed.add(step.id)
                ended[step.id] = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            user = getattr(event.event_specific_data, "user_failure_data", None)
            metadata = user.metadata if user is not None else {}
            error_kind = str(_meta(metadata.get("error_kind", "plugin_error")))
            if error_kind == NOT_STARTED:
                continue
            failed.add(step.id)
            ended[step.id] = entry.timestamp
            if PARAMS_METADATA in metadata:
                params[step.id] = _meta(metadata[PARAMS_METADATA])
            if first_failure is None:
                message = user.description if user is not None and user.description else ""
                if not message:
                    error = getattr(event.event_specific_data, "error", None)
                    message = error.message.strip() if error is not None else "failed"
                first_failure = FailureInfo(step.id, error_kind, message)
    if first_failure is None:
        if run.status == dg.DagsterRunStatus.CANCELED:
            first_failure = FailureInfo(None, "canceled", f"run {run_id} was canceled")
        else:
            first_failure = FailureInfo(None, "run_failure", run_message or "the run failed")
    traces = {
        step_id: StepTrace(
            started.get(step_id),
            ended.get(step_id),
            step_id in completed,
            step_id in failed and step_id not in completed,
            params.get(step_id),
        )
        for step_id in set(started) | set(ended)
    }
    return FailedRun(run, traces, first_failure)


def _exit_node(step: PlannedStep) -> str:
    return step.node_name + (_COLLECT if step.for_each is not None else "")


def _load_output(context: dg.OpExecutionContext, failed: FailedRun, step: PlannedStep) -> Any:
    """The step's output in the failed run, from its pointer in the artifact store."""
    tenant = failed.run.tags.get(TENANT_TAG, DEFAULT_TENANT)
    store = context.resources.io_manager.store
    key = pointer_key(tenant, failed.run.run_id, _exit_node(step), "result")
    return store.load(store.read_pointer(tenant, key))


def _lineage(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """This saga run and the runs it re-executes (the UI's re-execute from failure of a failed
    saga): a compensation that succeeded in one of them is done."""
    ids = [run.run_id]
    parent = run.parent_run_id
    while parent is not None and parent not in ids:
        ids.append(parent)
        found = instance.get_run_by_id(parent)
        parent = found.parent_run_id if found is not None else None
    return ids


def _wait_for(context: dg.OpExecutionContext, nodes: list[str]) -> None:
    """Until the compensations of `nodes` (this saga run's ops) succeeded; fails when one of
    them failed for good, since undoing this step first would be out of order."""
    pending = set(nodes)
    if pending:
        context.log.info(f"waiting for the compensations of {', '.join(sorted(pending))}")
    earlier = _lineage(context.instance, context.run)[1:]
    for run_id in earlier:
        successes = context.instance.get_records_for_run(
            run_id=run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
        ).records
        pending -= {r.event_log_entry.step_key for r in successes}
    while pending:
        records = context.instance.get_records_for_run(
            run_id=context.run_id, of_type=_END_EVENTS
        ).records
        for record in records:
            event = record.event_log_entry.dagster_event
            if event is None or event.step_key not in pending:
                continue
            if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                raise dg.Failure(
                    f"not compensating: the compensation of {event.step_key!r} (which "
                    "completed later) failed",
                    metadata={"error_kind": "compensation_order"},
                    allow_retries=False,
                )
            pending.discard(event.step_key)
        if pending:
            time.sleep(_POLL_SECONDS)


def _scope(failed: FailedRun, plan: WorkflowPlan, step: PlannedStep, output: Any) -> dict[str, Any]:
    spec = plan.spec
    run = failed.run
    names = tuple(sorted(spec.secrets))
    trace = failed.steps[step.id]
    return {
        "step": {"id": step.id, "params": trace.params, "output": output},
        "failure": failed.failure.as_scope(),
        "params": (run.run_config or {}).get("params", {}),
        "run": RunInfo(run.run_id, spec.name, spec.tenant, spec.environment, ""),
        "secrets": secret_values(names) if names else {},
    }


def _compensation_body(plan: WorkflowPlan, step: PlannedStep, plugin: Plugin[Any]) -> Any:
    compensation = step.compensation
    assert compensation is not None

    def compute(
        context: dg.OpExecutionContext, _inputs: Mapping[str, Any]
    ) -> Iterator[dg.Output[Any]]:
        failed = read_failed_run(context.instance, context.run.tags[COMPENSATES_TAG], plan)
        completions = failed.completions(plan)
        mine = next((c for c in completions if c.step_id == step.id), None)
        if mine is None:
            context.log.info(f"step {step.id!r} did not complete: nothing to compensate")
            yield dg.Output(None, metadata={"compensated": False})
            return
        by_id = {s.id: s for s in plan.steps}
        _wait_for(
            context, [by_id[other].node_name for other in compensate_after(completions)[step.id]]
        )
        output = None if mine.failed else _load_output(context, failed, step)
        redact = Redactor(tuple(plan.spec.secrets))
        try:
            rendered = render_value(dict(compensation.with_), _scope(failed, plan, step, output))
            params = plugin.parse(rendered)
            ctx = StepContext(
                step_id=step.id,
                run=RunInfo(
                    context.run_id, plan.spec.name, plan.spec.tenant, plan.spec.environment, ""
                ),
                log=RedactingLog(context.log, redact),
                resources={key: getattr(context.resources, key) for key in plugin.resource_keys},
                redact=redact,
            )
            try:
                value = call_plugin(plugin, params, ctx)
            finally:
                ctx.finish()
        except dg.Failure:
            raise
        except Exception as exc:
            raise dg.Failure(
                f"compensation of step {step.id!r} failed: {redact(f'{type(exc).__name__}: {exc}')}"
                f" (at {plan.source_file}:{step.line})",
                metadata={"error_kind": getattr(exc, "kind", "plugin_error"), "step_id": step.id},
            ) from None
        context.log.info(f"compensated step {step.id!r} of run {failed.run.run_id}")
        yield dg.Output(value, metadata={"compensated": True, "failed_run": failed.run.run_id})

    return compute


def build_saga_job(
    plan: WorkflowPlan,
    registry: PluginRegistry | None = None,
    *,
    resources: Mapping[str, Any] | None = None,
) -> dg.JobDefinition | None:
    """The workflow's saga job, or None when it has nothing to compensate."""
    steps = compensable_steps(plan)
    if not steps:
        return None
    registry = registry or default_registry()
    name = saga_job_name(plan.job_name)
    node_defs: list[dg.OpDefinition] = []
    deps: dict[dg.NodeInvocation, dict[str, Any]] = {}
    for step in steps:
        assert step.compensation is not None
        plugin = registry.get(step.compensation.run)
        assert plugin is not None, step.compensation.run
        op_name = op_definition_name(name, step.node_name)
        node_defs.append(
            dg.OpDefinition(
                compute_fn=_compensation_body(plan, step, plugin),
                name=op_name,
                ins={},
                outs={"result": dg.Out(dg.Any, is_required=False)},
                description=f"Undoes step `{step.id}` ({plan.source_file}:{step.line}) with "
                f"`{step.compensation.run}`.",
                retry_policy=retry_policy(step.compensation.retry),
                required_resource_keys={"io_manager", *plugin.resource_keys},
                tags={"maestro/step_id": step.id, "maestro/plugin": plugin.name},
            )
        )
        deps[dg.NodeInvocation(op_name, alias=step.node_name)] = {}
    graph = dg.GraphDefinition(
        name=name,
        node_defs=node_defs,
        dependencies=deps,
        description=f"Compensations of workflow `{plan.spec.name}` ({plan.source_file}), run "
        "for a failed run (tag maestro/compensates) in reverse order of completion.",
    )
    return graph.to_job(
        name=name,
        tags={WORKFLOW_TAG: plan.spec.name, TENANT_TAG: plan.spec.tenant},
        resource_defs=dict(resources) if resources else None,
        # Every op may wait for others at once: one thread each, so waiting never starves.
        executor_def=executor_definition("threads", max_concurrent=len(steps)),
    )
