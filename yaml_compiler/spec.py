"""The Maestro DSL, version 1, as pydantic models: the single source of truth for its shape.

Shorthands and the original system's spellings (`timeout_ms`, `backoff_ms`, `global_timeout_ms`,
compensation `{plugin, config}`) are normalised here, so later stages see one form.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from maestro_common.durations import parse_duration
from maestro_common.values import TextMap

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; written in YAML as `500ms`, `30s`, `5m`, `2h` or a number."""

WORKFLOW_NAME = r"^[A-Za-z0-9_-]+$"
STEP_ID = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)

ErrorKind = Literal[
    "timeout",
    "exit_code",
    "http_status",
    "connection",
    # LLM steps (litellm.generate, ollama.*)
    "rate_limit",
    "server_error",
    "context_window",
    "invalid_output",
    "model_not_found",
    "gpu_unavailable",
    "auth",
    "bad_request",
    "plugin_error",
]
ParamType = Literal["string", "integer", "number", "boolean", "list", "object"]
OnFailure = Literal["stop", "continue", "compensate"]
ExecutorKind = Literal["threads", "in_process", "multiprocess"]
"""How a run's steps execute (resources/executor restates the same names; a test compares)."""
Isolation = Literal["thread", "process"]
MAX_PARALLEL_LIMIT = 1000


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _millis_alias(data: Any, alias: str, field: str) -> Any:
    """Accept the original system's `<field>_ms` integer next to the DSL's duration field."""
    if isinstance(data, dict) and alias in data:
        if field in data:
            raise ValueError(f"give either {field} or {alias}, not both")
        data = dict(data)
        millis = data.pop(alias)
        if isinstance(millis, bool) or not isinstance(millis, (int, float)):
            raise ValueError(f"{alias} must be a number of milliseconds")
        data[field] = millis / 1000
    return data


def _check_semver(value: str) -> str:
    if not SEMVER.match(value):
        raise ValueError(f"{value!r} is not a semantic version like 1.2.3")
    return value


Tags = TextMap


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_collections(cls, data: Any) -> Any:
        """`params:` with nothing after it reads as "no params", not as a type error."""
        if not isinstance(data, dict):
            return data
        collections = {
            info.alias or name
            for name, info in cls.model_fields.items()
            if info.default_factory is not None
        }
        return {k: v for k, v in data.items() if v is not None or k not in collections}


class RetrySpec(_Model):
    """How often and how patiently a failing step is tried again."""

    max_attempts: int = Field(3, ge=1, le=100, description="Total tries, the first included.")
    backoff: Duration | None = Field(None, description="Delay before a retry (also `backoff_ms`).")
    exponential: bool = Field(
        False, description="Grow the delay exponentially: backoff times 1, 3, 7, 15, ..."
    )
    jitter: bool | Literal["full", "plus_minus"] = Field(
        False, description="Randomise the delay: `true`/`plus_minus` or `full`."
    )
    retry_on: list[ErrorKind] | None = Field(
        None, description="Error kinds worth a retry; all kinds when omitted."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, int) and not isinstance(data, bool):
            return {"max_attempts": data}
        return _millis_alias(data, "backoff_ms", "backoff")

    @model_validator(mode="after")
    def _modifiers_need_a_delay(self) -> RetrySpec:
        if (self.exponential or self.jitter) and self.backoff is None:
            raise ValueError("exponential and jitter modify backoff: give a backoff delay too")
        return self


class CompensationSpec(_Model):
    """The step that undoes this one when the workflow fails with `on_failure: compensate`."""

    run: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")

    @model_validator(mode="before")
    @classmethod
    def _original_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("plugin" in data or "config" in data):
            data = dict(data)
            if "plugin" in data:
                if "run" in data:
                    raise ValueError("give either run or plugin, not both")
                data["run"] = data.pop("plugin")
            if "config" in data:
                if "with" in data:
                    raise ValueError("give either with or config, not both")
                data["with"] = data.pop("config")
        return data


class ResourcesSpec(_Model):
    """What a step needs from the machine; kept as op tags for placement."""

    cpu: str | int | float | None = None
    memory: str | None = None
    gpu: int | None = Field(None, ge=0)


def _file_path(value: str) -> str:
    if not value.strip():
        raise ValueError("path is empty")
    if "\x00" in value:
        raise ValueError("path contains a NUL character")
    if value.endswith(("/", "/.", "/..")) or value in {".", ".."}:
        raise ValueError(f"path {value!r} names a folder; a file output is one file")
    return value


ASSET_KEY = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


class OutputSpec(_Model):
    """An artifact a step declares, materialised as a Dagster asset; the name alone is enough.

    `asset_key` is `/`-separated; without it the plan gives `maestro/<workflow>/<step>/<name>`.
    `path` makes it a file output: the file the step writes there (a template, rendered at run
    time; relative to the step's `cwd`, else the worker's working directory) is streamed into
    the content store as raw bytes, and downstream templates see its pointer, not its bytes.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    asset_key: Annotated[str, Field(pattern=ASSET_KEY)] | None = None
    description: str | None = None
    path: Annotated[str, AfterValidator(_file_path)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class StepSpec(_Model):
    """One unit of work: a plugin (`run`) called with parameters (`with`)."""

    id: Annotated[str, Field(pattern=STEP_ID)] | None = None
    name: str | None = None
    description: str | None = None
    run: str = Field(description="The plugin, e.g. shell, http.request, litellm.generate.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    depends_on: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    when: bool | str | None = None
    for_each: str | list[Any] | None = None
    retry: RetrySpec | None = None
    timeout: Duration | None = None
    compensation: CompensationSpec | None = None
    resources: ResourcesSpec | None = None
    pool: str | None = None
    max_parallel: int | None = Field(
        None,
        ge=1,
        le=MAX_PARALLEL_LIMIT,
        description="for_each only: how many items run at once.",
    )
    isolation: Isolation = Field(
        "thread", description="`process` runs the step in a process of its own (CPU-bound work)."
    )
    outputs: list[OutputSpec] = Field(default_factory=list)
    on_upstream_skip: Literal["skip", "run"] = Field(
        "skip", description="`run` to start even when a `depends_on` step was skipped."
    )
    tags: Tags = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("with") is None and "with" in data:
            data = {**data, "with": {}}
        return _millis_alias(data, "timeout_ms", "timeout")


class StageSpec(_Model):
    """Steps that run one after another (`steps`) or together (`parallel`)."""

    name: Annotated[str, Field(pattern=STEP_ID)]
    steps: list[StepSpec] | None = None
    parallel: list[StepSpec] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StageSpec:
        if (self.steps is None) == (self.parallel is None):
            raise ValueError("a stage has either steps or parallel (exactly one of them)")
        if not (self.steps or self.parallel):
            raise ValueError("a stage needs at least one step")
        return self

    @property
    def members(self) -> list[StepSpec]:
        return list(self.steps or self.parallel or [])


class ParamSpec(_Model):
    """A typed workflow input; becomes Dagster run config shown in the launchpad."""

    type: ParamType = "string"
    default: Any = None
    required: bool = False
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("type" in data or "default" in data or "required" in data):
            return data
        if isinstance(data, dict) and set(data) <= {"description"}:
            return data
        return {"type": python_param_type(data), "default": data}

    @model_validator(mode="after")
    def _default_matches(self) -> ParamSpec:
        if self.default is not None and not param_value_matches(self.type, self.default):
            raise ValueError(f"default {self.default!r} is not of type {self.type}")
        if self.required and self.default is not None:
            raise ValueError("a required param has no default")
        return self


def python_param_type(value: Any) -> ParamType:
    """The DSL type of a literal YAML value (params shorthand `name: value`)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string"


def param_value_matches(kind: ParamType, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return isinstance(value, str)


class BudgetSpec(_Model):
    max_cost_usd: float | None = Field(None, ge=0)
    max_duration: Duration | None = None


class DefaultsSpec(_Model):
    """Applied to every step that does not say otherwise."""

    retry: RetrySpec | None = None
    timeout: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _millis_alias(data, "timeout_ms", "timeout")


class ScheduleSpec(_Model):
    cron: str
    params: dict[str, Any] = Field(default_factory=dict)
    timezone: str | None = None
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")] | None = None


def _schedule_list(value: Any) -> Any:
    if isinstance(value, str):
        return [{"cron": value}]
    if isinstance(value, dict):
        return [value]
    return value


class WorkflowSpec(_Model):
    """A whole workflow file."""

    name: Annotated[str, Field(pattern=WORKFLOW_NAME)]
    version: Annotated[str, AfterValidator(_check_semver)] = "0.0.0"
    description: str | None = None
    tenant: Annotated[str, Field(pattern=WORKFLOW_NAME)] = "default"
    environment: Annotated[str, Field(pattern=WORKFLOW_NAME)] = "dev"
    params: dict[Annotated[str, Field(pattern=ENV_NAME)], ParamSpec] = Field(default_factory=dict)
    secrets: list[Annotated[str, Field(pattern=ENV_NAME)]] = Field(default_factory=list)
    budget: BudgetSpec | None = None
    timeout: Duration | None = Field(None, description="Whole-run limit (or global_timeout_ms).")
    on_failure: OnFailure = "stop"
    executor: ExecutorKind | None = Field(
        None,
        description="threads (default; or MAESTRO_EXECUTOR), in_process or multiprocess.",
    )
    max_parallel: int | None = Field(
        None, ge=1, le=MAX_PARALLEL_LIMIT, description="How many steps of a run run at once."
    )
    defaults: DefaultsSpec | None = None
    schedule: Annotated[list[ScheduleSpec], BeforeValidator(_schedule_list)] = Field(
        default_factory=list
    )
    tags: Tags = Field(default_factory=dict)
    stages: list[StageSpec] | None = None
    steps: list[StepSpec] | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), (int, float)):
            data = {**data, "version": str(data["version"])}
        return _millis_alias(data, "global_timeout_ms", "timeout")

    @property
    def run_time_limit(self) -> float | None:
        """Seconds a whole run may take: the tighter of `timeout` and `budget.max_duration`."""
        limits = [self.timeout, self.budget.max_duration if self.budget else None]
        known = [limit for limit in limits if limit is not None]
        return min(known) if known else None

    @model_validator(mode="after")
    def _one_layout(self) -> WorkflowSpec:
        if (self.stages is None) == (self.steps is None):
            raise ValueError("a workflow has either stages or steps (exactly one of them)")
        if not (self.stages or self.steps):
            raise ValueError("a workflow needs at least one step")
        return self
