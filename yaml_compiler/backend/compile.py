"""Files in, Dagster definitions out: one workflow, or every file of the workflows folders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from resources.dagster_private import is_valid_cron_string
from resources.plugins import PluginRegistry, default_registry
from yaml_compiler.backend.assets import build_asset_specs
from yaml_compiler.backend.deployment import DEFAULT_SETTINGS, DeploymentSettings
from yaml_compiler.backend.job import build_job
from yaml_compiler.backend.policy_summary import workflow_summary
from yaml_compiler.backend.saga import build_saga_job
from yaml_compiler.backend.schedules import build_schedules, schedule_problems
from yaml_compiler.compiler import cyclic_gc_paused, load_plan, plan_text, read_workflow_file
from yaml_compiler.diagnostics import Diagnostic, WorkflowCompileError
from yaml_compiler.plan import WorkflowPlan
from yaml_compiler.workspace import unique_names


@dataclass(frozen=True)
class CompiledWorkflow:
    plan: WorkflowPlan
    job: dg.JobDefinition
    schedules: tuple[dg.ScheduleDefinition, ...]
    assets: tuple[dg.AssetSpec, ...] = ()
    """Declared outputs as external assets: lineage in the UI, materialised by the job's ops."""
    summary: Mapping[str, Any] = field(default_factory=dict)
    """What `maestro.workflow` is asked about this workflow (the gate sensor uses it)."""
    saga: dg.JobDefinition | None = None
    """`<job>__compensate` (on_failure: compensate with compensations), launched by the saga
    sensor for each failed or canceled run."""


def compile_plan(
    plan: WorkflowPlan,
    registry: PluginRegistry | None = None,
    *,
    resources: Mapping[str, Any] | None = None,
    console_log_level: str | None = None,
    deployment: DeploymentSettings = DEFAULT_SETTINGS,
) -> CompiledWorkflow:
    """The Dagster job, schedules and assets of a checked plan; Dagster's own refusals (a cron
    string it cannot run, when the plan was made without the check; a definition it rejects)
    come back as positioned diagnostics."""
    registry = registry or default_registry()
    problems = schedule_problems(plan)
    if problems:
        raise WorkflowCompileError(problems)
    with cyclic_gc_paused():
        summary = workflow_summary(plan, registry)
        try:
            job = build_job(
                plan,
                registry,
                summary=summary,
                resources=resources,
                console_log_level=console_log_level,
                deployment=deployment,
            )
            schedules = tuple(build_schedules(plan, job, deployment.schedules_running))
            saga = build_saga_job(plan, registry, resources=resources)
        except dg.DagsterError as exc:
            raise WorkflowCompileError(
                [plan.diagnostic((), f"cannot build the Dagster job: {exc}")]
            ) from None
        assets = tuple(build_asset_specs(plan))
        return CompiledWorkflow(plan, job, schedules, assets, summary, saga)


def compile_text(
    text: str,
    filename: str = "<string>",
    registry: PluginRegistry | None = None,
    *,
    resources: Mapping[str, Any] | None = None,
) -> CompiledWorkflow:
    registry = registry or default_registry()
    with cyclic_gc_paused():
        plan = plan_text(text, filename, registry, cron_check=is_valid_cron_string)
    return compile_plan(plan, registry, resources=resources)


def compile_file(
    path: str | Path,
    registry: PluginRegistry | None = None,
    *,
    resources: Mapping[str, Any] | None = None,
) -> CompiledWorkflow:
    return compile_text(read_workflow_file(path), str(path), registry, resources=resources)


@dataclass(frozen=True)
class LoadedWorkflows:
    """What a set of workflow files gave: the workflows that compiled, and every problem."""

    workflows: list[CompiledWorkflow]
    problems: list[Diagnostic]
    """In the order of the files given, each file's sorted; name clashes last."""

    @property
    def broken_files(self) -> list[str]:
        return sorted({d.file for d in self.problems})

    def raise_if_broken(self) -> None:
        if self.problems:
            raise WorkflowCompileError(self.problems)


def compile_workflow_files(
    files: Iterable[Path],
    registry: PluginRegistry | None = None,
    reserved_names: Mapping[str, str] | None = None,
    deployment: DeploymentSettings = DEFAULT_SETTINGS,
) -> LoadedWorkflows:
    """Compile every file; a file that does not compile, or whose names clash with an earlier
    file's, is left out with its diagnostics. Nothing else is affected by it. `deployment`:
    the settings the code location read from its environment (GPU placement, schedules)."""
    registry = registry or default_registry()
    compiled: dict[int, CompiledWorkflow] = {}  # id(plan) -> its workflow
    problems: list[Diagnostic] = []
    for path in files:
        try:
            plan = load_plan(path, registry, cron_check=is_valid_cron_string)
            workflow = compile_plan(plan, registry, deployment=deployment)
        except WorkflowCompileError as exc:
            problems += exc.diagnostics
            continue
        compiled[id(workflow.plan)] = workflow
    unique, clashes = unique_names([w.plan for w in compiled.values()], reserved_names)
    return LoadedWorkflows([compiled[id(p)] for p in unique], [*problems, *clashes])
