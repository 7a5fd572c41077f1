"""YAML → validated spec → checked plan → Dagster definitions. Pure and deterministic."""

from yaml_compiler.compiler import (
    WORKFLOW_SUFFIXES,
    CompiledWorkflow,
    compile_file,
    compile_text,
    load_plan,
    plan_text,
    workflow_files_in,
)
from yaml_compiler.diagnostics import Diagnostic, WorkflowCompileError

__all__ = [
    "WORKFLOW_SUFFIXES",
    "CompiledWorkflow",
    "Diagnostic",
    "WorkflowCompileError",
    "compile_file",
    "compile_text",
    "load_plan",
    "plan_text",
    "workflow_files_in",
]
