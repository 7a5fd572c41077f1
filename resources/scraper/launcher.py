"""Parent side: run one crawl in a subprocess, stream its log, return its summary.

The step plugin calls `run_crawl`. Nothing here imports Scrapy (the Dagster process stays
lean): the child is `python -m resources.scraper.runner --spec FILE`, one per crawl, because
Scrapy's Twisted reactor cannot be restarted inside a long-lived process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources.scraper.summary import SUMMARY_PREFIX

LogSink = Callable[[str, str], None]
"""Receives each log line of the child: (level, line)."""
RUNNER_MODULE = "resources.scraper.runner"
ITEMS_FILE = "items.jsonl"
SUMMARY_FILE = "summary.json"
SPEC_FILE = "spec.json"
_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) \[")
_TERM_GRACE_SECONDS = 5.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_EXIT_KINDS = {2: "spec", 3: "incomplete"}


class CrawlError(RuntimeError):
    """The crawl subprocess failed; `kind` is spec | incomplete | crash | killed | timeout |
    cancelled. The message is a headline (the last ERROR line) and the last log lines."""

    def __init__(self, message: str, *, kind: str, exit_code: int | None, tail: list[str]):
        detail = "\n".join(tail[-15:])
        super().__init__(f"{message} (exit code {exit_code})\n--- last log lines ---\n{detail}")
        self.headline = message
        self.kind = kind
        self.exit_code = exit_code
        self.tail = tail


@dataclass(frozen=True)
class CrawlResult:
    summary: dict[str, Any]
    items_path: Path
    exit_code: int
    wall_s: float

    def items(self) -> list[dict[str, Any]]:
        """Every item, read back (tests and small crawls; the step streams the file)."""
        return list(iter_items(self.items_path))


def iter_items(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _print_sink(level: str, line: str) -> None:
    print(line, file=sys.stderr)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the child's group (Scrapy shuts down gracefully on the first one), then
    SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_TERM_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _watch(
    proc: subprocess.Popen[str],
    deadline: float | None,
    cancelled: threading.Event | None,
    fired: list[str],
) -> None:
    """Stop the child when the deadline passes or the step is cancelled."""
    while proc.poll() is None:
        if cancelled is not None and cancelled.is_set():
            fired.append("cancelled")
        elif deadline is not None and time.monotonic() >= deadline:
            fired.append("timeout")
        if fired:
            _stop(proc)
            return
        time.sleep(0.05)


def run_crawl(
    spec: Mapping[str, Any],
    *,
    workdir: str | os.PathLike[str],
    on_log: LogSink = _print_sink,
    timeout: float | None = None,
    cancelled: threading.Event | None = None,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
) -> CrawlResult:
    """Run one crawl; `spec` is the runner's job spec without the output paths (they go in
    `workdir`). Raises CrawlError when the child fails, times out or is cancelled."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    full = {
        "items_path": str(work / ITEMS_FILE),
        "summary_path": str(work / SUMMARY_FILE),
        **spec,
    }
    spec_path = work / SPEC_FILE
    spec_path.write_text(json.dumps(full), encoding="utf-8")
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    path = [_PACKAGE_ROOT, child_env.get("PYTHONPATH", "")]
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)

    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-m", RUNNER_MODULE, "--spec", str(spec_path)],
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream: order kept, no second reader thread
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        env=child_env,
        start_new_session=True,  # its own process group, so a stop reaches all of it
    )
    fired: list[str] = []
    deadline = started + timeout if timeout else None
    watcher = threading.Thread(
        target=_watch, args=(proc, deadline, cancelled, fired), name="crawl-watch", daemon=True
    )
    watcher.start()
    tail: deque[str] = deque(maxlen=50)
    summary_line: str | None = None
    level = "INFO"
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if line.startswith(SUMMARY_PREFIX):
                summary_line = line[len(SUMMARY_PREFIX) :]
                continue
            if match := _LINE.match(line):
                level = match.group(1)
            tail.append(line)
            on_log(level, line)  # continuation lines (tracebacks) keep their record's level
        code = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        proc.stdout.close()
    watcher.join(1.0)
    wall = time.monotonic() - started
    if fired:
        reason = (
            f"crawl timed out after {timeout:g}s"
            if fired[0] == "timeout"
            else "crawl cancelled: the step's time is up"
        )
        raise CrawlError(reason, kind=fired[0], exit_code=code, tail=list(tail))
    if code != 0 or summary_line is None:
        kind = _EXIT_KINDS.get(code, "killed" if code < 0 else "crash")
        errors = [t for t in tail if t.startswith(("ERROR", "CRITICAL", "Traceback"))]
        first = (errors or list(tail) or ["no output"])[-1]
        raise CrawlError(
            f"crawl failed ({kind}): {first}", kind=kind, exit_code=code, tail=list(tail)
        )
    return CrawlResult(json.loads(summary_line), Path(full["items_path"]), code, wall)
