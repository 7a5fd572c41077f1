"""The crawl engine's pure parts, in process (no reactor, no subprocess): the SSRF address
policy, selectors and extraction, the job spec and its Scrapy settings, Retry-After."""

from __future__ import annotations

import email.utils
import ipaddress
import time

import pytest
from parsel import Selector as PSel

from resources.scraper.extraction import FieldSpec, Selector, SelectorError, extract
from resources.scraper.settings import build_settings
from resources.scraper.spec import JobSpec, SpecError
from resources.scraper.ssrf import AddressPolicy, address_problem


# ----------------------------------------------------------------- SSRF policy
@pytest.mark.parametrize(
    "addr",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "fe80::1",
        "224.0.0.1",
        "100.64.0.1",
        "198.18.0.1",
    ],
)
def test_refused_addresses(addr: str) -> None:
    assert address_problem(ipaddress.ip_address(addr)) is not None


@pytest.mark.parametrize("addr", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(addr: str) -> None:
    assert address_problem(ipaddress.ip_address(addr)) is None


def test_policy_checks_every_resolved_address() -> None:
    fake = {"mixed.example": ["93.184.216.34", "10.0.0.5"], "pub.example": ["93.184.216.34"]}
    pol = AddressPolicy(resolver=lambda h, p: fake[h])
    assert pol.check_url("http://pub.example/") is None
    assert "10.0.0.5" in (pol.check_url("http://mixed.example/") or "")


def test_allow_list_ip_cidr_host_suffix() -> None:
    fake = {"intranet.corp": ["10.0.0.9"], "a.lab.corp": ["10.9.9.9"], "other": ["10.0.0.7"]}
    pol = AddressPolicy(
        allow=["127.0.0.1", "10.0.0.0/29", ".lab.corp"], resolver=lambda h, p: fake[h]
    )
    assert pol.check_url("http://127.0.0.1:8080/x") is None
    assert pol.check_url("http://127.0.0.2/") is not None
    assert pol.check_url("http://other/") is None  # 10.0.0.7 in 10.0.0.0/29
    assert pol.check_url("http://intranet.corp/") is not None  # 10.0.0.9 outside
    assert pol.check_url("http://a.lab.corp/") is None  # suffix: not even resolved
    assert pol.check_url("http://[fd00:ec2::254]/latest") is not None
    assert pol.check_url("ftp://example.com/") is not None


def test_unresolvable_host_is_not_a_refusal() -> None:
    def boom(h: str, p: int) -> list[str]:
        raise OSError("no such host")

    assert AddressPolicy(resolver=boom).check_url("http://nope.invalid/") is None


# ----------------------------------------------------------------- selectors
PAGE = """<html><body><h1 class="t"> Hello <b>World</b> </h1>
<div class="p"><a href="/a">A</a><span class="price">$1.50</span></div>
<div class="p"><a href="b">B</a><span class="price">$2.75</span></div>
<p>id=42 id=43</p></body></html>"""


@pytest.mark.parametrize(
    "text,kind,expr",
    [
        ("css:h1", "css", "h1"),
        ("xpath://h1", "xpath", "//h1"),
        ("re:id=(\\d+)", "re", "id=(\\d+)"),
        ("h1.t", "css", "h1.t"),
        ("//h1", "xpath", "//h1"),
        ("./a", "xpath", "./a"),
    ],
)
def test_selector_syntax(text: str, kind: str, expr: str) -> None:
    s = Selector.parse(text)
    assert (s.kind, s.expr) == (kind, expr)


@pytest.mark.parametrize("bad", ["css:h1[", "xpath://h1[", "re:(", "css:"])
def test_bad_selectors(bad: str) -> None:
    with pytest.raises(SelectorError):
        Selector.parse(bad)


def _x(obj: object) -> object:
    return extract(FieldSpec.from_obj(obj), sel=PSel(text=PAGE), text=PAGE, url="http://h/dir/page")  # type: ignore[arg-type]


def test_extract_variants() -> None:
    assert _x("css:h1") == "Hello World"
    assert _x("css:h1::text") == "Hello"
    assert _x({"selector": "xpath://span[@class='price']/text()", "multiple": True}) == [
        "$1.50",
        "$2.75",
    ]
    assert _x({"selector": ".price", "regex": r"\$([\d.]+)", "multiple": True}) == ["1.50", "2.75"]
    assert _x({"selector": "css:a", "attribute": "href", "multiple": True}) == ["/a", "b"]
    assert _x({"selector": "css:h1 b", "type": "html"}) == "<b>World</b>"
    assert _x({"selector": "re:id=(\\d+)", "multiple": True}) == ["42", "43"]
    assert _x({"selector": "re:id=(?P<id>\\d+)"}) == {"id": "42"}
    assert _x({"type": "links", "multiple": True}) == ["http://h/a", "http://h/dir/b"]
    assert _x("css:h2") is None


def test_extract_json() -> None:
    doc = '{"data": {"items": [{"name": "a"}, {"name": "b"}]}}'
    f = FieldSpec.from_obj({"type": "json", "selector": "data.items.*.name", "multiple": True})
    assert extract(f, sel=None, text=doc, url="u") == ["a", "b"]
    f = FieldSpec.from_obj({"type": "json", "selector": "data.items.1.name"})
    assert extract(f, sel=None, text=doc, url="u") == "b"


# ----------------------------------------------------------------- spec + settings
def test_spec_original_shape_and_settings() -> None:
    spec = JobSpec.from_dict(
        {
            "url": "https://example.com/x",
            "items_path": "/tmp/i.jsonl",
            "extract": {"type": "text", "selector": "css:h1"},
            "rate_limit": {
                "delay": 1.5,
                "per_domain_concurrency": 2,
                "autothrottle": {"max_delay": 10},
            },
            "user_agent": "UA/1",
            "cache_ttl": 3600,
            "timeout": 12,
            "retries": 4,
            "max_depth": 2,
            "max_pages": 10,
            "follow": ["css:nav", "re:/docs/", "!re:\\.pdf$"],
            "respect_robots": False,
        }
    )
    assert spec.allowed_domains == ("example.com",)
    assert (
        spec.follow is not None
        and spec.follow.regions_css == ("nav",)
        and spec.follow.deny == ("\\.pdf$",)
    )
    s = build_settings(spec)
    assert s["ROBOTSTXT_OBEY"] is False and s["DOWNLOAD_DELAY"] == 1.5
    assert s["CONCURRENT_REQUESTS_PER_DOMAIN"] == 2 and s["AUTOTHROTTLE_ENABLED"] is True
    assert (
        s["AUTOTHROTTLE_MAX_DELAY"] == 10
        and s["HTTPCACHE_ENABLED"]
        and s["HTTPCACHE_EXPIRATION_SECS"] == 3600
    )
    assert s["RETRY_TIMES"] == 4 and s["DOWNLOAD_TIMEOUT"] == 12 and s["USER_AGENT"] == "UA/1"
    assert s["DEPTH_LIMIT"] == 2
    assert "scrapy.extensions.throttle.AutoThrottle" in s["EXTENSIONS_BASE"]


def test_spec_rejects() -> None:
    with pytest.raises(SpecError):
        JobSpec.from_dict({"items_path": "x"})
    with pytest.raises(SpecError):
        JobSpec.from_dict({"url": "file:///etc/passwd", "items_path": "x"})
    with pytest.raises(SpecError):
        JobSpec.from_dict({"url": "http://a/", "items_path": "x", "bogus": 1})
    with pytest.raises(SpecError):
        JobSpec.from_dict({"url": "http://a/", "items_path": "x", "fields": {"t": "css:h1["}})


def test_max_depth_zero_means_no_follow() -> None:
    spec = JobSpec.from_dict(
        {"url": "http://a/", "items_path": "x", "follow": True, "max_depth": 0}
    )
    assert spec.follow is None  # DEPTH_LIMIT=0 would mean *unlimited* in Scrapy


def test_cache_ttl_zero_is_off() -> None:
    spec = JobSpec.from_dict({"url": "http://a/", "items_path": "x", "cache_ttl": 0})
    assert build_settings(spec)["HTTPCACHE_ENABLED"] is False  # EXPIRATION_SECS=0 = never expire


def test_parse_retry_after() -> None:
    from resources.scraper.middlewares import parse_retry_after  # imports Scrapy

    assert parse_retry_after(b"2") == 2.0
    assert parse_retry_after(b"soon") is None
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (parse_retry_after(when) or 0) <= 31
