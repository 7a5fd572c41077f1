"""Run liveness: the process running a run beats; a run whose beats stopped is marked failed.

Dagster's run monitoring cannot see that the process of a run died when nothing launched it
(`maestro run` executes in its own process) or when the DefaultRunLauncher did (it cannot check
a run worker's health): the run stays STARTED forever and keeps its tenant's slot. So the
process running a run (`maestro run`, and the threads executor of any run) writes a heartbeat
row in the policy store every MAESTRO_HEARTBEAT_INTERVAL_S (default 5 s) until the run ends.
`mark_dead_runs` (the `maestro_dead_runs` sensor, the policy's count of a tenant's active
runs, `maestro runs` and `maestro status`) marks a run FAILURE whose heartbeat is older than
MAESTRO_DEAD_RUN_GRACE_S (default 30 s): once (the first detector to set the row's `dead_at`
wins), with "run process died: no heartbeat since ...".

A process seen alive on this very host is never declared dead, however late its beats (a
machine so loaded that the beating thread stalls, or a database that was away): only a run
whose process is gone, or on another host, is judged by its heartbeat's age alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from resources.dagster_private import JobFailureData, RunFailureReason
from resources.policy.store import PolicyStore, run_heartbeats, store_for
from resources.run_tags import DEFAULT_TENANT, TENANT_TAG

HEARTBEAT_INTERVAL_ENV = "MAESTRO_HEARTBEAT_INTERVAL_S"
DEAD_RUN_GRACE_ENV = "MAESTRO_DEAD_RUN_GRACE_S"
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
DEFAULT_DEAD_RUN_GRACE_S = 30.0
"""Six missed beats: long enough for a busy machine or a short database hiccup."""
DEAD_MESSAGE_PREFIX = "run process died: no heartbeat since"

_log = logging.getLogger("maestro.liveness")


def seconds_setting(name: str, default: float, environ: Mapping[str, str] = os.environ) -> float:
    """A positive number of seconds from the environment variable `name`, else `default`."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86_400 * 365:
        raise ValueError(f"{name}: {text!r} is not a number of seconds > 0")
    return value


def heartbeat_interval(environ: Mapping[str, str] = os.environ) -> float:
    return seconds_setting(HEARTBEAT_INTERVAL_ENV, DEFAULT_HEARTBEAT_INTERVAL_S, environ)


def dead_run_grace(environ: Mapping[str, str] = os.environ) -> float:
    return seconds_setting(DEAD_RUN_GRACE_ENV, DEFAULT_DEAD_RUN_GRACE_S, environ)


# ---------------------------------------------------------------- processes


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), None when there is no
    such process (or it is a zombie) or no /proc: with the pid, it names one process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):  # dead, not yet reaped by its parent
        return None
    return fields[19]


def _alive_here(host: str, pid: int, started: str | None) -> bool:
    """The process is running on this host (same pid, same start time)."""
    if host != socket.gethostname():
        return False
    now_started = process_start(pid)
    if now_started is None:
        if sys.platform.startswith("linux"):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return started is None or now_started == started


# ---------------------------------------------------------------- heartbeats


# ---------------------------------------------------------------- the steps' process groups

_CHILD_GROUPS: dict[int, str | None] = {}  # pgid -> its leader's start time
_CHILD_GROUPS_LOCK = threading.Lock()


@contextlib.contextmanager
def child_group(pgid: int) -> Iterator[None]:
    """A step's command runs as process group `pgid` during the block. The heartbeats of this
    process carry it, so a detector on this host can stop it if the process is killed (nothing
    else is left to)."""
    with _CHILD_GROUPS_LOCK:
        _CHILD_GROUPS[pgid] = process_start(pgid)
        beaters = list(_BEATERS.values())
    for beater in beaters:  # recorded now, not at the next beat
        try:
            beater.beat()
        except Exception as exc:
            _log.warning(f"run {beater.run_id}: process group {pgid} not recorded: {exc}")
    try:
        yield
    finally:
        with _CHILD_GROUPS_LOCK:
            _CHILD_GROUPS.pop(pgid, None)


def _groups_json() -> str:
    with _CHILD_GROUPS_LOCK:
        return json.dumps(sorted([pgid, start] for pgid, start in _CHILD_GROUPS.items()))


def _stop_left_over_groups(text: str | None) -> int:
    """SIGKILL the recorded process groups still led by the same process; how many."""
    stopped = 0
    for pgid, start in json.loads(text or "[]"):
        if process_start(int(pgid)) is None or process_start(int(pgid)) != start:
            continue  # gone, or the pid now names another process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pgid), signal.SIGKILL)
            stopped += 1
    return stopped


class _Beater:
    """One run's heartbeat row and the daemon thread that refreshes it."""

    def __init__(self, store: PolicyStore, run_id: str, tenant: str, interval: float) -> None:
        self.store, self.run_id, self.interval = store, run_id, interval
        self.users = 0
        self._stop = threading.Event()
        now = time.time()
        pid = os.getpid()
        row = {
            "tenant": tenant,
            "host": socket.gethostname(),
            "pid": pid,
            "process_start": process_start(pid),
            "started_at": now,
            "beat_at": now,
            "dead_at": None,
            "child_groups": _groups_json(),
        }
        with store.engine.begin() as conn:  # a re-execution in the same run id starts afresh
            conn.execute(run_heartbeats.delete().where(run_heartbeats.c.run_id == run_id))
            conn.execute(run_heartbeats.insert().values(run_id=run_id, **row))
        self._thread = threading.Thread(
            target=self._loop, name=f"maestro-heartbeat-{run_id[:8]}", daemon=True
        )
        self._thread.start()

    def beat(self) -> bool:
        """Write the beat (and the process groups of the steps' commands); False when a
        detector has declared this run dead (or removed its row) meanwhile."""
        with self.store.engine.begin() as conn:
            updated = conn.execute(
                run_heartbeats.update()
                .where(run_heartbeats.c.run_id == self.run_id)
                .where(run_heartbeats.c.dead_at.is_(None))
                .values(beat_at=time.time(), child_groups=_groups_json())
            ).rowcount
        return bool(updated)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                alive = self.beat()
            except Exception as exc:  # the database away for a moment: beat again later
                _log.warning(f"run {self.run_id}: heartbeat not written: {exc}")
                continue
            if not alive and not self._stop.is_set():
                _log.error(
                    f"run {self.run_id} was marked failed as dead while this process "
                    f"(pid {os.getpid()}) still runs it: its heartbeats were late"
                )
                return

    def stop(self) -> None:
        """Stop beating. The row stays: the executor stops before the run's end event is
        written, and a process killed in between leaves an unfinished run that only its row
        can show dead. A detector removes the row once the run has ended."""
        self._stop.set()
        self._thread.join(timeout=5)


_BEATERS: dict[tuple[str, str], _Beater] = {}
_BEATERS_LOCK = threading.Lock()


@contextlib.contextmanager
def run_heartbeat(
    instance: dg.DagsterInstance, run: dg.DagsterRun, interval: float | None = None
) -> Iterator[None]:
    """Beat for `run` while the block runs. Nested uses for one run in one process (`maestro
    run` around its executor) share one row and one thread. An ephemeral instance gets none:
    no other process can see its runs."""
    if instance.is_ephemeral:
        yield
        return
    store = store_for(instance)
    key = (store.url, run.run_id)
    with _BEATERS_LOCK:
        beater = _BEATERS.get(key)
        if beater is None:
            tenant = run.tags.get(TENANT_TAG, DEFAULT_TENANT)
            beater = _Beater(store, run.run_id, tenant, interval or heartbeat_interval())
            _BEATERS[key] = beater
        beater.users += 1
    try:
        yield
    finally:
        with _BEATERS_LOCK:
            beater.users -= 1
            last = beater.users == 0
            if last:
                del _BEATERS[key]
        if last:
            beater.stop()


# ---------------------------------------------------------------- the detector


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    tenant: str
    last_beat: float
    message: str


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def dead_run_message(last_beat: float, host: str, pid: int, grace: float, now: float) -> str:
    return (
        f"{DEAD_MESSAGE_PREFIX} {_when(last_beat)} ({now - last_beat:.0f}s ago, more than "
        f"the {grace:g}s of {DEAD_RUN_GRACE_ENV}); it ran as pid {pid} on {host}. Its steps "
        "were not finished; its tenant's run slot is free again"
    )


def mark_dead_runs(
    instance: dg.DagsterInstance,
    grace: float | None = None,
    now: float | None = None,
    tenant: str | None = None,
) -> list[DeadRun]:
    """Mark FAILURE every unfinished run (of `tenant`, or all) whose heartbeat is older than
    `grace`; returns those this call marked (another detector's marks are not repeated). Rows
    of runs that ended are removed."""
    grace = dead_run_grace() if grace is None else grace
    now = time.time() if now is None else now
    cutoff = now - grace
    store = store_for(instance)
    query = (
        sa.select(run_heartbeats)
        .where(run_heartbeats.c.beat_at < cutoff)
        .where(run_heartbeats.c.dead_at.is_(None))
    )
    if tenant is not None:
        query = query.where(run_heartbeats.c.tenant == tenant)
    with store.engine.connect() as conn:
        stale = list(conn.execute(query))
    marked: list[DeadRun] = []
    for row in stale:
        run = instance.get_run_by_id(row.run_id)
        if run is None or run.is_finished:
            _forget(store, row.run_id, row.beat_at)
            continue
        if _alive_here(row.host, row.pid, row.process_start):
            continue
        if not _claim(store, row.run_id, cutoff, now):
            continue  # another detector marks it, or it beat just now
        run = instance.get_run_by_id(row.run_id)
        if run is None or run.is_finished:
            continue
        message = dead_run_message(row.beat_at, row.host, row.pid, grace, now)
        if row.host == socket.gethostname():
            stopped = _stop_left_over_groups(row.child_groups)
            if stopped:
                message += f"; {stopped} process group(s) its steps had started were killed"
        try:
            instance.report_run_failed(
                run,
                message,
                JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
            )
        except BaseException:
            _unclaim(store, row.run_id)  # the next detector tries again
            raise
        marked.append(DeadRun(row.run_id, row.tenant, row.beat_at, message))
    return marked


def _claim(store: PolicyStore, run_id: str, cutoff: float, now: float) -> bool:
    with store.engine.begin() as conn:
        claimed = conn.execute(
            run_heartbeats.update()
            .where(run_heartbeats.c.run_id == run_id)
            .where(run_heartbeats.c.dead_at.is_(None))
            .where(run_heartbeats.c.beat_at < cutoff)
            .values(dead_at=now)
        ).rowcount
    return bool(claimed == 1)


def _unclaim(store: PolicyStore, run_id: str) -> None:
    with contextlib.suppress(Exception), store.engine.begin() as conn:
        conn.execute(
            run_heartbeats.update().where(run_heartbeats.c.run_id == run_id).values(dead_at=None)
        )


def _forget(store: PolicyStore, run_id: str, beat_at: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            run_heartbeats.delete()
            .where(run_heartbeats.c.run_id == run_id)
            .where(run_heartbeats.c.beat_at == beat_at)
        )


def heartbeat_of(instance: dg.DagsterInstance, run_id: str) -> Mapping[str, object] | None:
    """The run's heartbeat row (for `maestro status` and tests), None when it has none."""
    store = store_for(instance)
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(run_heartbeats).where(run_heartbeats.c.run_id == run_id)
        ).first()
    return dict(row._mapping) if row is not None else None
