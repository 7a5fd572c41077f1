"""What a compiled op does when it runs: gate, render, evaluate `when`, call the plugin, report.

The functions here are the only run-time code of the compiler. They keep Dagster at the edges:
templates, timeouts, error kinds and redaction are plain Python, tested on their own.
"""

import json
import os
import shlex
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEventType
from jinja2 import TemplateError
from pydantic import ValidationError

from resources.plugins import (
    BudgetExceededError,
    Plugin,
    PluginNotInstalledError,
    PolicyDeniedError,
    RunInfo,
    StepContext,
    StepError,
    StepTimeoutError,
)
from resources.policy import enforce
from resources.policy.store import store_for
from resources.sentinels import SENTINEL_KEY, is_skipped, skip_marker
from yaml_compiler.plan import PlannedStep
from yaml_compiler.spec import WorkflowSpec
from yaml_compiler.templating import evaluate, render_string, render_value

EMPTY = {SENTINEL_KEY: "empty"}  # a for_each over an empty list: still collects, to []
STOPPED = {SENTINEL_KEY: "stopped"}  # an item not started after a failure (on_failure: stop)
_TIMEOUT_GRACE_SECONDS = 3.0


class StepConfigError(StepError):
    """Bad rendered parameters or templates: retrying cannot help."""


@dataclass(frozen=True)
class StepRuntime:
    """What an op needs at run time, fixed at compile time."""

    step: PlannedStep
    plugin: Plugin
    workflow: WorkflowSpec
    data_inputs: Mapping[str, str]  # `from_<op>` input -> upstream step id (outputs read)
    gate_inputs: Mapping[str, str]  # `needs_<op>` input -> depends_on step id (skip check)
    workflow_summary: Mapping[str, Any] = field(default_factory=dict)
    """What `maestro.workflow` is asked about this workflow (plugins, models, secrets...)."""

    @property
    def retryable_kinds(self) -> frozenset[str] | None:
        retry = self.step.retry
        if retry is None:
            return frozenset()
        return None if retry.retry_on is None else frozenset(retry.retry_on)


class Redactor:
    """Replaces secret values with `***` in anything that may reach a log or an event."""

    def __init__(self, secret_names: tuple[str, ...]):
        forms: set[str] = set()
        for value in (os.environ.get(name, "") for name in secret_names):
            # The value as written, as a shell command quotes it, and line by line (output
            # and error messages are handled a line at a time).
            forms |= {value, shlex.quote(value)}
            forms |= {line.strip() for line in value.splitlines()}
        self._values = sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
        return text


class _RedactingLog:
    def __init__(self, log: Any, redact: Redactor):
        self._log, self._redact = log, redact

    def info(self, msg: str) -> None:
        self._log.info(self._redact(msg))

    def warning(self, msg: str) -> None:
        self._log.warning(self._redact(msg))

    def error(self, msg: str) -> None:
        self._log.error(self._redact(msg))

    def debug(self, msg: str) -> None:
        self._log.debug(self._redact(msg))


# ---------------------------------------------------------------- gates


def run_has_failed(context: dg.OpExecutionContext) -> bool:
    """True once any step of this run has failed for good (retries exhausted)."""
    records = context.instance.get_records_for_run(
        run_id=context.run_id, of_type=DagsterEventType.STEP_FAILURE, limit=1
    ).records
    return bool(records)


def _stopped(
    context: dg.OpExecutionContext, runtime: StepRuntime, *, has_peers: bool | None = None
) -> bool:
    peers = runtime.step.has_independent_peers if has_peers is None else has_peers
    if runtime.workflow.on_failure == "stop" and peers and run_has_failed(context):
        context.log.info(
            f"not starting step {runtime.step.id!r}: an earlier step failed (on_failure: stop)"
        )
        return True
    return False


def _run_budget(runtime: StepRuntime) -> float | None:
    budget = runtime.workflow.budget
    return None if budget is None else budget.max_cost_usd


def _run_spend(context: dg.OpExecutionContext, run_budget: float | None) -> float:
    """What this run has spent so far (the cost ledger's sum for the run, failed steps and
    retried attempts included); only read when the run has a budget to check it against."""
    return 0.0 if run_budget is None else store_for(context.instance).run_spend(context.run_id)


def estimated_cost(runtime: StepRuntime, params: Any, ctx: StepContext) -> float:
    """The plugin's estimate for these params; 0 for plugins that never spend."""
    estimate_cost = runtime.plugin.estimate_cost
    return 0.0 if estimate_cost is None else float(estimate_cost(params, ctx))


def check_budget(runtime: StepRuntime, ctx: StepContext, estimate: float) -> None:
    """Refuse, before any call, a step whose estimated cost exceeds what the run has left."""
    remaining = ctx.budget_remaining_usd
    if runtime.plugin.estimate_cost is None or remaining is None or estimate <= remaining:
        return
    raise BudgetExceededError(
        f"over budget: step {runtime.step.id!r} may cost ${estimate:.6f}, the run has "
        f"${max(remaining, 0.0):.6f} left of its ${_run_budget(runtime):g} budget "
        "(budget.max_cost_usd); no call was made",
        estimated_cost_usd=estimate,
        budget_remaining_usd=remaining,
    )


def _run_started_at(context: dg.OpExecutionContext) -> datetime:
    record = context.instance.get_run_record_by_id(context.run_id)
    started = record.start_time if record and record.start_time else time.time()
    return datetime.fromtimestamp(started, tz=UTC)


# ---------------------------------------------------------------- templates


def template_context(
    context: dg.OpExecutionContext,
    runtime: StepRuntime,
    upstream: Mapping[str, Any],
    item: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    step, spec = runtime.step, runtime.workflow
    started = _run_started_at(context).isoformat() if step.reads_run_start else ""
    scope: dict[str, Any] = {
        "params": context.op_config.get("params", {}) if step.uses_params else {},
        "run": RunInfo(context.run_id, spec.name, spec.tenant, spec.environment, started),
        "steps": {step_id: {"output": value} for step_id, value in upstream.items()},
        "secrets": _secret_values(step.secrets),
    }
    if item is not None:
        scope["item"], scope["item_index"] = item["value"], item["index"]
    return scope


def _secret_values(names: tuple[str, ...]) -> dict[str, str]:
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise StepConfigError(f"secret(s) not set in the environment: {', '.join(missing)}")
    return {name: os.environ[name] for name in names}


def _describe(error: Exception) -> str:
    """Jinja's messages stand alone; other errors (ZeroDivisionError...) need their type."""
    return str(error) if isinstance(error, TemplateError) else f"{type(error).__name__}: {error}"


def _render_params(runtime: StepRuntime, scope: Mapping[str, Any]) -> Any:
    plugin = runtime.plugin
    raw = runtime.step.params
    try:
        if plugin.render is not None:

            def render(value: Any, shell_quoted: bool = False) -> Any:
                if shell_quoted and isinstance(value, str):
                    return render_string(value, scope, shell_quoted=True)
                return render_value(value, scope)

            rendered = plugin.render(raw, render)
        else:
            rendered = render_value(raw, scope)
    except Exception as exc:  # Jinja's own errors, and e.g. ZeroDivisionError from `{{ 1 / 0 }}`
        raise StepConfigError(f"template error in `with`: {_describe(exc)}") from exc
    try:
        return plugin.params_model.model_validate(rendered)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise StepConfigError(f"invalid parameters for {plugin.name}: {problems}") from exc


def condition_holds(runtime: StepRuntime, scope: Mapping[str, Any]) -> bool:
    when = runtime.step.when
    if when is None or isinstance(when, bool):
        return when is not False
    try:
        return bool(evaluate(when, scope))
    except Exception as exc:
        raise StepConfigError(f"cannot evaluate when: {_describe(exc)}") from exc


def for_each_items(runtime: StepRuntime, scope: Mapping[str, Any]) -> list[Any]:
    source = runtime.step.for_each
    try:
        items = (
            render_value(source, scope)
            if isinstance(source, list)
            else evaluate(str(source), scope)
        )
    except Exception as exc:
        raise StepConfigError(f"cannot evaluate for_each: {_describe(exc)}") from exc
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise StepConfigError(f"for_each must give a list, got {type(items).__name__}")
    return list(items.items() if isinstance(items, Mapping) else items)


# ---------------------------------------------------------------- plugin call


def workflow_dir_of(context: dg.OpExecutionContext) -> Path | None:
    """The workflow file's folder, from the job's `maestro/source` metadata (set at build).

    Resolved the way the compiler resolved it for `prepare`, in the process that built the job
    (`maestro run`, the code location, `dagster job execute` all compile where they run).
    """
    try:
        source = context.job_def.metadata.get("maestro/source")
    except Exception:  # a context without a job definition
        return None
    path = getattr(source, "path", None)
    return Path(path).resolve().parent if isinstance(path, str) and path else None


def _deadline(context: dg.OpExecutionContext, runtime: StepRuntime) -> float | None:
    """The earlier of the step timeout and what is left of the whole-run timeout."""
    limits = []
    if runtime.step.timeout is not None:
        limits.append(runtime.step.timeout)
    run_timeout = runtime.workflow.run_time_limit
    if run_timeout is not None:
        elapsed = (datetime.now(UTC) - _run_started_at(context)).total_seconds()
        left = run_timeout - elapsed
        if left <= 0:
            raise StepTimeoutError(f"the workflow's time limit of {run_timeout:g}s has passed")
        limits.append(left)
    return time.monotonic() + min(limits) if limits else None


def call_plugin(plugin: Plugin, params: Any, ctx: StepContext) -> Any:
    """Run the plugin, in a watched thread when there is a deadline (Dagster has no op timeout)."""
    if plugin.run is None:
        raise PluginNotInstalledError(
            f"plugin {plugin.name!r} is not installed yet ({plugin.pending} provides it)"
        )
    if ctx.deadline is None:
        return plugin.run(params, ctx)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = plugin.run(params, ctx)  # type: ignore[misc]
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"maestro-{ctx.step_id}", daemon=True)
    worker.start()
    worker.join(ctx.remaining())
    if worker.is_alive():
        ctx.cancelled.set()  # plugins that own processes stop them on this signal
        worker.join(_TIMEOUT_GRACE_SECONDS)
        if not isinstance(outcome.get("error"), StepTimeoutError):
            raise StepTimeoutError(f"step {ctx.step_id!r} did not finish within its timeout")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _check_json(value: Any, step_id: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise StepError(f"step {step_id!r} returned a value that is not JSON: {exc}") from exc


def resolve_output_path(rendered: str, params: Any) -> Path:
    """A file output's path: relative ones resolve against the step's `cwd` (shell), else the
    worker's working directory, i.e. where the command wrote them."""
    cwd = getattr(params, "cwd", None)
    path = Path(rendered).expanduser()
    return path if path.is_absolute() else (Path(cwd) if cwd else Path.cwd()) / path


def store_file_outputs(
    context: dg.OpExecutionContext,
    runtime: StepRuntime,
    scope: Mapping[str, Any],
    params: Any,
    output: Any,
) -> Any:
    """Stream the files a step declared (`outputs: [{name, path}]`) into the content store;
    the step's output gains `{name: {sha256, size, uri, media_type, serializer, path}}`."""
    files = [o for o in runtime.step.outputs if o.path is not None]
    if not files:
        return output
    step_id = runtime.step.id
    if not isinstance(output, dict):
        raise StepError(
            f"step {step_id!r} declares file outputs but its plugin returned "
            f"{type(output).__name__}, not a mapping to add them to",
            kind="invalid_output",
        )
    writer = getattr(context.resources, "io_manager", None)
    if not callable(getattr(writer, "store_file_output", None)):
        raise StepConfigError(
            f"step {step_id!r} declares file outputs: they need the content store "
            "(io_manager = resources.artifacts.ArtifactsIOManager)"
        )
    stored = dict(output)
    found: list[tuple[str, str, Path]] = []
    for spec in files:
        assert spec.path is not None and spec.asset_key is not None
        if spec.name in stored:
            raise StepError(
                f"output {spec.name!r}: the plugin's output already has a key {spec.name!r}",
                kind="invalid_output",
            )
        try:
            rendered = render_string(spec.path, scope)
        except Exception as exc:
            raise StepConfigError(
                f"output {spec.name!r}: template error in path: {_describe(exc)}"
            ) from exc
        if not isinstance(rendered, str) or not rendered.strip():
            raise StepConfigError(f"output {spec.name!r}: path rendered to {rendered!r}")
        path = resolve_output_path(rendered, params)
        if not path.is_file():
            state = "is not a regular file" if path.exists() else "does not exist"
            raise StepError(
                f"output {spec.name!r}: step {step_id!r} succeeded but its file {rendered!r} "
                f"({path}) {state}",
                kind="invalid_output",
                output=spec.name,
                path=str(path),
            )
        found.append((spec.name, spec.asset_key, path))
    for name, asset_key, path in found:  # every file is there: nothing is stored half-way
        stored[name] = writer.store_file_output(context, name, asset_key, path)
        context.log.info(f"stored file output {name!r}: {path} ({stored[name]['size']} bytes)")
    return stored


def _failure(
    runtime: StepRuntime, error: BaseException, redact: Redactor, cost_usd: float = 0.0
) -> dg.Failure:
    kind = getattr(error, "kind", "plugin_error")
    kinds = runtime.retryable_kinds
    permanent = StepConfigError | PluginNotInstalledError | BudgetExceededError | PolicyDeniedError
    retryable = not isinstance(error, permanent) and (kinds is None or kind in kinds)
    message = redact(f"{type(error).__name__}: {error}" if kind == "plugin_error" else str(error))
    metadata: dict[str, Any] = {
        "error_kind": kind,
        "step_id": runtime.step.id,
        "plugin": runtime.plugin.name,
        "retryable": retryable,
    }
    for key, value in getattr(error, "metadata", {}).items():
        if isinstance(value, (str, int, float, bool)):
            metadata[key] = redact(value) if isinstance(value, str) else value
    if cost_usd:
        metadata["cost_usd"] = cost_usd  # spent before failing: still counts against the budget
    return dg.Failure(
        description=f"step {runtime.step.id!r} failed ({kind}): {message}",
        metadata=metadata,
        allow_retries=retryable,
    )


@dataclass(frozen=True)
class StepResult:
    ran: bool  # False when `when` is false
    value: Any = None
    cost_usd: float = 0.0
    policy_decision_id: str | None = None
    policy_version: str | None = None


def execute_step(
    context: dg.OpExecutionContext,
    runtime: StepRuntime,
    upstream: Mapping[str, Any],
    item: Mapping[str, Any] | None = None,
    check_when: bool = True,
) -> StepResult:
    """Admit the run, render, check the budget and the policy, call the plugin, record its cost.

    Errors become dg.Failure.
    """
    redact = Redactor(tuple(runtime.workflow.secrets))
    step_context: StepContext | None = None
    try:
        enforce.admit_run(context, runtime.workflow, runtime.workflow_summary)
        scope = template_context(context, runtime, upstream, item)
        if check_when and not condition_holds(runtime, scope):
            context.log.info(f"skipping step {runtime.step.id!r}: when is false")
            return StepResult(ran=False)
        params = _render_params(runtime, scope)
        run_budget = _run_budget(runtime)
        run_spend = _run_spend(context, run_budget)
        step_context = StepContext(
            step_id=runtime.step.id,
            run=scope["run"],
            log=_RedactingLog(context.log, redact),
            upstream=dict(upstream),
            resources={
                key: getattr(context.resources, key) for key in runtime.plugin.resource_keys
            },
            deadline=_deadline(context, runtime),
            redact=redact,
            budget_remaining_usd=None if run_budget is None else run_budget - run_spend,
            workflow_dir=workflow_dir_of(context),
        )
        estimate = estimated_cost(runtime, params, step_context)
        check_budget(runtime, step_context, estimate)
        decision, decision_id = enforce.check_step(
            context,
            spec=runtime.workflow,
            step_id=runtime.step.id,
            plugin=runtime.plugin.name,
            params=params,
            secrets=runtime.step.secrets,
            estimated_cost_usd=estimate,
            run_spend_usd=run_spend,
            run_budget_usd=run_budget,
            reachable_models=_reachable_models(runtime, params, step_context),
        )
        try:
            output = call_plugin(runtime.plugin, params, step_context)
        finally:
            _record_cost(context, runtime, step_context.cost_usd)
        _check_json(output, runtime.step.id)
        output = store_file_outputs(context, runtime, scope, params, output)
        return StepResult(
            ran=True,
            value=output,
            cost_usd=step_context.cost_usd,
            policy_decision_id=decision_id,
            policy_version=decision.policy_version,
        )
    except dg.Failure:
        raise
    except Exception as exc:
        spent = step_context.cost_usd if step_context is not None else 0.0
        raise _failure(runtime, exc, redact, cost_usd=spent) from None


def _reachable_models(runtime: StepRuntime, params: Any, ctx: StepContext) -> Sequence[str]:
    """Models the plugin may fall back to beyond its params (LiteLLM Router fallbacks)."""
    models_for = runtime.plugin.models_for
    return models_for(params, ctx) if models_for is not None else ()


def _record_cost(context: dg.OpExecutionContext, runtime: StepRuntime, cost_usd: float) -> None:
    if cost_usd > 0:
        enforce.record_cost(context, runtime.workflow, runtime.step.id, cost_usd)


# ---------------------------------------------------------------- op bodies


def _upstream(runtime: StepRuntime, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs the templates read; a skipped upstream reads as None (with on_upstream_skip)."""
    return {
        step_id: None if is_skipped(inputs[name]) else inputs[name]
        for name, step_id in runtime.data_inputs.items()
    }


def _skipped_upstream(runtime: StepRuntime, inputs: Mapping[str, Any]) -> str | None:
    """The first upstream that was skipped, when this step must be skipped with it."""
    if runtime.step.on_upstream_skip == "run":
        return None
    for name, step_id in (*runtime.gate_inputs.items(), *runtime.data_inputs.items()):
        if is_skipped(inputs[name]):
            return step_id
    return None


def _skipped(context: dg.OpExecutionContext, runtime: StepRuntime, reason: str) -> dg.Output:
    context.log.info(f"skipping step {runtime.step.id!r}: {reason}")
    return dg.Output(skip_marker(reason), "result", metadata={"skipped": reason})


def _output_metadata(
    runtime: StepRuntime, context: dg.OpExecutionContext, result: StepResult
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "step_id": runtime.step.id,
        "plugin": runtime.plugin.name,
        "attempt": context.retry_number + 1,
    }
    if result.cost_usd:
        metadata["cost_usd"] = result.cost_usd
    if result.policy_decision_id:
        metadata["policy_decision_id"] = result.policy_decision_id
        metadata["policy_version"] = result.policy_version
    return metadata


def step_body(runtime: StepRuntime):
    """The compute function of a plain step op."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        if _stopped(context, runtime):
            return
        skipped_by = _skipped_upstream(runtime, inputs)
        if skipped_by is not None:
            yield _skipped(context, runtime, f"upstream step {skipped_by!r} was skipped")
            return
        result = execute_step(context, runtime, _upstream(runtime, inputs))
        if result.ran:
            yield dg.Output(
                result.value, "result", metadata=_output_metadata(runtime, context, result)
            )
        else:
            yield _skipped(context, runtime, "when is false")

    return compute


def fanout_body(runtime: StepRuntime):
    """for_each, part 1: evaluate `when` and the list, emit one dynamic output per item."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        if _stopped(context, runtime):
            return
        skipped_by = _skipped_upstream(runtime, inputs)
        reason = f"upstream step {skipped_by!r} was skipped" if skipped_by else None
        redact = Redactor(tuple(runtime.workflow.secrets))
        try:
            scope = template_context(context, runtime, _upstream(runtime, inputs))
            if reason is None and not condition_holds(runtime, scope):
                reason = "when is false"
            items = for_each_items(runtime, scope) if reason is None else []
        except Exception as exc:
            raise _failure(runtime, exc, redact) from None
        if reason is not None:
            context.log.info(f"skipping step {runtime.step.id!r}: {reason}")
            yield dg.DynamicOutput(skip_marker(reason), mapping_key="skipped", output_name="items")
            return
        context.log.info(f"step {runtime.step.id!r}: {len(items)} item(s)")
        if not items:
            yield dg.DynamicOutput(EMPTY, mapping_key="empty", output_name="items")
        for index, value in enumerate(items):
            yield dg.DynamicOutput(
                {"index": index, "value": value}, mapping_key=str(index), output_name="items"
            )

    return compute


def mapped_body(runtime: StepRuntime):
    """for_each, part 2: run the plugin for one item."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        item = inputs["item"]
        if SENTINEL_KEY in item:
            yield dg.Output(item, "result")
            return
        if _stopped(context, runtime, has_peers=True):  # the other items are its peers
            yield dg.Output(STOPPED, "result", metadata={"skipped": "an earlier step failed"})
            return
        result = execute_step(
            context, runtime, _upstream(runtime, inputs), item=item, check_when=False
        )
        yield dg.Output(
            {"index": item["index"], "value": result.value},
            "result",
            metadata=_output_metadata(runtime, context, result),
        )

    return compute


def collect_body(runtime: StepRuntime):
    """for_each, part 3: the per-item outputs, in item order, as the step's output."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        results = inputs["results"]
        if STOPPED in results:
            return  # on_failure: stop ended the fan-out: no output, so nothing downstream runs
        skipped = next((r for r in results if is_skipped(r)), None)
        if skipped is not None:
            yield dg.Output(skipped, "result", metadata={"skipped": skipped["reason"]})
            return
        ordered = sorted((r for r in results if SENTINEL_KEY not in r), key=lambda r: r["index"])
        yield dg.Output(
            [r["value"] for r in ordered],
            "result",
            metadata={"step_id": runtime.step.id, "items": len(ordered)},
        )

    return compute
