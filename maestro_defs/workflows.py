"""Find workflow files and compile them into one `dg.Definitions`, failing loudly on bad files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from yaml_compiler import (
    CompiledWorkflow,
    Diagnostic,
    WorkflowCompileError,
    compile_file,
    workflow_files_in,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def workflow_dirs(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """`MAESTRO_WORKFLOWS_DIR` (os.pathsep-separated), else the project's `workflows/`."""
    configured = environ.get("MAESTRO_WORKFLOWS_DIR")
    if not configured:
        return [PROJECT_ROOT / "workflows"]
    return [Path(part).expanduser() for part in configured.split(os.pathsep) if part]


def workflow_files(dirs: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in dirs:
        if not directory.is_dir():
            raise WorkflowCompileError(
                [Diagnostic(str(directory), 1, 1, "<root>", "workflows folder does not exist")]
            )
        files.extend(workflow_files_in(directory))
    return files


def compile_workflows(files: Iterable[Path]) -> list[CompiledWorkflow]:
    """Compile every file; collect every problem of every file before raising."""
    compiled: list[CompiledWorkflow] = []
    problems: list[Diagnostic] = []
    job_files: dict[str, str] = {}  # Dagster name -> the file that defines it
    schedule_files: dict[str, str] = {}
    asset_files: dict[str, str] = {}
    for path in files:
        try:
            workflow = compile_file(path)
        except WorkflowCompileError as exc:
            problems.extend(exc.diagnostics)
            continue
        clashes = [
            (kind, name, owners[name])
            for kind, names, owners in (
                ("workflow job", [workflow.plan.job_name], job_files),
                ("schedule", [s.name for s in workflow.schedules], schedule_files),
                ("asset", [a.key.to_user_string() for a in workflow.assets], asset_files),
            )
            for name in names
            if name in owners
        ]
        for kind, name, owner in clashes:
            problems.append(
                Diagnostic(
                    str(path), 1, 1, "name", f"{kind} {name!r} is already defined by {owner}"
                )
            )
        if clashes:
            continue
        job_files[workflow.plan.job_name] = str(path)
        schedule_files.update({s.name: str(path) for s in workflow.schedules})
        asset_files.update({a.key.to_user_string(): str(path) for a in workflow.assets})
        compiled.append(workflow)
    if problems:
        raise WorkflowCompileError(problems)
    return compiled


def build_definitions(
    workflows: Iterable[CompiledWorkflow], resources: Mapping[str, Any] | None = None
) -> dg.Definitions:
    """Jobs, schedules, the policy gate sensor, and the `policy` resource it uses."""
    from maestro_defs.gate import policy_gate_sensor, policy_resource

    workflows = list(workflows)
    return dg.Definitions(
        jobs=[w.job for w in workflows],
        assets=[a for w in workflows for a in w.assets],
        schedules=[s for w in workflows for s in w.schedules],
        sensors=[policy_gate_sensor(workflows)] if workflows else [],
        resources={"policy": policy_resource(), **(resources or {})},
    )
