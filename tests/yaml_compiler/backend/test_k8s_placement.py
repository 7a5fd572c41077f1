"""GPU-aware placement: a step's `resources` become its `dagster-k8s/config` op tag, and the pod
spec dagster-k8s builds from that tag (as `k8s_job_executor` does for a step) carries the GPU
limit, the deployment's node selector and tolerations, and the cpu/memory requests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from resources.plugins import default_registry
from tests.support.paths import PROJECT_ROOT
from yaml_compiler import plan_text
from yaml_compiler.backend import build_job
from yaml_compiler.backend.deployment import (
    K8S_CONFIG_TAG,
    DeploymentSettings,
    DeploymentSettingsError,
    GpuPlacement,
    settings_from_env,
)

WORKFLOW = textwrap.dedent(
    """
    name: placed
    steps:
      - id: embed
        run: echo
        resources: { cpu: "4", memory: 16Gi, gpu: 1 }
      - id: tidy
        run: echo
        resources: { cpu: 2, memory: 512Mi }
      - id: plain
        run: echo
    """
)
GPU_NODES = GpuPlacement(
    node_selector={"nvidia.com/gpu.present": "true", "pool": "gpu-a100"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
)


def _tags(settings: DeploymentSettings) -> dict[str, dict[str, str]]:
    plan = plan_text(WORKFLOW, "placed.yaml", default_registry())
    job = build_job(plan, deployment=settings)
    return {node.name: dict(node.definition.tags) for node in job.graph.nodes}


def test_resources_become_the_steps_k8s_config_tag() -> None:
    tags = _tags(DeploymentSettings(gpu=GPU_NODES))
    assert json.loads(tags["embed"][K8S_CONFIG_TAG]) == {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi"},
                "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
            }
        },
        "pod_spec_config": {
            "node_selector": {"nvidia.com/gpu.present": "true", "pool": "gpu-a100"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
    }
    # No GPU: no node selector, only what the step asked for (`cpu: 2` is the quantity "2").
    assert json.loads(tags["tidy"][K8S_CONFIG_TAG]) == {
        "container_config": {
            "resources": {
                "requests": {"cpu": "2", "memory": "512Mi"},
                "limits": {"memory": "512Mi"},
            }
        }
    }
    assert K8S_CONFIG_TAG not in tags["plain"]
    assert tags["embed"]["maestro/gpu"] == "1"  # the UI's tags are unchanged


def test_the_tag_is_a_function_of_the_file_and_the_settings() -> None:
    settings = DeploymentSettings(gpu=GPU_NODES)
    assert _tags(settings) == _tags(settings)
    bare = json.loads(_tags(DeploymentSettings())["embed"][K8S_CONFIG_TAG])
    assert "pod_spec_config" not in bare  # no placement configured: only the GPU limit
    assert bare["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_settings_from_the_environment() -> None:
    settings = settings_from_env(
        {
            "MAESTRO_K8S_GPU_NODE_SELECTOR": "nvidia.com/gpu.present=true, pool=gpu-a100",
            "MAESTRO_K8S_GPU_TOLERATIONS": json.dumps([dict(GPU_NODES.tolerations[0])]),
            "MAESTRO_K8S_GPU_RESOURCE": "amd.com/gpu",
            "MAESTRO_DEFAULT_SCHEDULE_STATUS": "running",
        }
    )
    assert settings.gpu.node_selector == GPU_NODES.node_selector
    assert list(settings.gpu.tolerations) == list(GPU_NODES.tolerations)
    assert settings.gpu.resource_name == "amd.com/gpu"
    assert settings.schedules_running
    assert settings_from_env({}) == DeploymentSettings()
    for bad in (
        {"MAESTRO_K8S_GPU_NODE_SELECTOR": "pool"},
        {"MAESTRO_K8S_GPU_TOLERATIONS": "{not json"},
        {"MAESTRO_DEFAULT_SCHEDULE_STATUS": "sometimes"},
    ):
        with pytest.raises(DeploymentSettingsError, match=next(iter(bad))):
            settings_from_env(bad)


def test_helm_values_configure_the_same_gpu_placement() -> None:
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    env = values["dagster-user-deployments"]["deployments"][0]["env"]
    settings = settings_from_env(env)
    assert settings.gpu.node_selector and settings.gpu.tolerations
    assert settings.schedules_running


def _kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig naming a cluster that is never contacted: dagster-k8s only loads it."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "unused"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def _step_pod_spec(tmp_path: Path, op_tags: dict[str, str]) -> dict[str, Any]:
    """The Kubernetes Job dagster-k8s's k8s_job_executor builds for a step, as a plain dict:
    the run launcher's settings (as the chart configures them, runK8sConfig included), merged
    with the step's `dagster-k8s/config` tag, through dagster-k8s's own functions."""
    values = yaml.safe_load((PROJECT_ROOT / "helm-values.yaml").read_text())
    launcher_values = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s_config = {
        "container_config": launcher_values["runK8sConfig"]["containerConfig"],
        "pod_spec_config": launcher_values["runK8sConfig"]["podSpecConfig"],
        "job_spec_config": launcher_values["runK8sConfig"]["jobSpecConfig"],
    }
    launcher = K8sRunLauncher(
        service_account_name="maestro",
        instance_config_map="maestro-instance",
        postgres_password_secret=values["global"]["postgresqlSecretName"],
        dagster_home="/opt/dagster/dagster_home",
        job_image="ghcr.io/maestro/maestro-dagster:0.1.0",
        load_incluster_config=False,
        kubeconfig_file=str(_kubeconfig(tmp_path)),
        job_namespace="maestro",
        env_secrets=[s["name"] for s in launcher_values["envSecrets"]],
        run_k8s_config=run_k8s_config,
    )
    context = K8sContainerContext(
        env_secrets=launcher.env_secrets,
        namespace=launcher.job_namespace,
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(run_k8s_config),
    ).merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(op_tags)))
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(None, launcher),
        args=["dagster", "api", "execute_step"],
        job_name="dagster-step-embed",
        pod_name="dagster-step-embed",
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/op": "embed"},
    )
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


def test_the_step_pod_spec_carries_the_gpu_limit_and_node_selector(tmp_path: Path) -> None:
    tags = _tags(DeploymentSettings(gpu=GPU_NODES))
    job = _step_pod_spec(tmp_path, tags["embed"])
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["limits"]["memory"] == "16Gi"
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true", "pool": "gpu-a100"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # The chart's run settings still apply: non-root pods, secrets, the job's TTL.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {s["secretRef"]["name"] for s in container["envFrom"]} >= {"maestro-llm-keys"}
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    assert container["image"] == "ghcr.io/maestro/maestro-dagster:0.1.0"


def test_a_step_without_a_gpu_gets_no_gpu_node(tmp_path: Path) -> None:
    tags = _tags(DeploymentSettings(gpu=GPU_NODES))
    pod = _step_pod_spec(tmp_path, tags["tidy"])["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "512Mi"}
    assert not pod.get("nodeSelector")


def test_executor_k8s_runs_each_step_in_its_own_kubernetes_job() -> None:
    """`executor: k8s` (or MAESTRO_EXECUTOR=k8s) gives the job dagster-k8s's step-per-pod
    executor, with the workflow's `max_parallel`, else the deployment's
    MAESTRO_K8S_MAX_CONCURRENT_STEPS, configured in (a workflow with params takes only `params`
    as run config), and the GPU placement tags it reads."""
    from yaml_compiler.backend.deployment import k8s_executor_config
    from yaml_compiler.backend.job import job_executor

    text = WORKFLOW.replace("steps:", "params: {n: 1}\nexecutor: k8s\nsteps:", 1)
    plan = plan_text(text, "placed.yaml", default_registry())
    job = build_job(plan, deployment=DeploymentSettings(gpu=GPU_NODES))
    assert job.executor_def is k8s_job_executor  # no limit to configure in
    limited = plan_text(
        text.replace("executor: k8s", "executor: k8s\nmax_parallel: 2"),
        "p.yaml",
        default_registry(),
    )
    configured = build_job(limited, deployment=DeploymentSettings(gpu=GPU_NODES)).executor_def
    assert configured.name == "k8s" and configured is not k8s_job_executor
    tags = {n.name: n.definition.tags for n in job.graph.nodes}
    assert "nvidia.com/gpu" in tags["embed"][K8S_CONFIG_TAG]
    from_env = job_executor(
        plan_text(WORKFLOW, "placed.yaml", default_registry()),
        {"MAESTRO_EXECUTOR": "k8s", "MAESTRO_K8S_MAX_CONCURRENT_STEPS": "3"},
    )
    assert from_env.name == "k8s"
    assert k8s_executor_config({"MAESTRO_K8S_MAX_CONCURRENT_STEPS": "3"}) == {"max_concurrent": 3}
    with pytest.raises(DeploymentSettingsError, match="MAESTRO_K8S_MAX_CONCURRENT_STEPS"):
        k8s_executor_config({"MAESTRO_K8S_MAX_CONCURRENT_STEPS": "0"})
