"""Every route of the app x {anonymous, other organization, viewer, admin, operator}, and every
resource named in a body or query field x {outsider, viewer, member, admin, grantee}.

Each route declares an access rule (``consortium.api.access.rule``). This test walks the app's
whole route table, fails for any route without a rule or without a way to fill its path
parameters, and checks the outcome each caller gets against the rule:
anonymous -> 401; another organization -> 404 on a resource it holds no grant on; a role
below the rule's -> 403; a sufficient role -> neither 401, 403 nor 404. Web UI pages (kind
``page``) redirect an anonymous browser to the login page (303) and otherwise follow the ``org``
logic, or the ``resource`` logic when a path parameter names the resource.

Resources named in bodies and queries (``project``, ``recipe.data.dataset``, ``model``, ...) are
authorized like path parameters: ``BODY_REFS`` lists each (route, field, maker) with what each
caller kind gets, and the test walks it; a 404 must be the very answer for a missing resource.
``test_every_body_and_query_reference_is_covered`` fails for a request-schema field named like a
reference (``REF_NAME``) that neither ``BODY_REFS`` nor ``NOT_REFERENCES`` lists.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from consortium.api.access import Rule, route_table
from consortium.governance.roles import Role
from consortium.store.db import transaction
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.grants import Grant
from consortium.store.tables.identity import ApiToken, Invitation

DENIED = {401, 403, 404}
# Route-specific fixture makers register themselves here: path parameter -> maker(ctx) -> value.
PATH_FIXTURES: dict[str, Callable[[dict[str, Any]], str]] = {}


def fixture(name: str):  # type: ignore[no-untyped-def]
    def deco(fn: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
        PATH_FIXTURES[name] = fn
        return fn
    return deco


@fixture("name")
def _org_name(m: dict[str, Any]) -> str:
    return m["org_a"]


@fixture("user_id")
def _member(m: dict[str, Any]) -> str:
    return m["world"].actor(m["org_a"], "member").user_id


@fixture("token_id")
def _token(m: dict[str, Any]) -> str:
    from datetime import timedelta

    with transaction(m["svc"].session_factory) as s:
        tok = ApiToken(id=new_id("tok"), user_id=m["admin"].user_id, org_id=m["admin"].org_id,
                       name=f"fx-{secrets.token_hex(3)}", role="admin", token_hash=secrets.token_hex(32),
                       prefix="csm_tok_fx", expires_at=utcnow() + timedelta(days=1))
        s.add(tok)
    return tok.id


@fixture("invitation_id")
def _invitation(m: dict[str, Any]) -> str:
    from datetime import timedelta

    with transaction(m["svc"].session_factory) as s:
        inv = Invitation(id=new_id("inv"), org_id=m["admin"].org_id, email="x@y.example", role="member",
                         token_hash=secrets.token_hex(32), created_by=m["admin"].user_id,
                         expires_at=utcnow() + timedelta(days=1))
        s.add(inv)
    return inv.id


@fixture("grant_id")
def _grant(m: dict[str, Any]) -> str:
    with transaction(m["svc"].session_factory) as s:
        g = Grant(id=new_id("grt"), resource_type="dataset", resource_id=new_id("ds"),
                  owner_org_id=m["admin"].org_id, grantee_org_id=m["third"].org_id, permission="metadata",
                  limits={}, created_by=m["admin"].user_id)
        s.add(g)
    return g.id


@fixture("job_id")
def _job(m: dict[str, Any]) -> str:
    from consortium.jobs import queue

    with transaction(m["svc"].session_factory) as s:
        job = queue.submit(s, org_id=m["admin"].org_id, user_id=m["admin"].user_id, kind="train",
                           name="fixture", recipe={"name": "fixture"})
        queue.finish(s, job.id, "succeeded", result={})  # finished, so its event stream ends
    return job.id



# -- registry and deployments: a fresh model (version 1, alias "production", a plot) per call
def _registered(m: dict[str, Any]) -> tuple[str, str]:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    from consortium.registry import models as reg

    name = f"fx-{secrets.token_hex(3)}"
    with transaction(m["svc"].session_factory) as s:
        v = reg.register_version(s, m["admin"].org_id, name, onnx=tiny_classifier(), blobs=m["svc"].blobs,
                                 task="classification", plots={"roc": b"\x89PNG fixture"})
        model = s.get(reg.RegisteredModel, v.model_id)
        s.add(reg.ModelAlias(model_id=model.id, alias="production", version_id=v.id))
    return m["org_a"], name


@fixture("owner")
def _model_owner(m: dict[str, Any]) -> str:
    return m["org_a"]


@fixture("model")
def _model(m: dict[str, Any]) -> str:
    return _registered(m)[1]


@fixture("version")
def _model_version(m: dict[str, Any]) -> str:
    return "1"


@fixture("alias")
def _model_alias(m: dict[str, Any]) -> str:
    return "production"


@fixture("plot")
def _model_plot(m: dict[str, Any]) -> str:
    return "roc"


@fixture("deployment")
def _deployment(m: dict[str, Any]) -> str:
    from consortium.registry import models as reg
    from consortium.store.tables.registry import Deployment

    org, name = _registered(m)
    dep = f"fx-{secrets.token_hex(4)}"
    with transaction(m["svc"].session_factory) as s:
        mdl = reg.find_model(s, org, name)
        s.add(Deployment(id=new_id("dep"), name=dep, org_id=mdl.org_id, model_id=mdl.id,
                         version_id=reg.get_version(s, mdl, 1).id, created_by=m["admin"].user_id))
    return dep

# -- datasets: a fresh dataset of org_a with version 1 (a small CSV) per call
@fixture("org")
def _dataset_org(m: dict[str, Any]) -> str:
    return m["org_a"]


@fixture("dataset")
def _dataset(m: dict[str, Any]) -> str:
    from consortium.data.ingest import Upload, ingest
    from consortium.governance import credentials

    name = f"fx-{secrets.token_hex(3)}"
    with transaction(m["svc"].session_factory) as s:
        p = credentials.resolve_token(s, m["admin"].token)
        ingest(s, m["svc"].blobs, p, name, [b"x,y\n1,0\n2,1\n"], Upload(filename="fx.csv", target="y"))
    return name


@fixture("withdrawal_id")
def _withdrawal(m: dict[str, Any]) -> str:
    """A withdrawal org_a made (of a version of a fresh dataset of its own; issue 19)."""
    from consortium.store.tables.protection import DatasetWithdrawal

    with transaction(m["svc"].session_factory) as s:
        w = DatasetWithdrawal(id=new_id("wd"), org_id=m["admin"].org_id, dataset_id=new_id("ds"),
                              dataset=f"{m['org_a']}/fx", version=1, mode="stop", effects={})
        s.add(w)
    return w.id


@fixture("asset")
def _ui_asset(m: dict[str, Any]) -> str:
    return "app.css"


@fixture("project")
def _project(m: dict[str, Any]) -> str:
    from consortium.governance import projects
    from consortium.governance.credentials import resolve_token

    with transaction(m["svc"].session_factory) as s:
        prj = projects.create(s, resolve_token(s, m["admin"].token), f"prj-{secrets.token_hex(3)}",
                              "fixture", ["metadata", "compute"])
    return prj.name


def expected(rule: Rule, persona: str, has_params: bool = False) -> str:
    """'ok', 303, 401, 403 or 404 for a persona under a rule (``has_params``: the path names a resource)."""
    if rule.kind in ("public", "page_public"):
        return "ok"
    if rule.kind == "page":
        if persona == "anonymous":
            return "303"
        rule = Rule("resource" if has_params else "org", rule.role)
    if rule.kind == "credential":
        return "4xx" if persona == "anonymous" else "any"
    if persona == "anonymous":
        return "401"
    if rule.kind in ("operator", "metrics"):  # metrics: the test client's address is not allow-listed
        return "ok" if persona == "operator" else "403"
    if rule.kind == "self":
        return "ok"
    role = {"viewer": Role.viewer, "admin": Role.admin, "other": Role.owner, "operator": Role.owner}[persona]
    if rule.kind == "resource" and persona in ("other", "operator"):
        return "404"
    return "ok" if role.at_least(rule.role) else "403"


def _check(status: int, exp: str) -> bool:
    if exp == "ok":
        return status not in DENIED and status < 500
    if exp == "4xx":
        return 400 <= status < 500
    if exp == "any":
        return status < 500
    return status == int(exp)


@pytest.fixture(scope="module")
def matrix(world: Any, services: Any) -> dict[str, Any]:
    org_a, org_b, org_c, org_o = world.org(), world.org(), world.org(), world.org()
    return {"world": world, "svc": services, "org_a": org_a,
            "viewer": world.actor(org_a, "viewer"), "admin": world.actor(org_a, "admin"),
            "member": world.actor(org_a, "member"),
            "other": world.actor(org_b, "owner"), "third": world.actor(org_c, "owner"),
            "operator": world.actor(org_o, "owner", operator=True)}


def test_every_route_declares_a_rule(app: Any) -> None:
    missing = [f"{sorted(r.methods)} {r.path}" for r in route_table(app) if r.rule is None]
    assert not missing, f"routes without an access rule (add @rule(...)): {missing}"


def test_every_path_parameter_has_a_fixture(app: Any) -> None:
    params = {p for r in route_table(app) for p in re.findall(r"{(\w+)(?::\w+)?}", r.path)}
    missing = params - set(PATH_FIXTURES)
    assert not missing, f"add a PATH_FIXTURES maker for: {sorted(missing)}"


def test_matrix(app: Any, http: Any, matrix: dict[str, Any]) -> None:
    failures: list[str] = []
    checked = 0
    for route in route_table(app):
        rule = route.rule
        assert rule is not None, route.path
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            for persona in ("anonymous", "other", "viewer", "operator", "admin"):
                values = {p: PATH_FIXTURES[p](matrix)
                          for p in re.findall(r"{(\w+)(?::\w+)?}", route.path)}
                path = route.path
                for k, v in values.items():
                    path = re.sub(r"{" + k + r"(?::\w+)?}", v, path)
                headers = {} if persona == "anonymous" else matrix[persona].headers
                r = http.request(method, path, headers=headers, follow_redirects=False)
                exp = expected(rule, persona, bool(values))
                checked += 1
                if not _check(r.status_code, exp):
                    failures.append(f"{method} {route.path} as {persona}: got {r.status_code}, "
                                    f"expected {exp} ({rule.kind}/{rule.role.value}): {r.text[:160]}")
    assert checked > 50
    assert not failures, "\n".join(failures)


# -- consent (issue 19): a fresh request from org_c's model to org_a, the contributor, per call
@fixture("consent_id")
def _consent(m: dict[str, Any]) -> str:
    from consortium.store.tables.policies import ConsentRequest
    from consortium.store.tables.registry import RegisteredModel

    with transaction(m["svc"].session_factory) as s:
        model = RegisteredModel(id=new_id("mdl"), org_id=m["third"].org_id, name=f"fx-{secrets.token_hex(3)}")
        s.add(model)
        s.flush()
        row = ConsentRequest(id=new_id("cns"), model_id=model.id, requester_org_id=m["third"].org_id,
                             contributor_org_id=m["admin"].org_id, target_org_id=m["other"].org_id,
                             action="deploy", created_by=m["third"].user_id)
        s.add(row)
    return row.id


# -- federation: a fresh node of org_a per call
@fixture("node")
def _node(m: dict[str, Any]) -> str:
    from consortium.governance.credentials import resolve_token
    from consortium.jobs import federated_nodes

    with transaction(m["svc"].session_factory) as s:
        n = federated_nodes.register(s, resolve_token(s, m["admin"].token), f"fx-{secrets.token_hex(3)}")
    return n.id


# ---------------------------------------------------------------------------------------------------
# Resources named in bodies and queries: authorized like path parameters, for every caller kind.
# Personas: "other" (an outsider organization), org_a's "viewer", "member" and "admin", and the
# "grantee" (org_c, m["third"]), which each entry's ``grantee`` step lets see the resource with less
# than the route needs (a metadata grant, a pending project invitation, a project that shows a model).
REF_NAME = re.compile(r"(^|_)(project|dataset|model|deployment|grant|node|resource)s?$|_id$")
REF_PERSONAS = ("other", "viewer", "member", "admin", "grantee")
DEFAULT_EXPECT = {"other": "404", "viewer": "403", "member": "ok", "admin": "ok", "grantee": "403"}
# Fields named like references that name no hub resource to authorize, and why.
NOT_REFERENCES: dict[tuple[str, str, str], str] = {
    ("POST", "/api/v1/jobs", "recipe.model"): "the architecture section (type mlp/cnn/logistic), not a model",
    ("POST", "/api/v1/nodes", "datasets"): "what the caller's own node advertises about its local files",
    ("POST", "/api/v1/nodes/{node}/heartbeat", "datasets"): "the caller's own node's advertised local files",
    ("POST", "/api/v1/nodes/{node}/heartbeat", "deleted.dataset"): "the name of a local copy the caller's own node "
        "deleted; recorded only against a withdrawal of the caller's organization (others are ignored)",
    ("POST", "/api/v1/jobs", "recipe.federated.min_nodes"): "a count of nodes, not a node",
    ("POST", "/api/v1/audit/verify", "checkpoints.key_id"): "the signing key named inside a checkpoint the caller "
                                                          "hands in to verify (a public key id), no resource",
    ("PUT", "/api/v1/datasets/{org}/{dataset}/policy", "projects"): "projects a dataset's owner allows its data "
        "for: one its organization is not in gets the same 422 as a missing one (governance.policies)",
    ("POST", "/api/v1/datasets/{org}/{dataset}/policy/refusals", "job_id"): "the job the owner's own node refused: "
        "404 unless the hub assigned it to the caller's organization; nothing of the job is returned",
    ("POST", "/api/v1/datasets/{org}/{dataset}/versions/{version}/withdraw", "end_grants"):
        "a yes/no switch (end the dataset's grants or keep them), naming no grant",
    ("GET", "/compare", "?model"): "the compare page's shell only echoes the name (escaped, pattern-checked); the "
                                   "browser reads each version through the API with the caller's own access",
}


@dataclass(frozen=True)
class Made:
    ref: str  # the reference sent in the field
    url: str  # the concrete URL (an entry may need its own path values)
    extra: dict[str, Any]


@dataclass(frozen=True)
class BodyRef:
    """A body/query field naming a resource: ``make`` creates one of org_a's, ``grantee`` gives
    m["third"] weaker access to it, ``send`` builds a persona's request naming it."""

    method: str
    path: str
    field: str  # dotted inside the body; "?name" for a query parameter
    make: Callable[[dict[str, Any]], Made]
    grantee: Callable[[dict[str, Any], Made], None]
    send: Callable[[dict[str, Any], str, Made, str], dict[str, Any]]  # (m, persona, made, ref) -> kwargs
    expect: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_EXPECT))


def _principal(m: dict[str, Any], persona: str) -> Any:
    from consortium.governance.credentials import resolve_token

    with transaction(m["svc"].session_factory) as s:
        return resolve_token(s, m[persona].token)


def _own_dataset(m: dict[str, Any], persona: str) -> str:
    """A dataset the persona's organization owns (org_a's for its viewer), made once."""
    from consortium.data.ingest import Upload, ingest

    who = "admin" if persona in ("viewer", "member", "admin") else persona
    cache = m.setdefault("own_datasets", {})
    if who not in cache:
        name = f"own-{secrets.token_hex(3)}"
        with transaction(m["svc"].session_factory) as s:
            from consortium.governance.credentials import resolve_token

            ingest(s, m["svc"].blobs, resolve_token(s, m[who].token), name, [b"x,y\n1,0\n2,1\n3,0\n"],
                   Upload(filename="own.csv", target="y"))
        cache[who] = f"{m[who].org}/{name}"
    return cache[who]  # type: ignore[no-any-return]


def _elsewhere(m: dict[str, Any], persona: str) -> str:
    """An organization other than the persona's (a grantee for a grant it tries to give)."""
    return m["third"].org if persona == "other" else m["other"].org


def _recipe(dataset: str, **extra: Any) -> dict[str, Any]:
    return {"name": "refs", "data": {"dataset": dataset, "target": "y"}, "model": {"type": "logistic"},
            "train": {"epochs": 1}, **extra}


def _made_dataset(m: dict[str, Any]) -> Made:
    return Made(f"{m['org_a']}/{PATH_FIXTURES['dataset'](m)}", "", {})


def _made_project(m: dict[str, Any]) -> Made:
    return Made(PATH_FIXTURES["project"](m), "", {})


def _made_model(m: dict[str, Any]) -> Made:
    org, name = _registered(m)
    return Made(f"{org}/{name}", "", {})


def _grant_metadata(m: dict[str, Any], made: Made) -> None:
    from consortium.governance import grants

    with transaction(m["svc"].session_factory) as s:
        from consortium.governance.credentials import resolve_token

        grants.create_grant(s, resolve_token(s, m["admin"].token), m["svc"].resource_types.get("dataset"),
                            made.ref, "metadata", grantee_org=m["third"].org)


def _invite(m: dict[str, Any], made: Made) -> None:
    """The grantee is invited to the project, and has not accepted: it sees it, may not work in it."""
    from consortium.governance import projects

    with transaction(m["svc"].session_factory) as s:
        from consortium.governance.credentials import resolve_token

        p = resolve_token(s, m["admin"].token)
        prj, lead = projects.visible(s, p, made.ref)
        projects.invite(s, p, prj, lead, m["third"].org)


def _show_model(m: dict[str, Any], made: Made) -> None:
    """The model is placed in a project the grantee is an active member of: it reads it, no more."""
    from consortium.governance import projects
    from consortium.registry import models as reg

    with transaction(m["svc"].session_factory) as s:
        from consortium.governance.credentials import resolve_token

        p, g = resolve_token(s, m["admin"].token), resolve_token(s, m["third"].token)
        prj = projects.create(s, p, f"show-{secrets.token_hex(3)}", "fixture", ["metadata"])
        mm = projects.invite(s, p, prj, projects.membership(s, prj.id, p.org_id), m["third"].org)  # type: ignore[arg-type]
        projects.accept(s, g, mm)
        org, name = made.ref.split("/")
        model = reg.find_model(s, org, name)
        assert model is not None
        model.project_id = prj.id


def _made_prediction(m: dict[str, Any]) -> Made:
    """A prediction org_a made on its own deployment (the URL is that deployment's feedback route)."""
    dep = PATH_FIXTURES["deployment"](m)
    r = m["http"].post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]},
                       headers=m["admin"].headers)
    assert r.status_code == 200, r.text
    return Made(r.json()["prediction_id"], f"/api/v1/deployments/{dep}/feedback", {"deployment": dep})


def _grant_invoke(m: dict[str, Any], made: Made) -> None:
    from consortium.governance import grants

    with transaction(m["svc"].session_factory) as s:
        from consortium.governance.credentials import resolve_token

        grants.create_grant(s, resolve_token(s, m["admin"].token), m["svc"].resource_types.get("deployment"),
                            made.extra["deployment"], "invoke", grantee_org=m["third"].org)


def _upload(params: dict[str, Any]) -> dict[str, Any]:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    return {"params": params, "content": tiny_classifier(), "headers": {"content-type": "application/octet-stream"}}


BODY_REFS: list[BodyRef] = [
    BodyRef("POST", "/api/v1/jobs", "project", _made_project, _invite,
            lambda m, who, made, ref: {"json": {"recipe": _recipe(_own_dataset(m, who)), "project": ref}}),
    BodyRef("POST", "/api/v1/jobs", "recipe.data.dataset", _made_dataset, _grant_metadata,
            lambda m, who, made, ref: {"json": {"recipe": _recipe(ref)}}),
    BodyRef("POST", "/api/v1/jobs", "recipe.federated.datasets", _made_dataset, _grant_metadata,
            lambda m, who, made, ref: {"json": {"recipe": _recipe(
                _own_dataset(m, who), federated={"datasets": [_own_dataset(m, who), ref], "rounds": 1})}}),
    BodyRef("POST", "/api/v1/jobs", "recipe.register.model", _made_model, _show_model,
            lambda m, who, made, ref: {"json": {"recipe": _recipe(_own_dataset(m, who), register={"model": ref})}}),
    BodyRef("POST", "/api/v1/deployments", "model", _made_model, _show_model,
            lambda m, who, made, ref: {"json": {"name": f"fx-{secrets.token_hex(3)}", "model": ref}}),
    BodyRef("POST", "/api/v1/grants", "resource", _made_dataset, _grant_metadata,
            lambda m, who, made, ref: {"json": {"resource_type": "dataset", "resource": ref, "permission": "metadata",
                                                "grantee_org": _elsewhere(m, who)}},
            {**DEFAULT_EXPECT, "member": "403"}),
    BodyRef("POST", "/api/v1/grants", "grantee_project", _made_project, _invite,
            lambda m, who, made, ref: {"json": {"resource_type": "dataset", "resource": _own_dataset(m, who),
                                                "permission": "metadata", "grantee_project": ref}},
            {**DEFAULT_EXPECT, "member": "403"}),
    BodyRef("POST", "/api/v1/models/upload", "?name", _made_model, _show_model,
            lambda m, who, made, ref: _upload({"name": ref, "filename": "m.onnx"})),
    BodyRef("POST", "/api/v1/models/upload", "?project", _made_project, _invite,
            lambda m, who, made, ref: _upload({"name": f"fx-{secrets.token_hex(3)}", "filename": "m.onnx",
                                               "project": ref})),
    BodyRef("POST", "/api/v1/deployments/{deployment}/feedback", "prediction_id", _made_prediction, _grant_invoke,
            lambda m, who, made, ref: {"json": {"prediction_id": ref, "label": 0}},
            {"other": "404", "viewer": "ok", "member": "ok", "admin": "ok", "grantee": "404"}),
]


def _missing(ref: str) -> str:
    """A reference of the same shape that names nothing."""
    if ref.startswith("prd_"):
        import base64

        return "prd_" + base64.urlsafe_b64encode(secrets.token_bytes(len(ref) * 3 // 4)).decode()[:len(ref) - 4]
    for sep in ("/", "~"):
        if sep in ref:
            return ref.rpartition(sep)[0] + sep + f"nx-{secrets.token_hex(3)}"
    return f"nx-{secrets.token_hex(3)}"


def _blank(text: str, ref: str) -> str:
    from consortium.monitoring.ids import shorten

    return text.replace(ref, "<ref>").replace(shorten(ref), "<ref>")


def _schema_fields(annotation: Any, prefix: str) -> list[str]:
    """Dotted field names of a pydantic model (nested models walked; aliases as written in a body)."""
    import typing

    from pydantic import BaseModel

    out: list[str] = []
    todo = [annotation]
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            for name, f in t.model_fields.items():
                key = f"{prefix}{f.alias or name}"
                out.append(key)
                out += _schema_fields(f.annotation, key + ".")
        else:
            todo += [a for a in typing.get_args(t) if a is not type(None)]
    return out


def reference_fields(app: Any) -> set[tuple[str, str, str]]:
    """(method, path, field) for every body or query field of every route named like a reference."""
    from fastapi.routing import iter_route_contexts

    from consortium.api.schemas.jobs import JobCreate
    from consortium.recipe import Recipe

    expand = {JobCreate: {"recipe": Recipe}}  # fields whose schema is given as text or a mapping
    found: set[tuple[str, str, str]] = set()
    for ctx in iter_route_contexts(app.routes):
        dep = getattr(ctx.original_route, "dependant", None)
        if dep is None or not ctx.methods:
            continue
        names: list[str] = []
        stack = [dep]
        while stack:
            d = stack.pop()
            names += [f"?{q.name}" for q in d.query_params]
            for b in d.body_params:
                ann = b.field_info.annotation
                fields = _schema_fields(ann, "")
                names += fields or [b.name]
                for model, more in expand.items():
                    if ann is model:
                        names += [x for k, sub in more.items() for x in _schema_fields(sub, k + ".")]
            stack += d.dependencies
        for n in names:
            if REF_NAME.search(n.rsplit(".", 1)[-1].lstrip("?")):
                for method in ctx.methods - {"HEAD", "OPTIONS"}:
                    found.add((method, ctx.path, n))
    return found


def test_every_body_and_query_reference_is_covered(app: Any) -> None:
    found = reference_fields(app)
    covered = {(e.method, e.path, e.field) for e in BODY_REFS} | set(NOT_REFERENCES)
    missing = sorted(found - covered)
    assert not missing, ("request fields named like a resource reference without a BODY_REFS entry (or a "
                         f"NOT_REFERENCES reason): {missing}")
    routes = {(m, r.path) for r in route_table(app) for m in r.methods}
    stale = [f"{e.method} {e.path} {e.field}" for e in BODY_REFS if (e.method, e.path) not in routes]
    assert not stale, f"BODY_REFS entries for routes the app no longer serves: {stale}"
    assert ("POST", "/api/v1/jobs", "recipe.data.dataset") in found  # the walk reaches into the recipe


def test_body_and_query_references_are_authorized_like_path_parameters(http: Any, matrix: dict[str, Any]) -> None:
    m = {**matrix, "http": http, "grantee": matrix["third"]}
    failures: list[str] = []
    for e in BODY_REFS:
        for persona in REF_PERSONAS:
            made = e.make(m)
            if persona == "grantee":
                e.grantee(m, made)
            url = made.url or e.path

            def call(ref: str, e: BodyRef = e, persona: str = persona, made: Made = made, url: str = url) -> Any:
                kw = e.send(m, persona, made, ref)
                headers = {**m[persona].headers, **kw.pop("headers", {})}
                return http.request(e.method, url, headers=headers, **kw)

            r, exp = call(made.ref), e.expect[persona]
            where = f"{e.method} {e.path} [{e.field}] as {persona}"
            if not _check(r.status_code, exp):
                failures.append(f"{where}: got {r.status_code}, expected {exp}: {r.text[:200]}")
            elif exp == "404":
                missing = _missing(made.ref)
                r2 = call(missing)
                if r2.status_code != 404 or _blank(r.text, made.ref) != _blank(r2.text, missing):
                    failures.append(f"{where}: its 404 differs from a missing one's: {r.text[:200]} vs "
                                    f"{r2.status_code} {r2.text[:200]}")
    assert not failures, "\n".join(failures)
