"""The Dagster code location: every workflow in the workflows folders, one job each.

A file that does not compile fails the whole load with its file, line and message, so
`dagster definitions validate` and the UI show it instead of the job silently vanishing.
"""

import dagster as dg

from maestro_defs.gate import policy_resource
from maestro_defs.workflows import (
    build_definitions,
    compile_workflows,
    workflow_dirs,
    workflow_files,
)

RESOURCES = {
    # Step outputs are pickled under the instance's storage folder until the content-addressed
    # IO manager replaces this.
    "io_manager": dg.FilesystemIOManager(),
    # The policy gate sensor's engine: embedded Rego, or OPA at MAESTRO_OPA_URL (docs/policy.md).
    "policy": policy_resource(),
}

defs = build_definitions(compile_workflows(workflow_files(workflow_dirs())), RESOURCES)
