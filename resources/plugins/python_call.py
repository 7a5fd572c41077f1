"""`python`: call a function by dotted path, the escape hatch for logic the DSL cannot express."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator

from resources.plugins.base import Plugin, PluginParams, StepContext, StepError


class PythonParams(PluginParams):
    callable: str = Field(description="`package.module:function` or `package.module.function`.")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("callable")
    @classmethod
    def _dotted(cls, value: str) -> str:
        module, _, attr = value.replace(":", ".").rpartition(".")
        if not module or not attr:
            raise ValueError("use a dotted path such as mypackage.tasks:transform")
        return value


def resolve_callable(path: str) -> Callable[..., Any]:
    module_name, attr = path.split(":", 1) if ":" in path else path.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StepError(f"cannot import module {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise StepError(f"module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise StepError(f"{path!r} is not callable")
    return target


def _parameter_names(function: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # some builtins have no inspectable signature
        return set()


class PythonCall(Plugin[PythonParams]):
    name = "python"
    description = "Call a Python function by dotted path; its return value is the output."
    params_model = PythonParams

    def run(self, params: PythonParams, ctx: StepContext) -> Any:
        function = resolve_callable(params.callable)
        kwargs = dict(params.kwargs)
        if "maestro_context" in _parameter_names(function):
            kwargs["maestro_context"] = ctx
        return function(*params.args, **kwargs)


PYTHON = PythonCall()
