"""A compiled workflow as a reconstructable job, for `dg.execute_job` and re-execution.

`dg.build_reconstructable_job(__name__, "workflow_job", reconstructable_kwargs=...)` lets
Dagster rebuild the job from the YAML file: the same job a code location would serve, with
the artifacts IO manager and the workflow's own executor (threads unless it names another), in
this process and in the process of any step that runs in one of its own.
"""

from __future__ import annotations

import dagster as dg

from resources.artifacts import ArtifactsIOManager
from resources.policy.engine import PolicyEngineResource
from tests.support.compiling import compile_file
from tests.support.paths import PROJECT_ROOT


def workflow_job(
    path: str, location: str, endpoint_url: str | None = None, opa_url: str | None = None
) -> dg.JobDefinition:
    """`opa_url`: steps are checked by that OPA server (1 s timeout), not the embedded engine."""
    policy = {"policy": PolicyEngineResource(opa_url=opa_url, timeout_s=1.0)} if opa_url else {}
    workflow = compile_file(path, resources=policy)
    defs = dg.Definitions(
        jobs=[workflow.job],
        resources={
            "io_manager": ArtifactsIOManager(location=location, s3_endpoint_url=endpoint_url)
        },
    )
    return defs.resolve_job_def(workflow.job.name)


def reconstructable_workflow(
    path: str, location: str, endpoint_url: str | None = None, opa_url: str | None = None
) -> dg.ReconstructableJob:
    kwargs = {"path": path, "location": location, "endpoint_url": endpoint_url}
    if opa_url:
        kwargs["opa_url"] = opa_url
    return dg.build_reconstructable_job(
        __name__,
        "workflow_job",
        reconstructable_kwargs=kwargs,
        reconstructor_working_directory=str(PROJECT_ROOT),  # step processes import `tests`
    )


def saga_job(path: str, location: str) -> dg.JobDefinition:
    """The workflow's `<job>__compensate`, with the same artifact store."""
    workflow = compile_file(path)
    assert workflow.saga is not None, path
    defs = dg.Definitions(
        jobs=[workflow.saga], resources={"io_manager": ArtifactsIOManager(location=location)}
    )
    return defs.resolve_job_def(workflow.saga.name)


def reconstructable_saga(path: str, location: str) -> dg.ReconstructableJob:
    return dg.build_reconstructable_job(
        __name__,
        "saga_job",
        reconstructable_kwargs={"path": path, "location": location},
        reconstructor_working_directory=str(PROJECT_ROOT),
    )
