"""The threads executor (Maestro's default) and the choice of executor for a job.

Dagster infrastructure, with no knowledge of workflows: the backend picks a job's executor
from its plan with `executor_definition`; op code reads the step it runs with `current_step`.
"""

from resources.executor.definitions import (
    DEFAULT_EXECUTOR,
    DEFAULT_MAX_CONCURRENT,
    EXECUTOR_ENV,
    EXECUTOR_KINDS,
    executor_definition,
    executor_kind,
    threads_executor,
)
from resources.executor.running import RunningStep, current_step
from resources.executor.threads import ISOLATION_TAG, ThreadsExecutor

__all__ = [
    "DEFAULT_EXECUTOR",
    "DEFAULT_MAX_CONCURRENT",
    "EXECUTOR_ENV",
    "EXECUTOR_KINDS",
    "ISOLATION_TAG",
    "RunningStep",
    "ThreadsExecutor",
    "current_step",
    "executor_definition",
    "executor_kind",
    "threads_executor",
]
