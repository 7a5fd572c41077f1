"""The Dagster code location: every workflow in the workflows folders, one job each.

A file that does not compile fails the whole load with its file, line and message, so
`dagster definitions validate` and the UI show it instead of the job silently vanishing.
"""

from maestro_defs.gate import policy_resource
from maestro_defs.workflows import (
    build_definitions,
    compile_workflows,
    workflow_dirs,
    workflow_files,
)
from resources.artifacts import ArtifactsIOManager
from resources.defaults import step_resources

RESOURCES = {
    # Every step output stored once by content hash (docs/artifacts.md): MAESTRO_ARTIFACTS
    # (a folder or s3://bucket/prefix), else $DAGSTER_HOME/artifacts.
    "io_manager": ArtifactsIOManager(),
    # LLM steps: the LiteLLM Router (MAESTRO_LITELLM_CONFIG) and the Ollama host (OLLAMA_HOST).
    **step_resources(),
    # The policy engine of the gate sensor and the step checks: embedded Rego, or OPA at
    # MAESTRO_OPA_URL (docs/policy.md).
    "policy": policy_resource(),
}

defs = build_definitions(compile_workflows(workflow_files(workflow_dirs())), RESOURCES)
