"""One way to run the `maestro` command in tests: for real, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

UNSET = "<unset>"
"""An `env` value that removes the variable from the child's environment."""


def _environ(home: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    environ = {**os.environ, "DAGSTER_HOME": str(home), **(env or {})}
    return {k: v for k, v in environ.items() if v != UNSET}


def run_maestro(
    *args: str,
    cwd: Path,
    home: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """`python -m maestro_cli ARGS` in `cwd`, with DAGSTER_HOME=`home` (unless `env` unsets it)
    and `env` on top of this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "maestro_cli", *args],
        cwd=cwd,
        env=_environ(home, env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_maestro(
    *args: str,
    cwd: Path,
    home: Path,
    env: Mapping[str, str] | None = None,
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.STDOUT,
    **popen: Any,
) -> subprocess.Popen[str]:
    """The same command, started and left running (to kill, interrupt or watch it); its output
    merged into one text pipe unless told otherwise."""
    return subprocess.Popen(
        [sys.executable, "-m", "maestro_cli", *args],
        cwd=cwd,
        env=_environ(home, env),
        stdout=stdout,
        stderr=stderr,
        text=True,
        **popen,
    )
