"""Policy checks inside a run: `maestro.workflow` once per run, `maestro.step` before each call.

Every run is checked, whatever launched it (the gate, the UI, a schedule, `dagster job launch`):
the first step of a run to reach its plugin makes the run's workflow decision and records it as
the run's admission; a run the gate launched for a request (its `maestro/request_id` tag) reuses
the gate's decision for that request, and only that one run may. Steps in other processes
(multiprocess executor) find the admission in the store, and when two race the first insert wins
for both (`PolicyStore.admit_run`). Per process, the admission is cached, so an in-process run
asks the store once. The engine is the step's `policy` resource (PolicyEngineResource).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from resources.dagster_private import IN_PROGRESS_RUN_STATUSES
from resources.observability import tracing
from resources.plugins import PolicyDeniedError
from resources.policy.engine import Decision, DecisionKind, PolicyEngine, PolicyEngineResource
from resources.policy.inputs import MODEL_KEYS, URL_KEYS, step_input, workflow_input
from resources.policy.store import DecisionRecord, PolicyStore, period_start, store_for
from resources.run_tags import COST_TAG, REQUEST_TAG, TENANT_TAG

_ADMISSIONS: dict[tuple[str, str], DecisionRecord] = {}  # (store url, run id) -> its decision
_ADMISSIONS_LOCK = threading.Lock()


@dataclass(frozen=True)
class WorkflowRef:
    """Which workflow a decision is about: its name, its tenant and its environment."""

    name: str
    tenant: str
    environment: str


def tenant_spend(store: PolicyStore, policy: PolicyEngineResource, tenant: str) -> float:
    """What the tenant's steps have spent in its current budget period (the cost ledger)."""
    period = str(policy.tenant_settings(tenant).get("budget_period", "month"))
    return store.tenant_spend(tenant, period_start(period))


def active_runs(instance: dg.DagsterInstance, tenant: str, exclude: str | None = None) -> int:
    """The tenant's runs queued or in flight (the gate's view), not counting `exclude`. Runs
    whose process died (no heartbeat within the grace) are marked failed first: they hold no
    slot."""
    from resources.liveness import mark_dead_runs  # liveness imports the store, as we do

    mark_dead_runs(instance, tenant=tenant)
    run_ids = instance.get_run_ids(
        filters=dg.RunsFilter(
            tags={TENANT_TAG: tenant},
            statuses=[*IN_PROGRESS_RUN_STATUSES],
        )
    )
    return len([r for r in run_ids if r != exclude])


def denial_message(what: str, decision: Decision | DecisionRecord) -> str:
    return f"policy denied {what}: " + "; ".join(decision.reasons)


def decide_workflow(
    *,
    policy: PolicyEngineResource,
    store: PolicyStore,
    instance: dg.DagsterInstance,
    tenant: str,
    environment: str,
    requester: str,
    summary: Mapping[str, Any],
    run_id: str | None = None,
    request_id: str | None = None,
) -> tuple[Decision, str]:
    """Ask `maestro.workflow` and record the answer; returns it with its decision id."""
    payload = workflow_input(
        tenant=tenant,
        environment=environment,
        requester=requester,
        workflow=summary,
        tenant_spend_usd=tenant_spend(store, policy, tenant),
        active_runs=active_runs(instance, tenant, exclude=run_id),
    )
    engine: PolicyEngine = policy.engine()
    decision = traced_decision(engine, "workflow", payload)
    decision_id = store.record_decision(
        decision,
        tenant=tenant,
        workflow=str(summary.get("name", "")),
        engine=engine.name,
        run_id=run_id,
        request_id=request_id,
    )
    return decision, decision_id


def traced_decision(
    engine: PolicyEngine, kind: DecisionKind, payload: Mapping[str, Any]
) -> Decision:
    """The engine's decision inside a `policy maestro.<kind>` span (decision, reasons)."""
    with tracing.child_span(
        f"policy maestro.{kind}", {"maestro.policy.engine": engine.name}
    ) as span:
        decision = engine.decide(kind, payload)
        tracing.set_attributes(
            span,
            {
                "maestro.policy.decision": "allow" if decision.allow else "deny",
                "maestro.policy.reasons": list(decision.reasons),
                "maestro.policy.version": decision.policy_version,
            },
        )
    return decision


def _gate_admission(
    context: dg.OpExecutionContext, store: PolicyStore, workflow: WorkflowRef
) -> tuple[DecisionRecord | None, str | None]:
    """The gate's decision for the request this run was launched for, when it admits this very
    run; else (None, why not). Only the first run naming a request may use its admission."""
    request_id = context.run.tags.get(REQUEST_TAG)
    if not request_id:
        return None, None
    request = store.request(request_id)
    if request is None or request.decision_id is None:
        return None, f"tag {REQUEST_TAG}={request_id} names no admitted request"
    record = store.decision(request.decision_id)
    if record is None or record.kind != "workflow" or not record.allow:
        return None, f"request {request_id} was not admitted"
    if record.tenant != workflow.tenant or record.workflow != workflow.name:
        return None, f"request {request_id} does not admit this workflow"
    if not store.claim_request_run(request_id, context.run_id):
        return None, f"request {request_id} was admitted for another run"
    return record, None


def admit_run(
    context: dg.OpExecutionContext,
    policy: PolicyEngineResource,
    workflow: WorkflowRef,
    summary: Mapping[str, Any],
) -> DecisionRecord:
    """The run's `maestro.workflow` decision, made once per run; raises when it denies."""
    instance = context.instance
    store = store_for(instance)
    key = (store.url, context.run_id)
    admission = _ADMISSIONS.get(key)
    if admission is None:
        with _ADMISSIONS_LOCK:
            admission = _ADMISSIONS.get(key) or _admission(
                context, store, policy, workflow, summary
            )
            _ADMISSIONS[key] = admission
    if not admission.allow:
        raise PolicyDeniedError(
            denial_message(f"workflow {workflow.name!r} for this run", admission),
            policy_decision_id=admission.id,
            policy_version=admission.policy_version,
            policy_reasons="\n".join(admission.reasons),
        )
    return admission


def _admission(
    context: dg.OpExecutionContext,
    store: PolicyStore,
    policy: PolicyEngineResource,
    workflow: WorkflowRef,
    summary: Mapping[str, Any],
) -> DecisionRecord:
    record = store.run_admission(context.run_id)
    if record is not None:
        return record
    gate_record, problem = _gate_admission(context, store, workflow)
    if gate_record is not None:
        decision_id = gate_record.id
    else:
        tags = context.run.tags
        _, decision_id = decide_workflow(
            policy=policy,
            store=store,
            instance=context.instance,
            tenant=tags.get(TENANT_TAG, workflow.tenant),
            environment=workflow.environment,
            requester=tags.get("dagster/user") or "run",
            summary=summary,
            run_id=context.run_id,
        )
        if problem:
            context.log.warning(f"{problem}: the run's own decision applies")
    winner = store.admit_run(context.run_id, decision_id)
    admitted = store.decision(winner)
    assert admitted is not None
    context.log.info(
        f"policy maestro.workflow: {'allow' if admitted.allow else 'deny'} "
        f"(decision {admitted.id}, policy {admitted.policy_version})"
    )
    return admitted


def check_step(
    context: dg.OpExecutionContext,
    policy: PolicyEngineResource,
    *,
    workflow: WorkflowRef,
    step_id: str,
    plugin: str,
    params: Any,
    secrets: tuple[str, ...],
    estimated_cost_usd: float,
    run_spend_usd: float,
    run_budget_usd: float | None,
    reachable_models: Sequence[str] = (),
) -> tuple[Decision, str]:
    """Ask `maestro.step` and record the answer; raises PolicyDeniedError when it denies.

    The tenant's period spend is read only when the step may cost something and the tenant
    has a period budget: free steps make no ledger query.
    """
    store = store_for(context.instance)
    tenant = workflow.tenant
    metered = estimated_cost_usd > 0 and "max_budget_usd" in policy.tenant_settings(tenant)
    spend = tenant_spend(store, policy, tenant) if metered else 0.0
    fields = {k: getattr(params, k) for k in (*URL_KEYS, *MODEL_KEYS) if hasattr(params, k)}
    payload = step_input(
        tenant=tenant,
        run_tenant=context.run.tags.get(TENANT_TAG, tenant),
        environment=workflow.environment,
        workflow=workflow.name,
        run_id=context.run_id,
        step_id=step_id,
        plugin=plugin,
        params=fields,
        secrets=secrets,
        estimated_cost_usd=estimated_cost_usd,
        run_spend_usd=run_spend_usd,
        run_budget_usd=run_budget_usd,
        tenant_spend_usd=spend,
        reachable_models=reachable_models,
    )
    engine = policy.engine()
    decision = traced_decision(engine, "step", payload)
    decision_id = store.record_decision(
        decision,
        tenant=tenant,
        workflow=workflow.name,
        engine=engine.name,
        run_id=context.run_id,
        step_id=step_id,
    )
    if not decision.allow:
        raise PolicyDeniedError(
            denial_message(f"step {step_id!r}", decision),
            policy_decision_id=decision_id,
            policy_version=decision.policy_version,
            policy_reasons="\n".join(decision.reasons),
        )
    return decision, decision_id


def record_cost(
    context: dg.OpExecutionContext,
    workflow: WorkflowRef,
    step_id: str,
    cost_usd: float,
    plugin: str = "",
) -> None:
    """Add a step's spend to the tenant's ledger (what period budgets are checked against, and
    `maestro costs` and the metrics exporter read), and show the run's total so far as the run
    tag `maestro/cost_usd` in the UI."""
    total = store_for(context.instance).record_cost(
        run_id=context.run_id,
        tenant=workflow.tenant,
        workflow=workflow.name,
        step_id=step_id,
        plugin=plugin,
        cost_usd=cost_usd,
    )
    run = context.instance.get_run_by_id(context.run_id)
    shown = float(run.tags.get(COST_TAG, 0.0)) if run is not None else 0.0
    if total > shown:  # totals only grow: a step finishing late never lowers the tag
        context.instance.add_run_tags(context.run_id, {COST_TAG: f"{total:.6f}"})
