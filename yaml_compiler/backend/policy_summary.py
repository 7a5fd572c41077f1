"""What `maestro.workflow` is asked about a workflow: its plugins, models, secrets and cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resources.plugins import PluginRegistry, RunInfo, StepContext
from resources.policy.inputs import models_in
from yaml_compiler.plan import WorkflowPlan


class _NullLog:
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...
    def debug(self, msg: str) -> None: ...


def workflow_summary(plan: WorkflowPlan, registry: PluginRegistry) -> dict[str, Any]:
    """Name, version, plugins, models, secrets, step count, budget and estimated cost of a plan.

    The estimate adds each metered plugin's `estimate_cost` for steps whose `with` has no
    templates (the others are estimated again, rendered, when they run).
    """
    spec = plan.spec
    workflow_dir = Path(plan.source_file).resolve().parent  # as the compiler's `prepare` saw it
    plugins: list[str] = []
    models: list[str] = []
    secrets: set[str] = set(spec.secrets)
    estimate = 0.0
    for step in plan.steps:
        if step.plugin not in plugins:
            plugins.append(step.plugin)
        models += [m for m in models_in(step.params) if "{{" not in m and m not in models]
        secrets |= set(step.secrets)
        plugin = registry.get(step.plugin)
        if plugin is None or not plugin.metered:
            continue
        try:
            params = plugin.parse(dict(step.params))
            ctx = StepContext(
                step_id=step.id,
                run=RunInfo("", spec.name, spec.tenant, spec.environment, ""),
                log=_NullLog(),
                workflow_dir=workflow_dir,
            )
            estimate += float(plugin.estimate_cost(params, ctx))
        except Exception:
            continue  # templated or unknowable before the run: checked per step instead
    budget = spec.budget.max_cost_usd if spec.budget is not None else None
    return {
        "name": spec.name,
        "version": spec.version,
        "tenant": spec.tenant,
        "plugins": sorted(plugins),
        "models": sorted(models),
        "secrets": sorted(secrets),
        "step_count": len(plan.steps),
        "budget_usd": budget,
        "estimated_cost_usd": estimate,
    }
