"""Job spec -> Scrapy settings (no Scrapy project, no settings module; plain strings, so this
module imports no Scrapy and the mapping is unit-tested without a reactor)."""

from __future__ import annotations

import os
from typing import Any

from resources.scraper.spec import JobSpec

PKG = "resources.scraper"
DEFAULT_USER_AGENT = "Maestro-Scraper/0.1"

# The only extensions a one-shot, unattended crawl needs: CoreStats (the summary is built
# from its stats), LogCount, CloseSpider (max_duration), LogStats (progress lines) and
# AutoThrottle. EXTENSIONS_BASE is *replaced*, not patched with `EXTENSIONS = {path: None}`:
# Scrapy imports every key of a component dict to normalise it, so a disabled entry is still
# imported - RemoteControl pulls in aiohttp.web (~90 ms). Left out: TelnetConsole,
# MemoryUsage, MemoryDebugger, FeedExporter (we write items ourselves), SpiderState,
# RemoteControl.
EXTENSIONS_BASE = {
    "scrapy.extensions.corestats.CoreStats": 0,
    "scrapy.extensions.logcount.LogCount": 0,
    "scrapy.extensions.closespider.CloseSpider": 0,
    "scrapy.extensions.logstats.LogStats": 0,
}
AUTOTHROTTLE = "scrapy.extensions.throttle.AutoThrottle"

# Downloader middleware priorities (Scrapy's own, for reference: Offsite 50, RobotsTxt 100,
# DownloadTimeout 350, UserAgent 500, Retry 550, Redirect 600, HttpProxy 750, HttpCache 900).
SSRF_PRIORITY = 40  # before Offsite and robots: a refused host never gets a robots.txt fetch
ROBOTS_POLICY_PRIORITY = 540  # engine side of Retry: sees the final robots.txt outcome
RETRY_AFTER_PRIORITY = 560  # its process_response runs before RetryMiddleware's
PROXY_PRIORITY = 740  # sets meta["proxy"] just before HttpProxyMiddleware reads it
DOMAIN_COUNT_PRIORITY = 950  # after HttpCache: counts only requests that go to the network

LOG_FORMAT = "%(levelname)s [%(name)s] %(message)s"


def build_settings(spec: JobSpec) -> dict[str, Any]:
    """The settings of one crawl; see docs/dsl.md (web_scraper) for the mapping, field by field."""
    rl = spec.rate_limit
    at = rl.autothrottle
    mws: dict[str, int | None] = {
        f"{PKG}.middlewares.SsrfGuardMiddleware": SSRF_PRIORITY,
        f"{PKG}.middlewares.DomainCountMiddleware": DOMAIN_COUNT_PRIORITY,
    }
    if spec.respect_robots and spec.robots_policy == "rfc9309":
        mws[f"{PKG}.middlewares.RobotsTxtPolicyMiddleware"] = ROBOTS_POLICY_PRIORITY
    if rl.respect_retry_after:
        mws[f"{PKG}.middlewares.RetryAfterMiddleware"] = RETRY_AFTER_PRIORITY
    if spec.proxies:
        mws[f"{PKG}.middlewares.ProxyRotationMiddleware"] = PROXY_PRIORITY

    s: dict[str, Any] = {
        # --- lean start-up / logging
        "LOG_LEVEL": spec.log_level,
        "LOG_FORMAT": LOG_FORMAT,
        "LOG_STDOUT": False,
        "LOG_VERSIONS": [],
        "LOG_INSTALL_ROOT_HANDLER": True,
        "LOGSTATS_INTERVAL": 10.0,
        "STATS_DUMP": spec.log_level == "DEBUG",
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "EXTENSIONS_BASE": {**EXTENSIONS_BASE, **({AUTOTHROTTLE: 0} if at.enabled else {})},
        # --- politeness
        "ROBOTSTXT_OBEY": spec.respect_robots,
        "USER_AGENT": spec.user_agent or DEFAULT_USER_AGENT,
        "DOWNLOAD_DELAY": rl.delay,
        "DOWNLOAD_DELAY_JITTER": rl.jitter,
        "CONCURRENT_REQUESTS": spec.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": rl.per_domain_concurrency,
        "AUTOTHROTTLE_ENABLED": at.enabled,
        "AUTOTHROTTLE_START_DELAY": at.start_delay,
        "AUTOTHROTTLE_MAX_DELAY": at.max_delay,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": at.target_concurrency,
        # --- robustness
        "DOWNLOAD_TIMEOUT": spec.timeout,
        "DNS_TIMEOUT": spec.timeout,
        "TWISTED_DNS_RESOLVER": f"{PKG}.resolver.GuardedResolver",
        "RETRY_ENABLED": spec.retries > 0,
        "RETRY_TIMES": spec.retries,
        # --- limits (DEPTH_LIMIT 0 and CLOSESPIDER_PAGECOUNT 0 both mean "no limit")
        "DEPTH_LIMIT": spec.max_depth or 0,
        "DEPTH_STATS_VERBOSE": False,
        "CLOSESPIDER_PAGECOUNT": 0,  # see spider: counted there, excluding robots.txt
        "CLOSESPIDER_TIMEOUT": spec.max_duration or 0,
        # --- cache (HTTPCACHE_EXPIRATION_SECS 0 means "never expire": ttl 0 => cache off)
        "HTTPCACHE_ENABLED": bool(spec.cache_ttl),
        "HTTPCACHE_EXPIRATION_SECS": int(spec.cache_ttl or 0),
        "HTTPCACHE_DIR": os.path.abspath(spec.cache_dir or ".maestro-httpcache"),
        "HTTPCACHE_IGNORE_HTTP_CODES": [429, 500, 502, 503, 504],
        # --- our components
        "DOWNLOADER_MIDDLEWARES": mws,
        "ITEM_PIPELINES": {f"{PKG}.pipeline.JsonLinesPipeline": 100},
        "MAESTRO_ITEMS_PATH": spec.items_path,
        "MAESTRO_SSRF_ALLOW": list(spec.ssrf_allow),
        "MAESTRO_MAX_RETRY_AFTER": rl.max_retry_after,
        "MAESTRO_PROXIES": list(spec.proxies),
        "MAESTRO_PROXY_MAX_FAILURES": spec.proxy_max_failures,
        "MAESTRO_PROXY_COOLDOWN": spec.proxy_cooldown,
    }
    if spec.reactor is not None:
        s["TWISTED_REACTOR"] = spec.reactor or None
    s.update(spec.settings)
    return s
