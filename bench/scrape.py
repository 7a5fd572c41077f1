"""Crawl throughput: the `web_scraper` plugin vs a bare Scrapy spider, same 500-page loopback
site, robots.txt obeyed, no delay, measured side by side in one run.

Run: `.venv/bin/python bench/scrape.py` (~1 min; BENCH_SCRAPE_RUNS=3 for a quick look).
The plugin's time runs from its `run` call to its return, so it includes writing the job spec,
starting the crawl subprocess (interpreter, Scrapy imports, reactor) and forwarding every log
line; the bare spider's runs from starting its process to its exit. Both write one item (url,
title) per page as JSON Lines at Scrapy's default concurrency (16, 8 per domain). Variants
alternate after a warm-up of each; medians and bests of the runs are shown. Also shown, outside
the headline: the same crawl as a whole Maestro step in a Dagster run (policy decision, items
into the content store), and the crawl subprocess's start-up. Target: plugin pages/s ≥ 0.9x
the bare spider's. Reported, never asserted; the exit code is 0.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.support.scrape_site`

import dagster as dg  # noqa: E402
from _common import fmt_row, noise_note, verdict  # noqa: E402

from resources.artifacts import ArtifactsIOManager  # noqa: E402
from resources.plugins import RunInfo, StepContext  # noqa: E402
from resources.plugins.web_scraper import WEB_SCRAPER, WebScraperParams  # noqa: E402
from resources.policy.engine import PolicyEngineResource  # noqa: E402
from resources.scraper.launcher import run_crawl  # noqa: E402
from resources.scraper_resource import ScraperResource  # noqa: E402
from tests.support.compiling import compile_text  # noqa: E402
from tests.support.scrape_site import BenchSite  # noqa: E402

PAGES = 500
RUNS = int(os.environ.get("BENCH_SCRAPE_RUNS", "5"))
STARTUP_RUNS = 5
TARGET = 0.9
BARE = Path(__file__).resolve().parent / "_scrape_bare.py"


class _QuietLog:
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...
    def debug(self, msg: str) -> None: ...


def timed(call: Callable[[], int]) -> float:
    started = time.perf_counter()
    items = call()
    elapsed = time.perf_counter() - started
    assert items == PAGES, f"{items} items, expected {PAGES}"
    return elapsed


def main() -> None:
    site = BenchSite(pages=PAGES)
    work = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    scraper = ScraperResource(work_dir=str(work))
    policy = PolicyEngineResource()  # the shipped `default` tenant allow-lists 127.0.0.1
    params = WebScraperParams.model_validate(
        {"start_urls": [site.url()], "follow": True, "fields": {"title": "css:title::text"}}
    )
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the forwarded log goes nowhere, at full cost

    def bare() -> int:
        out = subprocess.run(
            [sys.executable, str(BARE), site.url(), str(work / "bare.jsonl")],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout.strip().rsplit("items=", 1)[1])

    def plugin() -> int:
        ctx = StepContext(
            step_id="bench",
            run=RunInfo("run", "bench", "default", "dev", ""),
            log=_QuietLog(),
            resources={"scraper": scraper, "policy": policy},
        )
        with contextlib.redirect_stderr(devnull):
            output = WEB_SCRAPER.run(params, ctx)
        ctx.finish()
        return int(output["item_count"])

    job = compile_text(
        f"""
name: bench-crawl
steps:
  - id: crawl
    run: web_scraper
    with: {{start_urls: ["{site.url()}"], follow: true, fields: {{title: "css:title::text"}}}}
""",
        resources={
            "scraper": scraper,
            "policy": policy,
            "io_manager": ArtifactsIOManager(location=str(work / "store")),
        },
    ).job

    with dg.instance_for_test() as instance:

        def step() -> int:
            with contextlib.redirect_stderr(devnull):
                result = job.execute_in_process(instance=instance)
            return int(result.output_for_node("crawl")["item_count"])

        variants = {"bare Scrapy spider": bare, "web_scraper plugin": plugin, "Maestro step": step}
        for call in variants.values():  # warm-up: page cache, .pyc files, the policy engine
            timed(call)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(RUNS):
            for name, call in variants.items():
                samples[name].append(timed(call))

    startup = []
    one_page = {"start_urls": [site.url()], "max_depth": 0, "respect_robots": False}
    for n in range(STARTUP_RUNS):
        started = time.perf_counter()
        run_crawl({**one_page, "ssrf_allow": ["127.0.0.1"]}, workdir=work / f"s{n}", on_log=_drop)
        startup.append(time.perf_counter() - started)
    imports = []
    for _ in range(STARTUP_RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import scrapy.crawler"], check=True)
        imports.append(time.perf_counter() - started)
    site.stop()

    print(f"\n{PAGES}-page loopback site, robots.txt obeyed, no delay; {RUNS} runs each")
    print(fmt_row("variant", "median s", "best s", "pages/s"))
    for name, values in samples.items():
        median = statistics.median(values)
        print(fmt_row(name, f"{median:.3f}", f"{min(values):.3f}", f"{PAGES / median:.1f}"))
    bare_s = statistics.median(samples["bare Scrapy spider"])
    ours_s = statistics.median(samples["web_scraper plugin"])
    step_s = statistics.median(samples["Maestro step"])
    ratio = bare_s / ours_s
    print(
        f"\nratio plugin/bare pages/s: {ratio:.2f} (target >= {TARGET}) {verdict(ratio >= TARGET)}"
    )
    print(f"ratio Maestro step/bare pages/s: {bare_s / step_s:.2f} (run, policy, content store)")
    print(noise_note(samples))
    print(
        f"\ncrawl subprocess start-up, 1 page, robots off: median "
        f"{statistics.median(startup):.3f} s (python -c 'import scrapy.crawler': "
        f"{statistics.median(imports):.3f} s)"
    )


def _drop(level: str, line: str) -> None:
    pass


if __name__ == "__main__":
    main()
