"""The executors a Maestro job may run under, built per job with its limits as defaults.

`threads` (ours, the default), Dagster's `in_process` and `multiprocess`, and dagster-k8s's
`k8s` (each step in its own Kubernetes Job, placed by its `dagster-k8s/config` tag). A job's
executor carries its workflow's limits as config defaults, so run config (`execution: {config:
{max_concurrent: ...}}`, the UI's launchpad) can still change them for one run; the k8s
executor's are fixed when the job is built (a workflow with params takes only `params` as run
config).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from resources.dagster_private import (
    RetryMode,
    get_retries_config,
    get_tag_concurrency_limits_config,
)
from resources.executor.threads import ThreadsExecutor

EXECUTOR_ENV = "MAESTRO_EXECUTOR"
"""The executor of workflows that do not name one: threads, in_process or multiprocess."""
EXECUTOR_KINDS = ("threads", "in_process", "multiprocess", "k8s")
DEFAULT_EXECUTOR = "threads"
DEFAULT_MAX_CONCURRENT = 32
"""Worker threads of a run unless the workflow says `max_parallel` (a thread per running step)."""
DEFAULT_CANCEL_GRACE_SECONDS = 10.0

TagLimit = Mapping[str, Any]


def executor_kind(declared: str | None, environ: Mapping[str, str]) -> str:
    """The workflow's own choice, else MAESTRO_EXECUTOR, else threads."""
    kind = declared or environ.get(EXECUTOR_ENV) or DEFAULT_EXECUTOR
    if kind not in EXECUTOR_KINDS:
        raise ValueError(
            f"{EXECUTOR_ENV}={kind!r} is not an executor; use one of {', '.join(EXECUTOR_KINDS)}"
        )
    return kind


def _limits_field(default: Sequence[TagLimit]) -> dg.Field:
    dagster_field = get_tag_concurrency_limits_config()
    return dg.Field(
        dagster_field.config_type,
        is_required=False,
        default_value=[dict(limit) for limit in default],
        description=dagster_field.description,
    )


def threads_executor(
    *,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    tag_concurrency_limits: Sequence[TagLimit] = (),
    isolated_steps: bool = False,
) -> dg.ExecutorDefinition:
    """The threads executor with these defaults. `isolated_steps`: some op is tagged to run in
    its own process, which needs what the multiprocess executor needs (a reconstructable job,
    a persistent instance and IO manager)."""

    @dg.executor(
        name="threads",
        config_schema={
            "max_concurrent": dg.Field(
                dg.Int,
                is_required=False,
                default_value=max_concurrent,
                description="How many steps of the run may run at once (one thread each).",
            ),
            "tag_concurrency_limits": _limits_field(tag_concurrency_limits),
            "retries": get_retries_config(),
            "cancel_grace_seconds": dg.Field(
                dg.Float,
                is_required=False,
                default_value=DEFAULT_CANCEL_GRACE_SECONDS,
                description="After a termination request, how long a step may take to stop "
                "before an interrupt is raised inside it (and twice that before it is given up).",
            ),
            "per_step_logs": dg.Field(
                dg.Bool,
                is_required=False,
                default_value=True,
                description="Give each step its own compute log files (else one for the run).",
            ),
        },
        requirements=dg.multiple_process_executor_requirements() if isolated_steps else None,
    )
    def _threads(init_context: dg.InitExecutorContext) -> ThreadsExecutor:
        config: dict[str, Any] = dict(init_context.executor_config)
        if config["max_concurrent"] < 1:
            raise dg.DagsterInvalidConfigError(
                "max_concurrent must be at least 1", [], config["max_concurrent"]
            )
        return ThreadsExecutor(
            retries=RetryMode.from_config(config["retries"]),  # type: ignore[arg-type]
            max_concurrent=config["max_concurrent"],
            tag_concurrency_limits=config["tag_concurrency_limits"] or (),
            cancel_grace_seconds=config["cancel_grace_seconds"],
            per_step_logs=config["per_step_logs"],
        )

    return _threads


def _multiprocess_executor(
    max_concurrent: int | None, tag_concurrency_limits: Sequence[TagLimit]
) -> dg.ExecutorDefinition:
    """Dagster's multiprocess executor; with the workflow's limits as overridable defaults."""
    if max_concurrent is None and not tag_concurrency_limits:
        return dg.multiprocess_executor
    schema = {
        "max_concurrent": dg.Field(dg.Int, is_required=False, default_value=max_concurrent or 0),
        "tag_concurrency_limits": _limits_field(tag_concurrency_limits),
        "retries": get_retries_config(),
    }

    def inner(outer: Mapping[str, Any]) -> dict[str, Any]:
        return {**outer, "max_concurrent": outer["max_concurrent"] or None}

    return dg.multiprocess_executor.configured(inner, config_schema=schema)


def k8s_executor(
    max_concurrent: int | None, tag_concurrency_limits: Sequence[TagLimit] = ()
) -> dg.ExecutorDefinition:
    """dagster-k8s's `k8s_job_executor` (imported only here: the Kubernetes client is heavy).
    Image, namespace, env and secrets come from the run pod (K8sRunLauncher with
    `includeConfigInLaunchedRuns`); the workflow's limits are configured in."""
    from dagster_k8s import k8s_job_executor

    config: dict[str, Any] = {}
    if max_concurrent:
        config["max_concurrent"] = max_concurrent
    if tag_concurrency_limits:
        config["tag_concurrency_limits"] = [dict(limit) for limit in tag_concurrency_limits]
    return k8s_job_executor.configured(config, name="k8s") if config else k8s_job_executor


def executor_definition(
    kind: str,
    *,
    max_concurrent: int | None = None,
    tag_concurrency_limits: Sequence[TagLimit] = (),
    isolated_steps: bool = False,
) -> dg.ExecutorDefinition:
    """The executor of one job. `in_process` runs one step at a time, so limits do not apply."""
    if kind == "threads":
        return threads_executor(
            max_concurrent=max_concurrent or DEFAULT_MAX_CONCURRENT,
            tag_concurrency_limits=tag_concurrency_limits,
            isolated_steps=isolated_steps,
        )
    if kind == "multiprocess":
        return _multiprocess_executor(max_concurrent, tag_concurrency_limits)
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "k8s":
        return k8s_executor(max_concurrent, tag_concurrency_limits)
    raise ValueError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTOR_KINDS)}")
