"""`maestro metrics serve` for real: runs on a SQLite or PostgreSQL instance, the exposition text
fetched over HTTP, counted once across scrapes and restarts; the Grafana dashboard's queries
name only metrics the server exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from resources.artifacts import ArtifactsIOManager
from tests.support.observed import (
    instance_of,
    launch,
    metrics_server,
    parse,
    run_workflow,
    value,
)
from tests.support.paths import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "maestro.json"

OK = """
name: obs-ok
steps:
  - {id: say, run: shell, with: {command: ["echo", "hello"]}}
  - {id: note, run: echo, depends_on: say, with: {x: 1}}
"""

RETRY = """
name: obs-retry
steps:
  - id: flaky
    run: shell
    retry: {max_attempts: 2, backoff: 0s}
    with: {command: ["sh", "-c", "if [ -f {marker} ]; then exit 0; fi; touch {marker}; exit 1"]}
"""

PAID = """
name: obs-paid
steps:
  - {id: spend, run: paid, with: {price: 0.25}}
  - {id: spend_more, run: paid, depends_on: spend, with: {price: 0.5}}
"""

QUEUED = """
name: obs-queued
tenant: globex
steps:
  - {id: e, run: echo, with: {x: 1}}
"""

DENIED = """
name: obs-denied
tenant: acme
steps:
  - {id: sh, run: shell, with: {command: ["true"]}}
"""


def _stored_bytes(home: Path) -> int:
    """Sizes of every pointer the artifact store holds: what the IO manager put there."""
    store = ArtifactsIOManager(location=str(home / "artifacts")).open_store()
    return sum(
        store.read_pointer(tenant, info.key).size
        for tenant in store.tenants()
        for info in store.pointers(tenant)
    )


def test_metrics_over_http_count_each_run_once_across_scrapes_and_restarts(
    observed_home: Path, tmp_path: Path
) -> None:
    home = observed_home
    for _ in range(2):
        assert run_workflow(home, OK).success
    marker = tmp_path / "flaky.marker"
    assert run_workflow(home, RETRY.replace("{marker}", str(marker))).success
    assert run_workflow(home, PAID).success
    denied = run_workflow(home, DENIED)
    assert not denied.success
    workflows = tmp_path / "workflows"  # one queued run of tenant globex: the queue depth
    workflows.mkdir()
    (workflows / "queued.yaml").write_text(QUEUED)
    queued = launch(home, workflows, "obs_queued")

    with metrics_server(home) as server:
        first = server.scrape()
        samples = parse(first)
        runs = "maestro_workflow_runs_total"
        assert value(samples, runs, workflow="obs-ok", tenant="default", status="SUCCESS") == 2
        assert value(samples, runs, workflow="obs-retry", tenant="default", status="SUCCESS") == 1
        assert value(samples, runs, workflow="obs-denied", tenant="acme", status="FAILURE") == 1
        durations = "maestro_workflow_duration_seconds_count"
        assert value(samples, durations, workflow="obs-ok", status="SUCCESS") == 2
        # Buckets reach hours: the +Inf bucket is not the first one above 10 s.
        les = {dict(k[1]).get("le") for k in samples if k[0].endswith("_bucket")}
        assert {"3600", "86400", "+Inf"} <= les
        steps = "maestro_step_duration_seconds_count"
        assert value(samples, steps, workflow="obs-ok", plugin="shell") == 2
        assert value(samples, steps, workflow="obs-ok", plugin="echo") == 2
        assert value(samples, steps, workflow="obs-paid", plugin="paid") == 2
        assert (
            value(samples, "maestro_step_retries_total", workflow="obs-retry", plugin="shell") == 1
        )
        assert value(samples, "maestro_step_retries_total", workflow="obs-ok", plugin="shell") == 0
        cost = "maestro_cost_usd_total"
        assert value(samples, cost, tenant="default", workflow="obs-paid", plugin="paid") == 0.75
        decisions = "maestro_policy_decisions_total"
        # One maestro.workflow decision per run (acme may not run shell: obs-denied is refused
        # before any step); maestro.step per attempt that reached its plugin (4 + 2 + 2).
        assert value(samples, decisions, decision="allow", policy="maestro.workflow") == 4
        assert value(samples, decisions, decision="deny", policy="maestro.workflow") == 1
        assert value(samples, decisions, decision="allow", policy="maestro.step") == 8
        assert value(samples, decisions, decision="deny", policy="maestro.step") == 0
        written = value(samples, "maestro_artifact_bytes_total", dedup="false")
        deduped = value(samples, "maestro_artifact_bytes_total", dedup="true")
        assert deduped > 0  # the second obs-ok run stored the same outputs again
        assert written + deduped == _stored_bytes(home)
        assert value(samples, "maestro_queued_runs", tenant="globex") == 1
        assert value(samples, "maestro_active_runs", tenant="globex") == 0  # not started
        assert value(samples, "maestro_active_runs", tenant="default") == 0

        # The dashboard's every query names a metric this server exposes.
        exposed = {name for name, _ in samples}
        for expr in _dashboard_queries():
            names = set(re.findall(r"\bmaestro_[a-z_]+\b", expr))
            assert names, f"a dashboard query names no Maestro metric: {expr}"
            assert names <= exposed, f"{expr}: {sorted(names - exposed)} not exposed"

        # A second scrape with nothing new changes no counter; one more run adds just itself.
        assert _counters(parse(server.scrape())) == _counters(samples)
        assert run_workflow(home, OK).success
        second = parse(server.scrape())
        assert value(second, runs, workflow="obs-ok", tenant="default", status="SUCCESS") == 3
        assert value(second, durations, workflow="obs-ok", status="SUCCESS") == 3
        assert value(second, steps, workflow="obs-ok", plugin="shell") == 3
        assert value(second, decisions, decision="allow", policy="maestro.workflow") == 5
        assert value(second, cost, tenant="default", workflow="obs-paid", plugin="paid") == 0.75
        with instance_of(home) as instance:
            instance.run_coordinator.cancel_run(queued)  # dequeued: ends CANCELED
        assert value(parse(server.scrape()), "maestro_queued_runs", tenant="globex") == 0

    # A restarted server carries on from the saved state: nothing counted twice.
    with metrics_server(home) as server:
        again = parse(server.scrape())
        assert _counters(again) == _counters(second) | _canceled_queue_run(again)
        assert run_workflow(home, PAID).success
        after = parse(server.scrape())
        assert value(after, cost, tenant="default", workflow="obs-paid", plugin="paid") == 1.5
        assert value(after, runs, workflow="obs-paid", tenant="default", status="SUCCESS") == 2


def _counters(samples: dict) -> dict:
    """The counter and histogram samples (what must never be counted twice)."""
    return {
        key: v
        for key, v in samples.items()
        if key[0].endswith(("_total", "_bucket", "_count", "_sum"))
    }


def _canceled_queue_run(samples: dict) -> dict:
    """The queued run canceled in between ended as CANCELED: counted once, in the new server."""
    key = (
        "maestro_workflow_runs_total",
        frozenset({"workflow": "obs-queued", "tenant": "globex", "status": "CANCELED"}.items()),
    )
    assert samples.get(key) == 1
    return {key: 1.0}


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(queries) >= 6
    return queries


def test_the_dashboard_covers_what_the_issue_asks_for() -> None:
    """Runs and failures per workflow, step duration percentiles per plugin, cost per tenant per
    day, policy denials, queue depth: one panel each at least, on the Prometheus data source."""
    dashboard = json.loads(DASHBOARD.read_text())
    text = " ".join(_dashboard_queries())
    assert 'status="FAILURE"' in text and "by (workflow" in text
    assert "histogram_quantile(0.95" in text and "by (plugin, le)" in text
    assert "increase(maestro_cost_usd_total[1d])" in text and "by (tenant)" in text
    assert 'decision="deny"' in text
    assert "maestro_queued_runs" in text
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
