"""`maestro submit / requests / decisions / policies`, run for real in a subprocess, and the
shipped dagster.yaml's tenant concurrency limits against the tenant data."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import dagster as dg
import yaml

from maestro_defs.workflows import gate_workflows, load_workflows
from resources.policy.concurrency import run_coordinator_config
from resources.policy.engine import PolicyEngineResource, PolicySet
from resources.policy.gate import evaluate_requests
from tests.support.cli import run_maestro
from tests.support.http_server import serve_http
from tests.support.opa_standin import OpaStandIn, handler_for
from tests.support.paths import PROJECT_ROOT


def _maestro(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    workflows = {"MAESTRO_WORKFLOWS_DIR": str(tmp_path / "workflows")}
    return run_maestro(*args, cwd=tmp_path, home=tmp_path / "home", env=workflows, stdin=stdin)


def test_submit_then_the_gate_then_requests_and_decisions(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    workflow = tmp_path / "workflows" / "greet.yaml"
    workflow.write_text(
        textwrap.dedent(
            """
            name: greet
            params: {who: {type: string, required: true}}
            steps:
              - {id: hi, run: echo, with: {text: "hi {{ params.who }}"}}
            """
        ).lstrip()
    )
    missing = _maestro(tmp_path, "submit", str(workflow))
    assert missing.returncode == 1 and "who" in missing.stderr

    submitted = _maestro(tmp_path, "submit", str(workflow), "--param", "who=cli")
    assert submitted.returncode == 0, submitted.stderr
    request_id = submitted.stdout.strip()
    assert len(request_id) == 32
    refused = _maestro(tmp_path, "submit", str(workflow), "-p", "who=x", "--tenant", "acme")
    refused_id = refused.stdout.strip()

    pending = _maestro(tmp_path, "requests", "--status", "pending")
    assert request_id in pending.stdout and refused_id in pending.stdout

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        loaded = load_workflows([workflow.parent])
        tick = evaluate_requests(instance, gate_workflows(loaded.workflows), PolicyEngineResource())
    assert [r.run_key for r in tick.run_requests] == [request_id]
    assert tick.run_requests[0].run_config == {"params": {"who": "cli"}}

    listing = _maestro(tmp_path, "requests", "--format", "json")
    statuses = {r["id"]: r["status"] for r in json.loads(listing.stdout)}
    assert statuses == {request_id: "admitted", refused_id: "refused"}

    decisions = _maestro(tmp_path, "decisions", "--tenant", "acme")
    assert decisions.returncode == 0, decisions.stderr
    assert "DENY" in decisions.stdout and f"request {refused_id}" in decisions.stdout
    assert "tenant_mismatch: workflow 'greet' belongs to tenant 'default'" in decisions.stdout
    assert request_id not in _maestro(tmp_path, "decisions", "--tenant", "acme").stdout

    ran = _maestro(tmp_path, "run", str(workflow), "-p", "who=direct")
    assert ran.returncode == 0, ran.stderr
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        run_id = instance.get_run_ids(limit=1)[0]
    by_run = json.loads(_maestro(tmp_path, "decisions", "--run", run_id, "--format", "json").stdout)
    assert sorted((d["kind"], d["step_id"], d["allow"]) for d in by_run) == [
        ("step", "hi", True),
        ("workflow", None, True),
    ]


def test_policies_push_to_an_opa_server_and_eval_against_it(tmp_path: Path) -> None:
    state = OpaStandIn()
    payload = {
        "tenant": "globex",
        "run_tenant": "globex",
        "environment": "dev",
        "workflow": "w",
        "run_id": "r",
        "step": {
            "id": "s",
            "plugin": "shell",
            "models": [],
            "hosts": [],
            "secrets": ["AWS_KEY"],
            "estimated_cost_usd": 0,
        },
        "run": {"spend_usd": 0, "budget_usd": None},
        "tenant_spend_usd": 0,
    }
    with serve_http(handler_for(state)) as url:
        pushed = _maestro(tmp_path, "policies", "push", "--url", url)
        assert pushed.returncode == 0, pushed.stderr
        assert "pushed policy maestro/step" in pushed.stdout
        assert f"policy version {PolicySet.load().version}" in pushed.stdout
        remote = _maestro(
            tmp_path, "policies", "eval", "step", "-", "--url", url, stdin=json.dumps(payload)
        )
    local = _maestro(tmp_path, "policies", "eval", "step", "-", stdin=json.dumps(payload))
    assert remote.returncode == local.returncode == 1
    assert (
        json.loads(remote.stdout)["deny"]
        == json.loads(local.stdout)["deny"]
        == ["secret_not_allowed: tenant 'globex' may not read secret 'AWS_KEY' (step 's')"]
    )
    assert set(state.modules) == {"maestro/lib", "maestro/step", "maestro/workflow"}


def test_the_shipped_dagster_yaml_carries_each_tenants_concurrency_limit(tmp_path: Path) -> None:
    shipped = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())[
        "run_coordinator"
    ]
    expected = run_coordinator_config(PolicySet.load())
    assert shipped["config"] == expected
    tenants = PolicySet.load().tenants
    limits = {
        e["value"]: e["limit"]
        for e in expected["tag_concurrency_limits"]
        if isinstance(e["value"], str)
    }
    assert limits == {name: t["max_concurrent_runs"] for name, t in tenants.items()}
    printed = _maestro(tmp_path, "policies", "concurrency")
    assert yaml.safe_load(printed.stdout)["run_coordinator"] == shipped
