"""Every page view is audited like an API read, through the real app: action ``ui.<page>``, the
caller as actor, the resource the page shows; refusals and anonymous visits too. No browser."""

from __future__ import annotations

from typing import Any

import pytest
from registry.registry_models import tiny_classifier

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases

RECIPE = {"name": "bc-job", "data": {"dataset": "", "target": "target"}, "model": {"type": "logistic"},
          "train": {"epochs": 1}}


@pytest.fixture(scope="module")
def site(http: Any, world: Any) -> dict[str, Any]:
    """One organization with a dataset, a queued job, a model, a deployment and a project."""
    a = world.actor(world.org(), "owner")
    h = a.headers
    r = http.post("/api/v1/datasets/import-sample", headers=h, json={"sample": "iris", "name": "flowers"})
    assert r.status_code == 201, r.text
    job = http.post("/api/v1/jobs", headers=h, json={"recipe": {
        **RECIPE, "data": {"dataset": f"{a.org}/flowers", "target": "target"}}})
    assert job.status_code == 201, job.text
    r = http.post("/api/v1/models/upload", params={"name": "m", "filename": "m.onnx"}, content=tiny_classifier(),
                  headers={**h, "content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/deployments", headers=h, json={"name": f"d-{a.org[-6:]}", "model": f"{a.org}/m"})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/projects", headers=h,
                  json={"name": f"p-{a.org[-6:]}", "purpose": "x", "terms": ["metadata"]})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/auth/login", json={"email": a.email, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    http.cookies.clear()  # each request below names its cookie; the shared client keeps none
    return {"actor": a, "cookie": {"cookie": f"consortium_session={r.json()['session_token']}"},
            "job": job.json()["id"], "deployment": f"d-{a.org[-6:]}", "project": f"p-{a.org[-6:]}"}


def pages(site: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
    """Path template -> (path, action, resource type) for every page of the UI."""
    org, job, dep, prj = site["actor"].org, site["job"], site["deployment"], site["project"]
    return {
        "/": ("/", "ui.overview", None), "/datasets": ("/datasets", "ui.datasets", None),
        "/datasets/{org}/{dataset}": (f"/datasets/{org}/flowers", "ui.dataset", "dataset"),
        "/jobs": ("/jobs", "ui.jobs", None), "/jobs/new": ("/jobs/new", "ui.job_new", None),
        "/jobs/{job_id}": (f"/jobs/{job}", "ui.job", "job"), "/models": ("/models", "ui.models", None),
        "/models/{owner}/{model}": (f"/models/{org}/m", "ui.model", "model"),
        "/models/{owner}/{model}/versions/{version}": (f"/models/{org}/m/versions/1", "ui.version", "model"),
        "/deployments": ("/deployments", "ui.deployments", None),
        "/deployments/{deployment}": (f"/deployments/{dep}", "ui.deployment", "deployment"),
        "/projects": ("/projects", "ui.projects", None),
        "/projects/{project}": (f"/projects/{prj}", "ui.project", "project"), "/audit": ("/audit", "ui.audit", None),
        "/compare": (f"/compare?jobs={job},{job}", "ui.compare", None),  # each run is read by its page's API calls
    }


def events(http: Any, actor: Any, action: str = "ui.") -> list[dict[str, Any]]:
    r = http.get("/api/v1/audit", params={"action": action, "limit": 1000}, headers=actor.headers)
    return r.json()["items"]  # type: ignore[no-any-return]


def test_every_page_view_writes_an_audit_event(http: Any, site: dict[str, Any]) -> None:
    from consortium.api.access import route_table

    a = site["actor"]
    want = pages(site)
    served = {r.path for r in route_table(http.app) if r.rule.kind == "page" and "GET" in r.methods}
    assert served == set(want), f"pages without an audit check here: {served ^ set(want)}"
    for path, action, rtype in want.values():
        r = http.get(path, headers=site["cookie"], follow_redirects=False)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        rid = r.headers["x-request-id"]
        ev = [e for e in events(http, a, action) if e["request_id"] == rid]
        assert len(ev) == 1, (path, action, ev)
        e = ev[0]
        assert (e["action"], e["outcome"], e["actor_user_id"], e["actor_org_id"]) == (action, "ok", a.user_id, a.org_id)
        if rtype:
            assert e["resource_type"] == rtype and e["resource_id"] and e["resource_org_id"] == a.org_id, (path, e)
    version = [e for e in events(http, a, "ui.version")][0]
    assert version["details"] == {"version": 1}
    assert http.get("/api/v1/audit/verify", headers=a.headers).json()["ok"]


def test_refused_and_anonymous_page_views_are_audited(http: Any, world: Any, site: dict[str, Any]) -> None:
    a, other = site["actor"], world.actor(world.org(), "owner")
    r = http.post("/api/v1/auth/login", json={"email": other.email, "password": "correct horse battery"})
    http.cookies.clear()
    cookie = {"cookie": f"consortium_session={r.json()['session_token']}"}
    r = http.get(f"/datasets/{a.org}/flowers", headers=cookie)
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    ev = [e for e in events(http, a, "ui.dataset") if e["request_id"] == r.headers["x-request-id"]]
    assert len(ev) == 1 and ev[0]["outcome"] == "not_found" and ev[0]["actor_org_id"] == other.org_id, ev
    r = http.get("/jobs", follow_redirects=False)  # no credential: sent to the login page, and audited
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/jobs"
    from consortium.governance import audit

    with http.app.state.services.session_factory() as s:
        anon = [e for e in audit.iter_all(s) if e.request_id == r.headers["x-request-id"]]
    assert [(e.action, e.outcome, e.actor_user_id) for e in anon] == [("ui.jobs", "unauthenticated", None)]
    before = len(events(http, a, ""))  # the login form and static files are not page views of anyone's data
    for path in ("/login", "/static/app.css", "/static/js/core.js"):
        assert http.get(path).status_code == 200
    assert len(events(http, a, "")) == before + 1  # only the audit read itself
