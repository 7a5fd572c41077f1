"""The metrics collector's incremental reading, on a real policy store (SQLite file, and the
session's PostgreSQL database): late-committed rows, the recount horizon, saved state, two
exporters on one state name; and the cost ledger's plugin column added to an old table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from resources.observability.metrics import (
    DURATION_BUCKETS,
    Histogram,
    MetricsState,
    Watermark,
    read_costs,
    refresh,
)
from resources.policy.store import PolicyStore


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'maestro_policy.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the session's database: start without these tables
        for table in ("maestro_cost_ledger", "maestro_metrics_state"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()
    yield url


def _charge(store: PolicyStore, at: float, cost: float, plugin: str = "paid") -> None:
    store.record_cost(
        run_id="r1",
        tenant="t",
        workflow="w",
        step_id="s",
        plugin=plugin,
        cost_usd=cost,
        recorded_at=at,
    )


def test_a_row_committed_late_inside_the_horizon_counts_once(store_url: str) -> None:
    store = PolicyStore(store_url)
    state, now = MetricsState(), time.time()
    _charge(store, now - 5, 1.0)
    assert read_costs(state, store)
    state.ledger.advance(now, horizon=60)
    # A step that started earlier commits its row after that read: its timestamp is older
    # than the row already counted, but inside the horizon, so it is read and counted.
    _charge(store, now - 30, 2.0)
    assert read_costs(state, store)
    assert not read_costs(state, store)  # read again: nothing new
    state.ledger.advance(now + 1, horizon=60)
    # Older than the horizon when it commits: the exporter no longer looks that far back.
    _charge(store, now - 600, 4.0)
    assert not read_costs(state, store)
    assert state.costs == {("t", "w", "paid"): 3.0}


def test_the_saved_state_survives_a_restart_and_a_second_exporter(
    store_url: str, tmp_path: Path
) -> None:
    import dagster as dg

    store = PolicyStore(store_url)
    now = time.time()
    _charge(store, now - 1, 0.5)
    with dg.instance_for_test() as instance:
        first = refresh(instance, store, "a", now=now)
        assert first.costs == {("t", "w", "paid"): 0.5}
        again = refresh(instance, store, "a", now=now + 1)  # a restarted exporter: from the store
        assert again.costs == first.costs
        other = refresh(instance, store, "b", now=now + 1)  # another state name counts alone
        assert other.costs == first.costs
        _charge(store, now + 2, 0.25)
        assert refresh(instance, store, "a", now=now + 3).costs == {("t", "w", "paid"): 0.75}
    version, text = store.metrics_state("a")  # type: ignore[misc]
    assert MetricsState.from_json(text).costs == {("t", "w", "paid"): 0.75}
    # Compare-and-set: a write from a stale version (another exporter got there first) fails.
    assert not store.save_metrics_state("a", version - 1, text)
    assert not store.save_metrics_state("a", 0, text)
    assert store.save_metrics_state("a", version, text)


def test_state_round_trips_through_json_and_histograms_reach_hours() -> None:
    state = MetricsState()
    state.runs[("w", "t", "SUCCESS")] = 3
    hist = state.step_durations.setdefault(("w", "shell"), Histogram())
    for seconds in (0.01, 42.0, 2 * 3600, 3 * 86400):
        hist.observe(seconds)
    state.ledger = Watermark(after=10.0, seen={"7": 11.0})
    back = MetricsState.from_json(state.to_json())
    assert back.runs == state.runs and back.ledger == state.ledger
    cumulative = dict(back.step_durations[("w", "shell")].cumulative())
    assert cumulative["0.05"] == 1 and cumulative["60"] == 2 and cumulative["7200"] == 3
    assert cumulative["86400"] == 3 and cumulative["+Inf"] == 4
    assert DURATION_BUCKETS[-1] >= 86400


def test_an_old_cost_ledger_gets_the_plugin_column_and_keeps_its_rows(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    first_release = sa.MetaData()
    ledger = sa.Table(  # the ledger as the first release created it
        "maestro_cost_ledger",
        first_release,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recorded_at", sa.Float, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("workflow", sa.String(255), nullable=False),
        sa.Column("step_id", sa.String(255), nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
    )
    first_release.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            ledger.insert().values(
                recorded_at=100.0,
                run_id="old",
                tenant="acme",
                workflow="w",
                step_id="s",
                cost_usd=0.5,
            )
        )
    engine.dispose()
    store = PolicyStore(store_url)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("maestro_cost_ledger")}
    assert "plugin" in columns
    [old] = store.costs(run_id="old")
    assert (old.tenant, old.cost_usd, old.plugin) == ("acme", 0.5, "")
    store.record_cost(
        run_id="new", tenant="acme", workflow="w", step_id="s", plugin="paid", cost_usd=1.0
    )
    assert [r.plugin for r in store.costs(tenant="acme")] == ["", "paid"]
    PolicyStore(store_url)  # opening it again finds the column there
