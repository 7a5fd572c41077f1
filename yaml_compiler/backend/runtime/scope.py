"""The template scope of a running step, and what is rendered in it: `with`, `when`, `for_each`."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from jinja2 import TemplateError
from pydantic import ValidationError

from maestro_common.template_sandbox import render_limits
from resources.plugins import RunInfo, StepError
from yaml_compiler.backend.runtime.step import StepRuntime
from yaml_compiler.templating import evaluate, render_string, render_value


class StepConfigError(StepError):
    """Bad rendered parameters or templates: retrying cannot help."""


def run_started_at(context: dg.OpExecutionContext) -> datetime:
    record = context.instance.get_run_record_by_id(context.run_id)
    started = record.start_time if record and record.start_time else time.time()
    return datetime.fromtimestamp(started, tz=UTC)


def template_context(
    context: dg.OpExecutionContext,
    runtime: StepRuntime,
    upstream: Mapping[str, Any],
    item: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    step, spec = runtime.step, runtime.workflow
    started = run_started_at(context).isoformat() if step.reads_run_start else ""
    scope: dict[str, Any] = {
        "params": context.op_config.get("params", {}) if step.uses_params else {},
        "run": RunInfo(context.run_id, spec.name, spec.tenant, spec.environment, started),
        "steps": {step_id: {"output": value} for step_id, value in upstream.items()},
        "secrets": secret_values(step.secrets),
    }
    if item is not None:
        scope["item"], scope["item_index"] = item["value"], item["index"]
    return scope


def secret_values(names: tuple[str, ...]) -> dict[str, str]:
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise StepConfigError(f"secret(s) not set in the environment: {', '.join(missing)}")
    return {name: os.environ[name] for name in names}


def describe_error(error: Exception) -> str:
    """Jinja's messages stand alone; other errors (ZeroDivisionError...) need their type."""
    return str(error) if isinstance(error, TemplateError) else f"{type(error).__name__}: {error}"


def render_params(runtime: StepRuntime, scope: Mapping[str, Any]) -> Any:
    """`with`, rendered by the plugin's `render` hook and validated by its params model."""
    plugin = runtime.plugin

    def render(value: Any, shell_quoted: bool = False) -> Any:
        if shell_quoted and isinstance(value, str):
            return render_string(value, scope, shell_quoted=True)
        return render_value(value, scope)

    try:
        with render_limits(runtime.step.timeout):
            rendered = plugin.render(runtime.step.params, render)
    except Exception as exc:  # Jinja's own errors, and e.g. ZeroDivisionError from `{{ 1 / 0 }}`
        raise StepConfigError(f"template error in `with`: {describe_error(exc)}") from exc
    try:
        return plugin.parse(rendered)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise StepConfigError(f"invalid parameters for {plugin.name}: {problems}") from exc


def condition_holds(runtime: StepRuntime, scope: Mapping[str, Any]) -> bool:
    when = runtime.step.when
    if when is None or isinstance(when, bool):
        return when is not False
    try:
        with render_limits(runtime.step.timeout):
            return bool(evaluate(when, scope))
    except Exception as exc:
        raise StepConfigError(f"cannot evaluate when: {describe_error(exc)}") from exc


def for_each_items(runtime: StepRuntime, scope: Mapping[str, Any]) -> list[Any]:
    source = runtime.step.for_each
    try:
        with render_limits(runtime.step.timeout):
            items = (
                render_value(source, scope)
                if isinstance(source, list)
                else evaluate(str(source), scope)
            )
    except Exception as exc:
        raise StepConfigError(f"cannot evaluate for_each: {describe_error(exc)}") from exc
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise StepConfigError(f"for_each must give a list, got {type(items).__name__}")
    return list(items.items() if isinstance(items, Mapping) else items)
