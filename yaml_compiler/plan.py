"""Semantic analysis: a validated spec becomes a resolved, checked plan of steps and edges.

Everything here is pure. The plan is what `maestro plan` prints and what the Dagster builder
turns into a job, so both always agree.
"""

from __future__ import annotations

import difflib
import heapq
import itertools
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from maestro_common.durations import format_duration
from maestro_common.values import PrepareError, is_template
from yaml_compiler.catalog import PluginCatalog, StepPlugin
from yaml_compiler.diagnostics import Diagnostic, FieldPath, WorkflowCompileError
from yaml_compiler.names import (
    FOR_EACH_SUFFIXES,
    job_name_for,
    node_name_for,
    op_definition_name,
)
from yaml_compiler.source import SourceDocument
from yaml_compiler.spec import (
    ID_LENGTH_REASON,
    CompensationSpec,
    OutputSpec,
    ParamSpec,
    ResourcesSpec,
    RetrySpec,
    StepSpec,
    WorkflowSpec,
    param_value_matches,
)
from yaml_compiler.templating import References, analyse_template, expression_source


def schedule_names(spec: WorkflowSpec) -> list[str]:
    """The Dagster name of each schedule: its own, or `<job>_schedule[_<i>]`."""
    job = job_name_for(spec.name)
    many = len(spec.schedule) > 1
    return [
        s.name or (f"{job}_schedule_{i}" if many else f"{job}_schedule")
        for i, s in enumerate(spec.schedule)
    ]


@dataclass(frozen=True)
class PlannedStep:
    """One step with everything resolved: id, plugin, edges, policies."""

    id: str
    path: FieldPath
    """Where the step is written in its file, e.g. `("stages", 1, "parallel", 0)`."""
    node_name: str
    """The step's node in the Dagster job graph (its step key): the id, made a Dagster name."""
    op_def_name: str
    """Its op definition's name, `<job>__<node>`: unique across the code location."""
    index: int
    stage: str | None
    name: str | None
    description: str | None
    run: str
    plugin: str
    params: Mapping[str, Any]
    after: tuple[str, ...]
    depends_on: tuple[str, ...]
    data_refs: tuple[str, ...]
    when: bool | str | None
    for_each: str | list[Any] | None
    retry: RetrySpec | None
    timeout: float | None
    compensation: CompensationSpec | None
    resources: ResourcesSpec | None
    pool: str | None
    outputs: tuple[OutputSpec, ...]
    on_upstream_skip: str
    tags: Mapping[str, str]
    uses_params: bool
    secrets: tuple[str, ...]
    line: int
    column: int
    reads_run_start: bool = False
    has_independent_peers: bool = True  # see _steps_with_independent_peers
    max_parallel: int | None = None
    """A for_each step's limit on items running at once."""
    isolation: str = "thread"
    """`process`: the step runs in a process of its own."""
    compensate_self: bool = False
    """Its compensation also runs when the step itself fails (on_failure: compensate)."""

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.after, *self.depends_on, *self.data_refs)))


@dataclass(frozen=True)
class PlannedStage:
    name: str
    kind: str  # "steps" (sequential) or "parallel"
    step_ids: tuple[str, ...]


@dataclass(frozen=True)
class WorkflowPlan:
    """A checked workflow, ready to print or to build into a Dagster job."""

    spec: WorkflowSpec
    source_file: str
    job_name: str
    steps: tuple[PlannedStep, ...]  # topological order, ties broken by file order
    stages: tuple[PlannedStage, ...] = ()
    param_values: Mapping[str, Any] = field(default_factory=dict)
    document: SourceDocument | None = field(default=None, compare=False, repr=False)
    """The parsed file, for positioned messages about the plan (clashes, Dagster's checks)."""

    def step(self, step_id: str) -> PlannedStep:
        return next(s for s in self.steps if s.id == step_id)

    def where(self, step: PlannedStep) -> str:
        """`file:line` of a step, for messages that must lead back to the YAML."""
        return f"{self.source_file}:{step.line}"

    def diagnostic(self, path: FieldPath, message: str) -> Diagnostic:
        if self.document is None:
            return Diagnostic(self.source_file, 1, 1, ".".join(map(str, path)), message)
        return self.document.diagnostic(path, message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready, deterministic view: what `maestro plan --format json` prints."""
        spec = self.spec
        return {
            "workflow": spec.name,
            "version": spec.version,
            "job": self.job_name,
            "file": self.source_file,
            "description": spec.description,
            "tenant": spec.tenant,
            "environment": spec.environment,
            "on_failure": spec.on_failure,
            "executor": spec.executor,
            "max_parallel": spec.max_parallel,
            "timeout": _duration(spec.timeout),
            "budget": {
                "max_cost_usd": spec.budget.max_cost_usd,
                "max_duration": _duration(spec.budget.max_duration),
            }
            if spec.budget
            else None,
            "params": {
                name: {**p.model_dump(mode="json"), "value": self.param_values.get(name)}
                for name, p in spec.params.items()
            },
            "secrets": list(spec.secrets),
            "schedules": [s.model_dump(mode="json") for s in spec.schedule],
            "tags": dict(spec.tags),
            "stages": [
                {"name": s.name, "kind": s.kind, "steps": list(s.step_ids)} for s in self.stages
            ],
            "steps": [_step_dict(s) for s in self.steps],
            "edges": [
                {"from": up, "to": s.id, "kind": kind}
                for s in self.steps
                for kind, ups in (
                    ("order", s.after),
                    ("depends_on", s.depends_on),
                    ("data", s.data_refs),
                )
                for up in ups
            ],
        }


def _duration(seconds: float | None) -> str | None:
    return format_duration(seconds) if seconds is not None else None


def _step_dict(step: PlannedStep) -> dict[str, Any]:
    return {
        "id": step.id,
        "op": step.node_name,
        "name": step.name,
        "stage": step.stage,
        "plugin": step.plugin,
        "run": step.run,
        "with": dict(step.params),
        "after": list(step.after),
        "depends_on": list(step.depends_on),
        "data_refs": list(step.data_refs),
        "when": step.when,
        "for_each": step.for_each,
        "retry": step.retry.model_dump(mode="json") if step.retry else None,
        "timeout": _duration(step.timeout),
        "compensation": step.compensation.model_dump(mode="json", by_alias=True, exclude_none=True)
        if step.compensation
        else None,
        "compensate_self": step.compensate_self,
        "resources": step.resources.model_dump(mode="json", exclude_none=True)
        if step.resources
        else None,
        "pool": step.pool,
        "max_parallel": step.max_parallel,
        "isolation": step.isolation,
        "outputs": [o.model_dump(mode="json", exclude_defaults=True) for o in step.outputs],
        "on_upstream_skip": step.on_upstream_skip,
        "tags": dict(step.tags),
    }


# ---------------------------------------------------------------- validation of the spec


def validate_spec(doc: SourceDocument) -> WorkflowSpec:
    """pydantic validation, with every error mapped back to its file position."""
    if not isinstance(doc.value, dict):
        raise WorkflowCompileError([doc.diagnostic((), "a workflow file is a YAML mapping")])
    try:
        return WorkflowSpec.model_validate(doc.value)
    except ValidationError as exc:
        raise WorkflowCompileError(pydantic_diagnostics(exc, doc, (), doc.value)) from None


def pydantic_diagnostics(
    exc: ValidationError, doc: SourceDocument, base: FieldPath, data: Any
) -> list[Diagnostic]:
    merged: dict[FieldPath, list[str]] = {}
    for error in exc.errors(include_url=False):
        path = _data_path(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "string_too_long":
            message = f"{message} ({ID_LENGTH_REASON})"
        elif error["type"] == "missing":
            message = "field required"
        messages = merged.setdefault(_as_written((*base, *path), doc), [])
        if message not in messages:
            messages.append(message)
    return [doc.diagnostic(path, "; ".join(msgs)) for path, msgs in merged.items()]


_WRITTEN_AS = {"timeout": ("timeout_ms", "global_timeout_ms"), "backoff": ("backoff_ms",)}
"""The original system's spellings, which the spec renames before validating them."""


def _as_written(path: FieldPath, doc: SourceDocument) -> FieldPath:
    """A renamed field's path as the file spells it (`timeout_ms`), so messages point there."""
    if path in doc.positions or not path or path[-1] not in _WRITTEN_AS:
        return path
    for alias in _WRITTEN_AS[str(path[-1])]:
        if (*path[:-1], alias) in doc.positions:
            return (*path[:-1], alias)
    return path


def _data_path(loc: tuple[Any, ...], data: Any) -> FieldPath:
    """Drop pydantic's union/validator tags from `loc`, keeping the path into the data."""
    path: list[str | int] = []
    current = data
    for segment in loc:
        if (isinstance(current, dict) and segment in current) or (
            isinstance(current, list) and isinstance(segment, int) and segment < len(current)
        ):
            path.append(segment)
            current = current[segment]
        elif isinstance(current, dict) and isinstance(segment, str) and segment.isidentifier():
            if segment in {"str", "int", "float", "bool", "list", "dict"}:
                continue
            path.append(segment)  # a missing field: point at it, under its parent
            current = None
    return tuple(path)


# ---------------------------------------------------------------- planning


@dataclass
class _Draft:
    spec: StepSpec
    path: FieldPath
    id: str
    index: int
    stage: str | None
    plugin: StepPlugin | None = None
    params: dict[str, Any] = field(default_factory=dict)
    after: list[str] = field(default_factory=list)
    refs: References = field(default_factory=References)
    read_at: dict[str, FieldPath] = field(default_factory=dict)  # step id -> first template

    def edge_origin(self, upstream: str) -> FieldPath | None:
        """Where the file says this step comes after `upstream` (None: stage order)."""
        if upstream in self.spec.depends_on:
            return (*self.path, "depends_on", self.spec.depends_on.index(upstream))
        return self.read_at.get(upstream)


CronCheck = Callable[[str], bool]
"""Whether a cron string is one the scheduler runs: Dagster's own test, passed in by the
backend and the CLI (the core imports no Dagster). Without one, crons are not checked here."""


def plan_workflow(
    doc: SourceDocument,
    registry: PluginCatalog,
    param_overrides: Mapping[str, Any] | None = None,
    cron_check: CronCheck | None = None,
) -> WorkflowPlan:
    """Validate, resolve and check a workflow; raises WorkflowCompileError with every problem."""
    spec = validate_spec(doc)
    problems: list[Diagnostic] = []
    drafts, stages = _flatten(spec)
    by_id = _check_ids(drafts, doc, problems)
    for draft in drafts:
        _resolve_plugin(draft, registry, doc, problems)
        _check_templates(draft, spec, by_id, doc, problems)
        _check_depends_on(draft, by_id, doc, problems)
        if draft.spec.compensation is not None:
            _check_compensation(draft, spec, registry, doc, problems)
        elif draft.spec.compensate_self:
            problems.append(
                doc.diagnostic(
                    (*draft.path, "compensate_self"),
                    "compensate_self runs the step's compensation when it fails: give the "
                    "step a compensation: {run, with}",
                )
            )
        _check_execution(draft, spec, doc, problems)
    _check_outputs(drafts, spec, doc, problems)
    _check_schedules(spec, doc, problems, cron_check)
    param_values = _resolve_param_values(spec, param_overrides or {}, doc, problems)
    if not problems:
        order = _topological_order(drafts, doc, problems)
    if problems:
        raise WorkflowCompileError(problems)
    with_peers = _steps_with_independent_peers(drafts, order)
    job_name = job_name_for(spec.name)
    planned = tuple(
        _planned(drafts[i], spec, job_name, doc.position(drafts[i].path), i in with_peers)
        for i in order
    )
    return WorkflowPlan(
        spec=spec,
        source_file=doc.filename,
        job_name=job_name,
        steps=planned,
        stages=stages,
        param_values=param_values,
        document=doc,
    )


def _flatten(spec: WorkflowSpec) -> tuple[list[_Draft], tuple[PlannedStage, ...]]:
    """Give every step its id and its ordering edges (sequence within, barrier between stages)."""
    drafts: list[_Draft] = []
    stages: list[PlannedStage] = []
    if spec.steps is not None:
        for index, step in enumerate(spec.steps):
            drafts.append(_Draft(step, ("steps", index), step.id or f"step_{index}", index, None))
        return drafts, ()
    previous_exits: list[str] = []
    for stage_index, stage in enumerate(spec.stages or []):
        kind = "steps" if stage.steps is not None else "parallel"
        members: list[_Draft] = []
        for position, step in enumerate(stage.members):
            index = len(drafts)
            draft = _Draft(
                step,
                ("stages", stage_index, kind, position),
                step.id or f"{stage.name}_{index}",
                index,
                stage.name,
            )
            if kind == "parallel" or position == 0:
                draft.after = list(previous_exits)
            else:
                draft.after = [members[-1].id]
            members.append(draft)
            drafts.append(draft)
        previous_exits = [m.id for m in members] if kind == "parallel" else [members[-1].id]
        stages.append(PlannedStage(stage.name, kind, tuple(m.id for m in members)))
    return drafts, tuple(stages)


def _check_ids(
    drafts: list[_Draft], doc: SourceDocument, problems: list[Diagnostic]
) -> dict[str, _Draft]:
    by_id: dict[str, _Draft] = {}
    node_names: dict[str, str] = {}
    for draft in drafts:
        if draft.id in by_id:
            first = by_id[draft.id]
            line, _ = doc.position(first.path)
            problems.append(
                doc.diagnostic(
                    (*draft.path, "id"),
                    f"duplicate step id {draft.id!r} (first used on line {line})",
                )
            )
            continue
        base = node_name_for(draft.id)
        # A for_each step also owns its fan-out and collect nodes (see backend/job.py).
        suffixes = ("", *FOR_EACH_SUFFIXES) if draft.spec.for_each is not None else ("",)
        for node_name in (base + suffix for suffix in suffixes):
            if node_name in node_names:
                problems.append(
                    doc.diagnostic(
                        (*draft.path, "id"),
                        f"step id {draft.id!r} and {node_names[node_name]!r} both become "
                        f"Dagster op {node_name!r}: rename one",
                    )
                )
                break
        for node_name in (base + suffix for suffix in suffixes):
            node_names.setdefault(node_name, draft.id)
        by_id[draft.id] = draft
    return by_id


def _unknown_plugin_message(name: str, registry: PluginCatalog) -> str:
    return f"unknown plugin {name!r}; known plugins: {', '.join(registry.names())}"


def _resolve_plugin(
    draft: _Draft, registry: PluginCatalog, doc: SourceDocument, problems: list[Diagnostic]
) -> None:
    plugin = registry.get(draft.spec.run)
    if plugin is None:
        problems.append(
            doc.diagnostic((*draft.path, "run"), _unknown_plugin_message(draft.spec.run, registry))
        )
        return
    draft.plugin = plugin
    draft.params = _validated_params(
        plugin, dict(draft.spec.with_), (*draft.path, "with"), doc, problems
    )


def _validated_params(
    plugin: StepPlugin,
    raw: dict[str, Any],
    path: FieldPath,
    doc: SourceDocument,
    problems: list[Diagnostic],
) -> dict[str, Any]:
    """Check `with` against the plugin's model; fields holding templates are checked at run time."""
    try:
        raw = plugin.prepare(raw, doc.folder)
    except PrepareError as exc:
        problems.append(doc.diagnostic((*path, exc.field), str(exc)))
        return raw
    try:
        plugin.params_model.model_validate(raw)
    except ValidationError as exc:
        relevant = [e for e in exc.errors(include_url=False) if not _templated(raw, e["loc"])]
        if relevant:
            problems.extend(
                pydantic_diagnostics(
                    ValidationError.from_exception_data(exc.title, relevant),  # type: ignore[arg-type]
                    doc,
                    path,
                    raw,
                )
            )
    return raw


def _templated(raw: Any, loc: tuple[Any, ...]) -> bool:
    current = raw
    for segment in loc:
        if is_template(current):
            return True
        if (isinstance(current, dict) and segment in current) or (
            isinstance(current, list) and isinstance(segment, int) and segment < len(current)
        ):
            current = current[segment]
        else:
            break
    return is_template(current)


def _template_fields(draft: _Draft) -> Iterator[tuple[FieldPath, str, bool]]:
    """(path, template text, is_expression) for every template the step holds."""
    step = draft.spec
    if isinstance(step.when, str):
        yield (*draft.path, "when"), expression_source(step.when), True
    if isinstance(step.for_each, str):
        yield (*draft.path, "for_each"), expression_source(step.for_each), True
    elif isinstance(step.for_each, list):
        yield from _walk_templates(step.for_each, (*draft.path, "for_each"))
    yield from _walk_templates(step.with_, (*draft.path, "with"))
    for index, output in enumerate(step.outputs):
        if output.path is not None and is_template(output.path):
            yield (*draft.path, "outputs", index, "path"), output.path, False


def _walk_templates(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str, bool]]:
    if isinstance(value, str):
        if is_template(value):
            yield path, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_templates(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_templates(item, (*path, index))


def _suggest(name: str, options: Iterator[str] | list[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_templates(
    draft: _Draft,
    spec: WorkflowSpec,
    by_id: Mapping[str, _Draft],
    doc: SourceDocument,
    problems: list[Diagnostic],
) -> None:
    for path, text, expression in _template_fields(draft):
        refs = analyse_template(text, expression=expression)
        for problem in refs.problems:
            problems.append(doc.diagnostic(path, problem))
        for name in sorted(refs.params - set(spec.params)):
            problems.append(
                doc.diagnostic(path, f"unknown param {name!r}{_suggest(name, list(spec.params))}")
            )
        for name in sorted(refs.secrets - set(spec.secrets)):
            problems.append(doc.diagnostic(path, f"secret {name!r} is not declared under secrets"))
        for name in sorted(refs.steps):
            if name == draft.id:
                problems.append(doc.diagnostic(path, "a step cannot read its own output"))
            elif name not in by_id:
                problems.append(
                    doc.diagnostic(path, f"unknown step {name!r}{_suggest(name, list(by_id))}")
                )
        field_name = path[len(draft.path)]  # "with", "when" or "for_each"
        if draft.spec.for_each is None:
            for loop_name in sorted(refs.scopes & {"item", "item_index"}):
                problems.append(
                    doc.diagnostic(path, f"{loop_name!r} exists only in for_each steps")
                )
        if field_name in ("for_each", "when") and refs.scopes & {"item", "item_index"}:
            problems.append(
                doc.diagnostic(path, f"{field_name} is evaluated once per step: it cannot use item")
            )
        for name in refs.steps:
            draft.read_at.setdefault(name, path)
        draft.refs.merge(refs)
    draft.refs.steps = {s for s in draft.refs.steps if s in by_id and s != draft.id}


def _check_depends_on(
    draft: _Draft, by_id: Mapping[str, _Draft], doc: SourceDocument, problems: list[Diagnostic]
) -> None:
    for position, target in enumerate(draft.spec.depends_on):
        path = (*draft.path, "depends_on", position)
        if target == draft.id:
            problems.append(doc.diagnostic(path, "a step cannot depend on itself"))
        elif target not in by_id:
            problems.append(
                doc.diagnostic(path, f"unknown step {target!r}{_suggest(target, list(by_id))}")
            )


def default_asset_key(workflow: str, step_id: str, output: str) -> str:
    """Where a declared output appears in Dagster's asset graph unless it names its own key."""
    return f"maestro/{workflow}/{step_id}/{output}"


def _resolved_outputs(draft: _Draft, spec: WorkflowSpec) -> tuple[OutputSpec, ...]:
    return tuple(
        o
        if o.asset_key is not None
        else o.model_copy(update={"asset_key": default_asset_key(spec.name, draft.id, o.name)})
        for o in draft.spec.outputs
    )


def _check_outputs(
    drafts: list[_Draft], spec: WorkflowSpec, doc: SourceDocument, problems: list[Diagnostic]
) -> None:
    """Output names are unique per step and asset keys unique per workflow."""
    keys: dict[str, FieldPath] = {}
    for draft in drafts:
        names: set[str] = set()
        for position, output in enumerate(_resolved_outputs(draft, spec)):
            path = (*draft.path, "outputs", position)
            if output.name in names:
                problems.append(doc.diagnostic(path, f"duplicate output name {output.name!r}"))
                continue
            names.add(output.name)
            if output.path is not None and draft.spec.for_each is not None:
                problems.append(
                    doc.diagnostic(
                        (*path, "path"),
                        "file outputs (path) are not supported on for_each steps: write the "
                        "items' files in a step after it",
                    )
                )
            assert output.asset_key is not None
            if output.asset_key in keys:
                line, _ = doc.position(keys[output.asset_key])
                problems.append(
                    doc.diagnostic(
                        path,
                        f"asset key {output.asset_key!r} is already declared on line {line}",
                    )
                )
                continue
            keys[output.asset_key] = path


def _check_execution(
    draft: _Draft, spec: WorkflowSpec, doc: SourceDocument, problems: list[Diagnostic]
) -> None:
    """`max_parallel` on a step limits its for_each items; `isolation: process` needs an
    executor that can give a step its own process."""
    step = draft.spec
    if step.max_parallel is not None and step.for_each is None:
        problems.append(
            doc.diagnostic(
                (*draft.path, "max_parallel"),
                "max_parallel on a step limits its for_each items, and this step has no "
                "for_each; the workflow's max_parallel limits the whole run",
            )
        )
    if step.isolation == "process" and spec.executor == "in_process":
        line, _ = doc.position(("executor",))
        problems.append(
            doc.diagnostic(
                (*draft.path, "isolation"),
                f"isolation: process needs the threads or multiprocess executor; the workflow "
                f"says executor: in_process (line {line}), which runs every step in the run's "
                "own process",
            )
        )


COMPENSATION_SCOPES = ("step", "failure", "params", "run", "secrets")
"""What a compensation's templates may read: the original step (`step.id`, `step.params`,
`step.output`), the failure (`failure.step`, `failure.kind`, `failure.message`), and the run's
params, run info and declared secrets."""


def _check_compensation(
    draft: _Draft,
    spec: WorkflowSpec,
    registry: PluginCatalog,
    doc: SourceDocument,
    problems: list[Diagnostic],
) -> None:
    compensation = draft.spec.compensation
    assert compensation is not None
    path = (*draft.path, "compensation")
    for where, text, _ in _walk_templates(compensation.with_, (*path, "with")):
        refs = analyse_template(text)
        for problem in refs.problems:
            if not problem.startswith("unknown name") and not problem.startswith("read a step"):
                problems.append(doc.diagnostic(where, problem))
        for name in sorted(refs.scopes - set(COMPENSATION_SCOPES)):
            problems.append(
                doc.diagnostic(
                    where,
                    f"unknown name {name!r} in a compensation template: use one of "
                    f"{', '.join(COMPENSATION_SCOPES)} (step.output is the step's own output)",
                )
            )
        for name in sorted(refs.params - set(spec.params)):
            problems.append(doc.diagnostic(where, f"unknown param {name!r}"))
        for name in sorted(refs.secrets - set(spec.secrets)):
            problems.append(doc.diagnostic(where, f"secret {name!r} is not declared under secrets"))
    plugin = registry.get(compensation.run)
    if plugin is None:
        problems.append(
            doc.diagnostic((*path, "run"), _unknown_plugin_message(compensation.run, registry))
        )
        return
    _validated_params(plugin, dict(compensation.with_), (*path, "with"), doc, problems)


def schedule_path(spec_value: Any, index: int) -> FieldPath:
    """Where schedule `index` is written: `schedule[i]`, or `schedule` for a single one."""
    if isinstance(spec_value, dict) and isinstance(spec_value.get("schedule"), list):
        return ("schedule", index)
    return ("schedule",)


def _check_schedules(
    spec: WorkflowSpec,
    doc: SourceDocument,
    problems: list[Diagnostic],
    cron_check: CronCheck | None,
) -> None:
    """Names, time zones, params, and the cron strings by the scheduler's own test."""
    seen: set[str] = set()
    for index, (schedule, name) in enumerate(zip(spec.schedule, schedule_names(spec), strict=True)):
        path = schedule_path(doc.value, index)
        if name in seen:
            problems.append(doc.diagnostic((*path, "name"), f"duplicate schedule name {name!r}"))
        seen.add(name)
        if cron_check is not None and not cron_check(schedule.cron):
            problems.append(doc.diagnostic(path, f"invalid cron string {schedule.cron!r}"))
        if schedule.timezone:
            try:
                zoneinfo.ZoneInfo(schedule.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                problems.append(doc.diagnostic(path, f"unknown timezone {schedule.timezone!r}"))
        for problem in param_value_problems(spec.params, schedule.params):
            problems.append(doc.diagnostic((*path, "params"), problem))


def param_value_problems(params: Mapping[str, ParamSpec], values: Mapping[str, Any]) -> list[str]:
    """Type and presence errors for a set of param values (schedules, CLI overrides)."""
    problems = [
        f"unknown param {name!r}{_suggest(name, list(params))}"
        for name in values
        if name not in params
    ]
    for name, param in params.items():
        if name in values:
            if values[name] is None and not param.required:
                continue  # an optional param may be left empty
            if not param_value_matches(param.type, values[name]):
                problems.append(f"param {name!r} must be of type {param.type}")
        elif param.required:
            problems.append(f"required param {name!r} has no value")
    return problems


def _resolve_param_values(
    spec: WorkflowSpec,
    overrides: Mapping[str, Any],
    doc: SourceDocument,
    problems: list[Diagnostic],
) -> dict[str, Any]:
    values = {name: p.default for name, p in spec.params.items() if p.default is not None}
    values.update(overrides)
    if overrides:
        for problem in param_value_problems(spec.params, values):
            problems.append(doc.diagnostic(("params",), f"--param: {problem}"))
    return values


def _edges(draft: _Draft) -> list[str]:
    return list(dict.fromkeys([*draft.after, *draft.spec.depends_on, *sorted(draft.refs.steps)]))


def _topological_order(
    drafts: list[_Draft], doc: SourceDocument, problems: list[Diagnostic]
) -> list[int]:
    """Kahn's algorithm, ties broken by file order; a cycle is reported with its members."""
    index_of = {d.id: d.index for d in drafts}
    upstream = {d.index: [index_of[u] for u in _edges(d)] for d in drafts}
    downstream: dict[int, list[int]] = {d.index: [] for d in drafts}
    for node, ups in upstream.items():
        for up in ups:
            downstream[up].append(node)
    waiting = {node: len(set(ups)) for node, ups in upstream.items()}
    ready = sorted(node for node, count in waiting.items() if count == 0)
    order: list[int] = []
    heapq.heapify(ready)
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in dict.fromkeys(downstream[node]):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    if len(order) < len(drafts):
        cycle = _find_cycle({n: ups for n, ups in upstream.items() if n not in set(order)})
        names = " -> ".join(drafts[n].id for n in cycle)
        # Point at an edge the file spells out (a depends_on or a template read), not at an
        # implicit stage-order edge.
        origins = [
            drafts[down].edge_origin(drafts[up].id) for up, down in itertools.pairwise(cycle)
        ]
        where = next((o for o in origins if o is not None), drafts[cycle[0]].path)
        problems.append(doc.diagnostic(where, f"dependency cycle: {names}"))
    return order


def _find_cycle(upstream: Mapping[int, list[int]]) -> list[int]:
    """A cycle among the nodes left over by Kahn's algorithm, as a closed path."""
    start = min(upstream)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(u for u in upstream[node] if u in upstream)
    cycle = path[seen[node] :]
    cycle.reverse()  # upstream walk → present in execution direction
    return [*cycle, cycle[0]]


def _steps_with_independent_peers(drafts: list[_Draft], order: list[int]) -> set[int]:
    """Steps that some other step is neither before nor after: one that may fail first.

    Only these need the run-time `on_failure: stop` check; for the others, any earlier
    failure is upstream of them and Dagster already skips them.
    """
    index_of = {d.id: d.index for d in drafts}
    upstream = {d.index: [index_of[u] for u in _edges(d)] for d in drafts}
    before: dict[int, int] = {}  # bit sets of step indexes
    for node in order:
        mask = 0
        for up in upstream[node]:
            mask |= before[up] | (1 << up)
        before[node] = mask
    after: dict[int, int] = dict.fromkeys(order, 0)
    for node in reversed(order):
        for up in upstream[node]:
            after[up] |= after[node] | (1 << node)
    everyone = (1 << len(drafts)) - 1
    return {n for n in order if before[n] | after[n] | (1 << n) != everyone}


def _planned(
    draft: _Draft,
    spec: WorkflowSpec,
    job_name: str,
    position: tuple[int, int],
    has_independent_peers: bool,
) -> PlannedStep:
    step = draft.spec
    defaults = spec.defaults
    plugin = draft.plugin
    assert plugin is not None
    data_refs = tuple(sorted(draft.refs.steps))
    node_name = node_name_for(draft.id)
    return PlannedStep(
        id=draft.id,
        path=draft.path,
        node_name=node_name,
        op_def_name=op_definition_name(job_name, node_name),
        index=draft.index,
        stage=draft.stage,
        name=step.name,
        description=step.description,
        run=step.run,
        plugin=plugin.name,
        params=draft.params,
        after=tuple(draft.after),
        depends_on=tuple(dict.fromkeys(step.depends_on)),
        data_refs=data_refs,
        when=step.when,
        for_each=step.for_each,
        retry=step.retry or (defaults.retry if defaults else None),
        timeout=step.timeout
        if step.timeout is not None
        else (defaults.timeout if defaults else None),
        compensation=step.compensation,
        resources=step.resources,
        pool=step.pool or plugin.default_pool,
        outputs=_resolved_outputs(draft, spec),
        on_upstream_skip=step.on_upstream_skip,
        tags=dict(step.tags),
        uses_params="params" in draft.refs.scopes,
        secrets=tuple(sorted(draft.refs.secrets)),
        line=position[0],
        column=position[1],
        reads_run_start="started_at" in draft.refs.run_fields,
        has_independent_peers=has_independent_peers,
        max_parallel=step.max_parallel,
        isolation=step.isolation,
        compensate_self=step.compensate_self,
    )
