"""The gate: `maestro submit` checks and enqueues, the `maestro_policy_gate` sensor admits or
refuses, on a real instance (SQLite and PostgreSQL), idempotent across ticks and restarts."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from maestro_cli.submission import SubmitError, check_submission
from maestro_defs.gate import SENSOR_NAME
from maestro_defs.workflows import build_definitions, load_workflows
from resources.policy import store as store_module
from resources.policy.engine import PolicyEngineResource
from resources.policy.gate import enqueue
from resources.policy.store import ADMITTED, LAUNCHED, PENDING, REFUSED, store_for
from tests.support.compiling import bound_resources


@pytest.fixture(params=["sqlite", "postgres"])
def gate_instance(request: pytest.FixtureRequest) -> Iterator[dg.DagsterInstance]:
    overrides = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        overrides = {"storage": {"postgres": {"postgres_url": url}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        if request.param == "postgres":  # one database for the session: start from empty
            instance.wipe()
            with store_for(instance).engine.begin() as conn:
                for table in reversed(store_module.metadata.sorted_tables):
                    conn.execute(table.delete())
        yield instance


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    files = {
        "hello.yaml": """
            name: hello
            params: {who: {type: string, default: world}}
            steps:
              - {id: greet, run: echo, with: {greeting: "hello {{ params.who }}"}}
            """,
        "acme-shell.yaml": """
            name: acme-shell
            tenant: acme
            steps:
              - {id: sh, run: shell, with: {command: "true"}}
            """,
        "globex-echo.yaml": """
            name: globex-echo
            tenant: globex
            steps:
              - {id: e, run: echo, with: {x: 1}}
            """,
    }
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def _defs(folder: Path) -> dg.Definitions:
    return build_definitions(load_workflows([folder]), bound_resources())


def submit(
    path: Path,
    instance: dg.DagsterInstance,
    *,
    tenant: str | None = None,
    params: dict[str, str] | None = None,
    requester: str | None = None,
) -> str:
    """What `maestro submit` does: check the file as the code location loads it, enqueue."""
    assignments = [f"{name}={value}" for name, value in (params or {}).items()]
    submission = check_submission(path, assignments, dirs=[path.parent])
    plan = submission.plan
    return enqueue(
        instance,
        tenant=tenant or plan.spec.tenant,
        workflow=plan.spec.name,
        job_name=plan.job_name,
        source_file=submission.source_file,
        params=plan.param_values,
        requester=requester,
    )


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> Any:
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    context = dg.build_sensor_context(
        instance=instance,
        definitions=defs,
        sensor_name=SENSOR_NAME,
        resources={"policy": defs.resources["policy"]},  # what the daemon binds from defs
    )
    return sensor(context)


def _run_requests(result: Any) -> list[dg.RunRequest]:
    return list(result.run_requests) if isinstance(result, dg.SensorResult) else []


def _launch(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> Any:
    """What the daemon does with a RunRequest, in process."""
    job = defs.resolve_job_def(request.job_name)
    tags = {**request.tags, "dagster/run_key": request.run_key}
    return job.execute_in_process(
        instance=instance, run_config=request.run_config, tags=tags, raise_on_error=False
    )


def test_an_allowed_request_becomes_exactly_one_run(
    gate_instance: dg.DagsterInstance, workflows_dir: Path
) -> None:
    defs = _defs(workflows_dir)
    request_id = submit(
        workflows_dir / "hello.yaml", gate_instance, params={"who": "gate"}, requester="alice"
    )
    store = store_for(gate_instance)
    assert store.request(request_id).status == PENDING  # type: ignore[union-attr]

    first, again = _run_requests(_tick(defs, gate_instance)), []
    assert len(first) == 1
    run_request = first[0]
    assert run_request.run_key == request_id and run_request.job_name == "hello"
    assert run_request.run_config == {"params": {"who": "gate"}}
    # The run carries the request and the tenant; the decision stays with the request.
    assert run_request.tags == {"maestro/request_id": request_id, "maestro/tenant": "default"}
    decision_id = store.request(request_id).decision_id  # type: ignore[union-attr]
    assert decision_id is not None
    version = PolicyEngineResource().engine().policy_version
    assert store.decision(decision_id).policy_version == version  # type: ignore[union-attr]
    assert store.request(request_id).status == ADMITTED  # type: ignore[union-attr]

    # The daemon has not launched it yet (or crashed first): the next tick asks again, with the
    # same run_key (Dagster launches a run_key once) and without deciding again.
    store_module._STORES.clear()  # a restarted daemon: nothing kept in memory
    again = _run_requests(_tick(defs, gate_instance))
    assert [r.run_key for r in again] == [request_id]
    assert store_for(gate_instance).request(request_id).decision_id == decision_id  # type: ignore[union-attr]
    gate_decisions = [d for d in store_for(gate_instance).decisions() if d.request_id]
    assert [d.id for d in gate_decisions] == [decision_id]

    result = _launch(defs, gate_instance, run_request)
    assert result.success
    assert result.output_for_node("greet") == {"greeting": "hello gate"}
    store = store_for(gate_instance)
    # The run reused the gate's decision instead of making its own.
    assert store.run_admission(result.run_id).id == decision_id  # type: ignore[union-attr]
    assert not [d for d in store.decisions(run_id=result.run_id) if d.kind == "workflow"]

    for _ in range(2):
        assert _run_requests(_tick(defs, gate_instance)) == []
    request = store.request(request_id)
    assert request is not None and request.status == LAUNCHED and request.run_id == result.run_id


def test_a_refused_request_keeps_its_reasons_and_never_runs(
    gate_instance: dg.DagsterInstance, workflows_dir: Path
) -> None:
    defs = _defs(workflows_dir)
    request_id = submit(workflows_dir / "acme-shell.yaml", gate_instance)
    result = _tick(defs, gate_instance)
    assert isinstance(result, dg.SkipReason)
    assert (
        f"refused {request_id}: plugin_not_allowed: tenant 'acme' may not use plugin 'shell'"
        in (result.skip_message or "")
    )
    request = store_for(gate_instance).request(request_id)
    assert request is not None and request.status == REFUSED
    assert request.reasons == ("plugin_not_allowed: tenant 'acme' may not use plugin 'shell'",)
    assert request.decision_id is not None
    second = _tick(defs, gate_instance)
    assert isinstance(second, dg.SkipReason) and "refused" not in (second.skip_message or "")
    assert gate_instance.get_runs_count() == 0


def test_a_tenant_cannot_submit_under_another_tenants_name(
    gate_instance: dg.DagsterInstance, workflows_dir: Path
) -> None:
    defs = _defs(workflows_dir)
    request_id = submit(workflows_dir / "hello.yaml", gate_instance, tenant="acme")
    result = _tick(defs, gate_instance)
    assert isinstance(result, dg.SkipReason)
    request = store_for(gate_instance).request(request_id)
    assert request is not None and request.status == REFUSED
    assert any(r.startswith("tenant_mismatch: workflow 'hello' belongs") for r in request.reasons)


def test_a_request_over_the_concurrency_limit_waits_then_runs(
    gate_instance: dg.DagsterInstance, workflows_dir: Path
) -> None:
    defs = _defs(workflows_dir)
    job = defs.resolve_job_def("globex_echo")
    busy = gate_instance.create_run_for_job(
        job_def=job, status=dg.DagsterRunStatus.STARTED, tags={"maestro/tenant": "globex"}
    )
    request_id = submit(workflows_dir / "globex-echo.yaml", gate_instance)
    waiting = _tick(defs, gate_instance)
    assert isinstance(waiting, dg.SkipReason)
    assert f"waiting {request_id}: max_concurrent_runs: tenant 'globex' has 1 active run(s)" in (
        waiting.skip_message or ""
    )
    assert store_for(gate_instance).request(request_id).status == PENDING  # type: ignore[union-attr]
    gate_instance.report_run_canceled(busy)
    admitted = _run_requests(_tick(defs, gate_instance))
    assert [r.run_key for r in admitted] == [request_id]


def test_submit_refuses_bad_files_and_params_before_enqueueing(
    gate_instance: dg.DagsterInstance, workflows_dir: Path
) -> None:
    (workflows_dir / "broken.yaml").write_text("name: broken\nsteps:\n  - {id: a, run: nope}\n")
    with pytest.raises(SubmitError, match=r"broken.yaml:3:\d+: steps\[0\]\.run"):
        submit(workflows_dir / "broken.yaml", gate_instance)
    with pytest.raises(SubmitError, match="whom: unknown param"):
        submit(workflows_dir / "hello.yaml", gate_instance, params={"whom": "x"})
    assert store_for(gate_instance).requests() == []


def test_the_code_location_registers_the_gate_with_its_policy_resource(
    workflows_dir: Path,
) -> None:
    defs = _defs(workflows_dir)
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert {j.name for j in sensor.jobs} == {"hello", "acme_shell", "globex_echo"}
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert "policy" in sensor.required_resource_keys


def test_a_copied_request_tag_does_not_admit_a_run(
    gate_instance: dg.DagsterInstance, workflows_dir: Path
) -> None:
    defs = _defs(workflows_dir)
    request_id = submit(workflows_dir / "hello.yaml", gate_instance)
    (admitted,) = _run_requests(_tick(defs, gate_instance))
    store = store_for(gate_instance)
    gate_decision = store.request(request_id).decision_id  # type: ignore[union-attr]
    first = _launch(defs, gate_instance, admitted)
    assert store.run_admission(first.run_id).id == gate_decision  # type: ignore[union-attr]
    job = defs.resolve_job_def("hello")
    # The same request tag on another run, or a request that does not exist: the run decides
    # for itself (only the request's own run may use the gate's decision).
    for forged in (request_id, "forged"):
        result = job.execute_in_process(instance=gate_instance, tags={"maestro/request_id": forged})
        assert result.success
        own = [d for d in store.decisions(run_id=result.run_id) if d.kind == "workflow"]
        assert len(own) == 1 and own[0].id != gate_decision
        assert store.run_admission(result.run_id).id == own[0].id  # type: ignore[union-attr]


def test_requests_wait_while_the_policy_engine_is_down(
    gate_instance: dg.DagsterInstance, workflows_dir: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    defs = build_definitions(
        load_workflows([workflows_dir]),
        {"policy": PolicyEngineResource(opa_url=dead, timeout_s=0.5)},
    )
    request_id = submit(workflows_dir / "hello.yaml", gate_instance)
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    context = dg.build_sensor_context(
        instance=gate_instance,
        sensor_name=SENSOR_NAME,
        resources={"policy": PolicyEngineResource(opa_url=dead, timeout_s=0.5)},
    )
    result = sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert f"waiting {request_id}: policy engine unavailable: {dead}" in (result.skip_message or "")
    assert store_for(gate_instance).request(request_id).status == PENDING  # type: ignore[union-attr]
    assert _run_requests(_tick(_defs(workflows_dir), gate_instance))  # back up: admitted
