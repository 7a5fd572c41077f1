"""A workflow's `schedule:` entries as Dagster schedules, cron strings checked by Dagster."""

from __future__ import annotations

import dagster as dg

from resources.dagster_private import is_valid_cron_string
from yaml_compiler.diagnostics import Diagnostic
from yaml_compiler.plan import WorkflowPlan, schedule_names, schedule_path


def schedule_problems(plan: WorkflowPlan) -> list[Diagnostic]:
    """Cron strings Dagster will not run, at their place in the file."""
    document = plan.document.value if plan.document is not None else None
    return [
        plan.diagnostic(schedule_path(document, index), f"invalid cron string {schedule.cron!r}")
        for index, schedule in enumerate(plan.spec.schedule)
        if not is_valid_cron_string(schedule.cron)
    ]


def build_schedules(
    plan: WorkflowPlan, job: dg.JobDefinition, running: bool = False
) -> list[dg.ScheduleDefinition]:
    """`running`: on from the first load (a deployment's choice, MAESTRO_DEFAULT_SCHEDULE_STATUS);
    else stopped until someone turns it on."""
    status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    schedules = []
    for schedule, name in zip(plan.spec.schedule, schedule_names(plan.spec), strict=True):
        schedules.append(
            dg.ScheduleDefinition(
                name=name,
                cron_schedule=schedule.cron,
                job=job,
                run_config={"params": dict(schedule.params)} if plan.spec.params else None,
                execution_timezone=schedule.timezone,
                description=f"Runs workflow {plan.spec.name} on {schedule.cron}",
                default_status=status,
            )
        )
    return schedules
