"""The demo organizations of ``consortium up`` (a hospital, a clinic and a medical lab) and their
owners: the first step of ``consortium.demo.seed_demo``, which every later stage's step builds on.

Each organization gets an owner user and an API token. Idempotent: what a previous run made (its
credentials in ``previous``) is found and kept, nothing is created twice.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.orm import Session

from consortium.errors import NotFound, Unauthenticated
from consortium.governance import credentials, identity
from consortium.governance.audit import EventDraft
from consortium.governance.keys import KeyService
from consortium.governance.principal import Principal
from consortium.governance.roles import Role

DEMO_ORGS = [
    ("st-marys-hospital", "St Mary's Hospital", "A teaching hospital"),
    ("riverside-clinic", "Riverside Clinic", "A regional outpatient clinic"),
    ("northgate-lab", "Northgate Medical Lab", "A diagnostic laboratory"),
]


def demo_owner(session: Session, org_name: str, via: str = "seed") -> Principal:
    """The owner of a demo organization (``owner@<org>.example``), for seeding steps."""
    org = identity.org_by_name(session, org_name)
    user = identity.user_by_email(session, f"owner@{org_name}.example")
    if user is None:
        raise NotFound(f"the demo owner of {org_name} is missing", hint="seed the demo organizations first")
    return credentials.principal_for(user, org, Role.owner, via)


def seed_orgs(session: Session, keys: KeyService, previous: dict[str, Any],
              events: list[EventDraft]) -> list[dict[str, Any]]:
    """Each demo organization with its owner and a valid token (the previous run's password and
    token when they still work); appends an event for each thing created to ``events``."""
    old = {o["name"]: o for o in previous.get("organizations", [])}
    out = []
    for i, (name, display, desc) in enumerate(DEMO_ORGS):
        prev = old.get(name, {})
        email = f"owner@{name}.example"
        password = prev.get("password") or secrets.token_urlsafe(12)
        try:
            org = identity.org_by_name(session, name)
        except NotFound:
            org = identity.create_org(session, keys, name, display, desc)
            events.append(EventDraft("demo.create_org", resource_type="organization",
                                     resource_id=org.id, resource_org_id=org.id))
        user = identity.user_by_email(session, email)
        if user is None:
            user = identity.create_user(session, email, f"{display} owner", password, is_operator=(i == 0))
            identity.add_member(session, org.id, user.id, Role.owner)
            events.append(EventDraft("demo.create_user", actor_user_id=user.id, resource_type="user",
                                     resource_id=user.id, resource_org_id=org.id))
        token = prev.get("token")
        if token:
            try:
                credentials.resolve_token(session, token)
            except Unauthenticated:
                token = None
        if not token:
            p = credentials.principal_for(user, org, Role.owner, "seed")
            tok, token = credentials.create_token(session, p, f"demo-{secrets.token_hex(3)}", Role.owner, 90)
            events.append(EventDraft("demo.create_token", actor_user_id=user.id, actor_org_id=org.id,
                                     resource_type="token", resource_id=tok.id, resource_org_id=org.id))
        out.append({"name": name, "display_name": display, "email": email, "password": password,
                    "token": token, "operator": user.is_operator})
    return out
