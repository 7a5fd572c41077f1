"""The gate: run requests are enqueued durably, then admitted or refused by `maestro.workflow`.

`submit` writes a request (status `pending`). `evaluate_requests` is what the
`maestro_policy_gate` sensor does each tick: decide every pending request (allow -> `admitted`,
deny -> `refused` with its reasons, concurrency only -> stays `pending`), and ask for one run per
admitted request that has no run yet. Requests are never lost (the state is in the database, not
the sensor's memory) and never run twice (run_key = request id, and a request whose run exists
becomes `launched`), also when the daemon restarts between the two.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from resources.policy.enforce import (
    DECISION_TAG,
    POLICY_VERSION_TAG,
    REQUEST_TAG,
    REQUESTER_TAG,
    TENANT_TAG,
    decide_workflow,
)
from resources.policy.engine import PolicyEngine
from resources.policy.inputs import workflow_summary
from resources.policy.store import ADMITTED, LAUNCHED, PENDING, REFUSED, RunRequest, store_for


class SubmitError(ValueError):
    """The workflow file or its params are not runnable: nothing was enqueued."""


def submit(
    path: Path | str,
    instance: dg.DagsterInstance,
    *,
    tenant: str | None = None,
    params: Mapping[str, Any] | None = None,
    requester: str | None = None,
) -> str:
    """Enqueue a run request for a workflow file; returns the request id.

    The file is compiled now so a bad file or a missing param fails here, with its line, and not
    in the sensor. The tenant defaults to the workflow's own `tenant:`.
    """
    from yaml_compiler import WorkflowCompileError, load_plan
    from yaml_compiler.plan import param_value_problems

    path = Path(path)
    try:
        plan = load_plan(path, param_overrides=dict(params or {}))
    except WorkflowCompileError as exc:
        raise SubmitError("\n".join(str(d) for d in exc.diagnostics)) from None
    problems = param_value_problems(plan.spec.params, plan.param_values)
    if problems:
        raise SubmitError("; ".join(problems))
    return store_for(instance).add_request(
        tenant=tenant or plan.spec.tenant,
        requester=requester or _user(),
        workflow=plan.spec.name,
        job_name=plan.job_name,
        source_file=str(path.resolve()),
        params=dict(plan.param_values),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


@dataclass
class GateTick:
    """What one evaluation did: runs to request, and requests refused or kept waiting."""

    run_requests: list[dg.RunRequest] = field(default_factory=list)
    refused: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    waiting: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    launched: list[tuple[str, str]] = field(default_factory=list)  # (request id, run id)

    def skip_reason(self) -> str:
        lines = [f"refused {rid}: {'; '.join(reasons)}" for rid, reasons in self.refused]
        lines += [f"waiting {rid}: {'; '.join(reasons)}" for rid, reasons in self.waiting]
        return "\n".join(lines) or "no pending run requests"


def evaluate_requests(
    instance: dg.DagsterInstance,
    workflows: Mapping[str, Any],
    engine: PolicyEngine,
) -> GateTick:
    """One gate tick. `workflows`: Dagster job name -> CompiledWorkflow of this code location."""
    store = store_for(instance)
    tick = GateTick()
    for request in store.requests([PENDING]):
        compiled = workflows.get(request.job_name)
        if compiled is None:
            reasons = (
                f"unknown_workflow: job {request.job_name!r} (from {request.source_file}) is "
                "not in this code location",
            )
            if store.update_request(
                request.id, status=REFUSED, from_statuses=[PENDING], reasons=reasons
            ):
                tick.refused.append((request.id, reasons))
            continue
        spec = compiled.plan.spec
        decision, decision_id = decide_workflow(
            engine=engine,
            store=store,
            instance=instance,
            tenant=request.tenant,
            environment=spec.environment,
            requester=request.requester,
            summary=workflow_summary(compiled.plan),
            request_id=request.id,
        )
        if decision.allow:
            store.update_request(
                request.id, status=ADMITTED, from_statuses=[PENDING], decision_id=decision_id
            )
        elif decision.retry_later:
            tick.waiting.append((request.id, decision.reasons))
        elif store.update_request(
            request.id,
            status=REFUSED,
            from_statuses=[PENDING],
            decision_id=decision_id,
            reasons=decision.reasons,
        ):
            tick.refused.append((request.id, decision.reasons))
    for request in store.requests([ADMITTED]):
        run_ids = instance.get_run_ids(filters=dg.RunsFilter(tags={REQUEST_TAG: request.id}))
        if run_ids:
            store.update_request(
                request.id, status=LAUNCHED, from_statuses=[ADMITTED], run_id=run_ids[0]
            )
            tick.launched.append((request.id, run_ids[0]))
            continue
        tick.run_requests.append(_run_request(store.decision(request.decision_id or ""), request))
    return tick


def _run_request(decision: Any, request: RunRequest) -> dg.RunRequest:
    tags = {
        TENANT_TAG: request.tenant,
        REQUEST_TAG: request.id,
        DECISION_TAG: request.decision_id or "",
        POLICY_VERSION_TAG: decision.policy_version if decision is not None else "",
        REQUESTER_TAG: request.requester,
    }
    return dg.RunRequest(
        run_key=request.id,
        job_name=request.job_name,
        run_config={"params": dict(request.params)} if request.params else {},
        tags=tags,
    )
