"""The model and audit lists page in one statement, and answer what the one-by-one views answer.

``GET /models`` and ``GET /audit`` read a page as one Core statement (``views.model_page``,
``audit.org_page``): the number of statements does not grow with the page's size, and the items,
their order, their fields and the cursors are those of the ORM listing with ``views.model_view``
(models) and ``AuditEventPublic`` over the ORM events (audit), which the lists answered before.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from consortium.store.db import transaction

API = "/api/v1"
MODEL_FIELDS = ["description", "intended_use", "id", "name", "org", "project_id", "task", "created_at",
                "updated_at", "latest_version", "aliases", "versions"]
EVENT_FIELDS = ["seq", "time", "request_id", "actor_user_id", "actor_org_id", "action", "resource_type",
                "resource_id", "resource_org_id", "project_id", "outcome", "details", "hash"]
MODELS = 7


@pytest.fixture(scope="module")
def seeded(world: Any, services: Any) -> dict[str, Any]:
    """An organization with models (versions, aliases, one in a project) and events of its own, of
    its project and of another organization."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    from consortium.governance import credentials, projects
    from consortium.governance.audit import EventDraft
    from consortium.registry import models as reg

    tag = secrets.token_hex(3)
    a = world.actor(world.org(f"lpa-{tag}"))
    b = world.actor(world.org(f"lpb-{tag}"))
    with transaction(services.session_factory) as s:
        pa, pb = credentials.resolve_token(s, a.token), credentials.resolve_token(s, b.token)
        prj = projects.create(s, pa, f"lp-{tag}", "list pages", ["metadata"])
        for i in range(MODELS):
            for _ in range(1 + i % 3):
                reg.register_version(s, pa.org_id, f"m-{i}", onnx=tiny_classifier(), blobs=services.blobs,
                                     task="classification")
            reg.register_version(s, pb.org_id, f"theirs-{i}", onnx=tiny_classifier(), blobs=services.blobs)
        for i, aliases in ((2, ("staging", "prod-eu", "prod_us")), (0, ("production",))):
            m = reg.find_model(s, a.org, f"m-{i}")
            assert m is not None
            for n, alias in enumerate(aliases):
                reg.set_alias(s, pa, m, alias, 1 + n % (1 + i % 3))
        placed = reg.find_model(s, a.org, "m-1")
        assert placed is not None
        reg.place_in_project(s, pa, placed, f"{a.org}~lp-{tag}")
        project_id = prj.id
    services.audit_now([EventDraft(action=f"lpseed.{i}", actor_org_id=a.org_id, outcome="ok" if i % 2 else "denied",
                                   details={"i": i, "note": "é"})
                        for i in range(6)]
                       + [EventDraft(action="lpseed.project", actor_org_id=b.org_id, project_id=project_id)
                          for _ in range(3)]
                       + [EventDraft(action="lpseed.other", actor_org_id=b.org_id) for _ in range(3)])
    return {"a": a, "b": b, "project_id": project_id}


def _walk(http: Any, actor: Any, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = http.get(f"{API}{path}", params=q, headers=actor.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert list(body) == ["items", "next_cursor"]
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit


def _public(model: Any, value: Any) -> dict[str, Any]:
    """``value`` as the route's response model encodes it."""
    out: dict[str, Any] = model.model_validate(value).model_dump(mode="json")
    return out


def test_the_model_list_answers_what_model_view_answered(http: Any, services: Any, seeded: dict[str, Any]) -> None:
    from consortium.api.schemas.registry import ModelPublic
    from consortium.governance import credentials
    from consortium.registry import models as reg
    from consortium.registry import views

    a = seeded["a"]
    with services.session_factory() as s:
        p = credentials.resolve_token(s, a.token)
        want = [_public(ModelPublic, views.model_view(s, m)) for m in reg.models_listing(p).all(s)]
    assert [m["name"] for m in want] == [f"{a.org}/m-{i}" for i in range(MODELS)]
    assert want[2]["aliases"] == {"prod-eu": 2, "prod_us": 3, "staging": 1} and want[1]["aliases"] == {}
    assert want[1]["project_id"] == seeded["project_id"] and [m["versions"] for m in want[:3]] == [1, 2, 3]
    for limit in (1, 2, 3, 1000):
        got = _walk(http, a, "/models", limit)
        assert got == want, limit
        assert all(list(m) == MODEL_FIELDS for m in got)
        assert [list(m["aliases"]) for m in got] == [list(m["aliases"]) for m in want]  # in the same order
    assert _walk(http, seeded["b"], "/models", 1000) != want  # another organization sees its own


def _events_before(services: Any, org_id: str, top: int, **filters: Any) -> list[dict[str, Any]]:
    """The organization's events up to ``top``, read through the ORM listing as before."""
    from consortium.api.schemas.audit import AuditEventPublic
    from consortium.governance import audit, projects

    with services.session_factory() as s:
        listing = audit.events_for_org(org_id, project_ids=projects.active_project_ids(s, org_id), **filters)
        return [_public(AuditEventPublic, e) for e in listing.all(s) if e.seq <= top]


@pytest.mark.parametrize("filters", [{}, {"action": "lpseed"}, {"action": "lpseed.", "outcome": "denied"},
                                     {"since_seq": 3}])
def test_the_audit_list_answers_what_the_orm_listing_answered(http: Any, services: Any, seeded: dict[str, Any],
                                                              filters: dict[str, Any]) -> None:
    a = seeded["a"]
    for limit in (1, 4, 1000):
        got = _walk(http, a, "/audit", limit, **filters)
        assert got, filters
        # the walk's own requests add events above its first page, never below: compare up to its top
        assert got == _events_before(services, a.org_id, got[0]["seq"], **filters), (limit, filters)
        assert all(list(e) == EVENT_FIELDS for e in got)
    if not filters:
        actions = {e["action"] for e in got}
        assert "lpseed.project" in actions and "lpseed.other" not in actions  # its project's, not b's own


@contextmanager
def statements(engine: Any) -> Iterator[list[str]]:
    """The statements run on ``engine`` meanwhile, but for the audit writer's (its batches are
    shared by concurrent requests)."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.current_thread().name != "audit-group-commit":
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_page_is_one_statement_whatever_its_size(http: Any, services: Any, seeded: dict[str, Any]) -> None:
    from consortium.governance import audit, credentials, grants
    from consortium.registry import views

    a = seeded["a"]
    with services.session_factory() as s:
        p = credentials.resolve_token(s, a.token)
        pids = grants.projects_of(s, p.org_id)
        assert pids == [seeded["project_id"]]
        for limit in (1, 3, 1000):
            with statements(services.engine) as seen:
                models = views.model_page(s, p, None, limit)
            assert len(seen) == 1 and len(models.items) == min(limit, MODELS), seen
            after = models.after
            if after is not None:
                with statements(services.engine) as seen:
                    views.model_page(s, p, after, limit)
                assert len(seen) == 1, seen
            with statements(services.engine) as seen:
                events = audit.org_page(s, p.org_id, pids, None, limit, action="lpseed")
            assert len(seen) == 1 and len(events.items) == min(limit, 9), seen
    # through the API, with authentication and the audit event: the same count at any page size
    counts = {}
    for path in ("/models", "/audit"):
        for limit in (1, 1000):
            http.get(f"{API}{path}", params={"limit": limit}, headers=a.headers)  # caches filled
            with statements(services.engine) as seen:
                r = http.get(f"{API}{path}", params={"limit": limit}, headers=a.headers)
            assert r.status_code == 200 and len(r.json()["items"]) >= min(limit, MODELS)
            counts[path, limit] = len([q for q in seen if "control_revision" not in q])  # a poll, every 0.5 s
    assert counts == {(path, limit): 1 for path in ("/models", "/audit") for limit in (1, 1000)}, counts
