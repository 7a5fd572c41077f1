"""`OllamaResource`: where the Ollama server is and what its GPU may hold.

`host` defaults to OLLAMA_HOST (else Ollama's own default, 127.0.0.1:11434). `gpu_memory_mb`
is the VRAM the models may use; when it is not set, the VRAM the server reports in use
(`/api/ps`) is the only evidence. `price_per_gpu_hour` turns generation time into `cost_usd`.
The `ollama` client is imported when a step first needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

DEFAULT_HOST = "http://127.0.0.1:11434"


@dataclass(frozen=True)
class ServerModel:
    """A model the server has (`/api/tags`) and, when loaded, how much sits in VRAM."""

    name: str
    size: int
    size_vram: int | None = None  # None: not loaded

    @property
    def loaded(self) -> bool:
        return self.size_vram is not None


@dataclass(frozen=True)
class ServerState:
    models: dict[str, ServerModel]

    @property
    def vram_in_use(self) -> int:
        return sum(m.size_vram or 0 for m in self.models.values())


def full_name(model: str) -> str:
    """Ollama's implicit tag: `llama3.2` is `llama3.2:latest`."""
    return model if ":" in model else f"{model}:latest"


class OllamaResource(dg.ConfigurableResource):
    """An Ollama server for `ollama.generate` / `ollama.chat` steps."""

    host: str | None = Field(default=None, description="Server URL; default OLLAMA_HOST.")
    gpu_memory_mb: int | None = Field(
        default=None, description="VRAM (MiB) models may use; default: what the server reports."
    )
    price_per_gpu_hour: float | None = Field(
        default=None, description="USD per hour of generation time, reported as cost_usd."
    )
    timeout: float = Field(default=300.0, description="Seconds per request.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> OllamaResource:
        gpu = environ.get("MAESTRO_OLLAMA_GPU_MEMORY_MB")
        price = environ.get("MAESTRO_OLLAMA_PRICE_PER_GPU_HOUR")
        return cls(
            host=environ.get("OLLAMA_HOST") or None,
            gpu_memory_mb=int(gpu) if gpu else None,
            price_per_gpu_hour=float(price) if price else None,
        )

    def base_url(self) -> str:
        host = self.host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
        return host if "://" in host else f"http://{host}"

    def client(self, timeout: float | None = None) -> Any:
        import ollama

        return ollama.Client(host=self.base_url(), timeout=timeout or self.timeout)

    def state(self, client: Any | None = None) -> ServerState:
        """What the server has and what is loaded: `/api/tags` and `/api/ps`."""
        client = client or self.client()
        models: dict[str, ServerModel] = {}
        for listed in client.list().models:
            name = full_name(listed.model or "")
            models[name] = ServerModel(name, int(listed.size or 0))
        for running in client.ps().models:
            name = full_name(running.model or running.name or "")
            size = int(running.size or models.get(name, ServerModel(name, 0)).size)
            models[name] = ServerModel(name, size, int(running.size_vram or 0))
        return ServerState(models)

    def health(self) -> tuple[bool, str]:
        """(reachable, one line) for `maestro doctor` and the resource's set-up."""
        try:
            state = self.state(self.client(timeout=5.0))
        except Exception as exc:
            return False, f"Ollama at {self.base_url()} does not answer: {exc}"
        names = ", ".join(
            f"{m.name} (loaded, {m.size_vram or 0}/{m.size} bytes in VRAM)" if m.loaded else m.name
            for m in state.models.values()
        )
        return True, f"Ollama at {self.base_url()}: {names or 'no models pulled'}"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        reachable, line = self.health()
        if context.log is not None:
            (context.log.info if reachable else context.log.warning)(line)
