"""The paginated lists' page queries use their key indexes (EXPLAIN on SQLite and PostgreSQL).

Each list's second page (a key to continue after) is compiled as the API runs it and explained
by the database: it must name the list's key index (migrations 0003, 0303, 0502) and neither
walk the whole table nor sort it. The tables hold rows of 300 other organizations (SQLite's
ANALYZE statistics); PostgreSQL's planner still prefers a sequential scan of a small table, so
there the plan is read with ``enable_seqscan`` off: the index must be usable for the page.
Figures on a seeded large database (1,000,000 audit events) are in the report of issue 22.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from consortium.store import paging
from consortium.store.db import transaction
from consortium.store.tables.base import new_id, utcnow

OTHERS = 3000  # rows of other organizations (PostgreSQL's statistics)


@pytest.fixture(scope="module")
def caller(world: Any, services: Any) -> Any:
    """An organization's owner, among 300 other organizations with their own rows."""
    from consortium.governance import credentials
    from consortium.store.tables.audit import AuditEvent
    from consortium.store.tables.grants import Grant
    from consortium.store.tables.identity import ApiToken, Organization
    from consortium.store.tables.jobs import Job

    actor = world.actor(world.org(), "owner")
    now, user = utcnow(), actor.user_id
    others = [new_id("org") for _ in range(300)]
    with services.engine.begin() as c:
        c.execute(sa.insert(Organization), [{"id": o, "name": f"lix-{o[-12:]}", "display_name": "x",
                                             "description": "", "created_at": now} for o in others])
        head = c.execute(sa.select(sa.func.max(AuditEvent.seq))).scalar() or 0
        c.execute(sa.insert(ApiToken), [{"id": new_id("tok"), "user_id": user, "org_id": others[i % 300],
                                         "name": f"x{i}", "role": "viewer", "token_hash": new_id("h"), "prefix": "x",
                                         "created_at": now, "expires_at": now + timedelta(days=1)}
                                        for i in range(OTHERS)])
        c.execute(sa.insert(Grant), [{"id": new_id("grt"), "resource_type": "dataset", "resource_id": f"ds_{i}",
                                      "owner_org_id": others[i % 300], "grantee_org_id": others[(i * 7) % 300],
                                      "permission": "metadata", "limits": {}, "created_by": user,
                                      "created_at": now} for i in range(OTHERS)])
        c.execute(sa.insert(Job), [{"id": new_id("job"), "org_id": others[i % 300], "user_id": user,
                                    "kind": "train", "name": "x", "state": "succeeded", "recipe": {},
                                    "resolved": {}, "progress": {}, "created_at": now, "attempts": 0,
                                    "max_attempts": 1, "cancel_requested": False} for i in range(OTHERS)])
        c.execute(sa.insert(AuditEvent), [{"seq": head + 1 + i, "time": now, "request_id": "r",
                                           "actor_org_id": others[i % 300], "resource_org_id": others[(i * 7) % 300],
                                           "action": "x", "outcome": "ok", "details": "{}",
                                           "project_id": f"prj_{i % 100}",
                                           "prev_hash": "0" * 64, "hash": "0" * 64} for i in range(OTHERS)])
        c.execute(sa.text("ANALYZE"))
    with transaction(services.session_factory) as s:
        return credentials.resolve_token(s, actor.token)


def _listings(s: Any, p: Any) -> dict[str, tuple[paging.Listing, tuple[Any, ...], list[str]]]:
    """list -> (its listing, a key to continue after, the index names one of which the plan must use)"""
    from consortium.governance import audit, credentials, grants, identity
    from consortium.jobs import access, queue
    from consortium.monitoring.predictions import predictions_listing

    at = utcnow()
    return {
        "tokens": (credentials.tokens_listing(p), (at, "tok_x"), ["ix_api_tokens_org_created"]),
        "invitations": (identity.invitations_listing(p), (at, "inv_x"), ["ix_invitations_org_created"]),
        "grants given": (grants.grants_listing(s, p, "given"), (at, "grt_x"), ["ix_grants_owner_created"]),
        "grants received": (grants.grants_listing(s, p, "received"), (at, "grt_x"), ["ix_grants_grantee_created"]),
        "audit": (audit.events_for_org(p.org_id), (10**9,), ["ix_audit_events_actor_seq",
                                                             "ix_audit_events_resource_seq"]),
        "project audit": (audit.events_for_project("prj_x"), (10**9,), ["ix_audit_events_project_seq"]),
        "jobs": (access.jobs_listing(p), (at, "job_x"), ["ix_jobs_org_created"]),
        "job events": (queue.events_listing("job_x"), (5,), ["ix_job_events_job_id_id", "pk_job_events"]),
        "orgs": (identity.orgs_listing(), ("m",), ["uq_organizations_name", "sqlite_autoindex_organizations"]),
        "predictions": (predictions_listing("dep_x"), (at, "prd_x"), ["ix_prediction_log_dep_created_id"]),
    }


def _page_sql(session: Any, listing: paging.Listing, after: tuple[Any, ...]) -> str:
    seen: list[Any] = []
    real: Callable[..., Any] = session.execute

    def capture(stmt: Any, *a: Any, **k: Any) -> Any:
        seen.append(stmt)
        return real(stmt, *a, **k)

    session.execute = capture
    try:
        listing.page(session, after, 100)
    finally:
        session.execute = real
    return str(seen[-1].compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("name", ["tokens", "invitations", "grants given", "grants received", "audit",
                                  "project audit", "jobs", "job events", "orgs", "predictions"])
def test_a_page_is_an_index_range(services: Any, caller: Any, backend: str, name: str) -> None:
    with services.session_factory() as s:
        listing, after, indexes = _listings(s, caller)[name]
        sql = _page_sql(s, listing, after)
        if backend == "postgres":
            s.execute(sa.text("SET LOCAL enable_seqscan = off"))  # small tables: is the index usable?
            plan = "\n".join(r[0] for r in s.execute(sa.text("EXPLAIN " + sql)))
            assert "Seq Scan" not in plan, plan
        else:
            plan = "\n".join(str(r[-1]) for r in s.execute(sa.text("EXPLAIN QUERY PLAN " + sql)))
            main = listing.stmt.get_final_froms()[0].name
            assert f"SCAN {main}\n" not in plan + "\n" and not plan.startswith(f"SCAN {main} "), plan
            if name not in ("grants given", "grants received", "audit"):  # their union is re-sorted, 3 x 101 rows
                assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    assert any(ix in plan for ix in indexes), (name, plan)
