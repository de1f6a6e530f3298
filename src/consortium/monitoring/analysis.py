"""What the monitoring API answers for one deployment: request figures over a window, input drift,
live quality from feedback, and time series of latency, drift and accuracy for plots.

Every function takes ``caller_org_id``: None for the owner (everything), or a calling
organization, which then sees its own calls and feedback only. Drift reads the logged inputs, so
only the owner gets it (the routes enforce that).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.governance.identity import org_by_id
from consortium.governance.keys import KeyService
from consortium.monitoring import latency
from consortium.monitoring.config import MonitorSettings
from consortium.monitoring.drift import drift_report
from consortium.monitoring.feedback import live_quality
from consortium.monitoring.predictions import decode, model_inputs, recent
from consortium.serving.hub.deployments import resolve_version
from consortium.serving.hub.usage import usage_rows
from consortium.store.tables.base import utcnow
from consortium.store.tables.monitoring import Feedback, LatencyHistogram
from consortium.store.tables.registry import Deployment, ModelVersion


def _latency_rows(session: Session, dep_id: str, since: datetime,
                  caller_org_id: str | None) -> list[LatencyHistogram]:
    q = select(LatencyHistogram).where(LatencyHistogram.deployment_id == dep_id, LatencyHistogram.minute >= since)
    if caller_org_id is not None:
        q = q.where(LatencyHistogram.caller_org_id == caller_org_id)
    return list(session.scalars(q))


def request_stats(session: Session, d: Deployment, minutes: int, caller_org_id: str | None) -> dict[str, Any]:
    """Requests, errors, rejections, latency percentiles, statuses and calls per organization."""
    since = utcnow() - timedelta(minutes=minutes)
    usage = usage_rows(session, d.id, caller_org_id=caller_org_id, since=since, limit=1_000_000)
    lat = _latency_rows(session, d.id, since, caller_org_id)
    names: dict[str, str] = {}

    def org(oid: str) -> str:
        if oid not in names:
            names[oid] = org_by_id(session, oid).name
        return names[oid]

    per_org: dict[str, dict[str, Any]] = {}
    for r in usage:
        t = per_org.setdefault(org(r.caller_org_id), {"requests": 0, "errors": 0, "rejected": 0})
        t["requests"] += r.count
        t["errors"] += r.errors
        t["rejected"] += r.rejected
    statuses: dict[str, int] = {}
    for h in lat:
        for k, n in (h.statuses or {}).items():
            statuses[k] = statuses.get(k, 0) + n
    for oid in {h.caller_org_id for h in lat}:
        per_org.setdefault(org(oid), {"requests": 0, "errors": 0, "rejected": 0}).update(
            latency.summary(latency.merge(h.buckets for h in lat if h.caller_org_id == oid)))
    requests = sum(r.count for r in usage)
    errors = sum(r.errors for r in usage)
    return {"deployment": d.name, "minutes": minutes, "requests": requests, "errors": errors,
            "rejected": sum(r.rejected for r in usage),
            "error_rate": round(errors / requests, 4) if requests else None,
            "requests_per_second": round(requests / (minutes * 60), 3),
            **latency.summary(latency.merge(h.buckets for h in lat)), "statuses": statuses, "orgs": per_org}


def current_drift(session: Session, keys: KeyService, d: Deployment, settings: MonitorSettings,
                  since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """Drift of the newest ``settings.drift.window`` logged inputs of the version served now."""
    v = resolve_version(session, d)
    return _drift_of(session, keys, d, v, settings, since, until)


def _drift_of(session: Session, keys: KeyService, d: Deployment, v: ModelVersion, settings: MonitorSettings,
              since: datetime | None, until: datetime | None) -> dict[str, Any]:
    recs = recent(session, d.id, limit=settings.drift.window, version_id=v.id, since=since, until=until,
                  sampled=True)
    docs = [(r.protocol, decode(session, keys, r)) for r in recs]
    X = model_inputs(v, docs)
    rep = drift_report(v.reference_stats, X, settings.drift.model_dump())
    return {"deployment": d.name, "version": v.version, "window": settings.drift.window,
            "logged_predictions": len(recs), **rep}


def quality(session: Session, d: Deployment, minutes: int | None, caller_org_id: str | None) -> dict[str, Any]:
    """Live accuracy (or MSE) from feedback on the version served now, against its test-set figure."""
    v = resolve_version(session, d)
    since = utcnow() - timedelta(minutes=minutes) if minutes else None
    live = live_quality(session, d.id, since=since, caller_org_id=caller_org_id, version_id=v.id)
    metric = "mse" if v.task == "regression" else "accuracy"
    test = (v.metrics or {}).get(metric)
    out = {"deployment": d.name, "version": v.version, "metric": metric, "minutes": minutes,
           "labelled_rows": live["labelled_rows"], "reports": live["reports"], "live": live[metric],
           "test": round(float(test), 4) if isinstance(test, (int, float)) else None}
    out["change"] = round(out["live"] - out["test"], 4) if out["live"] is not None and out["test"] is not None else None
    return out


def timeseries(session: Session, keys: KeyService, d: Deployment, metric: str, minutes: int, step: int,
               caller_org_id: str | None, settings: MonitorSettings) -> dict[str, Any]:
    """Points every ``step`` minutes over the last ``minutes``: latency (p50/p95/p99, requests),
    accuracy (live accuracy or MSE, labelled rows) or drift (status, max PSI/KS; owner only)."""
    now = utcnow()
    start = now - timedelta(minutes=minutes)
    edges = [start + timedelta(minutes=step * i) for i in range(minutes // step + 1)]
    if edges[-1] < now:
        edges.append(now)
    points: list[dict[str, Any]] = []
    if metric == "latency":
        rows = _latency_rows(session, d.id, start, caller_org_id)
        for a, b in pairwise(edges):
            sel = [r.buckets for r in rows if a <= r.minute < b]
            counts = latency.merge(sel)
            points.append({"t": a, "requests": sum(counts), **latency.summary(counts)})
    elif metric == "accuracy":
        q = select(Feedback).where(Feedback.deployment_id == d.id, Feedback.created_at >= start)
        if caller_org_id is not None:
            q = q.where(Feedback.caller_org_id == caller_org_id)
        fbs = list(session.scalars(q))
        for a, b in pairwise(edges):
            window = [f for f in fbs if a <= f.created_at < b]
            n = sum(f.n for f in window)
            points.append({"t": a, "labelled_rows": n,
                           "accuracy": round(sum(f.correct for f in window) / n, 4) if n else None,
                           "mse": round(sum(f.sq_error for f in window) / n, 6) if n else None})
    else:
        v = resolve_version(session, d)
        for a, b in pairwise(edges):
            rep = _drift_of(session, keys, d, v, settings, a, b)
            points.append({"t": a, "rows": rep["rows"], "status": rep["status"],
                           "max_psi": rep.get("max_psi"), "max_ks": rep.get("max_ks")})
    return {"deployment": d.name, "metric": metric, "minutes": minutes, "step_minutes": step, "points": points}
