"""`--tenant` (or MAESTRO_TENANT) scopes the read commands to one tenant.

With a tenant given, `runs`, `status`, `logs`, `cancel`, `costs`, `decisions`, `requests`
and `artifacts ls` show only that tenant's runs, costs, decisions, requests and artifacts; a
run of another tenant reads as missing (its existence is not confirmed). This keeps shared
tooling, scripts and CI jobs that act for one tenant inside it. It is not an access-control
boundary: whoever can run the CLI reads the Dagster instance's database and the artifact
store directly (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import dagster as dg

from maestro_cli.run_views import RunNotFoundError
from resources.run_tags import DEFAULT_TENANT, TENANT_TAG

TENANT_ENV = "MAESTRO_TENANT"


def tenant_option(help_text: str = "Only this tenant's data.") -> Callable[[Any], Any]:
    return click.option(
        "--tenant", "-t", envvar=TENANT_ENV, help=f"{help_text} Default: ${TENANT_ENV}."
    )


def check_run_tenant(instance: dg.DagsterInstance, run_id: str, tenant: str | None) -> None:
    """A run of another tenant is reported exactly like a run that does not exist."""
    if tenant is None:
        return
    run = instance.get_run_by_id(run_id)
    if run is None or run.tags.get(TENANT_TAG, DEFAULT_TENANT) != tenant:
        raise RunNotFoundError(f"no run {run_id} in this instance")
