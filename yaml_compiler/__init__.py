"""The Maestro DSL's language core: YAML with source positions → spec → checked plan.

Pure and deterministic, with no Dagster import (tests/test_layers.py keeps it so). The Dagster
backend that turns a plan into a job, and what its ops do, is `yaml_compiler.backend`.
"""

from yaml_compiler.compiler import (
    WORKFLOW_SUFFIXES,
    load_plan,
    plan_text,
    read_workflow_file,
    workflow_files_in,
)
from yaml_compiler.diagnostics import Diagnostic, WorkflowCompileError
from yaml_compiler.plan import WorkflowPlan

__all__ = [
    "WORKFLOW_SUFFIXES",
    "Diagnostic",
    "WorkflowCompileError",
    "WorkflowPlan",
    "load_plan",
    "plan_text",
    "read_workflow_file",
    "workflow_files_in",
]
