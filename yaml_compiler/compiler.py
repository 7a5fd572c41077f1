"""The language core's front door: a file or text in, a checked plan out. No Dagster here.

The plugin catalog is passed in (`resources.plugins.default_registry()` in practice), so the
core never imports the plugins it checks `with` blocks against.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from yaml_compiler.catalog import PluginCatalog
from yaml_compiler.diagnostics import Diagnostic, WorkflowCompileError
from yaml_compiler.plan import CronCheck, WorkflowPlan, plan_workflow
from yaml_compiler.source import load_yaml

WORKFLOW_SUFFIXES = (".yaml", ".yml")


def workflow_files_in(folder: Path) -> list[Path]:
    """Every workflow file below `folder`, sorted, so what loads is always in the same order."""
    return sorted(p for p in folder.rglob("*") if p.suffix in WORKFLOW_SUFFIXES and p.is_file())


def read_workflow_file(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowCompileError([Diagnostic(str(path), 1, 1, "<root>", str(exc))]) from None


def plan_text(
    text: str,
    filename: str,
    registry: PluginCatalog,
    param_overrides: Mapping[str, Any] | None = None,
    cron_check: CronCheck | None = None,
) -> WorkflowPlan:
    return plan_workflow(load_yaml(text, filename), registry, param_overrides, cron_check)


def load_plan(
    path: str | Path,
    registry: PluginCatalog,
    param_overrides: Mapping[str, Any] | None = None,
    cron_check: CronCheck | None = None,
) -> WorkflowPlan:
    return plan_text(read_workflow_file(path), str(path), registry, param_overrides, cron_check)


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """A compile makes many small objects that all live until it ends, and the cyclic collector
    would rescan them over and over: about a third of a 1,000-step compile (bench/compile.py).
    Reference counting still frees memory meanwhile; cycles are collected after the compile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
