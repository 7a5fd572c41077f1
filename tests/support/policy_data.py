"""Test policies: the shipped Rego with one more tenant, selected through MAESTRO_POLICY_DIR."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from resources.policy.engine import PolicySet


def use_policies_with_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, tenant: dict[str, Any]
) -> Path:
    """Copy the shipped policies, add `tenant` under `name`, and point the engines at the copy."""
    folder = tmp_path / "policies"
    shutil.copytree(PolicySet.load().directory, folder)
    tenants_file = folder / "data" / "tenants.json"
    data = json.loads(tenants_file.read_text())
    data["tenants"][name] = tenant
    tenants_file.write_text(json.dumps(data))
    monkeypatch.setenv("MAESTRO_POLICY_DIR", str(folder))
    return folder
