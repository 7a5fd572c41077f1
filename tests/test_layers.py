"""One-way layers: each package imports only the layers below it (docs/architecture.md).

    maestro_cli  ─┐
    maestro_defs ─┴─> yaml_compiler.backend ─> yaml_compiler (language core) ─> maestro_common
                                          └──> resources ───────────────────────┘

The language core imports neither Dagster nor run-time code; `resources/` never imports the
compiler. Every import counts, function-local ones included, so a back-import cannot hide.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support.paths import PROJECT_ROOT

OURS = ("maestro_common", "yaml_compiler", "resources", "maestro_defs", "maestro_cli")
CORE_MODULES_WITHOUT_DAGSTER = ("dagster", "dagster_shared", "resources")


def layer_of(module: str) -> str:
    if module == "yaml_compiler.backend" or module.startswith("yaml_compiler.backend."):
        return "backend"
    if module.split(".")[0] == "yaml_compiler":
        return "core"
    return module.split(".")[0]


ALLOWED: dict[str, set[str]] = {
    "maestro_common": {"maestro_common"},
    "core": {"maestro_common", "core"},
    "resources": {"maestro_common", "resources"},
    "backend": {"maestro_common", "core", "resources", "backend"},
    "maestro_defs": {"maestro_common", "core", "resources", "backend", "maestro_defs"},
    "maestro_cli": {
        "maestro_common",
        "core",
        "resources",
        "backend",
        "maestro_defs",
        "maestro_cli",
    },
}
"""What each layer may import, of ours."""
THIRD_PARTY_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "maestro_common": ("dagster", "dagster_shared"),
    "core": ("dagster", "dagster_shared"),
}


def module_name(path: Path, root: Path = PROJECT_ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(root: Path = PROJECT_ROOT) -> list[str]:
    problems = []
    for path in sorted(p for package in OURS for p in (root / package).rglob("*.py")):
        layer = layer_of(module_name(path, root))
        for line, imported in imports_of(path):
            top = imported.split(".")[0]
            where = f"{path.relative_to(root)}:{line}"
            if top in OURS and layer_of(imported) not in ALLOWED[layer]:
                problems.append(f"{where}: {layer} imports {imported} ({layer_of(imported)})")
            if top in THIRD_PARTY_FORBIDDEN.get(layer, ()):
                problems.append(f"{where}: {layer} imports {imported}")
    return problems


def test_every_import_goes_down_the_layers() -> None:
    assert violations() == []


def test_the_checker_sees_upward_imports(tmp_path: Path) -> None:
    """The test above can fail: a function-local import of the compiler from `resources/`,
    and Dagster in the language core, are both reported."""
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "probe.py").write_text(
        "def f():\n    from yaml_compiler.plan import plan_workflow\n"
    )
    (tmp_path / "yaml_compiler").mkdir()
    (tmp_path / "yaml_compiler" / "probe.py").write_text("import dagster as dg\n")
    assert violations(tmp_path) == [
        "resources/probe.py:2: resources imports yaml_compiler.plan (core)",
        "yaml_compiler/probe.py:1: core imports dagster",
    ]


def test_the_language_core_loads_without_dagster() -> None:
    """Importing every core module pulls in neither Dagster nor `resources/` (the plugin
    registry is passed to the planner, never imported by it)."""
    core = sorted(
        module_name(p)
        for p in (PROJECT_ROOT / "yaml_compiler").rglob("*.py")
        if layer_of(module_name(p)) == "core"
    )
    probe = (
        "import importlib, sys\n"
        f"for name in {core!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in {CORE_MODULES_WITHOUT_DAGSTER!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert "yaml_compiler.plan" in core and "yaml_compiler.backend.job" not in core
