"""Durations as the DSL writes them: `500ms`, `30s`, `5m`, `2h`, `1d`, or a number of seconds.

No duration is longer than `MAX_DURATION_SECONDS` (a year): anything longer is a typo, and
the clocks that would wait for it break first (`threading` refuses waits over ~292 years,
`datetime` arithmetic overflows). Fields with tighter limits check them on top of this.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_DURATION_SECONDS = 365 * 86400.0


def parse_duration(value: object) -> float:
    """Seconds as a float; raises ValueError with the accepted forms on anything else."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 500ms, 30s, 5m, 2h")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError("a duration is a finite number of seconds, zero or more")
        return _within_a_year(float(value), value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return _within_a_year(float(match.group(1)) * _UNIT_SECONDS[match.group(2)], value)
    raise ValueError(
        f"invalid duration {value!r}: use a number of seconds or 500ms, 30s, 5m, 2h, 1d"
    )


def _within_a_year(seconds: float, written: object) -> float:
    if not seconds <= MAX_DURATION_SECONDS:  # also false for inf and nan
        shown = repr(written) if len(repr(written)) <= 40 else f"{repr(written)[:37]}..."
        raise ValueError(f"duration {shown} is longer than the limit of 365d")
    return seconds


def at_most(limit: float, what: str) -> Callable[[float | None], float | None]:
    """A validator: `what` may be at most `limit` seconds (the message states the bound)."""

    def check(seconds: float | None) -> float | None:
        if seconds is not None and seconds > limit:
            raise ValueError(
                f"{what} of {format_duration(seconds)} is longer than the limit of "
                f"{format_duration(limit)}"
            )
        return seconds

    return check


def format_duration(seconds: float) -> str:
    """The shortest exact DSL spelling of a duration, for plans."""
    for unit, factor in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= factor and (seconds / factor).is_integer():
            return f"{int(seconds / factor)}{unit}"
    millis = seconds * 1000
    return f"{int(millis)}ms" if millis.is_integer() else f"{seconds}s"
