"""Subprocess entry point: ``python -m resources.scraper.runner --spec FILE|-``.

Reads a JSON job spec (file, or stdin with ``-``), runs one crawl with CrawlerProcess (no
project, settings from ``settings_map``), writes items as JSON Lines to ``items_path`` and the
summary JSON to ``summary_path`` (if set) and as the last stdout line, prefixed with
``MAESTRO_SUMMARY ``. Logs go to stderr, one record per line: ``LEVEL [logger] message``.

Exit codes: 0 crawl finished (even with page errors: those are in the summary);
2 bad job spec; 3 the crawl did not run to completion (spider failed to open, engine
crashed); 1 anything else (uncaught exception, traceback on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from resources.scraper.spec import JobSpec, SpecError
from resources.scraper.summary import SUMMARY_PREFIX

EXIT_OK, EXIT_CRASH, EXIT_SPEC, EXIT_INCOMPLETE = 0, 1, 2, 3


def load_spec(source: str) -> JobSpec:
    try:
        if source == "-":
            raw: Any = json.load(sys.stdin)
        else:
            with open(source, encoding="utf-8") as fh:
                raw = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read job spec {source!r}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError("job spec must be a JSON object")
    return JobSpec.from_dict(raw)


def run(spec: JobSpec) -> dict[str, Any]:
    t0 = time.monotonic()
    from scrapy.crawler import CrawlerProcess

    from resources.scraper.settings import build_settings
    from resources.scraper.spider import MaestroSpider
    from resources.scraper.summary import build_summary

    process = CrawlerProcess(build_settings(spec))
    crawler = process.create_crawler(MaestroSpider)
    failures: list[str] = []
    d = process.crawl(crawler, spec=spec)
    d.addErrback(lambda f: failures.append(f.getTraceback()))
    process.start(install_signal_handlers=True)
    duration = time.monotonic() - t0
    if failures or crawler.spider is None or crawler.stats is None:
        raise CrawlIncomplete("".join(failures) or "the crawl did not start")
    summary = build_summary(crawler, duration)
    if summary["finish_reason"] is None:
        raise CrawlIncomplete("the crawl ended without a finish reason")
    return summary


class CrawlIncomplete(RuntimeError):
    pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m resources.scraper.runner")
    ap.add_argument("--spec", required=True, help="job spec JSON file, or - for stdin")
    args = ap.parse_args(argv)
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        print(f"ERROR [maestro.runner] bad job spec: {exc}", file=sys.stderr)
        return EXIT_SPEC
    try:
        summary = run(spec)
    except CrawlIncomplete as exc:
        detail = str(exc).rstrip()
        print(detail, file=sys.stderr)  # the traceback first, the headline last
        print(
            f"ERROR [maestro.runner] crawl incomplete: {detail.splitlines()[-1]}", file=sys.stderr
        )
        return EXIT_INCOMPLETE
    text = json.dumps(summary, sort_keys=True)
    if spec.summary_path:
        with open(spec.summary_path, "w", encoding="utf-8") as fh:
            fh.write(text)
    sys.stdout.write(SUMMARY_PREFIX + text + "\n")
    sys.stdout.flush()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
