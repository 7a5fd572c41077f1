"""What a deployment decides about its jobs, not the workflow files: where GPU steps land on
Kubernetes, and whether schedules start running.

The workflow says what a step needs (`resources: {cpu, memory, gpu}`); the deployment says how
its cluster offers GPUs (a node selector, tolerations, the device plugin's resource name). The
code location reads it once from the environment (`settings_from_env`) and passes it to the
backend, so compiling stays a pure function of the file and these settings.

A step's `dagster-k8s/config` op tag is what `dagster_k8s.k8s_job_executor` reads for the step's
pod: requests/limits in `container_config.resources`, node selector and tolerations in
`pod_spec_config`. Other executors ignore it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from yaml_compiler.spec import ResourcesSpec

K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_NODE_SELECTOR_ENV = "MAESTRO_K8S_GPU_NODE_SELECTOR"
"""JSON object (`{"nvidia.com/gpu.present": "true"}`) or `key=value,key=value`."""
GPU_TOLERATIONS_ENV = "MAESTRO_K8S_GPU_TOLERATIONS"
"""JSON list of Kubernetes tolerations (snake_case or camelCase keys)."""
GPU_RESOURCE_ENV = "MAESTRO_K8S_GPU_RESOURCE"
"""The extended resource GPUs are counted in; `nvidia.com/gpu` unless set."""
SCHEDULES_ENV = "MAESTRO_DEFAULT_SCHEDULE_STATUS"
"""`running`: schedules start on when the code location first loads (deployments); `stopped`
(the default) leaves them for a user to turn on, as in local development."""
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


class DeploymentSettingsError(ValueError):
    """A deployment setting in the environment that cannot be used; names the variable."""


@dataclass(frozen=True)
class GpuPlacement:
    """How this deployment's cluster places GPU steps."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    resource_name: str = DEFAULT_GPU_RESOURCE


@dataclass(frozen=True)
class DeploymentSettings:
    gpu: GpuPlacement = field(default_factory=GpuPlacement)
    schedules_running: bool = False


DEFAULT_SETTINGS = DeploymentSettings()


def _node_selector(text: str) -> dict[str, str]:
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeploymentSettingsError(f"{GPU_NODE_SELECTOR_ENV}: not JSON: {exc}") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise DeploymentSettingsError(
                f"{GPU_NODE_SELECTOR_ENV}: give an object of string labels, got {text!r}"
            )
        return {str(k): v for k, v in value.items()}
    selector: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise DeploymentSettingsError(
                f"{GPU_NODE_SELECTOR_ENV}: {part!r} is not key=value (or give a JSON object)"
            )
        selector[key.strip()] = value.strip()
    return selector


def _tolerations(text: str) -> tuple[dict[str, Any], ...]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeploymentSettingsError(f"{GPU_TOLERATIONS_ENV}: not JSON: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise DeploymentSettingsError(
            f"{GPU_TOLERATIONS_ENV}: give a JSON list of toleration objects, got {text!r}"
        )
    return tuple(value)


def settings_from_env(environ: Mapping[str, str] = os.environ) -> DeploymentSettings:
    """The deployment's settings from MAESTRO_K8S_GPU_* and MAESTRO_DEFAULT_SCHEDULE_STATUS."""
    status = (environ.get(SCHEDULES_ENV) or "stopped").strip().lower()
    if status not in ("running", "stopped"):
        raise DeploymentSettingsError(f"{SCHEDULES_ENV}: {status!r} is not running or stopped")
    gpu = GpuPlacement(
        node_selector=_node_selector(environ.get(GPU_NODE_SELECTOR_ENV, "")),
        tolerations=_tolerations(environ[GPU_TOLERATIONS_ENV])
        if environ.get(GPU_TOLERATIONS_ENV, "").strip()
        else (),
        resource_name=environ.get(GPU_RESOURCE_ENV, "").strip() or DEFAULT_GPU_RESOURCE,
    )
    return DeploymentSettings(gpu=gpu, schedules_running=status == "running")


def _quantity(value: str | int | float) -> str:
    """A Kubernetes quantity as text: `2.0` (YAML `cpu: 2`) is `2`, `0.5` stays `0.5`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def step_k8s_config(resources: ResourcesSpec, gpu: GpuPlacement) -> dict[str, Any] | None:
    """The `dagster-k8s/config` of a step: cpu and memory requested (memory also its limit,
    so a step that outgrows it is stopped rather than the node); GPUs as a limit of the
    deployment's GPU resource, on the deployment's GPU nodes. None when nothing is asked."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources.cpu is not None:
        requests["cpu"] = _quantity(resources.cpu)
    if resources.memory is not None:
        requests["memory"] = limits["memory"] = resources.memory
    pod_spec: dict[str, Any] = {}
    if resources.gpu:
        limits[gpu.resource_name] = str(resources.gpu)
        if gpu.node_selector:
            pod_spec["node_selector"] = dict(gpu.node_selector)
        if gpu.tolerations:
            pod_spec["tolerations"] = [dict(t) for t in gpu.tolerations]
    if not requests and not limits:
        return None
    container_resources: dict[str, Any] = {}
    if requests:
        container_resources["requests"] = requests
    if limits:
        container_resources["limits"] = limits
    config: dict[str, Any] = {"container_config": {"resources": container_resources}}
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return config


K8S_MAX_CONCURRENT_ENV = "MAESTRO_K8S_MAX_CONCURRENT_STEPS"
"""Step pods one run may have at once (k8s_job_executor's `max_concurrent`); unset: no limit."""


def k8s_executor_config(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The `k8s_job_executor` config a deployment sets. Image, namespace, env and secrets come
    from the run pod (K8sRunLauncher + `includeConfigInLaunchedRuns`), so little is left."""
    config: dict[str, Any] = {}
    text = environ.get(K8S_MAX_CONCURRENT_ENV, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise DeploymentSettingsError(f"{K8S_MAX_CONCURRENT_ENV}: {text!r} is not a count >= 1")
        config["max_concurrent"] = int(text)
    return config
