"""The opt-in retraining trigger: when a deployment's live accuracy falls below its threshold (or
MSE rises above it), or its input drift reaches alert, re-run the served version's recipe (from its
lineage) on the newest versions of its datasets, as the deployment's owner, through the normal
job path (``consortium.jobs.submit.submit_recipe``: same checks, same audit). The job registers a
new version of the same model and moves no alias, so a person decides what goes to production.

Checked after every feedback report, every ``Monitor.check_interval`` in the background, and on
demand (``POST /api/v1/deployments/{deployment}/monitoring/check``). One run per cooldown, and
never while the previous run is still queued or running.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import ConsortiumError, InvalidInput, NotFound
from consortium.governance.audit import EventDraft
from consortium.governance.credentials import member_principal
from consortium.governance.principal import Principal
from consortium.monitoring.analysis import current_drift, quality
from consortium.monitoring.config import MonitorSettings, load_settings
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.jobs import Job
from consortium.store.tables.monitoring import MonitoringConfig, RetrainTrigger
from consortium.store.tables.registry import Deployment, RegisteredModel

if TYPE_CHECKING:
    from consortium.governance.keys import KeyService
    from consortium.hub import Hub
    from consortium.jobs.submit import SubmitCheck

log = logging.getLogger("consortium.monitoring.retrain")


def retrain_recipe(lineage_recipe: dict[str, Any] | None, model_name: str) -> dict[str, Any]:
    """The version's recipe, pointed at the newest dataset versions and registering into ``model_name``.

    >>> retrain_recipe({"name": "x", "data": {"dataset": "a/b", "version": 2}, "_resolved": {}}, "m")
    {'name': 'x', 'data': {'dataset': 'a/b', 'version': None}, 'register': {'model': 'm'}}
    """
    if not lineage_recipe:
        raise InvalidInput("the served version has no recipe in its lineage (it was uploaded, not trained)",
                           hint="retraining needs a version trained on the hub; disable the trigger")
    doc = {k: copy.deepcopy(v) for k, v in lineage_recipe.items() if not k.startswith("_")}
    if isinstance(doc.get("data"), dict):
        doc["data"]["version"] = None
    fed = doc.get("federated")
    if isinstance(fed, dict) and isinstance(fed.get("datasets"), list):
        fed["datasets"] = [str(x).split(":", 1)[0] for x in fed["datasets"]]
    doc.pop("registration", None)
    doc["register"] = {"model": model_name}
    return doc


def _owner(session: Session, d: Deployment, row: MonitoringConfig | None) -> Principal:
    """Who the job runs as: the member who last set the trigger (else who deployed), as of now."""
    for uid in (row.updated_by if row else None, d.created_by):
        if uid is None:
            continue
        p = member_principal(session, uid, d.org_id, "monitor:retrain")
        if p is not None:
            return p
    raise InvalidInput("no current member of the owner organization set this trigger",
                       hint="set the monitoring settings again as a member of the owner organization")


def _reasons(session: Session, keys: KeyService, d: Deployment, s: MonitorSettings,
             drift: bool = True) -> tuple[list[str], dict[str, Any]]:
    pol = s.retrain
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    q = quality(session, d, pol.window_minutes, None)
    checks["quality"] = {k: q[k] for k in ("metric", "live", "test", "labelled_rows")}
    if q["labelled_rows"] >= pol.min_feedback and q["live"] is not None:
        if q["metric"] == "accuracy" and pol.min_accuracy is not None and q["live"] < pol.min_accuracy:
            reasons.append(f"live accuracy {q['live']} below {pol.min_accuracy} ({q['labelled_rows']} labelled rows)")
        if q["metric"] == "mse" and pol.max_mse is not None and q["live"] > pol.max_mse:
            reasons.append(f"live MSE {q['live']} above {pol.max_mse} ({q['labelled_rows']} labelled rows)")
    if pol.on_drift and drift:
        dr = current_drift(session, keys, d, s)
        checks["drift"] = {"status": dr["status"], "max_psi": dr.get("max_psi"), "max_ks": dr.get("max_ks")}
        if dr["status"] == "alert":
            reasons.append(f"input drift alert (max PSI {dr.get('max_psi')}, max KS {dr.get('max_ks')})")
    return reasons, checks


def _blocked(session: Session, d: Deployment, s: MonitorSettings) -> str | None:
    last = session.scalar(select(RetrainTrigger).where(RetrainTrigger.deployment_id == d.id,
                                                       RetrainTrigger.job_id.is_not(None))
                          .order_by(RetrainTrigger.created_at.desc()).limit(1))
    if last is None:
        return None
    job = session.get(Job, last.job_id)
    if job is not None and job.state in ("queued", "running"):
        return f"retraining job {job.id} is still {job.state}"
    if last.created_at > utcnow() - timedelta(minutes=s.retrain.cooldown_minutes):
        return f"cooling down until {(last.created_at + timedelta(minutes=s.retrain.cooldown_minutes)).isoformat()}"
    return None


def check(session: Session, d: Deployment, keys: KeyService, checks: Sequence[SubmitCheck], *,
          drift: bool = True) -> tuple[dict[str, Any], EventDraft | None]:
    """Evaluate the trigger of deployment ``d``; submit a retraining job if it fires.

    ``checks`` are the hub's submission checks (``Services.submit_checks``: a retraining job passes
    the same ones as any other), ``keys`` its keys (the drift check opens the sealed prediction
    log). ``drift=False`` judges live
    quality only (the cheap check run after each feedback report). Returns the decision and, when
    a job was submitted, the audit event to append."""
    s, row = load_settings(session, d.id)
    if not s.retrain.enabled:
        return {"enabled": False, "fired": False}, None
    reasons, found = _reasons(session, keys, d, s, drift)
    out: dict[str, Any] = {"enabled": True, "fired": False, "reasons": reasons, "checks": found}
    if not reasons:
        return out, None
    blocked = _blocked(session, d, s)
    if blocked:
        return {**out, "blocked": blocked}, None
    from consortium.jobs.submit import submit_recipe
    from consortium.serving.hub.deployments import resolve_version

    v = resolve_version(session, d)
    model = session.get(RegisteredModel, d.model_id)
    if model is None:
        raise NotFound(f"the model of deployment {d.name} is gone")
    p = _owner(session, d, row)
    recipe = retrain_recipe((v.lineage or {}).get("recipe"), model.name)
    job, _ = submit_recipe(session, p, recipe, checks, project_id=model.project_id)
    job.name = f"retrain {d.name}"[:120]
    trig = RetrainTrigger(id=new_id("rtr"), deployment_id=d.id, job_id=job.id, reason="; ".join(reasons),
                          details={"checks": found, "from_version": v.version})
    session.add(trig)
    session.flush()
    draft = EventDraft("deployment.retrain_triggered", actor_user_id=p.user_id, actor_org_id=p.org_id,
                       resource_type="deployment", resource_id=d.id, resource_org_id=d.org_id,
                       project_id=model.project_id,
                       details={"job": job.id, "reasons": reasons, "from_version": v.version})
    return {**out, "fired": True, "job_id": job.id}, draft


def triggers(session: Session, d: Deployment, limit: int = 20) -> list[dict[str, Any]]:
    rows = session.scalars(select(RetrainTrigger).where(RetrainTrigger.deployment_id == d.id)
                           .order_by(RetrainTrigger.created_at.desc()).limit(limit))
    return [{"id": r.id, "job_id": r.job_id, "reason": r.reason, "created_at": r.created_at, **r.details}
            for r in rows]


def check_all(hub: Hub, checks: Sequence[SubmitCheck]) -> int:
    """Background pass over every deployment whose trigger is enabled, on ``hub``'s database (the
    monitor's thread); returns jobs submitted."""
    from consortium.store.db import transaction

    fired = 0
    with hub.session_factory() as s:
        ids = [r.deployment_id for r in s.scalars(select(MonitoringConfig))
               if (r.settings or {}).get("retrain", {}).get("enabled")]
    for dep_id in ids:
        try:
            with transaction(hub.session_factory) as s:
                d = s.get(Deployment, dep_id)
                if d is None:
                    continue
                _, draft = check(s, d, hub.keys, checks)
                if draft is not None:
                    hub.audit_in(s, [draft])
                    fired += 1
        except ConsortiumError as e:  # e.g. the dataset is gone: report, try again next pass
            log.warning("retraining check of %s failed: %s", dep_id, e)
    return fired
