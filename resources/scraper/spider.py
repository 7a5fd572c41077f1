"""The one spider every crawl uses, configured by the job spec."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Request, Response, TextResponse, XmlResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import deferred_from_coro

from resources.scraper.extraction import FieldSpec, extract
from resources.scraper.spec import JobSpec

if TYPE_CHECKING:
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)


def error_kind(exc: BaseException) -> str:
    """Map a download failure to a short, stable kind for the summary."""
    if isinstance(exc, HttpError):
        return f"http_{exc.response.status}"
    name = type(exc).__name__
    if name in ("DownloadTimeoutError", "TimeoutError", "TCPTimedOutError", "UserTimeoutError"):
        return "timeout"
    if name in ("CannotResolveHostError", "DNSLookupError", "DNSLookupTimeoutError"):
        return "dns"
    if name in ("DownloadConnectionRefusedError", "ConnectionRefusedError"):
        return "connection_refused"
    if name in (
        "ConnectError",
        "ConnectionLost",
        "ConnectionDone",
        "ResponseNeverReceived",
        "DownloadFailedError",
    ):
        return "connection"
    if name in ("ResponseDataLossError", "_DataLoss"):
        return "data_loss"
    if name == "TunnelError":
        return "proxy_tunnel"
    if name == "UnsupportedURLSchemeError":
        return "unsupported_scheme"
    return f"other:{name}"


class MaestroSpider(scrapy.Spider):
    name = "maestro"

    def __init__(self, spec: JobSpec, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = spec
        self.allowed_domains = [] if "*" in spec.allowed_domains else list(spec.allowed_domains)
        self.pages = 0
        self.errors: Counter[str] = Counter()
        self.error_samples: list[dict[str, str]] = []
        self.robots_blocked: list[str] = []
        self._link_extractor: Any = None
        if spec.follow is not None:
            from scrapy.linkextractors import LinkExtractor

            f = spec.follow
            self._link_extractor = LinkExtractor(
                allow=f.allow,
                deny=f.deny,
                restrict_css=f.regions_css,
                restrict_xpaths=f.regions_xpath,
                # no allow_domains here: LinkExtractor compares it with the netloc *including
                # the port*; OffsiteMiddleware (hostname only) filters instead, and counts.
                unique=True,
            )

    async def start(self) -> AsyncIterator[Request]:
        for url in self.spec.start_urls:
            yield self._request(url)

    def _request(self, url: str) -> Request:
        return Request(url, callback=self.parse, errback=self.on_error)

    # ------------------------------------------------------------------ pages

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        limit = self.spec.max_pages
        if limit and self.pages >= limit:
            return  # a response that was in flight when the limit was reached
        self.pages += 1
        yield from self._items(response)
        if limit and self.pages >= limit:
            # Not CLOSESPIDER_PAGECOUNT: it counts robots.txt responses as pages. Not `raise
            # CloseSpider` either: that drops the items this generator already yielded.
            # close_spider_async waits for in-flight requests and items, like the extension.
            assert self.crawler.engine is not None
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="max_pages"))
            return
        if self._link_extractor is not None and isinstance(response, (HtmlResponse, XmlResponse)):
            for link in self._link_extractor.extract_links(response):
                yield self._request(link.url)

    def _items(self, response: Response) -> Iterator[dict[str, Any]]:
        spec = self.spec
        is_text = isinstance(response, TextResponse)
        text = response.text if is_text else ""
        json_doc: Any = None
        wants_json = (spec.extract is not None and spec.extract.type == "json") or any(
            f.type == "json" for f in spec.fields.values()
        )
        if wants_json:
            try:
                json_doc = json.loads(text or response.body)
            except ValueError:
                self.errors["json_decode"] += 1
                return
        sel = (
            response.selector
            if isinstance(response, TextResponse) and not (wants_json and spec.extract)
            else None
        )
        base = {"url": response.url, "status": response.status}

        def get(name: str, f: FieldSpec, scope: Any) -> Any:
            try:
                return extract(f, sel=scope, text=text, url=response.url, json_doc=json_doc)
            except Exception as exc:  # one bad field must not lose the page
                self.errors[f"extract:{name}"] += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(
                        {"url": response.url, "kind": f"extract:{name}", "error": repr(exc)[:300]}
                    )
                return None

        if spec.extract is not None:
            yield {**base, "value": get("value", spec.extract, sel)}
            return
        if not spec.fields:
            yield base
            return
        scopes = [sel]
        if spec.item_selector is not None and sel is not None:
            ks = spec.item_selector
            scopes = list(sel.css(ks.expr) if ks.kind == "css" else sel.xpath(ks.expr))
        for scope in scopes:
            yield {
                **base,
                **{name: get(name, f, scope) for name, f in spec.fields.items()},
            }

    # ------------------------------------------------------------------ failures

    def on_error(self, failure: Failure) -> None:
        exc = failure.value
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if exc is None:
            exc = RuntimeError("unknown failure")
        # HttpError subclasses IgnoreRequest: it is an error, the other refusals are not
        if isinstance(exc, IgnoreRequest) and not isinstance(exc, HttpError):
            # robots.txt refusals are counted by RobotsTxtMiddleware (robotstxt/forbidden),
            # SSRF refusals by our guard; neither is an error.
            if str(exc) == "Forbidden by robots.txt" and len(self.robots_blocked) < 50:
                self.robots_blocked.append(url)
            return
        kind = error_kind(exc)
        message = str(exc)
        if kind == "dns":
            from resources.scraper.resolver import REFUSED

            host = (urlsplit(url).hostname or "").lower()
            if host in REFUSED:  # refused at connect time by GuardedResolver
                kind, message = "ssrf_connect", f"SSRF guard (connect) refused {REFUSED[host]}"
        self.errors[kind] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append({"url": url, "kind": kind, "error": message[:300]})
        logger.info("Failed %s: %s (%s)", url, kind, exc)
