"""`maestro artifacts ...`: look at, check and clean the content-addressed artifact store.

The store is the one runs write to: `MAESTRO_ARTIFACTS` (a folder or s3://bucket/prefix),
else `<DAGSTER_HOME>/artifacts` (the same instance home `maestro run` uses).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from resources.artifacts import ArtifactsIOManager, ArtifactStore
from resources.artifacts.store import GcReport, collect_garbage
from resources.defaults import artifacts_io_manager


def io_manager_for(home: Path, environ: Mapping[str, str] = os.environ) -> ArtifactsIOManager:
    """The artifacts IO manager of the instance in `home` (MAESTRO_ARTIFACTS wins)."""
    return artifacts_io_manager({**environ, "DAGSTER_HOME": str(home)})


def existing_runs(instance: dg.DagsterInstance):
    """`run_ids -> the ones the instance still has`, in batches of one query each."""

    def check(run_ids: set[str]) -> set[str]:
        found: set[str] = set()
        ids = sorted(run_ids)
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            found |= set(instance.get_run_ids(dg.RunsFilter(run_ids=batch)))
        return found

    return check


def gc_lines(report: GcReport, dry_run: bool) -> list[str]:
    verb = "would delete" if dry_run else "deleted"
    deleted = (*report.pointers_deleted, *report.contents_deleted, *report.temp_deleted)
    lines = [f"{verb}: {key}" for key in deleted]
    lines.append(
        f"{verb} {len(report.pointers_deleted)} pointer(s) of deleted runs and "
        f"{len(report.contents_deleted)} unreferenced object(s), {report.bytes_freed} bytes; "
        f"kept {report.pointers_kept} pointer(s) and {report.contents_kept} object(s)"
    )
    return lines


def run_gc(
    store: ArtifactStore, instance: dg.DagsterInstance, older_than: float, dry_run: bool
) -> GcReport:
    return collect_garbage(store, existing_runs(instance), older_than, dry_run=dry_run)
