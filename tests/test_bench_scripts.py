"""The benchmark scripts run as `python bench/NAME.py`, which puts `bench/` first on the import
path: a script named like a standard-library module (`queue.py`) would shadow it for every
other script (dagster imports `queue`)."""

from __future__ import annotations

import sys

from tests.support.paths import PROJECT_ROOT


def test_no_bench_script_shadows_a_standard_library_module() -> None:
    names = {path.stem for path in (PROJECT_ROOT / "bench").glob("*.py")}
    assert names, "bench/ has no scripts"
    assert not names & set(sys.stdlib_module_names)
