"""Registered models: list, upload (ONNX or Keras 3), model card, versions, aliases, artifacts."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, Member, SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.responses import OctetStream, Png
from consortium.api.schemas import VersionRef
from consortium.api.schemas.registry import (
    AliasAssign,
    AliasPublic,
    AliasRemoved,
    ExplainRequest,
    Explanation,
    ModelCard,
    ModelPublic,
    ModelUpdate,
    ModelVersionPublic,
    ModelVersionSummary,
)
from consortium.errors import InvalidInput, PayloadTooLarge, PermissionDenied
from consortium.governance import consent
from consortium.governance.identity import org_by_id
from consortium.governance.roles import Role
from consortium.registry import models as reg
from consortium.registry import views
from consortium.registry.models import RegisteredModel
from consortium.registry.uploads import upload_model

router = APIRouter(prefix="/models", tags=["models"])


def model_dep(owner: str, model: str, p: Caller, session: SessionDep, ctx: Ctx) -> RegisteredModel:
    m = reg.find_model(session, owner, model)
    if m is not None:
        ctx.resource("model", m.id, m.org_id)
    return reg.get_model(session, p, owner, model)


def member_model_dep(m: Annotated[RegisteredModel, Depends(model_dep)], p: Caller) -> RegisteredModel:
    """Changes (and the ONNX file) are for the owner organization's members; project members only read."""
    if m.org_id != p.org_id:
        raise PermissionDenied("only the model's owner organization may do this; project members may read it")
    p.require(Role.member)
    return m


ModelDep = Annotated[RegisteredModel, Depends(model_dep)]
MemberModelDep = Annotated[RegisteredModel, Depends(member_model_dep)]  # 403 before the body is read


@router.get("", response_model=Paged[ModelPublic])
@rule("org")
async def list_models(p: Viewer, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """Models of your organization, by name."""
    # one thread hop for the page's one statement; the answer is checked and encoded on the loop
    return page.out(await anyio.to_thread.run_sync(views.model_page, session, p, page.after, page.limit))


@router.post("/upload", status_code=201, response_model=ModelVersionPublic)
@rule("org", Role.member)
async def upload(request: Request, p: Member, session: SessionDep, svc: Svc, ctx: Ctx,
                 name: Annotated[str, Query(description="model name (or org/model)")],
                 filename: Annotated[str, Query(description="original file name: .onnx or .keras")] = "",
                 description: str = "", task: str | None = None,
                 class_names: Annotated[str | None, Query(description="comma-separated")] = None,
                 project: Annotated[str | None, Query(description="place the model in this project")] = None,
                 ) -> dict[str, Any]:
    """Upload a model file as the request body (streamed): ONNX, or Keras 3 ``.keras`` (converted to
    ONNX). Pickle-based files are refused. A new version is added to ``name``."""
    owner, model_name = reg.split_ref(name, p.org_name)  # authorized like path parameters, before the body
    if owner != p.org_name:
        reg.get_model(session, p, owner, model_name, Role.member)  # 404, or 403 where a project shows it
    if project:
        from consortium.governance import projects

        prj = projects.for_work(session, p, project, "placing models in it")
        existing = reg.find_model(session, owner, model_name)
        if existing is not None and existing.project_id != prj.id:  # sharing it with the members (issue 19)
            ctx.resource("model", existing.id, existing.org_id, prj.id)
            consent.require_for_project(session, existing, prj.id)
    limit = svc.settings.max_upload_bytes
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(f"the model file exceeds {limit} bytes")
    names = [c.strip() for c in class_names.split(",")] if class_names else None
    if task not in (None, "classification", "regression"):
        raise InvalidInput(f"task must be classification or regression; got {task!r}")
    v = await run_in_threadpool(upload_model, session, p, svc.blobs, name, filename or name, bytes(buf),
                                description=description, task=task, class_names=names)
    model = reg.model_of(session, v)
    if project:
        reg.place_in_project(session, p, model, project)
    ctx.resource("model", v.model_id, p.org_id, model.project_id)
    ctx.details = {"version": v.version, "format": v.source_format, "sha256": v.onnx_sha256, "bytes": len(buf),
                   "project": project}
    return views.version_view(session, v)


@router.get("/{owner}/{model}", response_model=ModelCard)
@rule("resource")
def model_card(m: ModelDep, session: SessionDep) -> dict[str, Any]:
    """The model card: description, intended use, every version's metrics and lineage, aliases."""
    return views.model_card(session, m)


@router.patch("/{owner}/{model}", response_model=ModelPublic)
@rule("resource", Role.member)
def update_model(m: MemberModelDep, body: ModelUpdate, p: Caller, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Edit the card's description and intended use (versions themselves never change)."""
    reg.update_card(session, p, m, description=body.description, intended_use=body.intended_use)
    ctx.details = body.model_dump(exclude_none=True)
    return views.model_view(session, m)


@router.get("/{owner}/{model}/versions", response_model=Paged[ModelVersionSummary])
@rule("resource")
def list_versions(m: ModelDep, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """The model's versions, oldest first."""
    found = reg.versions_listing(m).page(session, page.after, page.limit)
    return page.map(found, lambda v: views.version_view(session, v, m, full=False))


@router.get("/{owner}/{model}/versions/{version}", response_model=ModelVersionPublic)
@rule("resource")
def get_version(m: ModelDep, version: VersionRef, session: SessionDep) -> dict[str, Any]:
    """One version (number, alias or ``latest``): signature, metrics, lineage, preprocessing."""
    return views.version_view(session, reg.get_version(session, m, version), m)


@router.get("/{owner}/{model}/versions/{version}/onnx", response_class=OctetStream)
@rule("resource", Role.member)
def download_onnx(m: MemberModelDep, version: VersionRef, p: Caller, session: SessionDep, svc: Svc,
                  ctx: Ctx) -> Response:
    """The version's ONNX file (decrypted)."""
    p.require(Role.member)
    v = reg.get_version(session, m, version)
    ctx.details = {"version": v.version}
    consent.require(session, m, m.org_id, "download", version=v,  # the contributors' right (issue 19)
                    model_ref=f"{org_by_id(session, m.org_id).name}/{m.name}")
    return Response(reg.read_onnx(session, svc.blobs, v), media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{m.name}-v{v.version}.onnx"'})


@router.get("/{owner}/{model}/versions/{version}/plots/{plot}", response_class=Png)
@rule("resource")
def get_plot(m: ModelDep, version: VersionRef, plot: str, session: SessionDep, svc: Svc) -> Response:
    """A PNG plot recorded with the version (loss curve, confusion matrix, ROC, ...)."""
    v = reg.get_version(session, m, version)
    return Response(reg.read_plot(session, svc.blobs, v, plot), media_type="image/png")


@router.post("/{owner}/{model}/versions/{version}/explain", response_model=Explanation,
             response_model_exclude_unset=True)
@rule("resource")
async def explain_version(m: ModelDep, version: VersionRef, body: ExplainRequest, session: SessionDep, svc: Svc,
                          ctx: Ctx) -> dict[str, Any]:
    """Integrated Gradients for one input (raw features or pixels): an attribution per feature, or a
    heat map (base64 PNG) for images."""
    from consortium.registry.explain import explain_version as run

    v = reg.get_version(session, m, version)
    ctx.details = {"version": v.version}
    return await run_in_threadpool(run, session, svc.blobs, m, v, body.inputs, body.target)


@router.put("/{owner}/{model}/aliases/{alias}", response_model=AliasPublic)
@rule("resource", Role.member)
async def set_alias(m: MemberModelDep, alias: str, body: AliasAssign, p: Caller, session: SessionDep, svc: Svc,
                    ctx: Ctx, background: BackgroundTasks) -> AliasPublic:
    """Point an alias at a version. Deployments following it switch without dropping requests:
    the new version is loaded first, then the switch commits."""
    row, old = reg.set_alias(session, p, m, alias, body.version)
    followers = reg.alias_followers(session, m, alias)
    rt = svc.serving
    if followers:
        await rt.warm(row.version_id)
    new = reg.get_version(session, m, alias).version
    ctx.details = {"alias": alias, "from_version": old, "to_version": new, "deployments": followers}
    for name in followers:  # after the commit (background tasks run once the response is out)
        background.add_task(rt.invalidate, name)
    return AliasPublic(model=reg.qualified_name(session, m), alias=alias, version=new, previous=old,
                       deployments=followers)


@router.delete("/{owner}/{model}/aliases/{alias}", response_model=AliasRemoved)
@rule("resource", Role.member)
def delete_alias(m: MemberModelDep, alias: str, p: Caller, session: SessionDep, ctx: Ctx) -> AliasRemoved:
    old = reg.delete_alias(session, p, m, alias)
    ctx.details = {"alias": alias, "from_version": old}
    return AliasRemoved(alias=alias, removed=True, previous=old)
