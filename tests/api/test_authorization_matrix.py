"""Every route of the app x {anonymous, other organization, viewer, admin, operator}.

Each route declares an access rule (``consortium.api.access.rule``). This test walks the app's
whole route table, fails for any route without a rule or without a way to fill its path
parameters, and checks the outcome each caller gets against the rule:
anonymous -> 401; another organization -> 404 on a resource it holds no grant on; a role
below the rule's -> 403; a sufficient role -> neither 401, 403 nor 404. Web UI pages (kind
``page``) redirect an anonymous browser to the login page (303) and otherwise follow the ``org``
logic, or the ``resource`` logic when a path parameter names the resource.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from consortium.api.access import Rule, route_table
from consortium.governance.roles import Role
from consortium.store.db import transaction
from consortium.store.tables.grants import Grant
from consortium.store.tables.identity import ApiToken, Invitation
from consortium.store.tables.base import new_id, utcnow

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


# -- federation: a fresh node of org_a per call
@fixture("node")
def _node(m: dict[str, Any]) -> str:
    from consortium.jobs import federated_nodes
    from consortium.governance.credentials import resolve_token

    with transaction(m["svc"].session_factory) as s:
        n = federated_nodes.register(s, resolve_token(s, m["admin"].token), f"fx-{secrets.token_hex(3)}")
    return n.id
