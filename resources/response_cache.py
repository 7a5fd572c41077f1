"""The response cache of LLM steps with `cache: true`: local disk by default, Redis optional.

The key is a hash of everything that shapes the answer (model, fallbacks, messages, sampling
parameters, response format, tools); the value is the step's output, so a hit makes no request
and costs nothing. diskcache is process- and thread-safe, so parallel steps and runs on one
machine share it; Redis shares it across machines. Each backend is imported only when a step
first uses it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Protocol

REDIS_PREFIX = "maestro:llm:"
_OPEN: dict[str, Any] = {}
_LOCK = threading.Lock()


def cache_key(request: dict[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...
    def set(self, key: str, value: dict[str, Any]) -> None: ...


def _shared(name: str, make: Any) -> Any:
    """One client per folder or URL per process."""
    with _LOCK:
        cache = _OPEN.get(name)
        if cache is None:
            cache = _OPEN[name] = make()
        return cache


class DiskResponseCache:
    def __init__(self, directory: Path, ttl_seconds: int | None = None):
        import diskcache

        def make() -> Any:
            directory.mkdir(parents=True, exist_ok=True)
            return diskcache.Cache(str(directory))

        self.ttl_seconds = ttl_seconds
        self._cache = _shared(f"disk:{directory}", make)

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._cache.get(key)
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._cache.set(key, value, expire=self.ttl_seconds)


class RedisResponseCache:
    def __init__(self, url: str, ttl_seconds: int | None = None):
        try:
            import redis
        except ImportError as exc:
            raise RuntimeError(
                "the Redis response cache needs the `redis` package: "
                "pip install 'maestro-dagster[redis]'"
            ) from exc
        self.ttl_seconds = ttl_seconds
        self._client = _shared(f"redis:{url}", lambda: redis.Redis.from_url(url))

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._client.get(REDIS_PREFIX + key)
        value = json.loads(raw) if raw else None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._client.set(REDIS_PREFIX + key, json.dumps(value), ex=self.ttl_seconds)
