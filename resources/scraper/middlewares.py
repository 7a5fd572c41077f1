"""Downloader middlewares: SSRF guard, Retry-After, proxy rotation, per-domain counts."""

from __future__ import annotations

import email.utils
import itertools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.asyncio import call_later, run_in_thread, sleep

from resources.scraper.ssrf import AddressPolicy

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


def shown_url(url: str) -> str:
    """A proxy URL fit for logs and the summary: credentials replaced by `***`."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def _stats(crawler: Crawler) -> StatsCollector:
    assert crawler.stats is not None
    return crawler.stats


# --------------------------------------------------------------------------- SSRF guard


class SsrfBlocked(IgnoreRequest):
    def __init__(self, url: str, reason: str):
        super().__init__(f"SSRF guard refused {url}: {reason}")
        self.url = url
        self.reason = reason


class SsrfGuardMiddleware:
    """Refuses requests to non-public addresses unless allow-listed (see ``ssrf.py``).

    Priority 40: before OffsiteMiddleware (50) and RobotsTxtMiddleware (100), so a refused
    host is not even asked for robots.txt. Runs for start URLs, followed links, robots.txt
    requests and every redirect hop (RedirectMiddleware returns a new Request, which the
    engine schedules and sends through all downloader middlewares again).
    ``getaddrinfo`` blocks, so it runs in a thread; verdicts are cached per (host, port).
    """

    def __init__(self, crawler: Crawler):
        if not crawler.settings.getbool("MAESTRO_SSRF_GUARD", True):
            raise NotConfigured
        self.crawler = crawler
        self.policy = AddressPolicy(allow=crawler.settings.getlist("MAESTRO_SSRF_ALLOW"))
        self.blocked: list[dict[str, str]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SsrfGuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https"):
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                port = 0
            host = parts.hostname or ""
            known, problem = self.policy.cached(host, port)
            if not known:
                problem = await run_in_thread(self.policy.check_host, host, port)
        else:
            problem = self.policy.check_url(request.url)
        if problem is None:
            return
        _stats(self.crawler).inc_value("maestro/ssrf_blocked")
        if len(self.blocked) < 50:
            self.blocked.append({"url": request.url, "reason": problem})
        logger.warning("SSRF guard refused %s: %s", request.url, problem)
        raise SsrfBlocked(request.url, problem)


# --------------------------------------------------------------------------- Retry-After


def parse_retry_after(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryAfterMiddleware:
    """Honours ``Retry-After`` on 429/503 — Scrapy's RetryMiddleware retries those at once.

    On such a response (priority 560, so this runs before RetryMiddleware's process_response):
    the request's download slot (= its domain) is paused until now + Retry-After, and a retry
    of the request is returned (counted against RETRY_TIMES via ``get_retry_request``).
    The whole domain backs off, not only the throttled URL: requests queued in the slot wait
    (``_pause_slot``) and ``process_request`` holds new requests for a paused slot.
    A Retry-After above MAESTRO_MAX_RETRY_AFTER gives up (the response goes on as an HTTP
    error, with ``dont_retry`` so it is not retried at once).
    Without a Retry-After header RetryMiddleware handles the status as usual.
    """

    STATUSES = (429, 503)

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.max_wait = crawler.settings.getfloat("MAESTRO_MAX_RETRY_AFTER", 120.0)
        self.max_retries = crawler.settings.getint("RETRY_TIMES")
        self.closed_until: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    def _slot_key(self, request: Request) -> str:
        assert self.crawler.engine is not None
        return self.crawler.engine.downloader.get_slot_key(request)

    def _pause_slot(self, key: str, wait: float) -> None:
        """Stop the domain's download slot from dispatching anything for ``wait`` seconds.

        Requests already queued in the slot (past every process_request) are held too: the
        slot's ``latercall`` is what Scrapy itself uses to wait out DOWNLOAD_DELAY, and while
        it is set ``Downloader._process_queue`` dispatches nothing. (AutoThrottle rewrites
        ``slot.delay`` on every response, so raising the delay instead would not hold.)
        """
        now = time.monotonic()
        end = now + wait
        if end <= self.closed_until.get(key, 0.0):
            return
        self.closed_until[key] = end
        assert self.crawler.engine is not None
        downloader = self.crawler.engine.downloader
        slot = downloader.slots.get(key)
        if slot is None:
            return  # requests reaching process_request are still held
        if slot.latercall is not None:
            slot.latercall.cancel()
        slot.latercall = call_later(wait, downloader._latercall, slot)  # Scrapy 2.19 internals

    async def process_request(self, request: Request) -> None:
        if not self.closed_until:
            return
        key = self._slot_key(request)
        wait = self.closed_until.get(key, 0.0) - time.monotonic()
        if wait > 0:
            logger.debug("Holding %s %.2fs (Retry-After on %s)", request.url, wait, key)
            await sleep(wait)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in self.STATUSES or request.meta.get("dont_retry"):
            return response
        wait = parse_retry_after(response.headers.get(b"Retry-After"))
        if wait is None:
            return response
        stats = _stats(self.crawler)
        if wait > self.max_wait:
            logger.warning(
                "Retry-After %.0fs on %s exceeds the %.0fs limit: giving up",
                wait,
                request.url,
                self.max_wait,
            )
            stats.inc_value("maestro/retry_after/too_long")
            request.meta["dont_retry"] = True
            return response
        key = self._slot_key(request)
        self._pause_slot(key, wait)
        spider = self.crawler.spider
        assert spider is not None
        retry = get_retry_request(
            request,
            spider=spider,
            reason=f"{response.status} Retry-After {wait:g}s",
            max_retry_times=request.meta.get("max_retry_times", self.max_retries),
        )
        if retry is None:
            request.meta["dont_retry"] = True  # exhausted: RetryMiddleware must not retry again
            return response
        stats.inc_value("maestro/retry_after/count")
        stats.inc_value("maestro/retry_after/wait_ms", round(wait * 1000))
        logger.info(
            "%s %s: domain %s paused %.1fs (Retry-After)", response.status, request.url, key, wait
        )
        return retry


# --------------------------------------------------------------------------- proxy rotation


@dataclass
class ProxyState:
    url: str
    requests: int = 0
    failures: int = 0  # total
    consecutive: int = 0
    dead_until: float = 0.0  # monotonic; 0 = alive
    removals: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "removals": self.removals,
            "dead": self.dead_until > time.monotonic(),
        }


# Exceptions that say "the proxy could not be reached / did not answer", not "the site failed".
_PROXY_FAILURES = (
    "ConnectionRefusedError",
    "DownloadConnectionRefusedError",
    "ConnectError",
    "TCPTimedOutError",
    "CannotResolveHostError",
    "DNSLookupError",
    "TunnelError",
    "ConnectionLost",
    "ResponseNeverReceived",
    "DownloadFailedError",
    "DownloadTimeoutError",
    "TimeoutError",
)


class ProxyRotationMiddleware:
    """Round-robin over MAESTRO_PROXIES, one proxy per request (``request.meta['proxy']``).

    A proxy is taken out after MAESTRO_PROXY_MAX_FAILURES consecutive connection-level
    failures and put back after MAESTRO_PROXY_COOLDOWN seconds (then one failure takes it
    out again). Proxies are assigned when a request enters the downloader, so up to
    CONCURRENT_REQUESTS requests may already be on a proxy when it is taken out; their failures
    are counted but do not extend the cool-down. A request that failed on a proxy is re-sent
    at once through the next live proxy (up to once per proxy) without spending its
    RETRY_TIMES budget. When every proxy
    is out, the one whose cool-down ends first is used: requests never fall back to a direct
    connection. A 407 from the proxy counts as a failure. Priority 740: just before
    HttpProxyMiddleware (750), which turns ``meta['proxy']`` credentials into headers.
    """

    META = "maestro_proxy"

    def __init__(self, crawler: Crawler):
        urls = crawler.settings.getlist("MAESTRO_PROXIES")
        if not urls:
            raise NotConfigured
        self.crawler = crawler
        self.proxies = [ProxyState(u) for u in urls]
        self.by_url = {p.url: p for p in self.proxies}
        self.max_failures = crawler.settings.getint("MAESTRO_PROXY_MAX_FAILURES", 3)
        self.cooldown = crawler.settings.getfloat("MAESTRO_PROXY_COOLDOWN", 60.0)
        self._cycle = itertools.cycle(range(len(self.proxies)))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyRotationMiddleware:
        return cls(crawler)

    def _next(self) -> ProxyState:
        now = time.monotonic()
        for _ in range(len(self.proxies)):
            p = self.proxies[next(self._cycle)]
            if p.dead_until <= now:
                return p
        return min(self.proxies, key=lambda p: p.dead_until)

    def process_request(self, request: Request) -> None:
        p = self._next()
        p.requests += 1
        request.meta["proxy"] = p.url
        request.meta[self.META] = p.url

    def _failed(self, p: ProxyState, why: str) -> None:
        now = time.monotonic()
        p.failures += 1
        if p.dead_until > now:
            return  # a request that was already in flight when the proxy was taken out
        p.consecutive += 1
        # back from a cool-down (dead_until still set, in the past): one failure is enough
        if p.consecutive >= self.max_failures or p.dead_until:
            p.dead_until = now + self.cooldown
            p.consecutive = 0
            p.removals += 1
            _stats(self.crawler).inc_value("maestro/proxy/removed")
            logger.warning(
                "Proxy %s taken out for %.0fs after %s", shown_url(p.url), self.cooldown, why
            )

    def process_response(self, request: Request, response: Response) -> Request | Response:
        p = self.by_url.get(request.meta.get(self.META, ""))
        if p is None:
            return response
        if response.status == 407:
            self._failed(p, "407 Proxy Authentication Required")
        else:
            p.consecutive = 0
            p.dead_until = 0.0
        return response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        p = self.by_url.get(request.meta.get(self.META, ""))
        if p is None or type(exception).__name__ not in _PROXY_FAILURES:
            return None
        self._failed(p, type(exception).__name__)
        hops = request.meta.get("maestro_proxy_hops", 0)
        if hops + 1 >= len(self.proxies):
            return None  # every proxy tried once: let RetryMiddleware decide
        _stats(self.crawler).inc_value("maestro/proxy/rerouted")
        retry = request.replace(dont_filter=True)
        retry.meta["maestro_proxy_hops"] = hops + 1
        return retry

    def report(self) -> dict[str, dict[str, Any]]:
        return {shown_url(p.url): p.as_dict() for p in self.proxies}


# --------------------------------------------------------------------------- robots.txt policy

ROBOTS_DISALLOW_ALL = b"User-agent: *\nDisallow: /\n"


class RobotsTxtPolicyMiddleware:
    """Makes a failed robots.txt fetch mean what RFC 9309 says, not what Scrapy does.

    Scrapy 2.19's RobotsTxtMiddleware parses the body of *any* final robots.txt response
    (a 404 or 500 page whose body holds rules is obeyed; an HTML error page means allow-all)
    and allows everything when the fetch raises (connection refused, reset, timeout, DNS).
    RFC 9309 §2.3.1.3-4: 4xx = "unavailable" -> allow all; 5xx or network error =
    "unreachable" -> disallow all. 429 is treated as unreachable (as Google does).

    Priority 540: engine side of RetryMiddleware (550), so it sees the final response or
    exception after retries. Only touches the robots.txt requests RobotsTxtMiddleware makes.
    """

    def __init__(self, crawler: Crawler):
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        self.crawler = crawler
        self.fallbacks: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtPolicyMiddleware:
        return cls(crawler)

    @staticmethod
    def _is_robots(request: Request) -> bool:
        return (
            bool(request.meta.get("dont_obey_robotstxt"))
            and urlsplit(request.url).path == "/robots.txt"
        )

    def _note(self, request: Request, verdict: str) -> None:
        host = urlsplit(request.url).netloc
        self.fallbacks[host] = verdict
        _stats(self.crawler).inc_value(f"maestro/robots_fallback/{verdict.split(' ', 1)[0]}")
        logger.warning("robots.txt for %s: %s", host, verdict)

    def process_response(self, request: Request, response: Response) -> Response:
        if not self._is_robots(request) or 200 <= response.status < 300:
            return response
        if response.status == 429 or response.status >= 500:
            self._note(request, f"disallow_all (HTTP {response.status})")
            return response.replace(status=200, body=ROBOTS_DISALLOW_ALL)
        if 400 <= response.status < 500:
            self._note(request, f"allow_all (HTTP {response.status})")
            return response.replace(status=200, body=b"")
        return response

    def process_exception(self, request: Request, exception: Exception) -> Response | None:
        if not self._is_robots(request) or isinstance(exception, IgnoreRequest):
            return None  # an SSRF/offsite refusal of robots.txt is not a network error
        from scrapy.http import TextResponse

        self._note(request, f"disallow_all ({type(exception).__name__})")
        return TextResponse(request.url, status=200, body=ROBOTS_DISALLOW_ALL, request=request)


# --------------------------------------------------------------------------- domain counts


class DomainCountMiddleware:
    """Counts requests per host that actually go to the network (after HttpCache, 900)."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.counts: dict[str, int] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DomainCountMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        host = urlsplit(request.url).hostname or ""
        self.counts[host] = self.counts.get(host, 0) + 1
