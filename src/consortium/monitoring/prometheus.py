"""The hub's Prometheus metrics (prometheus-client), one registry per ``Services`` (nothing global).

Series:

- ``consortium_requests_total{deployment, org, status}``: admitted prediction calls per deployment,
  calling organization and HTTP status (from the monitor's totals, read at scrape);
  ``consortium_requests_rejected_total{status}`` for calls refused before admission (no
  credential, no grant, over quota).
- ``consortium_request_latency_seconds{deployment, org}``: latency histogram.
- ``consortium_batch_rows{model}`` / ``consortium_batch_requests{model}``: rows and requests per
  model call of the adaptive batcher (from the monitor's totals, read at scrape).
- ``consortium_jobs{state}`` and ``consortium_job_queue_depth``: read from the job table at scrape.
- ``consortium_federated_rounds_total{strategy}``: rounds completed by federated jobs, read from
  the jobs' progress events at scrape (rounds run in worker processes, not in the hub process
  that serves ``/metrics``; deleting a job lowers it, which Prometheus takes as a counter reset).
- ``consortium_predictions_logged_total`` / ``consortium_predictions_dropped_total``.

With ``CONSORTIUM_MONITORING=off`` the request, latency, batch and log series stay empty.

>>> from types import SimpleNamespace
>>> svc = SimpleNamespace(monitor=None, session_factory=None)  # a hub's: Services.metrics
>>> b"consortium_predictions_logged_total 0.0" in HubMetrics(svc).scrape()
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consortium.monitoring.latency import LATENCY_EDGES_MS

log = logging.getLogger("consortium.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)


def federated_rounds(session: Session) -> dict[str, int]:
    """Rounds completed by federated jobs, per strategy (progress events with ``round`` >= 1)."""
    from consortium.store.tables.jobs import Job, JobEvent

    strategy = Job.recipe[("federated", "strategy")].as_string()
    q = (select(strategy, func.count()).select_from(JobEvent).join(Job, Job.id == JobEvent.job_id)
         .where(Job.kind == "federated", JobEvent.kind == "progress", JobEvent.data["round"].as_integer() >= 1)
         .group_by(strategy))
    return {str(k or "unknown"): int(n) for k, n in session.execute(q)}


class _JobCollector(Collector):
    """Job counts by state, the queue depth and federated rounds, read from the database at scrape time."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Any]:
        if self.svc.session_factory is None:
            return
        from consortium.jobs.queue import counts_by_state

        try:
            with self.svc.session_factory() as s:
                counts = counts_by_state(s)
                rounds = federated_rounds(s)
        except Exception:  # a scrape never fails because the database hiccuped
            log.exception("job counts unavailable")
            return
        c = CounterMetricFamily("consortium_federated_rounds", "Rounds completed by federated jobs",
                                labels=["strategy"])
        for strategy, n in sorted(rounds.items()):
            c.add_metric([strategy], n)
        yield c
        g = GaugeMetricFamily("consortium_jobs", "Jobs by state", labels=["state"])
        for state in sorted({"queued", "running", "succeeded", "failed", "cancelled", *counts}):
            g.add_metric([state], counts.get(state, 0))
        yield g
        yield GaugeMetricFamily("consortium_job_queue_depth", "Jobs waiting for a worker",
                                value=counts.get("queued", 0))


def _add_histogram(family: HistogramMetricFamily, labels: list[str], edges: tuple[float, ...],
                   buckets: list[int], total: float) -> None:
    """Per-bucket counts (one more than ``edges``: the overflow) as Prometheus' cumulative buckets."""
    cum, acc = [], 0
    for edge, n in zip(edges, buckets, strict=False):  # the overflow bucket has no edge
        acc += n
        cum.append((repr(float(edge)), acc))
    cum.append(("+Inf", sum(buckets)))
    family.add_metric(labels, cum, total)


class _RequestCollector(Collector):
    """Request counts, latency and batch-size histograms from the monitor's in-memory totals (read
    at scrape time, so the prediction path only updates a dict under one lock)."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, HistogramMetricFamily, HistogramMetricFamily,
                             HistogramMetricFamily]:
        return (CounterMetricFamily("consortium_requests", "Admitted prediction calls",
                                    labels=["deployment", "org", "status"]),
                HistogramMetricFamily("consortium_request_latency_seconds", "Prediction call latency",
                                      labels=["deployment", "org"]),
                HistogramMetricFamily("consortium_batch_rows", "Rows per model call", labels=["model"]),
                HistogramMetricFamily("consortium_batch_requests", "Requests per model call", labels=["model"]))

    def describe(self) -> Iterator[Any]:
        """The series, without reading the monitor (the registry describes at construction, before
        ``Services`` has its monitor)."""
        yield from self._families()

    def collect(self) -> Iterator[Any]:
        mon = self.svc.monitor
        reqs, lat, rows, calls = self._families()
        if mon is not None:
            with mon._lock:
                totals = {k: (list(v.buckets), dict(v.statuses), v.sum_ms) for k, v in mon.totals.items()}
                batches = {k: (list(v.rows), list(v.requests), v.rows_sum, v.requests_sum)
                           for k, v in mon.batches.items()}
            for (dep, org), (buckets, statuses, sum_ms) in sorted(totals.items()):
                for status, n in sorted(statuses.items()):
                    reqs.add_metric([dep, org, status], n)
                _add_histogram(lat, [dep, org], tuple(e / 1000 for e in LATENCY_EDGES_MS), buckets, sum_ms / 1000)
            for model, (r, q, r_sum, q_sum) in sorted(batches.items()):
                _add_histogram(rows, [model], ROW_BUCKETS, r, r_sum)
                _add_histogram(calls, [model], ROW_BUCKETS, q, q_sum)
        yield from (reqs, lat, rows, calls)


class HubMetrics:
    """The counters of one hub process that are not read from the monitor or the database
    (``Services.metrics``), and the collectors that read those at scrape time."""

    def __init__(self, svc: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rejected = Counter("consortium_requests_rejected", "Prediction calls refused before admission",
                                ["status"], registry=r)
        self.logged = Counter("consortium_predictions_logged", "Predictions written to the log", registry=r)
        self.dropped = Counter("consortium_predictions_dropped",
                               "Sampled predictions dropped (log queue full)", registry=r)
        r.register(_JobCollector(svc))
        r.register(_RequestCollector(svc))

    def scrape(self) -> bytes:
        return generate_latest(self.registry)


