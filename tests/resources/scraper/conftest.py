"""Fixtures of the crawl tests: the loopback site, and crawls run through `run_crawl` with the
test site's two addresses allow-listed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from resources.scraper.launcher import CrawlResult, run_crawl
from tests.support.scrape_site import ScrapeSite

LOOPBACK = ["127.0.0.1", "127.0.0.2"]
"""The test site's addresses: allow-listed explicitly (the SSRF guard refuses loopback)."""


class LogSink:
    """Records the crawl's log lines with the time each arrived in the parent."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str, str]] = []

    def __call__(self, level: str, line: str) -> None:
        self.lines.append((time.monotonic(), level, line))

    def text(self) -> str:
        return "\n".join(line for _, _, line in self.lines)


Crawl = Callable[..., CrawlResult]


@pytest.fixture(scope="module")
def site() -> Iterator[ScrapeSite]:
    with ScrapeSite() as served:
        yield served


@pytest.fixture
def crawl(tmp_path: Path) -> Crawl:
    """Run one crawl in a subprocess: a job spec (loopback allow-listed, 5 s per request)."""
    runs = iter(range(1000))

    def run(
        spec: dict[str, Any], *, sink: LogSink | None = None, timeout: float = 60
    ) -> CrawlResult:
        full = {"ssrf_allow": LOOPBACK, "timeout": 5, **spec}
        return run_crawl(
            full, workdir=tmp_path / f"crawl{next(runs)}", on_log=sink or LogSink(), timeout=timeout
        )

    return run
