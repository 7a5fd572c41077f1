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
from yaml_compiler.source import MAX_DOCUMENT_BYTES, line_and_column, load_yaml

WORKFLOW_SUFFIXES = (".yaml", ".yml")


def workflow_files_in(folder: Path) -> list[Path]:
    """Every workflow file below `folder`, sorted, so what loads is always in the same order."""
    return sorted(p for p in folder.rglob("*") if p.suffix in WORKFLOW_SUFFIXES and p.is_file())


def read_workflow_file(path: str | Path) -> str:
    """The file's text: at most MAX_DOCUMENT_BYTES are read (a huge file, or a device, is not
    read to its end), and bytes that are not UTF-8 are reported at their line and column."""
    filename = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise WorkflowCompileError([Diagnostic(filename, 1, 1, "<root>", str(exc))]) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        line = data.count(b"\n", 0, MAX_DOCUMENT_BYTES) + 1
        message = f"the file is larger than the limit of {MAX_DOCUMENT_BYTES // 1024} KiB"
        raise WorkflowCompileError([Diagnostic(filename, line, 1, "<root>", message)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8", "replace")
        line, col = line_and_column(prefix, len(prefix))
        bad = data[exc.start : exc.end].hex(" ")
        message = f"the file is not UTF-8 text: byte(s) {bad} ({exc.reason})"
        raise WorkflowCompileError([Diagnostic(filename, line, col, "<root>", message)]) from None


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
