"""Names reserved for plugins that ship with later work (LLMs, scraping).

Their parameters are validated now, so workflows written today compile; running such a step
fails with a clear "not installed yet" error. There is no fake result.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from resources.plugins.base import Plugin, PluginParams


class LiteLLMParams(PluginParams):
    model: str
    prompt: str | None = None
    prompt_template: str | None = None
    template_variables: dict[str, Any] = Field(default_factory=dict)
    messages: list[dict[str, Any]] | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    response_format: Any = None
    tools: list[dict[str, Any]] | None = None
    fallbacks: list[str] = Field(default_factory=list)
    timeout: float | str | None = None
    cache: bool = False
    log_content: bool = False


class OllamaParams(PluginParams):
    model: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    template: str | None = None
    system: str | None = None
    format: Any = None
    options: dict[str, Any] = Field(default_factory=dict)
    keep_alive: str | int | None = None
    stream: bool = True
    fallback_models: list[str] = Field(default_factory=list)
    require_gpu: bool = False


class ScrapeExtract(PluginParams):
    type: Literal["html", "text", "links", "json"] = "html"
    selector: str | None = None
    multiple: bool = True
    attribute: str | None = None


class WebScraperParams(PluginParams):
    url: str
    extract: ScrapeExtract = Field(default_factory=ScrapeExtract)
    follow: bool = False
    max_pages: int = Field(1, ge=1)
    respect_robots_txt: bool = True


RESERVED: tuple[Plugin, ...] = (
    Plugin(
        name="litellm.generate",
        aliases=("litellm", "llm.generate"),
        params_model=LiteLLMParams,
        run=None,
        description="Generate text with LiteLLM (routing, fallbacks, cost).",
        pending="the LiteLLM plugin",
    ),
    Plugin(
        name="ollama.generate",
        aliases=("ollama",),
        params_model=OllamaParams,
        run=None,
        description="Generate text with a local Ollama model.",
        pending="the Ollama plugin",
    ),
    Plugin(
        name="ollama.chat",
        params_model=OllamaParams,
        run=None,
        description="Chat with a local Ollama model.",
        pending="the Ollama plugin",
    ),
    Plugin(
        name="web_scraper",
        aliases=("scrape",),
        params_model=WebScraperParams,
        run=None,
        description="Crawl and extract pages with Scrapy.",
        pending="the Scrapy plugin",
    ),
)
