"""The hub's Prometheus metrics (prometheus-client), one registry per ``Services`` (nothing global).

Series:

- ``consortium_requests_total{deployment, org, status}``: admitted prediction calls per deployment,
  calling organization and HTTP status (from the monitor's totals, read at scrape);
  ``consortium_requests_rejected_total{status}`` for calls refused before admission (no
  credential, no grant, over quota).
- ``consortium_request_latency_seconds{deployment, org}``: latency histogram.
- ``consortium_batch_rows{model}`` / ``consortium_batch_requests{model}``: rows and requests per
  model call of the adaptive batcher.
- ``consortium_jobs{state}`` and ``consortium_job_queue_depth``: read from the job table at scrape.
- ``consortium_federated_rounds_total{strategy}``: incremented by the federation code through
  ``record_federated_round``.
- ``consortium_predictions_logged_total`` / ``consortium_predictions_dropped_total``.

>>> from types import SimpleNamespace
>>> svc = SimpleNamespace(extras={}, session_factory=None)
>>> record_federated_round(svc, "fedavg")
>>> b"consortium_federated_rounds_total{strategy=\\"fedavg\\"} 1.0" in metrics_for(svc).scrape()
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from consortium.monitoring.latency import LATENCY_EDGES_MS

log = logging.getLogger("consortium.metrics")
EXTRA_KEY = "metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)


class _JobCollector(Collector):
    """Job counts by state and the queue depth, read from the database at scrape time."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.svc.session_factory is None:
            return
        from consortium.jobs.queue import counts_by_state

        try:
            with self.svc.session_factory() as s:
                counts = counts_by_state(s)
        except Exception:  # a scrape never fails because the database hiccuped
            log.exception("job counts unavailable")
            return
        g = GaugeMetricFamily("consortium_jobs", "Jobs by state", labels=["state"])
        for state in sorted({"queued", "running", "succeeded", "failed", "cancelled", *counts}):
            g.add_metric([state], counts.get(state, 0))
        yield g
        yield GaugeMetricFamily("consortium_job_queue_depth", "Jobs waiting for a worker",
                                value=counts.get("queued", 0))


class _RequestCollector(Collector):
    """Request counts and latency histograms from the monitor's in-memory totals (read at scrape
    time, so the prediction path only updates a dict under one lock)."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Any]:
        mon = self.svc.extras.get("monitoring")
        reqs = CounterMetricFamily("consortium_requests", "Admitted prediction calls",
                                   labels=["deployment", "org", "status"])
        lat = HistogramMetricFamily("consortium_request_latency_seconds", "Prediction call latency",
                                    labels=["deployment", "org"])
        if mon is not None:
            with mon._lock:
                totals = {k: (list(v.buckets), dict(v.statuses), v.sum_ms) for k, v in mon.totals.items()}
            for (dep, org), (buckets, statuses, sum_ms) in sorted(totals.items()):
                for status, n in sorted(statuses.items()):
                    reqs.add_metric([dep, org, status], n)
                cum, acc = [], 0
                for edge, n in zip(LATENCY_EDGES_MS, buckets):
                    acc += n
                    cum.append((repr(edge / 1000), acc))
                cum.append(("+Inf", sum(buckets)))
                lat.add_metric([dep, org], cum, sum_ms / 1000)
        yield reqs
        yield lat


class HubMetrics:
    """The metric objects of one hub process; children are cached so the hot path skips label lookups."""

    def __init__(self, svc: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rejected = Counter("consortium_requests_rejected", "Prediction calls refused before admission",
                                ["status"], registry=r)
        self.batch_rows = Histogram("consortium_batch_rows", "Rows per model call", ["model"],
                                    buckets=ROW_BUCKETS, registry=r)
        self.batch_requests = Histogram("consortium_batch_requests", "Requests per model call", ["model"],
                                        buckets=ROW_BUCKETS, registry=r)
        self.federated_rounds = Counter("consortium_federated_rounds", "Federated rounds completed",
                                        ["strategy"], registry=r)
        self.logged = Counter("consortium_predictions_logged", "Predictions written to the log", registry=r)
        self.dropped = Counter("consortium_predictions_dropped",
                               "Sampled predictions dropped (log queue full)", registry=r)
        r.register(_JobCollector(svc))
        r.register(_RequestCollector(svc))
        self._children: dict[tuple[str, ...], Any] = {}

    def batch(self, model: str, requests: int, rows: int) -> None:
        key = ("batch", model)
        pair = self._children.get(key)
        if pair is None:
            pair = self._children[key] = (self.batch_rows.labels(model), self.batch_requests.labels(model))
        pair[0].observe(rows)
        pair[1].observe(requests)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)  # type: ignore[no-any-return]


def metrics_for(svc: Any) -> HubMetrics:
    """The process's metrics, created on first use (held in ``svc.extras["metrics"]``)."""
    m = svc.extras.get(EXTRA_KEY)
    if m is None:
        m = svc.extras[EXTRA_KEY] = HubMetrics(svc)
    return m  # type: ignore[no-any-return]


def record_federated_round(svc: Any, strategy: str = "fedavg") -> None:
    """Count one completed federated round (call it from the federation coordinator)."""
    metrics_for(svc).federated_rounds.labels(strategy).inc()
