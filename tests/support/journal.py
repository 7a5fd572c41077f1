"""Steps and compensations that write one line each to a journal file, for counting and ordering
what really ran across runs and processes (the saga and resume tests)."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import Any


def write(journal: str, line: str) -> None:
    """Append one line (locked: concurrent steps of one run, or of two processes)."""
    with open(journal, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(line + "\n")


def lines(journal: str | Path) -> list[str]:
    path = Path(journal)
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def step(
    journal: str,
    name: str,
    upstream: Any = None,
    fail_unless: str | None = None,
    sleep: float = 0.0,
) -> dict[str, Any]:
    """A step: journal `run <name>`, fail while the file `fail_unless` is missing; its output
    carries its name and what it read upstream, so a resumed step shows where inputs came from."""
    write(journal, f"run {name}")
    if sleep:
        time.sleep(sleep)
    if fail_unless is not None and not Path(fail_unless).exists():
        raise RuntimeError(f"{name} fails until {fail_unless} exists")
    return {"id": f"{name}-id", "upstream": upstream}


def undo(
    journal: str,
    name: str,
    detail: Any = "",
    fail_times: int = 0,
    counter: str = "",
    fail_unless: str | None = None,
    sleep: float = 0.0,
    trace: str = "",
) -> str:
    """A compensation: journal `undo <name> <detail>`; fail the first `fail_times` attempts
    (counted in the file `counter`), or always with fail_times < 0 (while the file
    `fail_unless`, if given, is missing). `trace`: a file that gets `begin`/`end` lines around
    the work (which compensations overlapped)."""
    if fail_unless is not None and Path(fail_unless).exists():
        fail_times = 0
    if fail_times:
        count = len(lines(counter)) if counter else 0
        if counter:
            write(counter, "attempt")
        if fail_times < 0 or count < fail_times:
            raise RuntimeError(f"compensation of {name} failed (attempt {count + 1})")
    if trace:
        write(trace, f"begin {name}")
    if sleep:
        time.sleep(sleep)
    write(journal, f"undo {name} {detail}".rstrip())
    if trace:
        write(trace, f"end {name}")
    return f"undone {name}"
