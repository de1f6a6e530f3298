"""The demo consortium seeded by ``consortium up``: a hospital, a clinic and a medical lab.

Each organization gets an owner user and an API token; the credentials are printed and written to
``CONSORTIUM_HOME/demo-credentials.json`` (mode 0600). Seeding is idempotent: a second run finds
what exists and creates nothing twice. Later stages add their own steps (sample datasets, a
project) through ``DEMO_STEPS``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consortium.errors import Unauthenticated
from consortium.governance import credentials, identity
from consortium.governance.audit import EventDraft
from consortium.governance.roles import Role
from consortium.services import Services
from consortium.store.db import transaction

DEMO_ORGS = [
    ("st-marys-hospital", "St Mary's Hospital", "A teaching hospital"),
    ("riverside-clinic", "Riverside Clinic", "A regional outpatient clinic"),
    ("northgate-lab", "Northgate Medical Lab", "A diagnostic laboratory"),
]

# Each step gets (services, session, credentials dict) and may add entries to the dict.
DEMO_STEPS: list[Callable[[Services, Session, dict[str, Any]], None]] = []


def demo_owner(session: Session, org_name: str, via: str = "seed") -> credentials.Principal:
    """The owner of a demo organization (``owner@<org>.example``), for seeding steps."""
    org = identity.org_by_name(session, org_name)
    user = identity.user_by_email(session, f"owner@{org_name}.example")
    assert user is not None, f"demo owner of {org_name} missing"
    return credentials.principal_for(user, org, Role.owner, via)


def credentials_path(svc: Services) -> Path:
    return svc.settings.home / "demo-credentials.json"


def seed_demo(svc: Services) -> dict[str, Any]:
    path = credentials_path(svc)
    old = json.loads(path.read_text()) if path.exists() else {}
    old_orgs = {o["name"]: o for o in old.get("organizations", [])}
    out: dict[str, Any] = {"url": svc.settings.public_url, "organizations": []}
    created: list[EventDraft] = []
    with transaction(svc.session_factory) as s:
        for i, (name, display, desc) in enumerate(DEMO_ORGS):
            prev = old_orgs.get(name, {})
            email = f"owner@{name}.example"
            password = prev.get("password") or secrets.token_urlsafe(12)
            try:
                org = identity.org_by_name(s, name)
            except Exception:
                org = identity.create_org(s, name, display, desc)
                created.append(EventDraft("demo.create_org", resource_type="organization",
                                          resource_id=org.id, resource_org_id=org.id))
            user = identity.user_by_email(s, email)
            if user is None:
                user = identity.create_user(s, email, f"{display} owner", password, is_operator=(i == 0))
                identity.add_member(s, org.id, user.id, Role.owner)
                created.append(EventDraft("demo.create_user", actor_user_id=user.id,
                                          resource_type="user", resource_id=user.id,
                                          resource_org_id=org.id))
            token = prev.get("token")
            if token:
                try:
                    credentials.resolve_token(s, token)
                except Unauthenticated:
                    token = None
            if not token:
                p = credentials.principal_for(user, org, Role.owner, "seed")
                tok, token = credentials.create_token(s, p, f"demo-{secrets.token_hex(3)}", Role.owner, 90)
                created.append(EventDraft("demo.create_token", actor_user_id=user.id, actor_org_id=org.id,
                                          resource_type="token", resource_id=tok.id,
                                          resource_org_id=org.id))
            out["organizations"].append({"name": name, "display_name": display, "email": email,
                                         "password": password, "token": token,
                                         "operator": user.is_operator})
        for step in DEMO_STEPS:
            step(svc, s, out)
        svc.audit_in(s, created)
    _write_private(path, json.dumps(out, indent=2, default=str))
    return out


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


from consortium.data import seed as _data_seed  # noqa: E402,F401  (registers the datasets demo step)
from consortium.registry import seed as _registry_seed  # noqa: E402,F401  (registers the models demo step)
from consortium.governance import demo_project as _project_seed  # noqa: E402,F401  (after the datasets step)
from consortium.jobs import federated_seed as _federated_seed  # noqa: E402,F401  (registers the federated demo step)
