"""Cost attribution: the ledger's step costs grouped per tenant, period and workflow, plugin or
step, and a forecast of the next period from the recent trend (`maestro costs`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from resources.policy.store import CostRecord

GROUPINGS = ("workflow", "plugin", "step")
PERIODS = ("day", "week", "month")
PERIOD_DAYS = {"day": 1, "week": 7, "month": 30}
UNKNOWN_PLUGIN = "(unknown)"
"""Ledger rows recorded before the plugin column existed."""
_DAY = 86400.0


def period_of(timestamp: float, period: str) -> str:
    """The calendar period (UTC) holding `timestamp`: 2026-12-03, 2026-W49, 2026-12."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    if period == "day":
        return when.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return when.strftime("%Y-%m")
    raise ValueError(f"unknown period {period!r} (use {', '.join(PERIODS)})")


def group_key(record: CostRecord, by: str) -> str:
    if by == "workflow":
        return record.workflow
    if by == "plugin":
        return record.plugin or UNKNOWN_PLUGIN
    if by == "step":
        return f"{record.workflow}/{record.step_id}"
    raise ValueError(f"unknown grouping {by!r} (use {', '.join(GROUPINGS)})")


@dataclass(frozen=True)
class CostLine:
    """What one workflow, plugin or step of a tenant spent in one period."""

    tenant: str
    period: str
    key: str
    runs: int
    charges: int  # ledger rows: a step that spent (each attempt that spent is one)
    cost_usd: float


def cost_lines(records: Sequence[CostRecord], by: str, period: str) -> list[CostLine]:
    """Lines sorted by tenant, period, then cost (highest first)."""
    groups: dict[tuple[str, str, str], list[CostRecord]] = {}
    for record in records:
        key = (record.tenant, period_of(record.recorded_at, period), group_key(record, by))
        groups.setdefault(key, []).append(record)
    lines = [
        CostLine(
            tenant=tenant,
            period=when,
            key=key,
            runs=len({r.run_id for r in rows}),
            charges=len(rows),
            cost_usd=math.fsum(r.cost_usd for r in rows),
        )
        for (tenant, when, key), rows in groups.items()
    ]
    return sorted(lines, key=lambda line: (line.tenant, line.period, -line.cost_usd, line.key))


def tenant_totals(records: Sequence[CostRecord]) -> dict[str, float]:
    totals: dict[str, list[float]] = {}
    for record in records:
        totals.setdefault(record.tenant, []).append(record.cost_usd)
    return {tenant: math.fsum(costs) for tenant, costs in sorted(totals.items())}


@dataclass(frozen=True)
class Forecast:
    """Next period's spend of a tenant, from a straight line fitted to its daily spend."""

    tenant: str
    period: str  # day, week, month
    days_observed: int
    per_day_now: float  # the fitted line at the last day observed
    trend_per_day: float  # the line's slope: how much the daily spend grows each day
    next_period_usd: float


def daily_totals(
    records: Sequence[CostRecord], tenant: str, since: float, now: float
) -> list[float]:
    """The tenant's spend in each whole 24-hour window ending at `now` back to `since` (the
    last window ends now, so no window is partial), oldest first."""
    days = max(1, int((now - since) // _DAY))
    totals = [0.0] * days
    for record in records:
        if record.tenant != tenant or not (now - days * _DAY <= record.recorded_at < now):
            continue
        age = int((now - record.recorded_at) // _DAY)  # 0: the last 24 hours
        totals[days - 1 - age] += record.cost_usd
    return totals


def forecast(
    records: Sequence[CostRecord], since: float, now: float, period: str = "day"
) -> list[Forecast]:
    """Per tenant: a least-squares line through its daily totals, summed over the next
    period's days (never below zero). With one day observed the line is flat."""
    out = []
    for tenant in tenant_totals(records):
        daily = daily_totals(records, tenant, since, now)
        slope, intercept = _line(daily)
        ahead = PERIOD_DAYS[period]
        n = len(daily)
        predicted = math.fsum(max(0.0, intercept + slope * (n + i)) for i in range(ahead))
        out.append(
            Forecast(
                tenant=tenant,
                period=period,
                days_observed=n,
                per_day_now=max(0.0, intercept + slope * (n - 1)),
                trend_per_day=slope,
                next_period_usd=predicted,
            )
        )
    return out


def _line(values: Sequence[float]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (i, values[i])."""
    n = len(values)
    if n < 2:
        return 0.0, values[0] if values else 0.0
    mean_x = (n - 1) / 2
    mean_y = math.fsum(values) / n
    sxx = math.fsum((i - mean_x) ** 2 for i in range(n))
    sxy = math.fsum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x
