"""Secret values never reach a log line, an event or an error message."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Redactor:
    """Replaces secret values with `***` in anything that may reach a log or an event."""

    def __init__(self, secret_names: tuple[str, ...], environ: Mapping[str, str] = os.environ):
        forms: set[str] = set()
        for value in (environ.get(name, "") for name in secret_names):
            # The value as written, as a shell command quotes it, and line by line (output
            # and error messages are handled a line at a time).
            forms |= {value, shlex.quote(value)}
            forms |= {line.strip() for line in value.splitlines()}
        self._values = sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)

    @property
    def active(self) -> bool:
        """Whether there is any value to hide (no declared secret set: nothing to do)."""
        return bool(self._values)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
        return text

    def found_in_file(self, path: Path, chunk_size: int = 1 << 20) -> bool:
        """Whether the file's bytes hold a secret value (UTF-8), read a chunk at a time with an
        overlap, so a value across two chunks is found and a large file is never whole in memory."""
        needles = [value.encode() for value in self._values]
        if not needles:
            return False
        overlap = max(len(n) for n in needles) - 1
        tail = b""
        with path.open("rb") as stream:
            while chunk := stream.read(chunk_size):
                window = tail + chunk
                if any(needle in window for needle in needles):
                    return True
                tail = window[-overlap:] if overlap else b""
        return False


class RedactingLog:
    """A step's Dagster log, with every message redacted (the plugin's `ctx.log`)."""

    def __init__(self, log: Any, redact: Redactor):
        self._log, self._redact = log, redact

    def info(self, msg: str) -> None:
        self._log.info(self._redact(msg))

    def warning(self, msg: str) -> None:
        self._log.warning(self._redact(msg))

    def error(self, msg: str) -> None:
        self._log.error(self._redact(msg))

    def debug(self, msg: str) -> None:
        self._log.debug(self._redact(msg))


def redact_value(value: Any, redact: Redactor) -> tuple[Any, bool]:
    """`value` (JSON-like) with every string, keys included, redacted; and whether anything
    changed. Outputs and `for_each` items are stored (artifact store, event metadata) where
    anyone who reads the tenant's runs reads them, so they pass the same redaction as logs."""
    if not redact.active:
        return value, False
    if isinstance(value, str):
        clean = redact(value)
        return clean, clean != value
    if isinstance(value, Mapping):
        changed, out = False, {}
        for key, item in value.items():
            new_key, key_changed = redact_value(key, redact)
            new_item, item_changed = redact_value(item, redact)
            out[new_key] = new_item
            changed = changed or key_changed or item_changed
        return out, changed
    if isinstance(value, (list, tuple)):
        pairs = [redact_value(item, redact) for item in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False
