"""The hub's Prometheus metrics (prometheus-client), one registry per ``Services`` (nothing global
but prometheus-client's own switch that drops the ``_created`` series). docs/metrics.md lists
every series and how many each deployment x calling organization pair makes.

Series (label values are bounded: deployment and organization names the hub knows, route
templates, HTTP status codes, job kinds, strategies, model names without their version):

- ``consortium_requests_total{deployment, org, code}``: admitted prediction calls per deployment,
  calling organization and HTTP status code (from the monitor's totals, read at scrape).
- ``consortium_requests_rejected_total{deployment, org, code}``: calls refused before admission.
  An over-quota 429 names the deployment and the caller's organization; a refusal before the
  deployment is resolved (no credential, unknown name) has ``deployment=""`` (and ``org=""``
  without a credential), so a caller cannot mint label values by calling made-up names.
- ``consortium_request_latency_seconds{deployment, org}``: latency histogram, ``EXPORT_EDGES_MS``
  (6 buckets: the monitor's finer buckets merged at scrape).
- ``consortium_batch_rows{model}`` / ``consortium_batch_requests{model}``: rows and requests per
  model call of the adaptive batcher, ``model`` = ``org/model`` (every version together).
- ``consortium_http_requests_total{method, route, code}`` and
  ``consortium_http_request_duration_seconds{method, route}``: the rest of the API and the UI,
  by route template (``/api/v1/jobs/{job_id}``; ``unmatched`` for a path no route has).
- ``consortium_jobs{state}``, ``consortium_job_queue_depth``, ``consortium_federated_rounds_total{strategy}``,
  ``consortium_job_duration_seconds{kind, state}`` (started to finished) and
  ``consortium_federated_round_duration_seconds{strategy}``: read from the job tables at scrape
  (jobs run in worker processes, not in the process that serves ``/metrics``); the duration
  histograms count the jobs in the database and the rounds this process has read, incrementally.
- ``consortium_predictions_logged_total`` / ``consortium_predictions_dropped_total``.
- ``process_*`` (CPU, memory, open files), ``python_info`` and ``python_gc_*``: prometheus-client's
  process, platform and GC collectors.

With ``CONSORTIUM_MONITORING=off`` the request, latency, batch and log series stay empty.

>>> from types import SimpleNamespace
>>> svc = SimpleNamespace(monitor=None, session_factory=None)  # a hub's: Services.metrics
>>> text = HubMetrics(svc).scrape()
>>> b"consortium_predictions_logged_total 0.0" in text, b"_created" in text
(True, False)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consortium.monitoring.latency import LATENCY_EDGES_MS

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("consortium.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)
# The exported latency buckets (ms): a subset of the monitor's edges, so merging is exact. Six
# buckets (+Inf included), _sum and _count: 8 series per deployment x organization pair.
EXPORT_EDGES_MS: tuple[float, ...] = (5, 25, 100, 500, 2500)
API_BUCKETS_S = (0.005, 0.025, 0.1, 0.5, 2.5)
JOB_BUCKETS_S = (10, 60, 300, 1800, 7200, 28800)
ROUND_BUCKETS_S = (1, 5, 15, 60, 300, 1800)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PREDICTION_SUFFIXES = ("/predict", "/infer")  # counted per deployment instead (the serving front's)

assert set(EXPORT_EDGES_MS) <= set(LATENCY_EDGES_MS)  # noqa: S101 - a merge of whole buckets
prometheus_client.disable_created_metrics()  # no *_created series (they double every counter's)


def series_per_pair(codes: int = 1) -> int:
    """Series one deployment x calling organization pair makes: the latency histogram's buckets,
    _sum and _count, plus one ``consortium_requests_total`` per status code seen (usually 1-3).

    >>> series_per_pair(), series_per_pair(codes=3)
    (9, 11)
    """
    return len(EXPORT_EDGES_MS) + 1 + 2 + codes


def model_label(label: str) -> str:
    """``org/model:version`` -> ``org/model``: one series per model, whatever its version count.

    >>> model_label("st-marys/digits:12"), model_label("st-marys/digits")
    ('st-marys/digits', 'st-marys/digits')
    """
    head, sep, tail = label.rpartition(":")
    return head if sep and tail.isdigit() else label


def federated_rounds(session: Session) -> dict[str, int]:
    """Rounds completed by federated jobs, per strategy (progress events with ``round`` >= 1)."""
    from consortium.store.tables.jobs import Job, JobEvent

    strategy = Job.recipe[("federated", "strategy")].as_string()
    q = (select(strategy, func.count()).select_from(JobEvent).join(Job, Job.id == JobEvent.job_id)
         .where(Job.kind == "federated", JobEvent.kind == "progress", JobEvent.data["round"].as_integer() >= 1)
         .group_by(strategy))
    return {str(k or "unknown"): int(n) for k, n in session.execute(q)}


class _Buckets:
    """A cumulative histogram kept here (home-made: the durations are read from the database at
    scrape time, not observed by this process, so prometheus-client's Histogram does not fit)."""

    def __init__(self, edges: tuple[float, ...]) -> None:
        self.edges = edges
        self.counts = [0] * (len(edges) + 1)
        self.total = 0.0

    def add(self, v: float) -> None:
        i = next((k for k, e in enumerate(self.edges) if v <= e), len(self.edges))
        self.counts[i] += 1
        self.total += v

    def into(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        _add_histogram(family, labels, self.edges, self.counts, self.total)


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else max(0.0, (b - a).total_seconds())


class _JobCollector(Collector):
    """Job counts by state, the queue depth, federated rounds, and job and round durations, read
    from the database at scrape time (the durations incrementally: each scrape reads only the jobs
    and round events that ended since the previous one)."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], _Buckets] = {}
        self._rounds: dict[str, _Buckets] = {}
        self._job_mark: tuple[datetime, set[str]] = (EPOCH, set())  # newest finished_at seen, ids at it
        self._event_mark = 0  # newest round event id seen
        self._last_round: OrderedDict[str, datetime] = OrderedDict()  # job id -> its last round's time

    def _read_durations(self, s: Session) -> None:
        from consortium.store.tables.jobs import Job, JobEvent

        since, seen = self._job_mark  # the first scrape reads every finished job once, then only newer ones
        rows = s.execute(select(Job.id, Job.kind, Job.state, Job.started_at, Job.finished_at)
                         .where(Job.finished_at.is_not(None), Job.finished_at >= since)
                         .order_by(Job.finished_at)).all()
        for jid, kind, state, started, finished in rows:
            if jid in seen or finished is None:
                continue
            if finished > since:
                since, seen = finished, set()
            seen.add(jid)
            d = _seconds(started, finished)
            if d is not None:
                self._jobs.setdefault((kind, state), _Buckets(JOB_BUCKETS_S)).add(d)
        self._job_mark = (since, seen)
        strategy = Job.recipe[("federated", "strategy")].as_string()
        ev = s.execute(select(JobEvent.id, JobEvent.job_id, JobEvent.time, strategy)
                       .join(Job, Job.id == JobEvent.job_id)
                       .where(JobEvent.id > self._event_mark, Job.kind == "federated",
                              JobEvent.kind == "progress", JobEvent.data["round"].as_integer() >= 0)
                       .order_by(JobEvent.id).limit(10_000)).all()
        for eid, jid, at, strat in ev:
            self._event_mark = max(self._event_mark, int(eid))
            prev = self._last_round.pop(jid, None)
            if prev is not None:  # round 0 marks training's start; each later event ends a round
                d = _seconds(prev, at)
                if d is not None:
                    self._rounds.setdefault(str(strat or "unknown"), _Buckets(ROUND_BUCKETS_S)).add(d)
            self._last_round[jid] = at
            if len(self._last_round) > 10_000:
                self._last_round.popitem(last=False)

    def describe(self) -> Iterator[Any]:
        return iter(())

    def collect(self) -> Iterator[Any]:
        if self.svc.session_factory is None:
            return
        from consortium.jobs.queue import counts_by_state

        try:
            with self.svc.session_factory() as s, self._lock:
                counts = counts_by_state(s)
                rounds = federated_rounds(s)
                self._read_durations(s)
                jobs = {k: v for k, v in self._jobs.items()}
                round_times = dict(self._rounds)
                dur = HistogramMetricFamily("consortium_job_duration_seconds",
                                            "Finished jobs, started to finished",
                                            labels=["kind", "state"])
                for (kind, state), b in sorted(jobs.items()):
                    b.into(dur, [kind, state])
                rdur = HistogramMetricFamily("consortium_federated_round_duration_seconds",
                                             "Federated rounds, from the previous round's end",
                                             labels=["strategy"])
                for strat, b in sorted(round_times.items()):
                    b.into(rdur, [strat])
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
        yield dur
        yield rdur


def _add_histogram(family: HistogramMetricFamily, labels: list[str], edges: tuple[float, ...],
                   buckets: list[int], total: float) -> None:
    """Per-bucket counts (one more than ``edges``: the overflow) as Prometheus' cumulative buckets."""
    cum, acc = [], 0
    for edge, n in zip(edges, buckets, strict=False):  # the overflow bucket has no edge
        acc += n
        cum.append((repr(float(edge)), acc))
    cum.append(("+Inf", sum(buckets)))
    family.add_metric(labels, cum, total)


def coarse(buckets: list[int]) -> list[int]:
    """The monitor's latency buckets merged into ``EXPORT_EDGES_MS`` (plus the overflow).

    >>> from consortium.monitoring import latency
    >>> b = latency.empty(); b[latency.bucket(0.3)] += 2; b[latency.bucket(30)] += 1; b[-1] += 1
    >>> coarse(b)
    [2, 0, 1, 0, 0, 1]
    """
    out = [0] * (len(EXPORT_EDGES_MS) + 1)
    j = 0
    for i, n in enumerate(buckets):
        edge = LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else float("inf")
        while j < len(EXPORT_EDGES_MS) and edge > EXPORT_EDGES_MS[j]:
            j += 1
        out[j] += n
    return out


class _RequestCollector(Collector):
    """Request counts, latency and batch-size histograms from the monitor's in-memory totals (read
    at scrape time, so the prediction path only updates a dict under one lock)."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily,
                             HistogramMetricFamily, HistogramMetricFamily]:
        return (CounterMetricFamily("consortium_requests", "Admitted prediction calls",
                                    labels=["deployment", "org", "code"]),
                CounterMetricFamily("consortium_requests_rejected",
                                    "Prediction calls refused before admission (429: over quota)",
                                    labels=["deployment", "org", "code"]),
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
        reqs, rejected, lat, rows, calls = self._families()
        if mon is not None:
            with mon._lock:
                totals = {k: (list(v.buckets), dict(v.statuses), v.sum_ms) for k, v in mon.totals.items()}
                batches = {k: (list(v.rows), list(v.requests), v.rows_sum, v.requests_sum)
                           for k, v in mon.batches.items()}
                refused = dict(mon.rejections)
            for (dep, org), (buckets, statuses, sum_ms) in sorted(totals.items()):
                for status, n in sorted(statuses.items()):
                    reqs.add_metric([dep, org, status], n)
                _add_histogram(lat, [dep, org], tuple(e / 1000 for e in EXPORT_EDGES_MS), coarse(buckets),
                               sum_ms / 1000)
            for (dep, org, code), n in sorted(refused.items()):
                rejected.add_metric([dep, org, code], n)
            for model, (r, q, r_sum, q_sum) in sorted(batches.items()):
                _add_histogram(rows, [model], ROW_BUCKETS, r, r_sum)
                _add_histogram(calls, [model], ROW_BUCKETS, q, q_sum)
        yield from (reqs, rejected, lat, rows, calls)


class HubMetrics:
    """The counters of one hub process that are not read from the monitor or the database
    (``Services.metrics``), and the collectors that read those at scrape time."""

    def __init__(self, svc: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.logged = Counter("consortium_predictions_logged", "Predictions written to the log", registry=r)
        self.dropped = Counter("consortium_predictions_dropped",
                               "Sampled predictions dropped (log queue full)", registry=r)
        self.http_requests = Counter("consortium_http_requests", "API and UI requests (not predictions)",
                                     ["method", "route", "code"], registry=r)
        self.http_duration = Histogram("consortium_http_request_duration_seconds",
                                       "API and UI request duration (not predictions)", ["method", "route"],
                                       buckets=API_BUCKETS_S, registry=r)
        r.register(_JobCollector(svc))
        r.register(_RequestCollector(svc))
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=r)  # python_info
        GCCollector(registry=r)  # python_gc_*

    def scrape(self) -> bytes:
        return generate_latest(self.registry)

    def observe_http(self, method: str, route: str, code: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(code)).inc()
        self.http_duration.labels(method, route).observe(seconds)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the route that served the request (``/api/v1/jobs/{job_id}``), or
    ``unmatched``. FastAPI keeps the whole path (every router's prefix) in the effective route
    context it puts in the scope; a route of its own router, in ``scope["route"]``."""
    ctx = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(ctx, "path", None) or getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class ApiRequestMetrics:
    """ASGI middleware: count and time every HTTP request but the predictions (which the monitor
    counts per deployment) under its route template, so that ``/api/v1/jobs/job_1`` and
    ``/api/v1/jobs/job_2`` are one series. A path no route matched is ``unmatched``; an unusual
    method is ``other``: label values stay bounded whatever callers send."""

    def __init__(self, app: ASGIApp, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            if not route.endswith(PREDICTION_SUFFIXES):
                method = scope.get("method", "")
                self.metrics.observe_http(method if method in _METHODS else "other", route, code,
                                          time.perf_counter() - started)
