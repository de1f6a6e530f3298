"""Resources named in bodies and queries are authorized like path parameters (security issue 15,
finding 2); project and deployment names are per organization and reveal nothing (finding 12); a
grantee that can see a resource gets 403, not 404, for changing it (finding 14a).

Everything goes through the real HTTP API. "Hidden" means: the answer for another organization's
resource is the very answer for a name that does not exist (status and body, the name aside).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import tiny_classifier
from support import wait_for

API = "/api/v1"
ROW = {"inputs": [[0.1, 0.2, 0.3, 0.4]]}


def _body(r: Any, ref: str) -> Any:
    """The response body with the reference itself blanked (the rest must not differ)."""
    return r.text.replace(ref, "<ref>").replace(ref.replace("~", "/"), "<ref>")


def assert_hidden(http: Any, method: str, url: str, headers: dict[str, str], *, real: str, missing: str,
                  **kw: Any) -> None:
    """``real`` (an existing resource the caller may not see) and ``missing`` (nothing) get the same 404."""
    def call(ref: str) -> Any:
        def sub(v: Any) -> Any:
            if isinstance(v, str):
                return v.replace("{ref}", ref)
            if isinstance(v, dict):
                return {k: sub(x) for k, x in v.items()}
            if isinstance(v, list):
                return [sub(x) for x in v]
            return v
        return http.request(method, sub(url), headers=headers, **{k: sub(v) for k, v in kw.items()})

    a, b = call(real), call(missing)
    assert a.status_code == 404, (real, a.status_code, a.text)
    assert b.status_code == 404, (missing, b.status_code, b.text)
    assert _body(a, real) == _body(b, missing), (a.text, b.text)


def upload_model(http: Any, actor: Any, name: str, project: str | None = None) -> None:
    params = {"name": name, "filename": "m.onnx", **({"project": project} if project else {})}
    r = http.post(f"{API}/models/upload", params=params, content=tiny_classifier(),
                  headers={**actor.headers, "content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text


def new_project(http: Any, lead: Any, name: str, members: tuple[Any, ...] = (), invited: tuple[Any, ...] = (),
                terms: tuple[str, ...] = ("metadata", "compute", "invoke")) -> str:
    r = http.post(f"{API}/projects", json={"name": name, "purpose": "tests", "terms": list(terms)},
                  headers=lead.headers)
    assert r.status_code == 201, r.text
    for m in (*members, *invited):  # bare names: the lead's own project; the only one its invitees see
        r = http.post(f"{API}/projects/{name}/invitations", json={"org": m.org}, headers=lead.headers)
        assert r.status_code == 200, r.text
    for m in members:
        assert http.post(f"{API}/projects/{name}/accept", headers=m.headers).status_code == 200
    return name


def recipe(dataset: str, **extra: Any) -> dict[str, Any]:
    return {"name": "ref-check", "data": {"dataset": dataset, "target": "target"},
            "model": {"type": "logistic"}, "train": {"epochs": 1}, **extra}


@pytest.fixture(scope="module")
def w(http: Any, world: Any) -> dict[str, Any]:
    """A hospital with a private project, a dataset and a model; a partner in the project; an
    outsider in nothing; a clinic holding a metadata grant on the dataset."""
    hosp, partner, outsider, clinic = (world.actor(world.org(), "owner") for _ in range(4))
    viewer = world.actor(hosp.org, "viewer")
    for a in (hosp, outsider, partner, clinic):
        r = http.post(f"{API}/datasets/import-sample", json={"sample": "iris", "name": "iris"}, headers=a.headers)
        assert r.status_code == 201, r.text
    prj = new_project(http, hosp, "private-study", members=(partner,), invited=(clinic,))
    upload_model(http, hosp, "secret-model")
    upload_model(http, hosp, "shared-model", project=prj)
    r = http.post(f"{API}/grants", json={"resource_type": "dataset", "resource": f"{hosp.org}/iris",
                                         "permission": "metadata", "grantee_org": clinic.org}, headers=hosp.headers)
    assert r.status_code == 201, r.text
    return {"hosp": hosp, "partner": partner, "outsider": outsider, "clinic": clinic, "viewer": viewer,
            "project": prj}


# ------------------------------------------------------------------------------------ finding 2
def test_a_job_cannot_be_pushed_into_another_orgs_project(http: Any, w: dict[str, Any]) -> None:
    """The finding: 201 and the job, its model and events in the project's audit; now 404 exactly
    as for a project that does not exist, in either reference form, and nothing reaches the project."""
    out, hosp = w["outsider"], w["hosp"]
    body = {"recipe": recipe(f"{out.org}/iris"), "project": "{ref}"}
    assert_hidden(http, "POST", f"{API}/jobs", out.headers, real="private-study", missing="no-such-study", json=body)
    assert_hidden(http, "POST", f"{API}/jobs", out.headers, real=f"{hosp.org}~private-study",
                  missing=f"{hosp.org}~no-such-study", json=body)
    assert_hidden(http, "POST", f"{API}/jobs", out.headers, real=f"{hosp.org}/private-study",
                  missing=f"{hosp.org}/no-such-study", json=body)
    assert http.get(f"{API}/jobs", headers=out.headers).json()["items"] == []
    events = http.get(f"{API}/projects/{w['project']}/audit", headers=hosp.headers).json()["items"]
    assert not [e for e in events if e["actor_org_id"] == out.org_id]
    # the hospital itself sees the attempts that named its project exactly
    events = http.get(f"{API}/audit", params={"action": "submit_job"}, headers=hosp.headers).json()["items"]
    assert [e for e in events if e["actor_org_id"] == out.org_id and e["outcome"] == "not_found"
            and e["resource_type"] == "project"]
    # an invited organization sees the project but may not work in it yet; a member may
    r = http.post(f"{API}/jobs", json={"recipe": recipe(f"{w['clinic'].org}/iris"), "project": "private-study"},
                  headers=w["clinic"].headers)
    assert r.status_code == 403 and "accept" in r.json()["error"]["message"], r.text
    r = http.post(f"{API}/jobs", json={"recipe": recipe(f"{w['partner'].org}/iris"), "project": "private-study"},
                  headers=w["partner"].headers)
    assert r.status_code == 201 and r.json()["project_id"], r.text
    # a viewer is refused by role before anything is resolved
    r = http.post(f"{API}/jobs", json={"recipe": recipe(f"{hosp.org}/iris"), "project": "private-study"},
                  headers=w["viewer"].headers)
    assert r.status_code == 403


def test_recipe_datasets_are_authorized_like_path_parameters(http: Any, w: dict[str, Any]) -> None:
    out, hosp, clinic = w["outsider"], w["hosp"], w["clinic"]
    assert_hidden(http, "POST", f"{API}/jobs", out.headers, real=f"{hosp.org}/iris", missing=f"{hosp.org}/nope",
                  json={"recipe": recipe("{ref}")})
    # a metadata grant shows the dataset: training on it is 403, not 404
    r = http.post(f"{API}/jobs", json={"recipe": recipe(f"{hosp.org}/iris")}, headers=clinic.headers)
    assert r.status_code == 403, r.text
    # federated: a hidden dataset among the list is 404 like a missing one (was 403 for both)
    fed = {"datasets": [f"{out.org}/iris", "{ref}"], "rounds": 1}
    assert_hidden(http, "POST", f"{API}/jobs", out.headers, real=f"{hosp.org}/iris", missing=f"{hosp.org}/nope",
                  json={"recipe": recipe(f"{out.org}/iris", federated=fed)})
    fed = {"datasets": [f"{clinic.org}/iris", f"{hosp.org}/iris"], "rounds": 1}
    r = http.post(f"{API}/jobs", json={"recipe": recipe(f"{clinic.org}/iris", federated=fed)}, headers=clinic.headers)
    assert r.status_code == 403, r.text


def test_register_model_names_only_your_own_model(http: Any, w: dict[str, Any]) -> None:
    """``register.model`` of another organization: 404 like a missing one (the job used to be queued
    and fail at its end); 403 for a project member, which reads the model but may not add to it."""
    out, hosp, partner = w["outsider"], w["hosp"], w["partner"]
    assert_hidden(http, "POST", f"{API}/jobs", out.headers, real=f"{hosp.org}/secret-model",
                  missing=f"{hosp.org}/no-model",
                  json={"recipe": recipe(f"{out.org}/iris", register={"model": "{ref}"})})
    r = http.post(f"{API}/jobs", json={"recipe": recipe(f"{partner.org}/iris",
                                                        register={"model": f"{hosp.org}/shared-model"})},
                  headers=partner.headers)
    assert r.status_code == 403, r.text
    r = http.post(f"{API}/jobs", json={"recipe": recipe(f"{out.org}/iris", register={"model": f"{out.org}/mine"})},
                  headers=out.headers)
    assert r.status_code == 201 and r.json()["recipe"]["register"]["model"] == "mine", r.text


def test_deploying_another_orgs_model_is_refused(http: Any, w: dict[str, Any]) -> None:
    """A project member could deploy the lead's model, creating a deployment in the lead's name."""
    out, hosp, partner = w["outsider"], w["hosp"], w["partner"]
    assert_hidden(http, "POST", f"{API}/deployments", out.headers, real=f"{hosp.org}/secret-model",
                  missing=f"{hosp.org}/no-model", json={"name": "intruder", "model": "{ref}"})
    r = http.post(f"{API}/deployments", json={"name": "intruder", "model": f"{hosp.org}/shared-model"},
                  headers=partner.headers)
    assert r.status_code == 403, r.text
    assert [d["name"] for d in http.get(f"{API}/deployments", headers=hosp.headers).json()["items"]] == []


def test_grants_and_uploads_name_only_visible_projects_and_models(http: Any, w: dict[str, Any]) -> None:
    out, hosp = w["outsider"], w["hosp"]
    assert_hidden(http, "POST", f"{API}/grants", out.headers, real="private-study", missing="no-such-study",
                  json={"resource_type": "dataset", "resource": "iris", "permission": "metadata",
                        "grantee_project": "{ref}"})
    headers = {**out.headers, "content-type": "application/octet-stream"}
    assert_hidden(http, "POST", f"{API}/models/upload", headers, real="private-study", missing="no-such-study",
                  params={"name": "m", "filename": "m.onnx", "project": "{ref}"}, content=tiny_classifier())
    assert_hidden(http, "POST", f"{API}/models/upload", headers, real=f"{hosp.org}/secret-model",
                  missing=f"{hosp.org}/no-model", params={"name": "{ref}", "filename": "m.onnx"},
                  content=tiny_classifier())
    r = http.post(f"{API}/models/upload", params={"name": f"{hosp.org}/shared-model", "filename": "m.onnx"},
                  content=tiny_classifier(), headers={**w["partner"].headers, "content-type": "application/x"})
    assert r.status_code == 403, r.text


def test_hidden_dataset_answers_like_a_missing_one(http: Any, w: dict[str, Any]) -> None:
    """The hub's own 404 for a dataset had a hint that the grant check's 404 lacked."""
    assert_hidden(http, "GET", API + "/datasets/{ref}", w["outsider"].headers, real=f"{w['hosp'].org}/iris",
                  missing=f"{w['hosp'].org}/nope")


# ----------------------------------------------------------------------------------- finding 12
@pytest.fixture(scope="module")
def tour(http: Any, world: Any) -> dict[str, Any]:
    """The README's tour: the hospital deploys bc-risk and grants the clinic invoke."""
    hosp, clinic, other = (world.actor(world.org(), "owner") for _ in range(3))
    upload_model(http, hosp, "bc")
    r = http.post(f"{API}/deployments", json={"name": "bc-risk", "model": "bc"}, headers=hosp.headers)
    assert r.status_code == 201, r.text
    r = http.post(f"{API}/grants", json={"resource_type": "deployment", "resource": "bc-risk",
                                         "permission": "invoke", "grantee_org": clinic.org}, headers=hosp.headers)
    assert r.status_code == 201, r.text
    return {"hosp": hosp, "clinic": clinic, "other": other}


def test_deployment_names_are_per_organization(http: Any, tour: dict[str, Any]) -> None:
    hosp, clinic, other = tour["hosp"], tour["clinic"], tour["other"]
    # the clinic calls it by its bare name, on both protocols, with its own token
    assert http.post(f"{API}/deployments/bc-risk/predict", json=ROW, headers=clinic.headers).status_code == 200
    v2 = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]}]}
    r = http.post("/v2/models/bc-risk/infer", json=v2, headers=clinic.headers)
    assert r.status_code == 200, r.text
    # another organization's use of the name says nothing (was 409 "already exists on this hub")
    upload_model(http, other, "bc")
    r = http.post(f"{API}/deployments", json={"name": "bc-risk", "model": "bc"}, headers=other.headers)
    assert r.status_code == 201, r.text
    r = http.post(f"{API}/deployments", json={"name": "bc-risk", "model": "bc"}, headers=other.headers)
    assert r.status_code == 409 and "your organization" in r.json()["error"]["message"]
    # each organization's bare name is its own; the clinic still reaches the hospital's
    assert http.get(f"{API}/deployments/bc-risk", headers=other.headers).json()["org"] == other.org
    assert http.get(f"{API}/deployments/bc-risk", headers=hosp.headers).json()["org"] == hosp.org
    view = http.get(f"{API}/deployments/bc-risk", headers=clinic.headers).json()
    assert view["org"] == hosp.org and view["ref"] == f"{hosp.org}~bc-risk"
    assert view["endpoints"]["open_inference"] == f"/v2/models/{hosp.org}~bc-risk/infer"
    # once the clinic may call both, the bare name is ambiguous: 409 naming the two it sees
    r = http.post(f"{API}/grants", json={"resource_type": "deployment", "resource": "bc-risk",
                                         "permission": "invoke", "grantee_org": clinic.org}, headers=other.headers)
    assert r.status_code == 201, r.text
    r = wait_for(lambda: (x := http.post(f"{API}/deployments/bc-risk/predict", json=ROW, headers=clinic.headers))
                 .status_code == 409 and x, timeout=10, what="the gate to see the second grant (2 ttl)")
    assert f"{hosp.org}~bc-risk" in r.text and f"{other.org}~bc-risk" in r.text
    r = http.post("/v2/models/bc-risk/infer", json=v2, headers=clinic.headers)
    assert r.status_code == 409 and "error" in r.json()
    for ref in (f"{hosp.org}~bc-risk", f"{other.org}~bc-risk"):
        assert http.post(f"{API}/deployments/{ref}/predict", json=ROW, headers=clinic.headers).status_code == 200
        assert http.post(f"/v2/models/{ref}/infer", json=v2, headers=clinic.headers).status_code == 200


def test_a_stranger_cannot_tell_used_names_from_free_ones(http: Any, world: Any, tour: dict[str, Any]) -> None:
    stranger = world.actor(world.org(), "owner")
    hosp = tour["hosp"].org
    for url in (API + "/deployments/{ref}", API + "/deployments/{ref}/usage"):
        assert_hidden(http, "GET", url, stranger.headers, real="bc-risk", missing="no-risk")
        assert_hidden(http, "GET", url, stranger.headers, real=f"{hosp}~bc-risk", missing=f"{hosp}~no-risk")
    assert_hidden(http, "POST", API + "/deployments/{ref}/predict", stranger.headers, real=f"{hosp}~bc-risk",
                  missing=f"{hosp}~no-risk", json=ROW)
    assert_hidden(http, "POST", API + "/deployments/{ref}/predict", stranger.headers, real="bc-risk",
                  missing="no-risk", json=ROW)
    assert_hidden(http, "GET", "/v2/models/{ref}", stranger.headers, real=f"{hosp}~bc-risk", missing=f"{hosp}~no-risk")
    # its own project or deployment may take any name
    r = http.post(f"{API}/projects", json={"name": "breast-cancer-study", "purpose": "x", "terms": ["compute"]},
                  headers=stranger.headers)
    assert r.status_code == 201, r.text


def test_project_names_are_per_organization(http: Any, world: Any) -> None:
    a, b, c = (world.actor(world.org(), "owner") for _ in range(3))
    new_project(http, a, "breast-cancer-study", members=(c,))
    r = http.post(f"{API}/projects", json={"name": "breast-cancer-study", "purpose": "x", "terms": ["compute"]},
                  headers=b.headers)
    assert r.status_code == 201, r.text  # was 409: "a project named ... already exists"
    # c is in a's only: the bare name is a's for c (the tour's `--project breast-cancer-study`)
    assert http.get(f"{API}/projects/breast-cancer-study", headers=c.headers).json()["created_by"] == a.org
    # once c is also in b's, the bare name is ambiguous; qualified names work
    http.post(f"{API}/projects/breast-cancer-study/invitations", json={"org": c.org}, headers=b.headers)
    r = http.get(f"{API}/projects/breast-cancer-study", headers=c.headers)
    assert r.status_code == 409
    assert f"{a.org}~breast-cancer-study" in r.text and f"{b.org}~breast-cancer-study" in r.text
    assert http.post(f"{API}/projects/{b.org}~breast-cancer-study/accept", headers=c.headers).status_code == 200
    r = http.post(f"{API}/jobs", json={"recipe": recipe("nope/nope"), "project": "breast-cancer-study"},
                  headers=c.headers)
    assert r.status_code == 409, r.text
    # a's own bare name stays a's
    assert http.get(f"{API}/projects/breast-cancer-study", headers=a.headers).json()["created_by"] == a.org


# ---------------------------------------------------------------------------------- finding 14a
def test_a_grantee_that_sees_a_resource_gets_403_for_changing_it(http: Any, w: dict[str, Any],
                                                                 tour: dict[str, Any]) -> None:
    hosp, clinic = tour["hosp"], tour["clinic"]
    ref = f"{hosp.org}~bc-risk"
    assert http.get(f"{API}/deployments/{ref}", headers=clinic.headers).status_code == 200
    r = http.delete(f"{API}/deployments/{ref}", headers=clinic.headers)
    assert r.status_code == 403, r.text  # was 404
    assert http.get(f"{API}/deployments/{ref}", headers=clinic.headers).status_code == 200
    # datasets (metadata grant), models (project member), projects (member, not lead), grants (grantee)
    h, c, partner = w["hosp"], w["clinic"], w["partner"]
    assert http.get(f"{API}/datasets/{h.org}/iris", headers=c.headers).status_code == 200
    assert http.delete(f"{API}/datasets/{h.org}/iris", headers=c.headers).status_code == 403
    assert http.get(f"{API}/models/{h.org}/shared-model", headers=partner.headers).status_code == 200
    assert http.patch(f"{API}/models/{h.org}/shared-model", json={"description": "x"},
                      headers=partner.headers).status_code == 403
    r = http.patch(f"{API}/projects/{w['project']}", json={"purpose": "x"}, headers=partner.headers)
    assert r.status_code == 403
    received = http.get(f"{API}/grants", params={"direction": "received"}, headers=c.headers).json()["items"]
    grant = next(g for g in received if g["resource_type"] == "dataset")
    assert http.delete(f"{API}/grants/{grant['id']}", headers=c.headers).status_code == 403


# ---------------------------------------------------------------------------------- the migration
def test_migration_makes_names_unique_per_organization(backend: str, tmp_path: Path) -> None:
    """From the hub-wide constraints to per-organization ones, on this backend, with rows kept."""
    import sqlalchemy as sa
    from alembic import command

    from consortium.store.db import alembic_config

    drop: Any = None
    if backend == "postgres":  # a scratch database of its own (the module's is at the newest revision)
        from support import pg_database

        url, drop = pg_database()
    else:
        url = f"sqlite:///{tmp_path / 'mig.db'}"
    try:
        cfg = alembic_config(url)
        command.upgrade(cfg, "0400_projects")
        command.upgrade(cfg, "0201_registry_explain")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as c:
            for org in ("org_a", "org_b"):
                c.execute(sa.text("INSERT INTO organizations (id, name, display_name, description, created_at) "
                                  "VALUES (:i, :i, :i, '', CURRENT_TIMESTAMP)"), {"i": org})
            c.execute(sa.text("INSERT INTO projects (id, name, purpose, terms, default_quota, created_by_org, "
                              "created_at) VALUES ('prj_1', 'study', 'p', '[]', '{}', 'org_a', CURRENT_TIMESTAMP)"))
        command.upgrade(cfg, "heads")
        with engine.begin() as c:  # the same name in another organization now fits; twice in one does not
            c.execute(sa.text("INSERT INTO projects (id, name, purpose, terms, default_quota, created_by_org, "
                              "created_at) VALUES ('prj_2', 'study', 'p', '[]', '{}', 'org_b', CURRENT_TIMESTAMP)"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
            c.execute(sa.text("INSERT INTO projects (id, name, purpose, terms, default_quota, created_by_org, "
                              "created_at) VALUES ('prj_3', 'study', 'p', '[]', '{}', 'org_b', CURRENT_TIMESTAMP)"))
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM projects")).scalar() == 2
            insp = sa.inspect(c)
            uniques = {u["name"]: u["column_names"] for u in insp.get_unique_constraints("deployments")}
            assert uniques.get("uq_deployments_org_name") == ["org_id", "name"], uniques
        engine.dispose()
    finally:
        if drop:
            drop()



def test_the_sdk_takes_org_slash_name_for_paths(live_url: str, tour: dict[str, Any]) -> None:
    """The SDK (and so the CLI) turns ``org/name`` into the path segment ``org~name``."""
    import consortium

    hosp = tour["hosp"].org
    with consortium.Client(live_url, token=tour["clinic"].token) as c:
        assert c.deployments.get(f"{hosp}/bc-risk")["org"] == hosp
        assert c.deployments.predict(f"{hosp}/bc-risk", ROW["inputs"])["predictions"]
