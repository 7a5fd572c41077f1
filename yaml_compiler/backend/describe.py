"""What the Dagster UI shows of a workflow: job and op tags, metadata and descriptions.

Job tags become run tags: only the workflow and the tenant (resources/run_tags.py); the rest is
job metadata, shown on the job's page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import dagster as dg

from resources.run_tags import TENANT_TAG, WORKFLOW_TAG
from yaml_compiler.backend.deployment import (
    DEFAULT_SETTINGS,
    K8S_CONFIG_TAG,
    GpuPlacement,
    step_k8s_config,
)
from yaml_compiler.backend.runtime.workflow_dir import SOURCE_METADATA
from yaml_compiler.plan import PlannedStep, WorkflowPlan

_SECRET_LIKE = re.compile(r"(?i)(token|secret|password|passwd|api_?key|authorization|cookie)")
_SHOWN_CHARS = 60


def job_tags(plan: WorkflowPlan) -> dict[str, str]:
    spec = plan.spec
    tags = {WORKFLOW_TAG: spec.name, TENANT_TAG: spec.tenant}
    if spec.run_time_limit is not None:
        tags["dagster/max_runtime"] = f"{spec.run_time_limit:g}"
    return {**tags, **spec.tags}


def job_metadata(plan: WorkflowPlan) -> dict[str, Any]:
    spec = plan.spec
    metadata: dict[str, Any] = {
        SOURCE_METADATA: dg.MetadataValue.path(plan.source_file),
        "maestro/version": spec.version,
        "maestro/environment": spec.environment,
        "maestro/on_failure": spec.on_failure,
    }
    if spec.budget is not None and spec.budget.max_cost_usd is not None:
        metadata["maestro/budget_usd"] = spec.budget.max_cost_usd
    return metadata


def op_tags(
    plan: WorkflowPlan, step: PlannedStep, gpu: GpuPlacement = DEFAULT_SETTINGS.gpu
) -> dict[str, str]:
    """Step facts for the UI; `resources` also as the step pod's `dagster-k8s/config`."""
    tags = {
        "maestro/step_id": step.id,
        "maestro/plugin": step.plugin,
        WORKFLOW_TAG: plan.spec.name,
    }
    if step.stage is not None:
        tags["maestro/stage"] = step.stage
    if step.resources is not None:
        for key, value in step.resources.model_dump(exclude_none=True).items():
            tags[f"maestro/{key}"] = str(value)
        k8s_config = step_k8s_config(step.resources, gpu)
        if k8s_config is not None:
            tags[K8S_CONFIG_TAG] = json.dumps(k8s_config, sort_keys=True)
    if step.compensation is not None:
        tags["maestro/compensation"] = step.compensation.run
    if step.timeout is not None:
        tags["maestro/timeout_s"] = f"{step.timeout:g}"
    return {**tags, **step.tags}


def _redacted(key: str, value: Any) -> Any:
    """`value` with what sits under a secret-like key (token, password, Authorization...)
    replaced by `***`, at any depth; a `{{ secrets.X }}` template names no value, it stays."""
    if isinstance(value, Mapping):
        return {k: _redacted(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(key, item) for item in value]
    if _SECRET_LIKE.search(key) and not (isinstance(value, str) and "secrets." in value):
        return "***"
    return value


def _shown(key: str, value: Any) -> str:
    """A `with` value as the op description shows it: redacted, on one short line."""
    value = _redacted(key, value)
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def with_summary(params: Mapping[str, Any]) -> list[str]:
    return [f"- `{key}`: {_shown(str(key), value)}" for key, value in params.items()]


def op_description(plan: WorkflowPlan, step: PlannedStep) -> str:
    """Markdown: what the step runs, its own words, its `with` and where it is written."""
    title = step.name or step.id
    where = f" in stage `{step.stage}`" if step.stage else ""
    lines = [f"**{title}**: `{step.plugin}` step `{step.id}`{where}."]
    if step.description:
        lines += ["", step.description]
    if step.params:
        lines += ["", "with:", *with_summary(step.params)]
    lines += ["", f"Defined at {plan.where(step)}."]
    return "\n".join(lines)


def job_description(plan: WorkflowPlan) -> str:
    spec = plan.spec
    return spec.description or f"Maestro workflow {spec.name} {spec.version}"
