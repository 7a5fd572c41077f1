"""The crawl summary: built from Scrapy's stats plus our components' counters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

SUMMARY_PREFIX = "MAESTRO_SUMMARY "


def _prefixed(stats: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}


def build_summary(crawler: Crawler, duration_s: float) -> dict[str, Any]:
    from resources.scraper.middlewares import (
        DomainCountMiddleware,
        ProxyRotationMiddleware,
        RobotsTxtPolicyMiddleware,
        SsrfGuardMiddleware,
    )
    from resources.scraper.pipeline import JsonLinesPipeline
    from resources.scraper.spider import MaestroSpider

    assert crawler.stats is not None
    stats: dict[str, Any] = crawler.stats.get_stats()
    spider = crawler.spider
    assert isinstance(spider, MaestroSpider)
    pipeline = crawler.get_item_pipeline(JsonLinesPipeline)
    ssrf = crawler.get_downloader_middleware(SsrfGuardMiddleware)
    domains = crawler.get_downloader_middleware(DomainCountMiddleware)
    proxies = crawler.get_downloader_middleware(ProxyRotationMiddleware)
    robots_policy = crawler.get_downloader_middleware(RobotsTxtPolicyMiddleware)
    robots_requests = int(stats.get("robotstxt/request_count", 0))
    responses = int(stats.get("downloader/response_count", 0))
    errors = dict(spider.errors)
    if n := stats.get("spider_exceptions/count"):
        errors["spider_exception"] = int(n)
    by_status = {
        int(k): v for k, v in _prefixed(stats, "downloader/response_status_count/").items()
    }
    return {
        "finish_reason": stats.get("finish_reason"),
        "duration_s": round(duration_s, 3),
        "pages": spider.pages,  # responses handed to extraction (max_pages applies to these)
        "responses": responses,  # every HTTP response, incl. robots.txt, redirects, retried 429s
        "robots_txt_fetches": robots_requests,
        "requests": int(stats.get("downloader/request_count", 0)),
        "items": pipeline.items if pipeline else int(stats.get("item_scraped_count", 0)),
        "items_bytes": pipeline.bytes if pipeline else 0,
        "bytes_downloaded": int(stats.get("downloader/response_bytes", 0)),
        "robots_blocked": int(stats.get("robotstxt/forbidden", 0)),
        "robots_blocked_urls": spider.robots_blocked,
        "ssrf_blocked": int(stats.get("maestro/ssrf_blocked", 0)),
        "ssrf_blocked_urls": ssrf.blocked if ssrf else [],
        "offsite_filtered": int(stats.get("offsite/filtered", 0)),
        "duplicates_filtered": int(stats.get("dupefilter/filtered", 0)),
        "errors": errors,  # final failures (after retries), by kind
        "errors_total": sum(errors.values()),
        "error_samples": spider.error_samples,
        # every failed attempt incl. retried ones (refusals are not errors: left out)
        "attempt_errors": {
            k: v
            for k, v in _prefixed(stats, "downloader/exception_type_count/").items()
            if not k.endswith(("IgnoreRequest", "SsrfBlocked"))
        },
        "retries": int(stats.get("retry/count", 0)),
        "retry_after_waits": int(stats.get("maestro/retry_after/count", 0)),
        "retry_after_seconds": int(stats.get("maestro/retry_after/wait_ms", 0)) / 1000,
        "responses_by_status": by_status,
        "requests_by_domain": dict(sorted(domains.counts.items())) if domains else {},
        "proxies": proxies.report() if proxies else {},
        "robots_txt_status": _prefixed(stats, "robotstxt/response_status_count/"),
        "robots_txt_errors": _prefixed(stats, "robotstxt/exception_count/"),
        "robots_txt_fallbacks": robots_policy.fallbacks if robots_policy else {},
        "log_errors": int(stats.get("log_count/ERROR", 0)),
    }
