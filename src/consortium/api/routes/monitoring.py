"""Monitoring: Prometheus ``/metrics``, and per deployment its settings, request figures, drift,
feedback, the prediction log and time series for plots (under ``/api/v1/deployments/{deployment}``).

Who sees what: the owner organization sees everything; an organization holding an ``invoke`` grant
sees its own calls and feedback figures and may report feedback on its own predictions; drift,
the prediction log and the settings are the owner's only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep, Svc, bearer
from consortium.api.pagination import Paged, PageDep
from consortium.api.routes.deployments import DeploymentDep
from consortium.api.schemas.monitoring import (
    DriftReport,
    FeedbackCreate,
    FeedbackReceipt,
    MonitoringPublic,
    MonitoringUpdate,
    PredictionRecordPublic,
    Quality,
    RequestStats,
    Timeseries,
    TriggerCheck,
)
from consortium.errors import ConsortiumError, InvalidInput, Unauthenticated
from consortium.governance.identity import org_by_id
from consortium.governance.roles import Role
from consortium.monitoring import analysis, retrain
from consortium.monitoring.access import Deployment, caller_scope, require_owner
from consortium.monitoring.config import load_settings, save_settings
from consortium.monitoring.feedback import receipt, record_feedback
from consortium.monitoring.ids import STORED
from consortium.monitoring.predictions import predictions_listing, record_view
from consortium.monitoring.prometheus import CONTENT_TYPE
from consortium.store.tables.monitoring import PredictionRecord


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Write what the monitor still holds when the app stops."""
    yield
    app.state.services.close_monitor()


router = APIRouter(prefix="/deployments", tags=["monitoring"])
metrics_router = APIRouter(tags=["monitoring"], lifespan=lifespan)


# ---------------------------------------------------------------------------- /metrics
def _allowed(host: str, allow: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in allow:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


@metrics_router.get("/metrics", response_class=PlainTextResponse)
@rule("metrics")
def prometheus_metrics(request: Request, svc: Svc, ctx: Ctx) -> Response:
    """Prometheus exposition. Open to the addresses in ``CONSORTIUM_METRICS_ALLOW`` (loopback by
    default); from anywhere else it needs a hub operator's bearer token."""
    host = request.client.host if request.client else ""
    if not _allowed(host, svc.settings.metrics_allow):
        cred = bearer(request)
        if cred is None:
            raise Unauthenticated("/metrics from this address needs a hub operator's token",
                                  hint="send 'Authorization: Bearer <token>' or add the scraper's address "
                                       "to CONSORTIUM_METRICS_ALLOW")
        from consortium.governance import credentials

        with svc.session_factory() as s:
            kind, secret = cred
            p = credentials.resolve_token(s, secret) if kind == "token" and not secret.startswith("csm_ses_") \
                else credentials.resolve_session(s, secret, None)
            s.commit()
        ctx.principal = p
        p.require_operator()
    ctx.audit = False
    return Response(svc.metrics.scrape(), media_type=CONTENT_TYPE)


# ---------------------------------------------------------------------------- helpers
def owner_member(dg: DeploymentDep, p: Caller) -> Deployment:
    """The deployment, for a member of its owner organization (checked before any body)."""
    require_owner(dg.deployment, p, "monitoring settings", Role.member)
    return dg.deployment


def _flush_all(svc: Any) -> None:
    """Write this process's pending counts first, so a caller reads its own calls at once."""
    svc.running_monitor().flush()
    svc.serving.meter.flush()


OwnerMember = Annotated[Deployment, Depends(owner_member)]
Minutes = Annotated[int, Query(ge=1, le=10080)]


# ---------------------------------------------------------------------------- settings
def _settings_view(session: Any, d: Deployment) -> dict[str, Any]:
    s, row = load_settings(session, d.id)
    return {"deployment": d.name, **s.model_dump(), "updated_at": row.updated_at if row else None,
            "retrain_triggers": retrain.triggers(session, d)}


@router.get("/{deployment}/monitoring", response_model=MonitoringPublic)
@rule("resource")
def get_monitoring(dg: DeploymentDep, p: Caller, session: SessionDep) -> dict[str, Any]:
    """Sample rate, retention, drift thresholds, the retraining trigger and its recent runs (owner)."""
    require_owner(dg.deployment, p, "monitoring settings")
    return _settings_view(session, dg.deployment)


@router.patch("/{deployment}/monitoring", response_model=MonitoringPublic)
@rule("resource", Role.member)
def set_monitoring(d: OwnerMember, body: MonitoringUpdate, p: Caller, session: SessionDep, svc: Svc,
                   ctx: Ctx) -> dict[str, Any]:
    """Change settings; nested sections merge (``{"retrain": {"enabled": true}}`` keeps the rest)."""
    patch = body.model_dump(exclude_none=True)
    new = save_settings(session, d.id, patch, p.user_id)
    ctx.details = {"changes": patch}
    svc.running_monitor().configure(d.id, new.sample_rate)
    return _settings_view(session, d)


@router.post("/{deployment}/monitoring/check", response_model=TriggerCheck, response_model_exclude_unset=True)
@rule("resource", Role.member)
def check_trigger(d: OwnerMember, session: SessionDep, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """Evaluate the retraining trigger now (it also runs after feedback and in the background)."""
    svc.running_monitor().flush()
    res, draft = retrain.check(session, d, svc.keys, svc.submit_checks)
    if draft is not None:
        ctx.extra.append(draft)
    return res


# ---------------------------------------------------------------------------- figures
@router.get("/{deployment}/metrics", response_model=RequestStats, response_model_exclude_unset=True)
@rule("resource")
def deployment_metrics(dg: DeploymentDep, p: Caller, session: SessionDep, svc: Svc,
                       minutes: Minutes = 60) -> dict[str, Any]:
    """Requests, errors, p50/p95/p99 latency and calls per organization over the last ``minutes``
    (the owner sees every caller; a caller its own calls)."""
    _flush_all(svc)
    return analysis.request_stats(session, dg.deployment, minutes, caller_scope(dg.deployment, p))


@router.get("/{deployment}/drift", response_model=DriftReport, response_model_exclude_unset=True)
@rule("resource")
def drift(dg: DeploymentDep, p: Caller, session: SessionDep, svc: Svc) -> dict[str, Any]:
    """PSI and KS per feature of the newest logged inputs against the training reference (owner)."""
    require_owner(dg.deployment, p, "input drift")
    svc.running_monitor().flush()
    settings, _ = load_settings(session, dg.deployment.id)
    return analysis.current_drift(session, svc.keys, dg.deployment, settings)


@router.get("/{deployment}/timeseries", response_model=Timeseries, response_model_exclude_unset=True)
@rule("resource")
def timeseries(dg: DeploymentDep, p: Caller, session: SessionDep, svc: Svc,
               metric: Literal["latency", "accuracy", "drift"] = "latency", minutes: Minutes = 60,
               step: Annotated[int, Query(ge=1, le=1440)] = 5) -> dict[str, Any]:
    """Points every ``step`` minutes for plots: latency percentiles, live accuracy, or drift (owner)."""
    d = dg.deployment
    if metric == "drift":
        require_owner(d, p, "input drift")
    if minutes // step > 500:
        raise InvalidInput(f"{minutes // step} points is too many", hint="use a larger step (at most 500 points)")
    _flush_all(svc)
    settings, _ = load_settings(session, d.id)
    return analysis.timeseries(session, svc.keys, d, metric, minutes, step, caller_scope(d, p), settings)


# ---------------------------------------------------------------------------- feedback and log
@router.post("/{deployment}/feedback", status_code=201, response_model=FeedbackReceipt,
             response_model_exclude_unset=True)
@rule("resource")
def post_feedback(dg: DeploymentDep, body: FeedbackCreate, p: Caller, session: SessionDep, svc: Svc,
                  ctx: Ctx) -> dict[str, Any]:
    """Report the true label(s) of a prediction: ``label`` for one row, ``labels`` per row. Any
    prediction id this deployment returned works, logged or not; a second report for the same
    prediction replaces the first (``"replaced": true``)."""
    d = dg.deployment
    if (body.label is None) == (body.labels is None):
        raise InvalidInput("send exactly one of 'label' (one row) or 'labels' (one per row)")
    mon = svc.running_monitor()
    if STORED.fullmatch(body.prediction_id):
        mon.flush()  # a prediction logged a moment ago may still be queued
    fb, replaced = record_feedback(session, svc.keys, d, body.prediction_id, p.org_id,
                                   body.labels if body.labels is not None else [body.label], mon.ids)
    ctx.details = {"prediction": fb.prediction_id, "rows": fb.n, "replaced": replaced}
    try:  # a retraining check must not lose the caller's feedback
        with session.begin_nested():
            _, draft = retrain.check(session, d, svc.keys, svc.submit_checks, drift=False)
        if draft is not None:
            ctx.extra.append(draft)
    except (ConsortiumError, SQLAlchemyError):
        pass
    return receipt(session, fb, body.prediction_id, replaced)


@router.get("/{deployment}/feedback", response_model=Quality)
@rule("resource")
def feedback_summary(dg: DeploymentDep, p: Caller, session: SessionDep,
                     minutes: Annotated[int | None, Query(ge=1, le=525600)] = None) -> dict[str, Any]:
    """Live accuracy (or MSE) from feedback on the version served now, against its test-set figure
    (a caller sees the figure over its own feedback)."""
    return analysis.quality(session, dg.deployment, minutes, caller_scope(dg.deployment, p))


@router.get("/{deployment}/predictions", response_model=Paged[PredictionRecordPublic],
            response_model_exclude_unset=True)
@rule("resource")
def prediction_log(dg: DeploymentDep, p: Caller, session: SessionDep, svc: Svc, ctx: Ctx, page: PageDep,
                   payload: bool = True) -> dict[str, Any]:
    """The logged predictions, newest first, decrypted (owner only; the read is audited)."""
    d = dg.deployment
    require_owner(d, p, "prediction log")
    svc.running_monitor().flush()
    names: dict[str, str] = {}

    def view(r: PredictionRecord) -> dict[str, Any]:
        if r.caller_org_id not in names:
            names[r.caller_org_id] = org_by_id(session, r.caller_org_id).name
        return record_view(session, svc.keys, r, names[r.caller_org_id], payload)

    out = page.map(predictions_listing(d.id).page(session, page.after, page.limit), view)
    ctx.details = {"read": len(out["items"]), "payload": payload}
    return out
