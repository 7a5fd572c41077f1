"""YAML → validated spec → checked plan → Dagster definitions. Pure and deterministic."""

from yaml_compiler.compiler import (
    CompiledWorkflow,
    compile_file,
    compile_text,
    load_plan,
    plan_text,
)
from yaml_compiler.diagnostics import Diagnostic, WorkflowCompileError

__all__ = [
    "CompiledWorkflow",
    "Diagnostic",
    "WorkflowCompileError",
    "compile_file",
    "compile_text",
    "load_plan",
    "plan_text",
]
