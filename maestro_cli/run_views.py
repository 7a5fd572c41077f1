"""`maestro runs`, `maestro status`, `maestro cancel`: stored runs read from the Dagster instance.

A run's steps are read back through `RunProgress` (progress.py), the same class that prints
`maestro run`'s progress, so a step's outcome means the same thing live and afterwards; its
costs come from the cost ledger (every attempt that spent, failed ones included).
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from maestro_cli.progress import RunProgress, StepRecord, error_text
from resources.dagster_private import job_snapshot_nodes
from resources.liveness import mark_dead_runs
from resources.policy.store import store_for
from resources.run_tags import COMPENSATES_TAG, COST_TAG, DEFAULT_TENANT, TENANT_TAG, WORKFLOW_TAG

STATUSES = tuple(status.value for status in dg.DagsterRunStatus)
_ITEM_SUFFIXES = ("__items", "__collect")


class RunNotFoundError(Exception):
    pass


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f}s"
    minutes, rest = divmod(value, 60)
    if minutes < 60:
        return f"{int(minutes)}m{rest:04.1f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m"


def money(value: float) -> str:
    return f"${value:.6f}" if value else "-"


def run_duration(record: Any, now: float | None = None) -> float | None:
    """Start to end; for a run still going, start to now."""
    if record.start_time is None:
        return None
    end = record.end_time if record.end_time is not None else (now or time.time())
    return max(0.0, end - record.start_time)


def run_cost(record: Any) -> float:
    return float(record.dagster_run.tags.get(COST_TAG, 0.0))


def workflow_of(run: dg.DagsterRun) -> str:
    return run.tags.get(WORKFLOW_TAG, run.job_name)


# ---------------------------------------------------------------- maestro runs


def find_runs(
    instance: dg.DagsterInstance,
    *,
    workflow: str | None = None,
    status: str | None = None,
    tenant: str | None = None,
    limit: int = 20,
) -> list[Any]:
    """Run records, newest first, filtered on the Maestro tags and the status; a run whose
    process died is marked failed first, so it is not listed as STARTED."""
    mark_dead_runs(instance)
    tags = {}
    if workflow:
        tags[WORKFLOW_TAG] = workflow
    if tenant:
        tags[TENANT_TAG] = tenant
    filters = dg.RunsFilter(
        tags=tags or None,
        statuses=[dg.DagsterRunStatus(status)] if status else None,
    )
    return list(instance.get_run_records(filters=filters, limit=limit))


def runs_table(records: Sequence[Any], now: float | None = None) -> list[str]:
    header = ("RUN ID", "WORKFLOW", "TENANT", "STATUS", "STARTED (UTC)", "DURATION", "COST")
    rows = [
        (
            r.dagster_run.run_id,
            workflow_of(r.dagster_run),
            r.dagster_run.tags.get(TENANT_TAG, DEFAULT_TENANT),
            r.dagster_run.status.value,
            when(r.start_time or r.create_timestamp.timestamp()),
            seconds(run_duration(r, now)),
            money(run_cost(r)),
        )
        for r in records
    ]
    return table(header, rows)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


# ---------------------------------------------------------------- maestro status


def step_nodes(
    instance: dg.DagsterInstance, run: dg.DagsterRun
) -> tuple[dict[str, str], list[str]]:
    """(node name -> step id, step ids in job order) from the run's job snapshot (the op tags
    `maestro/step_id`); a job that is not a Maestro workflow keeps its node names."""
    if not run.job_snapshot_id:
        return {}, []
    op_steps: dict[str, str] = {}
    for node in job_snapshot_nodes(instance, run.job_snapshot_id):
        if not node.node_name.endswith(_ITEM_SUFFIXES):
            op_steps[node.node_name] = node.op_tags.get("maestro/step_id", node.node_name)
    return op_steps, list(dict.fromkeys(op_steps.values()))


def read_progress(instance: dg.DagsterInstance, record: Any) -> RunProgress:
    """The run's events fed through RunProgress (its printed lines are discarded)."""
    run = record.dagster_run
    op_steps, order = step_nodes(instance, run)
    started = record.start_time or record.create_timestamp.timestamp()
    progress = RunProgress.for_steps(op_steps, order, io.StringIO(), started)
    cursor = None
    while True:
        page = instance.get_records_for_run(run.run_id, cursor=cursor, limit=1000)
        for event_record in page.records:
            progress.handle(event_record.event_log_entry)
        if not page.has_more:
            return progress
        cursor = page.cursor


@dataclass(frozen=True)
class RunStatusView:
    record: Any
    progress: RunProgress
    step_costs: Mapping[str, float]  # step id -> spend (cost ledger)
    run_error: str | None  # why the run failed when no step says so (a crashed worker...)
    saga: Any = None
    """The record of the saga run compensating this run (tag maestro/compensates), if any."""

    @property
    def compensation(self) -> str | None:
        """`compensated`, `compensation failed`, `compensating` or None (no saga run)."""
        if self.saga is None:
            return None
        status = self.saga.dagster_run.status
        if status == dg.DagsterRunStatus.SUCCESS:
            return "compensated"
        if status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            return "compensation failed"
        return "compensating"


def run_status(instance: dg.DagsterInstance, run_id: str) -> RunStatusView:
    mark_dead_runs(instance)
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        raise RunNotFoundError(f"no run {run_id} in this instance")
    progress = read_progress(instance, record)
    costs: dict[str, float] = {}
    for row in store_for(instance).costs(run_id=run_id):
        costs[row.step_id] = costs.get(row.step_id, 0.0) + row.cost_usd
    sagas = instance.get_run_records(filters=dg.RunsFilter(tags={COMPENSATES_TAG: run_id}), limit=1)
    return RunStatusView(
        record, progress, costs, _run_error(instance, record, progress), sagas[0] if sagas else None
    )


def _run_error(instance: dg.DagsterInstance, record: Any, progress: RunProgress) -> str | None:
    if record.dagster_run.status != dg.DagsterRunStatus.FAILURE or progress.failures:
        return None
    failures = instance.get_records_for_run(
        record.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    for failure in failures:
        entry = failure.event_log_entry
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        error = getattr(data, "error", None)
        return error_text(error) if error is not None else entry.message
    return None


def latest_run_id(
    instance: dg.DagsterInstance, workflow: str | None, tenant: str | None = None
) -> str:
    records = find_runs(instance, workflow=workflow, tenant=tenant, limit=1)
    if not records:
        what = f"of workflow {workflow!r} " if workflow else ""
        raise RunNotFoundError(f"no runs {what}in this instance")
    return str(records[0].dagster_run.run_id)


def status_lines(view: RunStatusView, now: float | None = None) -> list[str]:
    run = view.record.dagster_run
    verdict = f" ({view.compensation})" if view.compensation else ""
    lines = [
        f"run {run.run_id}: {run.status.value}{verdict}",
        f"  workflow {workflow_of(run)} (job {run.job_name}), tenant "
        f"{run.tags.get(TENANT_TAG, DEFAULT_TENANT)}",
        f"  started {when(view.record.start_time)} UTC, ended {when(view.record.end_time)}"
        f" UTC, took {seconds(run_duration(view.record, now))}, cost "
        f"{money(run_cost(view.record)) if run_cost(view.record) else '$0'}",
        "",
    ]
    steps = _ordered(view.progress)
    header = ("STEP", "STATUS", "ATTEMPTS", "DURATION", "COST")
    rows = []
    for step in steps:  # a step's cost (all its attempts and items) on the row that ends it
        cost = view.step_costs.get(step.step_id, 0.0) if step.is_exit else 0.0
        shown = step.status
        if run.is_finished and shown in ("running", "retrying"):
            shown = "interrupted"  # the run ended around it (its process died, or terminated)
        rows.append((step.label, shown, str(step.attempts), seconds(step.duration_s), money(cost)))
    seen = {s.step_id for s in steps}
    for step_id in view.progress.step_order:
        if step_id not in seen:
            rows.append((step_id, "not run", "0", "-", "-"))
    lines += table(header, rows)
    failed = [s for s in steps if s.status == "failed" and s.error]
    if failed:
        lines += ["", "errors:"]
        for step in failed:
            where = f" [{step.source}]" if step.source else ""
            lines.append(f"  {step.label}{where}: {step.error}")
    if view.run_error:
        lines += ["", f"run error: {view.run_error}"]
    if view.saga is not None:
        saga = view.saga.dagster_run
        lines += ["", f"compensation: {saga.status.value} (saga run {saga.run_id})"]
        if view.compensation == "compensation failed":
            lines.append(f"  see `maestro status {saga.run_id}` for the compensation that failed")
    return lines


def _ordered(progress: RunProgress) -> list[StepRecord]:
    """Steps in the order they started; those that never started (skipped) last."""
    rank = {step_id: i for i, step_id in enumerate(progress.step_order)}
    return sorted(
        progress.steps.values(),
        key=lambda s: (
            s.started_at is None,
            s.started_at or 0.0,
            rank.get(s.step_id, len(rank)),
            s.key,
        ),
    )


# ---------------------------------------------------------------- maestro cancel


def cancel(instance: dg.DagsterInstance, run_id: str) -> str:
    """Terminate a run as the UI's Terminate button does: a queued run is dequeued and marked
    canceled; a started one is asked to stop through the instance's run launcher (the run
    coordinator's `cancel_run`). Returns what happened; raises ValueError when it cannot."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise RunNotFoundError(f"no run {run_id} in this instance")
    if run.is_finished:
        raise ValueError(f"run {run_id} has already ended: {run.status.value}")
    if not run.is_cancelable:
        raise ValueError(f"run {run_id} cannot be terminated while {run.status.value}")
    was = run.status
    if not instance.run_coordinator.cancel_run(run_id):
        raise ValueError(f"the run launcher could not terminate run {run_id} ({was.value})")
    if was == dg.DagsterRunStatus.QUEUED:
        return f"run {run_id}: removed from the queue, CANCELED"
    return f"run {run_id}: termination requested (CANCELING); `maestro status {run_id}` follows it"
