"""The plugin registry: built-in plugins plus any registered under the `maestro.plugins` group."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

from resources.plugins.base import (
    BudgetExceededError,
    Plugin,
    PluginNotInstalledError,
    PluginParams,
    PolicyDeniedError,
    ReservedPlugin,
    RunInfo,
    StepCancelledError,
    StepContext,
    StepError,
    StepTimeoutError,
)
from resources.plugins.echo import ECHO
from resources.plugins.http import HTTP_REQUEST
from resources.plugins.litellm_generate import LITELLM_GENERATE
from resources.plugins.ollama import OLLAMA_CHAT, OLLAMA_GENERATE
from resources.plugins.python_call import PYTHON
from resources.plugins.reserved import RESERVED
from resources.plugins.shell import SHELL
from resources.plugins.web_scraper import WEB_SCRAPER

ENTRY_POINT_GROUP = "maestro.plugins"
BUILTIN_PLUGINS: tuple[Plugin[Any], ...] = (
    SHELL,
    HTTP_REQUEST,
    PYTHON,
    ECHO,
    LITELLM_GENERATE,
    OLLAMA_GENERATE,
    OLLAMA_CHAT,
    WEB_SCRAPER,
    *RESERVED,
)

__all__ = [
    "BUILTIN_PLUGINS",
    "BudgetExceededError",
    "Plugin",
    "PluginNotInstalledError",
    "PluginParams",
    "PluginRegistry",
    "PolicyDeniedError",
    "ReservedPlugin",
    "RunInfo",
    "StepCancelledError",
    "StepContext",
    "StepError",
    "StepTimeoutError",
    "default_registry",
]


class PluginRegistry:
    """Looks plugins up by name or alias; later registrations replace reserved names."""

    def __init__(self, plugins: Iterable[Plugin[Any]] = ()):
        self._plugins: dict[str, Plugin[Any]] = {}
        self._names: dict[str, str] = {}
        for plugin in plugins:
            self.register(plugin)

    def register(self, plugin: Plugin[Any]) -> None:
        existing = self._plugins.get(plugin.name)
        if existing is not None and existing.reserved_for is None and plugin.reserved_for is None:
            raise ValueError(f"plugin {plugin.name!r} is registered twice")
        self._plugins[plugin.name] = plugin
        for name in (plugin.name, *plugin.aliases):
            self._names[name] = plugin.name

    def get(self, name: str) -> Plugin[Any] | None:
        canonical = self._names.get(name)
        return self._plugins[canonical] if canonical else None

    def names(self) -> list[str]:
        """Every accepted name, aliases included, sorted."""
        return sorted(self._names)

    def __iter__(self) -> Iterator[Plugin[Any]]:
        return iter(sorted(self._plugins.values(), key=lambda p: p.name))


def _entry_point_plugins() -> list[Plugin[Any]]:
    """Each entry point names a Plugin instance, or a Plugin subclass to instantiate."""
    plugins: list[Plugin[Any]] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry_point.load()
        if isinstance(loaded, type) and issubclass(loaded, Plugin):
            loaded = loaded()
        if not isinstance(loaded, Plugin):
            raise TypeError(
                f"entry point {entry_point.name!r} in {ENTRY_POINT_GROUP} is not a Plugin"
            )
        plugins.append(loaded)
    return plugins


@functools.cache
def default_registry() -> PluginRegistry:
    """Built-ins, then installed packages' plugins (which may fill the reserved names)."""
    return PluginRegistry([*BUILTIN_PLUGINS, *_entry_point_plugins()])
