"""The Maestro workflows component: a folder of workflow files becomes Dagster definitions.

Declared in `maestro_defs/defs/workflows/defs.yaml`; `dg list defs`, `dg check defs` and
`dg dev` load it like any other component, and `workspace.yaml` reaches the same definitions
through `maestro_defs.definitions:defs`.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from maestro_defs.workflows import (
    build_definitions,
    load_workflows,
    report_problems,
    reserved_sensor_names,
    strict_loading,
    workflow_dirs,
)


class MaestroWorkflows(dg.Component, dg.Model, dg.Resolvable):
    """Every Maestro workflow file in the workflows folders as a Dagster job (one op per step),
    with its schedules and declared-output assets, the policy gate sensor, and the resources
    the steps use (built from the environment: `resources.defaults.default_resources`).

    A file that does not compile is left out, with its `file:line:col` problems logged as a
    warning and shown on the gate sensor; every other workflow loads. `strict: true` (or
    MAESTRO_STRICT_LOAD=1, and always under `dagster definitions validate` / `dg check defs`)
    fails the whole load instead.
    """

    workflows_dirs: list[str] = Field(
        default_factory=lambda: ["workflows"],
        description="Folders of workflow files, relative to the project root. "
        "MAESTRO_WORKFLOWS_DIR (os.pathsep-separated) overrides them.",
    )
    strict: bool = Field(
        default=False, description="Fail the whole load when any workflow file is broken."
    )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        dirs = workflow_dirs(self.workflows_dirs, root=context.project_root)
        loaded = load_workflows(dirs, reserved_names=reserved_sensor_names())
        report_problems(loaded, strict_loading(configured=self.strict))
        return build_definitions(loaded)
