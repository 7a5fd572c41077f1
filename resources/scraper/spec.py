"""The JSON job spec the parent hands to the crawl subprocess.

The step plugin validates the step's `with` with pydantic (resources/plugins/web_scraper.py)
and writes this plain JSON; the runner parses it with dataclasses only, so the subprocess does
not pay for importing pydantic. `JobSpec.from_dict` still rejects unknown keys and bad
selectors, because the runner may also be started by hand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from resources.scraper.extraction import FieldSpec, Selector, SelectorError


class SpecError(ValueError):
    """A job spec the runner cannot run (the runner exits 2)."""


@dataclass(frozen=True)
class AutoThrottle:
    enabled: bool = False
    start_delay: float = 1.0
    max_delay: float = 60.0
    target_concurrency: float = 1.0


@dataclass(frozen=True)
class RateLimit:
    delay: float = 0.0  # seconds between requests to one domain (a floor: jitter 0 by default)
    jitter: float = 0.0  # ± fraction of delay (Scrapy's DOWNLOAD_DELAY_JITTER; its default is 0.5)
    per_domain_concurrency: int = 8
    autothrottle: AutoThrottle = field(default_factory=AutoThrottle)
    respect_retry_after: bool = True
    max_retry_after: float = 120.0  # a longer Retry-After gives up on the request


@dataclass(frozen=True)
class FollowRules:
    """Which links to follow: CSS/XPath regions to take links from, URL regexes to keep."""

    regions_css: tuple[str, ...] = ()
    regions_xpath: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()  # URL regexes (``re:...``)
    deny: tuple[str, ...] = ()  # URL regexes (``!re:...``)

    @classmethod
    def parse(cls, value: bool | str | list[str] | None) -> FollowRules | None:
        if value is True:
            return cls()
        if not value:  # None, False, "" or []
            return None
        items = [value] if isinstance(value, str) else list(value)
        css: list[str] = []
        xpath: list[str] = []
        allow: list[str] = []
        deny: list[str] = []
        for item in items:
            negate = item.startswith("!")
            sel = Selector.parse(item[1:] if negate else item)
            if negate and sel.kind != "re":
                raise SpecError(f"follow: only URL regexes can be negated: {item!r}")
            if negate:
                deny.append(sel.expr)
            else:
                {"re": allow, "css": css, "xpath": xpath}[sel.kind].append(sel.expr)
        return cls(tuple(css), tuple(xpath), tuple(allow), tuple(deny))


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """The remaining scalar keys, JSON lists as tuples (the dataclass is frozen)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


@dataclass(frozen=True)
class JobSpec:
    start_urls: tuple[str, ...]
    items_path: str
    summary_path: str | None = None
    allowed_domains: tuple[str, ...] = ()
    follow: FollowRules | None = None
    max_depth: int | None = None  # 0 = only the start URLs
    max_pages: int | None = None
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    item_selector: Selector | None = None  # one item per matching node instead of per page
    extract: FieldSpec | None = None  # the original single-value shape
    respect_robots: bool = True
    robots_policy: str = "rfc9309"  # or "scrapy": what a failed robots.txt fetch means
    rate_limit: RateLimit = field(default_factory=RateLimit)
    concurrency: int = 16
    proxies: tuple[str, ...] = ()
    proxy_max_failures: int = 3
    proxy_cooldown: float = 60.0
    user_agent: str | None = None
    cache_ttl: float | None = None  # None = no HTTP cache
    cache_dir: str | None = None
    timeout: float = 30.0
    retries: int = 2
    max_duration: float | None = None  # CLOSESPIDER_TIMEOUT
    ssrf_allow: tuple[str, ...] = ()
    log_level: str = "INFO"
    reactor: str | None = None  # override TWISTED_REACTOR (see settings_map)
    settings: dict[str, Any] = field(default_factory=dict)
    """Raw Scrapy settings applied last: for tests and experiments, never from a step."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)} | {"url"}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"unknown job spec keys: {sorted(unknown)}")
        try:
            urls = list(data.pop("start_urls", None) or [])
            if url := data.pop("url", None):
                urls.insert(0, url)
            if not urls:
                raise SpecError("job spec needs `url` or `start_urls`")
            for u in urls:
                if urlsplit(u).scheme not in ("http", "https"):
                    raise SpecError(f"start URL must be http(s): {u!r}")
            if "items_path" not in data:
                raise SpecError("job spec needs `items_path`")
            rl = dict(data.pop("rate_limit", None) or {})
            at = rl.pop("autothrottle", False)
            at_obj = (
                AutoThrottle(enabled=at)
                if isinstance(at, bool)
                else AutoThrottle(**{"enabled": True, **at})
            )
            raw_fields = data.pop("fields", None) or {}
            fields = {name: FieldSpec.from_obj(obj) for name, obj in raw_fields.items()}
            extract = data.pop("extract", None)
            item_sel = data.pop("item_selector", None)
            max_depth = data.pop("max_depth", None)
            follow = FollowRules.parse(data.pop("follow", None))
            if max_depth == 0:
                follow = None  # Scrapy's DEPTH_LIMIT=0 means *unlimited*
            spec = cls(
                start_urls=tuple(urls),
                follow=follow,
                max_depth=max_depth,
                fields=fields,
                extract=FieldSpec.from_obj(extract) if extract is not None else None,
                item_selector=Selector.parse(item_sel) if item_sel else None,
                rate_limit=RateLimit(**{**rl, "autothrottle": at_obj}),
                **_plain(data),
            )
        except SelectorError as exc:
            raise SpecError(str(exc)) from exc
        except TypeError as exc:
            raise SpecError(f"bad job spec: {exc}") from exc
        if spec.robots_policy not in ("rfc9309", "scrapy"):
            raise SpecError(f"robots_policy must be rfc9309 or scrapy, not {spec.robots_policy!r}")
        if spec.fields and spec.extract:
            raise SpecError("use either `fields` or `extract`, not both")
        if not spec.allowed_domains:
            hosts = {urlsplit(u).hostname or "" for u in spec.start_urls}
            spec = dataclasses.replace(spec, allowed_domains=tuple(sorted(h for h in hosts if h)))
        return spec
