"""`maestro metrics serve`: the Prometheus endpoint over the collector in resources/observability.

Every scrape of `/metrics` reads what the instance and the policy store gained since the last
one (resources/observability/metrics.py); nothing is kept only in this process, so restarting
the server, or running two of them on one state name, never counts anything twice.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server

from resources.observability.exposition import MaestroCollector
from resources.policy.store import store_for

DEFAULT_PORT = 9464
"""The port OpenTelemetry's Prometheus exporter registered; Grafana Agent and Alloy know it."""


def registry_for(collector: MaestroCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def serve(
    instance: dg.DagsterInstance,
    host: str,
    port: int,
    state_name: str,
    horizon: float,
    ready: Callable[[str], None],
) -> None:
    """Catch up with the instance, then serve until SIGINT or SIGTERM; `ready` gets the URL
    once the port is bound."""
    collector = MaestroCollector(instance, store_for(instance), state_name, horizon)
    collector.catch_up()
    server, thread = start_http_server(port, addr=host, registry=registry_for(collector))
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        bound_port = server.server_address[1]
        ready(f"http://{host}:{bound_port}/metrics")
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
