"""`maestro submit`, `maestro requests`, `maestro decisions`, `maestro policies ...`: the policy
gate from the terminal. Thin click wiring over `resources.policy`."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import dagster as dg

from maestro_cli import runner
from maestro_cli.tenancy import tenant_option

PARAM_HELP = "Set a workflow param, typed as the workflow declares it. Repeatable."
POLICY_DIR_OPTION = click.option(
    "--dir",
    "policy_dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="MAESTRO_POLICY_DIR",
    help="Policy folder (default: MAESTRO_POLICY_DIR, else policies/).",
)


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(runner.instance_home()))


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _opa_url(url: str | None) -> str:
    url = url or os.environ.get("MAESTRO_OPA_URL")
    if not url:
        raise click.UsageError("give --url or set MAESTRO_OPA_URL")
    return url


@click.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--tenant", "-t", help="Tenant to run as (default: the workflow's `tenant:`).")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help=PARAM_HELP)
@click.option("--requester", help="Who asks (default: your login name).")
def submit(file: Path, tenant: str | None, params: tuple[str, ...], requester: str | None) -> None:
    """Ask the policy gate to run a workflow; prints the request id.

    The request waits in the instance's storage until the `maestro_policy_gate` sensor
    (in `dagster dev` or the daemon) admits it, which launches one run, or refuses it with its
    reasons (see `maestro requests` and `maestro decisions`). A file that does not compile, or
    that the code location does not load, is refused here, at once.
    """
    from maestro_cli.submission import SubmitError, check_submission
    from resources.policy.gate import enqueue

    try:
        submission = check_submission(file, params)
        with _instance() as instance:
            request_id = enqueue(
                instance,
                tenant=tenant or submission.plan.spec.tenant,
                workflow=submission.plan.spec.name,
                job_name=submission.plan.job_name,
                source_file=submission.source_file,
                params=submission.plan.param_values,
                requester=requester,
            )
    except SubmitError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        sys.exit(1)
    click.echo(request_id)


@click.command()
@click.option("--status", type=click.Choice(["pending", "admitted", "refused", "launched"]))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@tenant_option("Only this tenant's requests.")
def requests(status: str | None, fmt: str, tenant: str | None) -> None:
    """List run requests and where they stand (pending, admitted, refused, launched)."""
    from resources.policy.store import store_for

    with _instance() as instance:
        rows = store_for(instance).requests([status] if status else None)
    rows = [r for r in rows if tenant is None or r.tenant == tenant]
    if fmt == "json":
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2, default=str))
        return
    for r in rows:
        run = f" run {r.run_id}" if r.run_id else ""
        click.echo(f"{r.id}  {_when(r.created_at)}  {r.status:<8}  {r.tenant}  {r.workflow}{run}")
        for reason in r.reasons:
            click.echo(f"    {reason}")


@click.command()
@tenant_option("Only this tenant's decisions.")
@click.option("--run", "-r", "run_id", help="Only this run's decisions.")
@click.option("--limit", default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def decisions(tenant: str | None, run_id: str | None, limit: int, fmt: str) -> None:
    """List policy decisions, newest first: allow or deny, reasons, policy version."""
    from resources.policy.store import store_for

    with _instance() as instance:
        rows = store_for(instance).decisions(tenant=tenant, run_id=run_id, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2, default=str))
        return
    for d in rows:
        where = f"run {d.run_id}" if d.run_id else f"request {d.request_id}"
        step = f" step {d.step_id}" if d.step_id else ""
        verdict = "allow" if d.allow else "DENY"
        click.echo(
            f"{d.id}  {_when(d.created_at)}  {verdict:<5}  {d.kind:<8}  {d.tenant}  "
            f"{d.workflow}  {where}{step}  policy {d.policy_version} ({d.engine})"
        )
        for reason in d.reasons:
            click.echo(f"    {reason}")


@click.group()
def policies() -> None:
    """The Rego policies: test them, push them to OPA, evaluate an input, concurrency limits."""


@policies.command()
@click.option("--url", help="OPA server (default: MAESTRO_OPA_URL).")
@POLICY_DIR_OPTION
def push(url: str | None, policy_dir: Path | None) -> None:
    """Upload the Rego modules and data documents to an OPA server."""
    from resources.policy.engine import OpaServerPolicyEngine, PolicySet

    policy_set = PolicySet.load(policy_dir)
    engine = OpaServerPolicyEngine(_opa_url(url))
    try:
        written = engine.push(policy_set)
    except Exception as exc:
        click.echo(f"error: pushing to {engine.url} failed: {exc}", err=True)
        sys.exit(1)
    for line in written:
        click.echo(f"pushed {line}")
    click.echo(f"policy version {policy_set.version} on {engine.url}")


@policies.command(name="eval")
@click.argument("kind", type=click.Choice(["workflow", "step"]))
@click.argument("input_file", type=click.File("r"))
@click.option("--url", help="Ask this OPA server instead of the embedded engine.")
@POLICY_DIR_OPTION
def eval_(kind: str, input_file: Any, url: str | None, policy_dir: Path | None) -> None:
    """Evaluate maestro.KIND for a JSON input (a file, or - for stdin); exit 1 on deny."""
    from resources.policy.engine import EmbeddedPolicyEngine, OpaServerPolicyEngine, PolicySet

    payload = json.load(input_file)
    engine = OpaServerPolicyEngine(url) if url else EmbeddedPolicyEngine(PolicySet.load(policy_dir))
    decision = engine.decide(kind, payload)  # type: ignore[arg-type]
    click.echo(
        json.dumps(
            {
                "allow": decision.allow,
                "deny": list(decision.reasons),
                "retry_later": decision.retry_later,
                "policy_version": decision.policy_version,
                "input_digest": decision.input_digest,
            },
            indent=2,
        )
    )
    sys.exit(0 if decision.allow else 1)


@policies.command(name="test")
@POLICY_DIR_OPTION
@click.option("--run", "pattern", help="Only the test rules whose name matches this regex.")
def test_(policy_dir: Path | None, pattern: str | None) -> None:
    """Run the Rego unit tests (*_test.rego, test_* rules) with regopy; exit 1 on a failure."""
    from resources.policy.rego_tests import run_tests

    try:
        results = run_tests(policy_dir, pattern)
    except Exception as exc:  # a policy or test file that does not parse
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for result in results:
        test = result.test
        where = f"{test.file}:{test.line}"
        if result.passed:
            click.echo(f"PASS  {test.package}.{test.name}  ({where})")
        else:
            click.echo(f"FAIL  {test.package}.{test.name}  ({where}): {result.detail}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)


@policies.command()
@POLICY_DIR_OPTION
def concurrency(policy_dir: Path | None) -> None:
    """Print dagster.yaml's run_coordinator block with each tenant's max_concurrent_runs."""
    from resources.policy.concurrency import run_coordinator_yaml
    from resources.policy.engine import PolicySet

    click.echo(run_coordinator_yaml(PolicySet.load(policy_dir)), nl=False)
