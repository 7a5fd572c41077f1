"""The crawl engine behind the `web_scraper` step: Scrapy, one subprocess per crawl.

The parent side (`launcher`, `spec`, `extraction`, `ssrf`) imports no Scrapy, so the code
location and the Dagster step stay lean; `python -m resources.scraper.runner` is the child,
and only it (with `settings`, `spider`, `middlewares`, `resolver`, `pipeline`, `summary`)
imports Scrapy and Twisted. Keep this file free of imports: the child starts through it.
"""
