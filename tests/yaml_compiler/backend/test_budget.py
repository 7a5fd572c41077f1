"""Run budgets: plugins report what they spend, a step that would overspend never starts."""

from __future__ import annotations

import textwrap

import dagster as dg

from resources.plugins import BUILTIN_PLUGINS, PluginRegistry
from tests.support.compiling import compile_text
from tests.support.paid_plugin import paid_plugin
from tests.support.runs import step_outcomes


def _run(text: str, instance: dg.DagsterInstance, calls: list[str]) -> dg.ExecuteInProcessResult:
    registry = PluginRegistry([*BUILTIN_PLUGINS, paid_plugin(calls)])
    job = compile_text(textwrap.dedent(text), registry=registry).job
    return job.execute_in_process(instance=instance, raise_on_error=False)


def _output_cost(result: dg.ExecuteInProcessResult, step_key: str) -> float | None:
    for event in result.all_events:
        if event.event_type_value == "STEP_OUTPUT" and event.step_key == step_key:
            value = event.step_output_data.metadata.get("cost_usd")
            return None if value is None else value.value
    return None


def test_cost_is_reported_and_a_step_over_budget_fails_before_its_call(
    instance: dg.DagsterInstance,
) -> None:
    calls: list[str] = []
    result = _run(
        """
        name: spend
        budget: {max_cost_usd: 1.0}
        steps:
          - {id: first, run: paid, with: {price: 0.6}}
          - {id: second, run: paid, with: {price: 0.5}, retry: {max_attempts: 3}}
        """,
        instance,
        calls,
    )
    assert _output_cost(result, "first") == 0.6
    assert step_outcomes(result)["second"] == "STEP_FAILURE"
    assert calls == ["first"]  # the refused step made no call, and was not retried
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    data = failure.step_failure_data.user_failure_data
    assert "over budget" in data.description and "budget.max_cost_usd" in data.description
    assert data.metadata["error_kind"].value == "budget"


def test_steps_within_budget_run_and_no_budget_means_no_limit(
    instance: dg.DagsterInstance,
) -> None:
    calls: list[str] = []
    result = _run(
        """
        name: spend
        budget: {max_cost_usd: 1.0}
        steps:
          - {id: first, run: paid, with: {price: 0.5}}
          - {id: second, run: paid, with: {price: 0.5}}
        """,
        instance,
        calls,
    )
    assert result.success and calls == ["first", "second"]
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and float(run.tags["maestro/cost_usd"]) == 1.0  # the UI's run total
    calls.clear()
    result = _run(
        "name: free\nsteps:\n  - {id: big, run: paid, with: {price: 1000}}\n", instance, calls
    )
    assert result.success and _output_cost(result, "big") == 1000
