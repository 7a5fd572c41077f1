"""Settings a deployment gives the code location through its environment: the gate sensor's
interval (every second; the daemon's own loop, ~5 s, bounds it: `maestro submit` to run start
was 11-26 s with the former 15 s), GPU placement, schedules on or off."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from maestro_defs.gate import SENSOR_NAME, gate_interval
from maestro_defs.workflows import build_definitions, load_workflows
from tests.support.compiling import bound_resources
from tests.support.paths import PROJECT_ROOT
from yaml_compiler import WorkflowCompileError


def test_the_gate_sensor_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    defs = build_definitions(load_workflows([PROJECT_ROOT / "workflows"]), bound_resources())
    assert defs.resolve_sensor_def(SENSOR_NAME).minimum_interval_seconds == 1
    monkeypatch.setenv("MAESTRO_GATE_INTERVAL_S", "15")
    defs = build_definitions(load_workflows([PROJECT_ROOT / "workflows"]), bound_resources())
    assert defs.resolve_sensor_def(SENSOR_NAME).minimum_interval_seconds == 15
    with pytest.raises(ValueError, match="MAESTRO_GATE_INTERVAL_S"):
        gate_interval({"MAESTRO_GATE_INTERVAL_S": "0"})


def test_the_code_location_places_gpu_steps_as_its_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "gpu.yaml").write_text(
        "name: gpu\nschedule: '0 1 * * *'\nsteps:\n"
        "  - {id: embed, run: echo, resources: {gpu: 2, memory: 8Gi}}\n"
    )
    monkeypatch.setenv("MAESTRO_K8S_GPU_NODE_SELECTOR", '{"accelerator": "a100"}')
    monkeypatch.setenv("MAESTRO_DEFAULT_SCHEDULE_STATUS", "running")
    defs = build_definitions(load_workflows([folder]), bound_resources())
    [node] = defs.resolve_job_def("gpu").graph.nodes
    config = json.loads(node.definition.tags["dagster-k8s/config"])
    assert config["pod_spec_config"]["node_selector"] == {"accelerator": "a100"}
    assert config["container_config"]["resources"]["limits"] == {
        "memory": "8Gi",
        "nvidia.com/gpu": "2",
    }
    schedule = defs.resolve_schedule_def("gpu_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    monkeypatch.setenv("MAESTRO_K8S_GPU_NODE_SELECTOR", "accelerator")
    with pytest.raises(WorkflowCompileError, match="MAESTRO_K8S_GPU_NODE_SELECTOR"):
        load_workflows([folder])


def test_schedules_stay_stopped_by_default(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "s.yaml").write_text("name: s\nschedule: '0 1 * * *'\nsteps:\n  - run: echo\n")
    defs = build_definitions(load_workflows([folder]), bound_resources())
    assert defs.resolve_schedule_def("s_schedule").default_status == (
        dg.DefaultScheduleStatus.STOPPED
    )
