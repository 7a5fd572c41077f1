"""Compiling workflows in tests: the backend's functions, with the resources a step needs.

Every step op requires the `policy` resource (and LLM steps their clients); the code location
binds them for all jobs, and here each test job gets them bound to itself: the embedded engine
over the shipped policies unless a test passes its own
(`resources={"policy": PolicyEngineResource(policy_dir=...)}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from resources.dagster_private import is_valid_cron_string
from resources.defaults import step_resources
from resources.plugins import PluginRegistry, default_registry
from resources.policy.engine import PolicyEngineResource
from yaml_compiler import plan_text as core_plan_text
from yaml_compiler.backend import CompiledWorkflow
from yaml_compiler.backend import compile_file as backend_compile_file
from yaml_compiler.backend import compile_text as backend_compile_text
from yaml_compiler.plan import WorkflowPlan


def bound_resources(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a test job runs with unless the test says otherwise: the embedded policy engine on
    the shipped policies, and LLM resources with no configuration (a test that calls a model
    passes its own to `execute_in_process(resources=...)`, which overrides these)."""
    return {"policy": PolicyEngineResource(), **step_resources({}), **dict(extra or {})}


def compile_text(
    text: str,
    filename: str = "<string>",
    registry: PluginRegistry | None = None,
    resources: Mapping[str, Any] | None = None,
) -> CompiledWorkflow:
    return backend_compile_text(text, filename, registry, resources=bound_resources(resources))


def compile_file(
    path: str | Path,
    registry: PluginRegistry | None = None,
    resources: Mapping[str, Any] | None = None,
) -> CompiledWorkflow:
    return backend_compile_file(path, registry, resources=bound_resources(resources))


def plan_text(
    text: str,
    filename: str = "<string>",
    registry: PluginRegistry | None = None,
    param_overrides: Mapping[str, Any] | None = None,
) -> WorkflowPlan:
    return core_plan_text(
        text, filename, registry or default_registry(), param_overrides, is_valid_cron_string
    )
