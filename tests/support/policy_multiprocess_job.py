"""A module-level job for `dg.reconstructable`: the workflow file named by MAESTRO_TEST_WORKFLOW,
so tests can run a compiled workflow under the multiprocess executor."""

import os

import dagster as dg

from tests.support.compiling import compile_file


def workflow_job() -> dg.JobDefinition:
    return compile_file(os.environ["MAESTRO_TEST_WORKFLOW"]).job
