"""Where Maestro's extra time goes: cProfile of the 1,000-step compile and of the 100-op runs.

Run: `.venv/bin/python bench/hotspots.py`. Prints, per profile, our own functions
(yaml_compiler/, resources/) by cumulative time with their share of the profiled total, and
the costliest functions overall by own time. cProfile slows Python code down unevenly, so read
the shares, not the absolute seconds. Exit code 0.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
from pathlib import Path

import compile as compile_bench
import dagster as dg
import overhead as overhead_bench

from resources.policy.engine import PolicyEngineResource
from yaml_compiler.backend import compile_text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUR_DIRS = (str(PROJECT_ROOT / "yaml_compiler"), str(PROJECT_ROOT / "resources"))
TOP = 14


def _label(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    for marker in ("/site-packages/", str(PROJECT_ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{filename}:{line}({name})"


def report(title: str, profile: cProfile.Profile, runs: int) -> None:
    """Our functions by cumulative time, then everything by own time, per run."""
    stats = pstats.Stats(profile)
    rows = stats.stats  # type: ignore[attr-defined]
    # cProfile's total can be a little below the outermost cumulative time: use the larger.
    total = max(stats.total_tt, *(v[3] for v in rows.values()))  # type: ignore[attr-defined]
    print(f"\n=== {title}: {total / runs:.3f} s per run under cProfile")
    ours = [(f, v) for f, v in rows.items() if f[0].startswith(OUR_DIRS)]
    ours.sort(key=lambda item: item[1][3], reverse=True)
    print(f"{'our function (cumulative time)':70} {'calls':>7} {'s/run':>7} {'share':>6}")
    for func, (_, calls, _, cumtime, _) in ours[:TOP]:
        print(_row(func, calls // runs, cumtime / runs, cumtime / total))
    if not ours:
        print("  (none)")
    everything = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)
    print(f"{'any function (own time)':70} {'calls':>7} {'s/run':>7} {'share':>6}")
    for func, (_, calls, tottime, _, _) in everything[:8]:
        print(_row(func, calls // runs, tottime / runs, tottime / total))


def _row(func: tuple[str, int, str], calls: int, seconds: float, share: float) -> str:
    return f"{_label(func)[:70]:70} {calls:7d} {seconds:7.3f} {share:6.1%}"


def profile_compile(runs: int = 3) -> None:
    steps, stages = compile_bench.generate()
    text = compile_bench.to_yaml(steps, stages)
    compile_bench.maestro_compile(text)  # warm-up
    profile = cProfile.Profile()
    for _ in range(runs):
        compile_bench.clear_template_caches()
        profile.enable()
        compile_text(text, "bench-1000.yaml")
        profile.disable()
    report("compile_text, 1,000 steps", profile, runs)


def profile_runs(runs: int = 2) -> None:
    jobs = {
        "maestro": compile_text(
            overhead_bench.maestro_yaml(),
            "bench-overhead.yaml",
            resources={"policy": PolicyEngineResource()},
        ).job,
        "direct": overhead_bench.direct_job(),
    }
    with dg.instance_for_test() as instance:
        for job in jobs.values():
            overhead_bench.run_once(job, instance)  # warm-up
        for name, job in jobs.items():
            profile = cProfile.Profile()
            events = 0
            with overhead_bench.stderr_to_devnull():
                for _ in range(runs):
                    profile.enable()
                    result = job.execute_in_process(instance=instance)
                    profile.disable()
                    events = len(instance.get_records_for_run(result.run_id, limit=10**5).records)
            report(f"execute_in_process, 100 ops, {name} ({events} events/run)", profile, runs)


def main() -> int:
    profile_compile()
    profile_runs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
