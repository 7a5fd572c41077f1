"""Reading real runs (execute_job, `dagster job execute`, the daemon) back from the instance:
when each step attempt ran, how many ran at once, what the engine said."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg

Interval = tuple[float, float]


def entries(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogEntry]:
    """The run's Dagster events in timestamp order."""
    found = [e for e in instance.all_logs(run_id) if e.dagster_event is not None]
    return sorted(found, key=lambda e: e.timestamp)


def event_type(entry: dg.EventLogEntry) -> str:
    assert entry.dagster_event is not None
    return entry.dagster_event.event_type_value


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[Interval]]:
    """Step key -> (start, end) of each attempt, from the recorded event timestamps."""
    found: dict[str, list[Interval]] = collections.defaultdict(list)
    started: dict[str, float] = {}
    for entry in entries(instance, run_id):
        kind, key = event_type(entry), entry.step_key
        if key is None:
            continue
        if kind in ("STEP_START", "STEP_RESTARTED"):
            started[key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY") and key in started:
            found[key].append((started.pop(key), entry.timestamp))
    return dict(found)


def max_overlap(intervals: Iterable[Interval]) -> int:
    """The most intervals open at one instant (an end before a start at the same time)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = best = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def concurrent(intervals: Mapping[str, list[Interval]], keys: Iterable[str]) -> int:
    return max_overlap([iv for key in keys for iv in intervals.get(key, [])])


def engine_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.message or "" for e in entries(instance, run_id) if event_type(e) == "ENGINE_EVENT"]


def instance_home(path: Path) -> Path:
    """A real instance folder (SQLite storage: pools are enforced, unlike an ephemeral one)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return path


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
