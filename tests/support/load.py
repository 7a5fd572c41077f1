"""Load on the real stack (`maestro deploy local`: webserver + daemon on PostgreSQL): many runs
of a 10-step workflow for two tenants with their own run limits, submitted through GraphQL at
once, while the runs in progress per tenant are sampled every 0.5 s. Used by
tests/faults/test_load.py (a few runs) and bench/load.py (200)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

from resources.policy.engine import PolicySet
from resources.run_tags import TENANT_TAG
from tests.support.policy_data import policies_with_tenant
from tests.support.stack import running_stack

LIMITS = {"load_a": 3, "load_b": 2}
QUEUE = 4
STEPS = 10
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
ENDED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


HOLD_S = 3
"""How long the last step of each run waits, so that runs overlap and the limits are tested."""


def workflow(tenant: str) -> str:
    """Ten steps: a first step, a fan-out of eight, a last one that holds the run HOLD_S."""
    middle = "\n".join(f"      - {{id: s{i}, run: echo, with: {{n: {i}}}}}" for i in range(1, 9))
    return (
        f"name: {tenant}_flow\ntenant: {tenant}\nstages:\n"
        "  - name: first\n    steps:\n      - {id: start, run: echo, with: {n: 0}}\n"
        f"  - name: fan\n    parallel:\n{middle}\n"
        "  - name: last\n    steps:\n"
        f"      - {{id: finish, run: shell, with: {{command: sleep {HOLD_S}}}}}\n"
    )


def load_policies(root: Path) -> Path:
    """The shipped policies with the load tenants (their `max_concurrent_runs` from LIMITS) and
    the whole queue at QUEUE."""
    folder = policies_with_tenant(root, "unused", dict(PolicySet.load().tenants["default"]))
    tenants_file = folder / "data" / "tenants.json"
    data = json.loads(tenants_file.read_text())
    del data["tenants"]["unused"]
    for name, limit in LIMITS.items():
        data["tenants"][name] = {**data["tenants"]["default"], "max_concurrent_runs": limit}
    tenants_file.write_text(json.dumps(data))
    queue_file = folder / "data" / "run_queue.json"
    queue = json.loads(queue_file.read_text())
    queue["run_queue"]["max_concurrent_runs"] = QUEUE
    queue_file.write_text(json.dumps(queue))
    return folder


@dataclass
class LoadReport:
    submitted: list[str]
    recorded: int
    statuses: Counter[str]
    lost: list[str]
    unfinished: int
    duplicated: int
    step_successes: int
    peaks: Counter[str] = field(default_factory=Counter)
    most_in_progress: int = 0
    runs_per_minute: float = 0.0

    @property
    def nothing_lost(self) -> bool:
        """Every run SUCCESS with all its steps, none lost or duplicated, every limit held."""
        return (
            self.statuses.get("SUCCESS", 0) == len(self.submitted)
            and not self.lost
            and not self.duplicated
            and self.step_successes == STEPS * len(self.submitted)
            and all(self.peaks[tenant] <= limit for tenant, limit in LIMITS.items())
            and self.most_in_progress <= QUEUE
        )


def _sample(
    instance: dg.DagsterInstance, stop: threading.Event, peaks: Counter[str], most: list[int]
) -> None:
    while not stop.is_set():
        runs = instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS))
        for tenant, count in Counter(r.tags.get(TENANT_TAG, "?") for r in runs).items():
            peaks[tenant] = max(peaks[tenant], count)
        most[0] = max(most[0], len(runs))
        stop.wait(0.5)


def run_load(root: Path, postgres_url: str, runs: int, timeout_s: float = 3600) -> LoadReport:
    """Start the stack on `postgres_url` (DAGSTER_PG_* must name it), submit `runs` runs
    alternating between the tenants, wait for all to end, and count what happened."""
    files = {f"{tenant}.yaml": workflow(tenant) for tenant in LIMITS}
    jobs = {f"{tenant}_flow" for tenant in LIMITS}
    policies = load_policies(root)
    with (
        running_stack(root / "stack", postgres_url, workflows=files, policies=policies) as stack,
        stack.instance() as instance,
    ):
        client = DagsterGraphQLClient("127.0.0.1", port_number=stack.port)
        peaks: Counter[str] = Counter()
        most = [0]
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(instance, stop, peaks, most))
        sampler.start()
        try:
            first = time.time()
            tenants = sorted(LIMITS)
            submitted = [
                client.submit_job_execution(f"{tenants[i % len(tenants)]}_flow", "maestro")
                for i in range(runs)
            ]
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                ended = instance.get_runs_count(dg.RunsFilter(run_ids=submitted, statuses=ENDED))
                if ended >= len(submitted):
                    break
                time.sleep(1)
        finally:
            stop.set()
            sampler.join()
        records = [
            r
            for r in instance.get_run_records(dg.RunsFilter(), limit=runs * 2 + 10)
            if r.dagster_run.job_name in jobs
        ]
        ids = Counter(r.dagster_run.run_id for r in records)
        success = dg.DagsterEventType.STEP_SUCCESS
        steps = sum(len(instance.all_logs(run_id, of_type=success)) for run_id in ids)
        last_end = max((r.end_time or time.time()) for r in records) if records else time.time()
        return LoadReport(
            submitted=submitted,
            recorded=len(records),
            statuses=Counter(r.dagster_run.status.value for r in records),
            lost=[run_id for run_id in submitted if run_id not in ids],
            unfinished=sum(1 for r in records if r.dagster_run.status not in ENDED),
            duplicated=sum(c - 1 for c in ids.values()) + max(0, len(records) - len(submitted)),
            step_successes=steps,
            peaks=peaks,
            most_in_progress=most[0],
            runs_per_minute=len(records) / max((last_end - first) / 60, 1e-9),
        )
