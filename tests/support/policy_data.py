"""Test policies: the shipped Rego with one more tenant, as a policy resource for test jobs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from resources.policy.engine import PolicyEngineResource, PolicySet


def policies_with_tenant(tmp_path: Path, name: str, tenant: dict[str, Any]) -> Path:
    """Copy the shipped policies into `tmp_path/policies` and add `tenant` under `name`."""
    folder = tmp_path / "policies"
    shutil.copytree(PolicySet.load().directory, folder)
    tenants_file = folder / "data" / "tenants.json"
    data = json.loads(tenants_file.read_text())
    data["tenants"][name] = tenant
    tenants_file.write_text(json.dumps(data))
    return folder


def policy_with_tenant(tmp_path: Path, name: str, tenant: dict[str, Any]) -> PolicyEngineResource:
    """The `policy` resource of a job whose engine knows one more tenant."""
    return PolicyEngineResource(policy_dir=str(policies_with_tenant(tmp_path, name, tenant)))
