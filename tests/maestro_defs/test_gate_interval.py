"""The gate sensor asks to be evaluated every second (the daemon's own loop, ~5 s, bounds it):
`maestro submit` to run start was 11-26 s with the former 15 s interval."""

from __future__ import annotations

import pytest

from maestro_defs.gate import SENSOR_NAME, gate_interval
from maestro_defs.workflows import build_definitions, load_workflows
from tests.support.compiling import bound_resources
from tests.support.paths import PROJECT_ROOT


def test_the_gate_sensor_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    defs = build_definitions(load_workflows([PROJECT_ROOT / "workflows"]), bound_resources())
    assert defs.resolve_sensor_def(SENSOR_NAME).minimum_interval_seconds == 1
    monkeypatch.setenv("MAESTRO_GATE_INTERVAL_S", "15")
    defs = build_definitions(load_workflows([PROJECT_ROOT / "workflows"]), bound_resources())
    assert defs.resolve_sensor_def(SENSOR_NAME).minimum_interval_seconds == 15
    with pytest.raises(ValueError, match="MAESTRO_GATE_INTERVAL_S"):
        gate_interval({"MAESTRO_GATE_INTERVAL_S": "0"})
