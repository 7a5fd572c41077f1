"""Names reserved for plugins that ship with later work: none at the moment.

A reserved name's parameters are validated now, so workflows written today compile; running
such a step fails with a clear "not installed yet" error (`ReservedPlugin`). There is no fake
result. `web_scraper`, the last one, has shipped (resources/plugins/web_scraper.py).
"""

from __future__ import annotations

from resources.plugins.base import ReservedPlugin

RESERVED: tuple[ReservedPlugin, ...] = ()
