"""The `maestro_run_traces` sensor: the root span of runs that no process of theirs recorded.

The threads executor and `maestro run` record a run's root span `workflow <name>` when the run
ends, in its own process, and tag the run with `maestro/traceparent` as it starts. Under
Dagster's multiprocess and k8s executors no Maestro code sees the run end, so the steps' spans
(exported by the step processes under the run's derived root id) would hang under a span nobody
sent. This sensor records that span afterwards from the run's record (start and end times,
status, cost, tenant) and then tags the run, which is also how it knows a run is done: a run
that carries the tag has, or will have, its root span from elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from resources.observability import tracing
from resources.run_tags import TRACEPARENT_TAG

SENSOR_NAME = "maestro_run_traces"
INTERVAL_S = 5
LOOKBACK_S = 300.0
"""Runs that ended up to this long before the last tick are looked at again (an end written
late is not missed; the tag keeps each root span single)."""
ENDED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def _seconds(moment: datetime | float | None) -> float | None:
    if isinstance(moment, datetime):
        return moment.timestamp()
    return moment


def record_run_traces(
    instance: dg.DagsterInstance, job_metadata: Mapping[str, Mapping[str, Any]], since: float
) -> list[str]:
    """Record the root span of every run of `job_metadata`'s jobs (job -> its metadata) that
    ended since `since` without a `maestro/traceparent` tag, then tag it; the runs recorded."""
    after = datetime.fromtimestamp(max(0.0, since - LOOKBACK_S), tz=UTC)
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=ENDED, updated_after=after),
        order_by="update_timestamp",
        ascending=True,
    )
    recorded = []
    for record in records:
        run = record.dagster_run
        if run.job_name not in job_metadata or TRACEPARENT_TAG in run.tags:
            continue
        started = record.start_time or _seconds(record.create_timestamp) or time.time()
        ended = record.end_time or _seconds(record.update_timestamp) or time.time()
        if tracing.record_ended_run(
            run.run_id,
            run.tags,
            run.status.value,
            job_metadata[run.job_name],
            int(started * 1e9),
            int(ended * 1e9),
        ):
            recorded.append(run.run_id)
        traceparent = tracing.traceparent_for_run(run.run_id)
        instance.add_run_tags(run.run_id, {TRACEPARENT_TAG: traceparent})
    if recorded:
        tracing.flush()
    return recorded


def run_traces_sensor(jobs: Iterable[dg.JobDefinition]) -> dg.SensorDefinition:
    metadata = {job.name: dict(job.metadata) for job in jobs}

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records the root span `workflow <name>` of runs on the multiprocess or k8s "
        "executor, whose own processes cannot (on when OTEL_EXPORTER_OTLP_ENDPOINT is set).",
    )
    def maestro_run_traces(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        if not tracing.enabled():
            return dg.SkipReason("tracing is off: no OTEL_EXPORTER_OTLP_ENDPOINT")
        # A first tick looks back LOOKBACK_S only: not the instance's whole history.
        since = float(context.cursor) if context.cursor else time.time()
        now = time.time()
        recorded = record_run_traces(context.instance, metadata, since)
        context.update_cursor(str(now))
        if not recorded:
            return dg.SkipReason("no ended run without its root span")
        return dg.SkipReason("recorded the root span of " + ", ".join(recorded))

    return maestro_run_traces
