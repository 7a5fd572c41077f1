"""Per-tenant run concurrency from the tenant data, as the QueuedRunCoordinator's config.

Dagster enforces it while runs wait in the queue (`tag_concurrency_limits` on the `maestro/tenant`
tag every compiled job carries); `maestro.workflow` denies a run that starts past it anyway (runs
launched in process never see the queue). `maestro policies concurrency` prints this block for
deploy/dagster.yaml (and, in the chart's terms, helm-values.yaml); tests keep both equal to it.
"""

from __future__ import annotations

from typing import Any

from resources.policy.enforce import TENANT_TAG
from resources.policy.engine import PolicySet


def run_coordinator_config(policies: PolicySet) -> dict[str, Any]:
    queue = policies.data.get("run_queue", {})
    limits: list[dict[str, Any]] = [
        {"key": TENANT_TAG, "value": name, "limit": int(tenant["max_concurrent_runs"])}
        for name, tenant in sorted(policies.tenants.items())
        if "max_concurrent_runs" in tenant
    ]
    # Any other tenant value (the policy refuses unknown tenants; this bounds them in the queue).
    limits.append(
        {
            "key": TENANT_TAG,
            "value": {"applyLimitPerUniqueValue": True},
            "limit": int(queue.get("unknown_tenant_max_concurrent_runs", 1)),
        }
    )
    config: dict[str, Any] = {
        "max_concurrent_runs": int(queue.get("max_concurrent_runs", 20)),
        "tag_concurrency_limits": limits,
    }
    if "dequeue_interval_seconds" in queue:  # how soon a queued run starts (Dagster's default: 5)
        config["dequeue_interval_seconds"] = int(queue["dequeue_interval_seconds"])
    return config


def run_coordinator_yaml(policies: PolicySet) -> str:
    import yaml

    block = {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": run_coordinator_config(policies),
        }
    }
    return yaml.safe_dump(block, sort_keys=False)
