"""The plugin contract: a class over its params model, with `run` and optional hooks.

    class Echo(Plugin[EchoParams]):
        name = "echo"
        description = "Return the step's parameters as its output."
        params_model = EchoParams

        def run(self, params: EchoParams, ctx: StepContext) -> dict[str, Any]:
            return params.model_dump()

`prepare` runs at compile time on the raw `with` block (pure: split a command, find a prompt
template), `render` at run time (e.g. shell-quoting), `estimate_cost` before the call (the
budget and the policy see it), `models_for` names every model a call may reach.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from maestro_common.values import PrepareError

__all__ = [
    "BudgetExceededError",
    "Plugin",
    "PluginFile",
    "PluginNotInstalledError",
    "PluginParams",
    "PolicyDeniedError",
    "PrepareError",
    "Renderer",
    "ReservedPlugin",
    "RunInfo",
    "StepCancelledError",
    "StepContext",
    "StepError",
    "StepLogger",
    "StepTimeoutError",
]


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


class StepTimeoutError(StepError):
    kind = "timeout"


class StepCancelledError(StepError):
    """The step stopped because `StepContext.cancelled` was set before its deadline: its run
    is being terminated."""

    kind = "cancelled"


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


@dataclass(frozen=True)
class PluginFile:
    """A file a plugin wrote for the content store (`StepContext.add_file`)."""

    path: Path
    media_type: str | None = None


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
    """Set when the step must stop: its timeout has passed (`remaining()` is 0) or its run is
    being terminated. Plugins that own processes or long calls watch it."""
    redact: Callable[[str], str] = lambda text: text
    budget_remaining_usd: float | None = None
    """What the run may still spend (its `budget.max_cost_usd` minus its spend); None: no limit."""
    cost_usd: float = 0.0
    """What this step has spent so far: plugins add to it with `add_cost`."""
    workflow_dir: Path | None = None
    """The folder of the workflow file: files the compiler stored relative to it (a user prompt
    template, `prompts/<name>.j2`) resolve against it, so compiled params name no checkout."""
    files: dict[str, PluginFile] = field(default_factory=dict)
    """Files the plugin wrote for the content store, by output name (see `add_file`)."""
    output_metadata: dict[str, Any] = field(default_factory=dict)
    """Extra metadata for the step's output event (numbers and strings the UI shows)."""
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    """Run by `finish` once the step's outputs are stored, or it failed (scratch folders)."""

    def add_file(self, name: str, path: Path, media_type: str | None = None) -> None:
        """Hand a file the plugin wrote to the content store: once the plugin returns, the op
        streams it in as output `name` and the step's output gains, under `name`, what
        templates see of a file output: `{sha256, size, uri, media_type, serializer, path}`."""
        if name in self.files:
            raise ValueError(f"file output {name!r} was added twice")
        self.files[name] = PluginFile(path, media_type)

    def on_finish(self, cleanup: Callable[[], None]) -> None:
        """Call `cleanup` after the step's files are stored (or the step failed)."""
        self.cleanups.append(cleanup)

    def finish(self) -> None:
        """Run the cleanups, newest first; the op calls it, and so must direct callers."""
        while self.cleanups:
            self.cleanups.pop()()

    def add_cost(self, usd: float) -> None:
        """Record money spent (an LLM call, GPU time): it lands in the step's `cost_usd`."""
        self.cost_usd += usd

    def remaining(self) -> float | None:
        """Seconds left before the step's timeout, or None when it has none."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def resource(self, key: str, kind: str) -> Any:
        """The Dagster resource `key` the plugin declared, or a step error that names it."""
        found = self.resources.get(key)
        if found is None:
            raise StepError(f"{kind} steps need the `{key}` resource")
        return found


class Renderer(Protocol):
    """Renders one value of `with` against the step's template scope."""

    def __call__(self, value: Any, shell_quoted: bool = False) -> Any: ...


P = TypeVar("P", bound=BaseModel)


class Plugin(abc.ABC, Generic[P]):
    """A named step implementation over its params model `P`."""

    name: ClassVar[str]
    description: ClassVar[str]
    params_model: type[P]
    aliases: ClassVar[tuple[str, ...]] = ()
    resource_keys: ClassVar[frozenset[str]] = frozenset()
    """Dagster resources the step's op requires; the plugin finds them in `ctx.resources`."""
    default_pool: ClassVar[str | None] = None
    """The Dagster concurrency pool of this plugin's steps when a step names none (a scarce
    host such as an Ollama server: the instance's pool limit caps how many run at once)."""
    reserved_for: ClassVar[str | None] = None
    """Set on a name kept for a plugin to come: what will provide it (see ReservedPlugin)."""
    file_outputs: ClassVar[tuple[str, ...]] = ()
    """Names of the files the plugin hands to the content store (`StepContext.add_file`): its
    steps need the artifacts IO manager, and a declared output of that name is the file."""

    def prepare(self, raw: dict[str, Any], workflow_dir: Path | None) -> dict[str, Any]:
        """Compile time: check and rewrite the raw `with` block (pure); raise PrepareError."""
        return raw

    def render(self, raw: Mapping[str, Any], render: Renderer) -> dict[str, Any]:
        """Run time: render the templates of `with` (before `params_model` validates it)."""
        return {key: render(value) for key, value in raw.items()}

    def parse(self, rendered: Any) -> P:
        return self.params_model.model_validate(rendered)

    @abc.abstractmethod
    def run(self, params: P, ctx: StepContext) -> Any:
        """Do the step's work; return its output (JSON). Raise StepError to fail it."""

    def estimate_cost(self, params: P, ctx: StepContext) -> float:
        """Upper bound of what a call with these params will spend (USD), asked before it runs:
        the budget check refuses the step when this exceeds what is left. Plugins that spend
        override it (see `metered`)."""
        return 0.0

    def models_for(self, params: P, ctx: StepContext) -> list[str]:
        """Every model a call with these params may reach, resource-level fallbacks included
        (asked before it runs: `maestro.step` checks each against the tenant's models)."""
        return []

    @property
    def metered(self) -> bool:
        """True when the plugin may spend money: it overrides `estimate_cost`."""
        return type(self).estimate_cost is not Plugin.estimate_cost

    def __repr__(self) -> str:
        return f"<plugin {self.name}>"


class ReservedPlugin(Plugin[P]):
    """A name reserved for a plugin that ships later: its parameters are validated now, so
    workflows written today compile; running such a step fails with "not installed yet"."""

    def run(self, params: P, ctx: StepContext) -> Any:
        raise PluginNotInstalledError(
            f"plugin {self.name!r} is not installed yet ({self.reserved_for} provides it)"
        )
