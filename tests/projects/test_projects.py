"""Projects through the HTTP API: lifecycle, grants to a project, terms, membership ending access,
the project audit view, the report, and the refusals the issue lists."""

from __future__ import annotations

from typing import Any

import pytest


def err(r: Any) -> str:
    return r.json()["error"]["message"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def trio(world: Any) -> dict[str, Any]:
    a, b, c = world.org(), world.org(), world.org()
    return {"a": world.actor(a), "b": world.actor(b), "c": world.actor(c),
            "b_member": world.actor(b, "member")}


def test_project_lifecycle_and_refusals(http: Any, trio: dict[str, Any], world: Any) -> None:
    a, b, c = trio["a"], trio["b"], trio["c"]
    r = http.post("/api/v1/projects", json={"name": "study-one", "purpose": "screening study",
                                            "terms": ["metadata", "compute", "invoke"],
                                            "default_quota": {"per_minute": 60}}, headers=a.headers)
    assert r.status_code == 201, r.text
    assert r.json()["members"][0]["role"] == "lead"
    # non-members do not see it
    assert http.get("/api/v1/projects/study-one", headers=b.headers).status_code == 404
    r = http.post("/api/v1/projects/study-one/invitations", json={"org": "no-such-org"}, headers=a.headers)
    assert r.status_code == 404 and "does not exist" in err(r)
    for guest in (b, c):
        r = http.post("/api/v1/projects/study-one/invitations", json={"org": guest.org}, headers=a.headers)
        assert r.status_code == 200, r.text
    # an invitation is accepted only by an admin or owner of the invited organization
    r = http.post("/api/v1/projects/study-one/accept", headers=trio["b_member"].headers)
    assert r.status_code == 403
    assert http.post("/api/v1/projects/study-one/accept", headers=b.headers).status_code == 200
    r = http.post("/api/v1/projects/study-one/accept", headers=b.headers)
    assert r.status_code == 409 and "already accepted" in err(r)
    assert http.post("/api/v1/projects/study-one/decline", headers=c.headers).status_code == 200
    # a declined org cannot leave and no longer sees the project
    assert http.post("/api/v1/projects/study-one/leave", headers=c.headers).status_code == 404
    # members see members and terms
    view = http.get("/api/v1/projects/study-one", headers=b.headers).json()
    states = {m["org"]: m["state"] for m in view["members"]}
    assert states == {a.org: "active", b.org: "active", c.org: "declined"}
    # the last lead cannot leave or be removed
    r = http.post("/api/v1/projects/study-one/leave", headers=a.headers)
    assert r.status_code == 409 and "last lead" in err(r)
    r = http.delete(f"/api/v1/projects/study-one/members/{a.org}", headers=a.headers)
    assert r.status_code == 409 and "last lead" in err(r)
    # only leads manage members
    assert http.delete(f"/api/v1/projects/study-one/members/{a.org}", headers=b.headers).status_code == 403
    r = http.patch(f"/api/v1/projects/study-one/members/{b.org}", json={"quota": {"per_minute": 5}},
                   headers=a.headers)
    assert r.status_code == 200
    # names are unique per organization: a second study-one of a is 409, b may have its own
    r = http.post("/api/v1/projects", json={"name": "study-one", "purpose": "x", "terms": ["compute"]},
                  headers=a.headers)
    assert r.status_code == 409
    r = http.post("/api/v1/projects", json={"name": "study-one", "purpose": "x", "terms": ["compute"]},
                  headers=b.headers)
    assert r.status_code == 201 and r.json()["ref"] == f"{b.org}~study-one"
    assert http.get("/api/v1/projects/study-one", headers=b.headers).json()["created_by"] == b.org  # its own first
    assert http.get(f"/api/v1/projects/{a.org}~study-one", headers=b.headers).json()["created_by"] == a.org
    r = http.post("/api/v1/projects", json={"name": "study-two", "purpose": "x", "terms": ["root"]},
                  headers=b.headers)
    assert r.status_code == 422 and "unknown permission" in err(r)


def test_grants_to_a_project_follow_membership(http: Any, trio: dict[str, Any]) -> None:
    a, b, c = trio["a"], trio["b"], trio["c"]
    http.post("/api/v1/projects", json={"name": "study-grants", "purpose": "p", "terms": ["metadata", "compute"]},
              headers=a.headers)
    http.post("/api/v1/projects/study-grants/invitations", json={"org": b.org}, headers=a.headers)
    http.post("/api/v1/projects/study-grants/accept", headers=b.headers)
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "iris", "name": "iris"}, headers=a.headers)
    assert r.status_code == 201, r.text
    ds = f"/api/v1/datasets/{a.org}/iris"
    assert http.get(ds, headers=b.headers).status_code == 404
    # outside the terms
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{a.org}/iris",
                                          "permission": "download", "grantee_project": "study-grants"},
                  headers=a.headers)
    assert r.status_code == 422 and "outside the terms" in err(r)
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{a.org}/iris",
                                          "permission": "metadata", "grantee_project": "study-grants"},
                  headers=a.headers)
    assert r.status_code == 201, r.text
    assert http.get(ds, headers=b.headers).status_code == 200
    assert http.get(ds, headers=c.headers).status_code == 404  # not a member
    # leaving ends access at once
    assert http.post("/api/v1/projects/study-grants/leave", headers=b.headers).status_code == 200
    assert http.get(ds, headers=b.headers).status_code == 404
    # the project's audit view shows the grant and the accesses to every member
    events = http.get("/api/v1/projects/study-grants/audit", headers=a.headers).json()["items"]
    actions = {e["action"] for e in events}
    assert "create_grant" in actions and "leave_project" in actions
    rep = http.get("/api/v1/projects/study-grants/report", headers=a.headers).json()
    assert rep["contributions"][0]["organization"] == a.org
    assert rep["contributions"][0]["permission"] == "metadata"


def test_project_invoke_uses_the_project_quota(http: Any, world: Any, services: Any) -> None:
    """A deployment granted to a project is invoked by members under the project's default quota,
    overridden per organization by the lead."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    from consortium.registry import models as reg
    from consortium.serving.hub import deployments as deps
    from consortium.store.db import transaction

    a, b = world.actor(world.org()), world.actor(world.org())
    name = f"prj-quota-{a.org[-6:]}"
    http.post("/api/v1/projects", json={"name": name, "purpose": "p", "terms": ["invoke"],
                                        "default_quota": {"per_minute": 2}}, headers=a.headers)
    http.post(f"/api/v1/projects/{name}/invitations", json={"org": b.org}, headers=a.headers)
    http.post(f"/api/v1/projects/{name}/accept", headers=b.headers)
    with transaction(services.session_factory) as s:
        reg.register_version(s, a.org_id, "pq", onnx=tiny_classifier(), blobs=services.blobs,
                             task="classification")
    r = http.post("/api/v1/deployments", json={"name": f"dq-{a.org[-6:]}", "model": f"{a.org}/pq"}, headers=a.headers)
    assert r.status_code == 201, r.text
    dep = r.json()["name"]
    g = http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": dep, "permission": "invoke",
                                          "grantee_project": name}, headers=a.headers)
    assert g.status_code == 201, g.text
    codes = [http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[0.1] * 4]},
                       headers=b.headers).status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and 429 in codes[2:], codes
    assert deps  # the deployments module registers the resource type


def test_uploaded_model_placed_in_a_project(http: Any, world: Any) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    a, b, c = world.actor(world.org()), world.actor(world.org()), world.actor(world.org())
    name = f"prj-up-{a.org[-6:]}"
    http.post("/api/v1/projects", json={"name": name, "purpose": "p", "terms": ["invoke"]}, headers=a.headers)
    http.post(f"/api/v1/projects/{name}/invitations", json={"org": b.org}, headers=a.headers)
    http.post(f"/api/v1/projects/{name}/accept", headers=b.headers)
    r = http.post("/api/v1/models/upload", params={"name": "shared-model", "filename": "m.onnx", "project": name},
                  content=tiny_classifier(), headers={**a.headers, "content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    card = f"/api/v1/models/{a.org}/shared-model"
    assert http.get(card, headers=b.headers).status_code == 200          # project member reads it
    assert http.get(card, headers=c.headers).status_code == 404          # non-member does not see it
    r = http.put(f"{card}/aliases/production", json={"version": 1}, headers=b.headers)
    assert r.status_code == 403                                          # only the owner changes it
    r = http.post("/api/v1/models/upload", params={"name": "x", "filename": "m.onnx", "project": "nope-nope"},
                  content=tiny_classifier(), headers={**c.headers, "content-type": "application/octet-stream"})
    assert r.status_code == 404
    rep = http.get(f"/api/v1/projects/{name}/report", headers=b.headers).json()
    assert [m["model"] for m in rep["models"]] == [f"{a.org}/shared-model"]
    assert isinstance(rep["deployment_usage"], list)
    # a deployment of the project's model is invocable by every member without a separate grant
    r = http.post("/api/v1/deployments", json={"name": f"pd-{a.org[-6:]}", "model": f"{a.org}/shared-model"},
                  headers=a.headers)
    assert r.status_code == 201, r.text
    dep = r.json()["name"]
    assert http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[0.1] * 4]},
                     headers=b.headers).status_code == 200
    assert http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[0.1] * 4]},
                     headers=c.headers).status_code == 404
