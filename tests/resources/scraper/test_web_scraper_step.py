"""`web_scraper` steps in real Dagster runs: the policy first, the tenant's SSRF allow-list, the
crawl's log in the compute log, items in the content store with their hash in the metadata."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resources.artifacts import ArtifactsIOManager
from resources.artifacts.store import pointer_key
from resources.policy.engine import PolicyEngineResource
from resources.scraper_resource import PROXIES_ENV, ScraperResource
from tests.resources.scraper.conftest import LOOPBACK
from tests.support.compiling import compile_text
from tests.support.forward_proxy import ForwardProxy
from tests.support.paths import PROJECT_ROOT
from tests.support.policy_data import policy_with_tenant
from tests.support.runs import failure
from tests.support.scrape_site import ScrapeSite

TEMPLATES = (
    PROJECT_ROOT / "maestro_cli" / "templates" / "scrape-site.yaml",
    PROJECT_ROOT / "examples" / "original" / "cli-template-scrape-site.yaml",
)


def tenant(domains: list[str] | None = None, ssrf_allow: list[str] | None = None) -> dict[str, Any]:
    """A tenant that may crawl the test site: both its addresses allow-listed, explicitly."""
    entry: dict[str, Any] = {
        "allowed_environments": ["dev"],
        "allowed_plugins": ["web_scraper", "echo"],
        "allowed_models": [],
        "allowed_secrets": ["*"],
        "allowed_domains": LOOPBACK if domains is None else domains,
        "max_concurrent_runs": 5,
    }
    if ssrf_allow is not None:
        entry["ssrf_allow"] = ssrf_allow
    return entry


def run_workflow(
    text: str,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    *,
    policy: PolicyEngineResource | None = None,
    scraper: ScraperResource | None = None,
    io_manager: Any = None,
) -> dg.ExecuteInProcessResult:
    if policy is None:  # one policy folder per test, shared by its runs
        folder = tmp_path / "crawler-policy"
        if folder.exists():
            policy = PolicyEngineResource(policy_dir=str(folder / "policies"))
        else:
            folder.mkdir()
            policy = policy_with_tenant(folder, "crawler", tenant(ssrf_allow=LOOPBACK))
    resources: dict[str, Any] = {
        "policy": policy,
        "scraper": scraper or ScraperResource(),
    }
    resources["io_manager"] = io_manager or ArtifactsIOManager(location=str(tmp_path / "store"))
    job = compile_text(textwrap.dedent(text), "crawl.yaml", resources=resources).job
    return job.execute_in_process(instance=instance, raise_on_error=False)


def output_event(result: dg.ExecuteInProcessResult, step: str) -> dict[str, Any]:
    (event,) = [
        e for e in result.all_events if e.event_type_value == "STEP_OUTPUT" and e.step_key == step
    ]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def compute_log(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    captured = [e for e in result.all_events if e.event_type_value == "LOGS_CAPTURED"]
    text = ""
    for event in captured:
        key = event.event_specific_data.file_key
        data = instance.compute_log_manager.get_log_data([result.run_id, "compute_logs", key])
        text += (data.stderr or b"").decode() + (data.stdout or b"").decode()
    return text


@pytest.fixture
def site() -> Any:
    with ScrapeSite() as served:
        yield served


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.parent.name)
def test_the_original_scrape_site_template_runs_against_the_local_site(
    template: Path, site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    text = template.read_text().replace("https://example.com", site.url("/page/2"))
    # the template names no tenant: the `default` tenant, here with an explicit allow-list
    policy = policy_with_tenant(tmp_path, "default", tenant(ssrf_allow=["127.0.0.1"]))
    store = tmp_path / "store"
    result = run_workflow(text, instance, tmp_path, policy=policy)
    assert result.success
    [step] = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    output = result.output_for_node(step)
    assert output["pages"] == 1 and output["item_count"] == 1
    [html] = output["value"]  # the original shape: the page's HTML, `multiple` by default
    assert html.startswith("<html>") and '<h1 class="title">Page 2</h1>' in html
    assert site.log.paths() == ["/robots.txt", "/page/2"]
    # the items went through the content store, their hash in the output metadata
    items = output["items"]
    stored = ArtifactsIOManager(location=str(store)).open_store()
    copy = stored.save_to("default", items["sha256"], tmp_path / "items.jsonl")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == items["sha256"]
    [line] = copy.read_text().splitlines()
    assert json.loads(line) == {"url": site.url("/page/2"), "status": 200, "value": output["value"]}
    metadata = output_event(result, step)
    assert metadata["items_sha256"] == items["sha256"] and metadata["items_size"] == items["size"]
    assert metadata["crawl_pages"] == 1 and "cost_usd" not in metadata  # no price: free
    pointer = stored.read_pointer(
        "default", pointer_key("default", result.run_id, step, "outputs/items")
    )
    assert (pointer.sha256, pointer.media_type) == (items["sha256"], "application/jsonl")
    assert "path" not in items  # a scratch file, removed after the step
    # Scrapy's own log lines streamed into the step's compute log
    logs = compute_log(instance, result)
    assert "INFO [scrapy.core.engine] Spider opened" in logs


def test_two_crawls_in_one_run_with_structured_items(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    result = run_workflow(
        f"""
        name: two-crawls
        tenant: crawler
        steps:
          - id: products
            run: web_scraper
            with:
              start_urls: ["{site.url("/page/1")}"]
              follow: ["re:/page/"]
              max_pages: 3
              item_selector: "css:.product"
              fields:
                name: "css:.name"
                price: {{selector: ".price", regex: '\\$([\\d.]+)'}}
            outputs: [{{name: items}}]
          - id: titles
            run: scrape
            depends_on: [products]
            with:
              start_urls: ["{site.url("/seq/1", "127.0.0.2")}"]
              follow: true
              max_depth: 2
              fields: {{title: "css:h1"}}
          - id: count
            run: echo
            with:
              total: "{{{{ steps.products.output.item_count + steps.titles.output.item_count }}}}"
        """,
        instance,
        tmp_path,
    )
    assert result.success, [e.message for e in result.all_events if "FAILURE" in e.event_type_value]
    products, titles = result.output_for_node("products"), result.output_for_node("titles")
    assert products["pages"] == 3 and products["item_count"] == 6  # 2 products a page
    assert titles["summary"]["pages"] == 3  # /seq/1, /seq/2, /seq/3: max_depth 2
    assert result.output_for_node("count") == {"total": 9}
    store = ArtifactsIOManager(location=str(tmp_path / "store")).open_store()
    lines = store.read_verified("crawler", products["items"]["sha256"]).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert {"name": "Widget 1", "price": "1.99"}.items() <= rows[0].items()
    # the declared output `items` is the file: materialised with the file's hash
    [materialised] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert materialised.metadata["sha256"].value == products["items"]["sha256"]


def test_a_domain_the_tenant_does_not_allow_gets_no_request(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    policy = policy_with_tenant(
        tmp_path, "crawler", tenant(domains=["127.0.0.1"], ssrf_allow=LOOPBACK)
    )
    result = run_workflow(
        f"""
        name: denied
        tenant: crawler
        steps:
          - id: crawl
            run: web_scraper
            with:
              start_urls: ["{site.url("/page/1")}", "{site.url("/page/1", "127.0.0.2")}"]
        """,
        instance,
        tmp_path,
        policy=policy,
    )
    message, metadata = failure(result, "crawl")
    assert metadata["error_kind"] == "policy"
    assert "address_not_allowed: '127.0.0.2' is a loopback address" in message
    assert site.log.snapshot() == []  # refused before any request, to either host


def test_any_domain_needs_the_tenants_wildcard(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    result = run_workflow(
        f"""
        name: anywhere
        tenant: crawler
        steps:
          - id: crawl
            run: web_scraper
            with: {{start_urls: ["{site.url("/")}"], allowed_domains: ["*"], follow: true}}
        """,
        instance,
        tmp_path,
    )
    message, metadata = failure(result, "crawl")
    assert metadata["error_kind"] == "policy"
    assert "domain_not_allowed: tenant 'crawler' may not reach '*'" in message
    assert site.log.snapshot() == []


def test_loopback_is_refused_without_the_tenants_ssrf_allow_list(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    # the policy lets the tenant name 127.0.0.1; the fetch-time guard still refuses it
    policy = policy_with_tenant(tmp_path, "crawler", tenant())
    result = run_workflow(
        f"""
        name: ssrf
        tenant: crawler
        steps:
          - id: crawl
            run: web_scraper
            with: {{url: "{site.url("/page/1")}"}}
        """,
        instance,
        tmp_path,
        policy=policy,
    )
    message, metadata = failure(result, "crawl")
    assert metadata["error_kind"] == "ssrf_blocked" and metadata["crawl_ssrf_blocked"] == 1
    assert f"SSRF guard refused {site.url('/page/1')}: 127.0.0.1 -> 127.0.0.1 (loopback" in message
    assert site.log.snapshot() == []  # not even robots.txt
    events = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("WARNING [resources.scraper.middlewares] SSRF guard refused" in m for m in events)


def test_pages_cost_what_the_resource_charges_and_the_budget_applies_first(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    crawl = f"""
        name: priced
        tenant: crawler
        budget: {{max_cost_usd: BUDGET}}
        steps:
          - id: crawl
            run: web_scraper
            with:
              start_urls: ["{site.url("/page/1")}", "{site.url("/page/2")}"]
              max_pages: 4
        """
    scraper = ScraperResource(price_per_page=0.25)
    result = run_workflow(crawl.replace("BUDGET", "5"), instance, tmp_path, scraper=scraper)
    assert result.success
    assert output_event(result, "crawl")["cost_usd"] == 0.5  # 2 pages at $0.25
    site.log.clear()
    refused = run_workflow(crawl.replace("BUDGET", "0.5"), instance, tmp_path, scraper=scraper)
    _, metadata = failure(refused, "crawl")
    assert metadata["error_kind"] == "budget"  # up to 4 pages at $0.25 is over $0.50
    assert site.log.snapshot() == []


def test_proxies_from_the_resource_secret_rotate_and_hide_credentials(
    site: ScrapeSite,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p1, p2 = ForwardProxy("p1"), ForwardProxy("p2")
    try:
        secret_p1 = p1.url.replace("http://", "http://crawler:hunter2@")
        monkeypatch.setenv(PROXIES_ENV, f"{secret_p1}, {p2.url}")
        result = run_workflow(
            f"""
            name: proxied
            tenant: crawler
            steps:
              - id: crawl
                run: web_scraper
                with:
                  start_urls: {json.dumps([site.url(f"/page/{i}") for i in range(1, 5)])}
                  respect_robots: false
            """,
            instance,
            tmp_path,
            scraper=ScraperResource.from_env(),
        )
        assert result.success
        summary = result.output_for_node("crawl")["summary"]
        masked = p1.url.replace("http://", "http://***@")
        assert set(summary["proxies"]) == {masked, p2.url}
        assert "hunter2" not in json.dumps(summary) + compute_log(instance, result)
        vias = [hit.via_proxy for hit in site.log.snapshot()]
        assert sorted(vias) == ["p1", "p1", "p2", "p2"]  # round robin, never direct
    finally:
        p1.stop()
        p2.stop()


def test_a_crashed_crawl_fails_the_step_with_its_error(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    python = tmp_path / "python-without-site-packages"  # so the child cannot import Scrapy
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    result = run_workflow(
        f"""
        name: crash
        tenant: crawler
        steps:
          - id: crawl
            run: web_scraper
            with: {{url: "{site.url("/page/1")}"}}
        """,
        instance,
        tmp_path,
        scraper=ScraperResource(python=str(python), work_dir=str(tmp_path)),
    )
    message, metadata = failure(result, "crawl")
    assert metadata["error_kind"] == "crawl_failed" and metadata["exit_code"] == 1
    assert "crawl failed (crash)" in message and "No module named 'scrapy'" in message
    assert list(tmp_path.glob("maestro-scrape-*")) == []  # its scratch folder is gone


def test_the_step_timeout_stops_the_crawl(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    result = run_workflow(
        f"""
        name: slow
        tenant: crawler
        steps:
          - id: crawl
            run: web_scraper
            timeout: 2s
            with: {{url: "{site.url("/slow")}", respect_robots: false, timeout: 60}}
        """,
        instance,
        tmp_path,
    )
    _, metadata = failure(result, "crawl")
    assert metadata["error_kind"] == "timeout"


def test_a_crawl_needs_the_content_store(
    site: ScrapeSite, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    result = run_workflow(
        f"""
        name: nostore
        tenant: crawler
        steps:
          - id: crawl
            run: web_scraper
            with: {{url: "{site.url("/page/1")}"}}
        """,
        instance,
        tmp_path,
        io_manager=dg.FilesystemIOManager(base_dir=str(tmp_path / "fs")),
    )
    message, _ = failure(result, "crawl")
    assert "writes file outputs (items): they need the content store" in message
