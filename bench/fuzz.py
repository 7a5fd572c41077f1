"""The fuzz suite run long: 10,000 generated and mutated cases, counted by category and outcome.

Run: `.venv/bin/python bench/fuzz.py [CASES] [SEED]` (default 10,000 cases, a random seed that
is printed; ~5-10 min on the 2-core machine). The cases are those of tests/test_fuzz.py
(tests/support/fuzzing.py), spread over the categories in proportion to their weight. Prints,
per category, cases tried, compiled, rejected with positioned diagnostics (or a clean step
error, for templates that compile but cannot render), failures (the goal: 0), the slowest case
and the peak RSS growth; the exit code is 1 when a case failed, with the first failures shown.
"""

from __future__ import annotations

import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import HypothesisException

from tests.support import fuzzing
from tests.support.fuzzing import (
    PARAM_WORKFLOW,
    TEMPLATE_SCOPE,
    Outcome,
    judge_compile,
    judge_render,
    template_workflow,
)

CASES = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else random.randrange(2**32)


def _template_case(template: str) -> list[Outcome]:
    compiled = judge_compile(template_workflow(template))
    if compiled.kind != "compiled":
        return [compiled]
    return [compiled, judge_render({"message": template}, TEMPLATE_SCOPE, seconds=2.0)]


CATEGORIES: list[tuple[str, int, Any, Callable[[Any], list[Outcome]]]] = [
    ("random structures", 15, fuzzing.random_structures(), lambda t: [judge_compile(t)]),
    ("one field broken", 20, fuzzing.broken_documents(), lambda t: [judge_compile(t)]),
    ("text mutations, tabs, dup keys", 15, fuzzing.text_mutations(), lambda t: [judge_compile(t)]),
    ("binary junk, non-UTF-8", 10, fuzzing.binary_junk(), lambda b: [judge_compile(b)]),
    ("deep nesting", 5, fuzzing.deep_nesting(), lambda t: [judge_compile(t)]),
    ("alias bombs", 5, fuzzing.alias_bombs(), lambda t: [judge_compile(t)]),
    ("huge documents", 2, fuzzing.huge_documents(), lambda t: [judge_compile(t)]),
    (
        "--param values",
        10,
        fuzzing.param_assignments,
        lambda a: [judge_compile(PARAM_WORKFLOW, ["r=x", *a])],
    ),
    ("templates (compile + render)", 18, fuzzing.templates(), _template_case),
]


CHUNK = 250
"""Examples per hypothesis run: hypothesis remembers every example of a run (~80 KB each), so
a category runs in chunks with their own seeds and the RSS measured is the compiler's."""


def run_category(
    strategy: Any, judge: Callable[[Any], list[Outcome]], cases: int
) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "tried": 0, "compiled": 0, "rejected": 0, "failed": 0, "slowest": 0.0, "failures": [],
    }  # fmt: skip

    def record(value: Any) -> None:
        stats["tried"] += 1
        for outcome in judge(value):
            stats[outcome.kind] += 1
            stats["slowest"] = max(stats["slowest"], outcome.seconds)
            if outcome.kind == "failed" and len(stats["failures"]) < 3:
                stats["failures"].append((outcome.detail[:600], repr(value)[:600]))

    for chunk, start in enumerate(range(0, cases, CHUNK)):
        case = given(strategy)(record)
        case = settings(
            max_examples=min(CHUNK, cases - start),
            deadline=None,
            database=None,
            phases=[Phase.generate],  # no shrinking: a failure is printed as found
            suppress_health_check=list(HealthCheck),
        )(case)
        seed(SEED + chunk)(case)()
    return stats


def main() -> int:
    total_weight = sum(weight for _, weight, _, _ in CATEGORIES)
    print(f"bench/fuzz.py: {CASES:,} cases, seed {SEED} (rerun: bench/fuzz.py {CASES} {SEED})")
    fuzzing.judge_compile("name: warm\nsteps:\n  - run: echo\n")  # imports, caches
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    rows = []
    for name, weight, strategy, judge in CATEGORIES:
        cases = max(1, CASES * weight // total_weight)
        began = time.perf_counter()
        try:
            stats = run_category(strategy, judge, cases)
        except HypothesisException as exc:  # pragma: no cover - a generator problem, not a case
            print(f"{name}: hypothesis stopped: {exc}")
            return 2
        stats["seconds"] = time.perf_counter() - began
        stats["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append((name, stats))
        print(
            f"  {name:30} tried {stats['tried']:6,}  compiled {stats['compiled']:6,}  "
            f"rejected {stats['rejected']:6,}  failed {stats['failed']:3}  "
            f"slowest {stats['slowest']:5.2f}s  {stats['seconds']:6.1f}s  "
            f"peak RSS {stats['rss_mb']:5.0f} MB",
            flush=True,
        )
    elapsed = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    totals = {k: sum(s[k] for _, s in rows) for k in ("tried", "compiled", "rejected", "failed")}
    slowest = max(s["slowest"] for _, s in rows)
    judged = totals["compiled"] + totals["rejected"] + totals["failed"]
    print(
        f"total: tried {totals['tried']:,} cases ({judged:,} judgements: a compiled template is "
        f"also rendered), compiled {totals['compiled']:,}, "
        f"rejected with diagnostics {totals['rejected']:,}, failures {totals['failed']} (goal 0)"
    )
    print(
        f"time: {elapsed:.1f}s ({elapsed / max(totals['tried'], 1) * 1000:.1f} ms a case), slowest "
        f"case {slowest:.2f}s (cap {fuzzing.CASE_SECONDS:g}s); peak RSS grew {grown:.0f} MB"
    )
    for name, stats in rows:
        for detail, value in stats["failures"]:
            print(f"FAILED [{name}] {detail}\n    case: {value}")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
