"""The `maestro_policy_gate` sensor: Dagster glue over `resources.policy.gate`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import dagster as dg

from resources.policy.engine import PolicyEngineResource
from resources.policy.gate import GateWorkflow, evaluate_requests

SENSOR_NAME = "maestro_policy_gate"
GATE_INTERVAL_S = 1
"""As often as the daemon evaluates sensors at all (its loop runs every ~5 s): a submitted
request waits for one such loop, then for the run queue (dequeue_interval_seconds: 1). With the
former 15 s, `maestro submit` to run start took 11-26 s; bench/run_queue.py measures both."""
GATE_INTERVAL_ENV = "MAESTRO_GATE_INTERVAL_S"


def gate_interval(environ: Mapping[str, str] = os.environ) -> int:
    """MAESTRO_GATE_INTERVAL_S (whole seconds >= 1) when set, else GATE_INTERVAL_S."""
    text = environ.get(GATE_INTERVAL_ENV, "").strip()
    if not text:
        return GATE_INTERVAL_S
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{GATE_INTERVAL_ENV}: {text!r} is not a whole number of seconds >= 1")
    return int(text)


_DESCRIPTION = (
    "Runs the requests `maestro submit` enqueued that the policy allows; refused requests keep "
    "their reasons (see `maestro decisions`)."
)


def _description(unloadable: Mapping[str, Sequence[str]]) -> str:
    if not unloadable:
        return _DESCRIPTION
    problems = [problem for found in unloadable.values() for problem in found]
    # The UI shows sensor descriptions as plain text on one line: no markup, `|` between items.
    return (
        f"{_DESCRIPTION} WARNING: {len(unloadable)} workflow file(s) did not load (every other "
        "workflow did; requests for these are refused): " + " | ".join(problems)
    )


def policy_gate_sensor(
    workflows: Mapping[str, GateWorkflow],
    jobs: Sequence[dg.JobDefinition],
    unloadable: Mapping[str, Sequence[str]] | None = None,
) -> dg.SensorDefinition:
    """Admits submitted run requests (`maestro submit`) that `maestro.workflow` allows.

    `unloadable`: workflow file -> the problems that kept it out of the code location; shown
    in the sensor's description and in every tick's skip reason, so the UI says what is wrong.
    """
    broken = dict(unloadable or {})

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=list(jobs) or None,
        minimum_interval_seconds=gate_interval(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=_description(broken),
    )
    def maestro_policy_gate(
        context: dg.SensorEvaluationContext, policy: PolicyEngineResource
    ) -> dg.SensorResult | dg.SkipReason:
        tick = evaluate_requests(context.instance, workflows, policy, broken)
        for request_id, reasons in tick.refused:
            context.log.warning(f"refused run request {request_id}: {'; '.join(reasons)}")
        for request_id, run_id in tick.launched:
            context.log.info(f"run request {request_id} is run {run_id}")
        if not tick.run_requests:
            reason = tick.skip_reason()
            if broken:
                problems = [p for found in broken.values() for p in found]
                reason += "\nworkflow files that did not load:\n" + "\n".join(problems)
            return dg.SkipReason(reason)
        return dg.SensorResult(run_requests=tick.run_requests)

    return maestro_policy_gate
