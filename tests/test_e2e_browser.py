"""The Dagster UI of the real stack in a real browser: Playwright driving Debian's Chromium
(`/usr/bin/chromium`; `playwright install` would download a browser, which cannot work here).

As a user would: the jobs list, a job's op graph, the launchpad with its param defaults, a run
launched by clicking, its run page and a step's compute log, the asset lineage of a workflow
with `outputs:`, the gate sensor (with the broken file it reports) and a schedule. Screenshots
go to the test's temp folder; the gate sensor's is also kept in MAESTRO_SCREENSHOTS_DIR when set.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.support.stack import BROKEN_WHERE, Stack

pytestmark = pytest.mark.timeout(900)
CHROMIUM = Path(os.environ.get("MAESTRO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no connections out of a machine without a network
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page(e2e_stack: Stack) -> Iterator[Page]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/services installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(60_000)
        page = context.new_page()
        # The UI's once-per-instance "join the community" dialog can open at any moment after a
        # page has loaded (late on a busy machine); whenever it covers the page, skip it.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
        yield page
        browser.close()


def _open(page: Page, stack: Stack, path: str) -> None:
    page.goto(stack.url + path, wait_until="networkidle")


def _shot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


def test_jobs_op_graph_launchpad_run_and_compute_log(
    page: Page, e2e_stack: Stack, tmp_path: Path
) -> None:
    _open(page, e2e_stack, "/jobs")
    for job in ("fails", "hello", "limited", "lineage", "ticking"):
        expect(page.locator(f'a[href="/locations/maestro/jobs/{job}"]')).to_be_visible()
    _shot(page, tmp_path, "jobs")

    page.locator('a[href="/locations/maestro/jobs/hello"]').click()
    expect(page).to_have_url(re.compile(r"/locations/maestro/jobs/hello$"))
    graph = page.locator("body")
    expect(graph).to_contain_text("**greet**: `echo` step `greet`.")
    expect(graph).to_contain_text("**shout**: `shell` step `shout`.")
    expect(graph).to_contain_text("Greets someone, then shouts.")
    expect(graph).to_contain_text("maestro/tenant: default")
    _shot(page, tmp_path, "op-graph")

    page.get_by_role("tab", name="Launchpad").click()
    editor = page.locator(".CodeMirror")
    expect(editor).to_contain_text("params:")
    expect(editor).to_contain_text("who: world")
    expect(editor).to_contain_text("times: 2")
    _shot(page, tmp_path, "launchpad")

    page.get_by_role("button", name="Launch Run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"), timeout=120_000)
    found = re.search(r"/runs/([0-9a-f-]{36})", page.url)
    assert found is not None
    run_id = found.group(1)
    header = page.get_by_text("Success", exact=True).first
    expect(header).to_be_visible(timeout=300_000)
    expect(page.locator("body")).to_contain_text("Succeeded (2)")
    _shot(page, tmp_path, "run")
    with e2e_stack.instance() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.job_name == "hello" and run.status.value == "SUCCESS"

    page.get_by_text("View stdout / stderr").last.click()
    expect(page).to_have_url(re.compile(r"logFileKey="))
    # The step's own log (the threads executor keeps one per step): its command's output.
    page.get_by_text("stdout", exact=True).first.click()
    expect(page.get_by_text("shouting at world", exact=True)).to_be_visible(timeout=30_000)
    _shot(page, tmp_path, "compute-log")


def test_asset_lineage_of_declared_outputs(page: Page, e2e_stack: Stack, tmp_path: Path) -> None:
    _open(page, e2e_stack, "/assets/maestro/lineage/report/summary?view=lineage")
    body = page.locator("body")
    expect(body).to_contain_text("summary")
    expect(body).to_contain_text("rows")  # the upstream step's output, joined by an edge
    expect(page.get_by_text("External Asset")).to_be_visible()
    _shot(page, tmp_path, "asset-lineage")


def test_the_gate_sensor_shows_the_broken_file_and_the_schedule_page(
    page: Page, e2e_stack: Stack, tmp_path: Path
) -> None:
    _open(page, e2e_stack, "/locations/maestro/sensors/maestro_policy_gate")
    body = page.locator("body")
    expect(body).to_contain_text("1 workflow file(s) did not load")
    expect(body).to_contain_text(str(e2e_stack.workflows / BROKEN_WHERE))
    expect(body).to_contain_text("Running")
    shot = _shot(page, tmp_path, "gate-sensor-broken-file")
    keep = os.environ.get("MAESTRO_SCREENSHOTS_DIR")
    if keep:  # an artifact for people: what a broken file looks like in the UI
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)

    _open(page, e2e_stack, "/locations/maestro/schedules/ticking_schedule")
    cron = f"{e2e_stack.schedule_at.minute} {e2e_stack.schedule_at.hour} * * *"
    expect(body).to_contain_text(f"Runs workflow ticking on {cron}")
    expect(body).to_contain_text("Running")
    expect(body).to_contain_text("Execution timezone")
    _shot(page, tmp_path, "schedule")
