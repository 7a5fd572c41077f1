"""`web_scraper`'s `with`: both shapes, their mapping onto the job spec and Scrapy's settings,
the errors a workflow gets at compile time, and what the policy sees."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from resources.plugins import RunInfo, StepContext
from resources.plugins.web_scraper import (
    DEFAULT_CRAWL_PAGE_CAP,
    WEB_SCRAPER,
    WebScraperParams,
    job_spec,
)
from resources.policy.engine import PolicyEngineResource
from resources.policy.inputs import hosts_in
from resources.scraper.settings import build_settings
from resources.scraper.spec import JobSpec
from resources.scraper_resource import ScraperResource
from tests.support.compiling import plan_text
from tests.support.paths import PROJECT_ROOT
from yaml_compiler.diagnostics import WorkflowCompileError


def spec_of(raw: dict[str, Any], scraper: ScraperResource | None = None, **kw: Any) -> JobSpec:
    params = WebScraperParams.model_validate(raw)
    data = job_spec(params, scraper or ScraperResource(), ssrf_allow=kw.pop("allow", []), **kw)
    return JobSpec.from_dict({**data, "items_path": "items.jsonl"})


def test_the_original_shape_still_validates() -> None:
    # what `maestro` templates emit (examples/original/cli-*-scrap*.yaml), regex included
    spec = spec_of(
        {
            "url": "https://example.com",
            "extract": {"type": "text", "selector": "h1", "regex": r"(\w+)", "multiple": False},
            "follow": False,
            "max_pages": 1,
            "respect_robots_txt": True,
        }
    )
    assert spec.start_urls == ("https://example.com",) and spec.extract is not None
    assert (spec.extract.type, spec.extract.regex, spec.extract.multiple) == (
        "text",
        r"(\w+)",
        False,
    )
    assert spec.allowed_domains == ("example.com",) and spec.respect_robots
    default = spec_of({"url": "https://example.com"})
    assert default.extract is not None and (default.extract.type, default.extract.multiple) == (
        "html",
        True,
    )  # the page's HTML, as the reserved model's default extract said


def test_the_crawl_shape_maps_onto_scrapy_settings() -> None:
    scraper = ScraperResource(user_agent="Deploy/1", concurrency=4)
    spec = spec_of(
        {
            "start_urls": ["https://a.example/"],
            "allowed_domains": ["a.example"],
            "follow": ["css:nav.pager", "re:/products/", "!re:\\?sort="],
            "max_depth": 3,
            "fields": {"title": "css:h1", "price": {"selector": "xpath://span/text()"}},
            "rate_limit": {
                "delay": "1500ms",
                "per_domain_concurrency": 1,
                "autothrottle": {"max_delay": "10s"},
                "max_retry_after": "1m",
            },
            "proxies": "http://p1:3128, http://p2:3128\nhttp://p3:3128",
            "cache_ttl": "10m",
            "timeout": "10s",
            "retries": 5,
            "respect_robots": False,
        },
        scraper,
        allow=["10.0.0.0/8"],
    )
    settings = build_settings(spec)
    assert spec.max_pages == DEFAULT_CRAWL_PAGE_CAP  # following links: capped by default
    assert spec.follow is not None and spec.follow.regions_css == ("nav.pager",)
    assert (spec.follow.allow, spec.follow.deny) == (("/products/",), ("\\?sort=",))
    expected = {
        "ROBOTSTXT_OBEY": False,
        "DOWNLOAD_DELAY": 1.5,
        "DOWNLOAD_DELAY_JITTER": 0.0,
        "CONCURRENT_REQUESTS": 4,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_MAX_DELAY": 10.0,
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_EXPIRATION_SECS": 600,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 5,
        "DOWNLOAD_TIMEOUT": 10.0,
        "DEPTH_LIMIT": 3,
        "USER_AGENT": "Deploy/1",
        "MAESTRO_PROXIES": ["http://p1:3128", "http://p2:3128", "http://p3:3128"],
        "MAESTRO_SSRF_ALLOW": ["10.0.0.0/8"],
        "MAESTRO_MAX_RETRY_AFTER": 60.0,
    }
    assert {key: settings[key] for key in expected} == expected
    assert Path(settings["HTTPCACHE_DIR"]) == scraper.cache_directory()


def test_the_resource_fills_what_a_step_leaves_out() -> None:
    scraper = ScraperResource(proxies="http://a:1 http://b:2", robots_policy="scrapy")
    spec = spec_of({"start_urls": ["https://a.example/"]}, scraper)
    assert spec.proxies == ("http://a:1", "http://b:2") and spec.robots_policy == "scrapy"
    assert spec.user_agent == "Maestro-Scraper/0.1" and spec.max_pages is None
    assert spec_of({"url": "https://a.example/", "proxies": ["http://c:3"]}, scraper).proxies == (
        "http://c:3",
    )


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({}, "give `url` or `start_urls`"),
        ({"url": "ftp://a/"}, "must be http:// or https://"),
        ({"url": "https://a/", "fields": {"t": "css:h1["}}, "invalid css selector"),
        ({"url": "https://a/", "follow": ["xpath://a["]}, "invalid xpath selector"),
        ({"url": "https://a/", "follow": ["!css:nav"]}, "only URL patterns"),
        ({"url": "https://a/", "proxies": ["socks5://x:1"]}, "http:// or https:// URL"),
        ({"url": "https://a/", "extract": {"type": "text", "selector": "re:("}}, "invalid re"),
        ({"url": "https://a/", "extract": {"type": "text"}, "fields": {"t": "h1"}}, "either"),
        ({"url": "https://a/", "rate_limit": {"delay": "soon"}}, "invalid duration"),
        ({"url": "https://a/", "ssrf_allow": ["169.254.169.254"]}, "Extra inputs"),
    ],
)
def test_rejected(bad: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says.replace("(", r"\(")):
        WebScraperParams.model_validate(bad)


def test_bad_selectors_are_positioned_compile_errors() -> None:
    text = textwrap.dedent(
        """
        name: bad-crawl
        steps:
          - run: scrapy.crawl
            with:
              start_urls: ["https://a.example/"]
              fields:
                title: "css:h1["
                sku: "{{ params.sku }}"
        params:
          sku: {type: string, default: "re:x"}
        """
    ).lstrip()
    with pytest.raises(WorkflowCompileError) as caught:
        plan_text(text, "crawl.yaml")
    [problem] = caught.value.diagnostics
    assert str(problem).startswith("crawl.yaml:7:9: steps[0].with.fields.title: ")
    assert "invalid css selector 'h1['" in str(problem)


def test_the_policy_sees_the_start_urls_and_the_domains_followed() -> None:
    params = WebScraperParams.model_validate(
        {
            "url": "https://a.example/x",
            "start_urls": ["http://127.0.0.1:8/"],
            "allowed_domains": ["*"],
        }
    )
    fields = {k: getattr(params, k) for k in ("url", "start_urls", "allowed_domains")}
    assert [(h["host"], h["address"]) for h in hosts_in(fields)] == [
        ("a.example", "public"),
        ("127.0.0.1", "loopback"),
        ("*", "public"),
    ]


def test_cost_is_zero_unless_the_resource_prices_pages() -> None:
    ctx = StepContext("crawl", RunInfo("r", "w", "t", "dev", ""), log=None)  # type: ignore[arg-type]
    following = WebScraperParams.model_validate({"url": "https://a/", "follow": True})
    assert WEB_SCRAPER.estimate_cost(following, ctx) == 0.0  # no resource at compile time
    ctx.resources = {"scraper": ScraperResource()}
    assert WEB_SCRAPER.estimate_cost(following, ctx) == 0.0
    ctx.resources = {"scraper": ScraperResource(price_per_page=0.001)}
    assert WEB_SCRAPER.estimate_cost(following, ctx) == pytest.approx(DEFAULT_CRAWL_PAGE_CAP / 1000)
    two = WebScraperParams.model_validate({"start_urls": ["https://a/1", "https://a/2"]})
    assert WEB_SCRAPER.estimate_cost(two, ctx) == pytest.approx(0.002)


def test_the_allow_list_is_the_tenants_from_the_policy_data(tmp_path: Path) -> None:
    from resources.plugins.web_scraper import tenant_ssrf_allow
    from tests.support.policy_data import policy_with_tenant

    policy = policy_with_tenant(tmp_path, "lab", {"ssrf_allow": ["10.1.0.0/16"]})
    assert tenant_ssrf_allow(policy, "lab") == ["10.1.0.0/16"]
    assert tenant_ssrf_allow(PolicyEngineResource(), "acme") == []  # none: public hosts only
    assert tenant_ssrf_allow(PolicyEngineResource(), "default") == ["127.0.0.1", "::1", "localhost"]


def test_compiling_a_crawl_imports_no_scrapy() -> None:
    probe = textwrap.dedent(
        """
        import sys
        from tests.support.compiling import compile_text
        compile_text('''
        name: lean
        steps:
          - run: web_scraper
            with: {start_urls: ["https://a.example/"], fields: {t: "css:h1"}, follow: ["re:/x/"]}
        ''')
        print(sorted(m for m in ("scrapy", "twisted") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
