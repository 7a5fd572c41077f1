"""`maestro doctor`: is the LLM set-up usable? Talks only to the hosts the configuration names.

LiteLLM: the model list (MAESTRO_LITELLM_CONFIG) loads, its `os.environ/` keys are set and the
Router accepts it; its deployments are listed, keys never shown. Ollama: the host (OLLAMA_HOST,
else Ollama's default on loopback) answers, with the models it has and what is loaded where.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from resources.litellm_resource import CONFIG_ENV, LiteLLMResource
from resources.ollama_resource import OllamaResource


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    lines: list[str]
    required: bool = True  # a failed optional check is a warning, not an exit code of 1


def check_litellm(environ: Mapping[str, str] = os.environ) -> Check:
    resource = LiteLLMResource.from_env(environ)
    source = resource.model_list_file or f"none ({CONFIG_ENV} is not set)"
    try:
        lines = [f"config: {source}", *resource.describe()]
        client = resource.client(environ)
    except Exception as exc:
        return Check("litellm", False, [f"config: {source}", f"error: {exc}"])
    if not client.deployments:
        lines.append("no deployments: steps call models by their LiteLLM name (provider/model)")
    return Check("litellm", True, lines)


def check_ollama(environ: Mapping[str, str] = os.environ) -> Check:
    resource = OllamaResource.from_env(environ)
    reachable, line = resource.health()
    return Check("ollama", reachable, [line], required=bool(environ.get("OLLAMA_HOST")))


def run_checks(environ: Mapping[str, str] = os.environ) -> list[Check]:
    return [check_litellm(environ), check_ollama(environ)]
