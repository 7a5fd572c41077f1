"""The `maestro_dead_runs` sensor: Dagster glue over `resources.liveness.mark_dead_runs`.

Dagster's run monitoring (deploy/dagster.yaml) fails runs stuck starting or past their
max_runtime, but cannot tell that a run's process died under the DefaultRunLauncher or
`maestro run`; this sensor marks such runs FAILURE once their heartbeat is older than
MAESTRO_DEAD_RUN_GRACE_S, which frees their tenant's slot and lets run-failure sensors react.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from resources.liveness import mark_dead_runs, seconds_setting

SENSOR_NAME = "maestro_dead_runs"
INTERVAL_ENV = "MAESTRO_DEAD_RUN_CHECK_INTERVAL_S"
DEFAULT_INTERVAL_S = 10


def check_interval(environ: Mapping[str, str] = os.environ) -> int:
    """MAESTRO_DEAD_RUN_CHECK_INTERVAL_S (whole seconds, at least 1), else 10."""
    return max(1, round(seconds_setting(INTERVAL_ENV, DEFAULT_INTERVAL_S, environ)))


def dead_runs_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=check_interval(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks FAILURE the runs whose process died (no heartbeat within "
        "MAESTRO_DEAD_RUN_GRACE_S), freeing their tenant's run slot.",
    )
    def maestro_dead_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        marked = mark_dead_runs(context.instance)
        for dead in marked:
            context.log.warning(f"run {dead.run_id} (tenant {dead.tenant}): {dead.message}")
        if not marked:
            return dg.SkipReason("no dead runs")
        return dg.SkipReason(
            "marked failed: " + ", ".join(f"{d.run_id} (tenant {d.tenant})" for d in marked)
        )

    return maestro_dead_runs
