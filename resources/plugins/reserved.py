"""Names reserved for plugins that ship with later work (scraping).

Their parameters are validated now, so workflows written today compile; running such a step
fails with a clear "not installed yet" error. There is no fake result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from resources.plugins.base import PluginParams, ReservedPlugin


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


class WebScraper(ReservedPlugin[WebScraperParams]):
    name = "web_scraper"
    aliases = ("scrape",)
    description = "Crawl and extract pages with Scrapy."
    params_model = WebScraperParams
    reserved_for = "the Scrapy plugin"


RESERVED: tuple[ReservedPlugin, ...] = (WebScraper(),)
