"""Turn a checked WorkflowPlan into Dagster definitions: one op per step, one job per workflow.

Every step that does not fail emits its `result`: the plugin's output, or a skip marker when
`when` was false or a step it depends on was skipped. Skipping is decided by the ops, as data:
it follows `depends_on` and data edges (unless a step says `on_upstream_skip: run`) but never
the stage order, so a later stage still runs. A failed or stopped step emits nothing, and
Dagster skips everything downstream of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.definitions.dependency import DynamicCollectDependencyDefinition

from resources.artifacts.io_manager import DECLARED_OUTPUTS, INPUT_KIND
from resources.plugins import PluginRegistry, default_registry
from resources.policy.inputs import workflow_summary
from yaml_compiler.plan import PlannedStep, WorkflowPlan, op_name_for, schedule_names
from yaml_compiler.spec import ParamSpec, RetrySpec
from yaml_compiler.step_runtime import (
    StepRuntime,
    collect_body,
    fanout_body,
    mapped_body,
    step_body,
)

_PARAM_TYPES: dict[str, Any] = {
    "string": dg.String,
    "integer": dg.Int,
    "number": dg.Float,
    "boolean": dg.Bool,
    "list": dg.Array(dg.Any),
    "object": dg.Permissive(),
}
_RESULT = {
    "result": dg.Out(
        dg.Any,
        is_required=False,
        description="The step's output; a skip marker when the step was skipped.",
    )
}
_WAIT_INPUT = dg.In(dg.Nothing)
_VALUE_INPUT = dg.In(dg.Any)
_GATE_INPUT = dg.In(dg.Any, metadata={INPUT_KIND: "gate"})
"""`needs_<op>`: the IO manager answers "was it skipped?" from the pointer, without the value."""
_PARAMS_CONFIG = {"params": dg.Field(dg.Permissive(), is_required=False, default_value={})}
"""Each op receives the run's params through the job's ConfigMapping (see build_job)."""
_JITTER = {True: dg.Jitter.PLUS_MINUS, "plus_minus": dg.Jitter.PLUS_MINUS, "full": dg.Jitter.FULL}


def _input_def(name: str) -> dg.In:
    """`after_<op>` waits (Nothing), `needs_<op>` checks for a skip, `from_<op>` reads data."""
    if name.startswith("after_"):
        return _WAIT_INPUT
    return _GATE_INPUT if name.startswith("needs_") else _VALUE_INPUT


def _result_out(step: PlannedStep) -> dict[str, dg.Out]:
    """The step's `result`; with declared outputs, the IO manager materialises them as assets."""
    if not step.outputs:
        return _RESULT
    declared = [
        {"name": o.name, "asset_key": o.asset_key, **({"file": True} if o.path else {})}
        for o in step.outputs
    ]  # file outputs are stored by the op itself (step_runtime.store_file_outputs)
    return {
        "result": dg.Out(
            dg.Any,
            is_required=False,
            description=_RESULT["result"].description,
            metadata={DECLARED_OUTPUTS: dg.MetadataValue.json(declared)},
        )
    }


def _asset_key(text: str | None) -> dg.AssetKey:
    assert text is not None  # the plan fills in default keys
    return dg.AssetKey(text.split("/"))


def build_asset_specs(plan: WorkflowPlan) -> list[dg.AssetSpec]:
    """One asset per declared output, depending on the declared outputs of the steps it reads
    or depends on (through steps that declare none), for the UI's lineage graph."""
    by_id = {step.id: step for step in plan.steps}
    upstream_assets: dict[str, tuple[dg.AssetKey, ...]] = {}
    for step in plan.steps:  # topological order: upstreams are resolved first
        keys: dict[dg.AssetKey, None] = {}
        for upstream_id in dict.fromkeys((*step.depends_on, *step.data_refs)):
            upstream = by_id[upstream_id]
            if upstream.outputs:
                keys.update(dict.fromkeys(_asset_key(o.asset_key) for o in upstream.outputs))
            else:
                keys.update(dict.fromkeys(upstream_assets[upstream_id]))
        upstream_assets[step.id] = tuple(keys)
    group = re.sub(r"[^A-Za-z0-9_]", "_", f"maestro_{plan.spec.name}")
    return [
        dg.AssetSpec(
            _asset_key(output.asset_key),
            deps=list(upstream_assets[step.id]),
            description=output.description or f"Output {output.name!r} of step {step.id!r}",
            group_name=group,
            metadata={
                "maestro/workflow": plan.spec.name,
                "maestro/step_id": step.id,
                "maestro/job": plan.job_name,
            },
        )
        for step in plan.steps
        for output in step.outputs
    ]


def retry_policy(retry: RetrySpec | None) -> dg.RetryPolicy | None:
    if retry is None or retry.max_attempts <= 1:
        return None
    return dg.RetryPolicy(
        max_retries=retry.max_attempts - 1,
        delay=retry.backoff,
        backoff=dg.Backoff.EXPONENTIAL if retry.exponential else None,
        jitter=_JITTER.get(retry.jitter),
    )


def _param_field(param: ParamSpec) -> dg.Field:
    kind = _PARAM_TYPES[param.type]
    if param.required:
        return dg.Field(kind, is_required=True, description=param.description)
    if param.default is not None:
        return dg.Field(
            kind, is_required=False, default_value=param.default, description=param.description
        )
    return dg.Field(
        dg.Noneable(kind), is_required=False, default_value=None, description=param.description
    )


def params_config_schema(plan: WorkflowPlan) -> dict[str, dg.Field]:
    return {name: _param_field(p) for name, p in plan.spec.params.items()}


def _op_tags(plan: WorkflowPlan, step: PlannedStep) -> dict[str, str]:
    tags = {
        "maestro/step_id": step.id,
        "maestro/plugin": step.plugin,
        "maestro/workflow": plan.spec.name,
    }
    if step.stage is not None:
        tags["maestro/stage"] = step.stage
    if step.resources is not None:
        for key, value in step.resources.model_dump(exclude_none=True).items():
            tags[f"maestro/{key}"] = str(value)
    if step.compensation is not None:
        tags["maestro/compensation"] = step.compensation.run
    if step.timeout is not None:
        tags["maestro/timeout_s"] = f"{step.timeout:g}"
    return {**tags, **step.tags}


def _description(step: PlannedStep) -> str:
    title = step.name or step.id
    text = f"{title} (step `{step.id}`, plugin `{step.plugin}`)"
    return f"{text}\n\n{step.description}" if step.description else text


def job_tags(plan: WorkflowPlan) -> dict[str, str]:
    spec = plan.spec
    tags = {
        "maestro/workflow": spec.name,
        "maestro/version": spec.version,
        "maestro/tenant": spec.tenant,
        "maestro/environment": spec.environment,
        "maestro/on_failure": spec.on_failure,
    }
    if spec.run_time_limit is not None:
        tags["dagster/max_runtime"] = f"{spec.run_time_limit:g}"
    if spec.budget is not None and spec.budget.max_cost_usd is not None:
        tags["maestro/budget_usd"] = f"{spec.budget.max_cost_usd:g}"
    return {**tags, **spec.tags}


class _GraphBuilder:
    """Accumulates node definitions and the dependency dict for one workflow."""

    def __init__(self, plan: WorkflowPlan, registry: PluginRegistry):
        self.plan = plan
        self.registry = registry
        self.node_defs: list[dg.OpDefinition] = []
        self.deps: dict[str, dict[str, Any]] = {}
        self.exit_node: dict[str, str] = {}  # step id -> the node emitting its `result`
        self.params_ops: list[str] = []
        self.summary = workflow_summary(plan, registry)

    def _edges_in(self, step: PlannedStep) -> dict[str, tuple[str, dg.DependencyDefinition]]:
        """Input name -> (upstream step id, dependency), one input per upstream step.

        A Dagster fan-in input runs as soon as one source arrives, which would start a step
        after a partial failure upstream; one input each avoids that. `from_<op>` reads an
        output the templates use; `needs_<op>` loads a `depends_on` output only to see whether
        it was skipped; `after_<op>` (Nothing) only waits.
        """
        reads = set(step.data_refs)
        gates = [u for u in step.depends_on if u not in reads and step.on_upstream_skip == "skip"]
        waits = [
            u
            for u in dict.fromkeys((*step.after, *step.depends_on))
            if u not in reads and u not in gates
        ]
        edges = [("after", u) for u in waits] + [("needs", u) for u in gates]
        edges += [("from", u) for u in step.data_refs]
        return {
            f"{prefix}_{op_name_for(u)}": (u, dg.DependencyDefinition(self.exit_node[u], "result"))
            for prefix, u in edges
        }

    def _runtime(self, step: PlannedStep, upstream_of: Mapping[str, str]) -> StepRuntime:
        plugin = self.registry.get(step.plugin)
        assert plugin is not None, step.plugin
        return StepRuntime(
            step=step,
            plugin=plugin,
            workflow=self.plan.spec,
            data_inputs={n: u for n, u in upstream_of.items() if n.startswith("from_")},
            gate_inputs={n: u for n, u in upstream_of.items() if n.startswith("needs_")},
            workflow_summary=self.summary,
        )

    def _config(self, step: PlannedStep, op_name: str) -> Any:
        if not step.uses_params:
            return None
        self.params_ops.append(op_name)
        return _PARAMS_CONFIG

    def add(self, step: PlannedStep) -> None:
        edges = self._edges_in(step)
        deps = {name: dependency for name, (_, dependency) in edges.items()}
        runtime = self._runtime(step, {name: upstream for name, (upstream, _) in edges.items()})
        common = {
            "tags": _op_tags(self.plan, step),
            "required_resource_keys": set(runtime.plugin.resource_keys)
            | ({"io_manager"} if any(o.path for o in step.outputs) else set()),
        }
        if step.for_each is None:
            self._add_node(
                step.op_name,
                step_body(runtime),
                deps,
                _result_out(step),
                description=_description(step),
                retry_policy=retry_policy(step.retry),
                config_schema=self._config(step, step.op_name),
                pool=step.pool,
                **common,
            )
            self.exit_node[step.id] = step.op_name
            return
        items_op, collect_op = f"{step.op_name}__items", f"{step.op_name}__collect"
        data_deps = {k: v for k, v in deps.items() if k.startswith("from_")}
        self._add_node(
            items_op,
            fanout_body(runtime),
            deps,
            {"items": dg.DynamicOut(dg.Any, is_required=False)},
            description=f"Fan-out of step `{step.id}`: one item per for_each value.",
            config_schema=self._config(step, items_op),
            **common,
        )
        self._add_node(
            step.op_name,
            mapped_body(runtime),
            {"item": dg.DependencyDefinition(items_op, "items"), **data_deps},
            _RESULT,
            description=_description(step),
            retry_policy=retry_policy(step.retry),
            config_schema=self._config(step, step.op_name),
            pool=step.pool,
            **common,
        )
        self._add_node(
            collect_op,
            collect_body(runtime),
            {"results": DynamicCollectDependencyDefinition(step.op_name, "result")},
            _result_out(step),
            description=f"Collects the outputs of step `{step.id}` as a list.",
            **common,
        )
        self.exit_node[step.id] = collect_op

    def _add_node(
        self,
        name: str,
        compute: Any,
        deps: Mapping[str, Any],
        outs: Mapping[str, dg.Out],
        **kwargs: Any,
    ) -> None:
        ins = {n: _input_def(n) for n in deps}
        self.node_defs.append(
            dg.OpDefinition(compute_fn=compute, name=name, ins=ins, outs=dict(outs), **kwargs)
        )
        if deps:
            self.deps[name] = dict(deps)


def _run_config_mapping(
    plan: WorkflowPlan, params_ops: tuple[str, ...], console_log_level: str | None
) -> dg.ConfigMapping | None:
    """Run config as users write it, `{"params": {...}}`, mapped onto every op that reads it."""
    params = plan.spec.params
    if not params and console_log_level is None:
        return None
    defaults = {name: p.default for name, p in params.items() if not p.required}
    loggers = {"console": {"config": {"log_level": console_log_level}}}

    def to_run_config(outer: Mapping[str, Any]) -> dict[str, Any]:
        # Dagster does not fill nested defaults when `params` is left out entirely.
        values = {**defaults, **(outer.get("params") or {})}
        run_config: dict[str, Any] = {
            "ops": {op: {"config": {"params": values}} for op in params_ops}
        }
        return {**run_config, "loggers": loggers} if console_log_level else run_config

    schema: dict[str, dg.Field] = {}
    if params:
        required = any(p.required for p in params.values())
        schema["params"] = (
            dg.Field(params_config_schema(plan), is_required=True)
            if required
            else dg.Field(params_config_schema(plan), is_required=False, default_value=defaults)
        )
    return dg.ConfigMapping(config_schema=schema, config_fn=to_run_config)


def build_job(
    plan: WorkflowPlan,
    registry: PluginRegistry | None = None,
    *,
    console_log_level: str | None = None,
) -> dg.JobDefinition:
    """One Dagster job for one workflow plan.

    `console_log_level` sets Dagster's console logger for runs of this job (the `maestro` CLI
    turns it down to print its own progress); events reach the event log at every level.
    """
    builder = _GraphBuilder(plan, registry or default_registry())
    for step in plan.steps:
        builder.add(step)
    spec = plan.spec
    graph = dg.GraphDefinition(
        name=plan.job_name,
        node_defs=builder.node_defs,
        dependencies=builder.deps,
        description=spec.description or f"Maestro workflow {spec.name} {spec.version}",
    )
    return graph.to_job(
        name=plan.job_name,
        tags=job_tags(plan),
        config=_run_config_mapping(plan, tuple(builder.params_ops), console_log_level),
        description=graph.description,
        metadata={"maestro/source": dg.MetadataValue.path(plan.source_file)},
    )


def build_schedules(plan: WorkflowPlan, job: dg.JobDefinition) -> list[dg.ScheduleDefinition]:
    schedules = []
    for schedule, name in zip(plan.spec.schedule, schedule_names(plan.spec), strict=True):
        schedules.append(
            dg.ScheduleDefinition(
                name=name,
                cron_schedule=schedule.cron,
                job=job,
                run_config={"params": dict(schedule.params)} if plan.spec.params else None,
                execution_timezone=schedule.timezone,
                description=f"Runs workflow {plan.spec.name} on {schedule.cron}",
            )
        )
    return schedules
