"""Cost attribution over ledger rows: grouping per tenant, period and key; the forecast."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from resources.observability.costs import (
    cost_lines,
    daily_totals,
    forecast,
    period_of,
    tenant_totals,
)
from resources.policy.store import CostRecord

DAY = 86400.0
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC).timestamp()


def _row(i: int, age_days: float, cost: float, **kw: str) -> CostRecord:
    fields = {"tenant": "acme", "workflow": "w", "step_id": "s", "plugin": "paid", "run_id": "r"}
    fields.update(kw)
    return CostRecord(id=i, recorded_at=NOW - age_days * DAY, cost_usd=cost, **fields)  # type: ignore[arg-type]


def test_lines_group_per_tenant_period_and_key() -> None:
    rows = [
        _row(1, 0.1, 1.0, run_id="a"),
        _row(2, 0.2, 2.0, run_id="b", plugin="litellm.generate"),
        _row(3, 1.1, 4.0, run_id="c", step_id="t"),
        _row(4, 0.1, 8.0, tenant="globex", plugin=""),
    ]
    by_plugin = cost_lines(rows, "plugin", "day")
    assert [(x.tenant, x.period, x.key, x.runs, x.cost_usd) for x in by_plugin] == [
        ("acme", "2026-12-09", "paid", 1, 4.0),
        ("acme", "2026-12-10", "litellm.generate", 1, 2.0),
        ("acme", "2026-12-10", "paid", 1, 1.0),
        ("globex", "2026-12-10", "(unknown)", 1, 8.0),
    ]
    by_step = cost_lines(rows, "step", "month")
    assert [(x.key, x.charges, x.cost_usd) for x in by_step if x.tenant == "acme"] == [
        ("w/t", 1, 4.0),  # the month's biggest spender first
        ("w/s", 2, 3.0),
    ]
    assert tenant_totals(rows) == {"acme": 7.0, "globex": 8.0}
    assert period_of(NOW, "week") == "2026-W50" and period_of(NOW, "month") == "2026-12"


def test_the_forecast_follows_a_linear_trend() -> None:
    # Spend grows by $1 a day: $1 seven days ago ... $7 in the last 24 hours.
    rows = [_row(i, 6.5 - i, float(i + 1)) for i in range(7)]
    assert daily_totals(rows, "acme", NOW - 7 * DAY, NOW) == [1, 2, 3, 4, 5, 6, 7]
    [day] = forecast(rows, NOW - 7 * DAY, NOW, "day")
    assert day.next_period_usd == pytest.approx(8.0)
    assert day.trend_per_day == pytest.approx(1.0) and day.per_day_now == pytest.approx(7.0)
    [week] = forecast(rows, NOW - 7 * DAY, NOW, "week")
    assert week.next_period_usd == pytest.approx(sum(range(8, 15)))


def test_a_falling_trend_never_forecasts_below_zero_and_one_day_is_flat() -> None:
    falling = [_row(i, 2.5 - i, c) for i, c in enumerate((6.0, 3.0, 0.0))]
    [f] = forecast(falling, NOW - 3 * DAY, NOW, "week")
    assert f.trend_per_day == pytest.approx(-3.0) and f.next_period_usd == 0.0
    [flat] = forecast([_row(1, 0.5, 2.0)], NOW - DAY, NOW, "week")
    assert flat.next_period_usd == pytest.approx(14.0)
