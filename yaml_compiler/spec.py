"""The Maestro DSL, version 1, as pydantic models: the single source of truth for its shape.

Shorthands and the original system's spellings (`timeout_ms`, `backoff_ms`, `global_timeout_ms`,
compensation `{plugin, config}`) are normalised here, so later stages see one form.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from maestro_common.durations import at_most, format_duration, parse_duration
from maestro_common.values import TextMap, is_template

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; written in YAML as `500ms`, `30s`, `5m`, `2h` or a number (at most 365d)."""

MAX_STEP_TIMEOUT = 7 * 86400.0
"""A step's `timeout` (and `defaults.timeout`): a week."""
MAX_RUN_TIMEOUT = 30 * 86400.0
"""A workflow's `timeout` and `budget.max_duration`: 30 days."""
MAX_RETRY_DELAY = 86400.0
"""`retry.backoff`, and the longest wait before a retry it leads to (exponential growth
included): a day. Dagster computes `backoff * (2**n - 1)`, which would wait for years."""
StepTimeout = Annotated[Duration, AfterValidator(at_most(MAX_STEP_TIMEOUT, "a step timeout"))]
RunTimeout = Annotated[Duration, AfterValidator(at_most(MAX_RUN_TIMEOUT, "a workflow time limit"))]
Backoff = Annotated[Duration, AfterValidator(at_most(MAX_RETRY_DELAY, "a retry backoff"))]

MAX_ID_LENGTH = 64
"""Ids and names (workflow, tenant, environment, stage, step, output, param, secret, schedule):
they become Dagster step keys (`<id>[<index>]`, `<id>__collect`), op names (`<job>__<id>`),
folder and file names in the artifact store (255 bytes at most on common filesystems) and
VARCHAR(255) columns of the policy store on PostgreSQL, where a 300-character step id made
the run fail at its first policy decision."""
MAX_ASSET_KEY_LENGTH = 255
ID_LENGTH_REASON = (
    "ids and names become Dagster step keys, artifact-store file names and database columns"
)

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
ExecutorKind = Literal["threads", "in_process", "multiprocess", "k8s"]
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


RESERVED_TAG_NAMESPACES = ("maestro", "dagster", ".dagster")
"""Tag keys under these namespaces (`maestro/tenant`, `dagster/max_runtime`, `dagster-k8s/config`)
are set by Maestro and read by Dagster: a workflow's own tag would override them (a workflow
could name another tenant, or hand Kubernetes a pod spec), so the DSL refuses them."""
USER_DAGSTER_TAGS = frozenset({"dagster/priority"})
"""Dagster tags a workflow may set itself: a run's place in the queue, a step's order among
the ready steps (both read by Dagster, neither can reach another tenant or a pod spec)."""


def _user_tags(tags: dict[str, str]) -> dict[str, str]:
    for key in tags:
        namespace, slash, _ = key.partition("/")
        if key in USER_DAGSTER_TAGS:
            continue
        if slash and namespace.startswith(RESERVED_TAG_NAMESPACES):
            raise ValueError(
                f"tag {key!r} is reserved: Maestro and Dagster set the tags under "
                f"{namespace}/ (e.g. maestro/tenant, which per-tenant run limits key on)"
            )
    return tags


Tags = Annotated[TextMap, AfterValidator(_user_tags)]


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
    backoff: Backoff | None = Field(None, description="Delay before a retry (also `backoff_ms`).")
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
        if self.exponential and self.backoff is not None and self.max_attempts > 1:
            # Dagster waits backoff * (2**n - 1) before retry n (jitter adds up to one backoff).
            retries = self.max_attempts - 1
            longest = self.backoff * (2.0 ** min(retries, 64) - 1)
            if longest > MAX_RETRY_DELAY:
                raise ValueError(
                    f"with exponential backoff the last of {retries} retries would wait "
                    f"{longest / 86400:,.1f} days (backoff x {2 ** min(retries, 64) - 1}); "
                    f"the limit is {format_duration(MAX_RETRY_DELAY)}: lower max_attempts or "
                    "backoff"
                )
        return self


class CompensationSpec(_Model):
    """The step that undoes this one when the workflow fails with `on_failure: compensate`.

    Its templates see `step` (the original step's `id`, resolved `params` and `output`),
    `failure` (`step`, `kind`, `message`), `params`, `run` and `secrets`."""

    run: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    retry: RetrySpec | None = Field(None, description="The compensation's own retry policy.")

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


def output_path_problem(path: str) -> str | None:
    """Why a file output's path (rendered, or written without templates) leaves the step's
    working folder, or None. `sub/../report.txt` is fine (it is `report.txt`)."""
    if path.startswith("~"):
        return f"path {path!r} starts in a home folder"
    if posixpath.isabs(path):
        return f"path {path!r} is absolute"
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        return f"path {path!r} goes up out of the step's working folder"
    return None


OUTSIDE_HINT = (
    "a file output stays inside the step's working folder (its cwd); set allow_outside: true "
    "on the output to read a file elsewhere"
)


ASSET_KEY = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


class OutputSpec(_Model):
    """An artifact a step declares, materialised as a Dagster asset; the name alone is enough.

    `asset_key` is `/`-separated; without it the plan gives `maestro/<workflow>/<step>/<name>`.
    `path` makes it a file output: the file the step writes there (a template, rendered at run
    time; relative to the step's `cwd`, else the worker's working directory) is streamed into
    the content store as raw bytes, and downstream templates see its pointer, not its bytes.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=MAX_ID_LENGTH)]
    asset_key: Annotated[str, Field(pattern=ASSET_KEY, max_length=MAX_ASSET_KEY_LENGTH)] | None = (
        None
    )
    description: str | None = None
    allow_outside: bool = Field(
        False,
        description="The path may leave the step's working folder (absolute, `~`, `..`, or a "
        "symlink that points out of it).",
    )
    path: Annotated[str, AfterValidator(_file_path)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("path")
    @classmethod
    def _stays_inside(cls, path: str | None, info: ValidationInfo) -> str | None:
        """Checked here where the path is written out; a template's text before its first
        `{{` too. What a template renders is checked when the step runs."""
        if path is not None and not info.data.get("allow_outside"):
            static = path[: path.find("{")] if is_template(path) else path
            problem = output_path_problem(static) if static else None
            if problem is not None:
                raise ValueError(f"{problem}: {OUTSIDE_HINT}")
        return path if path is None or is_template(path) else posixpath.normpath(path)


class StepSpec(_Model):
    """One unit of work: a plugin (`run`) called with parameters (`with`)."""

    id: Annotated[str, Field(pattern=STEP_ID, max_length=MAX_ID_LENGTH)] | None = None
    name: str | None = None
    description: str | None = None
    run: str = Field(description="The plugin, e.g. shell, http.request, litellm.generate.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    depends_on: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    when: bool | str | None = None
    for_each: str | list[Any] | None = None
    retry: RetrySpec | None = None
    timeout: StepTimeout | None = None
    compensation: CompensationSpec | None = None
    compensate_self: bool = Field(
        False,
        description="Run this step's compensation when the step itself fails (it may have "
        "partly applied); otherwise only completed steps are compensated.",
    )
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

    name: Annotated[str, Field(pattern=STEP_ID, max_length=MAX_ID_LENGTH)]
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
    max_cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    max_duration: RunTimeout | None = None


class DefaultsSpec(_Model):
    """Applied to every step that does not say otherwise."""

    retry: RetrySpec | None = None
    timeout: StepTimeout | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _millis_alias(data, "timeout_ms", "timeout")


class ScheduleSpec(_Model):
    cron: str
    params: dict[str, Any] = Field(default_factory=dict)
    timezone: str | None = None
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$", max_length=MAX_ID_LENGTH)] | None = None


def _schedule_list(value: Any) -> Any:
    if isinstance(value, str):
        return [{"cron": value}]
    if isinstance(value, dict):
        return [value]
    return value


class WorkflowSpec(_Model):
    """A whole workflow file."""

    name: Annotated[str, Field(pattern=WORKFLOW_NAME, max_length=MAX_ID_LENGTH)]
    version: Annotated[str, AfterValidator(_check_semver)] = "0.0.0"
    description: str | None = None
    tenant: Annotated[str, Field(pattern=WORKFLOW_NAME, max_length=MAX_ID_LENGTH)] = "default"
    environment: Annotated[str, Field(pattern=WORKFLOW_NAME, max_length=MAX_ID_LENGTH)] = "dev"
    params: dict[Annotated[str, Field(pattern=ENV_NAME, max_length=MAX_ID_LENGTH)], ParamSpec] = (
        Field(default_factory=dict)
    )
    secrets: list[Annotated[str, Field(pattern=ENV_NAME, max_length=MAX_ID_LENGTH)]] = Field(
        default_factory=list
    )
    budget: BudgetSpec | None = None
    timeout: RunTimeout | None = Field(None, description="Whole-run limit (or global_timeout_ms).")
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
