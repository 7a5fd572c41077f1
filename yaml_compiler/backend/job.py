"""A checked WorkflowPlan becomes one Dagster job: one op per step, one input per upstream.

Every step that does not fail emits its `result`: the plugin's output, or a skip marker when
`when` was false or a step it depends on was skipped. Skipping is decided by the ops, as data:
it follows `depends_on` and data edges (unless a step says `on_upstream_skip: run`) but never
the stage order, so a later stage still runs. A failed or stopped step emits nothing, and
Dagster skips everything downstream of it.

Each op definition is named `<job>__<node>` (unique across the code location) and invoked in
the graph under its node name, the step id, which is what the UI, logs and step keys show.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from resources.artifacts.io_manager import DECLARED_OUTPUTS, INPUT_KIND
from resources.dagster_private import DynamicCollectDependencyDefinition
from resources.executor import EXECUTOR_ENV, ISOLATION_TAG, executor_definition, executor_kind
from resources.plugins import Plugin, PluginRegistry, default_registry
from yaml_compiler.backend.deployment import (
    DEFAULT_SETTINGS,
    DeploymentSettings,
    k8s_executor_config,
)
from yaml_compiler.backend.describe import (
    job_description,
    job_metadata,
    job_tags,
    op_description,
    op_tags,
)
from yaml_compiler.backend.policy_summary import workflow_summary
from yaml_compiler.backend.run_config import OP_PARAMS_CONFIG, run_config_mapping
from yaml_compiler.backend.runtime.execute import POLICY_RESOURCE
from yaml_compiler.backend.runtime.ops import collect_body, fanout_body, mapped_body, step_body
from yaml_compiler.backend.runtime.step import StepRuntime
from yaml_compiler.diagnostics import WorkflowCompileError
from yaml_compiler.names import FOR_EACH_SUFFIXES, op_definition_name
from yaml_compiler.plan import PlannedStep, WorkflowPlan
from yaml_compiler.spec import RetrySpec

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
"""`needs_<node>`: the IO manager answers "was it skipped?" from the pointer, without the value."""
_JITTER = {True: dg.Jitter.PLUS_MINUS, "plus_minus": dg.Jitter.PLUS_MINUS, "full": dg.Jitter.FULL}
_ITEMS, _COLLECT = FOR_EACH_SUFFIXES
FOR_EACH_TAG = "maestro/for_each"
"""Tag of a for_each step's mapped op (its node): the executor limits each to `max_parallel`."""


def _input_def(name: str) -> dg.In:
    """`after_<node>` waits (Nothing), `needs_<node>` checks for a skip, `from_<node>` reads."""
    if name.startswith("after_"):
        return _WAIT_INPUT
    return _GATE_INPUT if name.startswith("needs_") else _VALUE_INPUT


def _result_out(step: PlannedStep, plugin: Plugin[Any]) -> dict[str, dg.Out]:
    """The step's `result`; with declared outputs, the IO manager materialises them as assets."""
    if not step.outputs:
        return _RESULT
    declared = [
        {
            "name": o.name,
            "asset_key": o.asset_key,
            **({"file": True} if o.path or o.name in plugin.file_outputs else {}),
        }
        for o in step.outputs
    ]  # file outputs are stored by the op itself (runtime/outputs.py)
    return {
        "result": dg.Out(
            dg.Any,
            is_required=False,
            description=_RESULT["result"].description,
            metadata={DECLARED_OUTPUTS: dg.MetadataValue.json(declared)},
        )
    }


def job_executor(
    plan: WorkflowPlan, environ: Mapping[str, str] = os.environ
) -> dg.ExecutorDefinition:
    """The workflow's `executor` (else MAESTRO_EXECUTOR, else threads), with its `max_parallel`
    and each for_each step's `max_parallel` as the executor's defaults (run config may change
    them for one run)."""
    try:
        kind = executor_kind(plan.spec.executor, environ)
    except ValueError as exc:
        raise WorkflowCompileError([plan.diagnostic(("executor",), str(exc))]) from None
    isolated = [step for step in plan.steps if step.isolation == "process"]
    if kind == "in_process" and isolated:
        raise WorkflowCompileError(
            [
                plan.diagnostic(
                    (*step.path, "isolation"),
                    f"isolation: process needs the threads or multiprocess executor, and "
                    f"{EXECUTOR_ENV}=in_process runs every step in the run's own process",
                )
                for step in isolated
            ]
        )
    limits = [
        {"key": FOR_EACH_TAG, "value": step.node_name, "limit": step.max_parallel}
        for step in plan.steps
        if step.for_each is not None and step.max_parallel is not None
    ]
    max_concurrent = plan.spec.max_parallel
    if kind == "k8s" and max_concurrent is None:  # the deployment's default for its cluster
        max_concurrent = k8s_executor_config(environ).get("max_concurrent")
    return executor_definition(
        kind,
        max_concurrent=max_concurrent,
        tag_concurrency_limits=limits,
        isolated_steps=bool(isolated),
    )


def _execution_tags(step: PlannedStep, mapped: bool) -> dict[str, str]:
    """Tags the executor reads: process isolation, and which for_each a mapped op belongs to."""
    tags = {ISOLATION_TAG: "process"} if step.isolation == "process" else {}
    if mapped and step.max_parallel is not None:
        tags[FOR_EACH_TAG] = step.node_name
    return tags


def retry_policy(retry: RetrySpec | None) -> dg.RetryPolicy | None:
    if retry is None or retry.max_attempts <= 1:
        return None
    return dg.RetryPolicy(
        max_retries=retry.max_attempts - 1,
        delay=retry.backoff,
        backoff=dg.Backoff.EXPONENTIAL if retry.exponential else None,
        jitter=_JITTER.get(retry.jitter),
    )


class _GraphBuilder:
    """Accumulates node definitions and the dependency dict for one workflow."""

    def __init__(
        self,
        plan: WorkflowPlan,
        registry: PluginRegistry,
        summary: Mapping[str, Any],
        deployment: DeploymentSettings = DEFAULT_SETTINGS,
    ):
        self.plan = plan
        self.deployment = deployment
        self.registry = registry
        self.node_defs: list[dg.OpDefinition] = []
        self.deps: dict[dg.NodeInvocation, dict[str, Any]] = {}
        self.exit_node: dict[str, str] = {}  # step id -> the node emitting its `result`
        self.params_nodes: list[str] = []
        self.summary = summary
        self.by_id = {step.id: step for step in plan.steps}

    def _edges_in(self, step: PlannedStep) -> dict[str, tuple[str, dg.DependencyDefinition]]:
        """Input name -> (upstream step id, dependency), one input per upstream step.

        A Dagster fan-in input runs as soon as one source arrives, which would start a step
        after a partial failure upstream; one input each avoids that. `from_<node>` reads an
        output the templates use; `needs_<node>` loads a `depends_on` output only to see
        whether it was skipped; `after_<node>` (Nothing) only waits.
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
            f"{prefix}_{self.by_id[u].node_name}": (
                u,
                dg.DependencyDefinition(self.exit_node[u], "result"),
            )
            for prefix, u in edges
        }

    def _plugin(self, step: PlannedStep) -> Plugin[Any]:
        plugin = self.registry.get(step.plugin)
        assert plugin is not None, step.plugin
        return plugin

    def _runtime(self, step: PlannedStep, upstream_of: Mapping[str, str]) -> StepRuntime:
        return StepRuntime(
            step=step,
            plugin=self._plugin(step),
            workflow=self.plan.spec,
            source_file=self.plan.source_file,
            data_inputs={n: u for n, u in upstream_of.items() if n.startswith("from_")},
            gate_inputs={n: u for n, u in upstream_of.items() if n.startswith("needs_")},
            workflow_summary=self.summary,
        )

    def _config(self, step: PlannedStep, node: str) -> Any:
        if not step.uses_params:
            return None
        self.params_nodes.append(node)
        return OP_PARAMS_CONFIG

    def add(self, step: PlannedStep) -> None:
        edges = self._edges_in(step)
        deps = {name: dependency for name, (_, dependency) in edges.items()}
        runtime = self._runtime(step, {name: upstream for name, (upstream, _) in edges.items()})
        file_outputs = any(o.path for o in step.outputs) or bool(runtime.plugin.file_outputs)
        tags = {
            **op_tags(self.plan, step, self.deployment.gpu),
            **_execution_tags(step, mapped=False),
        }
        executing = {
            "tags": tags,
            "required_resource_keys": {
                *runtime.plugin.resource_keys,
                POLICY_RESOURCE,
                *(["io_manager"] if file_outputs else []),
            },
        }
        node = step.node_name
        if step.for_each is None:
            self._add_node(
                node,
                step_body(runtime),
                deps,
                _result_out(step, runtime.plugin),
                description=op_description(self.plan, step),
                retry_policy=retry_policy(step.retry),
                config_schema=self._config(step, node),
                pool=step.pool,
                **executing,
            )
            self.exit_node[step.id] = node
            return
        items_node, collect_node = node + _ITEMS, node + _COLLECT
        data_deps = {k: v for k, v in deps.items() if k.startswith("from_")}
        plain = {"tags": executing["tags"]}
        self._add_node(
            items_node,
            fanout_body(runtime),
            deps,
            {"items": dg.DynamicOut(dg.Any, is_required=False)},
            description=f"Fan-out of step `{step.id}`: one item per for_each value "
            f"({self.plan.where(step)}).",
            config_schema=self._config(step, items_node),
            **plain,
        )
        self._add_node(
            node,
            mapped_body(runtime),
            {"item": dg.DependencyDefinition(items_node, "items"), **data_deps},
            _RESULT,
            description=op_description(self.plan, step),
            retry_policy=retry_policy(step.retry),
            config_schema=self._config(step, node),
            pool=step.pool,
            **{**executing, "tags": {**tags, **_execution_tags(step, mapped=True)}},
        )
        self._add_node(
            collect_node,
            collect_body(runtime),
            {"results": DynamicCollectDependencyDefinition(node, "result")},
            _result_out(step, runtime.plugin),
            description=f"Collects the outputs of step `{step.id}` as a list.",
            **plain,
        )
        self.exit_node[step.id] = collect_node

    def _add_node(
        self,
        node: str,
        compute: Any,
        deps: Mapping[str, Any],
        outs: Mapping[str, dg.Out],
        **kwargs: Any,
    ) -> None:
        ins = {n: _input_def(n) for n in deps}
        name = op_definition_name(self.plan.job_name, node)
        self.node_defs.append(
            dg.OpDefinition(compute_fn=compute, name=name, ins=ins, outs=dict(outs), **kwargs)
        )
        self.deps[dg.NodeInvocation(name, alias=node)] = dict(deps)


def build_job(
    plan: WorkflowPlan,
    registry: PluginRegistry | None = None,
    *,
    summary: Mapping[str, Any] | None = None,
    console_log_level: str | None = None,
    resources: Mapping[str, Any] | None = None,
    deployment: DeploymentSettings = DEFAULT_SETTINGS,
) -> dg.JobDefinition:
    """One Dagster job for one workflow plan.

    `console_log_level` sets Dagster's console logger for runs of this job (the `maestro` CLI
    turns it down to print its own progress); events reach the event log at every level.
    `resources` binds resources to the job itself (tests); the code location binds them once
    for every job through its Definitions instead. The executor is the workflow's own
    (`job_executor`): it goes with the job wherever it is launched. `summary`: the workflow's
    policy summary, when the caller has it already. `deployment`: how this deployment places
    steps (GPU nodes).
    """
    registry = registry or default_registry()
    summary = summary if summary is not None else workflow_summary(plan, registry)
    executor = job_executor(plan)
    builder = _GraphBuilder(plan, registry, summary, deployment)
    for step in plan.steps:
        builder.add(step)
    graph = dg.GraphDefinition(
        name=plan.job_name,
        node_defs=builder.node_defs,
        dependencies=builder.deps,
        description=job_description(plan),
    )
    return graph.to_job(
        name=plan.job_name,
        tags=job_tags(plan),
        config=run_config_mapping(plan, tuple(builder.params_nodes), console_log_level, executor),
        description=graph.description,
        metadata=job_metadata(plan),
        resource_defs=dict(resources) if resources else None,
        executor_def=executor,
    )
