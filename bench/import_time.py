"""Start-up cost of the code location: loading `maestro_defs.definitions:defs` (import, then
build the definitions: what a code server does) vs `import dagster`, in subprocesses.

Run: `.venv/bin/python bench/import_time.py`. Uses the default workflows folder
(MAESTRO_WORKFLOWS_DIR is removed from the child environment). The target is reported
(PASS/MISS), never asserted, and the exit code is 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import fmt_row, verdict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPEATS = 5
TARGET_SECONDS = 2.0
FORBIDDEN = ("litellm", "scrapy")
LOAD = "load the code location"
LOAD_CODE = "from maestro_defs.definitions import defs; defs()"
PROBE = """
import importlib.util, json, sys, time
def timed_import(name):
    start = time.perf_counter()
    importlib.import_module(name)
    return time.perf_counter() - start
steps = {f"import {name}": timed_import(name) for name in
         ("dagster", "yaml_compiler", "maestro_defs", "maestro_defs.definitions")}
start = time.perf_counter()
sys.modules["maestro_defs.definitions"].defs()
steps["build the definitions"] = time.perf_counter() - start
forbidden = sys.argv[1:]
print(json.dumps({
    "steps": steps,
    "imported": {name: any(m == name or m.startswith(name + ".") for m in sys.modules)
                 for name in forbidden},
    "installed": {name: importlib.util.find_spec(name) is not None for name in forbidden},
}))
"""
EXTRA = """
import json, sys
import dagster
before = {m.split(".")[0] for m in sys.modules}
from maestro_defs.definitions import defs
defs()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} - before)))
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MAESTRO_WORKFLOWS_DIR", None)
    return env


def wall_clock(code: str) -> float:
    """Seconds for `python -c code` from spawn to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=child_env(), check=True)
    return time.perf_counter() - start


def probe(code: str, *args: str) -> object:
    """Run `python -c code args...` and parse the JSON it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> int:
    variants = {"import dagster": "import dagster", LOAD: LOAD_CODE}
    for code in variants.values():  # warm-up: bytecode caches, page cache
        wall_clock(code)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(REPEATS):  # interleaved
        for name, code in variants.items():
            seconds[name].append(wall_clock(code))
    med = {name: statistics.median(values) for name, values in seconds.items()}
    found = probe(PROBE, *FORBIDDEN)
    extra = probe(EXTRA)
    print(
        f"wall clock of `python -c ...` in a subprocess, default workflows folder; "
        f"median (best) of {REPEATS} interleaved runs after a warm-up:\n"
    )
    print(fmt_row("variant", "median s", "best s"))
    for name in variants:
        print(fmt_row(name, f"{med[name]:.3f}", f"{min(seconds[name]):.3f}"))
    difference = med[LOAD] - med["import dagster"]
    print(fmt_row("difference (code location - dagster)", f"{difference:.3f}", ""))
    print("\nin one process, each step after the previous ones (one run, s):")
    for name, value in found["steps"].items():
        print(fmt_row(f"  {name}", f"{value:.3f}", ""))
    print(f"\ntop-level packages first imported by the code location after dagster: {extra}")
    imported = [name for name, hit in found["imported"].items() if hit]
    for name in FORBIDDEN:
        state = "imported" if found["imported"][name] else "not imported"
        installed = "installed" if found["installed"][name] else "not installed"
        print(f"{name}: {state} ({installed})")
    ok = med[LOAD] < TARGET_SECONDS and not imported
    print(
        f"\ntarget: loading the code location < {TARGET_SECONDS} s and no "
        f"{'/'.join(FORBIDDEN)}: {verdict(ok)} ({med[LOAD]:.3f} s; "
        f"forbidden imported: {', '.join(imported) or 'none'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
