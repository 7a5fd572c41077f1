"""The `maestro` command: click wiring only; the work lives in the sibling modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import click
import dagster as dg

from maestro_cli import artifacts as artifact_commands
from maestro_cli import observe, policy, runner
from maestro_cli.deploy import deploy
from maestro_cli.params import ParamError, parse_params
from maestro_cli.render import FORMATS, render_plan
from maestro_cli.scaffold import (
    DEFAULT_TEMPLATE,
    ScaffoldError,
    init_project,
    list_templates,
    template_names,
    write_template,
)
from maestro_cli.tenancy import tenant_option
from maestro_common.durations import parse_duration
from maestro_defs.workflows import code_location_dirs, reserved_sensor_names
from resources.dagster_private import is_valid_cron_string
from resources.plugins import default_registry
from yaml_compiler import Diagnostic, WorkflowCompileError, load_plan, workflow_files_in
from yaml_compiler.backend import compile_workflow_files
from yaml_compiler.plan import WorkflowPlan, param_value_problems
from yaml_compiler.schema import workflow_json_schema

PARAM_HELP = "Set a workflow param, typed as the workflow declares it. Repeatable."


def _version() -> str:
    try:
        return version("maestro-dagster")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _fail(lines: Iterable[object]) -> NoReturn:
    """Print every line on stderr and exit 1."""
    for line in lines:
        click.echo(str(line), err=True)
    sys.exit(1)


def _relative(path: Path) -> str:
    """`path` relative to the current directory when it is below it, for copy-paste hints."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Start with `maestro templates` and `maestro init`, or `maestro validate FILE`.",
)
@click.version_option(_version(), "--version", "-V", prog_name="maestro")
def cli() -> None:
    """Maestro: YAML workflows compiled to Dagster jobs (one op per step)."""


# ---------------------------------------------------------------- validate


def expand_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a folder stands for the workflow files inside it."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += workflow_files_in(path)
        else:
            files.append(path)
    return files


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check workflow files; print every error.

    FILES may be folders: their *.yaml and *.yml files are checked. Files given together are
    checked as one code location would load them: job, schedule and asset names must not
    clash between them. Errors print as `file:line:col: field.path: message`, all of them at
    once; the exit code is 1 if any.
    """
    problems = [
        Diagnostic(str(folder), 1, 1, "<root>", "no workflow files (*.yaml, *.yml) in this folder")
        for folder in files
        if folder.is_dir() and not workflow_files_in(folder)
    ]
    loaded = compile_workflow_files(expand_files(files), reserved_names=reserved_sensor_names())
    for workflow in loaded.workflows:
        plan = workflow.plan
        click.echo(f"ok: {plan.source_file} (workflow {plan.spec.name}, {len(plan.steps)} steps)")
    problems += loaded.problems
    if problems:
        _fail(problems)


# ---------------------------------------------------------------- plan


def load_with_params(path: Path, assignments: Sequence[str]) -> WorkflowPlan:
    """The plan with `--param` values applied; exits 1 with every problem otherwise."""
    registry = default_registry()
    try:
        plan = load_plan(path, registry, cron_check=is_valid_cron_string)
        if not assignments:
            return plan
        values = parse_params(assignments, plan.spec.params)
        return load_plan(path, registry, values, is_valid_cron_string)
    except WorkflowCompileError as exc:
        _fail(exc.diagnostics)
    except ParamError as exc:
        _fail([f"error: {exc}"])


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for tools, mermaid for diagrams.",
)
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help=PARAM_HELP)
def plan(file: Path, fmt: str, params: tuple[str, ...]) -> None:
    """Show the resolved DAG without running it.

    Stages, steps, edges (order, depends_on, data), plugins, retries, timeouts, compensation
    and param values. Templates are shown as written: secrets are never read.
    """
    click.echo(render_plan(load_with_params(file, params), fmt))


# ---------------------------------------------------------------- run


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help=PARAM_HELP)
@click.option("--verbose", "-v", is_flag=True, help="Also print Dagster's own event log.")
def run(file: Path, params: tuple[str, ...], verbose: bool) -> None:
    """Run a workflow in this process on the local instance.

    The instance is DAGSTER_HOME, or ./.dagster_home when it is not set. Steps run on the
    workflow's executor (threads unless it says otherwise: parallel steps run at once). Each
    step is reported as it starts and ends; the exit code is 1 when the run fails.
    """
    workflow = load_with_params(file, params)
    missing = param_value_problems(workflow.spec.params, workflow.param_values)
    if missing:
        _fail(f"error: --param: {problem}" for problem in missing)
    home = runner.instance_home()
    try:
        job = runner.reconstructable_workflow_job(workflow, home, None if verbose else "CRITICAL")
    except WorkflowCompileError as exc:
        _fail(exc.diagnostics)
    click.echo(
        f"running workflow {workflow.spec.name} (Dagster job {workflow.job_name}, "
        f"{len(workflow.steps)} steps) on the instance in {home}"
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        try:
            outcome = runner.execute(workflow, job, instance, sys.stdout)
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):
            click.echo("interrupted", err=True)
            sys.exit(130)
        saga = (
            None if outcome.success else runner.compensate(workflow, home, instance, outcome.run_id)
        )
    for line in runner.summary_lines(outcome, home, file):
        click.echo(line)
    if saga is not None:
        verdict = "compensated" if saga.success else "compensation failed"
        click.echo(f"{verdict}: saga run {saga.run_id} (job {saga.job_def.name})")
    sys.exit(0 if outcome.success else 1)


@cli.command()
@click.argument("run_id")
def resume(run_id: str) -> None:
    """Re-execute a failed or canceled run from failure, in this process.

    Runs only the steps that failed or never ran; every step that completed is not run again
    (its output is read from the artifact store). Prints the new run's status; the exit code
    is 1 when it fails.
    """
    from maestro_cli.run_views import run_status, status_lines

    home = runner.instance_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        try:
            result = runner.resume(instance, run_id)
        except runner.ResumeError as exc:
            _fail([f"error: {exc}"])
        click.echo(f"resumed run {run_id} as run {result.run_id}")
        for line in status_lines(run_status(instance, result.run_id)):
            click.echo(line)
    sys.exit(0 if result.success else 1)


# ---------------------------------------------------------------- artifacts


@cli.group()
def artifacts() -> None:
    """The content-addressed artifact store (MAESTRO_ARTIFACTS, else DAGSTER_HOME/artifacts)."""


def _duration_option(_ctx: object, _param: object, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@artifacts.command("gc")
@click.option(
    "--older-than",
    default="30d",
    show_default=True,
    callback=_duration_option,
    help="Only objects at least this old (30d, 12h, 0s...).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
def artifacts_gc(older_than: float, dry_run: bool) -> None:
    """Delete pointers of deleted runs, then content no pointer references.

    A run is deleted when the Dagster instance no longer has it. Content still referenced
    by any remaining pointer is never deleted.
    """
    home = runner.instance_home()
    store = artifact_commands.io_manager_for(home).open_store()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        report = artifact_commands.run_gc(store, instance, older_than, dry_run)
    for line in artifact_commands.gc_lines(report, dry_run):
        click.echo(line)


@artifacts.command("ls")
@click.argument("run_id", required=False)
@tenant_option("Only this tenant's artifacts.")
def artifacts_ls(run_id: str | None, tenant: str | None) -> None:
    """List pointers (of one run, or all): key, sha256, size."""
    store = artifact_commands.io_manager_for(runner.instance_home()).open_store()
    scope = tenant
    for tenant in store.tenants():
        if scope is not None and tenant != scope:
            continue
        for info in store.pointers(tenant):
            if run_id and f"/runs/{run_id}/" not in info.key:
                continue
            pointer = store.read_pointer(tenant, info.key)
            skipped = " (skipped)" if pointer.skipped else ""
            click.echo(f"{info.key}  {pointer.sha256}  {pointer.size}{skipped}")


@artifacts.command("verify")
def artifacts_verify() -> None:
    """Re-hash every stored object; exit 1 and name each one that does not match its key."""
    from resources.artifacts import verify_all

    store = artifact_commands.io_manager_for(runner.instance_home()).open_store()
    problems = verify_all(store)
    if problems:
        _fail(problems)
    click.echo("all artifacts match their hashes")


# ---------------------------------------------------------------- doctor


@cli.command()
def doctor() -> None:
    """Check the LLM set-up: LiteLLM config and deployments, the Ollama host and its models.

    Reads MAESTRO_LITELLM_CONFIG and OLLAMA_HOST; contacts only the Ollama host. Exit code 1
    when the LiteLLM config is broken, or OLLAMA_HOST is set and does not answer.
    """
    from maestro_cli.doctor import run_checks

    failed = False
    for check in run_checks():
        status = "ok" if check.ok else ("FAILED" if check.required else "warning")
        click.echo(f"{check.name}: {status}")
        for line in check.lines:
            click.echo(f"  {line}")
        failed |= check.required and not check.ok
    sys.exit(1 if failed else 0)


# ---------------------------------------------------------------- templates, init, schema


@cli.command()
def templates() -> None:
    """List the built-in workflow templates."""
    entries = list_templates()
    width = max(len(t.name) for t in entries)
    for template in entries:
        click.echo(f"{template.name:<{width}}  {template.description}")


@cli.command()
@click.option(
    "--template",
    "-t",
    default=DEFAULT_TEMPLATE,
    show_default=True,
    type=click.Choice(template_names()),
    help="Which built-in template to copy.",
)
@click.option("--force", is_flag=True, help="Overwrite the workflow file if it exists.")
@click.option(
    "--code-location",
    is_flag=True,
    help="Write into the code location's workflows folder (maestro_defs/defs/workflows/"
    "defs.yaml, or MAESTRO_WORKFLOWS_DIR), where `dagster dev` and `dg dev` load it.",
)
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(template: str, force: bool, code_location: bool, directory: Path) -> None:
    """Scaffold a workflow from a built-in template.

    Writes DIRECTORY/workflows/<template>.yaml (DIRECTORY defaults to the current one), or,
    with --code-location, <the code location's workflows folder>/<template>.yaml.
    """
    try:
        if code_location:
            written = write_template(code_location_dirs()[0], template, force)
        else:
            written = init_project(directory, template, force)
    except ScaffoldError as exc:
        _fail([f"error: {exc}"])
    target = _relative(written)
    click.echo(f"wrote {target}")
    click.echo("next:")
    for command in ("validate", "plan", "run"):
        click.echo(f"  maestro {command} {target}")


@cli.command()
def schema() -> None:
    """Print the DSL's JSON Schema.

    Draft 2020-12, with every installed plugin's `with` parameters, for editors and linters.
    """
    click.echo(json.dumps(workflow_json_schema(default_registry()), indent=2))


for command in (policy.submit, policy.requests, policy.decisions, policy.policies, deploy):
    cli.add_command(command)
for command in observe.COMMANDS:
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="maestro")
