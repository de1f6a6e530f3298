"""Consent requests for models trained on other organizations' data (``governance.consent``).

The model's owner asks (``POST /models/{owner}/{model}/consents``): one request to each
contributor whose consent the action still needs. The contributor's admins approve or refuse
(``POST /consents/{consent_id}/approve`` | ``/refuse``). Both organizations list and read them;
anyone else gets 404. Every request and decision is audited against the model.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.routes.models import MemberModelDep
from consortium.api.schemas.policies import ConsentCreate, ConsentPublic
from consortium.governance import consent
from consortium.governance.roles import Role
from consortium.store.tables.policies import ConsentRequest

router = APIRouter(tags=["consent"])


def visible_consent(consent_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> ConsentRequest:
    row = session.get(ConsentRequest, consent_id)
    if row is not None:  # the model's owner sees a refused attempt
        ctx.resource("model", row.model_id, row.requester_org_id)
    return consent.find(session, p, consent_id)


ConsentDep = Annotated[ConsentRequest, Depends(visible_consent)]


@router.post("/models/{owner}/{model}/consents", response_model=list[ConsentPublic], status_code=201)
@rule("resource", Role.member)
def ask_consent(m: MemberModelDep, body: ConsentCreate, p: Caller, session: SessionDep,
                ctx: Ctx) -> list[dict[str, Any]]:
    """Ask each contributor whose consent sharing, serving or downloading the model needs."""
    rows = consent.request(session, p, m, body.organization, body.action, body.note)
    ctx.details = {"organization": body.organization, "action": body.action, "requests": [r.id for r in rows]}
    return [consent.view(session, r) for r in rows]


@router.get("/consents", response_model=Paged[ConsentPublic])
@rule("org")
def list_consents(p: Viewer, session: SessionDep, page: PageDep,
                  direction: Annotated[str, Query(pattern="^(all|received|sent)$")] = "all") -> dict[str, Any]:
    """Requests your organization received (as a contributor) or sent (as a model's owner)."""
    return page.map(consent.listing(p, direction).page(session, page.after, page.limit),
                    lambda r: consent.view(session, r))


@router.get("/consents/{consent_id}", response_model=ConsentPublic)
@rule("resource")
def get_consent(row: ConsentDep, session: SessionDep) -> dict[str, Any]:
    """One request."""
    return consent.view(session, row)


def _decide(row: ConsentRequest, p: Any, session: Any, ctx: Any, approve: bool) -> dict[str, Any]:
    consent.decide(session, p, row, approve)
    ctx.details = {"consent": row.id, "state": row.state, "action": row.action, "contributor": p.org_name}
    return consent.view(session, row)


@router.post("/consents/{consent_id}/approve", response_model=ConsentPublic)
@rule("resource", Role.admin)
def approve_consent(row: ConsentDep, p: Caller, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """The contributor agrees (admins of the contributing organization)."""
    return _decide(row, p, session, ctx, True)


@router.post("/consents/{consent_id}/refuse", response_model=ConsentPublic)
@rule("resource", Role.admin)
def refuse_consent(row: ConsentDep, p: Caller, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """The contributor refuses (admins of the contributing organization)."""
    return _decide(row, p, session, ctx, False)
