"""A compiled workflow as a reconstructable job, for `dg.execute_job` and re-execution.

`dg.build_reconstructable_job(__name__, "workflow_job", reconstructable_kwargs=...)` lets
Dagster rebuild the job from the YAML file: the same job a code location would serve, with
the artifacts IO manager and the in-process executor (one process: fast on two cores).
"""

from __future__ import annotations

import dagster as dg

from resources.artifacts import ArtifactsIOManager
from tests.support.compiling import compile_file


def workflow_job(path: str, location: str, endpoint_url: str | None = None) -> dg.JobDefinition:
    workflow = compile_file(path)
    defs = dg.Definitions(
        jobs=[workflow.job],
        resources={
            "io_manager": ArtifactsIOManager(location=location, s3_endpoint_url=endpoint_url)
        },
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def(workflow.job.name)


def reconstructable_workflow(
    path: str, location: str, endpoint_url: str | None = None
) -> dg.ReconstructableJob:
    kwargs = {"path": path, "location": location, "endpoint_url": endpoint_url}
    return dg.build_reconstructable_job(__name__, "workflow_job", reconstructable_kwargs=kwargs)
