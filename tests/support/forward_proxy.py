"""A small forward HTTP proxy on loopback (absolute-URI GET only), for the proxy-rotation tests:
it tags each request it forwards with `X-Via-Proxy: <name>`, so the site's log shows which
proxy carried it."""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        with self.server.lock:
            self.server.seen.append(self.path)
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(
            "GET",
            target or "/",
            headers={
                "X-Via-Proxy": self.server.name,
                "User-Agent": self.headers.get("User-Agent", ""),
            },
        )
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        head = [f"HTTP/1.1 {resp.status} {resp.reason}"]
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "keep-alive"):
                head.append(f"{k}: {v}")
        head += [f"Content-Length: {len(body)}", f"Via: 1.1 {self.server.name}"]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


class ForwardProxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # default 5 drops SYNs under a burst of connections

    def __init__(self, name: str):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.name = name
        self.seen: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def closed_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
