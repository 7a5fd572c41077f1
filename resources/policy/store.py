"""Durable state of the policy gate: run requests, the decision audit, run admissions, costs,
the metrics exporter's cursors, and run heartbeats.

It lives beside the Dagster instance's own storage: in its PostgreSQL database when the instance
stores runs there, else in `maestro_policy.db` (SQLite) in the instance's folder. Tables are
created on first use, and columns added since are added to existing tables (`_COLUMNS_ADDED`);
every write is one short transaction, safe from several processes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from resources.policy.engine import Decision

metadata = sa.MetaData()

run_requests = sa.Table(
    "maestro_run_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("tenant", sa.String(255), nullable=False),
    sa.Column("requester", sa.String(255), nullable=False),
    sa.Column("workflow", sa.String(255), nullable=False),
    sa.Column("job_name", sa.String(255), nullable=False),
    sa.Column("source_file", sa.Text, nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("decision_id", sa.String(32)),
    sa.Column("run_id", sa.String(64)),
    sa.Column("reasons", sa.Text, nullable=False, default="[]"),  # JSON list
)

decisions = sa.Table(
    "maestro_policy_decisions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("tenant", sa.String(255), nullable=False, index=True),
    sa.Column("workflow", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(64), index=True),
    sa.Column("step_id", sa.String(255)),
    sa.Column("request_id", sa.String(32)),
    sa.Column("allow", sa.Boolean, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list
    sa.Column("policy_version", sa.String(64), nullable=False),
    sa.Column("input_digest", sa.String(64), nullable=False),
    sa.Column("engine", sa.String(16), nullable=False),
)

run_admissions = sa.Table(
    "maestro_run_admissions",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("decision_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

cost_ledger = sa.Table(
    "maestro_cost_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recorded_at", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("tenant", sa.String(255), nullable=False),
    sa.Column("workflow", sa.String(255), nullable=False),
    sa.Column("step_id", sa.String(255), nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
    # Added after the first release: rows recorded before it have "" (see _COLUMNS_ADDED).
    sa.Column("plugin", sa.String(255), nullable=False, server_default=""),
    sa.Index("ix_maestro_cost_ledger_tenant_time", "tenant", "recorded_at"),
    sa.Index("ix_maestro_cost_ledger_run", "run_id"),
    sa.Index("ix_maestro_cost_ledger_time", "recorded_at"),
)

metrics_state = sa.Table(
    "maestro_metrics_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # JSON (resources/observability/metrics.py)
)

run_heartbeats = sa.Table(
    "maestro_run_heartbeats",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("process_start", sa.String(32)),  # /proc/<pid>/stat start time: pid reuse
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("beat_at", sa.Float, nullable=False, index=True),
    sa.Column("dead_at", sa.Float),  # set once, by the detector that marked the run failed
    sa.Column("child_groups", sa.Text),  # JSON [[pgid, start], ...]: the steps' commands
)
"""The process running a run beats here (resources/liveness.py); a stale row is a dead run."""

_COLUMNS_ADDED: dict[str, tuple[tuple[str, str], ...]] = {
    cost_ledger.name: (("plugin", "VARCHAR(255) NOT NULL DEFAULT ''"),),
}
"""Columns added to a table after it first shipped, with their DDL: `create_all` creates missing
tables but never alters existing ones, so these are added with `ALTER TABLE ... ADD COLUMN`
(SQLite and PostgreSQL both accept it, and keep every row, with the default)."""
_INDEXES_ADDED = tuple(i for i in cost_ledger.indexes if i.name == "ix_maestro_cost_ledger_time")
"""Indexes added to an existing table since it first shipped (created if missing)."""

PENDING, ADMITTED, REFUSED, LAUNCHED = "pending", "admitted", "refused", "launched"


def new_id() -> str:
    return uuid.uuid4().hex


def period_start(period: str, now: datetime | None = None) -> datetime:
    """Start of the budget period holding `now` (UTC): `month` (default) or `day`."""
    now = now or datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown budget_period {period!r} (use month or day)")


@dataclass(frozen=True)
class RunRequest:
    id: str
    created_at: float
    tenant: str
    requester: str
    workflow: str
    job_name: str
    source_file: str
    params: Mapping[str, Any]
    status: str
    decision_id: str | None
    run_id: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DecisionRecord:
    id: str
    created_at: float
    kind: str
    tenant: str
    workflow: str
    run_id: str | None
    step_id: str | None
    request_id: str | None
    allow: bool
    reasons: tuple[str, ...]
    policy_version: str
    input_digest: str
    engine: str


@dataclass(frozen=True)
class CostRecord:
    """One step's spend, as the ledger holds it (`plugin` is "" on rows older than the column)."""

    id: int
    recorded_at: float
    run_id: str
    tenant: str
    workflow: str
    step_id: str
    plugin: str
    cost_usd: float


class PolicyStore:
    """SQLAlchemy Core over one database URL; one engine per URL per process."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite"):
            memory = url in ("sqlite://", "sqlite:///:memory:")
            self.engine = sa.create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=StaticPool if memory else None,
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2)
        for attempt in range(3):  # two processes creating the tables at once: one loses
            try:
                metadata.create_all(self.engine)
                _add_missing_columns(self.engine)
                break
            except sa.exc.SQLAlchemyError:
                if attempt == 2:
                    raise
                time.sleep(0.2)

    @property
    def _dialect(self) -> Any:
        """The dialect module whose `insert` has `on_conflict_do_nothing`."""
        from sqlalchemy.dialects import postgresql, sqlite

        return postgresql if self.engine.dialect.name == "postgresql" else sqlite

    # ------------------------------------------------------------ decisions

    def record_decision(
        self,
        decision: Decision,
        *,
        tenant: str,
        workflow: str,
        engine: str,
        run_id: str | None = None,
        step_id: str | None = None,
        request_id: str | None = None,
    ) -> str:
        decision_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(
                decisions.insert().values(
                    id=decision_id,
                    created_at=time.time(),
                    kind=decision.kind,
                    tenant=tenant,
                    workflow=workflow,
                    run_id=run_id,
                    step_id=step_id,
                    request_id=request_id,
                    allow=decision.allow,
                    reasons=json.dumps(list(decision.reasons)),
                    policy_version=decision.policy_version,
                    input_digest=decision.input_digest,
                    engine=engine,
                )
            )
        return decision_id

    def decision(self, decision_id: str) -> DecisionRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(decisions.select().where(decisions.c.id == decision_id)).first()
        return _decision(row) if row is not None else None

    def decisions(
        self, *, tenant: str | None = None, run_id: str | None = None, limit: int = 200
    ) -> list[DecisionRecord]:
        query = decisions.select().order_by(decisions.c.created_at.desc()).limit(limit)
        if tenant:
            query = query.where(decisions.c.tenant == tenant)
        if run_id:
            query = query.where(decisions.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [_decision(row) for row in conn.execute(query)]

    def decision_outcomes(self, *, created_after: float) -> list[tuple[str, float, str, bool]]:
        """(id, created_at, kind, allow) of every decision made after `created_after`, oldest
        first: what the metrics exporter counts, without the reasons."""
        query = (
            sa.select(decisions.c.id, decisions.c.created_at, decisions.c.kind, decisions.c.allow)
            .where(decisions.c.created_at > created_after)
            .order_by(decisions.c.created_at, decisions.c.id)
        )
        with self.engine.connect() as conn:
            return [(r.id, r.created_at, r.kind, bool(r.allow)) for r in conn.execute(query)]

    # ------------------------------------------------------------ run admissions

    def admit_run(self, run_id: str, decision_id: str) -> str:
        """Record the run's workflow decision unless one is there; returns the one that holds.

        Several steps of one run may race here (multiprocess executor): the first insert wins
        and every step reads the winner, so a run has exactly one `maestro.workflow` decision.
        """
        values = {"run_id": run_id, "decision_id": decision_id, "created_at": time.time()}
        with self.engine.begin() as conn:
            conn.execute(
                self._dialect.insert(run_admissions).values(values).on_conflict_do_nothing()
            )
            return conn.execute(
                sa.select(run_admissions.c.decision_id).where(run_admissions.c.run_id == run_id)
            ).scalar_one()

    def run_admission(self, run_id: str) -> DecisionRecord | None:
        query = (
            sa.select(decisions)
            .join(run_admissions, run_admissions.c.decision_id == decisions.c.id)
            .where(run_admissions.c.run_id == run_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _decision(row) if row is not None else None

    # ------------------------------------------------------------ costs

    def record_cost(
        self,
        *,
        run_id: str,
        tenant: str,
        workflow: str,
        step_id: str,
        cost_usd: float,
        plugin: str = "",
        recorded_at: float | None = None,
    ) -> float:
        """Add a step's spend to the ledger; returns the run's total, read in the same
        transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                cost_ledger.insert().values(
                    recorded_at=time.time() if recorded_at is None else recorded_at,
                    run_id=run_id,
                    tenant=tenant,
                    workflow=workflow,
                    step_id=step_id,
                    plugin=plugin,
                    cost_usd=cost_usd,
                )
            )
            return float(conn.execute(_run_spend_query(run_id)).scalar_one())

    def costs(
        self,
        *,
        since: float | None = None,
        tenant: str | None = None,
        run_id: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[CostRecord]:
        """Ledger rows recorded at or after `since` (a Unix time), oldest first."""
        query = cost_ledger.select().order_by(cost_ledger.c.recorded_at, cost_ledger.c.id)
        if since is not None:
            query = query.where(cost_ledger.c.recorded_at >= since)
        if tenant:
            query = query.where(cost_ledger.c.tenant == tenant)
        if run_id:
            query = query.where(cost_ledger.c.run_id == run_id)
        if after_id is not None:
            query = query.where(cost_ledger.c.id > after_id)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_cost(row) for row in conn.execute(query)]

    def run_spend(self, run_id: str) -> float:
        with self.engine.connect() as conn:
            return float(conn.execute(_run_spend_query(run_id)).scalar_one())

    def costs_recorded_after(self, recorded_after: float) -> list[CostRecord]:
        """Ledger rows recorded after `recorded_after`, oldest first (the metrics exporter)."""
        query = (
            cost_ledger.select()
            .where(cost_ledger.c.recorded_at > recorded_after)
            .order_by(cost_ledger.c.recorded_at, cost_ledger.c.id)
        )
        with self.engine.connect() as conn:
            return [_cost(row) for row in conn.execute(query)]

    def tenant_spend(self, tenant: str, since: datetime) -> float:
        query = sa.select(sa.func.coalesce(sa.func.sum(cost_ledger.c.cost_usd), 0.0)).where(
            cost_ledger.c.tenant == tenant, cost_ledger.c.recorded_at >= since.timestamp()
        )
        with self.engine.connect() as conn:
            return float(conn.execute(query).scalar_one())

    # ------------------------------------------------------------ metrics exporter state

    def metrics_state(self, name: str) -> tuple[int, str] | None:
        """(version, JSON) of the exporter state saved under `name`, if any."""
        query = sa.select(metrics_state.c.version, metrics_state.c.state).where(
            metrics_state.c.name == name
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (int(row.version), str(row.state)) if row is not None else None

    def save_metrics_state(self, name: str, version: int, state: str) -> bool:
        """Store `state` as version `version + 1` if the saved one is still `version` (0: none
        yet): a compare-and-set, so two exporters sharing a name never both count a row."""
        now = time.time()
        values = {"name": name, "version": version + 1, "updated_at": now, "state": state}
        with self.engine.begin() as conn:
            if version == 0:
                result = conn.execute(
                    self._dialect.insert(metrics_state).values(values).on_conflict_do_nothing()
                )
            else:
                result = conn.execute(
                    metrics_state.update()
                    .where(metrics_state.c.name == name, metrics_state.c.version == version)
                    .values(values)
                )
        return result.rowcount == 1

    # ------------------------------------------------------------ run requests

    def add_request(
        self,
        *,
        tenant: str,
        requester: str,
        workflow: str,
        job_name: str,
        source_file: str,
        params: Mapping[str, Any],
    ) -> str:
        request_id = new_id()
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                run_requests.insert().values(
                    id=request_id,
                    created_at=now,
                    updated_at=now,
                    tenant=tenant,
                    requester=requester,
                    workflow=workflow,
                    job_name=job_name,
                    source_file=source_file,
                    params=json.dumps(dict(params), sort_keys=True),
                    status=PENDING,
                    reasons="[]",
                )
            )
        return request_id

    def requests(self, statuses: Sequence[str] | None = None) -> list[RunRequest]:
        query = run_requests.select().order_by(run_requests.c.created_at, run_requests.c.id)
        if statuses:
            query = query.where(run_requests.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            return [_request(row) for row in conn.execute(query)]

    def request(self, request_id: str) -> RunRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(run_requests.select().where(run_requests.c.id == request_id)).first()
        return _request(row) if row is not None else None

    def update_request(
        self,
        request_id: str,
        *,
        status: str,
        from_statuses: Iterable[str],
        decision_id: str | None = None,
        run_id: str | None = None,
        reasons: Sequence[str] | None = None,
    ) -> bool:
        """Move a request on, only from the statuses given (a compare-and-set)."""
        values: dict[str, Any] = {"status": status, "updated_at": time.time()}
        if decision_id is not None:
            values["decision_id"] = decision_id
        if run_id is not None:
            values["run_id"] = run_id
        if reasons is not None:
            values["reasons"] = json.dumps(list(reasons))
        with self.engine.begin() as conn:
            result = conn.execute(
                run_requests.update()
                .where(run_requests.c.id == request_id)
                .where(run_requests.c.status.in_(list(from_statuses)))
                .values(values)
            )
        return result.rowcount == 1

    def claim_request_run(self, request_id: str, run_id: str) -> bool:
        """Bind a request to the one run that may use its admission: true for the first run
        to ask (and for that run again), false for any other run naming the request."""
        with self.engine.begin() as conn:
            conn.execute(
                run_requests.update()
                .where(run_requests.c.id == request_id)
                .where(run_requests.c.run_id.is_(None))
                .values(run_id=run_id, updated_at=time.time())
            )
            owner = conn.execute(
                sa.select(run_requests.c.run_id).where(run_requests.c.id == request_id)
            ).scalar()
        return owner == run_id


def _add_missing_columns(engine: sa.Engine) -> None:
    """Add the columns of `_COLUMNS_ADDED` that an existing table lacks (another process may
    add one at the same moment: the caller retries, and the next look finds it there)."""
    inspector = sa.inspect(engine)
    for table, columns in _COLUMNS_ADDED.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        for name, ddl in columns:
            if name not in present:
                with engine.begin() as conn:
                    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
    for index in _INDEXES_ADDED:  # create_all makes indexes only with a new table
        index.create(engine, checkfirst=True)


def _run_spend_query(run_id: str) -> sa.Select[Any]:
    return sa.select(sa.func.coalesce(sa.func.sum(cost_ledger.c.cost_usd), 0.0)).where(
        cost_ledger.c.run_id == run_id
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; no fsync per step
    cursor.close()


def _decision(row: Any) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        created_at=row.created_at,
        kind=row.kind,
        tenant=row.tenant,
        workflow=row.workflow,
        run_id=row.run_id,
        step_id=row.step_id,
        request_id=row.request_id,
        allow=bool(row.allow),
        reasons=tuple(json.loads(row.reasons)),
        policy_version=row.policy_version,
        input_digest=row.input_digest,
        engine=row.engine,
    )


def _cost(row: Any) -> CostRecord:
    return CostRecord(
        id=int(row.id),
        recorded_at=float(row.recorded_at),
        run_id=row.run_id,
        tenant=row.tenant,
        workflow=row.workflow,
        step_id=row.step_id,
        plugin=row.plugin or "",
        cost_usd=float(row.cost_usd),
    )


def _request(row: Any) -> RunRequest:
    return RunRequest(
        id=row.id,
        created_at=row.created_at,
        tenant=row.tenant,
        requester=row.requester,
        workflow=row.workflow,
        job_name=row.job_name,
        source_file=row.source_file,
        params=json.loads(row.params),
        status=row.status,
        decision_id=row.decision_id,
        run_id=row.run_id,
        reasons=tuple(json.loads(row.reasons)),
    )


# ---------------------------------------------------------------- one store per instance

_STORES: dict[str, PolicyStore] = {}
_STORES_LOCK = threading.Lock()


def storage_url(instance: Any) -> str:
    """The instance's Postgres URL, else a SQLite file in its folder, else process memory."""
    run_storage = getattr(instance, "_run_storage", None)
    postgres_url = getattr(run_storage, "postgres_url", None)
    if postgres_url:
        return postgres_url
    conn_string = getattr(run_storage, "_conn_string", None)
    if isinstance(conn_string, str) and conn_string.startswith("sqlite:///"):
        folder = Path(conn_string.removeprefix("sqlite:///")).parent
        return f"sqlite:///{folder / 'maestro_policy.db'}"
    root = getattr(instance, "root_directory", None)
    if root and not getattr(instance, "is_ephemeral", False):
        return f"sqlite:///{Path(root) / 'maestro_policy.db'}"
    return "sqlite://"  # an ephemeral instance: the audit lives as long as the process


def store_for(instance: Any) -> PolicyStore:
    url = storage_url(instance)
    store = _STORES.get(url)
    if store is None:
        with _STORES_LOCK:
            store = _STORES.get(url)
            if store is None:
                store = _STORES[url] = PolicyStore(url)
    return store
