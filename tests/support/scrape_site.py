"""A real HTTP site on loopback for the crawl tests and bench/scrape.py: pages linking to each
other, a robots.txt that disallows /private/, a 429 with Retry-After, slow pages, redirects to
refused addresses. Every request is logged with a timestamp and the address it arrived on.

TCP_NODELAY + one write per response: otherwise Nagle + delayed ACK add ~40 ms per request on
loopback; a listen backlog of 128, because socketserver's 5 drops SYNs when a crawler opens 8+
connections at once (1 s SYN-retransmit stalls).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hit:
    t: float  # time.monotonic()
    host: str  # the server address the request arrived on (127.0.0.1, 127.0.0.2, ...)
    port: int
    path: str
    via_proxy: str | None = None


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits: list[Hit] = []

    def add(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def paths(self, host: str | None = None) -> list[str]:
        with self._lock:
            return [h.path for h in self.hits if host is None or h.host == host]

    def clear(self) -> None:
        with self._lock:
            self.hits.clear()

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)


def html(title: str, links: list[str], extra: str = "") -> bytes:
    items = "".join(f'<li><a href="{h}">{h}</a></li>' for h in links)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f'<h1 class="title">{title}</h1><nav><ul>{items}</ul></nav>{extra}</body></html>'
    ).encode()


def _product(name: str, price: str) -> str:
    name_span = f'<span class="name">{name}</span>'
    return f'<div class="product">{name_span}<span class="price">{price}</span></div>'


Route = Callable[["Handler"], tuple[int, dict[str, str], bytes]]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SiteServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        path = self.path
        host, port = self.connection.getsockname()[:2]
        srv.log.add(Hit(time.monotonic(), host, port, path, self.headers.get("X-Via-Proxy")))
        status, headers, body = srv.route(self, path)
        if status == 0:  # drop the connection without answering
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('X',))[0]}"]
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            **headers,
            "Content-Length": str(len(body)),
        }
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)  # one write


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a crawler opening 8+ connections at once
    # gets SYNs dropped and waits for the 1 s SYN retransmit. Seen as +1 s outliers.
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        log: RequestLog,
        router: Callable[[Handler, str], tuple[int, dict[str, str], bytes]],
    ):
        super().__init__((host, 0), Handler)
        self.log = log
        self.route = router  # type: ignore[assignment]
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class ScrapeSite:
    """The functional test site on 127.0.0.1 and 127.0.0.2 (each its own port).

    `robots` mode: normal | 404 | 500 | drop | none (no special robots.txt route: 404 page).
    """

    def __init__(self, robots: str = "normal"):
        self.log = RequestLog()
        self.robots = robots
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.servers = [SiteServer(h, self.log, self.route) for h in ("127.0.0.1", "127.0.0.2")]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        srv = self.servers[0] if host == "127.0.0.1" else self.servers[1]
        return f"http://{host}:{srv.port}{path}"

    def count(self, key: str) -> int:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def __enter__(self) -> ScrapeSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def route(self, h: Handler, path: str) -> tuple[int, dict[str, str], bytes]:
        host, port = h.connection.getsockname()[:2]
        if path == "/robots.txt":
            if self.robots == "normal":
                return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
            if self.robots == "404":
                # a 404 *page* whose body looks like robots rules: does Scrapy parse it?
                return 404, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
            if self.robots == "500":
                return 500, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /\n"
            if self.robots == "drop":
                return 0, {}, b""
        if path == "/":
            links = [f"/page/{i}" for i in range(1, 6)] + [
                "/private/secret",
                "/private/other",
                "/status/404",
                "/redirect-ssrf",
                "/redirect-loopback",
                "/json",
            ]
            return 200, {}, html("Home", links)
        if path.startswith("/page/"):
            n = int(path.rsplit("/", 1)[1])
            links = [f"/page/{(n % 5) + 1}", "/", "/private/secret"]
            extra = (
                _product(f"Widget {n}", f"${n}.99")
                + _product(f"Gadget {n}", f"${n}.49")
                + f"<p>sku=SKU-{n:04d}</p>"
            )
            return 200, {}, html(f"Page {n}", links, extra)
        if path.startswith("/private/"):
            return 200, {}, html("SECRET", [])
        if path == "/status/404":
            return 404, {}, html("Not found", [])
        if path == "/redirect-ssrf":
            return 302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""
        if path == "/redirect-loopback":
            # loopback, same port, but 127.0.0.3 is not in the SSRF allow-list
            return 302, {"Location": f"http://127.0.0.3:{port}/page/1"}, b""
        if path == "/json":
            body = {"data": {"items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if path.startswith("/ratelimited"):
            if self.count(f"{host}{path}") == 1:
                return 429, {"Retry-After": "2"}, html("Too many", [])
            return 200, {}, html("Finally", [])
        if path.startswith("/slow"):
            time.sleep(3)
            return 200, {}, html("Slow", [])
        if path.startswith("/seq/"):  # /seq/<n>: n pages in a chain on this host
            n = int(path.rsplit("/", 1)[1])
            return 200, {}, html(f"Seq {n}", [f"/seq/{n + 1}"] if n < 20 else [])
        return 404, {}, html("Not found", [])


class BenchSite:
    """N pages, each linking to the next few, ~2 KB each; robots.txt allows all but /private/."""

    def __init__(self, pages: int = 500, host: str = "127.0.0.1", backlog: int | None = None):
        self.pages = pages
        self.log = RequestLog()
        pad = "<p>" + ("lorem ipsum dolor sit amet " * 50) + "</p>"
        self._bodies = {
            i: html(f"Bench {i}", [f"/b/{j}" for j in range(i * 4 + 1, min(i * 4 + 5, pages))], pad)
            for i in range(pages)
        }
        if backlog is not None:  # to show what the default backlog of 5 does
            SiteServer.request_queue_size, saved = backlog, SiteServer.request_queue_size
            self.server = SiteServer(host, self.log, self.route)
            SiteServer.request_queue_size = saved
        else:
            self.server = SiteServer(host, self.log, self.route)

    def url(self, path: str = "/b/0") -> str:
        return f"http://{self.server.server_address[0]}:{self.server.port}{path}"

    def stop(self) -> None:
        self.server.stop()

    def route(self, h: Handler, path: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
        if path.startswith("/b/"):
            i = int(path[3:])
            if 0 <= i < self.pages:
                return 200, {}, self._bodies[i]
        return 404, {}, b"nope"
