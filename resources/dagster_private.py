"""Every private Dagster API Maestro uses, in one place, pinned with the Dagster set.

Dagster has no public name for these. They may change in any release, so the version they
were checked against is pinned here and tests/resources/test_dagster_private.py fails when
the installed Dagster differs: re-check each import below before moving the pin. This module
lives in `resources/`, the lowest layer that may import Dagster, so every layer above can use
it; the language core restates the one rule it needs (yaml_compiler/names.py) and a test
compares the two.
"""

from __future__ import annotations

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

__all__ = [
    "DAGSTER_RESERVED_NAMES",
    "IN_PROGRESS_RUN_STATUSES",
    "PINNED_DAGSTER_VERSION",
    "DynamicCollectDependencyDefinition",
    "is_valid_cron_string",
]
