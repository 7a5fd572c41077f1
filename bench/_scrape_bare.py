"""bench/scrape.py's baseline: a bare, idiomatic Scrapy spider in a process of its own.

The same work as the plugin's crawl: robots.txt obeyed, every link followed, one item (url and
title) per page written as JSON Lines (Scrapy's FEEDS), Scrapy's default concurrency.
Usage: python bench/_scrape_bare.py START_URL ITEMS_PATH
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response


class BareSpider(scrapy.Spider):
    name = "bare"

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        yield {"url": response.url, "title": response.css("title::text").get()}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse)


def main() -> None:
    start, items = sys.argv[1], sys.argv[2]
    process = CrawlerProcess(
        {
            "ROBOTSTXT_OBEY": True,
            "LOG_LEVEL": "INFO",
            "TELNETCONSOLE_ENABLED": False,
            "FEEDS": {items: {"format": "jsonlines", "overwrite": True}},
        }
    )
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, start_urls=[start])
    process.start()
    assert crawler.stats is not None
    print(f"BARE items={crawler.stats.get_value('item_scraped_count', 0)}")


if __name__ == "__main__":
    main()
