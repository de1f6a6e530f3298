"""The per-process monitor on the prediction path: sample, enqueue, count; write in the background.

Every prediction gets an id. A sampled one is queued for the log and gets a short stored id
(``prd_`` + 20 hex); any other gets a signed, self-describing id (``consortium.monitoring.ids``)
that carries what was predicted, so feedback works for it with nothing stored. A prediction whose
answer is too long for an id (or not numbers) is queued as well, response only (``sampled``
false), and gets a stored id.

The hot path (``sample_and_log``, ``observe``, ``on_batch``) takes a few microseconds: a random
draw against the deployment's sample rate (held in memory), a MAC over a few dozen bytes or an
append to a bounded queue, and a lock and dict updates for the latency and batch-size histograms
(exported to Prometheus at scrape time). Nothing is serialized there: a background thread, like
the usage meter, wakes every ``interval`` seconds and in one transaction turns the queued
requests and responses into JSON, seals them with the deployment owner's data key (``seal_many``:
one key derivation a flush) into ``prediction_log`` and merges the minute's latency histograms
into ``deployment_latency``; it also reloads sample rates, enforces retention and, every
``check_interval``, evaluates the retraining triggers.

With ``enabled=False`` (``CONSORTIUM_MONITORING=off``) the hooks do nothing but sign ids: no
sampling, no latency or Prometheus counts, no thread (so no background retraining checks).

A deployment's sample rate is unknown until the thread first loads it (within ``interval``);
calls before that are not sampled. Changing the settings through the API updates this process
at once, and other hub replicas within ``config_ttl``.

>>> m = Monitor(None, interval=0)
>>> m.configure("dep_1", 1.0)
>>> pid, logged = m.sample_and_log("dep_1", "org_o", "org_c", "mv_1", "predict", [[1, 2]], {"y": [0]})
>>> pid.startswith("prd_"), logged, m.pending()
(True, True, 1)
>>> m.configure("dep_1", 0.0)
>>> pid, logged = m.sample_and_log("dep_1", "org_o", "org_c", "mv_1", "predict", [[1, 2]],
...                                {"predictions": [0.5]})
>>> m.ids.verify("dep_1", pid).values, logged, m.pending()
([0.5], False, 1)
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import orjson
from sqlalchemy import Table, and_, delete, func, insert, or_, select

from consortium.governance.audit import EventDraft
from consortium.monitoring import latency
from consortium.monitoring.ids import PredictionIds, derive_key
from consortium.monitoring.prometheus import ROW_BUCKETS, HubMetrics, model_label
from consortium.store.tables.base import utcnow
from consortium.store.tables.monitoring import LatencyHistogram, MonitoringConfig, PredictionRecord

if TYPE_CHECKING:
    from consortium.hub import Hub
    from consortium.jobs.submit import SubmitCheck

log = logging.getLogger("consortium.monitoring")
QUEUE_MAX = 20_000
DEFAULT_RETENTION_DAYS = 30
PREDICTION_HEADER = "Consortium-Prediction-Id"  # on /v2 inference responses


@dataclass(slots=True)
class _Logged:
    id: str
    deployment_id: str
    owner_org_id: str
    caller_org_id: str
    version_id: str
    protocol: str
    inputs: Any  # None: response only (not sampled; kept for feedback)
    outputs: Any
    at: float  # time.time()


@dataclass
class _Lat:
    buckets: list[int] = field(default_factory=latency.empty)
    statuses: dict[str, int] = field(default_factory=dict)
    sum_ms: float = 0.0


@dataclass
class _Batches:
    """Model calls of one model: counts per ``ROW_BUCKETS`` bucket of rows and of requests."""

    rows: list[int] = field(default_factory=lambda: [0] * (len(ROW_BUCKETS) + 1))
    requests: list[int] = field(default_factory=lambda: [0] * (len(ROW_BUCKETS) + 1))
    rows_sum: int = 0
    requests_sum: int = 0


def _plain(x: Any) -> Any:
    """JSON for what orjson does not write itself (numpy arrays it cannot take as they are; else the text)."""
    return x.tolist() if isinstance(x, (np.ndarray, np.generic)) else str(x)


def _dumps(doc: Any) -> bytes:
    """The JSON of a logged prediction (orjson: a fraction of ``json``'s cost on float lists)."""
    try:
        return orjson.dumps(doc, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # e.g. keys that are not strings: slower, but never a record that blocks the queue
        return json.dumps(doc, default=_plain).encode()


def _rows(it: _Logged) -> int:
    """Rows of a logged request (or of its response when the request was not kept)."""
    x = it.inputs
    if x is None:
        x = it.outputs.get("predictions") if it.protocol == "predict" else it.outputs
    if isinstance(x, list):
        return len(x)
    if isinstance(x, dict) and x:
        first = next(iter(x.values()))
        return int(first.shape[0]) if isinstance(first, np.ndarray) and first.ndim else 1
    return 1


def new_prediction_id() -> str:
    return f"prd_{secrets.token_hex(10)}"


class Monitor:
    """Sampling, the prediction-log queue, latency aggregation and the background writer."""

    def __init__(self, svc: Hub | None, *, metrics: HubMetrics | None = None, checks: Sequence[SubmitCheck] = (),
                 interval: float = 1.0, config_ttl: float = 5.0, check_interval: float = 60.0,
                 retention_interval: float = 300.0, enabled: bool = True) -> None:
        """On ``svc``'s database and keys (None: in memory only, nothing written), counting in
        ``metrics``; the retraining checks submit through ``checks`` (``Services.submit_checks``).
        ``Services.new_monitor`` builds the hub's."""
        self.svc = svc
        self.enabled = enabled  # False: signed ids only; nothing sampled, counted or written
        if svc is not None:
            self.ids = PredictionIds(derive_key(svc.settings.secret_key),
                                     [derive_key(k) for k in svc.settings.previous_secret_keys])
        else:
            self.ids = PredictionIds(secrets.token_bytes(32))
        self.interval = interval
        self.config_ttl = config_ttl
        self.check_interval = check_interval
        self.retention_interval = retention_interval
        self.metrics = metrics
        self.checks = tuple(checks)
        self._rates: dict[str, float] = {}
        self._unknown: set[str] = set()
        self._queue: deque[_Logged] = deque()
        self._lat: dict[tuple[str, str, str, int], _Lat] = {}  # per minute, until flushed
        # since start, per (deployment name, caller org name): exported to Prometheus at scrape time,
        # so the hot path does not pay for prometheus-client's locks and label lookups
        self.totals: dict[tuple[str, str], _Lat] = {}
        self.batches: dict[str, _Batches] = {}  # per model, since start (also exported at scrape time)
        self.rejections: dict[tuple[str, str, str], int] = {}  # (deployment, caller org, code), since start
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_rates = self._last_check = self._last_retention = time.monotonic()
        # sampling: not the global generator, which training seeds
        self._random = random.Random().random  # noqa: S311 - a sampling rate, no secret
        self._started = False
        self.closed = False

    @property
    def running(self) -> bool:
        """Started (by ``Services.running_monitor``) and not closed."""
        return self._started and not self.closed

    # ------------------------------------------------------------------------ hot path
    def configure(self, deployment_id: str, sample_rate: float) -> None:
        self._rates[deployment_id] = sample_rate
        self._unknown.discard(deployment_id)

    def sample_and_log(self, deployment_id: str, owner_org_id: str, caller_org_id: str, version_id: str,
                       protocol: str, inputs: Any, outputs: Any) -> tuple[str, bool]:
        """The prediction's id, and whether the prediction was sampled into the log.

        ``outputs`` is the ``/predict`` answer (protocol ``predict``) or the output tensors (``v2``);
        the monitor keeps references to ``inputs`` and ``outputs`` until it writes them."""
        if self.enabled:
            rate = self._rates.get(deployment_id)
            if rate is None:
                self._unknown.add(deployment_id)
            elif rate > 0.0 and (rate >= 1.0 or self._random() < rate):
                if len(self._queue) < QUEUE_MAX:
                    pid = new_prediction_id()
                    self._queue.append(_Logged(pid, deployment_id, owner_org_id, caller_org_id, version_id,
                                               protocol, inputs, outputs, time.time()))
                    return pid, True
                if self.metrics is not None:
                    self.metrics.dropped.inc()
        signed = self.ids.sign(deployment_id, version_id, caller_org_id, protocol, outputs)
        if signed is not None:
            return signed, False
        pid = new_prediction_id()  # too long to sign: keep the response so that it can get feedback
        if self.enabled:
            if len(self._queue) < QUEUE_MAX:
                self._queue.append(_Logged(pid, deployment_id, owner_org_id, caller_org_id, version_id,
                                           protocol, None, outputs, time.time()))
            elif self.metrics is not None:
                self.metrics.dropped.inc()
        return pid, False

    def observe(self, deployment_id: str, deployment: str, owner_org_id: str, caller_org_id: str,
                caller_org: str, status: int, seconds: float) -> None:
        """Count one admitted call: per-minute latency histogram (flushed) and process totals (Prometheus)."""
        if not self.enabled:
            return
        ms = seconds * 1000.0
        b = latency.bucket(ms)
        s = str(status)
        key = (deployment_id, owner_org_id, caller_org_id, int(time.time() // 60))
        tkey = (deployment, caller_org)
        with self._lock:
            agg = self._lat.get(key)
            if agg is None:
                agg = self._lat[key] = _Lat()
            tot = self.totals.get(tkey)
            if tot is None:
                tot = self.totals[tkey] = _Lat()
            agg.buckets[b] += 1
            tot.buckets[b] += 1
            agg.statuses[s] = agg.statuses.get(s, 0) + 1
            tot.statuses[s] = tot.statuses.get(s, 0) + 1
            agg.sum_ms += ms
            tot.sum_ms += ms

    def rejected(self, status: int, deployment: str = "", org: str = "") -> None:
        """Count a call refused before admission. ``deployment`` is the resolved deployment's name
        ("" when the name did not resolve) and ``org`` the caller's organization ("" without a
        credential): only names the hub knows, so the Prometheus series stay bounded."""
        if not self.enabled:
            return
        key = (deployment, org, str(status))
        with self._lock:
            self.rejections[key] = self.rejections.get(key, 0) + 1

    def on_batch(self, model: str, requests: int, rows: int) -> None:
        """Count one model call of the batcher: how many requests and rows it served."""
        if not self.enabled:
            return
        rb, qb = bisect_left(ROW_BUCKETS, rows), bisect_left(ROW_BUCKETS, requests)
        model = model_label(model)  # every version of a model in one series
        with self._lock:
            b = self.batches.get(model)
            if b is None:
                b = self.batches[model] = _Batches()
            b.rows[rb] += 1
            b.requests[qb] += 1
            b.rows_sum += rows
            b.requests_sum += requests

    def pending(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------------ background
    def flush(self) -> int:
        """Write queued predictions and latency counts now; returns the predictions written."""
        if self.svc is None:
            return 0
        with self._flush_lock:
            items: list[_Logged] = []
            while self._queue:
                items.append(self._queue.popleft())
            with self._lock:
                lat, self._lat = self._lat, {}
            if not items and not lat:
                return 0
            try:
                self._write(self.svc, items, lat)
            except Exception:
                log.exception("monitoring flush failed; keeping its data for the next flush")
                self._queue.extendleft(reversed(items))
                with self._lock:
                    for k, v in lat.items():
                        cur = self._lat.setdefault(k, _Lat())
                        cur.buckets = latency.merge([cur.buckets, v.buckets])
                        for st, n in v.statuses.items():
                            cur.statuses[st] = cur.statuses.get(st, 0) + n
                        cur.sum_ms += v.sum_ms
                return 0
        if self.metrics is not None and items:
            self.metrics.logged.inc(len(items))
        return len(items)

    def _write(self, hub: Hub, items: list[_Logged], lat: dict[tuple[str, str, str, int], _Lat]) -> None:
        from consortium.governance.encryption import seal_many

        by_owner: dict[str, list[_Logged]] = {}
        for it in items:
            by_owner.setdefault(it.owner_org_id, []).append(it)
        with hub.session_factory() as s:
            rows = []
            for owner, its in by_owner.items():
                sealed = seal_many(hub.keys.data_key(s, owner),
                                   [_dumps({"inputs": it.inputs, "outputs": it.outputs}) for it in its])
                rows += [{"id": it.id, "deployment_id": it.deployment_id, "owner_org_id": owner,
                          "caller_org_id": it.caller_org_id, "version_id": it.version_id, "protocol": it.protocol,
                          "rows": _rows(it), "created_at": datetime.fromtimestamp(it.at, tz=UTC),
                          "sampled": it.inputs is not None, "payload": payload}
                         for it, payload in zip(its, sealed, strict=True)]
            if rows:
                s.execute(insert(cast(Table, PredictionRecord.__table__)), rows)  # Core: no ORM bulk overhead
            for (dep, owner, org, minute), agg in lat.items():
                at = datetime.fromtimestamp(minute * 60, tz=UTC)
                row = s.get(LatencyHistogram, (dep, org, at), with_for_update=True)
                if row is None:
                    s.add(LatencyHistogram(deployment_id=dep, caller_org_id=org, minute=at, owner_org_id=owner,
                                           buckets=agg.buckets, statuses=agg.statuses, latency_sum_ms=agg.sum_ms))
                else:
                    row.buckets = latency.merge([row.buckets, agg.buckets])
                    row.statuses = {k: row.statuses.get(k, 0) + agg.statuses.get(k, 0)
                                    for k in {*row.statuses, *agg.statuses}}
                    row.latency_sum_ms += agg.sum_ms
            s.commit()

    def reload_rates(self) -> None:
        ids = set(self._rates) | set(self._unknown)
        if not ids or self.svc is None:
            return
        with self.svc.session_factory() as s:
            found = {r.deployment_id: float((r.settings or {}).get("sample_rate", 0.0))
                     for r in s.scalars(select(MonitoringConfig).where(MonitoringConfig.deployment_id.in_(ids)))}
        for dep in ids:
            self.configure(dep, found.get(dep, 0.0))

    def tick(self) -> None:
        """One round of background work (the thread calls it every ``interval``)."""
        self.flush()
        if self.svc is None:  # in memory only: nothing to reload, expire or check
            return
        now = time.monotonic()
        if self._unknown or now - self._last_rates >= self.config_ttl:
            self._last_rates = now
            self.reload_rates()
        if now - self._last_retention >= self.retention_interval:
            self._last_retention = now
            with self.svc.session_factory() as s:
                _, events = purge_prediction_logs(s)
                self.svc.audit_in(s, events)  # each purge is audited with it (issue 19)
                s.commit()
        if now - self._last_check >= self.check_interval:
            self._last_check = now
            from consortium.monitoring.retrain import check_all

            check_all(self.svc, self.checks)

    def start(self) -> None:
        self._started = True
        if self.svc is not None and self.enabled:
            with self.svc.session_factory() as s:  # every configured rate, so sampling starts at once
                for r in s.scalars(select(MonitoringConfig)):
                    self.configure(r.deployment_id, float((r.settings or {}).get("sample_rate", 0.0)))
        if self._thread is None and self.svc is not None and self.interval > 0 and self.enabled:
            self._thread = threading.Thread(target=self._run, name="consortium-monitor", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # keep the thread alive; the next tick retries
                log.exception("monitoring tick failed")

    def close(self) -> None:
        self.closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()


def purge_prediction_logs(session: Any, now: datetime | None = None) -> tuple[int, list[EventDraft]]:
    """Delete logged predictions older than their deployment's ``retention_days``; returns the rows
    deleted and one audit event per deployment purged (its owner sees it)."""
    now = now or utcnow()
    configured = {r.deployment_id: int((r.settings or {}).get("retention_days", DEFAULT_RETENTION_DAYS))
                  for r in session.scalars(select(MonitoringConfig))}
    by_days: dict[int, list[str]] = {}
    for dep, days in configured.items():
        by_days.setdefault(days, []).append(dep)
    old = PredictionRecord.created_at < now - timedelta(days=DEFAULT_RETENTION_DAYS)
    conds = [and_(PredictionRecord.deployment_id.in_(deps), PredictionRecord.created_at < now - timedelta(days=days))
             for days, deps in by_days.items()]
    conds.append(and_(old, PredictionRecord.deployment_id.not_in(list(configured))) if configured else old)
    expired = or_(*conds)
    groups = session.execute(select(PredictionRecord.deployment_id, PredictionRecord.owner_org_id, func.count())
                             .where(expired).group_by(PredictionRecord.deployment_id,
                                                      PredictionRecord.owner_org_id)).all()
    if not groups:
        return 0, []
    deleted = session.execute(delete(PredictionRecord).where(expired)).rowcount or 0
    events = [EventDraft("retention.purge_prediction_log", actor_org_id=owner, resource_type="deployment",
                         resource_id=dep, resource_org_id=owner, request_id="retention",
                         details={"rows": int(n), "days": configured.get(dep, DEFAULT_RETENTION_DAYS)})
              for dep, owner, n in groups]
    return int(deleted), events


def enforce_retention(session: Any, now: datetime | None = None) -> int:
    """``purge_prediction_logs`` without its audit events (the monitor writes them); returns rows deleted."""
    return purge_prediction_logs(session, now)[0]
