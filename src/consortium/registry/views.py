"""JSON views of registry objects for the API: model summaries, versions and the model card."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from consortium.governance.identity import org_by_id
from consortium.governance.principal import Principal
from consortium.registry import models as reg
from consortium.store.paging import BOUND_LIMIT, Key, Page, bound_key, bound_values, cut, page_statement
from consortium.store.tables.identity import Organization
from consortium.store.tables.registry import Deployment, ModelAlias, ModelVersion, RegisteredModel


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


@functools.cache
def _page_stmt(after: bool, dialect: str) -> Any:
    """``model_page``'s statement for one shape, built once with bound parameters: org, limit, k0.
    A row per alias of each model of the page (one, with a null alias, for a model without)."""
    m, v, a = RegisteredModel.__table__.c, ModelVersion.__table__.c, ModelAlias.__table__.c
    o, pointed = Organization.__table__, ModelVersion.__table__.alias("pointed")  # the version an alias names
    order = (m.name,)  # reg.models_listing's key: unique per organization
    inner = page_statement(dialect, select(m.id, m.org_id, m.project_id, m.description, m.intended_use, m.task,
                                           m.created_at, m.updated_at)
                           .where(m.org_id == bindparam("org", type_=m.org_id.type)),
                           order, bound_key(order) if after else None, BOUND_LIMIT).subquery()
    ic = inner.c
    n = select(func.count()).where(v.model_id == ic.id).scalar_subquery()
    top = select(func.max(v.version)).where(v.model_id == ic.id).scalar_subquery()
    return (select(ic.id, ic.name, o.c.name.label("org"), ic.project_id, ic.description, ic.intended_use, ic.task,
                   ic.created_at, ic.updated_at, n.label("versions"), top.label("latest_version"), a.alias,
                   pointed.c.version.label("alias_version"))
            .join_from(inner, o, o.c.id == ic.org_id)
            .outerjoin(ModelAlias.__table__, a.model_id == ic.id)
            .outerjoin(pointed, pointed.c.id == a.version_id)
            .order_by(ic.name, a.alias))


def model_page(session: Session, p: Principal, after: Key | None, limit: int) -> Page[dict[str, Any]]:
    """A page of ``reg.models_listing`` as ``model_view`` shows each model, in one Core statement
    built once per shape: the page's models (the same keyset page, so the same cursors), each with
    its organization's name, its versions' count and newest number and its aliases, read for the
    page's rows only (``model_view``: a versions query, an aliases query and a lookup per model)."""
    rows = session.execute(_page_stmt(after is not None, session.get_bind().dialect.name),
                           {"org": p.org_id, **bound_values(after, limit)}).all()
    models: list[tuple[Any, dict[str, int]]] = []  # (the model's first row, its aliases), in order
    for r in rows:
        if not models or models[-1][0].id != r.id:
            models.append((r, {}))
        if r.alias is not None and r.alias_version is not None:  # as reg.aliases' inner join
            models[-1][1][r.alias] = int(r.alias_version)
    page = cut(models, limit, lambda m: (m[0].name,))
    return Page([{"id": r.id, "name": f"{r.org}/{r.name}", "org": r.org, "project_id": r.project_id,
                  "description": r.description, "intended_use": r.intended_use, "task": r.task,
                  "created_at": r.created_at, "updated_at": r.updated_at, "latest_version": r.latest_version,
                  "versions": r.versions, "aliases": aliases} for r, aliases in page.items], page.after)


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
