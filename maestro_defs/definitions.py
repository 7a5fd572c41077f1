"""The Dagster code location: the components declared under `maestro_defs/defs/`.

Built when Dagster asks for it (`@dg.definitions`), not when a module is imported. Each entry of
the defs folder is built through the project's component tree; Dagster's own
`load_from_defs_folder` would also import every installed integration's component library
(dagster-aws's pulls in boto3) to list component types in the UI's docs tab: +0.6 s on every
code-server start and every step process, for a page Maestro does not use.
"""

from pathlib import Path

import dagster as dg

DEFS_FOLDER = Path(__file__).resolve().parent / "defs"


def _entries(folder: Path) -> list[str]:
    """The defs folder's component locations: sub-folders and Python files, in name order."""
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if not entry.name.startswith(("_", ".")) and (entry.is_dir() or entry.suffix == ".py")
    )


@dg.definitions
def defs() -> dg.Definitions:
    tree = dg.ComponentTree.for_project(DEFS_FOLDER)
    return dg.Definitions.merge(*(tree.build_defs(entry) for entry in _entries(DEFS_FOLDER)))
