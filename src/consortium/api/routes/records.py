"""Records of data protection: an organization's record of processing activities (GDPR Art. 30
style; ``consortium.governance.records``) as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep
from consortium.api.schemas.records import ProcessingRecord
from consortium.errors import NotFound
from consortium.governance import records
from consortium.governance.identity import org_by_name
from consortium.store.tables.identity import Organization

router = APIRouter(prefix="/orgs", tags=["records"])


def own_org(org: str, p: Caller, session: SessionDep, ctx: Ctx) -> Organization:
    """The caller's own organization: records of another are the same 404 as a missing one."""
    if org != p.org_name:
        raise NotFound(f"organization {org!r} has no record you can read",
                       hint=f"read your own organization's: /api/v1/orgs/{p.org_name}/processing-record")
    o = org_by_name(session, org)
    ctx.resource("organization", o.id, o.id)
    return o


OwnOrg = Annotated[Organization, Depends(own_org)]


@router.get("/{org}/processing-record", response_model=ProcessingRecord,
            responses={200: {"content": {"text/csv": {}}}})
@rule("resource")
def processing_record(o: OwnOrg, session: SessionDep, ctx: Ctx,
                      format: Annotated[Literal["json", "csv"], Query()] = "json",
                      partners_only: Annotated[bool, Query(description="leave out your own jobs")] = False,
                      ) -> Any:
    """Who used which of your datasets, when, in which job and project, for which purpose and with
    which privacy settings (one row per job and dataset, and per download by another organization)."""
    items = records.rows(session, o, include_own=not partners_only)
    ctx.details = {"format": format, "rows": len(items)}
    if format == "csv":
        return Response(records.to_csv(items), media_type="text/csv",
                        headers={"content-disposition": f'attachment; filename="processing-record-{o.name}.csv"'})
    out: dict[str, Any] = {"organization": o.name, "columns": list(records.COLUMNS), "items": items}
    return out
