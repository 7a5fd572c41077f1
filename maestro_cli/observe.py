"""`maestro runs`, `status`, `cancel`, `logs`, `costs`, `metrics serve`: click wiring over the
instance DAGSTER_HOME points to (SQLite or PostgreSQL) and its policy store."""

from __future__ import annotations

import sys
import time
from typing import NoReturn

import click
import dagster as dg

from maestro_cli import runner
from maestro_cli.run_views import STATUSES, RunNotFoundError
from maestro_cli.tenancy import check_run_tenant, tenant_option
from maestro_common.durations import parse_duration
from resources.observability.costs import GROUPINGS, PERIODS
from resources.observability.metrics import DEFAULT_HORIZON_SECONDS, DEFAULT_STATE_NAME


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(runner.instance_home()))


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _duration(_ctx: object, _param: object, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--workflow", "-w", help="Only runs of this workflow (the maestro/workflow tag).")
@click.option("--status", "-s", type=click.Choice(STATUSES, case_sensitive=False))
@tenant_option("Only runs of this tenant (the maestro/tenant tag).")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(min=1))
def runs(workflow: str | None, status: str | None, tenant: str | None, limit: int) -> None:
    """List runs, newest first: status, start, duration and cost."""
    from maestro_cli.run_views import find_runs, runs_table

    with _instance() as instance:
        records = find_runs(
            instance,
            workflow=workflow,
            status=status.upper() if status else None,
            tenant=tenant,
            limit=limit,
        )
    if not records:
        click.echo("no runs")
        return
    for line in runs_table(records):
        click.echo(line)


@click.command()
@click.argument("run_id", required=False)
@click.option("--workflow", "-w", help="The latest run of this workflow.")
@tenant_option("Only runs of this tenant.")
def status(run_id: str | None, workflow: str | None, tenant: str | None) -> None:
    """A run's status and each step's status, attempts, duration, cost and error.

    RUN_ID, else the latest run of --workflow, else the latest run. The exit code is 1 when
    the run failed.
    """
    from maestro_cli.run_views import latest_run_id, run_status, status_lines

    if run_id and workflow:
        raise click.UsageError("give RUN_ID or --workflow, not both")
    with _instance() as instance:
        try:
            found = run_id or latest_run_id(instance, workflow, tenant)
            check_run_tenant(instance, found, tenant)
            view = run_status(instance, found)
        except RunNotFoundError as exc:
            _fail(str(exc))
    for line in status_lines(view):
        click.echo(line)
    sys.exit(1 if view.record.dagster_run.status == dg.DagsterRunStatus.FAILURE else 0)


@click.command()
@click.argument("run_id")
@tenant_option("Only a run of this tenant.")
def cancel(run_id: str, tenant: str | None) -> None:
    """Terminate a run, as the UI's Terminate does.

    A queued run leaves the queue; a started one is stopped through the instance's run
    launcher (its steps get an interrupt; a shell step's process group is killed) and ends
    CANCELED.
    """
    from maestro_cli.run_views import cancel as cancel_run

    with _instance() as instance:
        try:
            check_run_tenant(instance, run_id, tenant)
            click.echo(cancel_run(instance, run_id))
        except (RunNotFoundError, ValueError) as exc:
            _fail(str(exc))


@click.command()
@click.argument("run_id")
@click.option("--step", help="Only this step (its id, or a step key such as greet[2]).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run has ended.")
@tenant_option("Only a run of this tenant.")
def logs(run_id: str, step: str | None, follow: bool, tenant: str | None) -> None:
    """A run's event log, then its steps' captured stdout and stderr."""
    from maestro_cli.logs import show_logs

    with _instance() as instance:
        try:
            check_run_tenant(instance, run_id, tenant)
            show_logs(instance, run_id, sys.stdout, step=step, follow=follow)
        except RunNotFoundError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            sys.exit(130)


@click.command()
@tenant_option("Only this tenant.")
@click.option(
    "--since",
    default="30d",
    show_default=True,
    callback=_duration,
    help="How far back (7d, 12h...).",
)
@click.option("--by", type=click.Choice(GROUPINGS), default="workflow", show_default=True)
@click.option(
    "--period", type=click.Choice(PERIODS), default="day", show_default=True, help="UTC periods."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "csv", "json")),
    default="table",
    show_default=True,
)
def costs(tenant: str | None, since: float, by: str, period: str, fmt: str) -> None:
    """Spend per tenant and period, by workflow, plugin or step, from the cost ledger; with a
    forecast of the next period from the trend of the daily spend."""
    from maestro_cli.costs import cost_report, render
    from resources.policy.store import store_for

    now = time.time()
    with _instance() as instance:
        records = store_for(instance).costs(since=now - since, tenant=tenant)
    click.echo(render(cost_report(records, now - since, now, by, period), fmt))


@click.group()
def metrics() -> None:
    """Prometheus metrics of the runs, steps, costs and policy decisions of the instance."""


@metrics.command("serve")
@click.option("--port", default=9464, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="0.0.0.0 to be scraped from outside."
)
@click.option(
    "--state-name",
    default=DEFAULT_STATE_NAME,
    show_default=True,
    help="Where the counters are saved in the store; exporters sharing it count once.",
)
@click.option(
    "--horizon",
    default=f"{DEFAULT_HORIZON_SECONDS:g}s",
    show_default=True,
    callback=_duration,
    help="How far back each scrape looks again for rows committed late.",
)
def serve(port: int, host: str, state_name: str, horizon: float) -> None:
    """Serve /metrics (Prometheus text format), computed from the instance on every scrape."""
    from maestro_cli.metrics_server import serve as serve_metrics

    def ready(url: str) -> None:
        click.echo(f"serving {url} (DAGSTER_HOME={runner.instance_home()})")

    with _instance() as instance:
        serve_metrics(instance, host, port, state_name, horizon, ready)


COMMANDS = (runs, status, cancel, logs, costs, metrics)
