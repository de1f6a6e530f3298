"""JSON views of registry objects for the API: model summaries, versions and the model card."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consortium.governance.identity import org_by_id
from consortium.registry import models as reg
from consortium.store.tables.registry import Deployment, ModelVersion, RegisteredModel


def version_view(session: Session, v: ModelVersion, model: RegisteredModel | None = None,
                 full: bool = True) -> dict[str, Any]:
    model = model or reg.model_of(session, v)
    out: dict[str, Any] = {
        "id": v.id, "model": f"{org_by_id(session, model.org_id).name}/{model.name}", "version": v.version,
        "created_at": v.created_at, "source_format": v.source_format, "task": v.task,
        "class_names": v.class_names, "metrics": v.metrics, "description": v.description,
        "onnx_sha256": v.onnx_sha256, "onnx_size": v.onnx_size,
    }
    if full:
        out.update({
            "signature": v.signature, "lineage": v.lineage, "plots": sorted(v.plots or {}),
            "has_preprocessing": v.preprocessing is not None,
            "preprocessing": _preprocessing_summary(v.preprocessing),
            "has_reference_stats": v.reference_stats is not None,
        })
    return out


def _preprocessing_summary(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"kind": state.get("kind"), "input_columns": state.get("input_columns"),
            "image_shape": state.get("image_shape"), "steps": [s.get("step") for s in state.get("steps", [])]}


def model_view(session: Session, m: RegisteredModel) -> dict[str, Any]:
    vs = reg.versions(session, m)
    latest = vs[-1] if vs else None
    org = org_by_id(session, m.org_id).name
    return {"id": m.id, "name": f"{org}/{m.name}", "org": org,
            "project_id": m.project_id, "description": m.description, "intended_use": m.intended_use,
            "task": m.task, "created_at": m.created_at, "updated_at": m.updated_at,
            "latest_version": latest.version if latest else None, "versions": len(vs),
            "aliases": reg.aliases(session, m)}


def model_card(session: Session, m: RegisteredModel) -> dict[str, Any]:
    """Description, intended use, metrics and lineage of every version, aliases and deployments."""
    from sqlalchemy import select

    out = model_view(session, m)
    vs = reg.versions(session, m)
    out["versions"] = [{**version_view(session, v, m, full=False), "lineage": v.lineage,
                        "signature": v.signature} for v in vs]
    out["deployments"] = [{"name": d.name, "alias": d.alias, "version": _pinned(session, d)}
                          for d in session.scalars(select(Deployment).where(Deployment.model_id == m.id))]
    return out


def _pinned(session: Session, d: Deployment) -> int | None:
    """The version number a deployment is pinned to; None when it follows an alias."""
    v = session.get(ModelVersion, d.version_id) if d.version_id else None
    return v.version if v is not None else None
