"""Every private Dagster API Maestro uses, in one place, pinned with the Dagster set.

Dagster has no public name for these. They may change in any release, so the version they
were checked against is pinned here and tests/resources/test_dagster_private.py fails when
the installed Dagster differs: re-check each import below before moving the pin. This module
lives in `resources/`, the lowest layer that may import Dagster, so every layer above can use
it; the language core restates the one rule it needs (yaml_compiler/names.py) and a test
compares the two.
"""

from __future__ import annotations

import copy
import sys
import time
from asyncio import AbstractEventLoop
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

import dagster as dg

# A for_each step's collect op depends on every mapped output: `.collect()` in the
# op-decorator API, which hand-built graphs cannot call.
from dagster._core.definitions.dependency import DynamicCollectDependencyDefinition

# Names Dagster refuses for ops and jobs (yaml_compiler/names.py restates them).
from dagster._core.definitions.utils import DISALLOWED_NAMES as DAGSTER_RESERVED_NAMES

# ---- The threads executor (resources/executor/) --------------------------------------------
# Dagster has no public API to run one step of a plan, so the executor reuses the pieces its
# own in-process and multiprocess executors are made of, and only adds the loop and the threads.
#
# Engine events ("Executing steps with the threads executor...") carry the same data as
# in_process's (`EngineEventData.in_process`, `.interrupted`). JobFailureData and
# RunFailureReason: why a run failed, as its run-failure event says (resources/liveness.py marks
# a run whose process died UNEXPECTED_TERMINATION).
from dagster._core.events import EngineEventData, JobFailureData, RunFailureReason

# The wrapper InProcessExecutor.execute uses: builds the PlanExecutionContext (resources, log
# manager, the run's event loop) inside capture_interrupts(), tears the resources down after.
# `execute_run`: `maestro run` creates its run first (its progress printer listens for that
# run's events from the first one on), then executes it as `dg.execute_job` does, through the
# job's own executor.
from dagster._core.execution.api import ExecuteRunWithPlanIterable, execute_run

# Random compute-log file keys, as Dagster names its own capture files.
from dagster._core.execution.compute_logs import create_compute_log_file_key

# The contexts the executor receives (orchestration) and builds steps from (execution).
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext

# The argument ExecuteRunWithPlanIterable takes: the same one in_process passes.
from dagster._core.execution.context_creation_job import PlanExecutionContextManager

# The scheduler state machine every Dagster executor drives: dependencies, skips and abandons,
# dynamic mapping, retries with their delay, run-scoped tag limits, instance pool claims, and the
# known state re-execution starts from.
from dagster._core.execution.plan.active import ActiveExecution

# Runs one step: STEP_START/RESTARTED, inputs, compute, outputs, STEP_SUCCESS/FAILURE/
# UP_FOR_RETRY, RetryPolicy and interrupts; the function inner_plan_execution_iterator calls.
# `_trigger_hook` runs the op's hooks after it, as in_process does.
from dagster._core.execution.plan.execute_plan import _trigger_hook as trigger_hooks
from dagster._core.execution.plan.execute_plan import dagster_event_sequence_for_step

# Instance-scoped pool claims (the `pool:` of an op, limits set on the instance).
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

# A step given up on after a termination request fails as an interrupted one would.
from dagster._core.execution.plan.objects import ErrorSource, StepFailureData

# Types of the plan the executor walks.
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.execution.plan.step import ExecutionStep

# Executor config shared with Dagster's executors: `retries` and `tag_concurrency_limits` keep
# the schema users know from in_process and multiprocess.
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.execution.tags import get_tag_concurrency_limits_config

# A step with `maestro/isolation: process` runs in its own process exactly as the multiprocess
# executor runs each of its steps (a spawned child re-creates the plan for that one step and
# sends its events back); a child that dies without a word raises ChildProcessCrashException.
from dagster._core.executor.child_process_executor import ChildProcessCrashException
from dagster._core.executor.multiprocess import execute_step_out_of_process

# Per-step compute logs: the streams and the LOGS_CAPTURED data of a capture. The local manager
# is marked @public but not exported from `dagster`.
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType

# The run statuses that count as queued or in flight (a tenant's active runs).
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

# (per-step compute logs, continued)
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

# Errors carried by events (a crashed step process, a step given up on).
from dagster._utils.error import SerializableErrorInfo, serializable_error_info_from_exc_info

# The job a stored run came from, rebuilt from its code origin (`maestro resume` and the saga
# re-execute a run in this process, whichever code location or `maestro run` created it).
from dagster._utils.hosted_user_process import recon_job_from_origin

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


def step_context_on_loop(
    job_context: PlanExecutionContext,
    step: ExecutionStep,
    known_state: KnownExecutionState,
    loop: AbstractEventLoop,
) -> dg.StepExecutionContext:
    """`job_context.for_step(step, known_state)`, but on `loop`: a run has one asyncio loop
    (`_event_loop`, set in context_creation_job) and `run_until_complete` cannot run on it from
    two threads at once, so each worker thread gives its steps its own."""
    on_loop = copy.copy(job_context)
    on_loop._event_loop = loop
    return on_loop.for_step(step, known_state)


def interrupted_step_failure(
    step_context: dg.StepExecutionContext, message: str
) -> dg.DagsterEvent:
    """STEP_FAILURE for a step that did not stop when its run was terminated, with the error
    source an interrupt inside the step gives (ErrorSource.INTERRUPT)."""
    try:
        raise dg.DagsterExecutionInterruptedError(message)
    except dg.DagsterExecutionInterruptedError:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    data = StepFailureData(error=error, user_failure_data=None, error_source=ErrorSource.INTERRUPT)
    return dg.DagsterEvent.step_failure_event(step_context, data)


def next_retry_due(active: ActiveExecution) -> float | None:
    """Seconds until the next step waiting out a retry delay may start (None: none waits).
    `ActiveExecution.sleep_interval` mixes this with the pool claim interval (see below)."""
    waiting: dict[str, float] = active._waiting_to_retry
    return max(0.0, min(waiting.values()) - time.time()) if waiting else None


def next_pool_claim_check(context: InstanceConcurrencyContext) -> float | None:
    """Seconds until a blocked pool claim of this run is due to be asked again (None: none is
    blocked). Dagster's `interval_to_next_pending_claim_check` returns `min([0, ...])`, never
    more than 0, which makes a waiting executor spin; this reads the same due times."""
    if not context.has_pending_claims():
        return None
    due: defaultdict[str, float] = context._pending_timeouts
    pending = [due[key] for key in context.pending_claim_steps() if key in due]
    return max(0.0, min(pending) - time.time()) if pending else 0.0


def retry_pool_claims_now(context: InstanceConcurrencyContext, step_keys: list[str]) -> None:
    """Ask again at once for these blocked claims (a slot of their pool was just freed by this
    run) instead of after Dagster's 1-15 s back-off."""
    due: defaultdict[str, float] = context._pending_timeouts
    for key in step_keys:
        if key in due:
            due[key] = 0.0


__all__ = [
    "DAGSTER_RESERVED_NAMES",
    "IN_PROGRESS_RUN_STATUSES",
    "PINNED_DAGSTER_VERSION",
    "ActiveExecution",
    "CapturedLogContext",
    "ChildProcessCrashException",
    "ComputeIOType",
    "DynamicCollectDependencyDefinition",
    "EngineEventData",
    "ExecuteRunWithPlanIterable",
    "ExecutionPlan",
    "ExecutionStep",
    "InstanceConcurrencyContext",
    "JobFailureData",
    "KnownExecutionState",
    "LocalComputeLogManager",
    "PlanExecutionContext",
    "PlanExecutionContextManager",
    "PlanOrchestrationContext",
    "RetryMode",
    "RunFailureReason",
    "SerializableErrorInfo",
    "SnapshotNode",
    "StepDependencyConfig",
    "compute_log_key",
    "create_compute_log_file_key",
    "dagster_event_sequence_for_step",
    "execute_run",
    "execute_step_out_of_process",
    "get_retries_config",
    "get_tag_concurrency_limits_config",
    "interrupted_step_failure",
    "is_valid_cron_string",
    "job_snapshot_nodes",
    "next_pool_claim_check",
    "next_retry_due",
    "recon_job_from_origin",
    "retry_pool_claims_now",
    "serializable_error_info_from_exc_info",
    "step_context_on_loop",
    "trigger_hooks",
]
