"""Declared outputs as Dagster assets: the lineage graph of a workflow in the UI."""

from __future__ import annotations

import re

import dagster as dg

from yaml_compiler.plan import WorkflowPlan


def asset_key(text: str | None) -> dg.AssetKey:
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
                keys.update(dict.fromkeys(asset_key(o.asset_key) for o in upstream.outputs))
            else:
                keys.update(dict.fromkeys(upstream_assets[upstream_id]))
        upstream_assets[step.id] = tuple(keys)
    group = re.sub(r"[^A-Za-z0-9_]", "_", f"maestro_{plan.spec.name}")
    return [
        dg.AssetSpec(
            asset_key(output.asset_key),
            deps=list(upstream_assets[step.id]),
            description=output.description or f"Output {output.name!r} of step {step.id!r}",
            group_name=group,
            metadata={
                "maestro/workflow": plan.spec.name,
                "maestro/step_id": step.id,
                "maestro/job": plan.job_name,
                "maestro/source": f"{plan.where(step)}",
            },
        )
        for step in plan.steps
        for output in step.outputs
    ]
