"""Every private Dagster API Maestro uses, in one place, pinned with the Dagster set.

Dagster has no public name for these. They may change in any release, so the version they
were checked against is pinned here and tests/resources/test_dagster_private.py fails when
the installed Dagster differs: re-check each import below before moving the pin. This module
lives in `resources/`, the lowest layer that may import Dagster, so every layer above can use
it; the language core restates the one rule it needs (yaml_compiler/names.py) and a test
compares the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

# A for_each step's collect op depends on every mapped output: `.collect()` in the
# op-decorator API, which hand-built graphs cannot call.
from dagster._core.definitions.dependency import DynamicCollectDependencyDefinition

# Names Dagster refuses for ops and jobs (yaml_compiler/names.py restates them).
from dagster._core.definitions.utils import DISALLOWED_NAMES as DAGSTER_RESERVED_NAMES

# The run statuses that count as queued or in flight (a tenant's active runs).
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

# Dagster's own test of a cron string (5 fields, no February 30th...).
from dagster._utils.schedules import is_valid_cron_string

PINNED_DAGSTER_VERSION = "1.13.27"


class SnapshotNode(NamedTuple):
    """One node of a stored job snapshot: its name, its op definition's name and tags."""

    node_name: str
    op_name: str
    op_tags: dict[str, str]


def job_snapshot_nodes(instance: Any, snapshot_id: str) -> list[SnapshotNode]:
    """The nodes of the job snapshot a run was launched with (`DagsterRun.job_snapshot_id`):
    how `maestro status` and the metrics map a stored run's step keys to steps and plugins
    without loading the code location. The snapshot's structure has no public accessors."""
    snapshot = instance.get_job_snapshot(snapshot_id)
    tags = {op.name: dict(op.tags) for op in snapshot.node_defs_snapshot.op_def_snaps}
    return [
        SnapshotNode(node.node_name, node.node_def_name, tags.get(node.node_def_name, {}))
        for node in snapshot.dep_structure_snapshot.node_invocation_snaps
    ]


def compute_log_key(instance: Any, run_id: str, file_key: str) -> Sequence[str]:
    """The compute log manager's key of the captured stdout/stderr a run's `LOGS_CAPTURED`
    event names by `file_key` (the manager's adapter for it is marked legacy)."""
    return list(instance.compute_log_manager.build_log_key_for_run(run_id, file_key))


__all__ = [
    "DAGSTER_RESERVED_NAMES",
    "IN_PROGRESS_RUN_STATUSES",
    "PINNED_DAGSTER_VERSION",
    "DynamicCollectDependencyDefinition",
    "SnapshotNode",
    "compute_log_key",
    "is_valid_cron_string",
    "job_snapshot_nodes",
]
