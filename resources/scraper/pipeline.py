"""Items -> JSON Lines file (one ``write`` per item; no FeedExporter machinery)."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class JsonLinesPipeline:
    def __init__(self, crawler: Crawler):
        self.path: str = crawler.settings["MAESTRO_ITEMS_PATH"]
        self.items = 0
        self.bytes = 0
        self._fh: IO[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JsonLinesPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close_spider

    def close_spider(self) -> None:
        if self._fh is not None:
            self._fh.close()

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        assert self._fh is not None
        line = json.dumps(item, ensure_ascii=False, default=str) + "\n"
        self._fh.write(line)
        self.items += 1
        self.bytes += len(line.encode("utf-8"))
        return item
