"""The Prometheus client side of the metrics: a collector that refreshes and renders the state."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dagster as dg
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from resources.observability.metrics import (
    DEFAULT_HORIZON_SECONDS,
    DEFAULT_STATE_NAME,
    Family,
    Histogram,
    families,
    live_runs,
    refresh,
)
from resources.policy.store import PolicyStore


def to_prometheus(family: Family) -> Metric:
    labels = list(family.labels)
    metric: Metric
    if family.kind == "histogram":
        histogram = HistogramMetricFamily(family.name, family.help, labels=labels)
        for values, h in family.samples:
            assert isinstance(h, Histogram)
            histogram.add_metric(list(values), buckets=h.cumulative(), sum_value=h.sum)
        return histogram
    if family.kind == "counter":
        metric = CounterMetricFamily(family.name, family.help, labels=labels)
    else:
        metric = GaugeMetricFamily(family.name, family.help, labels=labels)
    for values, value in family.samples:
        metric.add_metric(list(values), float(value))
    return metric


class MaestroCollector(Collector):
    """Each scrape counts what is new in the instance and the store (one scrape at a time)."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        store: PolicyStore,
        state_name: str = DEFAULT_STATE_NAME,
        horizon: float = DEFAULT_HORIZON_SECONDS,
    ):
        self.instance, self.store = instance, store
        self.state_name, self.horizon = state_name, horizon
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        """Count what the instance holds before the first scrape (a first run over a long
        history may take longer than Prometheus waits for a scrape)."""
        with self._lock:
            refresh(self.instance, self.store, self.state_name, self.horizon)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            started = time.monotonic()
            state = refresh(self.instance, self.store, self.state_name, self.horizon)
            live = live_runs(self.instance)
            took = time.monotonic() - started
        for family in families(state, live):
            yield to_prometheus(family)
        scrape = GaugeMetricFamily(
            "maestro_metrics_scrape_duration_seconds",
            "How long reading the instance and the store took for this scrape.",
        )
        scrape.add_metric([], took)
        yield scrape
