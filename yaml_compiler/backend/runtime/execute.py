"""One step's work: admit the run, render, check budget and policy, call the plugin, record.

The plugin runs in a watched thread when a timeout applies (Dagster has no op timeout) or the
threads executor runs the step (so a run's termination stops it). Every error becomes a
`dg.Failure` naming the step, its place in the YAML and an error kind, with `allow_retries`
set from `retry_on`, so Dagster's RetryPolicy retries only what is worth it.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from resources.console_redaction import redacted_console
from resources.executor import current_step
from resources.plugins import (
    BudgetExceededError,
    Plugin,
    PluginNotInstalledError,
    PolicyDeniedError,
    StepCancelledError,
    StepContext,
    StepTimeoutError,
)
from resources.policy import enforce
from resources.policy.engine import PolicyEngineResource
from resources.policy.store import store_for
from yaml_compiler.backend.runtime.outputs import (
    check_json,
    file_metadata,
    store_file_outputs,
)
from yaml_compiler.backend.runtime.redaction import RedactingLog, Redactor, redact_value
from yaml_compiler.backend.runtime.scope import (
    StepConfigError,
    condition_holds,
    render_params,
    run_started_at,
    template_context,
)
from yaml_compiler.backend.runtime.step import StepRuntime
from yaml_compiler.backend.runtime.workflow_dir import workflow_dir_of

POLICY_RESOURCE = "policy"
"""The resource key of the policy engine every step op requires (PolicyEngineResource)."""
_TIMEOUT_GRACE_SECONDS = 3.0
_WATCH_INTERVAL = 0.1
_PERMANENT = (StepConfigError, PluginNotInstalledError, BudgetExceededError, PolicyDeniedError)


def _run_budget(runtime: StepRuntime) -> float | None:
    budget = runtime.workflow.budget
    return None if budget is None else budget.max_cost_usd


def _run_spend(context: dg.OpExecutionContext, run_budget: float | None) -> float:
    """What this run has spent so far (the cost ledger's sum for the run, failed steps and
    retried attempts included); only read when the run has a budget to check it against."""
    return 0.0 if run_budget is None else store_for(context.instance).run_spend(context.run_id)


def estimated_cost(plugin: Plugin[Any], params: Any, ctx: StepContext) -> float:
    """The plugin's estimate for these params; 0 for plugins that never spend."""
    return float(plugin.estimate_cost(params, ctx)) if plugin.metered else 0.0


def check_budget(runtime: StepRuntime, ctx: StepContext, estimate: float) -> None:
    """Refuse, before any call, a step whose estimated cost exceeds what the run has left."""
    remaining = ctx.budget_remaining_usd
    if not runtime.plugin.metered or remaining is None or estimate <= remaining:
        return
    raise BudgetExceededError(
        f"over budget: step {runtime.step.id!r} may cost ${estimate:.6f}, the run has "
        f"${max(remaining, 0.0):.6f} left of its ${_run_budget(runtime):g} budget "
        "(budget.max_cost_usd); no call was made",
        estimated_cost_usd=estimate,
        budget_remaining_usd=remaining,
    )


def _deadline(context: dg.OpExecutionContext, runtime: StepRuntime) -> float | None:
    """The earlier of the step timeout and what is left of the whole-run timeout."""
    limits = []
    if runtime.step.timeout is not None:
        limits.append(runtime.step.timeout)
    run_timeout = runtime.workflow.run_time_limit
    if run_timeout is not None:
        elapsed = (datetime.now(UTC) - run_started_at(context)).total_seconds()
        left = run_timeout - elapsed
        if left <= 0:
            raise StepTimeoutError(f"the workflow's time limit of {run_timeout:g}s has passed")
        limits.append(left)
    return time.monotonic() + min(limits) if limits else None


def call_plugin(plugin: Plugin[Any], params: Any, ctx: StepContext) -> Any:
    """Run the plugin, in a watched thread when it has a deadline (Dagster has no op timeout) or
    may be cancelled by the threads executor. Either way the step ends within a grace period:
    a plugin that ignores `ctx.cancelled` is left running in its daemon thread, and the op's
    worker is free for the next step."""
    if ctx.deadline is None and current_step() is None:
        return plugin.run(params, ctx)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = plugin.run(params, ctx)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(
        target=contextvars.copy_context().run,  # the step's log streams and cancel signal
        args=(target,),
        name=f"maestro-{ctx.step_id}",
        daemon=True,
    )
    worker.start()
    try:
        stopped = _watch(worker, ctx)
    except BaseException:  # an interrupt in the op's thread (in_process termination)
        ctx.cancelled.set()
        worker.join(_TIMEOUT_GRACE_SECONDS)
        raise
    if stopped is not None:
        ctx.cancelled.set()  # plugins that own processes stop them on this signal
        worker.join(_TIMEOUT_GRACE_SECONDS)
        if stopped == "cancelled":
            raise dg.DagsterExecutionInterruptedError(
                f"step {ctx.step_id!r} stopped: its run is being terminated"
            )
        if not isinstance(outcome.get("error"), StepTimeoutError):
            raise StepTimeoutError(f"step {ctx.step_id!r} did not finish within its timeout")
    error = outcome.get("error")
    if isinstance(error, StepCancelledError):  # it stopped on the run's termination
        raise dg.DagsterExecutionInterruptedError(
            f"step {ctx.step_id!r} stopped: its run is being terminated ({error})"
        )
    if error is not None:
        raise error
    return outcome.get("value")


def _watch(worker: threading.Thread, ctx: StepContext) -> str | None:
    """Wait for the plugin's thread: None when it finished, else "timeout" or "cancelled"."""
    while True:
        remaining = ctx.remaining()
        worker.join(_WATCH_INTERVAL if remaining is None else min(_WATCH_INTERVAL, remaining))
        if not worker.is_alive():
            return None
        if ctx.remaining() == 0:
            return "timeout"
        if ctx.cancelled.is_set():
            return "cancelled"


PARAMS_METADATA = "maestro/params"
"""Output (and failure) metadata: the step's rendered params, secrets masked; what its
compensation reads as `step.params`."""


def params_metadata(params: Any, redact: Redactor) -> dg.MetadataValue:
    """The rendered params as JSON metadata, every secret value masked."""
    dumped = params.model_dump(mode="json") if hasattr(params, "model_dump") else params
    return dg.MetadataValue.json(json.loads(redact(json.dumps(dumped, default=str))))


def step_failure(
    runtime: StepRuntime,
    error: BaseException,
    redact: Redactor,
    cost_usd: float = 0.0,
    params: Any = None,
) -> dg.Failure:
    """The Dagster failure of a step: kind, retryability, and where the step is in the YAML."""
    kind = getattr(error, "kind", "plugin_error")
    kinds = runtime.retryable_kinds
    retryable = not isinstance(error, _PERMANENT) and (kinds is None or kind in kinds)
    message = redact(f"{type(error).__name__}: {error}" if kind == "plugin_error" else str(error))
    metadata: dict[str, Any] = {
        "error_kind": kind,
        "step_id": runtime.step.id,
        "plugin": runtime.plugin.name,
        "retryable": retryable,
        "source": runtime.where,
    }
    for key, value in getattr(error, "metadata", {}).items():
        if isinstance(value, (str, int, float, bool)):
            metadata[key] = redact(value) if isinstance(value, str) else value
    if cost_usd:
        metadata["cost_usd"] = cost_usd  # spent before failing: still counts against the budget
    if params is not None:
        metadata[PARAMS_METADATA] = params_metadata(params, redact)
    return dg.Failure(
        description=f"step {runtime.step.id!r} failed ({kind}): {message} (at {runtime.where})",
        metadata=metadata,
        allow_retries=retryable,
    )


@dataclass(frozen=True)
class StepResult:
    ran: bool  # False when `when` is false
    value: Any = None
    cost_usd: float = 0.0
    policy_decision_id: str | None = None
    policy_version: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """What the plugin reported for the output event, and the hashes of its stored files."""
    params: Any = None
    """The rendered params the plugin was called with."""


def execute_step(
    context: dg.OpExecutionContext,
    runtime: StepRuntime,
    upstream: Mapping[str, Any],
    item: Mapping[str, Any] | None = None,
    check_when: bool = True,
) -> StepResult:
    """Admit the run, render, check the budget and the policy, call the plugin, record its cost.

    Errors become dg.Failure.
    """
    redact = Redactor(tuple(runtime.workflow.secrets))
    step_context: StepContext | None = None
    params: Any = None
    policy: PolicyEngineResource = getattr(context.resources, POLICY_RESOURCE)
    try:
        enforce.admit_run(context, policy, runtime.ref, runtime.workflow_summary)
        scope = template_context(context, runtime, upstream, item)
        if check_when and not condition_holds(runtime, scope):
            context.log.info(f"skipping step {runtime.step.id!r}: when is false")
            return StepResult(ran=False)
        params = render_params(runtime, scope)
        run_budget = _run_budget(runtime)
        run_spend = _run_spend(context, run_budget)
        step_context = StepContext(
            step_id=runtime.step.id,
            run=scope["run"],
            log=RedactingLog(context.log, redact),
            upstream=dict(upstream),
            resources={
                key: getattr(context.resources, key) for key in runtime.plugin.resource_keys
            },
            deadline=_deadline(context, runtime),
            cancelled=_cancel_signal(),
            redact=redact,
            budget_remaining_usd=None if run_budget is None else run_budget - run_spend,
            workflow_dir=workflow_dir_of(context),
        )
        estimate = estimated_cost(runtime.plugin, params, step_context)
        check_budget(runtime, step_context, estimate)
        decision, decision_id = enforce.check_step(
            context,
            policy,
            workflow=runtime.ref,
            step_id=runtime.step.id,
            plugin=runtime.plugin.name,
            params=params,
            secrets=runtime.step.secrets,
            estimated_cost_usd=estimate,
            run_spend_usd=run_spend,
            run_budget_usd=run_budget,
            reachable_models=_reachable_models(runtime, params, step_context),
        )
        try:
            with redacted_console(redact if redact.active else None):  # what the step prints
                output = call_plugin(runtime.plugin, params, step_context)
        finally:
            _record_cost(context, runtime, step_context.cost_usd)
        check_json(output, runtime.step.id)
        output, files = store_file_outputs(
            context, runtime, scope, params, output, step_context.files, redact
        )
        output, leaked = redact_value(output, redact)
        if leaked:
            context.log.warning(
                f"step {runtime.step.id!r}: its output held a declared secret's value, "
                "stored as *** (read the secret with secrets.<NAME> where it is needed)"
            )
        metadata, _ = redact_value({**step_context.output_metadata, **file_metadata(files)}, redact)
        return StepResult(
            ran=True,
            value=output,
            cost_usd=step_context.cost_usd,
            policy_decision_id=decision_id,
            policy_version=decision.policy_version,
            metadata=metadata,
            params=params,
        )
    except dg.Failure:
        raise
    except Exception as exc:
        spent = step_context.cost_usd if step_context is not None else 0.0
        undo = params if runtime.step.compensation is not None else None
        raise step_failure(runtime, exc, redact, cost_usd=spent, params=undo) from None
    finally:
        if step_context is not None:
            step_context.finish()


def _cancel_signal() -> threading.Event:
    """The threads executor's cancel signal for this step (set when the run is terminated);
    a fresh event under the other executors."""
    running = current_step()
    return running.cancel if running is not None else threading.Event()


def _reachable_models(runtime: StepRuntime, params: Any, ctx: StepContext) -> Sequence[str]:
    """Models the plugin may fall back to beyond its params (LiteLLM Router fallbacks)."""
    return runtime.plugin.models_for(params, ctx)


def _record_cost(context: dg.OpExecutionContext, runtime: StepRuntime, cost_usd: float) -> None:
    if cost_usd > 0:
        enforce.record_cost(context, runtime.ref, runtime.step.id, cost_usd, runtime.plugin.name)
