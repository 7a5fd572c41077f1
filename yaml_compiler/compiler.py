"""The compiler's front door: a file or text in, a plan or Dagster definitions out."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from resources.plugins import PluginRegistry
from yaml_compiler.build import build_asset_specs, build_job, build_schedules
from yaml_compiler.diagnostics import Diagnostic, WorkflowCompileError
from yaml_compiler.plan import WorkflowPlan, plan_workflow
from yaml_compiler.source import load_yaml

WORKFLOW_SUFFIXES = (".yaml", ".yml")


def workflow_files_in(folder: Path) -> list[Path]:
    """Every workflow file below `folder`, sorted, so what loads is always in the same order."""
    return sorted(p for p in folder.rglob("*") if p.suffix in WORKFLOW_SUFFIXES and p.is_file())


@dataclass(frozen=True)
class CompiledWorkflow:
    plan: WorkflowPlan
    job: dg.JobDefinition
    schedules: tuple[dg.ScheduleDefinition, ...]
    assets: tuple[dg.AssetSpec, ...] = ()
    """Declared outputs as external assets: lineage in the UI, materialised by the job's ops."""


def plan_text(
    text: str,
    filename: str = "<string>",
    registry: PluginRegistry | None = None,
    param_overrides: Mapping[str, Any] | None = None,
) -> WorkflowPlan:
    return plan_workflow(load_yaml(text, filename), registry, param_overrides)


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowCompileError([Diagnostic(str(path), 1, 1, "<root>", str(exc))]) from None


def load_plan(
    path: str | Path,
    registry: PluginRegistry | None = None,
    param_overrides: Mapping[str, Any] | None = None,
) -> WorkflowPlan:
    return plan_text(_read(path), str(path), registry, param_overrides)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
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


def compile_text(
    text: str, filename: str = "<string>", registry: PluginRegistry | None = None
) -> CompiledWorkflow:
    with _cyclic_gc_paused():
        plan = plan_text(text, filename, registry)
        job = build_job(plan, registry)
        return CompiledWorkflow(
            plan, job, tuple(build_schedules(plan, job)), tuple(build_asset_specs(plan))
        )


def compile_file(path: str | Path, registry: PluginRegistry | None = None) -> CompiledWorkflow:
    return compile_text(_read(path), str(path), registry)
