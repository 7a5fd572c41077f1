"""Run config as users write it, `{"params": {...}}`: typed fields in the launchpad, mapped onto
every op that reads a param (a Dagster ConfigMapping)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from yaml_compiler.plan import WorkflowPlan
from yaml_compiler.spec import ParamSpec

_PARAM_TYPES: dict[str, Any] = {
    "string": dg.String,
    "integer": dg.Int,
    "number": dg.Float,
    "boolean": dg.Bool,
    "list": dg.Array(dg.Noneable(dg.Any)),  # [a, null]: Dagster refuses None in Array(Any)
    "object": dg.Permissive(),
}
OP_PARAMS_CONFIG = {"params": dg.Field(dg.Permissive(), is_required=False, default_value={})}
"""The config schema of each op that reads params (it receives them from the mapping)."""


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


def run_config_mapping(
    plan: WorkflowPlan,
    params_ops: tuple[str, ...],
    console_log_level: str | None,
    executor: dg.ExecutorDefinition | None = None,
) -> dg.ConfigMapping | None:
    """`{"params": {...}}` mapped onto `ops.<node>.config.params` of every op that reads it.

    A job with a config mapping accepts only the mapping's fields, so the executor's config
    (`execution: {config: {max_concurrent: ...}}`) is one of them and passed through as is.
    """
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
        if outer.get("execution"):
            run_config["execution"] = outer["execution"]
        return {**run_config, "loggers": loggers} if console_log_level else run_config

    schema: dict[str, dg.Field] = {}
    if params:
        required = any(p.required for p in params.values())
        schema["params"] = (
            dg.Field(params_config_schema(plan), is_required=True)
            if required
            else dg.Field(params_config_schema(plan), is_required=False, default_value=defaults)
        )
    if executor is not None:
        # Permissive, so the launchpad's scaffold stays `params` only; what is given is checked
        # against the executor's own schema once mapped.
        config_type = executor.config_schema.as_field().config_type
        fields = ", ".join(getattr(config_type, "fields", None) or ())
        schema["execution"] = dg.Field(
            dg.Permissive(),
            is_required=False,
            description=f"The {executor.name} executor's settings for this run, under "
            f"`config`: {fields or 'none (fixed when the job was built)'}.",
        )
    return dg.ConfigMapping(config_schema=schema, config_fn=to_run_config)
