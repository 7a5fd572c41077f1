"""`web_scraper` (aliases `scrape`, `scrapy.crawl`): crawl with Scrapy, items as JSON Lines.

Each crawl runs Scrapy in a subprocess of its own (`resources.scraper`): Twisted's reactor
cannot restart inside the long-lived step process. The step maps its `with` onto Scrapy's
settings, streams the crawl's log into the compute log (warnings also into the event log),
hands the items file to the content store (output `items`, its hash in the output metadata)
and returns the crawl's summary. The SSRF allow-list is the tenant's (`ssrf_allow` in the
policy data), never a step parameter. Scrapy is never imported here.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from maestro_common.durations import parse_duration
from maestro_common.values import is_template
from resources.observability import tracing
from resources.plugins.base import (
    Plugin,
    PluginParams,
    StepContext,
    StepError,
    StepTimeoutError,
)
from resources.scraper.extraction import FieldSpec, Selector, SelectorError
from resources.scraper.launcher import CrawlError, CrawlResult, iter_items, run_crawl
from resources.scraper_resource import ScraperResource, split_proxies

RESOURCE_KEY = "scraper"
POLICY_KEY = "policy"
TENANT_SSRF_ALLOW = "ssrf_allow"
"""The tenant's field in the policy data: hosts, addresses and CIDRs a crawl may reach
although they are not public (loopback, private, link-local, metadata)."""
ITEMS_OUTPUT = "items"
ITEMS_MEDIA_TYPE = "application/jsonl"
DEFAULT_CRAWL_PAGE_CAP = 1000
"""`max_pages` of a crawl that follows links and gives no limit."""
_EVENT_LOG_WARNINGS = 50
"""Warning lines also sent to the event log (all of them are in the compute log)."""
_WARNING_LEVELS = ("WARNING", "ERROR", "CRITICAL")


def _duration(value: Any) -> Any:
    """Seconds, or a duration string such as 500ms or 2s; templates are left for run time."""
    if isinstance(value, str) and not is_template(value):
        return parse_duration(value)
    return value


def _proxy_list(value: Any) -> Any:
    """A list, or one string holding the list (a secret): comma, space or line separated."""
    if isinstance(value, str) and not is_template(value):
        return split_proxies(value)
    return value


def _check_selector(value: str | None) -> str | None:
    if value is not None and not is_template(value):
        try:
            Selector.parse(value)
        except SelectorError as exc:
            raise ValueError(str(exc)) from exc
    return value


def _field_shorthand(value: Any) -> Any:
    """`title: "css:h1"` is `title: {selector: "css:h1"}` (text, first match)."""
    return {"selector": value} if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(_duration, json_schema_input_type=float | str)]


class _Params(PluginParams):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Extraction(_Params):
    selector: str | None = Field(
        None,
        description="css:..., xpath:..., re:... or a bare CSS selector (a leading / or ./ is "
        "XPath); for type json, a dotted path such as data.items.*.name.",
    )
    type: Literal["html", "text", "links", "json"] = Field(
        "text", description="What a match becomes: text, outer HTML, JSON, or absolute links."
    )
    attribute: str | None = Field(None, description="Take this attribute of each match.")
    regex: str | None = Field(
        None, description="Applied to each value: group 1, the named groups, or the match."
    )
    multiple: bool = Field(False, description="Every match as a list, not only the first.")

    @model_validator(mode="after")
    def _valid(self) -> _Extraction:
        raw = self.model_dump(exclude_none=True)
        if any(is_template(v) for v in raw.values() if isinstance(v, str)):
            return self  # checked once rendered
        try:
            FieldSpec.from_obj(raw)
        except SelectorError as exc:
            raise ValueError(str(exc)) from exc
        return self


class ScrapeExtract(_Extraction):
    """The original system's single-value extraction (`extract:`)."""

    type: Literal["html", "text", "links", "json"] = Field(
        "html", description="What a match becomes: html (default), text, json or links."
    )
    multiple: bool = Field(True, description="Every match as a list (the default), or the first.")


class FieldParams(_Extraction):
    """One named field of a structured item (`fields: {name: {...}}`)."""

    selector: str = Field(description="css:..., xpath:..., re:... or a bare CSS selector.")


class AutoThrottleParams(_Params):
    start_delay: Seconds = Field(1.0, ge=0, description="AUTOTHROTTLE_START_DELAY.")
    max_delay: Seconds = Field(60.0, gt=0, description="AUTOTHROTTLE_MAX_DELAY.")
    target_concurrency: float = Field(
        1.0, gt=0, description="AUTOTHROTTLE_TARGET_CONCURRENCY: requests in flight per domain."
    )


class RateLimitParams(_Params):
    delay: Seconds = Field(
        0.0, ge=0, description="Seconds between requests to one domain (DOWNLOAD_DELAY)."
    )
    per_domain_concurrency: int = Field(
        8, ge=1, description="Requests in flight per domain (CONCURRENT_REQUESTS_PER_DOMAIN)."
    )
    autothrottle: bool | AutoThrottleParams = Field(
        False, description="Scrapy's AutoThrottle: true, or its settings."
    )
    respect_retry_after: bool = Field(
        True, description="On 429/503 with Retry-After, pause the domain that long, then retry."
    )
    max_retry_after: Seconds = Field(
        120.0, gt=0, description="A longer Retry-After gives the request up."
    )


def _default_rate_limit() -> RateLimitParams:
    return RateLimitParams.model_validate({})


class WebScraperParams(_Params):
    url: str | None = Field(None, description="One page to fetch (the original shape).")
    extract: ScrapeExtract | None = Field(
        None, description="The original single-value extraction; items are {url, status, value}."
    )
    start_urls: list[str] = Field(default_factory=list, description="Where the crawl starts.")
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="Domains the crawl may enter (and their subdomains); default the start "
        "URLs' hosts; ['*'] for any.",
    )
    follow: bool | list[str] = Field(
        False,
        description="true: follow every link; or rules: css:/xpath: regions to take links "
        "from, re: URL patterns to keep, !re: patterns to drop.",
    )
    max_depth: int | None = Field(
        None, ge=0, description="Link hops from a start URL (0: the start URLs only)."
    )
    max_pages: int | None = Field(
        None, ge=1, description=f"Pages to parse at most; {DEFAULT_CRAWL_PAGE_CAP} when following."
    )
    fields: dict[
        str, Annotated[FieldParams, BeforeValidator(_field_shorthand, str | FieldParams)]
    ] = Field(
        default_factory=dict,
        description="Structured items: field name -> a selector, or {selector, type, ...}.",
    )
    item_selector: str | None = Field(
        None, description="One item per node this selector matches, fields relative to it."
    )
    respect_robots: bool = Field(True, description="Obey robots.txt (ROBOTSTXT_OBEY).")
    respect_robots_txt: bool | None = Field(
        None, description="The original system's spelling of respect_robots."
    )
    rate_limit: RateLimitParams = Field(default_factory=_default_rate_limit)
    proxies: Annotated[list[str], BeforeValidator(_proxy_list, list[str] | str)] = Field(
        default_factory=list,
        description="Proxy URLs, rotated per request; or one string holding the list (a secret).",
    )
    user_agent: str | None = Field(None, description="USER_AGENT; default the resource's.")
    cache_ttl: Seconds | None = Field(
        None, ge=0, description="Keep responses in Scrapy's HTTP cache this long (0: off)."
    )
    timeout: Seconds = Field(30.0, gt=0, description="Per request (DOWNLOAD_TIMEOUT).")
    retries: int = Field(2, ge=0, description="Retries of a failed request (RETRY_TIMES).")

    _item_selector = field_validator("item_selector")(_check_selector)

    @field_validator("url", "start_urls")
    @classmethod
    def _http_urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        for url in [value] if isinstance(value, str) else value or []:
            if not is_template(url) and urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"a start URL must be http:// or https://, not {url!r}")
        return value

    @field_validator("follow")
    @classmethod
    def _follow(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            for rule in value:
                negated = rule.startswith("!")
                _check_selector(rule[1:] if negated else rule)
                if negated and not rule.startswith("!re:"):
                    raise ValueError(f"only URL patterns (!re:...) can be negated: {rule!r}")
        return value

    @field_validator("proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            if not is_template(proxy) and urlsplit(proxy).scheme not in ("http", "https"):
                raise ValueError(f"a proxy must be an http:// or https:// URL, not {proxy!r}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> WebScraperParams:
        if self.respect_robots_txt is not None:
            if "respect_robots" in self.model_fields_set:
                raise ValueError("give respect_robots or respect_robots_txt, not both")
            self.respect_robots = self.respect_robots_txt
        if not self.url and not self.start_urls:
            raise ValueError("give `url` or `start_urls`")
        if self.extract is not None and self.fields:
            raise ValueError("use either `extract` or `fields`, not both")
        return self

    def urls(self) -> list[str]:
        return ([self.url] if self.url else []) + [u for u in self.start_urls if u != self.url]

    def single_page(self) -> bool:
        """The original shape: one `url`, nothing followed; its output carries `value`."""
        return bool(self.url) and not self.start_urls and not self.follow

    def page_bound(self) -> int:
        """The most pages the crawl may parse (what a per-page price is estimated on)."""
        if self.max_pages is not None:
            return self.max_pages
        return DEFAULT_CRAWL_PAGE_CAP if self.follow else len(self.urls())


def job_spec(
    params: WebScraperParams,
    scraper: ScraperResource,
    *,
    ssrf_allow: list[str],
    max_duration: float | None = None,
) -> dict[str, Any]:
    """The runner's job spec (without the output paths, which `run_crawl` adds)."""
    rate = params.rate_limit
    autothrottle: bool | dict[str, Any] = (
        rate.autothrottle if isinstance(rate.autothrottle, bool) else rate.autothrottle.model_dump()
    )
    extract = params.extract
    if extract is None and not params.fields and params.single_page():
        extract = ScrapeExtract()  # the original shape's default: the page's HTML
    max_pages = params.max_pages
    if params.follow and max_pages is None:
        max_pages = DEFAULT_CRAWL_PAGE_CAP
    spec: dict[str, Any] = {
        "start_urls": params.urls(),
        "allowed_domains": params.allowed_domains,
        "follow": params.follow,
        "max_depth": params.max_depth,
        "max_pages": max_pages,
        "fields": {
            name: value.model_dump(exclude_none=True) for name, value in params.fields.items()
        },
        "item_selector": params.item_selector,
        "extract": extract.model_dump(exclude_none=True) if extract else None,
        "respect_robots": params.respect_robots,
        "robots_policy": scraper.robots_policy,
        "rate_limit": {**rate.model_dump(exclude={"autothrottle"}), "autothrottle": autothrottle},
        "concurrency": scraper.concurrency,
        "proxies": params.proxies or scraper.proxy_list(),
        "proxy_max_failures": scraper.proxy_max_failures,
        "proxy_cooldown": scraper.proxy_cooldown_s,
        "user_agent": params.user_agent or scraper.user_agent,
        "cache_ttl": params.cache_ttl or None,
        "cache_dir": str(scraper.cache_directory()) if params.cache_ttl else None,
        "timeout": params.timeout,
        "retries": params.retries,
        "ssrf_allow": list(ssrf_allow),
        "log_level": scraper.log_level,
        "max_duration": max_duration,
    }
    return {key: value for key, value in spec.items() if value is not None}


def tenant_ssrf_allow(policy: Any, tenant: str) -> list[str]:
    """The tenant's SSRF allow-list from the policy data (`ssrf_allow`); [] when it has none."""
    allow = policy.tenant_settings(tenant).get(TENANT_SSRF_ALLOW, [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        raise StepError(
            f"policy data: tenant {tenant!r} has an `{TENANT_SSRF_ALLOW}` that is not a list "
            "of strings"
        )
    return allow


class _LogForwarder:
    """Every crawl log line to the compute log (stderr), warnings also to the event log."""

    def __init__(self, ctx: StepContext):
        self.ctx = ctx
        self.warnings = 0

    def __call__(self, level: str, line: str) -> None:
        clean = self.ctx.redact(line)
        sys.stderr.write(clean + "\n")
        sys.stderr.flush()
        if level in _WARNING_LEVELS and not clean.startswith((" ", "\t", "Traceback")):
            self.warnings += 1
            if self.warnings <= _EVENT_LOG_WARNINGS:
                (self.ctx.log.error if level != "WARNING" else self.ctx.log.warning)(clean)
            elif self.warnings == _EVENT_LOG_WARNINGS + 1:
                self.ctx.log.warning("more crawl warnings: see the compute log")


def _max_duration(remaining: float | None) -> float | None:
    """Scrapy closes the crawl itself a little before the step's time is up, keeping its items."""
    if remaining is None:
        return None
    return max(1.0, remaining - min(10.0, remaining * 0.2))


def _no_pages_kind(summary: Mapping[str, Any]) -> str:
    errors: Mapping[str, int] = summary.get("errors", {})
    if summary.get("ssrf_blocked") and not errors:
        return "ssrf_blocked"
    if summary.get("robots_blocked") and not errors:
        return "robots_blocked"
    kinds = set(errors)
    if kinds and all(k.startswith("http_") for k in kinds):
        return "http_status"
    if kinds and kinds <= {"timeout"}:
        return "timeout"
    if kinds & {"dns", "connection", "connection_refused", "proxy_tunnel", "ssrf_connect"}:
        return "connection"
    return "plugin_error"


def _no_pages_message(summary: Mapping[str, Any]) -> str:
    parts = []
    for blocked in summary.get("ssrf_blocked_urls", [])[:3]:
        parts.append(f"SSRF guard refused {blocked['url']}: {blocked['reason']}")
    for url in summary.get("robots_blocked_urls", [])[:3]:
        parts.append(f"robots.txt disallows {url}")
    for sample in summary.get("error_samples", [])[:3]:
        parts.append(f"{sample['url']}: {sample['kind']} ({sample['error']})")
    if summary.get("offsite_filtered"):
        parts.append(f"{summary['offsite_filtered']} request(s) outside allowed_domains")
    return "; ".join(parts) or "nothing was fetched"


def _metadata(summary: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("pages", "items", "robots_blocked", "ssrf_blocked", "errors_total", "duration_s")
    metadata: dict[str, Any] = {f"crawl_{key}": summary[key] for key in keys}
    metadata["crawl_bytes"] = summary["bytes_downloaded"]
    return metadata


def _trace_crawl(
    urls: list[str],
    started_ns: int,
    summary: dict[str, Any] | None,
    error: BaseException | None,
    ctx: StepContext,
) -> None:
    """The crawl's client span (`crawl <host>`): its first URL without credentials or query,
    and what the crawl counted. The subprocess's own requests have no spans."""
    if not tracing.enabled():
        return
    host = (urlsplit(urls[0]).hostname or "") if urls else ""
    out = summary or {}
    attributes = {
        tracing.URL_FULL: tracing.safe_url(urls[0]) if urls else None,
        tracing.SERVER_ADDRESS: host,
        "maestro.scrape.start_urls": len(urls),
        "maestro.scrape.pages": out.get("pages"),
        "maestro.scrape.items": out.get("items"),
        "maestro.scrape.errors": out.get("errors_total"),
        "maestro.scrape.robots_blocked": out.get("robots_blocked"),
        "maestro.scrape.ssrf_blocked": out.get("ssrf_blocked"),
    }
    tracing.past_span(f"crawl {host}", started_ns, attributes, error=error, redact=ctx.redact)


def crawl(params: WebScraperParams, ctx: StepContext) -> dict[str, Any]:
    scraper: ScraperResource = ctx.resource(RESOURCE_KEY, "web_scraper")
    allow = tenant_ssrf_allow(ctx.resource(POLICY_KEY, "web_scraper"), ctx.run.tenant)
    workdir = Path(tempfile.mkdtemp(prefix="maestro-scrape-", dir=scraper.work_dir))
    ctx.on_finish(lambda: shutil.rmtree(workdir, ignore_errors=True))
    remaining = ctx.remaining()
    spec = job_spec(params, scraper, ssrf_allow=allow, max_duration=_max_duration(remaining))
    urls = spec["start_urls"]
    ctx.log.info(
        ctx.redact(f"web_scraper: crawling {len(urls)} start URL(s) from {urls[0]} in a subprocess")
    )
    called = time.time_ns()
    try:
        result: CrawlResult = run_crawl(
            spec,
            workdir=workdir,
            on_log=_LogForwarder(ctx),
            timeout=remaining,
            cancelled=ctx.cancelled,
            python=scraper.interpreter(),
        )
    except CrawlError as exc:
        _trace_crawl(urls, called, None, exc, ctx)
        if exc.kind in ("timeout", "cancelled"):
            raise StepTimeoutError(f"web_scraper: {exc.headline}") from None
        raise StepError(
            ctx.redact(f"web_scraper: {exc}"), kind="crawl_failed", exit_code=exc.exit_code
        ) from None
    summary = result.summary
    _trace_crawl(urls, called, summary, None, ctx)
    ctx.add_cost(scraper.price_per_page * summary["pages"])
    ctx.log.info(
        f"web_scraper: {summary['pages']} page(s), {summary['items']} item(s), "
        f"{summary['robots_blocked']} blocked by robots.txt, {summary['ssrf_blocked']} by the "
        f"SSRF guard, {summary['errors_total']} error(s) in {summary['duration_s']:.2f}s"
    )
    if summary["pages"] == 0:
        raise StepError(
            ctx.redact(f"web_scraper fetched no page: {_no_pages_message(summary)}"),
            kind=_no_pages_kind(summary),
            **_metadata(summary),
        )
    ctx.add_file(ITEMS_OUTPUT, result.items_path, ITEMS_MEDIA_TYPE)
    ctx.output_metadata.update(_metadata(summary))
    output: dict[str, Any] = {"pages": summary["pages"], "item_count": summary["items"]}
    if params.single_page():
        first = next(iter_items(result.items_path), {})
        output["value"] = first.get("value")
    output["summary"] = summary
    return output


class WebScraper(Plugin[WebScraperParams]):
    name = "web_scraper"
    aliases = ("scrape", "scrapy.crawl")
    description = "Crawl with Scrapy (robots.txt, per-domain rate limits, proxies, SSRF guard)."
    params_model = WebScraperParams
    resource_keys = frozenset({RESOURCE_KEY, POLICY_KEY})
    file_outputs = (ITEMS_OUTPUT,)

    def run(self, params: WebScraperParams, ctx: StepContext) -> dict[str, Any]:
        return crawl(params, ctx)

    def estimate_cost(self, params: WebScraperParams, ctx: StepContext) -> float:
        """0 unless the resource prices pages: then the price of every page it may parse."""
        scraper = ctx.resources.get(RESOURCE_KEY)
        if not isinstance(scraper, ScraperResource) or not scraper.price_per_page:
            return 0.0
        return scraper.price_per_page * params.page_bound()


WEB_SCRAPER = WebScraper()
