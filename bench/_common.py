"""Small helpers shared by the benchmark scripts (table rows, target verdicts)."""

from __future__ import annotations

import statistics


def fmt_row(label: str, *cells: str, width: int = 38) -> str:
    """One table row: a left-aligned label, then right-aligned cells."""
    return label.ljust(width) + "".join(cell.rjust(11) for cell in cells)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def noise_note(samples: dict[str, list[float]], limit: float = 1.25) -> str:
    """A warning when some variant's median exceeds its best by more than `limit`x."""
    spread = {name: statistics.median(v) / min(v) for name, v in samples.items()}
    worst = max(spread, key=spread.__getitem__)
    if spread[worst] <= limit:
        return f"noise: medians within {limit:.2f}x of bests"
    return (
        f"NOISY: {worst} median is {spread[worst]:.2f}x its best (another load on the machine?);"
        " compare the best column, or rerun"
    )
