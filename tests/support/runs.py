"""What happened in a run, read from its events: each step's outcome, ran or skipped."""

from __future__ import annotations

from typing import Any

import dagster as dg


def step_outcomes(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Final outcome per Dagster step key: STEP_SUCCESS, STEP_FAILURE or STEP_SKIPPED."""
    outcomes: dict[str, str] = {}
    for event in result.all_events:
        if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            outcomes[event.step_key] = event.event_type_value
    return outcomes


def _result_outputs(result: dg.ExecuteInProcessResult, step_key: str) -> list[Any]:
    return [
        e.step_output_data
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT"
        and e.step_key == step_key
        and e.step_output_data.output_name == "result"
    ]


def ran(result: dg.ExecuteInProcessResult, step_key: str) -> bool:
    """True when the op produced a real `result`: not a skip marker, not stopped or failed."""
    return any("skipped" not in out.metadata for out in _result_outputs(result, step_key))


def skipped(result: dg.ExecuteInProcessResult, step_key: str) -> bool:
    """True when the op emitted a skip marker (`when` false, or a skipped upstream)."""
    return any("skipped" in out.metadata for out in _result_outputs(result, step_key))


def failure(result: dg.ExecuteInProcessResult, step_key: str) -> tuple[str, dict[str, Any]]:
    """(description, metadata) of a step's final STEP_FAILURE: our dg.Failure's own words.

    After exhausted retries Dagster's error reads "Exceeded max_retries"; the dg.Failure the
    step raised is still attached as user_failure_data.
    """
    event = next(
        e
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE" and e.step_key == step_key
    )
    data = event.step_failure_data
    assert data.user_failure_data is not None, data.error
    metadata = {key: value.value for key, value in data.user_failure_data.metadata.items()}
    return data.user_failure_data.description or "", metadata
