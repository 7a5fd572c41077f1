"""The plugin contract: a pydantic params model plus a function of (params, StepContext)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict


def scalar_text(value: Any) -> Any:
    """YAML numbers and booleans as the text a user meant (`true`, not `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, float)) else value


def scalar_texts(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {key: scalar_text(item) for key, item in value.items()}


TextMap = Annotated[dict[str, str], BeforeValidator(scalar_texts)]
"""Environment variables, headers, tags: `PORT: 8080` is text, not a type error."""


class PluginParams(BaseModel):
    """Base for plugin parameter models: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class StepLogger(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...
    def debug(self, msg: str) -> None: ...


class StepError(Exception):
    """A step failure of a known kind; `kind` decides whether `retry_on` retries it."""

    kind = "plugin_error"

    def __init__(self, message: str, *, kind: str | None = None, **metadata: Any):
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.metadata = metadata


class PrepareError(ValueError):
    """A plugin's compile-time check failed on one field of `with`."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class StepTimeoutError(StepError):
    kind = "timeout"


class BudgetExceededError(StepError):
    """The step would spend more than its budget allows: refused before any call is made."""

    kind = "budget"


class PolicyDeniedError(StepError):
    """The policy (`maestro.workflow` or `maestro.step`) refused: no call was made, no retry."""

    kind = "policy"


class PluginNotInstalledError(StepError):
    """Raised for a registered plugin name whose implementation has not shipped yet."""


@dataclass(frozen=True)
class RunInfo:
    """What `{{ run.* }}` exposes to templates."""

    id: str
    workflow: str
    tenant: str
    environment: str
    started_at: str


@dataclass
class StepContext:
    """Everything a plugin may use while it runs; plain data, so plugins test without Dagster."""

    step_id: str
    run: RunInfo
    log: StepLogger
    upstream: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, Any] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() value; None means no limit
    cancelled: threading.Event = field(default_factory=threading.Event)
    redact: Callable[[str], str] = lambda text: text
    budget_remaining_usd: float | None = None
    """What the run may still spend (its `budget.max_cost_usd` minus its spend); None: no limit."""
    cost_usd: float = 0.0
    """What this step has spent so far: plugins add to it with `add_cost`."""
    workflow_dir: Path | None = None
    """The folder of the workflow file: files the compiler stored relative to it (a user prompt
    template, `prompts/<name>.j2`) resolve against it, so compiled params name no checkout."""

    def add_cost(self, usd: float) -> None:
        """Record money spent (an LLM call, GPU time): it lands in the step's `cost_usd`."""
        self.cost_usd += usd

    def remaining(self) -> float | None:
        """Seconds left before the step's timeout, or None when it has none."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


PluginFunction = Callable[[Any, StepContext], Any]
ParamsRenderer = Callable[[Mapping[str, Any], Callable[..., Any]], dict[str, Any]]


@dataclass(frozen=True)
class Plugin:
    """A named step implementation. `run=None` marks a name reserved for a plugin to come."""

    name: str
    params_model: type[BaseModel]
    run: PluginFunction | None
    description: str
    aliases: tuple[str, ...] = ()
    resource_keys: frozenset[str] = frozenset()
    prepare: Callable[[dict[str, Any], Path | None], dict[str, Any]] | None = None
    """Compile-time check and rewrite of the raw `with` block (pure), given the workflow file's
    folder: e.g. splitting a shell command, finding a prompt template."""
    render: ParamsRenderer | None = None
    """Custom rendering of `with` at run time, e.g. shell-quoting values for `shell: true`."""
    pending: str | None = None
    """For reserved names: what will provide the implementation."""
    estimate_cost: Callable[[Any, StepContext], float] | None = None
    """Upper bound of what a call with these params will spend (USD), asked before it runs:
    the budget check refuses the step when this exceeds what is left."""
    default_pool: str | None = None
    """The Dagster concurrency pool of this plugin's steps when a step names none (a scarce
    host such as an Ollama server: the instance's pool limit caps how many run at once)."""
    models_for: Callable[[Any, StepContext], list[str]] | None = None
    """Every model a call with these params may reach, resource-level fallbacks included
    (asked before it runs: `maestro.step` checks each against the tenant's allowed models)."""
