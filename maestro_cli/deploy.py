"""`maestro deploy local|pools|k8s`: click wiring over maestro_cli/deployment.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import click
import dagster as dg
import yaml

from maestro_cli import deployment as dep

POLICY_DIR_OPTION = click.option(
    "--policy-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    envvar="MAESTRO_POLICY_DIR",
    help="Policy folder whose tenant limits the run queue uses (default: MAESTRO_POLICY_DIR, "
    "else policies/).",
)


def _fail(exc: dep.DeployError) -> None:
    for line in exc.lines:
        click.echo(f"error: {line}", err=True)
    sys.exit(1)


def _home(home: Path | None) -> Path:
    chosen = home or Path(os.environ.get("DAGSTER_HOME") or dep.DEFAULT_HOME)
    return chosen.expanduser().resolve()


@click.group()
def deploy() -> None:
    """Run Maestro as a deployment: the local stack on Postgres, or Kubernetes through Helm."""


@deploy.command()
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    help=f"DAGSTER_HOME of the deployment (default: DAGSTER_HOME, else {dep.DEFAULT_HOME}).",
)
@click.option(
    "--postgres-url",
    help="postgresql://user:password@host:port/db instead of the DAGSTER_PG_* variables.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Webserver address.")
@click.option("--port", default=3000, show_default=True, type=int, help="Webserver port.")
@click.option(
    "--pools",
    "pools_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=dep.POOLS_FILE,
    show_default=True,
    help="Concurrency pool limits to set on the instance.",
)
@POLICY_DIR_OPTION
@click.option("--force", is_flag=True, help="Replace a dagster.yaml this command did not write.")
def local(
    home: Path | None,
    postgres_url: str | None,
    host: str,
    port: int,
    pools_file: Path,
    policy_dir: Path | None,
    force: bool,
) -> None:
    """Start dagster-webserver and dagster-daemon against PostgreSQL.

    Writes DAGSTER_HOME/dagster.yaml from deploy/dagster.yaml (run queue limits from the policy
    data), migrates the database, sets the pool limits, then runs both processes on
    workspace.yaml until Ctrl-C: the UI, the policy gate sensor, schedules (running by
    default: MAESTRO_DEFAULT_SCHEDULE_STATUS) and the run queue. `maestro submit` and the
    `dagster` CLI reach the same deployment with the same DAGSTER_HOME and DAGSTER_PG_*.
    """
    environ = dict(os.environ)
    root = _home(home)
    try:
        if postgres_url:
            environ.update(dep.postgres_env(postgres_url))
            os.environ.update(dep.postgres_env(postgres_url))  # this process's instance too
        missing = dep.missing_postgres_env(environ)
        if missing:
            raise dep.DeployError(
                f"set {', '.join(missing)} (deploy/dagster.yaml reads them) or give --postgres-url"
            )
        limits = dep.load_pool_limits(pools_file)
        written = dep.write_instance(
            root, dep.instance_text(dep.instance_config(environ, policy_dir)), force
        )
        click.echo(f"instance: {written}")
        dep.migrate_instance(root, environ)
        env = dep.stack_environment(root, environ, policy_dir)
        with dg.DagsterInstance.from_config(str(root)) as instance:
            dep.apply_pool_limits(instance, limits)
        click.echo("pools: " + ", ".join(f"{k}={v}" for k, v in sorted(limits.items())))
    except dep.DeployError as exc:
        _fail(exc)
    stack = dep.LocalStack(dep.stack_commands(host, port), env)
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stack.start()
    url = f"http://{host}:{port}"
    try:
        while not stopping:  # wait for the UI, unless asked to stop first
            try:
                stack.wait_ready(url, timeout=2)
                click.echo(f"Dagster UI: {url} (daemon running; Ctrl-C stops both)")
                break
            except dep.DeployError:
                if stack.exited():
                    raise
        while not stopping and not stack.exited():
            time.sleep(0.5)
    except dep.DeployError as exc:
        stack.stop()
        _fail(exc)
    exited = stack.exited()
    stack.stop()
    if exited and not stopping:
        click.echo(f"error: stopped on its own: {exited}", err=True)
        sys.exit(1)


@deploy.command()
@click.option(
    "--pools",
    "pools_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=dep.POOLS_FILE,
    show_default=True,
)
def pools(pools_file: Path) -> None:
    """Set the concurrency pool limits of the instance in DAGSTER_HOME from a pools file."""
    try:
        limits = dep.load_pool_limits(pools_file)
    except dep.DeployError as exc:
        _fail(exc)
    with dg.DagsterInstance.get() as instance:
        dep.apply_pool_limits(instance, limits)
    for name, limit in sorted(limits.items()):
        click.echo(f"pool {name}: {limit}")


@deploy.command()
@click.option("--release", default="maestro", show_default=True)
@click.option("--namespace", "-n", default="maestro", show_default=True)
@click.option(
    "--values",
    "-f",
    "extra",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="More values files, merged over helm-values.yaml in order (as helm -f does).",
)
@click.option("--image-tag", help="Tag of the user-code image (every user deployment).")
@POLICY_DIR_OPTION
@click.option("--dry-run", is_flag=True, help="Print the helm command and the values; run nothing.")
def k8s(
    release: str,
    namespace: str,
    extra: tuple[Path, ...],
    image_tag: str | None,
    policy_dir: Path | None,
    dry_run: bool,
) -> None:
    """Install or upgrade Maestro with the official Dagster Helm chart.

    The values are helm-values.yaml with the run queue's per-tenant limits from the policy data,
    then --values files, then --image-tag. With --dry-run, prints the `helm upgrade --install`
    command and the merged values; otherwise runs helm (it must be on PATH).
    """
    try:
        values = dep.merged_helm_values(extra, image_tag, policy_dir)
    except dep.DeployError as exc:
        _fail(exc)
    text = yaml.safe_dump(values, sort_keys=False)
    if dry_run:
        click.echo(dep.shell_line(dep.helm_command(release, namespace, "maestro-values.yaml")))
        click.echo("# maestro-values.yaml:")
        click.echo(text, nl=False)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="maestro-values-") as handle:
        handle.write(text)
        handle.flush()
        command = dep.helm_command(release, namespace, handle.name)
        click.echo(dep.shell_line(command))
        try:
            sys.exit(subprocess.call(command))
        except FileNotFoundError:
            click.echo(
                "error: helm is not on PATH (use --dry-run to see what it would do)", err=True
            )
            sys.exit(1)
