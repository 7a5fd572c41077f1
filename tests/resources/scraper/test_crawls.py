"""The crawl engine end to end: real Scrapy crawls in a subprocess (`run_crawl`) against the
loopback site, checked on the site's own request log."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from resources.scraper.launcher import CrawlError, run_crawl
from tests.resources.scraper.conftest import Crawl, LogSink
from tests.support.forward_proxy import ForwardProxy, closed_port
from tests.support.scrape_site import ScrapeSite


def test_crawl_fields_robots_ssrf_errors(site: ScrapeSite, crawl: Crawl) -> None:
    site.log.clear()
    sink = LogSink()
    r = crawl(
        {
            "start_urls": [site.url("/")],
            "allowed_domains": ["*"],  # so the redirect targets reach the SSRF guard (not Offsite)
            "follow": ["css:nav"],
            "max_depth": 3,
            "fields": {
                "title": "css:h1",
                "prices": {"selector": "css:.price::text", "multiple": True},
            },
        },
        sink=sink,
    )
    s = r.summary
    paths = site.log.paths()
    # robots.txt obeyed: disallowed pages counted, never requested
    assert not any(p.startswith("/private/") for p in paths)
    assert s["robots_blocked"] == 2
    assert sorted(
        u.rsplit("/", 2)[-2] + "/" + u.rsplit("/", 1)[-1] for u in s["robots_blocked_urls"]
    ) == [
        "private/other",
        "private/secret",
    ]
    # a 302 to the metadata address and one to a non-allow-listed loopback address: refused
    assert s["ssrf_blocked"] == 2
    reasons = " ".join(b["reason"] for b in s["ssrf_blocked_urls"])
    assert "cloud metadata" in reasons and "127.0.0.3" in reasons
    assert "/redirect-ssrf" in paths and "/redirect-loopback" in paths
    # errors by kind, pages, items
    assert s["errors"] == {"http_404": 1}
    items = r.items()
    by_url = {i["url"].split("/", 3)[-1]: i for i in items}
    assert by_url["page/3"]["title"] == "Page 3" and by_url["page/3"]["prices"] == [
        "$3.99",
        "$3.49",
    ]
    assert s["pages"] == len(items) == 7  # /, 5 pages, /json
    assert s["requests_by_domain"] == {"127.0.0.1": s["requests"]}
    assert s["items_bytes"] == Path(r.items_path).stat().st_size
    # the child's log lines reached the parent, with levels
    text = sink.text()
    assert "Spider opened" in text and "SSRF guard refused" in text
    assert any(level == "WARNING" for _, level, _ in sink.lines)


def test_offsite_redirect_is_filtered_before_ssrf(site: ScrapeSite, crawl: Crawl) -> None:
    r = crawl({"start_urls": [site.url("/redirect-ssrf")]})  # allowed_domains: the start host
    assert r.summary["offsite_filtered"] == 1 and r.summary["ssrf_blocked"] == 0


def test_ssrf_start_url_refused_without_any_request(site: ScrapeSite, crawl: Crawl) -> None:
    site.log.clear()
    r = crawl({"start_urls": [site.url("/page/1")], "ssrf_allow": []})
    assert r.summary["ssrf_blocked"] == 1 and r.summary["pages"] == 0
    assert site.log.paths() == []  # not even robots.txt


def test_connect_time_resolver_check(site: ScrapeSite, crawl: Crawl) -> None:
    # middleware off: only the resolver stands between "localhost" and 127.0.0.1
    url = f"http://localhost:{site.servers[0].port}/page/1"
    r = crawl(
        {
            "start_urls": [url],
            "ssrf_allow": [],
            "retries": 0,
            "respect_robots": False,
            "settings": {"MAESTRO_SSRF_GUARD": False},
        }
    )
    assert r.summary["errors"] == {"ssrf_connect": 1}, r.summary["error_samples"]
    r = crawl(
        {
            "start_urls": [url],
            "ssrf_allow": ["127.0.0.1"],
            "respect_robots": False,
            "settings": {"MAESTRO_SSRF_GUARD": False},
        }
    )
    assert r.summary["pages"] == 1  # the allow-listed address is connected to


def test_per_domain_delay(site: ScrapeSite, crawl: Crawl) -> None:
    site.log.clear()
    hosts = ("127.0.0.1", "127.0.0.2")
    urls = [site.url(f"/page/{i}", h) for h in hosts for i in range(1, 5)]
    r = crawl({"start_urls": urls, "rate_limit": {"delay": 0.5, "per_domain_concurrency": 4}})
    assert r.summary["pages"] == 8
    hits = site.log.snapshot()
    firsts = []
    for h in hosts:
        ts = [x.t for x in hits if x.host == h]
        assert len(ts) == 5  # robots.txt + 4 pages
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        assert min(gaps) >= 0.45, gaps  # the delay holds within a domain (robots.txt included)
        firsts.append(ts[0])
    # ... but not across domains: both hosts start at once
    assert abs(firsts[0] - firsts[1]) < 0.3


def test_retry_after_pauses_the_domain(site: ScrapeSite, crawl: Crawl) -> None:
    site.log.clear()
    sink = LogSink()
    r = crawl(
        {
            "start_urls": [
                site.url("/ratelimited"),
                site.url("/page/1"),
                site.url("/page/2"),
                site.url("/seq/1", "127.0.0.2"),
            ],
            "follow": ["re:/seq/"],
            "max_depth": 12,
            "rate_limit": {"delay": 0.25, "per_domain_concurrency": 1},
        },
        sink=sink,
    )
    hits = site.log.snapshot()
    t429 = next(x.t for x in hits if x.path == "/ratelimited" and x.host == "127.0.0.1")
    retry = [x.t for x in hits if x.path == "/ratelimited" and x.host == "127.0.0.1"]
    assert len(retry) == 2 and retry[1] - t429 >= 1.95, retry
    # the whole domain backed off: nothing else went to 127.0.0.1 during the pause ...
    during = [x.path for x in hits if x.host == "127.0.0.1" and t429 < x.t < t429 + 1.95]
    assert during == [], during
    # ... while the other domain kept going
    assert sum(1 for x in hits if x.host == "127.0.0.2" and t429 < x.t < t429 + 1.95) >= 4
    s = r.summary
    assert (
        s["retry_after_waits"] == 1 and s["errors"] == {} and s["responses_by_status"]["429"] == 1
    )
    # log lines streamed while the child was still running (not only at exit)
    end = sink.lines[-1][0]
    assert any(end - t > 1.5 and "Retry-After" in line for t, _, line in sink.lines)


def test_timeout_error_kind(site: ScrapeSite, crawl: Crawl) -> None:
    r = crawl({"start_urls": [site.url("/slow")], "timeout": 1, "retries": 0})
    assert r.summary["errors"] == {"timeout": 1}


def test_max_pages_and_item_selector(site: ScrapeSite, crawl: Crawl) -> None:
    r = crawl(
        {
            "start_urls": [site.url("/page/1")],
            "follow": ["re:/page/"],
            "max_pages": 3,
            "item_selector": "css:.product",
            "fields": {
                "name": "css:.name",
                "price": {"selector": ".price", "regex": r"\$([\d.]+)"},
            },
        }
    )
    assert r.summary["pages"] == 3 and r.summary["finish_reason"] == "max_pages"
    items = r.items()
    assert len(items) == 6 and {"name": "Widget 1", "price": "1.99"}.items() <= items[0].items()


def test_original_shape_extract(site: ScrapeSite, crawl: Crawl) -> None:
    r = crawl(
        {"url": site.url("/page/2"), "extract": {"type": "text", "selector": "re:sku=(SKU-\\d+)"}}
    )
    assert r.items()[0]["value"] == "SKU-0002"
    r = crawl(
        {
            "url": site.url("/json"),
            "extract": {"type": "json", "selector": "data.items.*.name", "multiple": True},
        }
    )
    assert r.items()[0]["value"] == ["a", "b"]


def test_http_cache(site: ScrapeSite, crawl: Crawl, tmp_path: Path) -> None:
    spec = {
        "start_urls": [site.url("/page/1"), site.url("/page/2")],
        "cache_ttl": 600,
        "cache_dir": str(tmp_path / "cache"),
    }
    crawl(spec)
    site.log.clear()
    r = crawl(spec)
    assert site.log.paths() == [] and r.summary["pages"] == 2  # robots.txt cached too
    assert r.summary["requests_by_domain"] == {}  # cache hits never reach the network


def test_proxy_rotation_and_dead_proxy(site: ScrapeSite, crawl: Crawl) -> None:
    p1, p2 = ForwardProxy("p1"), ForwardProxy("p2")
    dead = f"http://127.0.0.1:{closed_port()}"
    try:
        site.log.clear()
        urls = [site.url(f"/page/{i}") for i in range(1, 6)] + [
            site.url(f"/seq/{i}") for i in range(1, 6)
        ]
        # concurrency 1: proxies are assigned as requests enter the downloader; with more
        # concurrency, several requests are already on the dead proxy when it is taken out
        r = crawl(
            {
                "start_urls": urls,
                "proxies": [p1.url, dead, p2.url],
                "proxy_max_failures": 1,
                "proxy_cooldown": 60,
                "concurrency": 1,
            }
        )
        s = r.summary
        assert s["pages"] == 10 and s["errors"] == {}
        prox = s["proxies"]
        assert prox[dead]["removals"] == 1 and prox[dead]["dead"] and prox[dead]["requests"] == 1
        assert prox[p1.url]["requests"] >= 5 and prox[p2.url]["requests"] >= 5
        vias = [h.via_proxy for h in site.log.snapshot()]
        assert None not in vias and {"p1", "p2"} == set(vias)  # never a direct connection
        assert abs(vias.count("p1") - vias.count("p2")) <= 1  # round-robin
    finally:
        p1.stop()
        p2.stop()


# ----------------------------------------------------------------- failures of the crawl itself
def test_bad_spec_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CrawlError) as ei:
        run_crawl(
            {"start_urls": ["gopher://x/"]}, workdir=tmp_path, on_log=lambda _lvl, _line: None
        )
    assert ei.value.kind == "spec" and ei.value.exit_code == 2 and "http(s)" in str(ei.value)


def test_crash_is_a_clear_error(site: ScrapeSite, tmp_path: Path) -> None:
    with pytest.raises(CrawlError) as ei:
        run_crawl(
            {
                "start_urls": [site.url("/")],
                "items_path": "/nonexistent/dir/items.jsonl",
                "ssrf_allow": ["127.0.0.1"],
            },
            workdir=tmp_path,
            on_log=lambda _lvl, _line: None,
        )
    err = ei.value
    assert err.exit_code != 0 and "No such file or directory" in str(err), str(err)


def test_hard_timeout_kills_the_child(site: ScrapeSite, tmp_path: Path) -> None:
    with pytest.raises(CrawlError) as ei:
        run_crawl(
            {"start_urls": [site.url("/slow")], "ssrf_allow": ["127.0.0.1"]},
            workdir=tmp_path,
            on_log=lambda _lvl, _line: None,
            timeout=1.5,
        )
    assert ei.value.kind == "timeout"


# ----------------------------------------------------------------- robots.txt fetch failures
# robots.txt mode -> (Scrapy 2.19 native, our RFC 9309 policy): which of /private/secret,
# /page/1 get fetched. The 404 and 500 bodies hold "Disallow: /private/" and "Disallow: /".
ROBOTS_CASES = {
    "404": ({"/page/1"}, {"/private/secret", "/page/1"}),  # Scrapy parses the 404 body!
    "500": (set(), set()),  # Scrapy: retried, then the 500 body parsed; RFC: disallow all
    "drop": ({"/private/secret", "/page/1"}, set()),  # Scrapy: allow all; RFC: disallow all
}


@pytest.mark.parametrize("policy", ["scrapy", "rfc9309"])
@pytest.mark.parametrize("mode", sorted(ROBOTS_CASES))
def test_robots_fetch_failure_behaviour(mode: str, policy: str, crawl: Crawl) -> None:
    s = ScrapeSite(robots=mode)
    try:
        r = crawl(
            {
                "start_urls": [s.url("/private/secret"), s.url("/page/1")],
                "retries": 1,
                "robots_policy": policy,
            }
        )
        fetched = {p for p in s.log.paths() if p != "/robots.txt"}
        outcome = {k: r.summary[k] for k in ("robots_txt_status", "robots_txt_fallbacks")}
        expected = ROBOTS_CASES[mode][0 if policy == "scrapy" else 1]
        assert fetched == expected, outcome
        assert r.summary["robots_blocked"] == 2 - len(expected)
    finally:
        s.stop()


@pytest.mark.parametrize(
    ("depth", "pages"), [(0, ["/seq/1"]), (3, ["/seq/1", "/seq/2", "/seq/3", "/seq/4"])]
)
def test_max_depth_limits_the_hops_from_a_start_url(
    depth: int, pages: list[str], crawl: Crawl
) -> None:
    with ScrapeSite() as own:  # its own log: nothing else crawls it meanwhile
        r = crawl({"start_urls": [own.url("/seq/1")], "follow": True, "max_depth": depth})
        assert [p for p in own.log.paths() if p != "/robots.txt"] == pages  # no request beyond
    assert r.summary["pages"] == len(pages) and r.summary["finish_reason"] == "finished"
