"""Connect-time SSRF check: a DNS resolver that refuses non-public answers.

The downloader middleware resolves a host with getaddrinfo and checks every address, but
Scrapy then resolves the name *again* (its own resolver and cache) to connect. A DNS server
that answers "public" to the first lookup and "169.254.169.254" to the second (DNS
rebinding) would slip through. This resolver applies the same policy to the address Twisted
actually connects to, so both lookups are checked. Configured with TWISTED_DNS_RESOLVER;
it also checks proxy host names (a private proxy must be allow-listed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.error import DNSLookupError

from resources.scraper.ssrf import AddressPolicy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from twisted.internet.base import ReactorBase
    from twisted.internet.defer import Deferred

SSRF_DNS_MARK = "SSRF guard (connect)"
# Twisted replaces the resolver's exception with a generic "no results for hostname lookup",
# so refusals are recorded here (one crawl per process) for the spider to classify.
REFUSED: dict[str, str] = {}


class GuardedResolver(CachingThreadedResolver):
    def __init__(self, reactor: ReactorBase, cache_size: int, timeout: float, allow: list[str]):
        super().__init__(reactor, cache_size, timeout)
        self.policy = AddressPolicy(allow=allow)

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: ReactorBase) -> GuardedResolver:
        # `crawler` is the CrawlerProcess here (see CrawlerProcessBase._setup_reactor)
        s = crawler.settings
        size = s.getint("DNSCACHE_SIZE") if s.getbool("DNSCACHE_ENABLED") else 0
        return cls(reactor, size, s.getfloat("DNS_TIMEOUT"), s.getlist("MAESTRO_SSRF_ALLOW"))

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        d = super().getHostByName(name, timeout)
        d.addCallback(self._check, name)
        return d

    def _check(self, address: str, name: str) -> str:
        problem = self.policy.check_resolved(name, address)
        if problem:
            REFUSED[name.lower()] = problem
            raise DNSLookupError(f"{SSRF_DNS_MARK} refused {problem}")
        return address
