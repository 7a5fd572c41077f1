"""`maestro run`: execute a compiled workflow in this process, on the local Dagster instance.

The run is a real Dagster run (stored in DAGSTER_HOME, visible in `dagster dev`) on the job's
own executor, as a launched run is (the threads executor unless the workflow says otherwise):
the job is reconstructable from its file, so steps that ask for a process of their own get one.
Only the console is different: Dagster's debug log is turned down and progress comes from
the events.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import dagster as dg

from maestro_cli.progress import RunProgress
from resources.dagster_private import execute_run, is_valid_cron_string, recon_job_from_origin
from resources.defaults import default_resources
from resources.liveness import run_heartbeat
from resources.observability import tracing
from resources.plugins import default_registry
from resources.run_tags import COMPENSATES_TAG, COST_TAG, TRACEPARENT_TAG
from yaml_compiler import load_plan
from yaml_compiler.backend import build_job
from yaml_compiler.backend.saga import build_saga_job
from yaml_compiler.plan import WorkflowPlan
from yaml_compiler.saga import compensable_steps

DEFAULT_HOME = ".dagster_home"
DEFAULT_INSTANCE_YAML = "telemetry:\n  enabled: false\n"


def instance_home(environ: Mapping[str, str] = os.environ, cwd: Path | None = None) -> Path:
    """`DAGSTER_HOME` when set; else `./.dagster_home`, created with a telemetry-off dagster.yaml.

    A DAGSTER_HOME the user chose is created if missing but its configuration is left alone.
    """
    configured = environ.get("DAGSTER_HOME")
    if configured:
        home = Path(configured).expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
        return home
    home = ((cwd or Path.cwd()) / DEFAULT_HOME).resolve()
    home.mkdir(exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_INSTANCE_YAML, encoding="utf-8")
    return home


def resources_for(home: Path, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The resources the code location binds, with artifacts under `home` unless
    MAESTRO_ARTIFACTS says otherwise: a `maestro run` step sees what a UI-launched one does."""
    return default_resources({**environ, "DAGSTER_HOME": str(home)})


def run_config_for(plan: WorkflowPlan) -> dict[str, Any]:
    """Run config carrying every resolved param value, so the UI shows what the run used."""
    return {"params": dict(plan.param_values)} if plan.spec.params else {}


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str
    success: bool
    duration: float
    progress: RunProgress
    cost_usd: float = 0.0
    """What the run's steps spent (the cost ledger's total, the run tag `maestro/cost_usd`)."""


def workflow_job(
    path: str, home: str, params_json: str, console_log_level: str | None
) -> dg.JobDefinition:
    """The job `maestro run` executes, rebuilt from its file wherever Dagster needs it (this
    process, and the process of a step with `isolation: process`), with the CLI's resources."""
    plan = load_plan(path, default_registry(), json.loads(params_json), is_valid_cron_string)
    return build_job(plan, console_log_level=console_log_level, resources=resources_for(Path(home)))


def reconstructable_workflow_job(
    plan: WorkflowPlan, home: Path, console_log_level: str | None
) -> dg.ReconstructableJob:
    overrides = {k: v for k, v in plan.param_values.items() if v is not None}
    return dg.build_reconstructable_job(
        __name__,
        "workflow_job",
        reconstructable_kwargs={
            "path": str(Path(plan.source_file).resolve()),
            "home": str(home),
            "params_json": json.dumps(overrides, sort_keys=True) if plan.spec.params else "{}",
            "console_log_level": console_log_level,
        },
    )


def saga_job(path: str, home: str, params_json: str) -> dg.JobDefinition:
    """The workflow's `<job>__compensate`, rebuilt from its file like `workflow_job`."""
    plan = load_plan(path, default_registry(), json.loads(params_json), is_valid_cron_string)
    job = build_saga_job(plan, resources=resources_for(Path(home)))
    assert job is not None, f"{path} has nothing to compensate"
    return job


def compensate(
    plan: WorkflowPlan, home: Path, instance: dg.DagsterInstance, run_id: str
) -> dg.JobExecutionResult | None:
    """`maestro run`'s saga: right after a failed or canceled run of an `on_failure:
    compensate` workflow, the same `<job>__compensate` job the code location's sensor would
    launch, in this process, tagged with the run's id (so the sensor never launches another)."""
    if not compensable_steps(plan):
        return None
    overrides = {k: v for k, v in plan.param_values.items() if v is not None}
    job = dg.build_reconstructable_job(
        __name__,
        "saga_job",
        reconstructable_kwargs={
            "path": str(Path(plan.source_file).resolve()),
            "home": str(home),
            "params_json": json.dumps(overrides, sort_keys=True) if plan.spec.params else "{}",
        },
    )
    return dg.execute_job(job, instance, tags={COMPENSATES_TAG: run_id}, raise_on_error=False)


def execute(
    plan: WorkflowPlan,
    job: dg.ReconstructableJob,
    instance: dg.DagsterInstance,
    out: TextIO,
    tags: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Run the job on its executor in this process, printing each step event as the instance
    stores it (the run is created first, so the printer sees every event)."""
    progress = RunProgress(plan, out)
    errors: list[Exception] = []

    def on_event(entry: Any) -> None:
        try:
            progress.handle(entry)
        except Exception as exc:  # never break the run over a progress line; re-raised below
            errors.append(exc)

    job_def = job.get_definition()
    run_id = str(uuid.uuid4())  # chosen here so its traceparent goes in at creation
    trace_tags = {TRACEPARENT_TAG: tracing.traceparent_for_run(run_id)} if tracing.enabled() else {}
    dagster_run = instance.create_run_for_job(
        job_def=job_def,
        run_id=run_id,
        run_config=run_config_for(plan),
        tags={**job_def.run_tags, **trace_tags, **(tags or {})},
        job_code_origin=job.get_python_origin(),
    )
    instance.add_event_listener(run_id, on_event)
    started = time.monotonic()
    with run_heartbeat(instance, dagster_run):  # a killed process's run is marked failed
        result = execute_run(job, dagster_run, instance, raise_on_error=False)
    if errors:
        raise errors[0]
    run = instance.get_run_by_id(run_id)
    # The run's root span, unless its executor (threads, in this process) recorded it.
    tracing.end_run(
        instance,
        run_id,
        dagster_run.tags.get(TRACEPARENT_TAG),
        run.status.value if run is not None else "FAILURE",
        job_def.metadata,
    )
    return RunOutcome(
        run_id=run_id,
        status=run.status.value if run is not None else "UNKNOWN",
        success=result.success,
        duration=_duration(instance, run_id, time.monotonic() - started),
        progress=progress,
        cost_usd=float(run.tags.get(COST_TAG, 0.0)) if run is not None else 0.0,
    )


def _duration(instance: dg.DagsterInstance, run_id: str, fallback: float) -> float:
    record = instance.get_run_record_by_id(run_id)
    if record is not None and record.start_time and record.end_time:
        return record.end_time - record.start_time
    return fallback


def summary_lines(outcome: RunOutcome, home: Path, workflow_file: Path) -> list[str]:
    """What happened, what failed and why, and how to look at the run in the UI."""
    groups = outcome.progress.by_outcome()
    counted = ", ".join(f"{len(ids)} {label}" for label, ids in groups.items() if ids)
    if groups["not run"]:
        counted += f" ({', '.join(groups['not run'])})"
    lines = [
        "",
        f"run {outcome.run_id}: {outcome.status} in {outcome.duration:.2f}s",
        f"steps: {counted}",
    ]
    if outcome.cost_usd:
        lines.append(f"cost: ${outcome.cost_usd:.6f} (sum of the steps' cost_usd)")
    if outcome.progress.failures:
        lines.append("failed steps:")
        lines += [f"  {step}: {message}" for step, message in outcome.progress.failures.items()]
    lines.append(
        f"see the run in the Dagster UI: DAGSTER_HOME={home} dagster dev -w workspace.yaml "
        "(`make dev` in the repository; the job is listed when its file is in workflows/)"
    )
    return lines


RESUMED_FROM_TAG = "maestro/resumed_from"
"""On a `maestro resume` run: the run it re-executes from failure."""
RESUMABLE = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


class ResumeError(Exception):
    """The run cannot be resumed (unknown, still going, or without a code origin)."""


def resume(instance: dg.DagsterInstance, run_id: str) -> dg.JobExecutionResult:
    """Re-execute a failed or canceled run from failure, in this process: Dagster runs the steps
    that failed, were not started (`not_started`) or never ran, and loads every completed
    step's output from the parent run's pointers in the artifact store; nothing that completed
    runs again. The job is rebuilt from the run's own code origin, with its run config and
    tags, whether the code location or `maestro run` created it."""
    parent = instance.get_run_by_id(run_id)
    if parent is None:
        raise ResumeError(f"no run {run_id} in this instance")
    if parent.status not in RESUMABLE:
        raise ResumeError(
            f"run {run_id} is {parent.status.value}: only a FAILURE or CANCELED run is resumed"
        )
    if parent.job_code_origin is None:
        raise ResumeError(f"run {run_id} has no code origin to rebuild its job from")
    job = recon_job_from_origin(parent.job_code_origin)
    tags = {k: v for k, v in parent.tags.items() if not k.startswith("dagster/")}
    return dg.execute_job(
        job,
        instance,
        run_config=parent.run_config,
        tags={**tags, RESUMED_FROM_TAG: run_id},
        raise_on_error=False,
        reexecution_options=dg.ReexecutionOptions.from_failure(run_id, instance),
    )
