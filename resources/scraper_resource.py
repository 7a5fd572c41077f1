"""`ScraperResource`: what a deployment decides about every `web_scraper` crawl.

A step's `with` says what to crawl and how politely; the resource holds what is not the
workflow author's to choose: the price per page (0: crawls cost nothing), the default user
agent, the proxies a step that names none goes through (a secret: `dg.EnvVar`), where the
HTTP cache and scratch files live, and the interpreter the crawl subprocess runs on. The SSRF
allow-list is neither: it is the tenant's, in the policy data (`ssrf_allow`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from resources.scraper.settings import DEFAULT_USER_AGENT

PROXIES_ENV = "MAESTRO_SCRAPER_PROXIES"
PRICE_ENV = "MAESTRO_SCRAPER_PRICE_PER_PAGE"
USER_AGENT_ENV = "MAESTRO_SCRAPER_USER_AGENT"
CACHE_DIR_ENV = "MAESTRO_SCRAPER_CACHE_DIR"
_SEPARATORS = re.compile(r"[\s,]+")


def split_proxies(text: str | None) -> list[str]:
    """A proxy list held in one string (an env var, a secret): comma, space or line separated."""
    return [p for p in _SEPARATORS.split(text or "") if p]


class ScraperResource(dg.ConfigurableResource):
    """The deployment's settings for `web_scraper` steps (see docs/dsl.md, web_scraper)."""

    price_per_page: float = Field(
        default=0.0, ge=0, description="USD per page fetched; 0 (the default): crawls are free."
    )
    user_agent: str = Field(
        default=DEFAULT_USER_AGENT,
        description="User-Agent of steps that give none (robots.txt rules match against it).",
    )
    proxies: str | None = Field(
        default=None,
        description="Proxy URLs (comma/space separated) for steps that name none; a secret, "
        f"bound with dg.EnvVar({PROXIES_ENV!r}) by resources.defaults.",
    )
    proxy_max_failures: int = Field(
        default=3, ge=1, description="Consecutive connection failures that take a proxy out."
    )
    proxy_cooldown_s: float = Field(
        default=60.0, gt=0, description="Seconds a proxy stays out before it is tried again."
    )
    concurrency: int = Field(default=16, ge=1, description="Requests in flight per crawl.")
    robots_policy: Literal["rfc9309", "scrapy"] = Field(
        default="rfc9309",
        description="What a failed robots.txt fetch means: RFC 9309 (4xx allow all, 5xx and "
        "network errors disallow all) or Scrapy's own behaviour.",
    )
    cache_dir: str | None = Field(
        default=None,
        description="Scrapy HTTP cache folder (steps with cache_ttl); default "
        "$DAGSTER_HOME/scrapy-httpcache, else ./.maestro/scrapy-httpcache.",
    )
    work_dir: str | None = Field(
        default=None, description="Where crawls write scratch files; default the system temp."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Scrapy's log level in the crawl subprocess."
    )
    python: str | None = Field(
        default=None,
        description="Interpreter that runs the crawl subprocess (needs Scrapy); default the "
        "one running the step.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ScraperResource:
        """MAESTRO_SCRAPER_PROXIES (bound as a secret), _PRICE_PER_PAGE, _USER_AGENT,
        _CACHE_DIR."""
        proxies: Any = dg.EnvVar(PROXIES_ENV) if environ.get(PROXIES_ENV) else None
        price = environ.get(PRICE_ENV)
        return cls(
            proxies=proxies,
            price_per_page=float(price) if price else 0.0,
            user_agent=environ.get(USER_AGENT_ENV) or DEFAULT_USER_AGENT,
            cache_dir=environ.get(CACHE_DIR_ENV) or None,
        )

    def proxy_list(self) -> list[str]:
        return split_proxies(self.proxies)

    def cache_directory(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser().resolve()
        home = os.environ.get("DAGSTER_HOME")
        base = Path(home) if home else Path.cwd() / ".maestro"
        return (base / "scrapy-httpcache").resolve()

    def interpreter(self) -> str:
        return self.python or sys.executable
