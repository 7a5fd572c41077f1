"""The `maestro_saga` sensor: launches `<job>__compensate` for every failed or canceled run of a
workflow with `on_failure: compensate`, once per run (run_key = the failed run's id, and a saga
run already tagged with that id, `maestro run`'s in-process one included, is never doubled)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from resources.run_tags import COMPENSATES_TAG

SENSOR_NAME = "maestro_saga"
SAGA_INTERVAL_S = 1
"""As often as the daemon's sensor loop goes (it evaluates sensors about every 5 s)."""
SAGA_INTERVAL_ENV = "MAESTRO_SAGA_INTERVAL_S"
LOOKBACK_S = 300.0
"""Runs that ended up to this long before the last tick are looked at again: a run's end time
is written as it ends, and a late commit must not be missed (run_key keeps it exactly once)."""
ENDED = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def saga_interval(environ: Mapping[str, str] = os.environ) -> int:
    text = environ.get(SAGA_INTERVAL_ENV, "").strip()
    if not text:
        return SAGA_INTERVAL_S
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{SAGA_INTERVAL_ENV}: {text!r} is not a whole number of seconds >= 1")
    return int(text)


def already_compensated(instance: dg.DagsterInstance, run_id: str) -> bool:
    return bool(
        instance.get_run_records(filters=dg.RunsFilter(tags={COMPENSATES_TAG: run_id}), limit=1)
    )


def saga_requests(
    instance: dg.DagsterInstance, sagas: Mapping[str, str], since: float
) -> tuple[list[dg.RunRequest], float]:
    """Run requests for the failed or canceled runs of `sagas`' jobs (job -> saga job) updated
    since `since`, and the new cursor time."""
    now = time.time()
    after = datetime.fromtimestamp(max(0.0, since - LOOKBACK_S), tz=UTC)
    requests = []
    for job_name, saga in sorted(sagas.items()):
        records = instance.get_run_records(
            filters=dg.RunsFilter(job_name=job_name, statuses=ENDED, updated_after=after)
        )
        for record in records:
            run = record.dagster_run
            if already_compensated(instance, run.run_id):
                continue
            requests.append(
                dg.RunRequest(
                    run_key=run.run_id,
                    job_name=saga,
                    tags={COMPENSATES_TAG: run.run_id},
                )
            )
    return requests, now


def saga_sensor(sagas: Mapping[str, dg.JobDefinition]) -> dg.SensorDefinition:
    """`sagas`: workflow job name -> its saga job."""
    names = {job: saga.name for job, saga in sagas.items()}

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=list(sagas.values()) or None,
        minimum_interval_seconds=saga_interval(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Compensates every failed or canceled run of a workflow with "
        "on_failure: compensate (its `<job>__compensate` job), once per run.",
    )
    def maestro_saga(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        # A first tick (no cursor) looks back LOOKBACK_S only: deploying the sensor does not
        # compensate an instance's whole history of failed runs.
        since = float(context.cursor) if context.cursor else time.time()
        requests, now = saga_requests(context.instance, names, since)
        if not requests:
            context.update_cursor(str(now))  # the next tick looks back from here, not further
            return dg.SkipReason("no failed run to compensate")
        return dg.SensorResult(run_requests=requests, cursor=str(now))

    return maestro_saga
