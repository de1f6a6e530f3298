"""Datasets: list, inspect, upload versions (streamed), preview, download, delete, import samples.

A dataset is addressed as ``/datasets/{org}/{dataset}``. Another organization sees it only
through a grant: ``metadata`` (schema and statistics), ``compute`` (train on it inside the hub,
no rows returned) or ``download`` (rows). Without one it gets 404. Every read is audited.

Uploads stream: ``POST /datasets/{org}/{dataset}/versions/upload?target=COL`` with the raw file as
the body (any content type). The body is read chunk by chunk, encrypted and stored, validated,
and only then recorded; bad input gets a 422 naming the line, file or column at fault and leaves
nothing behind; a body over ``CONSORTIUM_MAX_UPLOAD_BYTES``, or an image zip / NPZ archive over the
``CONSORTIUM_ZIP_*`` / ``CONSORTIUM_IMAGE_MAX_PIXELS`` limits, gets a 413.

``DELETE`` on a dataset or on one version is for the owner organization's admins, and is refused
(409) while a queued or running job uses the data (``consortium.data.deletion``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, Member, SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.responses import Download
from consortium.api.schemas import VersionRef
from consortium.api.schemas.datasets import (
    DatasetDeleted,
    DatasetDetail,
    DatasetPreview,
    DatasetPublic,
    DatasetVersionPublic,
    DatasetVersionUploaded,
    SampleImport,
    SampleImported,
    SamplePublic,
)
from consortium.data import access, catalog, deletion, memory
from consortium.data.archive import ZipLimits
from consortium.data.catalog import Dataset
from consortium.data.ingest import Upload, ingest
from consortium.errors import InvalidInput, NotFound, PermissionDenied
from consortium.governance.audit import EventDraft
from consortium.governance.identity import org_by_name
from consortium.governance.roles import Permission, Role
from consortium.store.paging import in_memory

router = APIRouter(prefix="/datasets", tags=["datasets"])
PULL = 1 << 20  # bytes handed from the event loop to the ingest thread at a time
memory.limit_arenas(2)  # at app creation, before the server's threads: see consortium.data.memory


def _dataset(org: str, dataset: str, p: Caller, session: SessionDep, ctx: Ctx, svc: Svc,
             permission: Permission) -> Dataset:
    ds = catalog.find(session, org, dataset)
    if ds is not None:
        ctx.resource(catalog.RTYPE, ds.id, ds.org_id)  # set before the check: refusals are audited too
    if ds is None:
        raise NotFound(f"dataset {org}/{dataset} not found", hint=catalog.NOT_FOUND_HINT)
    catalog.authorize(session, p, ds, permission)
    return ds


def readable(org: str, dataset: str, p: Caller, session: SessionDep, ctx: Ctx, svc: Svc) -> Dataset:
    return _dataset(org, dataset, p, session, ctx, svc, Permission.metadata)


def downloadable(org: str, dataset: str, p: Caller, session: SessionDep, ctx: Ctx, svc: Svc) -> Dataset:
    return _dataset(org, dataset, p, session, ctx, svc, Permission.download)


def writable(org: str, dataset: str, p: Caller, session: SessionDep, ctx: Ctx) -> str:
    """The dataset name to upload into: only the owner organization (member role) adds versions."""
    if org != p.org_name:
        ds = catalog.find(session, org, dataset)
        if ds is not None:
            ctx.resource(catalog.RTYPE, ds.id, ds.org_id)
            catalog.authorize(session, p, ds, Permission.metadata)  # 404 unless it is visible
            raise PermissionDenied(f"only {org} can add versions to {org}/{dataset}")
        raise NotFound(f"dataset {org}/{dataset} not found", hint=catalog.NOT_FOUND_HINT)
    p.require(Role.member, "uploading datasets")
    ds = catalog.find(session, org, dataset)
    if ds is not None:
        ctx.resource(catalog.RTYPE, ds.id, ds.org_id)
    return catalog.check_name(dataset)


def deletable(org: str, dataset: str, p: Caller, session: SessionDep, ctx: Ctx, svc: Svc) -> Dataset:
    """Only the owner organization's admins delete: a grantee gets 403, anyone else 404."""
    ds = _dataset(org, dataset, p, session, ctx, svc, Permission.metadata)
    if ds.org_id != p.org_id:
        raise PermissionDenied(f"only {org} can delete {org}/{dataset}")
    p.require(Role.admin, "deleting datasets")
    return ds


Readable = Annotated[Dataset, Depends(readable)]
Downloadable = Annotated[Dataset, Depends(downloadable)]
Writable = Annotated[str, Depends(writable)]
Deletable = Annotated[Dataset, Depends(deletable)]


@router.get("", response_model=Paged[DatasetPublic])
@rule("org")
async def list_datasets(p: Viewer, session: SessionDep, page: PageDep,
                        scope: Annotated[str, Query(pattern="^(own|shared|all)$")] = "all") -> dict[str, Any]:
    """Datasets of your organization, then those other organizations granted it access to, each by name."""
    # one thread hop for the page's one statement; the answer is checked and encoded on the loop
    return page.out(await anyio.to_thread.run_sync(catalog.visible_page, session, p, scope, page.after,
                                                   page.limit))


@router.get("/samples", response_model=Paged[SamplePublic])
@rule("self")
def list_samples(p: Caller, page: PageDep) -> dict[str, Any]:
    """The bundled sample datasets that ``import-sample`` can import, by name."""
    from consortium.data.samples import SAMPLES

    rows = [{"name": k, "description": v} for k, v in SAMPLES.items()]
    return page.out(in_memory(rows, lambda r: (r["name"],), page.after, page.limit))


@router.post("/import-sample", status_code=201, response_model=list[SampleImported])
@rule("org", Role.member)
def import_sample_route(body: SampleImport, p: Member, session: SessionDep, ctx: Ctx,
                        svc: Svc) -> list[dict[str, Any]]:
    """Import a scikit-learn bundled dataset into your organization (``part`` of ``partitions``),
    or, for hub operators, one partition into each of ``to_orgs``."""
    from consortium.data.importer import import_sample

    out = import_sample(session, svc.blobs, p, body.sample, body.name, partitions=body.partitions,
                        part=body.part, skew=body.skew, seed=body.seed, to_orgs=body.to_orgs)
    ctx.details = {"sample": body.sample, "partitions": body.partitions, "skew": body.skew,
                   "orgs": [o["org"] for o in out]}
    for o in out:
        ctx.extra.append(EventDraft("import_sample.dataset", request_id=ctx.request_id,
                                    actor_user_id=p.user_id, actor_org_id=p.org_id,
                                    resource_type=catalog.RTYPE, resource_id=o["dataset_id"],
                                    resource_org_id=org_by_name(session, o["org"]).id,
                                    details={"version": o["version"], "created": o["created"]}))
    return out


@router.get("/{org}/{dataset}", response_model=DatasetDetail)
@rule("resource")
def get_dataset(ds: Readable, p: Caller, session: SessionDep) -> dict[str, Any]:
    """A dataset and its versions (schema and statistics; no rows)."""
    return catalog.dataset_view(session, p, ds, with_versions=True)


@router.delete("/{org}/{dataset}", response_model=DatasetDeleted)
@rule("resource", Role.admin)
def delete_dataset(ds: Deletable, p: Caller, session: SessionDep, ctx: Ctx, svc: Svc) -> dict[str, Any]:
    """Delete a dataset: every version with its encrypted blob, and every grant on it (revoked at
    once). Refused (409) while a queued or running job uses it."""
    out = deletion.delete(session, svc.blobs, p, ds)
    ctx.details = {k: out[k] for k in ("versions", "revoked_grants", "bytes")}
    return out


@router.get("/{org}/{dataset}/versions", response_model=Paged[DatasetVersionPublic])
@rule("resource")
def list_versions(ds: Readable, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """The dataset's versions, oldest first."""
    return page.map(catalog.versions_listing(ds).page(session, page.after, page.limit), catalog.version_view)


@router.get("/{org}/{dataset}/versions/{version}", response_model=DatasetVersionPublic)
@rule("resource")
def get_version(ds: Readable, version: VersionRef, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """One version (a number or ``latest``): format, checksum, schema and statistics."""
    v = catalog.version(session, ds, version)
    ctx.details = {"version": v.version}
    return catalog.version_view(v)


@router.delete("/{org}/{dataset}/versions/{version}", response_model=DatasetDeleted)
@rule("resource", Role.admin)
def delete_version(ds: Deletable, version: VersionRef, p: Caller, session: SessionDep, ctx: Ctx,
                   svc: Svc) -> dict[str, Any]:
    """Delete one version (by number) and its encrypted blob; its number is not given again.
    Refused (409) while a queued or running job uses that version."""
    if not version.isdigit():
        raise InvalidInput(f"version {version!r} is not a version number",
                           hint="name the version to delete by its number (see `consortium datasets show`)")
    out = deletion.delete(session, svc.blobs, p, ds, int(version))
    ctx.details = {k: out[k] for k in ("versions", "bytes")}
    return out


@router.get("/{org}/{dataset}/versions/{version}/preview", response_model=DatasetPreview,
            response_model_exclude_unset=True)
@rule("resource")
def preview_version(ds: Readable, version: VersionRef, p: Caller, session: SessionDep, ctx: Ctx, svc: Svc,
                    rows: Annotated[int, Query(ge=0, le=access.PREVIEW_MAX)] = 10) -> dict[str, Any]:
    """Statistics for any grantee; the first rows only for the owner and ``download`` grantees."""
    v = catalog.version(session, ds, version)
    out = access.preview(session, svc.blobs, p, ds, v, rows)
    shown = out["rows_preview"]
    ctx.details = {"version": v.version, "rows_shown": len(shown) if shown is not None else 0}
    return out


@router.get("/{org}/{dataset}/versions/{version}/download", response_class=Download)
@rule("resource")
def download_version(ds: Downloadable, version: VersionRef, p: Caller, session: SessionDep, ctx: Ctx,
                     svc: Svc) -> StreamingResponse:
    """The version's original file, decrypted as it streams (owner or ``download`` grantees)."""
    v = catalog.version(session, ds, version)
    chunks = access.download(session, svc.blobs, p, ds, v)
    ctx.details = {"version": v.version, "bytes": v.size_bytes}
    name = access.filename(session, ds, v)
    return StreamingResponse(chunks, media_type="application/octet-stream",
                             headers={"content-disposition": f'attachment; filename="{name}"',
                                      "content-length": str(v.size_bytes),
                                      "x-content-sha256": v.checksum})


def _pull(request: Request) -> Iterator[bytes]:
    """The request body as a blocking iterator, for the ingest thread (at most ~1 MiB in flight)."""
    stream = request.stream().__aiter__()

    async def block() -> bytes:
        buf = bytearray()
        async for chunk in stream:
            buf += chunk
            if len(buf) >= PULL:
                break
        return bytes(buf)

    while b := anyio.from_thread.run(block):
        yield b


@router.post("/{org}/{dataset}/versions/upload", status_code=201, response_model=DatasetVersionUploaded)
@rule("resource", Role.member)
async def upload_version(request: Request, response: Response, name: Writable, p: Caller,
                         session: SessionDep, ctx: Ctx, svc: Svc,
                         target: str | None = None, format: str | None = None, filename: str = "",
                         description: str = "", sha256: str | None = None) -> dict[str, Any]:
    """Add a version from the raw request body (CSV, Parquet, NPZ, or a zip of class folders).

    ``sha256`` (or the ``x-content-sha256`` header) is checked against what arrived."""
    up = Upload(filename=filename, format=format or None, target=target or None, description=description,
                sha256=sha256 or request.headers.get("x-content-sha256"),
                max_bytes=svc.settings.max_upload_bytes, limits=ZipLimits.from_settings(svc.settings))
    v, created = await anyio.to_thread.run_sync(
        lambda: ingest(session, svc.blobs, p, name, _pull(request), up))
    ctx.resource(catalog.RTYPE, v.dataset_id, p.org_id)
    ctx.details = {"version": v.version, "format": v.format, "size_bytes": v.size_bytes,
                   "checksum": v.checksum, "created": created}
    if not created:
        response.status_code = 200
    return {"dataset": f"{p.org_name}/{name}", "created": created, **catalog.version_view(v)}
