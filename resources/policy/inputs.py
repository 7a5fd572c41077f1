"""Decision inputs: what `maestro.workflow` and `maestro.step` see, built from plain data.

Pure functions, so the same input reaches the embedded engine, the OPA server and the tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

URL_KEYS = ("url", "urls", "start_urls", "api_base", "base_url", "allowed_domains")
"""Plugin parameters that name places to connect to, checked against the tenant's
allowed_domains: URLs, and the domains a crawl may follow links into (`"*"` is any domain)."""
MODEL_KEYS = ("model", "fallbacks", "fallback_models")
"""Plugin parameters that name models (the first one used, then its fallbacks)."""


def address_class(host: str) -> str:
    """public, private, loopback or link_local; names other than localhost count as public.

    Names are not resolved: the check sees what the workflow wrote (docs/policy.md).
    """
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return "public"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_private or address.is_reserved or address.is_unspecified:
        return "private"
    return "public"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def hosts_in(params: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every URL the parameters name, with its host and address class."""
    hosts = []
    for key in URL_KEYS:
        for url in _strings(params.get(key)):
            host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
            hosts.append({"url": url, "host": host, "address": address_class(host)})
    return hosts


def models_in(params: Mapping[str, Any]) -> list[str]:
    models: list[str] = []
    for key in MODEL_KEYS:
        models += [m for m in _strings(params.get(key)) if m not in models]
    return models


def step_input(
    *,
    tenant: str,
    run_tenant: str,
    environment: str,
    workflow: str,
    run_id: str,
    step_id: str,
    plugin: str,
    params: Mapping[str, Any],
    secrets: Iterable[str],
    estimated_cost_usd: float,
    run_spend_usd: float,
    run_budget_usd: float | None,
    tenant_spend_usd: float,
    reachable_models: Iterable[str] = (),
) -> dict[str, Any]:
    """`reachable_models`: models the plugin may fall back to beyond its params (a Router's
    fallbacks); they join `step.models`, so each meets the tenant's allowed models."""
    models = models_in(params)
    models += [m for m in dict.fromkeys(reachable_models) if m not in models]
    return {
        "tenant": tenant,
        "run_tenant": run_tenant,
        "environment": environment,
        "workflow": workflow,
        "run_id": run_id,
        "step": {
            "id": step_id,
            "plugin": plugin,
            "models": models,
            "hosts": hosts_in(params),
            "secrets": sorted(set(secrets)),
            "estimated_cost_usd": estimated_cost_usd,
        },
        "run": {"spend_usd": run_spend_usd, "budget_usd": run_budget_usd},
        "tenant_spend_usd": tenant_spend_usd,
    }


def workflow_input(
    *,
    tenant: str,
    environment: str,
    requester: str,
    workflow: Mapping[str, Any],
    tenant_spend_usd: float,
    active_runs: int,
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "environment": environment,
        "requester": requester,
        "workflow": dict(workflow),
        "tenant_spend_usd": tenant_spend_usd,
        "active_runs": active_runs,
    }
