"""Runs through the real daemon on PostgreSQL under per-tenant limits: every run ends SUCCESS
with all its steps, none lost or duplicated, and the limits are never exceeded (sampled every
0.5 s). A dozen runs here; bench/load.py runs 200 of the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_cli.deployment import postgres_env
from tests.support.load import LIMITS, QUEUE, run_load
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(900)]


def test_runs_under_tenant_limits_all_succeed_and_none_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_database() as url:
        for name, value in postgres_env(url).items():
            monkeypatch.setenv(name, value)
        report = run_load(tmp_path, url, runs=12, timeout_s=600)
    assert report.statuses == {"SUCCESS": 12}, report
    assert not report.lost and not report.duplicated and report.unfinished == 0
    assert report.step_successes == 120
    for tenant, limit in LIMITS.items():
        assert 1 <= report.peaks[tenant] <= limit, (tenant, report.peaks)
    assert report.most_in_progress >= 2, "runs never overlapped: the limits were not tested"
    assert report.most_in_progress <= QUEUE
    assert report.nothing_lost
