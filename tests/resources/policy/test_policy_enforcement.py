"""Policy enforcement inside runs: the run's `maestro.workflow` decision, `maestro.step` before
each call, tenant period budgets from the cost ledger, fail-closed, both storage back-ends."""

from __future__ import annotations

import http.server
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest

from resources.plugins import BUILTIN_PLUGINS, PluginRegistry
from resources.policy.engine import PolicyEngineResource, PolicySet
from resources.policy.store import storage_url, store_for
from tests.support.compiling import compile_text
from tests.support.http_server import serve_http
from tests.support.paid_plugin import paid_plugin
from tests.support.policy_data import policy_with_tenant
from tests.support.ports import free_port
from tests.support.runs import step_outcomes

METERED = {
    "description": "Test tenant: a small daily budget and a short allow-list.",
    "allowed_environments": ["dev"],
    "allowed_plugins": ["echo", "paid", "http.request"],
    "allowed_models": ["*"],
    "allowed_secrets": ["METERED_*"],
    "allowed_domains": ["metered.example"],
    "max_budget_usd": 1.0,
    "budget_period": "day",
    "max_concurrent_runs": 2,
}


@pytest.fixture
def metered_policies(tmp_path: Path) -> PolicyEngineResource:
    """The `policy` resource with the shipped policies plus a `metered` tenant."""
    return policy_with_tenant(tmp_path, "metered", METERED)


def _job(
    text: str, calls: list[str] | None = None, policy: PolicyEngineResource | None = None
) -> dg.JobDefinition:
    registry = PluginRegistry([*BUILTIN_PLUGINS, paid_plugin(calls if calls is not None else [])])
    resources = {"policy": policy} if policy is not None else None
    return compile_text(textwrap.dedent(text), registry=registry, resources=resources).job


def _failure(result: dg.ExecuteInProcessResult) -> Any:
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return event.step_failure_data.user_failure_data


def _restarts(result: dg.ExecuteInProcessResult) -> int:
    return sum(e.event_type_value == "STEP_RESTARTED" for e in result.all_events)


def test_every_run_gets_one_workflow_decision_and_each_step_a_recorded_step_decision(
    instance: dg.DagsterInstance,
) -> None:
    job = _job(
        """
        name: three
        steps:
          - {id: a, run: echo, with: {x: 1}}
          - {id: b, run: echo, with: {x: 2}}
          - {id: c, run: echo, with: {x: 3}}
        """
    )
    result = job.execute_in_process(instance=instance)
    assert result.success
    store = store_for(instance)
    audit = store.decisions(run_id=result.run_id)
    workflow = [d for d in audit if d.kind == "workflow"]
    steps = sorted(d.step_id for d in audit if d.kind == "step")
    assert len(workflow) == 1 and workflow[0].allow and workflow[0].engine == "embedded"
    assert steps == ["a", "b", "c"] and all(d.allow for d in audit)
    assert len(workflow[0].input_digest) == 64 and workflow[0].policy_version
    # The run's admission is the store's (`maestro decisions --run`), not a run tag.
    assert store.run_admission(result.run_id).id == workflow[0].id  # type: ignore[union-attr]
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and not {"maestro/decision_id", "maestro/policy_version"} & set(run.tags)
    output = next(
        e for e in result.all_events if e.event_type_value == "STEP_OUTPUT" and e.step_key == "a"
    )
    step_decision = output.step_output_data.metadata["policy_decision_id"].value
    assert step_decision in {d.id for d in audit if d.step_id == "a"}


def test_a_step_the_policy_refuses_fails_before_its_call_without_retry(
    instance: dg.DagsterInstance, metered_policies: PolicyEngineResource
) -> None:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    with serve_http(Handler) as url:
        job = _job(
            f"""
            name: reach-in
            tenant: metered
            steps:
              - id: fetch
                run: http.request
                retry: {{max_attempts: 3}}
                with: {{url: "{url}/internal"}}
            """,
            policy=metered_policies,
        )
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert step_outcomes(result)["fetch"] == "STEP_FAILURE"
    assert hits == [] and _restarts(result) == 0
    failure = _failure(result)
    assert "failed (policy)" in failure.description
    assert "address_not_allowed: '127.0.0.1' is a loopback address" in failure.description
    assert failure.metadata["error_kind"].value == "policy"
    assert failure.metadata["retryable"].value is False
    assert "address_not_allowed" in failure.metadata["policy_reasons"].value
    denied = store_for(instance).decision(failure.metadata["policy_decision_id"].value)
    assert denied is not None and not denied.allow and denied.step_id == "fetch"


def test_secrets_a_tenant_may_not_read_are_refused(
    instance: dg.DagsterInstance,
    metered_policies: PolicyEngineResource,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTHER_TEAM_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("METERED_TOKEN", "fine-value")
    job = _job(
        """
        name: borrow
        tenant: metered
        secrets: [METERED_TOKEN, OTHER_TEAM_TOKEN]
        steps:
          - {id: own, run: echo, with: {token: "{{ secrets.METERED_TOKEN }}"}}
          - {id: other, run: echo, with: {token: "{{ secrets.OTHER_TEAM_TOKEN }}"}}
        """,
        policy=metered_policies,
    )
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = _failure(result)
    assert "secret_not_allowed: tenant 'metered' may not read secret 'OTHER_TEAM_TOKEN'" in (
        failure.description
    )
    assert "s3cr3t-value" not in failure.description
    assert "fine-value" not in json.dumps(
        [str(e.message) for e in instance.all_logs(result.run_id)]
    )


def test_tenant_period_budget_is_enforced_from_the_cost_ledger(
    instance: dg.DagsterInstance, metered_policies: PolicyEngineResource
) -> None:
    calls: list[str] = []
    job = _job(
        """
        name: metered-spend
        tenant: metered
        params: {price: {type: number, required: true}}
        steps:
          - {id: spend, run: paid, retry: {max_attempts: 2}, with: {price: "{{ params.price }}"}}
        """,
        calls,
        policy=metered_policies,
    )
    first = job.execute_in_process(instance=instance, run_config={"params": {"price": 0.6}})
    assert first.success and calls == ["spend"]
    store = store_for(instance)
    from datetime import UTC, datetime

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert store.tenant_spend("metered", midnight) == pytest.approx(0.6)
    second = job.execute_in_process(
        instance=instance, run_config={"params": {"price": 0.6}}, raise_on_error=False
    )
    assert not second.success and calls == ["spend"] and _restarts(second) == 0
    description = _failure(second).description
    assert "tenant_budget_exceeded: step 'spend' may cost $0.6, tenant 'metered' has spent" in (
        description
    )
    cheap = job.execute_in_process(instance=instance, run_config={"params": {"price": 0.3}})
    assert cheap.success and calls == ["spend", "spend"]  # $0.9 of $1: still within
    assert store.tenant_spend("default", midnight) == 0.0  # spend is per tenant


def test_a_run_cannot_spend_under_another_tenants_name(
    instance: dg.DagsterInstance, metered_policies: PolicyEngineResource
) -> None:
    calls: list[str] = []
    job = _job(
        """
        name: masquerade
        tenant: metered
        steps:
          - {id: spend, run: paid, with: {price: 0.1}}
        """,
        calls,
        policy=metered_policies,
    )
    # The default tenant has no period budget: relabelling the run would escape metered's.
    result = job.execute_in_process(
        instance=instance, tags={"maestro/tenant": "default"}, raise_on_error=False
    )
    assert not result.success and calls == []
    assert "tenant_mismatch: workflow 'masquerade' belongs to tenant 'metered'" in (
        _failure(result).description
    )


def test_the_tenants_concurrency_limit_holds_a_run_started_outside_the_gate(
    instance: dg.DagsterInstance, metered_policies: PolicyEngineResource
) -> None:
    job = _job(
        "name: busy\ntenant: metered\nsteps:\n  - {id: a, run: echo, with: {x: 1}}\n",
        policy=metered_policies,
    )
    for _ in range(2):
        instance.create_run_for_job(
            job_def=job,
            status=dg.DagsterRunStatus.STARTED,
            tags={"maestro/tenant": "metered"},
        )
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert "max_concurrent_runs: tenant 'metered' has 2 active run(s), its limit is 2" in (
        _failure(result).description
    )


def test_runs_fail_closed_when_the_policy_engine_is_down(
    instance: dg.DagsterInstance,
) -> None:
    down = PolicyEngineResource(opa_url=f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    job = _job(
        "name: closed\nsteps:\n  - {id: a, run: echo, retry: {max_attempts: 3}}\n", policy=down
    )
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success and _restarts(result) == 0
    failure = _failure(result)
    assert "policy engine unavailable: http://127.0.0.1:" in failure.description
    assert failure.metadata["error_kind"].value == "policy"


def test_runs_are_checked_through_an_opa_server(instance: dg.DagsterInstance) -> None:
    from resources.policy.engine import OpaServerPolicyEngine
    from tests.support.opa_standin import OpaStandIn, handler_for

    state = OpaStandIn()
    with serve_http(handler_for(state)) as url:
        OpaServerPolicyEngine(url).push(PolicySet.load())
        job = _job(
            "name: served\nsteps:\n  - {id: a, run: echo}\n  - {id: b, run: echo}\n",
            policy=PolicyEngineResource(opa_url=url),
        )
        result = job.execute_in_process(instance=instance)
    assert result.success
    assert state.queries == 3  # one workflow decision, two step decisions
    assert {d.engine for d in store_for(instance).decisions(run_id=result.run_id)} == {"opa"}


@pytest.fixture
def postgres_instance(postgres_url: str) -> Iterator[dg.DagsterInstance]:
    overrides = {"storage": {"postgres": {"postgres_url": postgres_url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


def test_decisions_and_costs_live_in_the_instances_postgres_database(
    postgres_instance: dg.DagsterInstance, postgres_url: str, metered_policies: PolicyEngineResource
) -> None:
    assert storage_url(postgres_instance) == postgres_url
    calls: list[str] = []
    job = _job(
        "name: pg\ntenant: metered\nsteps:\n  - {id: spend, run: paid, with: {price: 0.25}}\n",
        calls,
        policy=metered_policies,
    )
    result = job.execute_in_process(instance=postgres_instance)
    assert result.success and calls == ["spend"]
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT kind, allow FROM maestro_policy_decisions WHERE run_id = %s ORDER BY kind",
            (result.run_id,),
        )
        assert cursor.fetchall() == [("step", True), ("workflow", True)]
        cursor.execute(
            "SELECT tenant, step_id, cost_usd FROM maestro_cost_ledger WHERE run_id = %s",
            (result.run_id,),
        )
        assert cursor.fetchall() == [("metered", "spend", 0.25)]


def test_the_sqlite_store_sits_beside_the_instance_storage(instance: dg.DagsterInstance) -> None:
    url = storage_url(instance)
    assert url.startswith("sqlite:///") and url.endswith("/maestro_policy.db")
    assert Path(url.removeprefix("sqlite:///")).parent.is_dir()


def test_parallel_steps_in_separate_processes_share_one_run_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import policy_multiprocess_job

    workflow = tmp_path / "fan.yaml"
    workflow.write_text(
        "name: fan\nexecutor: multiprocess\nstages:\n  - name: all\n    parallel:\n"
        + "".join(f"      - {{id: p{i}, run: echo, with: {{i: {i}}}}}\n" for i in range(4))
    )
    monkeypatch.setenv("MAESTRO_TEST_WORKFLOW", str(workflow))
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(policy_multiprocess_job.workflow_job),
            instance=instance,
            run_config={"execution": {"config": {"max_concurrent": 4}}},
        )
        assert result.success
        audit = store_for(instance).decisions(run_id=result.run_id)
        # Steps that race may each ask (the audit keeps every decision made) but one admission
        # holds for the run, and every step process used that one.
        workflow_decisions = {d.id for d in audit if d.kind == "workflow"}
        assert sorted(d.step_id for d in audit if d.kind == "step") == ["p0", "p1", "p2", "p3"]
        admission = store_for(instance).run_admission(result.run_id)
        assert admission is not None and admission.id in workflow_decisions
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and "maestro/decision_id" not in run.tags  # in the store
