"""The numbers behind `maestro metrics serve`, read from the Dagster instance and the policy store.

Everything comes from what the instance and the store already hold (run status events, each
run's step events, the cost ledger, the decision audit), so the numbers do not depend on which
process ran a step, and nothing is counted in memory only.

Incremental reading. Each source is read by a `Watermark`: rows with a timestamp after it are
read; a row is counted once, by its id (kept while it is inside the recount horizon); then the
watermark moves to `now - horizon`. So a row whose transaction commits a little after a newer
one (PostgreSQL hands out ids and timestamps before commit) is still counted, and each scrape
reads only the last `horizon` seconds of each source, not the history. The counters, the
watermarks and the ids seen form one `MetricsState`, saved as JSON in the policy store with a
compare-and-set (`PolicyStore.save_metrics_state`), so a restarted exporter carries on where it
stopped and two exporters sharing a state name never count a row twice.

A run's step metrics (durations, retries, artifact bytes) are read from its event log once,
when its run-status event (success, failure, canceled) is counted. Gauges (active and queued
runs per tenant) are read live on every scrape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg

from resources.dagster_private import IN_PROGRESS_RUN_STATUSES, job_snapshot_nodes
from resources.policy.store import PolicyStore
from resources.run_tags import DEFAULT_TENANT, TENANT_TAG, WORKFLOW_TAG

DURATION_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
    1800, 3600, 7200, 14400, 28800, 86400,
)  # fmt: skip
"""Seconds, up to a day: Maestro steps and runs take from milliseconds to hours."""
DEFAULT_HORIZON_SECONDS = 120.0
"""How far back each scrape re-reads a source for rows that committed late."""
DEFAULT_STATE_NAME = "default"
UNKNOWN = "unknown"

_RunEnd = Literal[
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
]
_RUN_END_EVENTS: tuple[_RunEnd, ...] = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
_STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_UP_FOR_RETRY,
    dg.DagsterEventType.HANDLED_OUTPUT,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}
_PAGE = 1000
_POLICY_NAMES = {"workflow": "maestro.workflow", "step": "maestro.step"}


# ---------------------------------------------------------------- state


@dataclass
class Histogram:
    """Counts per bucket (not cumulative; the last one is +Inf), their sum and count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    sum: float = 0.0

    def observe(self, value: float) -> None:
        index = next(
            (i for i, bound in enumerate(DURATION_BUCKETS) if value <= bound),
            len(DURATION_BUCKETS),
        )
        self.counts[index] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs as Prometheus wants them, ending with +Inf."""
        total, pairs = 0, []
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), self.counts, strict=True):
            total += count
            pairs.append(("+Inf" if bound == float("inf") else f"{bound:g}", total))
        return pairs


@dataclass
class Watermark:
    """Rows of one source with a timestamp after `after` are read; `seen` holds the ids of
    those counted so far (id -> timestamp), so a row read twice counts once."""

    after: float = 0.0
    seen: dict[str, float] = field(default_factory=dict)

    def fresh(self, row_id: str, timestamp: float) -> bool:
        """True the first time a row is offered (and marks it seen)."""
        if row_id in self.seen or timestamp <= self.after:
            return False
        self.seen[row_id] = timestamp
        return True

    def advance(self, now: float, horizon: float) -> None:
        """Forget what is older than the horizon: it will not be read again."""
        self.after = max(self.after, now - horizon)
        self.seen = {k: ts for k, ts in self.seen.items() if ts > self.after}


Labels = tuple[str, ...]


@dataclass
class MetricsState:
    """Every counter and histogram the exporter shows, and where each source was read up to."""

    runs: dict[Labels, int] = field(default_factory=dict)  # (workflow, tenant, status)
    run_durations: dict[Labels, Histogram] = field(default_factory=dict)  # (workflow, status)
    step_durations: dict[Labels, Histogram] = field(default_factory=dict)  # (workflow, plugin)
    step_retries: dict[Labels, int] = field(default_factory=dict)  # (workflow, plugin)
    costs: dict[Labels, float] = field(default_factory=dict)  # (tenant, workflow, plugin)
    decisions: dict[Labels, int] = field(default_factory=dict)  # (decision, policy)
    artifact_bytes: dict[Labels, int] = field(default_factory=dict)  # (dedup,)
    run_events: Watermark = field(default_factory=Watermark)
    ledger: Watermark = field(default_factory=Watermark)
    audit: Watermark = field(default_factory=Watermark)

    _COUNTERS = ("runs", "step_retries", "costs", "decisions", "artifact_bytes")
    _HISTOGRAMS = ("run_durations", "step_durations")
    _WATERMARKS = ("run_events", "ledger", "audit")

    def to_json(self) -> str:
        data: dict[str, Any] = {
            name: [[list(k), v] for k, v in sorted(getattr(self, name).items())]
            for name in self._COUNTERS
        }
        for name in self._HISTOGRAMS:
            data[name] = [
                [list(k), h.counts, h.sum] for k, h in sorted(getattr(self, name).items())
            ]
        for name in self._WATERMARKS:
            mark: Watermark = getattr(self, name)
            data[name] = {"after": mark.after, "seen": mark.seen}
        data["buckets"] = list(DURATION_BUCKETS)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MetricsState:
        data = json.loads(text)
        state = cls()
        for name in cls._COUNTERS:
            setattr(state, name, {tuple(k): v for k, v in data.get(name, [])})
        same_buckets = data.get("buckets") == list(DURATION_BUCKETS)
        for name in cls._HISTOGRAMS:
            if same_buckets:  # a new bucket layout starts the histograms afresh
                setattr(state, name, {tuple(k): Histogram(c, s) for k, c, s in data.get(name, [])})
        for name in cls._WATERMARKS:
            mark = data.get(name, {})
            setattr(state, name, Watermark(mark.get("after", 0.0), dict(mark.get("seen", {}))))
        return state


def _add(counter: dict[Labels, Any], labels: Labels, amount: float = 1) -> None:
    counter[labels] = counter.get(labels, 0) + amount


# ---------------------------------------------------------------- reading the sources


def _run_labels(record: Any | None, job_name: str) -> tuple[str, str]:
    """(workflow, tenant) of a run, from its tags (the job name for a run of another job)."""
    tags = record.dagster_run.tags if record is not None else {}
    return tags.get(WORKFLOW_TAG, job_name or UNKNOWN), tags.get(TENANT_TAG, DEFAULT_TENANT)


def _status_changes(instance: dg.DagsterInstance, after: float) -> Iterator[dg.EventLogRecord]:
    """Run success/failure/canceled events with a timestamp after `after` (the instance's index
    of run status events: present on SQLite, whose step events are sharded per run, too)."""
    for event_type in _RUN_END_EVENTS:
        records_filter = dg.RunStatusChangeRecordsFilter(event_type, after_timestamp=after)
        cursor = None
        while True:
            page = instance.fetch_run_status_changes(
                records_filter, limit=_PAGE, cursor=cursor, ascending=True
            )
            yield from page.records
            if not page.has_more:
                break
            cursor = page.cursor


_PLUGINS_BY_SNAPSHOT: dict[str, Mapping[str, str]] = {}  # snapshots are content-addressed


def _plugins_by_node(instance: dg.DagsterInstance, snapshot_id: str) -> Mapping[str, str]:
    """Node name -> plugin, for the nodes that run a step (not a for_each's fan-out or
    collect), from the job snapshot's op tags (`maestro/plugin`, `maestro/step_id`)."""
    known = _PLUGINS_BY_SNAPSHOT.get(snapshot_id)
    if known is not None:
        return known
    plugins = {
        node.node_name: node.op_tags["maestro/plugin"]
        for node in job_snapshot_nodes(instance, snapshot_id)
        if node.op_tags.get("maestro/step_id") == node.node_name
        and "maestro/plugin" in node.op_tags
    }
    if len(_PLUGINS_BY_SNAPSHOT) > 1024:
        _PLUGINS_BY_SNAPSHOT.clear()
    _PLUGINS_BY_SNAPSHOT[snapshot_id] = plugins
    return plugins


def _node(step_key: str) -> str:
    """`greet[2]` -> `greet`: a for_each item's step key names its node and its item."""
    return step_key.split("[", 1)[0]


def _meta(metadata: Mapping[str, Any], key: str) -> Any:
    value = metadata.get(key)
    return getattr(value, "value", value)


def count_run_steps(
    state: MetricsState, instance: dg.DagsterInstance, record: Any, workflow: str
) -> None:
    """Step durations (of each step's last attempt), retries and artifact bytes of one run."""
    run = record.dagster_run
    plugins = _plugins_by_node(instance, run.job_snapshot_id) if run.job_snapshot_id else {}
    started: dict[str, float] = {}
    connection = instance.get_records_for_run(run.run_id, of_type=_STEP_EVENTS)
    for entry in (r.event_log_entry for r in connection.records):
        event = entry.dagster_event
        if event is None:
            continue
        kind, data = event.event_type, event.event_specific_data
        if kind == dg.DagsterEventType.HANDLED_OUTPUT:
            _count_artifact(state, getattr(data, "metadata", {}))
            continue
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = getattr(data, "materialization", None)
            _count_artifact(state, getattr(materialization, "metadata", {}))
            continue
        key = event.step_key or ""
        plugin = plugins.get(_node(key))
        if plugin is None:  # a fan-out or collect op, or not a Maestro step
            continue
        if kind == dg.DagsterEventType.STEP_START:
            started[key] = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            _add(state.step_retries, (workflow, plugin))
        else:  # success or failure: the step's last attempt ended
            millis = getattr(data, "duration_ms", None)
            begun = started.get(key, entry.timestamp)
            seconds = millis / 1000 if millis is not None else entry.timestamp - begun
            state.step_durations.setdefault((workflow, plugin), Histogram()).observe(seconds)


def _count_artifact(state: MetricsState, metadata: Mapping[str, Any]) -> None:
    """Bytes the IO manager stored (`dedup: false`) or found already stored (`dedup: true`)."""
    size, dedup = _meta(metadata, "size"), _meta(metadata, "dedup")
    if isinstance(size, int) and isinstance(dedup, bool) and _meta(metadata, "sha256"):
        _add(state.artifact_bytes, (str(dedup).lower(),), size)


def read_runs(state: MetricsState, instance: dg.DagsterInstance) -> bool:
    """Count the runs that ended since the watermark, and their steps."""
    fresh = [
        r
        for r in _status_changes(instance, state.run_events.after)
        if state.run_events.fresh(str(r.storage_id), r.timestamp)
    ]
    if not fresh:
        return False
    run_ids = sorted({r.run_id for r in fresh})
    records = {}
    for start in range(0, len(run_ids), _PAGE):  # a first scrape may see the whole history
        chunk = dg.RunsFilter(run_ids=run_ids[start : start + _PAGE])
        records.update({rec.dagster_run.run_id: rec for rec in instance.get_run_records(chunk)})
    for event in fresh:
        record = records.get(event.run_id)
        job_name = event.event_log_entry.job_name or ""
        workflow, tenant = _run_labels(record, job_name)
        status = _event_status(event)
        _add(state.runs, (workflow, tenant, status))
        if record is None:
            continue  # deleted since: counted, but its duration and steps are gone
        if record.start_time is not None and record.end_time is not None:
            histogram = state.run_durations.setdefault((workflow, status), Histogram())
            histogram.observe(max(0.0, record.end_time - record.start_time))
        count_run_steps(state, instance, record, workflow)
    return True


_END_STATUS = {
    dg.DagsterEventType.RUN_SUCCESS: dg.DagsterRunStatus.SUCCESS.value,
    dg.DagsterEventType.RUN_FAILURE: dg.DagsterRunStatus.FAILURE.value,
    dg.DagsterEventType.RUN_CANCELED: dg.DagsterRunStatus.CANCELED.value,
}


def _event_status(event: dg.EventLogRecord) -> str:
    kind = event.event_log_entry.dagster_event_type
    return _END_STATUS.get(kind, UNKNOWN) if kind is not None else UNKNOWN


def read_costs(state: MetricsState, store: PolicyStore) -> bool:
    changed = False
    for row in store.costs_recorded_after(state.ledger.after):
        if state.ledger.fresh(str(row.id), row.recorded_at):
            _add(state.costs, (row.tenant, row.workflow, row.plugin or UNKNOWN), row.cost_usd)
            changed = True
    return changed


def read_decisions(state: MetricsState, store: PolicyStore) -> bool:
    changed = False
    for decision_id, created_at, kind, allow in store.decision_outcomes(
        created_after=state.audit.after
    ):
        if state.audit.fresh(decision_id, created_at):
            policy = _POLICY_NAMES.get(kind, kind)
            _add(state.decisions, ("allow" if allow else "deny", policy))
            changed = True
    return changed


def update(
    state: MetricsState,
    instance: dg.DagsterInstance,
    store: PolicyStore,
    now: float,
    horizon: float = DEFAULT_HORIZON_SECONDS,
) -> MetricsState:
    """Count what each source added since the state's watermarks; then move them on."""
    read_runs(state, instance)
    read_costs(state, store)
    read_decisions(state, store)
    for mark in (state.run_events, state.ledger, state.audit):
        mark.advance(now, horizon)
    return state


def refresh(
    instance: dg.DagsterInstance,
    store: PolicyStore,
    name: str = DEFAULT_STATE_NAME,
    horizon: float = DEFAULT_HORIZON_SECONDS,
    now: float | None = None,
) -> MetricsState:
    """Load the saved state, count what is new, save it back (compare-and-set; on a conflict
    with another exporter, start again from what it saved)."""
    for _attempt in range(5):
        saved = store.metrics_state(name)
        version, before = saved if saved is not None else (0, MetricsState().to_json())
        state = update(MetricsState.from_json(before), instance, store, now or time.time(), horizon)
        after = state.to_json()
        if after == before or store.save_metrics_state(name, version, after):
            return state
    raise RuntimeError(f"metrics state {name!r} keeps changing under this exporter")


@dataclass(frozen=True)
class LiveRuns:
    """Runs in flight (the gate's `active_runs`: starting, started, canceling, suspended) and
    runs waiting in the queue, per tenant, now."""

    active: Mapping[str, int]
    queued: Mapping[str, int]


def live_runs(instance: dg.DagsterInstance) -> LiveRuns:
    active: dict[str, int] = {}
    queued: dict[str, int] = {}
    statuses = [*IN_PROGRESS_RUN_STATUSES, dg.DagsterRunStatus.QUEUED]
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=statuses)):
        tenant = record.dagster_run.tags.get(TENANT_TAG, DEFAULT_TENANT)
        counts = queued if record.dagster_run.status == dg.DagsterRunStatus.QUEUED else active
        counts[tenant] = counts.get(tenant, 0) + 1
    return LiveRuns(active, queued)


# ---------------------------------------------------------------- exposition


@dataclass(frozen=True)
class Family:
    """One metric family, independent of the Prometheus client (exposition.py renders it)."""

    name: str
    kind: str  # counter, gauge, histogram
    help: str
    labels: tuple[str, ...]
    samples: Sequence[tuple[Labels, Any]]  # value, or a Histogram


def families(state: MetricsState, live: LiveRuns) -> list[Family]:
    """What `/metrics` shows. Gauges name every tenant seen, with 0 when none are running."""
    tenants = sorted({k[1] for k in state.runs} | set(live.active) | set(live.queued))

    def items(counter: Mapping[Labels, Any]) -> list[tuple[Labels, Any]]:
        return sorted(counter.items())

    return [
        Family(
            "maestro_workflow_runs",
            "counter",
            "Runs that ended, by workflow, tenant and final status.",
            ("workflow", "tenant", "status"),
            items(state.runs),
        ),
        Family(
            "maestro_workflow_duration_seconds",
            "histogram",
            "Run durations (start to end) of the runs that ended.",
            ("workflow", "status"),
            items(state.run_durations),
        ),
        Family(
            "maestro_step_duration_seconds",
            "histogram",
            "Step durations (each step's last attempt) of the runs that ended.",
            ("workflow", "plugin"),
            items(state.step_durations),
        ),
        Family(
            "maestro_step_retries",
            "counter",
            "Step attempts that failed and were retried.",
            ("workflow", "plugin"),
            items(state.step_retries),
        ),
        Family(
            "maestro_cost_usd",
            "counter",
            "Spend recorded in the cost ledger, in US dollars.",
            ("tenant", "workflow", "plugin"),
            items(state.costs),
        ),
        Family(
            "maestro_policy_decisions",
            "counter",
            "Policy decisions (maestro.workflow, maestro.step) by outcome.",
            ("decision", "policy"),
            items(state.decisions),
        ),
        Family(
            "maestro_artifact_bytes",
            "counter",
            "Bytes of step outputs put in the artifact store; dedup=true: already stored.",
            ("dedup",),
            items(state.artifact_bytes),
        ),
        Family(
            "maestro_active_runs",
            "gauge",
            "Runs in flight (starting, started, canceling), per tenant: the policy's active_runs.",
            ("tenant",),
            [((t,), live.active.get(t, 0)) for t in tenants],
        ),
        Family(
            "maestro_queued_runs",
            "gauge",
            "Runs waiting in the run queue, per tenant (queue depth).",
            ("tenant",),
            [((t,), live.queued.get(t, 0)) for t in tenants],
        ),
    ]


def metric_names(fams: Iterable[Family]) -> set[str]:
    """Sample names as exposed: counters end in _total, histograms have _bucket/_sum/_count."""
    names: set[str] = set()
    for fam in fams:
        if fam.kind == "counter":
            names.add(f"{fam.name}_total")
        elif fam.kind == "histogram":
            names |= {f"{fam.name}_bucket", f"{fam.name}_sum", f"{fam.name}_count"}
        else:
            names.add(fam.name)
    return names
