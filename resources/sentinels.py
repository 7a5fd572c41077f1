"""The markers that travel as step outputs: one definition for the op bodies and the IO manager.

A skipped step still emits `result`, as `{"maestro/sentinel": "skipped", "reason": ...}`, so any
IO manager stores it like an output and later stages still run.
"""

from __future__ import annotations

from typing import Any

SENTINEL_KEY = "maestro/sentinel"


def skip_marker(reason: str) -> dict[str, str]:
    """The `result` of a skipped step."""
    return {SENTINEL_KEY: "skipped", "reason": reason}


def is_skipped(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SENTINEL_KEY) == "skipped"
