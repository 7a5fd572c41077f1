"""What `maestro submit` checks before it enqueues: the file compiles, its params are right,
and the code location loads it, so a request is never left waiting for a job that is not there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from maestro_cli.params import ParamError, parse_params
from maestro_defs.workflows import code_location_dirs, load_workflows, reserved_sensor_names
from resources.dagster_private import is_valid_cron_string
from resources.plugins import default_registry
from yaml_compiler import WorkflowCompileError, load_plan
from yaml_compiler.plan import WorkflowPlan, param_value_problems


class SubmitError(Exception):
    """The request is refused before it is enqueued; `lines` say why (file:line:col first)."""

    def __init__(self, lines: Sequence[str]):
        super().__init__("\n".join(lines))
        self.lines = list(lines)


@dataclass(frozen=True)
class Submission:
    plan: WorkflowPlan  # with the params applied
    source_file: str  # absolute: how the code location names the file


def check_submission(
    file: Path, assignments: Sequence[str], dirs: Sequence[Path] | None = None
) -> Submission:
    """The checked request for `file`; `dirs`: the code location's workflows folders (its
    component's, or MAESTRO_WORKFLOWS_DIR, unless given)."""
    registry = default_registry()
    try:
        plan = load_plan(file, registry, cron_check=is_valid_cron_string)
        if assignments:
            values = parse_params(assignments, plan.spec.params)
            plan = load_plan(file, registry, values, is_valid_cron_string)
    except WorkflowCompileError as exc:
        raise SubmitError([str(d) for d in exc.diagnostics]) from None
    except ParamError as exc:
        raise SubmitError([f"error: {exc}"]) from None
    problems = param_value_problems(plan.spec.params, plan.param_values)
    if problems:
        raise SubmitError([f"error: {problem}" for problem in problems])
    source = file.resolve()
    _check_loaded_by_code_location(source, plan, dirs or code_location_dirs())
    return Submission(plan, str(source))


def _check_loaded_by_code_location(source: Path, plan: WorkflowPlan, dirs: Sequence[Path]) -> None:
    """The gate can launch only jobs the code location has: the file must be in its workflows
    folders and load there (no clash with another file's names)."""
    if not any(source.is_relative_to(d) for d in dirs):
        folders = ", ".join(str(d) for d in dirs)
        raise SubmitError(
            [
                f"error: unknown workflow: {source} is not in the code location's workflows "
                f"folders ({folders}), so the gate could not launch it; move it there or set "
                "MAESTRO_WORKFLOWS_DIR for the code location and for this command"
            ]
        )
    loaded = load_workflows(dirs, reserved_names=reserved_sensor_names())
    mine = [str(d) for d in loaded.problems if Path(d.file).resolve() == source]
    if mine:
        raise SubmitError([*mine, f"error: the code location does not load {source}"])
    if not any(w.plan.job_name == plan.job_name for w in loaded.workflows):
        raise SubmitError([f"error: the code location has no job {plan.job_name!r}"])
