"""A local-disk cache of LLM step outputs (steps with `cache: true`).

The key is a hash of everything that shapes the answer (model, messages, sampling parameters,
response format, tools); the value is the step's output, so a hit makes no request and costs
nothing. diskcache is process- and thread-safe, so parallel steps and runs share it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

_OPEN: dict[str, Any] = {}
_LOCK = threading.Lock()


def cache_key(request: dict[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    def __init__(self, directory: Path, ttl_seconds: int | None = None):
        self.directory = directory
        self.ttl_seconds = ttl_seconds
        with _LOCK:
            cache = _OPEN.get(str(directory))
            if cache is None:
                import diskcache  # here: only steps with `cache: true` need it

                directory.mkdir(parents=True, exist_ok=True)
                cache = diskcache.Cache(str(directory))
                _OPEN[str(directory)] = cache
        self._cache = cache

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._cache.get(key)
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._cache.set(key, value, expire=self.ttl_seconds)
