"""One way to run the `maestro` command in tests: for real, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

UNSET = "<unset>"
"""An `env` value that removes the variable from the child's environment."""


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
    environ = {**os.environ, "DAGSTER_HOME": str(home), **(env or {})}
    environ = {k: v for k, v in environ.items() if v != UNSET}
    return subprocess.run(
        [sys.executable, "-m", "maestro_cli", *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
