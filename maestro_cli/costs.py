"""`maestro costs`: the cost ledger per tenant and period, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from maestro_cli.run_views import table, when
from resources.observability.costs import (
    CostLine,
    Forecast,
    cost_lines,
    forecast,
    tenant_totals,
)
from resources.policy.store import CostRecord

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class CostReport:
    since: float
    now: float
    by: str
    period: str
    lines: list[CostLine]
    totals: dict[str, float]
    forecasts: list[Forecast]


def cost_report(
    records: Sequence[CostRecord], since: float, now: float, by: str, period: str
) -> CostReport:
    return CostReport(
        since=since,
        now=now,
        by=by,
        period=period,
        lines=cost_lines(records, by, period),
        totals=tenant_totals(records),
        forecasts=forecast(records, since, now, period),
    )


def render(report: CostReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "since": when(report.since),
                "until": when(report.now),
                "by": report.by,
                "period": report.period,
                "rows": [asdict(line) for line in report.lines],
                "totals": report.totals,
                "forecast": [asdict(f) for f in report.forecasts],
            },
            indent=2,
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["tenant", report.period, report.by, "runs", "charges", "cost_usd"])
        for line in report.lines:
            writer.writerow(
                [
                    line.tenant,
                    line.period,
                    line.key,
                    line.runs,
                    line.charges,
                    f"{line.cost_usd:.6f}",
                ]
            )
        return out.getvalue().rstrip("\n")
    return "\n".join(_table(report))


def _table(report: CostReport) -> list[str]:
    lines = [f"costs from {when(report.since)} to {when(report.now)} UTC, per {report.period}"]
    if not report.lines:
        return [*lines, "no costs recorded in this window"]
    header = ("TENANT", report.period.upper(), report.by.upper(), "RUNS", "CHARGES", "COST_USD")
    rows = [
        (
            line.tenant,
            line.period,
            line.key,
            str(line.runs),
            str(line.charges),
            f"{line.cost_usd:.6f}",
        )
        for line in report.lines
    ]
    lines += ["", *table(header, rows), "", "total per tenant:"]
    lines += [f"  {tenant}: ${total:.6f}" for tenant, total in report.totals.items()]
    lines += ["", f"forecast, next {report.period} (least-squares trend of the daily spend):"]
    for f in report.forecasts:
        lines.append(
            f"  {f.tenant}: ${f.next_period_usd:.6f} (now ${f.per_day_now:.6f}/day, trend "
            f"{f.trend_per_day:+.6f}/day over {f.days_observed} day(s))"
        )
    return lines
