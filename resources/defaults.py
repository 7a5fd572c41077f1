"""The step resources every Maestro job gets unless a deployment binds its own: one place, so
the code location (`maestro_defs`) and `maestro run` configure LLM steps the same way."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from resources.litellm_resource import LiteLLMResource
from resources.ollama_resource import OllamaResource


def step_resources(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`litellm` from MAESTRO_LITELLM_CONFIG, `ollama` from OLLAMA_HOST (and friends)."""
    return {
        "litellm": LiteLLMResource.from_env(environ),
        "ollama": OllamaResource.from_env(environ),
    }
