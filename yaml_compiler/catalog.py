"""What the planner needs to know about plugins, as a protocol: the registry is passed in.

`resources.plugins.PluginRegistry` satisfies it; the language core never imports the plugins.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel


class StepPlugin(Protocol):
    """The compile-time face of a plugin: its name, its params model and its `prepare` hook."""

    @property
    def name(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def description(self) -> str: ...
    @property
    def params_model(self) -> type[BaseModel]: ...
    @property
    def default_pool(self) -> str | None: ...

    def prepare(self, raw: dict[str, Any], workflow_dir: Path | None) -> dict[str, Any]: ...


class PluginCatalog(Protocol):
    def get(self, name: str) -> StepPlugin | None: ...
    def names(self) -> list[str]: ...
    def __iter__(self) -> Iterator[StepPlugin]: ...
