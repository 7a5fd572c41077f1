"""Compile time of the 1,000-step workflow (bench/compile.py's): this tree vs a git revision.

Run: `.venv/bin/python bench/compile_compare.py [REV]` (default `9547314`, before issue 15's
input bounds). REV is extracted with `git archive` into a temporary folder; child processes
then alternate between the two trees (A, B, A, B, ...), each timing `load_yaml`,
`plan_workflow` and `compile_text` (the template caches cleared, as a code server compiles a
file once) and printing its best of 7. The table shows the median over the children of those
bests, and the ratio this tree / REV. Nothing is asserted; the exit code is 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REV = sys.argv[1] if len(sys.argv) > 1 else "9547314"
ROUNDS = 6

CHILD = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1] + "/bench")
import compile as bench
from resources.plugins import default_registry
from yaml_compiler import templating
from yaml_compiler.backend import compile_text
from yaml_compiler.plan import plan_workflow
from yaml_compiler.source import load_yaml

steps, stages = bench.generate()
text = bench.to_yaml(steps, stages)
registry = default_registry()

def clear():
    for name in ("_analyse", "_compiled_template", "_compiled_expression"):
        getattr(templating, name).cache_clear()

def best(run):
    times = []
    for _ in range(7):
        clear(); gc.collect()
        started = time.perf_counter(); run(); times.append(time.perf_counter() - started)
    return min(times)

compile_text(text, "bench.yaml", registry)  # warm-up
doc = load_yaml(text, "bench.yaml")
print(json.dumps({
    "load_yaml": best(lambda: load_yaml(text, "bench.yaml")),
    "plan_workflow": best(lambda: plan_workflow(load_yaml(text, "bench.yaml"), registry)),
    "compile_text": best(lambda: compile_text(text, "bench.yaml", registry)),
}))
"""


def extract(rev: str, into: Path) -> None:
    archive = into / "rev.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")


def measure(tree: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT)],
        capture_output=True, text=True, env=env, cwd=tree, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        extract(REV, Path(folder))
        trees = {"this tree": ROOT, REV: Path(folder) / "tree"}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(ROUNDS):
            for name, tree in trees.items():
                results[name].append(measure(tree))
    print(
        f"1,000-step workflow, best of 7 per child, median over {ROUNDS} alternating children (s):"
    )
    print(f"{'phase':16} {'this tree':>10} {REV:>10} {'ratio':>7}")
    for phase in ("load_yaml", "plan_workflow", "compile_text"):
        now = statistics.median(r[phase] for r in results["this tree"])
        then = statistics.median(r[phase] for r in results[REV])
        print(f"{phase:16} {now:10.4f} {then:10.4f} {now / then:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
