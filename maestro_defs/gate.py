"""The `maestro_policy_gate` sensor: Dagster glue over `resources.policy.gate`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import dagster as dg

from resources.policy.engine import DEFAULT_OPA_TIMEOUT_S, PolicyEngineResource
from resources.policy.gate import evaluate_requests
from yaml_compiler import CompiledWorkflow

SENSOR_NAME = "maestro_policy_gate"


def policy_resource(environ: Mapping[str, str] = os.environ) -> PolicyEngineResource:
    """Embedded engine by default; the OPA server at MAESTRO_OPA_URL when it is set."""
    return PolicyEngineResource(
        opa_url=environ.get("MAESTRO_OPA_URL") or None,
        policy_dir=environ.get("MAESTRO_POLICY_DIR") or None,
        timeout_s=float(environ.get("MAESTRO_OPA_TIMEOUT_S") or DEFAULT_OPA_TIMEOUT_S),
    )


def policy_gate_sensor(workflows: Iterable[CompiledWorkflow]) -> dg.SensorDefinition:
    """Admits submitted run requests (`maestro submit`) that `maestro.workflow` allows."""
    by_job = {w.plan.job_name: w for w in workflows}

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=[w.job for w in by_job.values()],
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the requests `maestro submit` enqueued that the policy allows; "
        "refused requests keep their reasons (see `maestro decisions`).",
    )
    def maestro_policy_gate(
        context: dg.SensorEvaluationContext, policy: PolicyEngineResource
    ) -> dg.SensorResult | dg.SkipReason:
        tick = evaluate_requests(context.instance, by_job, policy.engine())
        for request_id, reasons in tick.refused:
            context.log.warning(f"refused run request {request_id}: {'; '.join(reasons)}")
        for request_id, run_id in tick.launched:
            context.log.info(f"run request {request_id} is run {run_id}")
        if not tick.run_requests:
            return dg.SkipReason(tick.skip_reason())
        return dg.SensorResult(run_requests=tick.run_requests)

    return maestro_policy_gate
