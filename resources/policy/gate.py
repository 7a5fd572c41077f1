"""The gate: run requests are enqueued durably, then admitted or refused by `maestro.workflow`.

`enqueue` writes a request (status `pending`; `maestro submit` compiles the file first).
`evaluate_requests` is what the `maestro_policy_gate` sensor does each tick: decide every
pending request (allow -> `admitted`, deny -> `refused` with its reasons, concurrency only ->
stays `pending`), and ask for one run per admitted request that has no run yet. Requests are
never lost (the state is in the database, not the sensor's memory) and never run twice
(run_key = request id, and a request whose run exists becomes `launched`), also when the daemon
restarts between the two.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from resources.policy.enforce import decide_workflow
from resources.policy.engine import PolicyEngineResource
from resources.policy.store import (
    ADMITTED,
    LAUNCHED,
    PENDING,
    REFUSED,
    PolicyStore,
    RunRequest,
    store_for,
)
from resources.run_tags import REQUEST_TAG, TENANT_TAG


@dataclass(frozen=True)
class GateWorkflow:
    """A workflow the gate can launch: its Dagster job and what `maestro.workflow` sees."""

    job_name: str
    environment: str
    summary: Mapping[str, Any]


def enqueue(
    instance: dg.DagsterInstance,
    *,
    tenant: str,
    workflow: str,
    job_name: str,
    source_file: str,
    params: Mapping[str, Any],
    requester: str | None = None,
) -> str:
    """Store a run request (status `pending`) for the sensor to decide; returns its id. The
    caller has compiled the workflow and checked its params (`maestro submit`)."""
    return store_for(instance).add_request(
        tenant=tenant,
        requester=requester or _user(),
        workflow=workflow,
        job_name=job_name,
        source_file=source_file,
        params=dict(params),
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
    workflows: Mapping[str, GateWorkflow],
    policy: PolicyEngineResource,
    unloadable: Mapping[str, Sequence[str]] | None = None,
) -> GateTick:
    """One gate tick. `workflows`: Dagster job name -> the workflows this code location has;
    `unloadable`: workflow file -> the problems that kept it out of the code location."""
    store = store_for(instance)
    tick = GateTick()
    for request in store.requests([PENDING]):
        gate_workflow = workflows.get(request.job_name)
        if gate_workflow is None:
            _refuse(store, tick, request.id, _not_loaded(request, unloadable or {}))
            continue
        decision, decision_id = decide_workflow(
            policy=policy,
            store=store,
            instance=instance,
            tenant=request.tenant,
            environment=gate_workflow.environment,
            requester=request.requester,
            summary=gate_workflow.summary,
            request_id=request.id,
        )
        if decision.allow:
            store.update_request(
                request.id, status=ADMITTED, from_statuses=[PENDING], decision_id=decision_id
            )
        elif decision.retry_later:
            tick.waiting.append((request.id, decision.reasons))
        else:
            _refuse(store, tick, request.id, decision.reasons, decision_id)
    for request in store.requests([ADMITTED]):
        run_ids = instance.get_run_ids(filters=dg.RunsFilter(tags={REQUEST_TAG: request.id}))
        if run_ids:
            store.update_request(
                request.id, status=LAUNCHED, from_statuses=[ADMITTED], run_id=run_ids[0]
            )
            tick.launched.append((request.id, run_ids[0]))
            continue
        tick.run_requests.append(
            dg.RunRequest(
                run_key=request.id,
                job_name=request.job_name,
                run_config={"params": dict(request.params)} if request.params else {},
                tags={TENANT_TAG: request.tenant, REQUEST_TAG: request.id},
            )
        )
    return tick


def _not_loaded(request: RunRequest, unloadable: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    problems = unloadable.get(request.source_file)
    if problems:
        return (f"broken_workflow: {request.source_file} does not load: " + "; ".join(problems),)
    return (
        f"unknown_workflow: job {request.job_name!r} (from {request.source_file}) is "
        "not in this code location",
    )


def _refuse(
    store: PolicyStore,
    tick: GateTick,
    request_id: str,
    reasons: tuple[str, ...],
    decision_id: str | None = None,
) -> None:
    if store.update_request(
        request_id,
        status=REFUSED,
        from_statuses=[PENDING],
        decision_id=decision_id,
        reasons=reasons,
    ):
        tick.refused.append((request_id, reasons))
