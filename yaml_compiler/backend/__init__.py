"""The compiler's Dagster backend: a checked plan becomes a Dagster job, and its ops run it.

It sits on the language core (`yaml_compiler`) and on `resources` (plugins, IO managers,
policy): job building in `job.py`, `assets.py`, `schedules.py`, `run_config.py`; what an op
does when it runs in `runtime/`.
"""

from yaml_compiler.backend.compile import (
    CompiledWorkflow,
    LoadedWorkflows,
    compile_file,
    compile_plan,
    compile_text,
    compile_workflow_files,
)
from yaml_compiler.backend.job import build_job

__all__ = [
    "CompiledWorkflow",
    "LoadedWorkflows",
    "build_job",
    "compile_file",
    "compile_plan",
    "compile_text",
    "compile_workflow_files",
]
