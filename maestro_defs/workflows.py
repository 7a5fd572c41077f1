"""Where the code location's workflow files are, and what loading them all together gives."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from maestro_defs import gate, liveness, saga, traces
from maestro_defs.gate import policy_gate_sensor
from maestro_defs.liveness import dead_runs_sensor
from maestro_defs.saga import saga_sensor
from maestro_defs.traces import run_traces_sensor
from resources.defaults import default_resources
from resources.policy.gate import GateWorkflow
from yaml_compiler import Diagnostic, WorkflowCompileError, workflow_files_in
from yaml_compiler.backend import CompiledWorkflow, LoadedWorkflows, compile_workflow_files
from yaml_compiler.backend.deployment import DeploymentSettingsError, settings_from_env

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMPONENT_YAML = Path(__file__).resolve().parent / "defs" / "workflows" / "defs.yaml"
WORKFLOWS_DIR_ENV = "MAESTRO_WORKFLOWS_DIR"
STRICT_LOAD_ENV = "MAESTRO_STRICT_LOAD"
"""`1`: one broken workflow file fails the whole code location (all-or-nothing loading)."""
VALIDATION_CLI_ENV = "DAGSTER_IS_DEFS_VALIDATION_CLI"
"""Set by `dagster definitions validate` and `dg check defs`: they must fail on a bad file."""


def workflow_dirs(
    configured: Sequence[str] = ("workflows",),
    root: Path = PROJECT_ROOT,
    environ: Mapping[str, str] = os.environ,
) -> list[Path]:
    """`MAESTRO_WORKFLOWS_DIR` (os.pathsep-separated) when set, else `configured`; relative
    folders are under `root` (the project), and every folder is made absolute."""
    parts = environ.get(WORKFLOWS_DIR_ENV, "").split(os.pathsep)
    chosen = [p for p in parts if p] or list(configured)
    return [(root / Path(part).expanduser()).resolve() for part in chosen]


def code_location_dirs(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The folders the code location's workflows component reads (its defs.yaml, or
    MAESTRO_WORKFLOWS_DIR), for commands that must agree with it (`maestro submit`)."""
    declared = yaml.safe_load(COMPONENT_YAML.read_text(encoding="utf-8")) or {}
    configured = (declared.get("attributes") or {}).get("workflows_dirs") or ["workflows"]
    return workflow_dirs(configured, PROJECT_ROOT, environ)


def workflow_files(dirs: Iterable[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Every workflow file of the folders, and a problem for each folder that is missing."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for directory in dirs:
        if not directory.is_dir():
            problems.append(
                Diagnostic(str(directory), 1, 1, "<root>", "workflows folder does not exist")
            )
            continue
        files.extend(workflow_files_in(directory))
    return files, problems


def strict_loading(environ: Mapping[str, str] = os.environ, configured: bool = False) -> bool:
    return configured or any(environ.get(v) == "1" for v in (STRICT_LOAD_ENV, VALIDATION_CLI_ENV))


def load_workflows(
    dirs: Iterable[Path], reserved_names: Mapping[str, str] | None = None
) -> LoadedWorkflows:
    """Compile every workflow file of the folders; broken ones are left out with their
    diagnostics (clashing names, Dagster's refusals and missing folders included). The
    deployment's settings (GPU placement, schedules on or off) come from the environment."""
    files, missing = workflow_files(dirs)
    try:
        deployment = settings_from_env()
    except DeploymentSettingsError as exc:  # a deployment mistake: every job would be wrong
        raise WorkflowCompileError(
            [Diagnostic("<environment>", 1, 1, "<root>", str(exc))]
        ) from None
    loaded = compile_workflow_files(files, reserved_names=reserved_names, deployment=deployment)
    return LoadedWorkflows(loaded.workflows, [*missing, *loaded.problems])


def build_definitions(
    loaded: LoadedWorkflows, resources: Mapping[str, Any] | None = None
) -> dg.Definitions:
    """Jobs, schedules and assets of the workflows that loaded, the policy gate sensor (which
    also shows the files that did not), the dead-run, saga and run-trace sensors, and the
    resources (`default_resources()` unless given)."""
    workflows = loaded.workflows
    gate = policy_gate_sensor(
        gate_workflows(workflows), [w.job for w in workflows], problems_by_file(loaded)
    )
    sagas = {w.job.name: w.saga for w in workflows if w.saga is not None}
    jobs = [w.job for w in workflows] + list(sagas.values())
    sensors = [gate, dead_runs_sensor(), run_traces_sensor(jobs)]
    sensors += [saga_sensor(sagas)] if sagas else []
    return dg.Definitions(
        jobs=jobs,
        assets=[a for w in workflows for a in w.assets],
        schedules=[s for w in workflows for s in w.schedules],
        sensors=sensors,
        resources=dict(resources) if resources is not None else default_resources(),
    )


def reserved_sensor_names() -> dict[str, str]:
    """Names a workflow's jobs and schedules may not take: the code location's own sensors."""
    return {
        gate.SENSOR_NAME: "the policy gate sensor",
        liveness.SENSOR_NAME: "the dead-run sensor",
        saga.SENSOR_NAME: "the saga sensor",
        traces.SENSOR_NAME: "the run-trace sensor",
    }


def gate_workflows(workflows: Iterable[CompiledWorkflow]) -> dict[str, GateWorkflow]:
    return {
        w.plan.job_name: GateWorkflow(w.plan.job_name, w.plan.spec.environment, w.summary)
        for w in workflows
    }


def problems_by_file(loaded: LoadedWorkflows) -> dict[str, list[str]]:
    """Workflow file -> its diagnostics, as `maestro submit` requests name the file."""
    by_file: dict[str, list[str]] = {}
    for diagnostic in loaded.problems:
        by_file.setdefault(str(Path(diagnostic.file).resolve()), []).append(str(diagnostic))
    return by_file


def report_problems(loaded: LoadedWorkflows, strict: bool) -> None:
    """All-or-nothing: raise with every problem. Otherwise log each broken file's problems as a
    warning of the code location's load, and go on with the workflows that compiled."""
    if not loaded.problems:
        return
    if strict:
        raise WorkflowCompileError(loaded.problems)
    log = dg.get_dagster_logger("maestro")
    log.warning(
        f"{len(loaded.broken_files)} workflow file(s) did not load; every other workflow did:\n"
        + "\n".join(str(d) for d in loaded.problems)
    )
