"""The audit export: an organization's events as JSON Lines or syslog (RFC 5424), streamed and
sealed (``consortium.governance.audit_export``), for a SIEM and for offline verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import StreamingResponse

from consortium.api.access import rule
from consortium.api.deps import Ctx, SessionDep, Svc, Viewer
from consortium.governance import audit_export
from consortium.governance.identity import org_by_id

router = APIRouter(prefix="/audit", tags=["audit"])
MEDIA = {"jsonl": "application/jsonl", "syslog": "text/plain; charset=utf-8"}


@router.get("/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/jsonl": {}, "text/plain": {}}}})
@rule("org")
def export_events(p: Viewer, session: SessionDep, svc: Svc, ctx: Ctx,
                  format: Annotated[audit_export.Format, Query()] = "jsonl",
                  ) -> StreamingResponse:
    """Your organization's events, oldest first, up to a signed checkpoint taken now, then a seal
    signed with the hub's audit key: `consortium audit verify-export FILE --key PUBKEY` checks the
    file offline. Streamed page by page, so any length of log works."""
    org = org_by_id(session, p.org_id)
    ctx.details = {"format": format}
    host = svc.settings.public_url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "-"
    lines = audit_export.export_lines(svc.session_factory, svc.audit_chain, org, format, host=host)
    ext = "jsonl" if format == "jsonl" else "log"
    return StreamingResponse(lines, media_type=MEDIA[format],
                             headers={"content-disposition": f'attachment; filename="audit-{org.name}.{ext}"'})
