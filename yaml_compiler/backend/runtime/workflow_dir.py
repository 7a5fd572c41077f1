"""Where the running job's workflow file is: files the compiler stored relative to it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

SOURCE_METADATA = "maestro/source"
"""Job metadata: the workflow file the job was compiled from."""


def workflow_dir_of(context: dg.OpExecutionContext) -> Path | None:
    """The workflow file's folder, from the job's `maestro/source` metadata (set at build).

    Resolved the way the compiler resolved it for `prepare`, in the process that built the job
    (`maestro run`, the code location, `dagster job execute` all compile where they run).
    """
    try:
        source = context.job_def.metadata.get(SOURCE_METADATA)
    except Exception:  # a context without a job definition
        return None
    path = getattr(source, "path", None)
    return Path(path).resolve().parent if isinstance(path, str) and path else None
